# HTTP/1.x fields of one TCP segment: the request or status line and the Host and
# User-Agent headers of the first message. Strategy: split lines the way tshark does
# (CRLF, LF or a lone CR; the end of the segment ends the last line), read the first
# line as a request (a known method and a space) or a status line ("HTTP/"), then
# header lines up to the blank line. Strings are read as tshark reads them: ASCII,
# each byte >= 0x80 a U+FFFD, a NUL ending the string. Bounded: at most MAX_LINES
# lines, each found with one bytes.find.
from __future__ import annotations

__all__ = ["http_fields", "HTTP_FIELDS", "looks_like_http", "METHODS", "starts_request", "TOKEN_BYTES"]

HTTP_FIELDS = ("http_method", "http_uri", "http_host", "http_user_agent", "http_status")

MAX_LINES = 200

# tshark's request methods (HTTP, WebDAV, SSDP, RPC over HTTP, SSTP)
METHODS = frozenset((
    b"GET", b"PUT", b"ACL", b"HEAD", b"POST", b"COPY", b"LOCK", b"MOVE", b"POLL", b"BCOPY", b"BMOVE",
    b"MKCOL", b"TRACE", b"LABEL", b"MERGE", b"PATCH", b"DELETE", b"SEARCH", b"UNLOCK", b"REPORT",
    b"UPDATE", b"NOTIFY", b"BDELETE", b"CONNECT", b"OPTIONS", b"CHECKIN", b"PROPFIND", b"CHECKOUT",
    b"CCM_POST", b"M-SEARCH", b"SUBSCRIBE", b"PROPPATCH", b"BPROPFIND", b"BPROPPATCH", b"UNCHECKOUT",
    b"MKACTIVITY", b"MKWORKSPACE", b"UNSUBSCRIBE", b"RPC_CONNECT", b"RPC_IN_DATA", b"RPC_OUT_DATA",
    b"VERSION-CONTROL", b"BASELINE-CONTROL", b"SSTP_DUPLEX_POST", b"MKREDIRECTREF", b"UPDATEREDIRECTREF",
    b"ORDERPATCH",
))
_LONGEST_METHOD = max(len(m) for m in METHODS)
# bytes a header name may not contain (RFC 7230 token separators, controls, space)
_NOT_TOKEN = frozenset(b'()<>@,;:\\"/[]?={} \t') | frozenset(range(33)) | frozenset(range(127, 256))
TOKEN_BYTES = bytes(b for b in range(256) if b not in _NOT_TOKEN)  # what a header name is made of


def _text(raw: bytes) -> str:
    """tshark's reading of an HTTP string: up to a NUL, ASCII, U+FFFD for bytes >= 0x80."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return raw.decode("ascii", "replace")


def _lines(data: bytes):
    """Yield each line (without its end) of ``data``, at most MAX_LINES."""
    n = len(data)
    pos = 0
    for _ in range(MAX_LINES):
        if pos >= n:
            return
        lf = data.find(b"\n", pos)
        cr = data.find(b"\r", pos, lf if lf >= 0 else n)
        if cr >= 0:
            yield data[pos:cr]
            pos = cr + 2 if cr + 1 < n and data[cr + 1] == 10 else cr + 1
        elif lf >= 0:
            yield data[pos:lf]
            pos = lf + 1
        else:
            yield data[pos:]
            return


def _request(line: bytes) -> tuple[bytes, bytes] | None:
    """(method, uri) when ``line`` is a request line of a known method."""
    sp = line.find(b" ", 0, _LONGEST_METHOD + 1)
    if sp <= 0 or line[:sp] not in METHODS:
        return None
    end = line.find(b" ", sp + 1)
    return line[:sp], line[sp + 1:] if end < 0 else line[sp + 1:end]


def starts_request(payload: bytes) -> bool:
    """Whether ``payload`` starts with a known request method and a space."""
    sp = payload.find(b" ", 0, _LONGEST_METHOD + 1)
    return sp > 0 and payload[:sp] in METHODS


def _header_name(line: bytes) -> bytes | None:
    colon = line.find(b":")
    if colon <= 0:
        return None
    name = line[:colon]
    if any(b in _NOT_TOKEN for b in name):
        return None
    return name


def looks_like_http(payload: bytes) -> bool:
    """tshark's HTTP heuristic: a whole first line that ends with, or starts with, "HTTP/1."."""
    cr = payload.find(b"\r")
    lf = payload.find(b"\n")
    ends = [e for e in (cr, lf) if e >= 0]
    if not ends:
        return False
    line = payload[:min(ends)]
    if len(line) == 8:
        return False
    return line[:7].upper() == b"HTTP/1." or (len(line) >= 8 and line[-8:-1].upper() == b"HTTP/1.")


def http_fields(payload: bytes) -> tuple | None:
    """(http_method, http_uri, http_host, http_user_agent, http_status) of the first
    HTTP/1.x message in ``payload``, None when there is none. A segment without a
    request or status line that starts with header lines still gives Host and
    User-Agent, as tshark reads it. Never raises."""
    method = uri = host = agent = status = None
    lines = _lines(payload)
    first = next(lines, None)
    if first is None:
        return None
    headers_from_first = False
    if first[:5] == b"HTTP/":
        sp = first.find(b" ")
        code = first[sp + 1:sp + 4] if sp > 0 else b""
        if len(code) == 3 and code.isdigit():
            status = int(code)
    else:
        req = _request(first)
        if req is not None:
            method, uri = _text(req[0]), _text(req[1])
        elif _header_name(first) is not None:
            headers_from_first = True
        else:
            return None
    for line in (lines if not headers_from_first else _chain(first, lines)):
        if not line:
            break
        name = _header_name(line)
        if name is None:
            if headers_from_first:
                break
            continue
        lower = name.lower()
        if lower == b"host" and host is None:
            host = _text(line[len(name) + 1:]).strip(" \t")
        elif lower == b"user-agent" and agent is None:
            agent = _text(line[len(name) + 1:]).strip(" \t")
    if method is None and status is None and host is None and agent is None:
        return None
    return method, uri, host, agent, status


def _chain(first: bytes, rest):
    yield first
    yield from rest
