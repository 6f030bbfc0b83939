# The application fields of one packet, from its transport payload: which decoder (DNS,
# HTTP, TLS) reads it, chosen as tshark chooses with reassembly off -- its port table
# first (the lower port, then the higher), its heuristics second -- and the one entry
# the record and DataFrame paths call. Strategy: a cheap test by port and first byte
# (is_candidate) keeps every other packet from reaching a decoder, so asking for these
# columns costs a dict lookup per TCP/UDP packet; the decoders are pure functions over
# the payload bytes that never raise.
from __future__ import annotations

from ._dns import DNS_FIELDS, dns_fields, looks_like_dns
from ._http import HTTP_FIELDS, TOKEN_BYTES, http_fields, looks_like_http
from ._schema import APPLICATION
from ._tls import TLS_FIELDS, looks_like_tls, tls_fields

__all__ = ["APP_FIELDS", "app_fields", "is_candidate", "decode_candidate", "DNS_PORTS", "HTTP_PORTS",
           "CANDIDATE_FIRST", "CANDIDATE_FIRST_HTTP", "HEADER_NAME_SPAN", "TOKEN_BYTES", "tcp_reader", "NO_APP"]

# Every application field, in the order app_fields returns them: the field table's
# order, which is the decoders' (a test checks it)
APP_FIELDS: tuple[str, ...] = APPLICATION
NO_APP = (None,) * len(APP_FIELDS)
_NO_DNS = (None,) * len(DNS_FIELDS)
_NO_HTTP = (None,) * len(HTTP_FIELDS)
_NO_TLS = (None,) * len(TLS_FIELDS)

_TCP, _UDP = 6, 17

# What tshark's port table does with a port (its default preferences).
_DNS, _HTTP, _TLS, _STARTTLS, _OTHER, _SOCKS = 1, 2, 3, 4, 5, 6
# DNS, multicast DNS and LLMNR: one wire format
DNS_PORTS = frozenset((53, 5353, 5355))
# UDP ports of protocols in DNS's wire format that are not DNS (NetBIOS name service)
_UDP_NOT_DNS = frozenset((137,))
_HTTP_PORTS = (80, 3128, 3132, 5985, 8080, 8088, 11371, 1900, 2869, 2710)
_TLS_PORTS = (443, 261, 448, 465, 563, 614, 636, 853, 989, 990, 992, 993, 994, 995, 3269, 5061, 5223,
              6679, 6697, 8883, 19999)
# protocols that switch to TLS in the conversation (STARTTLS and the like): TLS is read
# where the segment starts with a TLS record, nothing else is
_STARTTLS_PORTS = (21, 25, 110, 143, 389, 587, 3306, 5432)
# ports whose dissector takes the segment whatever it holds (so neither HTTP nor TLS)
_OTHER_PORTS = (22, 23, 3389, 5060, 6667, 554, 139, 445, 1723, 179, 2000, 5222, 5269)

_TCP_TABLE: dict[int, int] = {}
for _ports, _kind in ((_OTHER_PORTS, _OTHER), (_STARTTLS_PORTS, _STARTTLS), (_HTTP_PORTS, _HTTP),
                      (_TLS_PORTS, _TLS), ((53,), _DNS), ((1080,), _SOCKS)):
    for _p in _ports:
        _TCP_TABLE[_p] = _kind
# The first TCP payload bytes that can start something a decoder reads anywhere: a TLS
# handshake record, or a ChangeCipherSpec or alert record before one (a TLS 1.3
# client's second hello; a server's warning before its hello); an upper-case letter,
# which opens every HTTP request and status line ("HTTP/"). Application data records
# (0x17), the bulk of TLS traffic, are not read. A lower-case letter (a header name in
# a segment without a request line, cut by the segment) is read on HTTP's ports only
# (HTTP_PORTS), and only where a colon follows within HEADER_NAME_SPAN bytes with only
# header-name bytes (TOKEN_BYTES) before it: anything else there (a line end, a space,
# a binary byte) makes http_fields refuse the line, so the segment has nothing to give.
# One byte per value, so the DataFrame path can index them with a numpy array.
CANDIDATE_FIRST = bytes(1 if b in (0x14, 0x15, 0x16) or 65 <= b <= 90 else 0 for b in range(256))
CANDIDATE_FIRST_HTTP = bytes(1 if CANDIDATE_FIRST[b] or 97 <= b <= 122 else 0 for b in range(256))
HTTP_PORTS = frozenset(_HTTP_PORTS)
HEADER_NAME_SPAN = 64


def is_candidate(proto: int, sport: int | None, dport: int | None, payload: bytes) -> bool:
    """Cheap: can this packet carry application fields at all (by port and first byte)?"""
    if not payload or sport is None:
        return False
    if proto == _UDP:
        # DNS's ports, or a header that can start a query or response with one question
        return (sport in DNS_PORTS or dport in DNS_PORTS
                or len(payload) >= 17 and payload[4] == 0 and payload[5] == 1
                and not payload[2] & 0x78 and not payload[3] & 0x40)
    if proto != _TCP:
        return False
    if sport == 53 or dport == 53 or CANDIDATE_FIRST[payload[0]]:
        return True
    if CANDIDATE_FIRST_HTTP[payload[0]] != 1 or not (sport in HTTP_PORTS or dport in HTTP_PORTS):
        return False
    colon = payload.find(b":", 1, HEADER_NAME_SPAN)
    return colon > 0 and not payload[:colon].translate(None, TOKEN_BYTES)


def _tcp_kind(sport: int, dport: int) -> int:
    lo, hi = (sport, dport) if sport <= dport else (dport, sport)
    kind = _TCP_TABLE.get(lo)
    if kind is None:
        kind = _TCP_TABLE.get(hi)
    return kind or 0


def app_fields(proto: int, sport: int | None, dport: int | None, payload: bytes) -> tuple | None:
    """The APP_FIELDS values of one packet (a tuple in that order), None when it has
    none. ``proto`` is the IP protocol number; ``payload`` the TCP or UDP payload."""
    if not is_candidate(proto, sport, dport, payload):
        return None
    return decode_candidate(proto, sport, dport, payload)


def decode_candidate(proto: int, sport: int, dport: int, payload: bytes) -> tuple | None:
    """app_fields for a packet is_candidate has let through (the DataFrame path tests a
    whole batch at once, with the same tables, and calls this for its candidates)."""
    if proto == _UDP:
        if not (sport in DNS_PORTS or dport in DNS_PORTS):
            # DNS away from its ports (as tshark's UDP heuristic finds it), not where
            # NetBIOS name service, which shares its format, is
            if sport in _UDP_NOT_DNS or dport in _UDP_NOT_DNS or not looks_like_dns(payload):
                return None
        d = dns_fields(payload, False)
        return None if d is None else d + _NO_HTTP + _NO_TLS
    reader = tcp_reader(sport, dport, payload)
    if reader == "tls":
        t = tls_fields(payload)
        return None if t is None else _NO_DNS + _NO_HTTP + t
    if reader == "http":
        h = http_fields(payload)
        return None if h is None else _NO_DNS + h + _NO_TLS
    if reader == "dns":
        d = dns_fields(payload, True)
        return None if d is None else d + _NO_HTTP + _NO_TLS
    return None


def tcp_reader(sport: int, dport: int, payload: bytes) -> str | None:
    """Which decoder reads a TCP segment: "dns", "http", "tls" or None, by tshark's
    port table first and its heuristics second (purepcap._reassembly asks it too, of
    the first segment of a message)."""
    kind = _tcp_kind(sport, dport)
    if kind == _DNS:
        return "dns"
    if kind == _OTHER:
        return None
    if kind == _HTTP and not (looks_like_tls(payload) and sport != 80 and dport != 80):
        # (TLS through an HTTP proxy's CONNECT tunnel is read as TLS; on port 80 it is not)
        return "http"
    if kind == _SOCKS and not looks_like_tls(payload):
        # SOCKS hands the conversation on once its handshake is done
        return "http" if looks_like_http(payload) else None
    if kind == _TLS or kind == _STARTTLS or kind == _SOCKS or kind == _HTTP or looks_like_tls(payload):
        return "tls"
    if looks_like_http(payload):
        return "http"
    return None
