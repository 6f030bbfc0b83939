# Packet and capture-file builders: valid packets by default, any field overridable.
#
# Strategy: a packet is a ``Stack``, a flat list of layer objects and raw bytes made
# with ``/`` (``ether() / ipv4() / udp() / b"data"``). Nothing is encoded until
# ``bytes(stack)``: the stack is encoded from the innermost layer outwards, so every
# layer sees the bytes it carries (for lengths and checksums), the layer right above
# it (for its type / next-protocol field) and the IP layer below it (for the
# pseudo-header). Every computed field is a keyword that defaults to None, meaning
# "compute it"; passing a value writes that value as given, which is how deliberately
# wrong packets are made. ``Stack.fields()`` gives the decoded fields a correct
# decoder must find (the keys of purepcap.headers.decode). ``CaptureBuilder`` lays
# packets out in pcap or pcapng through purepcap.format's writers. Standard library
# only: this module is part of the zero-dependency core.
"""Build packets and capture files: correct by default, wrong on request.

Packets are layers joined with ``/``; ``bytes()`` encodes them::

    from purepcap import build

    pkt = (build.ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", vlans=[10])
           / build.ipv4(src="10.0.0.1", dst="10.0.0.2", ttl=3) / build.udp(sport=53, dport=4242) / b"payload")
    frame = bytes(pkt)      # lengths, IHL, checksums and Ethernet padding filled in
    pkt.linktype            # 1 (EN10MB): the outermost layer decides
    pkt.fields()            # what purepcap.headers.decode must return for it

Layers: link ``ether`` (``vlans=`` tags of 0x8100/0x88a8/0x9100, or ``vlan`` layers),
``sll``, ``sll2``, ``null``, ``loop``, ``raw``, ``ppp``, ``chdlc``, ``pppoe``,
``mpls``, ``arp``; ``ipv4`` (options, ``mf``/``offset`` fragments,
``ipv4_fragments()``), ``ipv6`` with ``hop_by_hop``, ``routing``, ``fragment``,
``dest_opts``; ``tcp`` (flags, options), ``udp``, ``icmp``, ``icmpv6``, ``igmp``,
``sctp``, ``gre``. Every computed field (``length``, ``ihl``, ``dataofs``,
``checksum``, ``proto``, ``nh``, ``type``, ...) is a keyword defaulting to None;
give a value and exactly that value is written.

Capture files: ``CaptureBuilder("pcap" | "pcapng", byte_order=, resolution=,
snaplen=)`` with ``add(packet, time_ns)``, pcapng ``interface()`` and
``section()``; ``bytes(builder)`` is the file, ``builder.packets()`` the Packets a
reader must return and ``builder.records()`` their decoded fields. ``capture()``
does it in one call.
"""
from __future__ import annotations

import io
import ipaddress
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from . import _schema, linktypes
from .format import NS, Packet, PcapngWriter, PcapWriter

__all__ = [
    "Layer", "Stack", "CaptureBuilder", "checksum",
    "Ether", "Vlan", "SLL", "SLL2", "Null", "Loop", "Raw", "PPP", "CHDLC", "PPPoE", "MPLS", "ARP",
    "IPv4", "IPv6", "HopByHop", "Routing", "Fragment", "DestOpts", "TCP", "UDP", "ICMP", "ICMPv6",
    "IGMP", "GRE", "SCTP",
    "ether", "vlan", "sll", "sll2", "null", "loop", "raw", "ppp", "chdlc", "pppoe", "mpls", "arp",
    "ipv4", "ipv6", "hop_by_hop", "routing", "fragment", "dest_opts", "tcp", "udp", "icmp",
    "icmpv6", "igmp", "gre", "sctp", "capture", "ipv4_fragments", "mac", "mac_str", "crc32c", "TCP_FLAGS",
    "PROTOCOL_NAMES", "DECODED_KEYS",
]

ETH_MIN = 60  # smallest Ethernet frame without its FCS
TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}
# Names of the IP protocols this module can build, as purepcap.headers names them.
PROTOCOL_NAMES = {1: "icmp", 2: "igmp", 4: "ipv4", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre",
                  58: "icmpv6", 132: "sctp"}
# What purepcap.headers.decode returns, in its order (from the one field table).
DECODED_KEYS = _schema.DECODED
EXPERIMENTAL_PROTO = 253  # RFC 3692: IP protocol used when raw bytes follow an IP header
EXPERIMENTAL_ETHERTYPE = 0x88B5  # IEEE 802 local experimental ethertype, for raw bytes after a link layer

_AF_INET = 2
_AF_INET6_BSD = 24  # NetBSD/OpenBSD value; FreeBSD uses 28, macOS 30, all decoded alike

_u16 = struct.Struct("!H")
_u32 = struct.Struct("!I")


# -- small helpers ------------------------------------------------------------------------
def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The Internet checksum (RFC 1071) of ``data``, ones' complement of the folded sum."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac(value: str | bytes | int) -> bytes:
    """Six bytes from "aa:bb:cc:dd:ee:ff" (or "-" separated), bytes, or an int."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 6:
            raise ValueError(f"a MAC address has 6 bytes, not {len(value)}")
        return bytes(value)
    if isinstance(value, int):
        return value.to_bytes(6, "big")
    parts = value.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {value!r}")
    return bytes(int(p, 16) for p in parts)


def mac_str(value: bytes) -> str:
    return ":".join(f"{b:02x}" for b in value)


def _ip4(value: str | bytes | int | ipaddress.IPv4Address) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 4:
            raise ValueError(f"an IPv4 address has 4 bytes, not {len(value)}")
        return bytes(value)
    return ipaddress.IPv4Address(value).packed


def _ip6(value: str | bytes | int | ipaddress.IPv6Address) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 16:
            raise ValueError(f"an IPv6 address has 16 bytes, not {len(value)}")
        return bytes(value)
    return ipaddress.IPv6Address(value).packed


def _pad(data: bytes, unit: int, fill: bytes = b"\x00") -> bytes:
    return data + fill * (-len(data) % unit)


# -- layers and stacks --------------------------------------------------------------------
class Layer:
    """One protocol header. Combine with ``/``; ``bytes()`` encodes the whole stack.

    Class attributes say how the layer below names this one: ``ethertype`` (in an
    Ethernet, VLAN, SLL, PPPoE or GRE type field), ``ipproto`` (in an IP protocol or
    IPv6 next-header field) and ``family`` (in a NULL or LOOP header).
    """

    ethertype: int | None = None
    ipproto: int | None = None
    family: int | None = None  # BSD address family for NULL / LOOP
    linktype: int | None = None  # the link type when this layer is outermost

    def __truediv__(self, other: Layer | Stack | bytes) -> Stack:
        return Stack([self]) / other

    def __rtruediv__(self, other: bytes) -> Stack:
        return Stack([other, self])

    def __bytes__(self) -> bytes:
        return bytes(Stack([self]))

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if v is not None)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]


class Stack:
    """A packet: layers (and raw bytes) from the outermost inwards."""

    __slots__ = ("layers",)

    def __init__(self, layers: Iterable[Layer | bytes]) -> None:
        self.layers: list[Layer | bytes] = []
        for item in layers:
            self._add(item)

    def _add(self, item: Layer | Stack | bytes | bytearray | memoryview) -> None:
        if isinstance(item, Stack):
            for sub in item.layers:
                self._add(sub)
        elif isinstance(item, Layer):
            self.layers.append(item)
        elif isinstance(item, (bytes, bytearray, memoryview)):
            if self.layers and isinstance(self.layers[-1], bytes):
                self.layers[-1] += bytes(item)
            else:
                self.layers.append(bytes(item))
        else:
            raise TypeError(f"cannot stack a {type(item).__name__} on a packet (layers or bytes only)")

    def __truediv__(self, other: Layer | Stack | bytes) -> Stack:
        new = Stack(self.layers)
        new._add(other)
        return new

    def __rtruediv__(self, other: bytes) -> Stack:
        return Stack([other, *self.layers])

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        return " / ".join(repr(x) for x in self.layers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stack) and self.layers == other.layers

    __hash__ = None  # type: ignore[assignment]

    def __getitem__(self, key: int | type) -> Any:
        """``stack[0]`` by position, ``stack[TCP]`` the first layer of that type."""
        if isinstance(key, type):
            for layer in self.layers:
                if isinstance(layer, key):
                    return layer
            raise KeyError(key.__name__)
        return self.layers[key]

    def has(self, cls: type) -> bool:
        return any(isinstance(x, cls) for x in self.layers)

    # -- encoding -------------------------------------------------------------------
    def __bytes__(self) -> bytes:
        return self.encode()[0]

    def build(self) -> bytes:
        return bytes(self)

    def encode(self) -> tuple[bytes, list[int]]:
        """The packet's bytes and the offset at which each layer starts."""
        data = b""
        sizes = []
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            before = len(data)
            data = layer if isinstance(layer, bytes) else layer.encode(data, self, i)
            sizes.append(len(data) - before)
        # Offsets: layer i starts where the bytes of layers 0..i-1 end. Trailers
        # (Ethernet padding and FCS) only ever come from layer 0, so headers are prefixes.
        offsets = []
        pos = 0
        for i, layer in enumerate(self.layers):
            offsets.append(pos)
            pos += len(layer) if isinstance(layer, bytes) else layer.header_length(self, i, data, pos)
        return data, offsets

    @property
    def linktype(self) -> int:
        """The capture link type for this packet: that of its outermost layer."""
        first = self.layers[0] if self.layers else None
        lt = getattr(first, "linktype", None)
        if lt is None:
            raise ValueError(f"a packet starting with {type(first).__name__} has no link type; "
                             "pass linktype= when writing it")
        return lt

    def next_layer(self, index: int) -> Layer | bytes | None:
        return self.layers[index + 1] if index + 1 < len(self.layers) else None

    def ip_below(self, index: int) -> IPv4 | IPv6 | None:
        for j in range(index - 1, -1, -1):
            layer = self.layers[j]
            if isinstance(layer, (IPv4, IPv6)):
                return layer
        return None

    def final_destination(self, index: int, ip: IPv6) -> bytes:
        """IPv6 pseudo-header destination: the last hop of a routing header in use."""
        dst = _ip6(ip.dst)
        start = self.layers.index(ip)
        for j in range(start + 1, index):
            layer = self.layers[j]
            if isinstance(layer, Routing) and layer.segleft_value() > 0 and layer.addresses:
                if layer.type == 4:  # segment routing lists the final segment first
                    dst = _ip6(layer.addresses[0])
                elif layer.type in (0, 2):
                    dst = _ip6(layer.addresses[-1])
        return dst

    def pseudo_header_sum(self, index: int, proto: int, length: int) -> int:
        """Sum of the IPv4 or IPv6 pseudo-header for the transport at ``index``."""
        ip = self.ip_below(index)
        if ip is None:
            return 0
        if isinstance(ip, IPv4):
            ph = _ip4(ip.src) + _ip4(ip.dst) + struct.pack("!BBH", 0, proto, length)
        else:
            ph = _ip6(ip.src) + self.final_destination(index, ip) + struct.pack("!IxxxB", length, proto)
        return sum(struct.unpack(f"!{len(ph) // 2}H", ph))

    # -- expected decoding -----------------------------------------------------------
    def fields(self, caplen: int | None = None) -> dict | None:
        """What purepcap.headers.decode must return for this packet (None: no IP layer).

        With ``caplen`` the packet is taken as cut short to that many bytes, as a
        capture with a small snaplen records it.
        """
        return _expected_fields(self, caplen)


def _next_type(stack: Stack, index: int, attr: str, default: int) -> int:
    nxt = stack.next_layer(index)
    if nxt is None or isinstance(nxt, bytes):
        return default
    value = getattr(nxt, attr, None)
    if value is None:
        raise ValueError(f"{type(stack.layers[index]).__name__} cannot carry {type(nxt).__name__} "
                         f"(no {attr}); set the type field explicitly")
    return value


class _HeaderLayer(Layer):
    """A layer that knows its own header length (for Stack.encode's offsets)."""

    def header_length(self, stack: Stack, index: int, data: bytes, offset: int) -> int:
        return self._hlen(stack, index, data, offset)

    def _hlen(self, stack: Stack, index: int, data: bytes, offset: int) -> int:  # pragma: no cover
        raise NotImplementedError


# -- link layers --------------------------------------------------------------------------
class Vlan(_HeaderLayer):
    """An 802.1Q tag (tpid 0x8100), or 802.1ad (0x88a8) / old QinQ (0x9100)."""

    def __init__(self, vid: int = 1, *, pcp: int = 0, dei: int = 0, tpid: int = 0x8100,
                 type: int | None = None) -> None:
        self.vid, self.pcp, self.dei, self.tpid, self.type = vid, pcp, dei, tpid, type

    @property
    def ethertype(self) -> int:  # type: ignore[override]
        return self.tpid

    def tci(self) -> int:
        return (self.pcp & 7) << 13 | (self.dei & 1) << 12 | (self.vid & 0xFFF)

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        t = self.type if self.type is not None else _next_type(stack, index, "ethertype", EXPERIMENTAL_ETHERTYPE)
        return struct.pack("!HH", self.tci(), t) + payload

    def _hlen(self, stack, index, data, offset):
        return 4


def _vlan(tag: int | Vlan | tuple) -> Vlan:
    if isinstance(tag, Vlan):
        return tag
    if isinstance(tag, tuple):  # (vid, tpid)
        return Vlan(tag[0], tpid=tag[1])
    return Vlan(tag)


class Ether(_HeaderLayer):
    """Ethernet II with any number of VLAN tags, padded to 60 bytes when outermost.

    ``vlans`` lists the tags outermost first: VLAN ids (tpid 0x8100), ``(vid, tpid)``
    pairs or ``Vlan`` objects. ``pad=False`` leaves a short frame short; ``fcs=True``
    appends a correct CRC-32 frame check sequence, ``fcs=b"...."`` a given one.
    """

    linktype = linktypes.EN10MB

    def __init__(self, src: str | bytes = "02:00:00:00:00:01", dst: str | bytes = "02:00:00:00:00:02", *,
                 type: int | None = None, vlans: Sequence[int | Vlan | tuple] = (), pad: bool | int = True,
                 fcs: bool | bytes = False) -> None:
        self.src, self.dst, self.type = src, dst, type
        self.vlans = [_vlan(v) for v in vlans]
        self.pad, self.fcs = pad, fcs

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        t = self.type if self.type is not None else _next_type(stack, index, "ethertype", EXPERIMENTAL_ETHERTYPE)
        head = mac(self.dst) + mac(self.src)
        types = [v.tpid for v in self.vlans] + [t]
        head += _u16.pack(types[0])
        for v, nxt in zip(self.vlans, types[1:], strict=True):
            head += struct.pack("!HH", v.tci(), nxt)
        frame = head + payload
        if index == 0 and self.pad:
            minimum = ETH_MIN if self.pad is True else int(self.pad)
            frame += b"\x00" * (minimum - len(frame)) if len(frame) < minimum else b""
        if index == 0 and self.fcs is not False:
            frame += self.fcs if isinstance(self.fcs, bytes) else struct.pack("<I", zlib.crc32(frame))
        return frame

    def _hlen(self, stack, index, data, offset):
        return 14 + 4 * len(self.vlans)


class SLL(_HeaderLayer):
    """Linux cooked capture v1 (LINKTYPE_LINUX_SLL): 16 bytes."""

    linktype = linktypes.LINUX_SLL

    def __init__(self, *, pkttype: int = 0, hatype: int = 1, addr: str | bytes = "02:00:00:00:00:01",
                 halen: int | None = None, protocol: int | None = None) -> None:
        self.pkttype, self.hatype, self.addr, self.halen, self.protocol = pkttype, hatype, addr, halen, protocol

    def _addr(self) -> tuple[int, bytes]:
        a = mac(self.addr) if isinstance(self.addr, str) else bytes(self.addr)
        return (len(a) if self.halen is None else self.halen), (a + b"\x00" * 8)[:8]

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        p = self.protocol if self.protocol is not None else _next_type(stack, index, "ethertype", EXPERIMENTAL_ETHERTYPE)
        halen, addr = self._addr()
        return struct.pack("!HHH8sH", self.pkttype, self.hatype, halen, addr, p) + payload

    def _hlen(self, stack, index, data, offset):
        return 16


class SLL2(SLL):
    """Linux cooked capture v2 (LINKTYPE_LINUX_SLL2): 20 bytes, with the interface index."""

    linktype = linktypes.LINUX_SLL2

    def __init__(self, *, ifindex: int = 1, pkttype: int = 0, hatype: int = 1,
                 addr: str | bytes = "02:00:00:00:00:01", halen: int | None = None,
                 protocol: int | None = None) -> None:
        super().__init__(pkttype=pkttype, hatype=hatype, addr=addr, halen=halen, protocol=protocol)
        self.ifindex = ifindex

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        p = self.protocol if self.protocol is not None else _next_type(stack, index, "ethertype", EXPERIMENTAL_ETHERTYPE)
        halen, addr = self._addr()
        return struct.pack("!HHIHBB8s", p, 0, self.ifindex, self.hatype, self.pkttype, halen, addr) + payload

    def _hlen(self, stack, index, data, offset):
        return 20


class Null(_HeaderLayer):
    """BSD loopback (LINKTYPE_NULL): a 4-byte address family in the writer's byte order."""

    linktype = linktypes.NULL

    def __init__(self, family: int | None = None, *, byte_order: str = "little") -> None:
        self.family_value, self.byte_order = family, byte_order

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        fam = self.family_value if self.family_value is not None else _next_type(stack, index, "family", 0)
        return fam.to_bytes(4, self.byte_order) + payload

    def _hlen(self, stack, index, data, offset):
        return 4


class Loop(Null):
    """OpenBSD loopback (LINKTYPE_LOOP): the address family in network byte order."""

    linktype = linktypes.LOOP

    def __init__(self, family: int | None = None) -> None:
        super().__init__(family, byte_order="big")


class Raw(_HeaderLayer):
    """No link header at all: the IP packet is the frame (LINKTYPE_RAW, or IPV4/IPV6)."""

    def __init__(self, linktype: int = linktypes.RAW) -> None:
        self.linktype = linktype  # type: ignore[misc]

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        return payload

    def _hlen(self, stack, index, data, offset):
        return 0


class PPP(_HeaderLayer):
    """PPP (LINKTYPE_PPP), with the ff 03 address and control bytes unless ``hdlc=False``."""

    linktype = linktypes.PPP
    _PROTO = {0x0800: 0x0021, 0x86DD: 0x0057, 0x8847: 0x0281}

    def __init__(self, protocol: int | None = None, *, hdlc: bool = True) -> None:
        self.protocol, self.hdlc = protocol, hdlc

    def _proto(self, stack: Stack, index: int) -> int:
        if self.protocol is not None:
            return self.protocol
        et = _next_type(stack, index, "ethertype", 0)
        return self._PROTO.get(et, 0x0001)  # 0x0001: "padding protocol", a harmless stand-in

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        return (b"\xff\x03" if self.hdlc else b"") + _u16.pack(self._proto(stack, index)) + payload

    def _hlen(self, stack, index, data, offset):
        return 4 if self.hdlc else 2


class CHDLC(_HeaderLayer):
    """Cisco HDLC (LINKTYPE_C_HDLC): address, control, then an ethertype."""

    linktype = linktypes.C_HDLC

    def __init__(self, *, address: int = 0x0F, type: int | None = None) -> None:
        self.address, self.type = address, type

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        t = self.type if self.type is not None else _next_type(stack, index, "ethertype", EXPERIMENTAL_ETHERTYPE)
        return struct.pack("!BBH", self.address, 0, t) + payload

    def _hlen(self, stack, index, data, offset):
        return 4


class PPPoE(PPP):
    """A PPPoE session header (ethertype 0x8864) with its PPP protocol field."""

    ethertype = 0x8864
    linktype = None

    def __init__(self, session: int = 1, *, protocol: int | None = None, length: int | None = None,
                 code: int = 0) -> None:
        super().__init__(protocol, hdlc=False)
        self.session, self.length, self.code = session, length, code

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        n = len(payload) + 2 if self.length is None else self.length
        return struct.pack("!BBHHH", 0x11, self.code, self.session, n, self._proto(stack, index)) + payload

    def _hlen(self, stack, index, data, offset):
        return 8


class MPLS(_HeaderLayer):
    """One MPLS label stack entry; bottom-of-stack is set unless another MPLS follows."""

    ethertype = 0x8847

    def __init__(self, label: int = 16, *, tc: int = 0, ttl: int = 64, bos: bool | None = None) -> None:
        self.label, self.tc, self.ttl, self.bos = label, tc, ttl, bos

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        bos = self.bos if self.bos is not None else not isinstance(stack.next_layer(index), MPLS)
        return _u32.pack((self.label & 0xFFFFF) << 12 | (self.tc & 7) << 9 | int(bos) << 8 | (self.ttl & 0xFF)) + payload

    def _hlen(self, stack, index, data, offset):
        return 4


class ARP(_HeaderLayer):
    """ARP for IPv4 over Ethernet (op 1 request, 2 reply)."""

    ethertype = 0x0806

    def __init__(self, *, op: int = 1, sha: str | bytes = "02:00:00:00:00:01", spa: str = "10.0.0.1",
                 tha: str | bytes = "00:00:00:00:00:00", tpa: str = "10.0.0.2") -> None:
        self.op, self.sha, self.spa, self.tha, self.tpa = op, sha, spa, tha, tpa

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        return (struct.pack("!HHBBH", 1, 0x0800, 6, 4, self.op) + mac(self.sha) + _ip4(self.spa)
                + mac(self.tha) + _ip4(self.tpa) + payload)

    def _hlen(self, stack, index, data, offset):
        return 28


# -- IP ------------------------------------------------------------------------------------
class IPv4(_HeaderLayer):
    """IPv4. ``offset`` is the fragment offset in bytes (a multiple of 8).

    Computed unless given: ``ihl`` (from the options, padded to 4 bytes), ``length``
    (total length), ``proto`` (from the layer above) and ``checksum``.
    """

    ethertype = 0x0800
    ipproto = 4
    family = _AF_INET
    linktype = linktypes.RAW

    def __init__(self, src: str | bytes = "10.0.0.1", dst: str | bytes = "10.0.0.2", *, ttl: int = 64,
                 id: int = 0, tos: int = 0, df: bool = False, mf: bool = False, offset: int = 0,
                 evil: bool = False, proto: int | None = None, options: bytes = b"",
                 ihl: int | None = None, length: int | None = None, checksum: int | None = None,
                 version: int = 4) -> None:
        if offset % 8 or not 0 <= offset <= 0x1FFF * 8:
            raise ValueError(f"IPv4 fragment offset {offset} is not a multiple of 8 in 0..65528")
        self.src, self.dst, self.ttl, self.id, self.tos = src, dst, ttl, id, tos
        self.df, self.mf, self.offset, self.evil, self.proto = df, mf, offset, evil, proto
        self.options, self.ihl, self.length, self.checksum, self.version = options, ihl, length, checksum, version

    def proto_value(self, stack: Stack, index: int) -> int:
        return self.proto if self.proto is not None else _next_type(stack, index, "ipproto", EXPERIMENTAL_PROTO)

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        opts = _pad(self.options, 4)
        ihl = (20 + len(opts)) // 4 if self.ihl is None else self.ihl
        total = 20 + len(opts) + len(payload) if self.length is None else self.length
        flags = (self.evil << 15) | (self.df << 14) | (self.mf << 13) | (self.offset // 8)
        head = struct.pack("!BBHHHBBH4s4s", (self.version & 0xF) << 4 | (ihl & 0xF), self.tos, total & 0xFFFF,
                           self.id, flags, self.ttl, self.proto_value(stack, index), 0, _ip4(self.src),
                           _ip4(self.dst)) + opts
        c = checksum(head) if self.checksum is None else self.checksum
        return head[:10] + _u16.pack(c) + head[12:] + payload

    def _hlen(self, stack, index, data, offset):
        return 20 + len(_pad(self.options, 4))


class IPv6(_HeaderLayer):
    """IPv6. ``plen`` (payload length) and ``nh`` (next header) are computed unless given."""

    ethertype = 0x86DD
    ipproto = 41
    family = _AF_INET6_BSD
    linktype = linktypes.RAW

    def __init__(self, src: str | bytes = "fd00::1", dst: str | bytes = "fd00::2", *, hlim: int = 64,
                 tc: int = 0, flow: int = 0, nh: int | None = None, plen: int | None = None,
                 version: int = 6) -> None:
        self.src, self.dst, self.hlim, self.tc, self.flow = src, dst, hlim, tc, flow
        self.nh, self.plen, self.version = nh, plen, version

    @property
    def ttl(self) -> int:
        return self.hlim

    def nh_value(self, stack: Stack, index: int) -> int:
        return self.nh if self.nh is not None else _next_type(stack, index, "ipproto", EXPERIMENTAL_PROTO)

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        plen = len(payload) if self.plen is None else self.plen
        first = (self.version & 0xF) << 28 | (self.tc & 0xFF) << 20 | (self.flow & 0xFFFFF)
        return struct.pack("!IHBB16s16s", first, plen & 0xFFFF, self.nh_value(stack, index), self.hlim,
                           _ip6(self.src), _ip6(self.dst)) + payload

    def _hlen(self, stack, index, data, offset):
        return 40


class _ExtHeader(_HeaderLayer):
    """An IPv6 extension header: next header, then a length in 8-byte units beyond the first 8."""

    nh: int | None = None
    hdrlen: int | None = None

    def nh_value(self, stack: Stack, index: int) -> int:
        return self.nh if self.nh is not None else _next_type(stack, index, "ipproto", EXPERIMENTAL_PROTO)

    def body(self) -> bytes:
        raise NotImplementedError

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        body = self.body()
        n = (len(body) + 2) // 8 - 1 if self.hdrlen is None else self.hdrlen
        return struct.pack("!BB", self.nh_value(stack, index), n) + body + payload

    def _hlen(self, stack, index, data, offset):
        return (data[offset + 1] + 1) * 8 if offset + 1 < len(data) else 8


class _Options(_ExtHeader):
    def __init__(self, options: bytes = b"", *, nh: int | None = None, hdrlen: int | None = None) -> None:
        self.options, self.nh, self.hdrlen = options, nh, hdrlen

    def body(self) -> bytes:
        body = self.options
        gap = -(len(body) + 2) % 8
        if gap == 1:
            body += b"\x00"  # Pad1
        elif gap:
            body += bytes([1, gap - 2]) + b"\x00" * (gap - 2)  # PadN
        return body


class HopByHop(_Options):
    """Hop-by-hop options (next header 0), padded with Pad1/PadN to 8 bytes."""

    ipproto = 0


class DestOpts(_Options):
    """Destination options (next header 60), padded with Pad1/PadN to 8 bytes."""

    ipproto = 60


class Routing(_ExtHeader):
    """A routing header (43). Types 0 and 2 list addresses after 4 reserved bytes."""

    ipproto = 43

    def __init__(self, addresses: Sequence[str | bytes] = (), *, type: int = 0, segleft: int | None = 0,
                 data: bytes | None = None, nh: int | None = None, hdrlen: int | None = None) -> None:
        self.addresses, self.type, self.segleft = list(addresses), type, segleft
        self.data, self.nh, self.hdrlen = data, nh, hdrlen

    def segleft_value(self) -> int:
        return len(self.addresses) if self.segleft is None else self.segleft

    def body(self) -> bytes:
        if self.data is not None:
            rest = self.data + b"\x00" * (-(len(self.data) + 4) % 8)
        elif self.type == 4:  # segment routing header: last entry, flags, tag
            rest = struct.pack("!BBH", max(len(self.addresses) - 1, 0), 0, 0) + b"".join(_ip6(a) for a in self.addresses)
        else:
            rest = b"\x00" * 4 + b"".join(_ip6(a) for a in self.addresses)
        return struct.pack("!BB", self.type, self.segleft_value()) + rest


class Fragment(_ExtHeader):
    """The IPv6 fragment header (44). ``offset`` in bytes, a multiple of 8."""

    ipproto = 44

    def __init__(self, offset: int = 0, *, m: bool = False, id: int = 0, nh: int | None = None) -> None:
        if offset % 8 or not 0 <= offset <= 0x1FFF * 8:
            raise ValueError(f"IPv6 fragment offset {offset} is not a multiple of 8 in 0..65528")
        self.offset, self.m, self.id, self.nh = offset, m, id, nh

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        return struct.pack("!BBHI", self.nh_value(stack, index), 0, self.offset | int(self.m), self.id) + payload

    def _hlen(self, stack, index, data, offset):
        return 8


_EXT_HEADERS = (HopByHop, Routing, Fragment, DestOpts)


# -- transports -----------------------------------------------------------------------------
def _tcp_flags(flags: int | str) -> int:
    if isinstance(flags, int):
        return flags
    value = 0
    for ch in flags.upper():
        if ch not in TCP_FLAGS:
            raise ValueError(f"unknown TCP flag {ch!r} in {flags!r} (use F S R P A U E C)")
        value |= TCP_FLAGS[ch]
    return value


_TCP_OPTION_KINDS = {"eol": 0, "nop": 1, "mss": 2, "wscale": 3, "sackok": 4, "sack": 5, "timestamp": 8}


def _tcp_options(options: bytes | Sequence) -> bytes:
    if isinstance(options, (bytes, bytearray)):
        return bytes(options)
    out = b""
    for opt in options:
        if isinstance(opt, str):
            opt = (opt, None)
        kind, value = opt
        kind = _TCP_OPTION_KINDS[kind] if isinstance(kind, str) else kind
        if kind in (0, 1):
            out += bytes([kind])
            continue
        if kind == 2:
            value = _u16.pack(value)
        elif kind == 3:
            value = bytes([value])
        elif kind == 8:
            value = struct.pack("!II", *value)
        elif kind == 5:
            value = b"".join(struct.pack("!II", a, b) for a, b in value)
        elif value is None:
            value = b""
        out += bytes([kind, len(value) + 2]) + value
    return out


class TCP(_HeaderLayer):
    """TCP. ``flags`` as letters ("SA", "PA"...) or an int; options as bytes or a list
    like ``[("mss", 1460), "nop", ("wscale", 7), ("sackok", None), ("timestamp", (1, 0))]``.
    ``dataofs`` and ``checksum`` (over the pseudo-header) are computed unless given.
    """

    ipproto = 6

    def __init__(self, sport: int = 1024, dport: int = 80, *, seq: int = 0, ack: int = 0,
                 flags: int | str = "S", window: int = 65535, urgptr: int = 0,
                 options: bytes | Sequence = b"", dataofs: int | None = None, reserved: int = 0,
                 checksum: int | None = None) -> None:
        self.sport, self.dport, self.seq, self.ack, self.flags = sport, dport, seq, ack, flags
        self.window, self.urgptr, self.options, self.dataofs = window, urgptr, options, dataofs
        self.reserved, self.checksum = reserved, checksum

    def flags_value(self) -> int:
        return _tcp_flags(self.flags)

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        opts = _pad(_tcp_options(self.options), 4)
        off = (20 + len(opts)) // 4 if self.dataofs is None else self.dataofs
        flags = self.flags_value()
        seg = struct.pack("!HHIIBBHHH", self.sport, self.dport, self.seq, self.ack,
                          (off & 0xF) << 4 | (self.reserved & 0xE) | (flags >> 8 & 1), flags & 0xFF,
                          self.window, 0, self.urgptr) + opts + payload
        c = self.checksum
        if c is None:
            c = checksum(seg, stack.pseudo_header_sum(index, 6, len(seg)))
        return seg[:16] + _u16.pack(c) + seg[18:]

    def _hlen(self, stack, index, data, offset):
        return 20 + len(_pad(_tcp_options(self.options), 4))


class UDP(_HeaderLayer):
    """UDP. ``length`` and ``checksum`` (over the pseudo-header; 0 means "none" on IPv4)
    are computed unless given."""

    ipproto = 17

    def __init__(self, sport: int = 1024, dport: int = 53, *, length: int | None = None,
                 checksum: int | None = None) -> None:
        self.sport, self.dport, self.length, self.checksum = sport, dport, length, checksum

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        n = 8 + len(payload) if self.length is None else self.length
        seg = struct.pack("!HHHH", self.sport, self.dport, n & 0xFFFF, 0) + payload
        c = self.checksum
        if c is None:
            c = checksum(seg, stack.pseudo_header_sum(index, 17, len(seg))) or 0xFFFF
        return seg[:6] + _u16.pack(c) + seg[8:]

    def _hlen(self, stack, index, data, offset):
        return 8


class ICMP(_HeaderLayer):
    """ICMP for IPv4: type, code, checksum over the message, then 4 bytes (``rest``,
    by default the echo identifier and sequence number)."""

    ipproto = 1
    _pseudo = False

    def __init__(self, type: int = 8, code: int = 0, *, id: int = 0, seq: int = 0, rest: bytes | None = None,
                 checksum: int | None = None) -> None:
        self.type, self.code, self.id, self.seq, self.rest, self.checksum = type, code, id, seq, rest, checksum

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        rest = struct.pack("!HH", self.id, self.seq) if self.rest is None else self.rest
        msg = struct.pack("!BBH", self.type, self.code, 0) + rest + payload
        c = self.checksum
        if c is None:
            c = checksum(msg, stack.pseudo_header_sum(index, self.ipproto, len(msg)) if self._pseudo else 0)
        return msg[:2] + _u16.pack(c) + msg[4:]

    def _hlen(self, stack, index, data, offset):
        return 4 + (4 if self.rest is None else len(self.rest))


class ICMPv6(ICMP):
    """ICMPv6: like ICMP, with the checksum over the IPv6 pseudo-header. Echo request by default."""

    ipproto = 58
    _pseudo = True

    def __init__(self, type: int = 128, code: int = 0, *, id: int = 0, seq: int = 0, rest: bytes | None = None,
                 checksum: int | None = None) -> None:
        super().__init__(type, code, id=id, seq=seq, rest=rest, checksum=checksum)


class IGMP(_HeaderLayer):
    """IGMP (v2 membership report by default): type, max response time, checksum, group."""

    ipproto = 2
    _EIGHT_BYTE_TYPES = frozenset((0x12, 0x16, 0x17))

    def __init__(self, type: int = 0x16, max_resp: int = 0, group: str | bytes = "224.0.0.251", *,
                 checksum: int | None = None) -> None:
        self.type, self.max_resp, self.group, self.checksum = type, max_resp, group, checksum

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        msg = struct.pack("!BBH4s", self.type, self.max_resp, 0, _ip4(self.group)) + payload
        # IGMPv1/v2 messages are 8 bytes and their checksum covers only those (RFC 2236,
        # as Wireshark checks it); v3 queries (a query of 12 bytes or more) and v3
        # reports are checksummed whole (RFC 3376)
        v2 = self.type in self._EIGHT_BYTE_TYPES or (self.type == 0x11 and len(msg) < 12)
        covered = msg[:8] if v2 else msg
        c = checksum(covered) if self.checksum is None else self.checksum
        return msg[:2] + _u16.pack(c) + msg[4:]

    def _hlen(self, stack, index, data, offset):
        return 8


class GRE(_HeaderLayer):
    """A basic GRE header (RFC 2784, no options): the protocol is the inner ethertype."""

    ipproto = 47

    def __init__(self, *, protocol: int | None = None, flags: int = 0) -> None:
        self.protocol, self.flags = protocol, flags

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        p = self.protocol if self.protocol is not None else _next_type(stack, index, "ethertype", EXPERIMENTAL_ETHERTYPE)
        return struct.pack("!HH", self.flags, p) + payload

    def _hlen(self, stack, index, data, offset):
        return 4


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C: list[int] = []


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the SCTP checksum."""
    if not _CRC32C:
        _CRC32C.extend(_crc32c_table())
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class SCTP(_HeaderLayer):
    """An SCTP common header (ports, verification tag, CRC-32C); chunks are the payload."""

    ipproto = 132

    def __init__(self, sport: int = 5000, dport: int = 5000, *, vtag: int = 0, checksum: int | None = None) -> None:
        self.sport, self.dport, self.vtag, self.checksum = sport, dport, vtag, checksum

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        pkt = struct.pack("!HHII", self.sport, self.dport, self.vtag, 0) + payload
        c = self.checksum
        if c is None:
            c = int.from_bytes(crc32c(pkt).to_bytes(4, "little"), "big")  # stored little-endian
        return pkt[:8] + _u32.pack(c) + pkt[12:]

    def _hlen(self, stack, index, data, offset):
        return 12


# -- IPv4 fragmentation -----------------------------------------------------------------
def ipv4_fragments(packet: Stack, size: int) -> list[Stack]:
    """Split the IPv4 datagram in ``packet`` into fragments carrying ``size`` bytes each
    (a multiple of 8; the last one less). Link layers before the IPv4 header are kept."""
    if size <= 0 or size % 8:
        raise ValueError(f"fragment size {size} must be a positive multiple of 8")
    index = next((i for i, x in enumerate(packet.layers) if isinstance(x, IPv4)), None)
    if index is None:
        raise ValueError("ipv4_fragments needs a packet with an IPv4 layer")
    ip: IPv4 = packet.layers[index]  # type: ignore[assignment]
    # the datagram's payload, encoded behind the same addresses so that its transport
    # checksum is the one of the whole datagram, as a fragmenting host sends it
    inner = bytes(Stack([IPv4(ip.src, ip.dst), *packet.layers[index + 1:]]))[20:]
    if not inner:
        return [packet]
    proto = ip.proto_value(packet, index)
    out = []
    for start in range(0, len(inner), size):
        piece = inner[start:start + size]
        more = start + size < len(inner) or ip.mf
        frag = IPv4(ip.src, ip.dst, ttl=ip.ttl, id=ip.id, tos=ip.tos, df=False, mf=more,
                    offset=ip.offset + start, proto=proto, options=ip.options if start == 0 else b"")
        out.append(Stack([*packet.layers[:index], frag, piece]))
    return out


# -- expected decoded fields -------------------------------------------------------------------
_WRAPPERS = (Ether, Vlan, SLL, SLL2, Null, Raw, PPP, CHDLC, PPPoE, MPLS)


def _protocol_name(proto: int) -> str:
    """The records' name of an IP protocol: IANA's keyword, from the shared table."""
    try:
        from ._protocols import name
    except ImportError:  # pragma: no cover - only while the table is not there yet
        return PROTOCOL_NAMES.get(proto, f"ip-proto-{proto}")
    return name(proto)


def _ip_str(value: str | bytes | int, version: int) -> str:
    return str(ipaddress.IPv4Address(_ip4(value)) if version == 4 else ipaddress.IPv6Address(_ip6(value)))


def _expected_fields(stack: Stack, caplen: int | None) -> dict | None:
    """The decoded fields, from the layer objects, where the captured bytes hold them.

    Field values come from what the layers were built with; the bytes are consulted
    only for computed lengths and to know what a short ``caplen`` cuts away, with
    the bounds purepcap.headers documents (the IP length, then caplen).
    """
    data, offsets = stack.encode()
    if caplen is not None:
        data = data[:caplen]
    n = len(data)
    layers = stack.layers
    out: dict[str, Any] = dict.fromkeys(DECODED_KEYS)
    out["payload"] = b""
    i = 0
    while i < len(layers) and isinstance(layers[i], _WRAPPERS):
        layer = layers[i]
        if isinstance(layer, Ether) and i == 0:
            out["eth_dst"], out["eth_src"] = mac_str(mac(layer.dst)), mac_str(mac(layer.src))
            if layer.vlans:
                out["vlan"] = layer.vlans[0].vid & 0xFFF
        elif isinstance(layer, Vlan) and out["vlan"] is None:
            out["vlan"] = layer.vid & 0xFFF
        i += 1
    if i >= len(layers) or not isinstance(layers[i], (IPv4, IPv6)):
        return None
    ip = layers[i]
    off = offsets[i]
    if isinstance(ip, IPv4):
        if off + 20 > n:
            return None
        total = _u16.unpack_from(data, off + 2)[0]
        limit = min(n, off + total)
        out.update(ip_version=4, src_host=_ip_str(ip.src, 4), dst_host=_ip_str(ip.dst, 4), ttl=ip.ttl,
                   ip_id=ip.id, ip_length=total)
        proto = ip.proto_value(stack, i)
        if ip.mf or ip.offset:
            out["fragment"] = (ip.mf, ip.offset)
        later = ip.offset != 0
        p = off + 20 + len(_pad(ip.options, 4))
        j = i + 1
    else:
        if off + 40 > n:
            return None
        plen = _u16.unpack_from(data, off + 4)[0]
        limit = min(n, off + 40 + plen)
        out.update(ip_version=6, src_host=_ip_str(ip.src, 6), dst_host=_ip_str(ip.dst, 6), ttl=ip.hlim,
                   ip_length=plen + 40)
        proto = ip.nh_value(stack, i)
        later = False
        p = off + 40
        j = i + 1
        while j < len(layers) and isinstance(layers[j], _EXT_HEADERS) and p + 8 <= limit:
            ext = layers[j]
            if isinstance(ext, Fragment):
                out["fragment"] = (ext.m, ext.offset)
                out["ip_id"] = ext.id
                later = later or ext.offset != 0
            proto = ext.nh_value(stack, j)
            p += ext.header_length(stack, j, data, p)
            j += 1
        if j < len(layers) and isinstance(layers[j], _EXT_HEADERS) and p + 8 > limit:
            # the chain is cut short: a partly captured header still names what follows
            # (as tshark reads it), except a fragment header, meaningful only whole
            if p < limit and not isinstance(layers[j], Fragment):
                proto = layers[j].nh_value(stack, j)
            out["ip_proto"] = proto
            out["protocol"] = _protocol_name(proto)
            return out
    out["ip_proto"] = proto
    out["protocol"] = _protocol_name(proto)
    transport = layers[j] if j < len(layers) else None
    if not later and isinstance(transport, Layer) and transport.ipproto == proto:
        if isinstance(transport, (TCP, UDP, SCTP)):
            if p + 4 <= limit:
                out["src_port"], out["dst_port"] = transport.sport & 0xFFFF, transport.dport & 0xFFFF
            if isinstance(transport, TCP):
                if p + 20 <= limit:
                    out.update(tcp_seq=transport.seq, tcp_ack=transport.ack, tcp_window=transport.window,
                               tcp_flags=transport.flags_value() & 0x1FF)
                    out["payload"] = data[p + transport.header_length(stack, j, data, p):limit]
                return out
            if isinstance(transport, UDP):
                out["payload"] = data[p + 8:limit]
                return out
        elif isinstance(transport, ICMP) and p + 2 <= limit:
            out["icmp_type"], out["icmp_code"] = transport.type, transport.code
    elif not later and proto in (1, 6, 17, 58, 132):
        # raw bytes (a fragment's piece, or an explicit proto=): read as the protocol says
        if proto in (1, 58):
            if p + 2 <= limit:
                out["icmp_type"], out["icmp_code"] = data[p], data[p + 1]
        else:
            if p + 4 <= limit:
                out["src_port"], out["dst_port"] = struct.unpack_from("!HH", data, p)
            if proto == 17:
                out["payload"] = data[p + 8:limit]
                return out
            if proto == 6:
                if p + 20 <= limit:
                    seq, ack, off_ns, fl, win = struct.unpack_from("!IIBBH", data, p + 4)
                    out.update(tcp_seq=seq, tcp_ack=ack, tcp_window=win, tcp_flags=fl | (off_ns & 1) << 8)
                    if off_ns >> 4 >= 5:
                        out["payload"] = data[p + (off_ns >> 4) * 4:limit]
                return out
    out["payload"] = data[p:limit]
    return out


# -- convenience constructors (the spelling used in examples) ------------------------------------
ether = Ether
vlan = Vlan
sll = SLL
sll2 = SLL2
null = Null
loop = Loop
raw = Raw
ppp = PPP
chdlc = CHDLC
pppoe = PPPoE
mpls = MPLS
arp = ARP
ipv4 = IPv4
ipv6 = IPv6
hop_by_hop = HopByHop
routing = Routing
fragment = Fragment
dest_opts = DestOpts
tcp = TCP
udp = UDP
icmp = ICMP
icmpv6 = ICMPv6
igmp = IGMP
gre = GRE
sctp = SCTP


# -- capture files ----------------------------------------------------------------------------
_RESOLUTIONS = {"s": 0, "ms": 3, "us": 6, "ns": 9}


class CaptureBuilder:
    """A capture file built packet by packet: pcap or pcapng, any byte order and link
    type, any timestamp resolution, several pcapng sections and interfaces.

    ``bytes(builder)`` (or ``write(path)``) gives the file; ``packets()`` gives the
    ``Packet`` objects a correct reader must return for it, ``records()`` the
    decoded fields that go with each of them (None for packets without IP).

    pcapng ``resolution`` is ``"s"``, ``"ms"``, ``"us"``, ``"ns"`` or a raw
    if_tsresol byte (n for 10^-n seconds, 0x80|n for 2^-n); pcap knows only
    ``"us"`` and ``"ns"``.
    """

    def __init__(self, format: str = "pcap", *, linktype: int | None = None, byte_order: str = "little",
                 resolution: str | int = "us", snaplen: int = linktypes.MAX_SNAPLEN,
                 version: tuple[int, int] = (2, 4), modified: bool = False) -> None:
        if format not in ("pcap", "pcapng"):
            raise ValueError(f"unknown capture format {format!r} (pcap or pcapng)")
        if byte_order not in ("little", "big"):
            raise ValueError(f"byte_order must be 'little' or 'big', not {byte_order!r}")
        if format == "pcap" and resolution not in ("us", "ns"):
            raise ValueError(f"pcap timestamps are 'us' or 'ns', not {resolution!r}")
        if modified and (format != "pcap" or resolution != "us"):
            raise ValueError("the modified (Kuznetzov) format is a microsecond pcap")
        self.modified = modified
        self.format = format
        self.byte_order = byte_order
        self.resolution = resolution
        self.snaplen = snaplen
        self.version = version
        self.linktype = linktype
        self._events: list[tuple] = []
        self._sections: list[list[tuple[int, int, int, int]]] = [[]]  # per section: interfaces
        self._expected: list[tuple[Packet, Stack | bytes]] = []
        self._iface_base = 0
        self._n_ifaces = 0

    # -- pcapng structure ---------------------------------------------------------------
    def section(self, byte_order: str | None = None) -> CaptureBuilder:
        """Start a new pcapng section (interfaces are numbered from 0 again)."""
        self._need_pcapng("sections")
        self._iface_base = self._n_ifaces
        self._sections.append([])
        self._events.append(("section", byte_order))
        return self

    def interface(self, linktype: int, *, snaplen: int | None = None, resolution: str | int | None = None,
                  tsoffset: int = 0, name: str | None = None) -> int:
        """Add a pcapng interface to the current section; returns its number in the section."""
        self._need_pcapng("interfaces")
        res = self._tsresol(self.resolution if resolution is None else resolution)
        snap = self.snaplen if snaplen is None else snaplen
        ifaces = self._sections[-1]
        ifaces.append((linktype, snap, res, tsoffset))
        self._events.append(("interface", linktype, snap, res, tsoffset, name))
        self._n_ifaces += 1
        return len(ifaces) - 1

    def _need_pcapng(self, what: str) -> None:
        if self.format != "pcapng":
            raise ValueError(f"{what} exist only in pcapng captures")

    @staticmethod
    def _tsresol(resolution: str | int) -> int:
        if isinstance(resolution, str):
            return _RESOLUTIONS[resolution]
        return resolution

    # -- packets -------------------------------------------------------------------------
    def add(self, packet: Stack | Layer | bytes, time: int | None, *, interface: int | None = None,
            snaplen: int | None = None, length: int | None = None, obsolete: bool = False) -> CaptureBuilder:
        """Add one packet at ``time`` ns. It is cut to the interface's snaplen (or the
        one given) as a capture would; ``length`` overrides the original length.
        ``time=None`` writes a pcapng simple packet block (interface 0, no time),
        ``obsolete=True`` the obsolete pcapng Packet Block (type 2)."""
        if isinstance(packet, Layer):
            packet = Stack([packet])
        data = bytes(packet)
        simple = time is None
        if simple:  # a pcapng simple packet block: no time, always interface 0
            if self.format != "pcapng":
                raise ValueError("only pcapng has packets without a time (simple packet blocks)")
            if not self._sections[-1]:
                self.interface(self.linktype if self.linktype is not None else (
                    packet.linktype if isinstance(packet, Stack) else linktypes.EN10MB))
            interface = 0
        if self.format == "pcap":
            if self.linktype is None:
                self.linktype = packet.linktype if isinstance(packet, Stack) else linktypes.EN10MB
            lt, snap, ticks, tsoffset, iface_index, interface = self.linktype, self.snaplen, \
                (NS if self.resolution == "ns" else 1_000_000), 0, 0, 0
        else:
            ifaces = self._sections[-1]
            if interface is None:
                lt_wanted = self.linktype if self.linktype is not None else (
                    packet.linktype if isinstance(packet, Stack) else linktypes.EN10MB)
                for n, (lt_n, *_rest) in enumerate(ifaces):
                    if lt_n == lt_wanted:
                        interface = n
                        break
                else:
                    interface = self.interface(lt_wanted)
            if not 0 <= interface < len(ifaces):
                raise ValueError(f"interface {interface} not defined in this section")
            lt, snap, res, tsoffset = ifaces[interface]
            ticks = 1 << (res & 0x7F) if res & 0x80 else 10 ** res
            iface_index = self._iface_base + interface
        if snaplen is not None:
            snap = snaplen
        cut = data[:snap] if snap else data
        orig = len(data) if length is None else length
        if obsolete and (simple or self.format != "pcapng"):
            raise ValueError("an obsolete Packet Block is pcapng and has a time")
        self._events.append(("packet", time, cut, orig, interface, obsolete))
        if simple:
            t = None
        else:  # what a reader gives back: the time at the file's resolution
            t = (time - tsoffset * NS) * ticks // NS
            t = t * NS // ticks + tsoffset * NS
        frame = len(self._expected) + 1
        self._expected.append((Packet(frame, t, len(cut), orig, lt, iface_index, cut), packet))
        return self

    def extend(self, packets: Iterable[Stack | bytes], start: int = 1_600_000_000 * NS, step: int = 1_000_000) -> CaptureBuilder:
        t = start
        for p in packets:
            self.add(p, t)
            t += step
        return self

    # -- output --------------------------------------------------------------------------
    def __bytes__(self) -> bytes:
        buf = io.BytesIO()
        self._write(buf)
        return buf.getvalue()

    def write(self, dest: str | os.PathLike | io.BufferedIOBase) -> None:
        if isinstance(dest, (str, os.PathLike)):
            with open(dest, "wb") as f:
                self._write(f)
        else:
            self._write(dest)

    def _write(self, f: Any, layout: list[tuple[str, int, int]] | None = None) -> None:
        """Write the file; with ``layout`` (f must tell()), note each part's byte range."""
        def mark(kind: str, start: int) -> int:
            if layout is not None:
                end = f.tell()
                layout.append((kind, start, end))
                return end
            return 0

        if self.format == "pcap":
            w = PcapWriter(f, linktype=self.linktype if self.linktype is not None else linktypes.EN10MB,
                           snaplen=self.snaplen, nanosecond=self.resolution == "ns",
                           byte_order=self.byte_order, version=self.version, modified=self.modified)
            pos = mark("header", 0)
            for ev in self._events:
                w.write_packet(ev[1], ev[2], length=ev[3])
                pos = mark("packet", pos)
            w.flush()
            return
        w = PcapngWriter(f, linktype=None, byte_order=self.byte_order)
        pos = mark("section", 0)
        for ev in self._events:
            kind = ev[0]
            if kind == "section":
                w.new_section(ev[1])
            elif kind == "interface":
                _, lt, snap, res, tsoffset, name = ev
                w.add_interface(lt, snaplen=snap, tsresol=res, tsoffset=tsoffset, name=name)
            else:
                _, t, cut, orig, interface, obsolete = ev
                if t is None:
                    w.write_simple(cut, length=orig)
                elif obsolete:
                    w.write_obsolete(t, cut, length=orig, interface=interface)
                else:
                    w.write_packet(t, cut, length=orig, interface=interface)
            pos = mark(kind, pos)
        w.flush()

    def layout(self) -> list[tuple[str, int, int]]:
        """``(kind, start, end)`` byte ranges of the file's parts in order: kind is
        "header" (pcap), "section", "interface" (pcapng) or "packet"."""
        parts: list[tuple[str, int, int]] = []
        self._write(io.BytesIO(), parts)
        return parts

    def packets(self) -> list[Packet]:
        """The Packets a correct reader returns for this file, in order."""
        return [p for p, _ in self._expected]

    def records(self) -> list[dict | None]:
        """Per packet, the decoded fields (purepcap.headers.decode keys) or None without IP."""
        out = []
        for p, stack in self._expected:
            if isinstance(stack, Stack):
                out.append(stack.fields(caplen=p.caplen))
            else:
                out.append(None)
        return out


def capture(packets: Iterable[Stack | bytes | tuple[int, Stack | bytes]], format: str = "pcap", *,
            start: int = 1_600_000_000 * NS, step: int = 1_000_000, **kw: Any) -> bytes:
    """A whole capture file as bytes. ``packets`` are stacks (timed from ``start`` every
    ``step`` ns) or ``(time_ns, stack)`` pairs; other keywords go to CaptureBuilder."""
    cb = CaptureBuilder(format, **kw)
    t = start
    for item in packets:
        if isinstance(item, tuple):
            cb.add(item[1], item[0])
        else:
            cb.add(item, t)
            t += step
    return bytes(cb)
