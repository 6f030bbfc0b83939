# hypothesis strategies for packets, decoded records, capture files and damaged
# capture files, for testing any packet decoder (ours or a user's) against them.
#
# Strategy: everything is drawn as purepcap.build layer objects, so the expected
# decoded fields come from what was built (Stack.fields), never from decoding the
# bytes again. Every choice is ordered simplest-first (sampled_from, small integers,
# short lists and binaries) so hypothesis shrinks a failing capture to a few small
# packets. Damage is applied to the bytes of a known layout (CaptureBuilder.layout),
# so each damaged case knows exactly which frames a reader must still deliver.
"""hypothesis strategies for packets and capture files (extra ``hypothesis``).

- ``packets(link=..., ip=..., transport=...)``: valid packets as
  ``purepcap.build.Stack`` objects: ``bytes(p)`` is the frame, ``p.linktype`` its
  link type and ``p.fields()`` what a decoder must find in it (the keys of
  ``purepcap.headers.decode``; None for a packet without IP).
- ``records(...)``: those decoded fields as dicts, with the frame's ``data`` and
  ``linktype`` added.
- ``captures(format=...)``: whole capture files as a ``CaptureCase``; unpack it as
  ``data, records = case`` (the file's bytes, then one dict per IP packet as
  ``purepcap.records`` gives it: frame, time, length, caplen, interface and the
  decoded fields). ``case.packets`` holds every Packet a reader must return.
- ``damaged(captures())``: the same files truncated, bit-flipped, with a lying length
  field or trailing garbage, as a ``DamagedCase``: ``case.delivered`` are the packets
  a reader must deliver first; when ``case.must_fail`` it must then raise a
  ``purepcap.PcapError`` (with ``exact`` true, right after them).

Example: property-testing a third-party decoder, a toy counter of DNS datagrams::

    import struct
    from hypothesis import given
    import purepcap
    from purepcap import strategies as pst

    def count_dns(frames):
        # the decoder under test: UDP datagrams to or from port 53 in Ethernet/IPv4 frames
        n = 0
        for data in frames:
            if len(data) < 34 or data[12:14] != b"\\x08\\x00" or data[23] != 17:
                continue
            if struct.unpack_from("!H", data, 20)[0] & 0x1FFF:  # a later fragment: no UDP header
                continue
            at = 14 + (data[14] & 15) * 4
            if len(data) >= at + 4:
                n += 53 in struct.unpack_from("!HH", data, at)
        return n

    @given(pst.captures(format="pcap", packets=pst.packets(link="ether", ip="ipv4", transport=("udp", "tcp"))))
    def test_count_dns(case):
        data, records = case
        with purepcap.open(data) as capture:
            got = count_dns(p.data for p in capture)
        assert got == sum(r["protocol"] == "udp" and 53 in (r["src_port"], r["dst_port"]) for r in records)

Drop the fragment check from ``count_dns`` and hypothesis finds the bug, then
shrinks it to a capture of a few small packets (usually one): a later IPv4
fragment of a UDP datagram whose bytes happen to hold 53 where the ports would be.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import missing_extra

try:
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise missing_extra("hypothesis", "hypothesis") from exc

from . import build, linktypes
from .build import NS, CaptureBuilder, Stack
from .format import Packet

__all__ = ["packets", "records", "captures", "damaged", "CaptureCase", "DamagedCase",
           "LINKS", "IPS", "TRANSPORTS", "PORTS"]

LINKS = ("ether", "vlan", "sll", "sll2", "null", "loop", "raw", "ppp", "chdlc", "pppoe", "mpls")
IPS = ("ipv4", "ipv6", "arp")
TRANSPORTS = ("udp", "tcp", "icmp", "igmp", "sctp", "raw")
_ARP_LINKS = frozenset(("ether", "vlan", "sll", "sll2"))
# Ports worth hitting often (a decoder keyed on a port must see it), then any port.
PORTS = st.one_of(st.sampled_from((53, 80, 443, 123, 5353, 0, 65535)), st.integers(0, 65535))
# Protocol numbers the decoders interpret; "raw" transports avoid them.
_MEANINGFUL = frozenset((0, 1, 6, 17, 43, 44, 51, 58, 60, 132))
_ICMP_ERRORS = {4: frozenset((3, 4, 5, 11, 12)), 6: frozenset((1, 2, 3, 4))}

_u8 = st.integers(0, 0xFF)
_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFFFFFF)
_macs = st.binary(min_size=6, max_size=6)
_ip4s = st.ip_addresses(v=4)
_ip6s = st.ip_addresses(v=6)


def _choices(value: str | Sequence[str] | None, allowed: Sequence[str], what: str,
             default: Sequence[str] | None = None) -> tuple[str, ...]:
    if value is None:
        return tuple(default if default is not None else allowed)
    names = (value,) if isinstance(value, str) else tuple(value)
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise InvalidArgument(f"{what} must be among {', '.join(allowed)}; got {value!r}")
    return names


# -- link layers ------------------------------------------------------------------------------
@st.composite
def _vlan_tag(draw: Any) -> build.Vlan:
    return build.Vlan(draw(st.integers(0, 4095)), pcp=draw(st.integers(0, 7)), dei=draw(st.integers(0, 1)),
                      tpid=draw(st.sampled_from((0x8100, 0x88A8, 0x9100))))


@st.composite
def _link_layers(draw: Any, link: str, version: int | None) -> list:
    if link in ("ether", "vlan", "pppoe", "mpls"):
        vlans = draw(st.lists(_vlan_tag(), min_size=1, max_size=3)) if link == "vlan" else []
        layers: list = [build.Ether(draw(_macs), draw(_macs), vlans=vlans)]
        if link == "pppoe":
            layers.append(build.PPPoE(draw(_u16)))
        elif link == "mpls":
            for _ in range(draw(st.integers(1, 3))):
                # labels 0-15 are reserved (explicit null names the IP version): avoid them
                layers.append(build.MPLS(draw(st.integers(16, 0xFFFFF)), tc=draw(st.integers(0, 7)), ttl=draw(_u8)))
        return layers
    if link == "sll":
        return [build.SLL(pkttype=draw(st.integers(0, 4)), addr=draw(_macs))]
    if link == "sll2":
        return [build.SLL2(ifindex=draw(_u32), pkttype=draw(st.integers(0, 4)), addr=draw(_macs))]
    if link == "null":
        family = draw(st.sampled_from((24, 28, 30))) if version == 6 else None
        return [build.Null(family, byte_order=draw(st.sampled_from(("little", "big"))))]
    if link == "loop":
        return [build.Loop(draw(st.sampled_from((24, 28, 30))) if version == 6 else None)]
    if link == "raw":
        native = linktypes.IPV4 if version == 4 else linktypes.IPV6
        return [build.Raw(draw(st.sampled_from((linktypes.RAW, native, linktypes.RAW_LINUX))))]
    if link == "ppp":
        return [build.PPP(hdlc=draw(st.booleans()))]
    if link == "chdlc":
        return [build.CHDLC(address=draw(st.sampled_from((0x0F, 0x8F))))]
    raise InvalidArgument(f"unknown link {link!r}")  # pragma: no cover - checked in packets()


# -- IP layers ---------------------------------------------------------------------------------
_IPV4_OPTIONS = (b"\x01", b"\x94\x04\x00\x00", b"\x01\x01\x01\x01", b"\x07\x07\x04" + bytes(4))


@st.composite
def _ipv4(draw: Any, fragments: bool, options: bool) -> list:
    opts = b"".join(draw(st.lists(st.sampled_from(_IPV4_OPTIONS), max_size=3))) if options else b""
    mf, offset = False, 0
    if fragments and draw(st.booleans()):
        mf = draw(st.booleans())
        offset = draw(st.integers(0, 0x1FFF)) * 8
    return [build.IPv4(draw(_ip4s), draw(_ip4s), ttl=draw(_u8), id=draw(_u16), tos=draw(_u8),
                       df=draw(st.booleans()) and not (mf or offset), mf=mf, offset=offset, options=opts)]


_V6_OPTIONS = (b"", b"\x05\x02\x00\x00", b"\x01\x02\x00\x00", b"\x1e\x04abcd")


@st.composite
def _ipv6(draw: Any, fragments: bool, ext: bool) -> list:
    layers: list = [build.IPv6(draw(_ip6s), draw(_ip6s), hlim=draw(_u8), tc=draw(_u8), flow=draw(st.integers(0, 0xFFFFF)))]
    if not ext:
        return layers
    kinds = ["hbh", "dest", "routing"] + (["frag"] if fragments else [])
    chain = draw(st.lists(st.sampled_from(kinds), max_size=3))
    if "hbh" in chain:  # hop-by-hop options may only come first
        chain = ["hbh"] + [k for k in chain if k != "hbh"]
    for kind in chain:
        if kind == "hbh":
            layers.append(build.HopByHop(draw(st.sampled_from(_V6_OPTIONS))))
        elif kind == "dest":
            layers.append(build.DestOpts(draw(st.sampled_from(_V6_OPTIONS))))
        elif kind == "routing":
            # segments left 0: the packet is at its final destination, as the pseudo-header says
            layers.append(build.Routing(draw(st.lists(_ip6s, max_size=2)), type=0, segleft=0))
        else:
            layers.append(build.Fragment(draw(st.integers(0, 0x1FFF)) * 8, m=draw(st.booleans()), id=draw(_u32)))
    return layers


# -- transports ------------------------------------------------------------------------------
_TCP_OPTIONS = st.lists(st.one_of(
    st.builds(lambda v: ("mss", v), _u16), st.just("nop"), st.builds(lambda v: ("wscale", v), st.integers(0, 14)),
    st.just(("sackok", None)), st.builds(lambda a, b: ("timestamp", (a, b)), _u32, _u32)), max_size=4)


@st.composite
def _transport(draw: Any, name: str, version: int, ports: st.SearchStrategy[int], max_payload: int) -> list:
    payload = draw(st.binary(max_size=max_payload))
    if name == "udp":
        return [build.UDP(draw(ports), draw(ports)), payload]
    if name == "tcp":
        return [build.TCP(draw(ports), draw(ports), seq=draw(_u32), ack=draw(_u32), flags=draw(st.integers(0, 0x1FF)),
                          window=draw(_u16), urgptr=draw(_u16), options=draw(_TCP_OPTIONS)), payload]
    if name == "icmp":
        cls = build.ICMP if version == 4 else build.ICMPv6
        return [cls(draw(_u8), draw(_u8), id=draw(_u16), seq=draw(_u16)), payload]
    if name == "igmp":
        return [build.IGMP(draw(st.sampled_from((0x16, 0x11, 0x12, 0x17, 0x22))), draw(_u8), draw(_ip4s)), payload]
    if name == "sctp":
        return [build.SCTP(draw(ports), draw(ports), vtag=draw(_u32)), payload]
    proto = draw(st.integers(0, 255).filter(lambda p: p not in _MEANINGFUL))
    return [_RawProto(proto), payload]


class _RawProto(build.Layer):
    """No header: only names the IP protocol of the bytes that follow."""

    def __init__(self, proto: int) -> None:
        self.proto = proto

    @property
    def ipproto(self) -> int:  # type: ignore[override]
        return self.proto

    def encode(self, payload: bytes, stack: Stack, index: int) -> bytes:
        return payload

    def header_length(self, stack: Stack, index: int, data: bytes, offset: int) -> int:
        return 0


# -- packets and records ----------------------------------------------------------------------------
def packets(link: str | Sequence[str] | None = None, ip: str | Sequence[str] | None = None,
            transport: str | Sequence[str] | None = None, *, ports: st.SearchStrategy[int] | None = None,
            max_payload: int = 64, fragments: bool = True, options: bool = True,
            extension_headers: bool = True) -> st.SearchStrategy[Stack]:
    """Valid packets as ``purepcap.build.Stack``.

    ``link``: any of LINKS (default all): "ether", "vlan" (1 to 3 tags of 0x8100,
    0x88a8, 0x9100), "sll", "sll2", "null", "loop", "raw" (LINKTYPE_RAW, IPV4/IPV6
    or 14), "ppp", "chdlc", "pppoe" and "mpls" (over Ethernet). ``ip``: "ipv4",
    "ipv6" (default both) and "arp" (a frame without IP, on the links that carry
    it). ``transport``: any of TRANSPORTS (default all but "raw"); "icmp" means ICMPv6
    over IPv6 and "igmp" is IPv4 only. ``fragments``, ``options`` and
    ``extension_headers`` switch IPv4 fragments / IPv6 fragment headers, IPv4 and TCP
    options and IPv6 extension headers off.
    """
    links = _choices(link, LINKS, "link")
    ips = _choices(ip, IPS, "ip", default=("ipv4", "ipv6"))
    transports = _choices(transport, TRANSPORTS, "transport", default=TRANSPORTS[:-1])
    if set(ips) == {"ipv6"} and set(transports) == {"igmp"}:
        raise InvalidArgument("igmp needs ipv4")
    if set(ips) == {"arp"} and not _ARP_LINKS.intersection(links):
        raise InvalidArgument(f"arp is carried only by {', '.join(sorted(_ARP_LINKS))}")
    port_strategy = PORTS if ports is None else ports

    @st.composite
    def one(draw: Any) -> Stack:
        lk = draw(st.sampled_from(links))
        choices = [x for x in ips if x != "arp" or lk in _ARP_LINKS]
        if not choices:
            choices = ["ipv4"]
        ipname = draw(st.sampled_from(choices))
        version = {"ipv4": 4, "ipv6": 6}.get(ipname)
        layers = draw(_link_layers(lk, version))
        if ipname == "arp":
            layers.append(build.ARP(op=draw(st.integers(1, 2)), sha=draw(_macs), spa=draw(_ip4s), tha=draw(_macs),
                                    tpa=draw(_ip4s)))
            return Stack(layers)
        if version == 4:
            layers += draw(_ipv4(fragments, options))
            names = list(transports)
        else:
            layers += draw(_ipv6(fragments, extension_headers))
            names = [t for t in transports if t != "igmp"] or ["icmp"]
        name = draw(st.sampled_from(names))
        layers += draw(_transport(name, version, port_strategy, max_payload))
        if name == "tcp" and not options:
            layers[-2].options = b""
        return Stack(layers)

    return one()


def records(link: str | Sequence[str] | None = None, ip: str | Sequence[str] | None = None,
            transport: str | Sequence[str] | None = None, **kw: Any) -> st.SearchStrategy[dict]:
    """Decoded fields of valid IP packets: the keys of ``purepcap.headers.decode``,
    plus ``data`` (the frame) and ``linktype``. Takes the arguments of ``packets``."""
    ips = tuple(x for x in _choices(ip, IPS, "ip", default=("ipv4", "ipv6")) if x != "arp")
    if not ips:
        raise InvalidArgument("records() are of IP packets: ip must name ipv4 or ipv6")

    def record(p: Stack) -> dict:
        return {**p.fields(), "data": bytes(p), "linktype": p.linktype}

    return packets(link, ips, transport, **kw).map(record)


# -- capture files -----------------------------------------------------------------------------
@dataclass(eq=False)
class CaptureCase:
    """A capture file drawn by ``captures()``; ``data, records = case`` unpacks it."""

    data: bytes
    records: list[dict]
    packets: list[Packet]
    fields: list[dict | None]
    builder: CaptureBuilder = field(repr=False)

    def __iter__(self):
        return iter((self.data, self.records))

    @property
    def format(self) -> str:
        return self.builder.format

    def __repr__(self) -> str:
        return (f"CaptureCase({self.builder.format}, {len(self.data)} bytes, {len(self.packets)} packets: "
                f"{[(p.linktype, p.caplen, p.length) for p in self.packets]}, data={self.data!r})")


_PCAPNG_RESOLUTIONS = (6, 9, 3, 0, 0x80 | 10, 0x80 | 20, 0x80 | 30)


@st.composite
def _capture(draw: Any, formats: tuple[str, ...], pkts: st.SearchStrategy[Stack] | None, min_packets: int,
             max_packets: int, byte_orders: tuple[str, ...], truncate: bool, sections: bool,
             simple_blocks: bool) -> CaptureCase:
    fmt = draw(st.sampled_from(formats))
    order = draw(st.sampled_from(byte_orders))
    if pkts is None:
        if fmt == "pcap":  # one link type per pcap file
            strategy = packets(draw(st.sampled_from(LINKS)), ip=IPS)
        else:
            strategy = packets(ip=IPS)
    else:
        strategy = pkts
    stacks = draw(st.lists(strategy, min_size=min_packets, max_size=max_packets))
    snaplens = st.sampled_from((linktypes.MAX_SNAPLEN, 65535, 96, 64)) if truncate else st.just(linktypes.MAX_SNAPLEN)
    time = draw(st.integers(1_000_000, 0xFFFFFFFF - 100_000)) * NS + draw(st.integers(0, NS - 1))
    if fmt == "pcap":
        if stacks:
            lt = stacks[0].linktype
            stacks = [s for s in stacks if s.linktype == lt]
        resolution = draw(st.sampled_from(("us", "ns")))
        cb = CaptureBuilder("pcap", byte_order=order, resolution=resolution, snaplen=draw(snaplens),
                            linktype=stacks[0].linktype if stacks else None,
                            modified=resolution == "us" and draw(st.booleans()) and draw(st.booleans()))
        for s in stacks:
            cb.add(s, time)
            time += draw(st.integers(0, 2 * NS))
    else:
        cb = CaptureBuilder("pcapng", byte_order=order)
        by_type: dict[int, int] = {}
        for n, s in enumerate(stacks):
            if sections and n and draw(st.booleans()):
                cb.section(draw(st.sampled_from(byte_orders)))
                by_type = {}
            lt = s.linktype
            if lt not in by_type:
                tsoffset = draw(st.sampled_from((0, 0, 1000)))
                by_type[lt] = cb.interface(lt, snaplen=draw(snaplens), resolution=draw(st.sampled_from(_PCAPNG_RESOLUTIONS)),
                                           tsoffset=tsoffset, name=draw(st.sampled_from((None, "eth0", "lo"))))
            if simple_blocks and by_type[lt] == 0 and draw(st.booleans()) and draw(st.booleans()):
                cb.add(s, None)
            else:
                cb.add(s, time, interface=by_type[lt], obsolete=draw(st.booleans()) and draw(st.booleans()))
            time += draw(st.integers(0, 2 * NS))
    data = bytes(cb)
    expected = cb.packets()
    fields = cb.records()
    recs = [{"frame": p.frame, "time": p.time, "length": p.length, "caplen": p.caplen, "interface": p.interface, **f}
            for p, f in zip(expected, fields) if f is not None]
    return CaptureCase(data, recs, expected, fields, cb)


def captures(format: str | Sequence[str] | None = None, *, packets: st.SearchStrategy[Stack] | None = None,
             min_packets: int = 0, max_packets: int = 8, byte_order: str | None = None, truncate: bool = True,
             sections: bool = True, simple_blocks: bool = True) -> st.SearchStrategy[CaptureCase]:
    """Whole capture files with the Packets and records a reader and decoder must give.

    ``format``: "pcap", "pcapng" or both (default). pcap files get one link type,
    µs or ns times, either byte order, sometimes the "modified" record format;
    pcapng files get one interface per link type with its own resolution (10^-n
    and 2^-n), snaplen and tsoffset, and maybe several sections of either byte
    order, simple packet blocks and obsolete Packet Blocks. With
    ``truncate`` small snaplens cut packets short as a capture would. ``packets``
    replaces the packet strategy (for pcap, packets of another link type than the
    first are dropped).
    """
    formats = _choices(format, ("pcap", "pcapng"), "format")
    orders = _choices(byte_order, ("little", "big"), "byte_order")
    if not 0 <= min_packets <= max_packets:
        raise InvalidArgument(f"need 0 <= min_packets <= max_packets, got {min_packets}, {max_packets}")
    return _capture(formats, packets, min_packets, max_packets, orders, truncate, sections, simple_blocks)


# -- damaged capture files ----------------------------------------------------------------------
@dataclass(eq=False)
class DamagedCase:
    """A damaged capture file and what a reader must still do with it.

    ``delivered``: the Packets a reader must return first, unchanged. ``must_fail``:
    whether it must then raise a PcapError (or, with errors="warn", warn and stop);
    with ``exact`` the error comes right after ``delivered``, else the damage may let
    more packets through first (a bit flip in packet data changes nothing visible).
    """

    data: bytes
    delivered: list[Packet]
    must_fail: bool
    exact: bool
    kind: str
    position: int
    original: CaptureCase = field(repr=False)

    def __repr__(self) -> str:
        return (f"DamagedCase({self.kind} at {self.position}, delivered={len(self.delivered)}, "
                f"must_fail={self.must_fail}, exact={self.exact}, original={self.original!r}, data={self.data!r})")


def _before(parts: list[tuple[str, int, int]], packets: list[Packet], position: int) -> list[Packet]:
    """The packets whose records end at or before ``position``."""
    n = 0
    for kind, _start, end in parts:
        if end > position:
            break
        n += kind == "packet"
    return packets[:n]


@st.composite
def _damage(draw: Any, base: st.SearchStrategy[CaptureCase], kinds: tuple[str, ...]) -> DamagedCase:
    case = draw(base)
    data, parts, pkts = case.data, case.builder.layout(), case.packets
    order = {"little": "<", "big": ">"}
    kind = draw(st.sampled_from(kinds))
    packet_parts = [p for p in parts if p[0] == "packet"]
    if kind == "length" and not packet_parts:
        kind = "truncate"
    if kind == "truncate":
        cut = draw(st.integers(0, len(data) - 1))
        clean = cut > 0 and any(end == cut for _k, _s, end in parts)
        return DamagedCase(data[:cut], _before(parts, pkts, cut), not clean, True, kind, cut, case)
    if kind == "trailing":
        junk = draw(st.binary(min_size=1, max_size=11))
        return DamagedCase(data + junk, list(pkts), True, True, kind, len(data), case)
    if kind == "bitflip":
        pos = draw(st.integers(0, len(data) - 1))
        bit = draw(st.integers(0, 7))
        start = next(s for _k, s, e in parts if s <= pos < e)
        flipped = bytearray(data)
        flipped[pos] ^= 1 << bit
        return DamagedCase(bytes(flipped), _before(parts, pkts, start), False, False, kind, pos, case)
    # a lying length field in one packet record
    k = draw(st.integers(0, len(packet_parts) - 1))
    _kind, start, end = packet_parts[k]
    lied = bytearray(data)
    if case.format == "pcap":
        o = order[case.builder.byte_order]
        limit = max(case.builder.snaplen, linktypes.max_caplen(case.builder.linktype or 0))
        if k == len(packet_parts) - 1 and draw(st.booleans()):
            caplen = int.from_bytes(data[start + 8:start + 12], case.builder.byte_order)
            value = min(caplen + draw(st.integers(1, 1 << 16)), limit)  # runs past the end of the file
            if value <= caplen:
                value = limit + 1
        else:
            value = draw(st.integers(limit + 1, 0xFFFFFFFF))
        lied[start + 8:start + 12] = value.to_bytes(4, "little" if o == "<" else "big")
    else:
        o = _section_order(parts, data, start)
        where = draw(st.sampled_from(("block", "caplen")))
        if where == "caplen" and int.from_bytes(data[start:start + 4], o) == 6:  # an EPB's captured length
            value = draw(st.integers(end - start - 31, 0xFFFFFFFF))
            lied[start + 20:start + 24] = value.to_bytes(4, o)
        else:
            value = draw(st.one_of(st.integers(0, 11), st.integers(12, 1 << 20).filter(lambda v: v % 4),
                                   st.integers(1 << 26, 0xFFFFFFFF)))
            lied[start + 4:start + 8] = value.to_bytes(4, o)
    return DamagedCase(bytes(lied), pkts[:k], True, True, kind, start, case)


def _section_order(parts: list[tuple[str, int, int]], data: bytes, position: int) -> str:
    """The byte order ("little"/"big") of the pcapng section holding ``position``."""
    order = "little"
    for kind, start, _end in parts:
        if start > position:
            break
        if kind == "section":
            order = "little" if data[start + 8:start + 12] == b"\x4d\x3c\x2b\x1a" else "big"
    return order


def damaged(capture_strategy: st.SearchStrategy[CaptureCase] | None = None, *,
            kinds: str | Sequence[str] | None = None) -> st.SearchStrategy[DamagedCase]:
    """Damaged capture files, from ``capture_strategy`` (default ``captures()``).

    ``kinds``: "truncate" (cut anywhere), "length" (a record's length field lies:
    beyond any bound, not a multiple of 4, or past the end of the file),
    "trailing" (1 to 11 bytes of garbage after the last record) and "bitflip" (one
    bit anywhere; only the records before it are promised).
    """
    kinds_t = _choices(kinds, ("truncate", "length", "trailing", "bitflip"), "kinds")
    return _damage(captures() if capture_strategy is None else capture_strategy, kinds_t)
