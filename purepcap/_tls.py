# TLS handshake fields of one TCP segment: SNI, ALPN, JA3/JA3S (as tshark 4 computes
# them) and JA4 (the FoxIO specification, as the ja4plus reference computes it).
# Strategy: walk the TLS records that lie whole in the segment (tshark dissects nothing
# of a record the segment cuts), and inside each handshake record its messages; the
# first ClientHello gives sni/alpn/ja3/ja4, the first ServerHello ja3s (and the chosen
# ALPN when there is no ClientHello). Every length is checked against the bytes that
# are there; the walks are bounded by the segment's length (each step advances).
from __future__ import annotations

# hashlib is imported where a hash is made: on PyPy it loads OpenSSL through cffi, a
# third of what `import purepcap` costs there, for files that may hold no TLS at all.

__all__ = ["tls_fields", "TLS_FIELDS", "looks_like_tls", "is_grease"]

TLS_FIELDS = ("tls_sni", "tls_alpn", "ja3", "ja3s", "ja4")

_RECORD_TYPES = (20, 21, 22, 23)  # ChangeCipherSpec, Alert, Handshake, ApplicationData
_CLIENT_HELLO, _SERVER_HELLO = 1, 2
_EXT_SNI, _EXT_GROUPS, _EXT_POINT_FORMATS, _EXT_SIG_ALGS, _EXT_ALPN, _EXT_VERSIONS = 0, 10, 11, 13, 16, 43

# JA4's version codes (FoxIO's table); anything else is "00"
_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
                 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


def is_grease(value: int) -> bool:
    """A GREASE value (RFC 8701): 0x?A?A with both bytes equal."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def looks_like_tls(payload: bytes) -> bool:
    """True when ``payload`` starts like a TLS record (type 20-23, version 3.x, a sane length)."""
    return (len(payload) >= 5 and payload[0] in _RECORD_TYPES and payload[1] == 3 and payload[2] <= 4
            and (payload[3] << 8 | payload[4]) <= 18432)


def _u16s(data: bytes, start: int, end: int) -> list[int]:
    return [data[i] << 8 | data[i + 1] for i in range(start, end - 1, 2)]


class _Hello:
    """What one hello carries: its fields in wire order (GREASE kept)."""

    __slots__ = ("version", "ciphers", "extensions", "sni", "alpn", "groups", "point_formats", "sig_algs",
                 "versions", "has_sni", "ja3")

    def __init__(self) -> None:
        self.version = 0
        self.ciphers: list[int] = []
        self.extensions: list[int] = []
        self.sni: str | None = None
        self.has_sni = False
        self.alpn: list[bytes] = []
        self.groups: list[int] = []
        self.point_formats: list[int] = []
        self.sig_algs: list[int] = []
        self.versions: list[int] = []
        self.ja3: str | None = None  # the JA3 string where tshark stops early ("" for none)


def _ascii(raw: bytes) -> str:
    return raw.decode("ascii", "replace")


def _extensions(h: _Hello, data: bytes, pos: int, end: int, client: bool) -> None:
    """Read the extension block at ``pos`` (its 2-byte length first) up to ``end``."""
    if pos + 2 > end:
        return
    ext_end = min(pos + 2 + (data[pos] << 8 | data[pos + 1]), end)
    pos += 2
    while pos + 4 <= ext_end:
        etype = data[pos] << 8 | data[pos + 1]
        elen = data[pos + 2] << 8 | data[pos + 3]
        body = pos + 4
        stop = body + elen
        if stop > ext_end:
            h.extensions.append(etype)  # counted, its body cut: tshark stops here
            return
        h.extensions.append(etype)
        if etype == _EXT_SNI and client:
            h.has_sni = True
            # server_name_list: 2-byte length, then (type, 2-byte length, name)...
            p = body + 2
            lend = min(body + 2 + (data[body] << 8 | data[body + 1]) if elen >= 2 else body, stop)
            while p + 3 <= lend and h.sni is None:
                ntype, nlen = data[p], data[p + 1] << 8 | data[p + 2]
                if p + 3 + nlen > lend:
                    break
                if ntype == 0:
                    h.sni = _ascii(data[p + 3:p + 3 + nlen])
                p += 3 + nlen
        elif etype == _EXT_ALPN:
            if elen >= 2:
                p = body + 2
                lend = min(body + 2 + (data[body] << 8 | data[body + 1]), stop)
                while p < lend:
                    plen = data[p]
                    if p + 1 + plen > lend:
                        break
                    h.alpn.append(data[p + 1:p + 1 + plen])
                    p += 1 + plen
        elif etype == _EXT_GROUPS and client:
            if elen >= 2:
                h.groups = _u16s(data, body + 2, min(body + 2 + (data[body] << 8 | data[body + 1]), stop))
        elif etype == _EXT_POINT_FORMATS and client:
            if elen >= 1:
                h.point_formats = list(data[body + 1:min(body + 1 + data[body], stop)])
        elif etype == _EXT_SIG_ALGS and client:
            if elen >= 2:
                h.sig_algs = _u16s(data, body + 2, min(body + 2 + (data[body] << 8 | data[body + 1]), stop))
        elif etype == _EXT_VERSIONS:
            if client:
                if elen >= 1:
                    h.versions = _u16s(data, body + 1, min(body + 1 + data[body], stop))
            elif elen >= 2:
                h.versions = [data[body] << 8 | data[body + 1]]
        pos = stop


def _client_hello(data: bytes, pos: int, end: int) -> _Hello | None:
    """The ClientHello body at ``pos`` (after the 4-byte handshake header) up to ``end``."""
    if pos + 35 > end:
        return None
    h = _Hello()
    h.version = data[pos] << 8 | data[pos + 1]
    pos += 34
    pos += 1 + data[pos]  # session id
    if pos + 2 > end:
        return h
    clen = data[pos] << 8 | data[pos + 1]
    pos += 2
    h.ciphers = _u16s(data, pos, min(pos + clen, end))
    pos += clen
    if pos >= end:
        # tshark reads past the hello (ciphers or the compression length): no JA3
        h.ja3 = ""
        return h
    pos += 1 + data[pos]  # compression methods
    if pos > end or pos < end and (pos + 2 > end or pos + 2 + (data[pos] << 8 | data[pos + 1]) > end):
        # a vector longer than the hello: tshark stops, its JA3 ends after the ciphers
        h.ja3 = f"{h.version},{_dash(h.ciphers)},"
    _extensions(h, data, pos, end, True)
    return h


def _server_hello(data: bytes, pos: int, end: int) -> tuple[_Hello, int] | None:
    """The ServerHello body at ``pos``: (hello, cipher), None where cut before the cipher."""
    if pos + 34 > end:
        return None
    h = _Hello()
    h.version = data[pos] << 8 | data[pos + 1]
    pos += 34
    if h.version >> 8 != 0x7F:  # TLS 1.3 drafts (0x7fXX) have no session id
        if pos >= end:
            return None
        pos += 1 + data[pos]
    if pos + 2 > end:
        return None
    cipher = data[pos] << 8 | data[pos + 1]
    pos += 2
    if h.version >> 8 != 0x7F:  # the drafts have no compression method either
        pos += 1
    _extensions(h, data, pos, end, False)
    return h, cipher


def _dash(values: list[int]) -> str:
    return "-".join(str(v) for v in values if not is_grease(v))


def ja3_string(h: _Hello) -> str:
    """tshark's JA3 string of a ClientHello (GREASE dropped); "" where it has none."""
    if h.ja3 is not None:
        return h.ja3
    return (f"{h.version},{_dash(h.ciphers)},{_dash(h.extensions)},{_dash(h.groups)},"
            f"{'-'.join(str(v) for v in h.point_formats)}")


def ja3s_string(h: _Hello, cipher: int) -> str:
    """tshark's JA3S string of a ServerHello (GREASE dropped)."""
    return f"{h.version},{cipher},{_dash(h.extensions)}"


def _alpn_char(b: int) -> str | None:
    if 0x20 <= b <= 0x7E:
        return chr(b)
    return "9" if b >= 0x80 else None


def ja4(h: _Hello) -> str:
    """The JA4 fingerprint of a ClientHello over TCP, as FoxIO specifies it."""
    import hashlib
    versions = [v for v in h.versions if not is_grease(v)]
    version = max(versions) if versions else h.version
    ciphers = [c for c in h.ciphers if not is_grease(c)]
    exts = [e for e in h.extensions if not is_grease(e)]
    if h.alpn and h.alpn[0]:
        first, last = _alpn_char(h.alpn[0][0]), _alpn_char(h.alpn[0][-1])
        alpn = "99" if first is None or last is None else first + last
    else:
        alpn = "00"
    part_a = (f"t{_JA4_VERSIONS.get(version, '00')}{'d' if h.has_sni else 'i'}"
              f"{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn}")
    cipher_hash = (hashlib.sha256(",".join(f"{c:04x}" for c in sorted(ciphers)).encode()).hexdigest()[:12]
                   if ciphers else "000000000000")
    hashed = sorted(e for e in exts if e != _EXT_SNI and e != _EXT_ALPN)
    if hashed:
        text = ",".join(f"{e:04x}" for e in hashed)
        sig = [s for s in h.sig_algs if not is_grease(s)]
        if sig:
            text += "_" + ",".join(f"{s:04x}" for s in sig)
        ext_hash = hashlib.sha256(text.encode()).hexdigest()[:12]
    else:
        ext_hash = "000000000000"
    return f"{part_a}_{cipher_hash}_{ext_hash}"


def tls_fields(payload: bytes) -> tuple | None:
    """(tls_sni, tls_alpn, ja3, ja3s, ja4) of the hellos in one TCP segment's TLS
    records, None when it has no whole ClientHello or ServerHello. Never raises."""
    import hashlib
    n = len(payload)
    off = 0
    client: _Hello | None = None
    server: tuple[_Hello, int] | None = None
    while off + 5 <= n:
        ctype = payload[off]
        if ctype not in _RECORD_TYPES or payload[off + 1] != 3:
            break
        rend = off + 5 + (payload[off + 3] << 8 | payload[off + 4])
        if rend > n:
            break  # a record cut by the segment: tshark dissects none of it
        if ctype == 22:
            m = off + 5
            while m + 4 <= rend:
                mtype = payload[m]
                mend = m + 4 + (payload[m + 1] << 16 | payload[m + 2] << 8 | payload[m + 3])
                if mend > rend:
                    break
                if mtype == _CLIENT_HELLO and client is None:
                    client = _client_hello(payload, m + 4, mend)
                elif mtype == _SERVER_HELLO and server is None:
                    server = _server_hello(payload, m + 4, mend)
                m = mend
        off = rend
    if client is None and server is None:
        return None
    sni = alpn = ja3 = ja3s = fp = None
    if client is not None:
        sni = client.sni
        alpn = tuple(_ascii(a) for a in client.alpn) if client.alpn else None
        text = ja3_string(client)
        ja3 = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() if text else None
        fp = ja4(client)
    if server is not None:
        h, cipher = server
        if alpn is None and h.alpn:
            alpn = tuple(_ascii(a) for a in h.alpn)
        ja3s = hashlib.md5(ja3s_string(h, cipher).encode(), usedforsecurity=False).hexdigest()
    return sni, alpn, ja3, ja3s, fp
