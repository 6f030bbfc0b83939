# DNS messages: the header, the first question and the A/AAAA answers, from one UDP
# payload or one TCP segment (a 2-byte length, then the message). Strategy: a plain
# walk over the bytes with explicit bounds checks, following tshark 4's reading of
# what a damaged message still shows: the question only when its name, type and class
# were captured, names that run too long or loop written as tshark writes them. Name
# expansion follows at most MAX_POINTERS compression pointers and never the same one
# twice, so it is linear in the message; names keep at most 253 characters of text.
# dns_fields_by_header is the same reading for a whole batch of UDP payloads at once
# (numpy arrays, for the DataFrame path): the messages whose fields follow from the
# header and the first name's first byte alone -- cut short, empty, or not DNS at all
# (traffic on port 53 that is not DNS) -- without a Python call each.
from __future__ import annotations

import struct
from typing import Any

from .headers import ip4_str, ip6_str

__all__ = ["dns_fields", "DNS_FIELDS", "MAX_POINTERS", "looks_like_dns", "dns_fields_by_header", "HEADER_BYTES"]

# The fields, in the order dns_fields returns them.
DNS_FIELDS = ("dns_id", "dns_qname", "dns_qtype", "dns_rcode", "dns_answers")

# tshark's limits (MAX_DNAME_LEN): more pointers than this is a loop; a name whose text
# reaches 254 characters is "too long".
MAX_POINTERS = 255
_MAX_TEXT = 253

TOO_LONG = "<Name too long>"
LOOPS = "<Name contains a pointer that loops>"
UNKNOWN_LABEL = "<Unknown extended label>"

_HEADER = struct.Struct("!HHHHHH").unpack_from
_TYPE_CLASS = struct.Struct("!HH").unpack_from
_RR_TAIL = struct.Struct("!HHIH").unpack_from  # type, class, ttl, rdlength


class _Bad(Exception):
    """A read past the end of the message (tshark's ReportedBoundsError)."""


def _name(msg: bytes, off: int) -> tuple[str, int]:
    """The name at ``off``: (text, bytes it takes at ``off``); _Bad where tshark throws.

    The text is "" for the root, else the labels joined by dots and decoded as UTF-8
    (invalid bytes become U+FFFD), or one of tshark's markers. A pointer met a second
    time is a loop (tshark walks on until its pointer count passes MAX_POINTERS, to
    the same verdict); so no label is walked twice and the walk is linear in the
    message.
    """
    n = len(msg)
    start = off
    used = -1  # the name's length at ``start``, fixed at the first pointer
    parts: list[bytes] = []
    seen: set[int] | None = None
    while True:
        if off >= n:
            raise _Bad
        c = msg[off]
        if c == 0:
            off += 1
            break
        if c < 0x40:  # a label
            end = off + 1 + c
            if end > n:
                raise _Bad
            parts.append(msg[off + 1:end])
            off = end
        elif c >= 0xC0:  # a pointer
            if off + 1 >= n:
                raise _Bad
            if used < 0:
                used = off + 2 - start
                seen = set()
            if off in seen or len(seen) >= MAX_POINTERS:
                return LOOPS, used
            seen.add(off)
            off = (c & 0x3F) << 8 | msg[off + 1]
        elif c < 0x80:  # an extended label (RFC 2673): only the bitstring label is known
            if c != 0x41:
                return UNKNOWN_LABEL, off + 1 - start if used < 0 else used
            if off + 1 >= n:
                raise _Bad
            bits = msg[off + 1]
            size = (bits - 1) // 8 + 1 if bits else 32
            if off + 2 + size > n:
                raise _Bad
            parts.append(b"\\[x" + msg[off + 2:off + 2 + size].hex().encode() + b"/%d]" % bits)
            off += 2 + size
        else:
            raise _Bad
    if used < 0:
        used = off - start
    if not parts:
        if used > 1:  # a pointer to the root: tshark refuses it
            raise _Bad
        return "", used
    if sum(map(len, parts)) + len(parts) - 1 > _MAX_TEXT:
        return TOO_LONG, used
    return b".".join(parts).decode("utf-8", "replace"), used


def dns_fields(payload: bytes, tcp: bool = False) -> tuple | None:
    """(dns_id, dns_qname, dns_qtype, dns_rcode, dns_answers) of the DNS message in
    ``payload``, None where there is not even an id. For ``tcp`` the payload starts
    with the 2-byte message length. Never raises.

    ``dns_rcode`` is set on responses only; ``dns_answers`` is a tuple of the A and
    AAAA addresses of the answer section (empty when it has none), None where the
    header was cut short.
    """
    if tcp:
        if len(payload) < 2:
            return None
        size = payload[0] << 8 | payload[1]
        msg = payload[2:2 + size]
    else:
        msg = payload
    n = len(msg)
    if n < 12:
        # a header cut short (a first IP fragment, a lying length): tshark still
        # shows the id and flags when it has them both
        if n < 4:
            return None
        return msg[0] << 8 | msg[1], None, None, msg[3] & 0x0F if msg[2] & 0x80 else None, None
    ident, flags, qdcount, ancount, _, _ = _HEADER(msg, 0)
    rcode = flags & 0x0F if flags & 0x8000 else None
    qname = qtype = None
    answers: list[str] = []
    off = 12
    try:
        if qdcount:
            qname, used = _name(msg, off)
            off += used
            if off + 4 > n:
                return ident, None, None, rcode, ()
            qtype = _TYPE_CLASS(msg, off)[0]
            off += 4
            # a question takes 5 bytes at least: where the rest cannot fit, the walk
            # (tshark's too) stops in them, and no answer is reached (returned here, not
            # raised: an exception costs more than the rest of a short message's walk)
            if off + 5 * (qdcount - 1) > n:
                return ident, qname, qtype, rcode, ()
            for _ in range(qdcount - 1):
                off += _name(msg, off)[1] + 4
                if off > n:
                    raise _Bad
        # an answer record takes 11 bytes at least: no more are walked than fit
        for _ in range(min(ancount, (n - off) // 11 + 1)):
            off += _name(msg, off)[1]
            if off + 10 > n:
                raise _Bad
            rtype, _, _, rdlength = _RR_TAIL(msg, off)
            off += 10
            if off + rdlength > n:
                raise _Bad
            if rtype == 1 and rdlength == 4:
                answers.append(ip4_str(int.from_bytes(msg[off:off + 4], "big")))
            elif rtype == 28 and rdlength == 16:
                answers.append(ip6_str(msg[off:off + 16]))
            off += rdlength
    except _Bad:
        pass
    return ident, qname, qtype, rcode, tuple(answers)


# What dns_fields_by_header reads of each payload: the header, the first name's first
# byte and the two bytes after it (the question's type, where that byte is the whole name).
HEADER_BYTES = 15


def dns_fields_by_header(head: Any, size: Any) -> tuple[Any, Any, list[Any]]:
    """dns_fields(payload) (UDP: no length prefix) for many payloads at once, where the
    header and the first name's first byte decide it. ``head``: the first HEADER_BYTES
    bytes of each payload, one uint8 row each (bytes past a payload's end may be
    anything: they are not read); ``size``: the payloads' lengths (int64).

    Returns (decided, found, columns): ``decided`` the rows whose result this gives
    (the others need dns_fields); ``found`` the decided rows whose result is not None;
    ``columns`` the DNS_FIELDS over the ``found`` rows, as object arrays of the values
    dns_fields returns. Decided, as dns_fields reads a message of n bytes:

    - n < 4: None; n < 12: the id and rcode only (a header cut short);
    - no question and no answer record: the header's values and no answers;
    - a question whose name cannot start (n == 12) or starts with a reserved label
      type (0x80-0xBF: _Bad): no question, no answers;
    - a first name of one byte -- the root (0x00, "") or an extended label type other
      than the bitstring (0x40-0x7F but 0x41, UNKNOWN_LABEL) -- then no question if
      its type and class are cut (n < 17), else its type and no answers where the rest
      of the questions cannot fit (5 bytes each at least) or there is nothing more to
      walk (one question, no answer record).

    Everything else (a label, a pointer or a bitstring first; more to walk) is left
    to dns_fields.
    """
    import numpy as np

    size = np.asarray(size, dtype=np.int64)
    m = len(size)
    raw = np.ascontiguousarray(np.asarray(head, dtype=np.uint8).reshape(m, -1)[:, :HEADER_BYTES])
    fields = raw.view(np.dtype(_HEADER_VIEW))[:, 0]
    qdcount = fields["qdcount"].astype(np.int64)
    ancount = fields["ancount"]
    first = fields["first"]
    whole = size >= 12
    # the first name's one-byte outcomes: the root, an unknown extended label
    one_byte = (first == 0) | ((first & 0xC0) == 0x40) & (first != 0x41)
    bad = ((first & 0xC0) == 0x80) | (size == 12)
    asked = qdcount > 0
    no_question = whole & asked & (bad | one_byte & (size < 17))
    typed = whole & asked & ~bad & one_byte & (size >= 17) & (
        (17 + 5 * (qdcount - 1) > size) | (qdcount == 1) & (ancount == 0))
    decided = (size < 12) | whole & ~asked & (ancount == 0) | no_question | typed
    found = np.flatnonzero(decided & (size >= 4))
    if len(found) < m:  # (every row decided and found: no copies)
        fields, typed, whole = fields[found], typed[found], whole[found]
    first = fields["first"]
    no_answers = np.empty(1, dtype=object)
    no_answers[0] = ()  # (in an array: numpy would take a bare () as no values)
    answers = np.empty(len(found), dtype=object)  # None-filled
    answers[whole] = no_answers
    qname = np.empty(len(found), dtype=object)
    qname[typed & (first == 0)] = ""
    qname[typed & (first != 0)] = UNKNOWN_LABEL
    return decided, found, [_objects(fields["ident"]), qname, _objects(fields["qtype"], typed),
                            _objects(fields["flags"] & 0x0F, (fields["flags"] & 0x8000) != 0), answers]


# dns_fields_by_header's view of a payload's first HEADER_BYTES bytes
_HEADER_VIEW = {"names": ["ident", "flags", "qdcount", "ancount", "first", "qtype"],
                "formats": [">u2", ">u2", ">u2", ">u2", "u1", ">u2"], "offsets": [0, 2, 4, 6, 12, 13],
                "itemsize": HEADER_BYTES}


def _objects(values: Any, where: Any = None) -> Any:
    """An object array of Python ints (as dns_fields' values), None where not ``where``."""
    import numpy as np

    if where is None or where.all():
        return values.astype(np.int64).astype(object)
    out = np.empty(len(values), dtype=object)  # None-filled
    if where.any():
        out[where] = values[where].astype(np.int64).astype(object)
    return out


# Most records a message found by looks_like_dns may hold in each section.
_MAX_PLAUSIBLE_RECORDS = 64
# bytes a plausible name's labels hold: letters, digits, '-' and '_'
_NAME_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def looks_like_dns(msg: bytes) -> bool:
    """A strict test for DNS away from its ports: a standard query or response with
    one question whose name is a host name of class IN (or ANY), at most 64 records
    a section (none in a query's answer and authority sections), every record whole,
    and nothing after the last one."""
    n = len(msg)
    if n < 17:
        return False
    _, flags, qdcount, ancount, nscount, arcount = _HEADER(msg, 0)
    if qdcount != 1 or flags & 0x7840 or max(ancount, nscount, arcount) > _MAX_PLAUSIBLE_RECORDS:
        return False
    if not flags & 0x8000 and (ancount or nscount):
        return False
    try:
        text, used = _name(msg, 12)
        if not text or text[0] == "<" or not all(b in _NAME_BYTES for b in text.encode().replace(b".", b"")):
            return False
        off = 12 + used
        if off + 4 > n or _TYPE_CLASS(msg, off)[1] not in (1, 255):
            return False
        off += 4
        for _ in range(ancount + nscount + arcount):
            off += _name(msg, off)[1]
            if off + 10 > n:
                return False
            off += 10 + _RR_TAIL(msg, off)[3]
    except _Bad:
        return False
    return off == n
