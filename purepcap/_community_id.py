# Community ID v1 (https://github.com/corelight/community-id-spec): the flow hash that
# Zeek, Suricata and Malcolm share, so that flows can be joined across tools.
#
# Strategy: the spec's hash input is packed with struct and hashed with hashlib's SHA-1;
# address strings become network-order bytes once each (a small bounded cache, as
# flows of one capture repeat their hosts). ICMP and ICMPv6 use the spec's mapping of
# message types to "ports" (a request and its reply map to the same pair).
from __future__ import annotations

import base64
import hashlib
import socket
import struct

__all__ = ["community_id"]

_ICMP, _TCP, _UDP, _ICMPV6, _SCTP = 1, 6, 17, 58, 132
_PORTED = frozenset((_TCP, _UDP, _SCTP))

# request <-> reply types, as the spec (and Zeek) pair them
_ICMP_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMPV6_PAIRS = {128: 129, 129: 128, 130: 131, 131: 130, 133: 134, 134: 133, 135: 136, 136: 135,
                 139: 140, 140: 139, 144: 145, 145: 144}

_HEAD = struct.Struct("!H")
_TAIL_PORTS = struct.Struct("!BBHH")
_TAIL = struct.Struct("!BB")

_packed: dict[str, bytes] = {}


def _pack(host: str) -> bytes:
    raw = _packed.get(host)
    if raw is None:
        if len(_packed) >= 1 << 16:
            _packed.clear()
        raw = _packed[host] = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    return raw


def community_id(proto: int, src: str, dst: str, sport: int | None = None, dport: int | None = None,
                 icmp_type: int | None = None, icmp_code: int | None = None, seed: int = 0) -> str | None:
    """The Community ID v1 string (``1:`` + base64 SHA-1) of a flow.

    ``proto`` is the IP protocol number; ``src``/``dst`` address strings; ``sport``/``dport``
    the ports for TCP, UDP and SCTP. For ICMP and ICMPv6 pass the first packet's
    ``icmp_type`` and ``icmp_code`` instead. None where the spec has no value (a ported
    protocol, or ICMP, without its ports or type).
    """
    a, b = _pack(src), _pack(dst)
    one_way = False
    if proto in _PORTED:
        if sport is None or dport is None:
            return None
    elif proto == _ICMP or proto == _ICMPV6:
        if icmp_type is None or icmp_code is None:
            return None
        pairs = _ICMP_PAIRS if proto == _ICMP else _ICMPV6_PAIRS
        sport = icmp_type
        if icmp_type in pairs:
            dport = pairs[icmp_type]
        else:
            dport, one_way = icmp_code, True
    else:
        sport = dport = None
    if not one_way and (b < a or (a == b and sport is not None and dport < sport)):
        a, b, sport, dport = b, a, dport, sport
    tail = _TAIL.pack(proto, 0) if sport is None else _TAIL_PORTS.pack(proto, 0, sport, dport)
    digest = hashlib.sha1(_HEAD.pack(seed) + a + b + tail).digest()
    return "1:" + base64.b64encode(digest).decode("ascii")
