# Header parsing: link layer -> outermost IP header -> transport, from bytes, as one
# flat dict. Strategy: plain functions over (data, offset) with precompiled
# struct.Struct.unpack_from and explicit bounds checks, no object per layer; every
# loop over stacked headers (VLAN tags, MPLS labels, LLC/PPPoE wrappers, IPv6
# extension headers) has a fixed depth limit, so hostile bytes cost O(limit). The
# common case (Ethernet, IPv4, TCP/UDP) has a separate fast path in records.py
# that uses the address caches and tables exported here.
"""Decode captured packets into the fields of their outermost IP header.

``decode(linktype, data, length=None)`` returns ``None`` for a packet without an IP
layer, else a dict with these keys (``None`` where a field does not apply or was
not captured):

=============  ===========================================================================
key            value
=============  ===========================================================================
src_host       str; IPv4 dotted quad, IPv6 in RFC 5952 form (as :mod:`ipaddress` prints)
dst_host       str
src_port       int when TCP, UDP or SCTP directly follows the IP layer (after IPv6
dst_port       extension headers), its first 4 bytes were captured and lie inside the IP
               length, and the packet is not a non-first fragment; else None
protocol       ``tcp``, ``udp``, ``icmp``, ``icmpv6``, ``igmp``, else the lower-case IANA
               keyword (``gre``, ``esp``, ``ah``, ``sctp``, ``ospf``, ``pim``, ``vrrp``,
               ...), else ``ip-proto-N``. For IPv6 it names the header after the
               extension-header chain (hop-by-hop, routing, fragment, destination
               options, AH).
ip_version     4 or 6
ttl            IPv4 TTL or IPv6 hop limit
ip_id          IPv4 identification; for IPv6 the fragment header's identification
tcp_flags      TCP flag bits: FIN 0x01 ... CWR 0x80, NS 0x100 (the low 9 bits of the
               TCP flags field)
tcp_seq        TCP sequence number
tcp_ack        TCP acknowledgment number
tcp_window     TCP window (unscaled)
icmp_type      ICMP or ICMPv6 type
icmp_code      ICMP or ICMPv6 code
vlan           VLAN id (12 bits) of the outermost 802.1Q/802.1ad/0x9100 tag
eth_src        source MAC "aa:bb:cc:dd:ee:ff" (Ethernet link types only)
eth_dst        destination MAC
fragment       None, or ``(more_fragments, offset_in_bytes)`` for an IPv4 or IPv6
               fragment
ip_proto       raw protocol number named by ``protocol``
ip_length      IPv4 total length; IPv6 payload length + 40
payload        bytes: for TCP and UDP the bytes after the transport header, for
               anything else (and for non-first fragments) the bytes after the IP
               header chain; always bounded by the IP total/payload length (so
               Ethernet padding and trailers are excluded) and cut short at caplen
=============  ===========================================================================

Link types: EN10MB, LINUX_SLL, LINUX_SLL2, NULL (either byte order, BSD AF_INET6
values 24/28/30), LOOP, RAW (101, 12, 14), IPV4, IPV6, PPP (with or without ff 03,
with protocol-field compression, and Cisco HDLC frames on PPP links as tshark
recognises them), PPP_HDLC and C_HDLC. Looked through on the way to the IP header,
up to MAX_LINK_DEPTH wrappers: 802.1Q/802.1ad/0x9100 tags (``vlan`` is the outermost
id), 802.2 LLC/SNAP, PPPoE session, MPLS label stacks (IPv4/IPv6 chosen by an
explicit-null label, else guessed from the first nibble after the stack, as tshark
does), integrity-only MACsec, Cisco FabricPath, Arista timestamp headers and NSH.

Conventions (the ones tshark uses, checked against it on the shared corpus): the
outermost IP header is the record, so tunnels (GRE, IP-in-IP, 6in4, ...) give the
outer hosts and the outer protocol, and ICMP errors give ``icmp`` without ports.
An IPv4 header with IHL < 5, or a total length shorter than its header (other than
0), is not decoded (tshark does not report its addresses either), nor is an IPv6
header cut short by caplen. An IPv4 total length of 0 (TCP segmentation offload),
or an IPv6 payload length of 0 before a hop-by-hop header (a jumbogram), means "up
to the end of the packet". A UDP length shorter than the IP payload ends the UDP
payload. An IPv4 link/ethertype carrying a version-6 header is decoded as IPv6, as
tshark does. An IPv6 extension header cut short still names the header after it
(except a fragment header, read only whole); nothing after it is decoded.

``decode`` never raises on any bytes: a truncated or malformed packet is decoded
as far as its captured bytes allow.
"""
from __future__ import annotations

import ipaddress
import struct

from . import _schema
from . import linktypes as _lt
from ._protocols import NAMES as _PROTO_NAMES

__all__ = ["decode", "link_info", "PROTOCOLS", "EXTRA_FIELDS", "ip4_str", "ip6_str",
           "MAX_LINK_DEPTH", "MAX_MPLS_LABELS", "MAX_IPV6_EXTENSIONS"]

# Depth limits for stacked headers (VLAN/LLC/PPPoE/MACsec/NSH wrappers, MPLS labels,
# IPv6 extension headers). Far above anything real (libpcap's own test capture
# chains 100 IPv6 extension headers), small enough that a crafted packet costs
# microseconds; each step also advances through the captured bytes.
MAX_LINK_DEPTH = 32
MAX_MPLS_LABELS = 32
MAX_IPV6_EXTENSIONS = 256

# The names `records(protocol=...)` accepts, the commonly used ones first.
PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "icmp", "icmpv6", "igmp", "gre", "esp", "ah", "sctp",
                              "ospf", "pim", "vrrp") + tuple(
    n for n in _PROTO_NAMES if n not in ("tcp", "udp", "icmp", "icmpv6", "igmp", "gre", "esp", "ah",
                                         "sctp", "ospf", "pim", "vrrp") and not n.startswith("ip-proto-"))

# Fields records() adds on request (fields=...), from the one field table. All but
# `interface` (the Packet's) come from decode().
EXTRA_FIELDS: tuple[str, ...] = _schema.RECORD_EXTRA

_U16 = struct.Struct("!H").unpack_from
_U32 = struct.Struct("!I").unpack_from
_U32LE = struct.Struct("<I").unpack_from
_HH = struct.Struct("!HH").unpack_from
_IPV4_HDR = struct.Struct("!BxHHHBBxxII").unpack_from  # vihl, total, id, frag, ttl, proto, src, dst
_IPV6_HDR = struct.Struct("!4xHBB").unpack_from  # payload length, next header, hop limit
_TCP = struct.Struct("!HHIIBBH").unpack_from  # sport, dport, seq, ack, offset, flags, window

# ---------------------------------------------------------------------------------------
# Address strings, cached. Bounded: a capture of random addresses clears the cache
# instead of growing it without limit.
_CACHE_LIMIT = 1 << 16
class _IPv4Names(dict):
    """32-bit address -> dotted quad; ``cache[value]`` formats and stores on a miss."""

    def __missing__(self, value: int) -> str:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        s = self[value] = f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
        return s


class _IPv6Names(dict):
    """16 address bytes -> RFC 5952 text; ``cache[raw]`` formats and stores on a miss."""

    def __missing__(self, raw: bytes) -> str:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        s = self[raw] = str(ipaddress.IPv6Address(raw))
        return s


class _MacNames(dict):
    """6 address bytes -> "aa:bb:cc:dd:ee:ff"; ``cache[raw]`` formats and stores on a miss."""

    def __missing__(self, raw: bytes) -> str:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        s = self[raw] = raw.hex(":")
        return s


_mac_cache: dict[bytes, str] = _MacNames()
_ip4_cache: dict[int, str] = _IPv4Names()
_ip6_cache: dict[bytes, str] = _IPv6Names()


def ip4_str(value: int) -> str:
    """Dotted quad for a 32-bit IPv4 address (cached)."""
    return _ip4_cache[value]


def ip6_str(raw: bytes) -> str:
    """RFC 5952 text for 16 address bytes (cached)."""
    return _ip6_cache[raw]


# ---------------------------------------------------------------------------------------
# Link layers. Each returns (kind, offset, vlan): kind is _IP (an IPv4 dissector: a
# version-4 header, or version 6 handed on as tshark does), _IP6 (IPv6 only) or
# _NONE; offset is where that header starts.
_NONE, _IP, _IP6 = 0, 4, 6
_NOT_IP = (_NONE, 0, None)
_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))
_SNAP_ETHERTYPE_OUIS = (b"\x00\x00\x00", b"\x00\x00\xf8")
_PPP_KIND = {0x0021: _IP, 0x0057: _IP6}
_PPP_MPLS = (0x0281, 0x0283)
_ARISTA_TS = {0x10: 8, 0x20: 6}
_BSD_AF = {2: _IP, 24: _IP6, 28: _IP6, 30: _IP6}


def _mpls(data: bytes, off: int, n: int, vlan: int | None) -> tuple[int, int, int | None]:
    for _ in range(MAX_MPLS_LABELS):
        if off + 4 > n:
            return _NONE, off, vlan
        word = _U32(data, off)[0]
        off += 4
        if word & 0x100:  # bottom of stack
            label = word >> 12
            if label == 0:  # IPv4 explicit null
                return _IP, off, vlan
            if label == 2:  # IPv6 explicit null
                return _IP6, off, vlan
            if off >= n:
                return _NONE, off, vlan
            nibble = data[off] >> 4
            if nibble == 4:
                return _IP, off, vlan
            if nibble == 6:
                return _IP6, off, vlan
            return _NONE, off, vlan
    return _NONE, off, vlan


def _ethertype(data: bytes, off: int, etype: int, n: int, vlan: int | None) -> tuple[int, int, int | None]:
    """Follow an ethertype (and the wrappers it names) to an IP header."""
    for _ in range(MAX_LINK_DEPTH):
        if etype == 0x0800:
            return _IP, off, vlan
        if etype == 0x86DD:
            return _IP6, off, vlan
        if etype in _VLAN_TPIDS:
            if off + 4 > n:
                return _NONE, off, vlan
            tci, etype = _HH(data, off)
            if vlan is None:
                vlan = tci & 0x0FFF
            off += 4
        elif etype == 0x8847 or etype == 0x8848:
            return _mpls(data, off, n, vlan)
        elif etype == 0x88E5:  # MACsec: look through only when integrity-only (E and C clear)
            if off + 8 > n or data[off] & 0x0C:
                return _NONE, off, vlan
            off += 14 if data[off] & 0x20 else 6  # SecTAG, with the 8-byte SCI when SC is set
            if off + 2 > n:
                return _NONE, off, vlan
            etype = _U16(data, off)[0]
            off += 2
        elif etype == 0x8903:  # Cisco FabricPath: FTAG/TTL, then a whole inner Ethernet header
            if off + 16 > n:
                return _NONE, off, vlan
            etype = _U16(data, off + 14)[0]
            off += 16
        elif etype == 0xD28B:  # Arista vendor-specific: subtype 1 = timestamp, 64 or 48 bits
            if off + 4 > n:
                return _NONE, off, vlan
            subtype, version = _HH(data, off)
            size = _ARISTA_TS.get(version & 0xFF) if subtype == 1 else None
            if size is None or off + 4 + size + 2 > n:
                return _NONE, off, vlan
            etype = _U16(data, off + 4 + size)[0]
            off += 6 + size
        elif etype == 0x894F:  # Network Service Header: length in 4-byte words, next protocol
            if off + 8 > n:
                return _NONE, off, vlan
            size = (data[off + 1] & 0x3F) * 4
            nxt = data[off + 3]
            if size < 8:
                return _NONE, off, vlan
            off += size
            if nxt == 1:
                return _IP, off, vlan
            if nxt == 2:
                return _IP6, off, vlan
            if nxt == 5:
                return _mpls(data, off, n, vlan)
            if nxt != 3 or off + 14 > n:  # 3: a whole Ethernet frame follows
                return _NONE, off, vlan
            etype = _U16(data, off + 12)[0]
            off += 14
        elif etype == 0x8864:  # PPPoE session: ver/type, code, session id, length, PPP protocol
            if off + 8 > n:
                return _NONE, off, vlan
            proto = _U16(data, off + 6)[0]
            off += 8
            kind = _PPP_KIND.get(proto)
            if kind is not None:
                return kind, off, vlan
            if proto in _PPP_MPLS:
                return _mpls(data, off, n, vlan)
            return _NONE, off, vlan
        elif etype <= 1500:  # an 802.3 length: LLC, maybe SNAP with an ethertype
            if off + 8 > n or data[off:off + 3] != b"\xaa\xaa\x03" or data[off + 3:off + 6] not in _SNAP_ETHERTYPE_OUIS:
                return _NONE, off, vlan
            etype = _U16(data, off + 6)[0]
            off += 8
        else:
            return _NONE, off, vlan
    return _NONE, off, vlan


def _ppp(data: bytes, off: int, n: int) -> tuple[int, int, int | None]:
    if off + 4 <= n and data[off] in (0x0F, 0x8F) and data[off + 1] == 0:
        # a Cisco HDLC frame on a PPP link (address 0x0f/0x8f), as tshark recognises it
        return _ethertype(data, off + 4, _U16(data, off + 2)[0], n, None)
    if data[off:off + 2] == b"\xff\x03":
        off += 2
    if off >= n:
        return _NOT_IP
    if data[off] & 1:  # protocol-field compression: a one-byte protocol
        proto = data[off]
        off += 1
    elif off + 2 <= n:
        proto = _U16(data, off)[0]
        off += 2
    else:
        return _NOT_IP
    kind = _PPP_KIND.get(proto)
    if kind is not None:
        return kind, off, None
    if proto in _PPP_MPLS:
        return _mpls(data, off, n, None)
    return _NOT_IP


def _null(data: bytes, n: int, byte_order_known: bool) -> tuple[int, int, int | None]:
    if n < 4:
        return _NOT_IP
    if byte_order_known:  # LOOP: network byte order
        family = _U32(data, 0)[0]
    else:
        if data[:2] == b"\xff\x03":  # PPP in HDLC-like framing, as tshark's null dissector checks
            return _ppp(data, 0, n)
        family = _U32LE(data, 0)[0]  # host byte order of the writer: either
        if family & 0xFFFF0000:
            family = _U32(data, 0)[0]
        if family > 1500:  # some writers put an ethertype here
            return _ethertype(data, 4, family, n, None)
    kind = _BSD_AF.get(family)
    return (kind, 4, None) if kind is not None else _NOT_IP


def _link(linktype: int, data: bytes, n: int) -> tuple[int, int, int | None]:
    if linktype == _lt.EN10MB:
        if n < 14:
            return _NOT_IP
        return _ethertype(data, 14, _U16(data, 12)[0], n, None)
    if linktype in (_lt.RAW, _lt.RAW_OPENBSD, _lt.RAW_LINUX, _lt.IPV4):
        return _IP, 0, None
    if linktype == _lt.IPV6:
        return _IP6, 0, None
    if linktype == _lt.LINUX_SLL or linktype == _lt.LINUX_SLL2:
        if linktype == _lt.LINUX_SLL:
            if n < 16:
                return _NOT_IP
            hatype, proto, off = _U16(data, 2)[0], _U16(data, 14)[0], 16
        else:
            if n < 20:
                return _NOT_IP
            hatype, proto, off = _U16(data, 8)[0], _U16(data, 0)[0], 20
        if hatype == 824:  # ARPHRD_NETLINK: the protocol is a netlink family
            return _NOT_IP
        if proto == 0x0004:  # ETH_P_802_2: an LLC header follows
            return _ethertype(data, off, 0, n, None)
        if proto <= 1500:
            return _NOT_IP
        return _ethertype(data, off, proto, n, None)
    if linktype == _lt.NULL:
        return _null(data, n, False)
    if linktype == _lt.LOOP:
        return _null(data, n, True)
    if linktype == _lt.PPP or linktype == _lt.PPP_HDLC:
        return _ppp(data, 0, n)
    if linktype == _lt.C_HDLC:
        if n < 4:
            return _NOT_IP
        return _ethertype(data, 4, _U16(data, 2)[0], n, None)
    return _NOT_IP


def link_info(linktype: int, data: bytes) -> tuple[int, int, int | None]:
    """Where the IP header of a packet starts: ``(ip_version_hint, offset, vlan)``.

    ``ip_version_hint`` is 0 when the link layer carries no IP, 4 when it names IPv4
    (a version-6 header there is still IPv6), 6 when it names IPv6.
    """
    try:
        return _link(linktype, data, len(data))
    except (IndexError, struct.error):  # pragma: no cover - bounds are checked above
        return _NOT_IP


# ---------------------------------------------------------------------------------------
# IP and transport.
_PORTED = frozenset((6, 17, 132))
_V6_EXT = frozenset((0, 43, 44, 60, 51))


# decode()'s keys, all None but the payload; from the one field table
_BLANK = dict.fromkeys(_schema.DECODED)
_BLANK["payload"] = b""
_blank = _BLANK.copy  # a copy of a template is cheaper than a 21-key display


def _transport(rec: dict, data: bytes, l4: int, limit: int, proto: int) -> None:
    """Fill ports, TCP and ICMP fields and the payload from the transport at l4."""
    if proto in _PORTED:
        if l4 + 4 <= limit:
            rec["src_port"], rec["dst_port"] = _HH(data, l4)
        if proto == 6:
            if l4 + 20 <= limit:
                _, _, seq, ack, hl, flags, win = _TCP(data, l4)
                rec["tcp_seq"], rec["tcp_ack"], rec["tcp_window"] = seq, ack, win
                rec["tcp_flags"] = flags | (hl & 1) << 8
                hlen = (hl >> 4) * 4
                if hlen >= 20:
                    rec["payload"] = data[l4 + hlen:limit]
            return
        if proto == 17:
            if l4 + 6 <= limit:
                # a UDP length shorter than the IP payload ends the datagram early
                ulen = _U16(data, l4 + 4)[0]
                if 8 <= ulen and l4 + ulen < limit:
                    limit = l4 + ulen
            rec["payload"] = data[l4 + 8:limit]
            return
    elif proto == 1 or proto == 58:
        if l4 + 2 <= limit:
            rec["icmp_type"], rec["icmp_code"] = data[l4], data[l4 + 1]
    rec["payload"] = data[l4:limit]


def _ipv4(data: bytes, off: int, n: int, reported: int) -> dict | None:
    if off + 20 > n:
        return None
    vihl, total, ident, frag, ttl, proto, src, dst = _IPV4_HDR(data, off)
    ihl = (vihl & 15) * 4
    if ihl < 20:
        return None
    if total == 0:  # TCP segmentation offload: the length was never filled in
        end = reported
    elif total < ihl:
        return None
    else:
        end = off + total
    rec = _blank()
    rec["src_host"] = _ip4_cache[src]
    rec["dst_host"] = _ip4_cache[dst]
    rec["ip_version"] = 4
    rec["ttl"] = ttl
    rec["ip_id"] = ident
    rec["ip_proto"] = proto
    rec["ip_length"] = total
    rec["protocol"] = _PROTO_NAMES[proto]
    limit = end if end < n else n
    l4 = off + ihl
    if frag & 0x3FFF:
        rec["fragment"] = (bool(frag & 0x2000), (frag & 0x1FFF) * 8)
        if frag & 0x1FFF:  # not the first fragment: no transport header here
            rec["payload"] = data[l4:limit]
            return rec
    _transport(rec, data, l4, limit, proto)
    return rec


def _ipv6(data: bytes, off: int, n: int, reported: int) -> dict | None:
    if off + 40 > n:
        return None
    plen, nxt, hlim = _IPV6_HDR(data, off)
    # payload length 0 with a hop-by-hop header is a jumbogram (or offload): to the end
    end = off + 40 + plen if plen or nxt != 0 else reported
    limit = end if end < n else n
    rec = _blank()
    rec["src_host"] = _ip6_cache[data[off + 8:off + 24]]
    rec["dst_host"] = _ip6_cache[data[off + 24:off + 40]]
    rec["ip_version"] = 6
    rec["ttl"] = hlim
    rec["ip_length"] = plen + 40
    p = off + 40
    later_fragment = False
    for _ in range(MAX_IPV6_EXTENSIONS):
        if nxt not in _V6_EXT:
            break
        if p + 8 > limit:
            # cut short: its next-header byte still names what follows (as tshark
            # reads it), except for a fragment header, which is only meaningful whole
            if nxt != 44 and p < limit:
                nxt = data[p]
            rec["ip_proto"] = nxt
            rec["protocol"] = _PROTO_NAMES[nxt]
            return rec  # nothing after the chain was captured
        if nxt == 44:
            word = _U16(data, p + 2)[0]
            rec["fragment"] = (bool(word & 1), word & 0xFFF8)
            rec["ip_id"] = _U32(data, p + 4)[0]
            later_fragment = later_fragment or bool(word & 0xFFF8)
            size = 8
        elif nxt == 51:
            size = (data[p + 1] + 2) * 4
        else:
            size = (data[p + 1] + 1) * 8
        nxt = data[p]
        p += size
    rec["ip_proto"] = nxt
    rec["protocol"] = _PROTO_NAMES[nxt]
    if later_fragment:
        rec["payload"] = data[p:limit]
        return rec
    _transport(rec, data, p, limit, nxt)
    return rec


def _ip(data: bytes, kind: int, off: int, n: int, reported: int) -> dict | None:
    if off >= n:
        return None
    version = data[off] >> 4
    if version == 4 and kind == _IP:
        return _ipv4(data, off, n, reported)
    if version == 6:
        return _ipv6(data, off, n, reported)
    return None


def decode(linktype: int, data: bytes, length: int | None = None) -> dict | None:
    """Decode one packet; None when it has no IP layer. See the module docstring for the keys.

    ``length`` is the packet's original length on the wire; it bounds an IP header
    whose length field is 0 (segmentation offload). Never raises on any bytes.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    try:
        kind, off, vlan = _link(linktype, data, n)
        if kind == _NONE:
            return None
        rec = _ip(data, kind, off, n, n if length is None or length < n else length)
    except (IndexError, struct.error):  # pragma: no cover - every read is bounds-checked
        return None
    if rec is None:
        return None
    if linktype == _lt.EN10MB:
        rec["eth_dst"] = _mac_cache[data[0:6]]
        rec["eth_src"] = _mac_cache[data[6:12]]
    rec["vlan"] = vlan
    return rec
