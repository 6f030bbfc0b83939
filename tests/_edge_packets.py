# Packets and captures that the DataFrame, schema and conformance tests share, built
# with struct and purepcap.build only, so that tests which need neither pandas nor
# numpy can import them (the core suite runs without the extras).
from __future__ import annotations

import struct

from purepcap import build
from purepcap.format import PcapngWriter


# -- edge cases of the fixed-offset path ------------------------------------------------
def eth_ipv4(proto: int, l4: bytes, *, ihl: int = 5, total: int | None = None, frag: int = 0,
              ethertype: int = 0x0800, version: int = 4, ttl: int = 64, ident: int = 7,
              src: bytes = b"\x0a\x00\x00\x01", dst: bytes = b"\xc0\xa8\x01\x02", tail: bytes = b"") -> bytes:
    opts = bytes((ihl - 5) * 4) if ihl > 5 else b""
    if total is None:
        total = ihl * 4 + len(l4)
    ip = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, total & 0xFFFF, ident, frag, ttl, proto, 0,
                     src, dst) + opts
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02" + struct.pack("!H", ethertype) + ip + l4 + tail


def tcp_segment(doff: int = 5, flags: int = 0x18, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", 1234, 80, 1, 2, (doff << 4) | (flags >> 8), flags & 0xFF, 512, 0, 0) \
        + bytes(max(doff - 5, 0) * 4) + payload


def udp_datagram(payload: bytes = b"", ulen: int | None = None) -> bytes:
    return struct.pack("!HHHH", 53, 4242, 8 + len(payload) if ulen is None else ulen, 0) + payload


EDGE_PACKETS = [
    eth_ipv4(6, tcp_segment(payload=b"hello")),
    eth_ipv4(6, tcp_segment(doff=8, flags=0x1FF, payload=b"opts")),
    eth_ipv4(6, tcp_segment(doff=4, payload=b"bad doff")),
    eth_ipv4(6, tcp_segment(doff=15, payload=b"short")),
    eth_ipv4(6, tcp_segment(payload=b"x" * 10), tail=b"ethernet-padding"),
    eth_ipv4(6, tcp_segment(payload=b"tso"), total=0),
    eth_ipv4(6, tcp_segment(), ihl=7),
    eth_ipv4(6, tcp_segment(), ihl=4),
    eth_ipv4(6, tcp_segment(), total=10),
    eth_ipv4(6, tcp_segment(payload=b"abc"), total=30),
    eth_ipv4(6, tcp_segment(payload=b"frag"), frag=0x2000),
    eth_ipv4(6, b"later fragment", frag=0x0010),
    eth_ipv4(6, tcp_segment(payload=b"df"), frag=0x4000),
    eth_ipv4(17, udp_datagram(b"dns")),
    eth_ipv4(17, udp_datagram(b"dns and more", ulen=11)),
    eth_ipv4(17, udp_datagram(b"short ulen", ulen=3)),
    eth_ipv4(17, udp_datagram(b"long ulen", ulen=900)),
    eth_ipv4(17, udp_datagram()[:6]),
    eth_ipv4(1, b"\x08\x00\x00\x00ping"),
    eth_ipv4(1, b"\x03"),
    eth_ipv4(2, b"\x11\x00igmp"),
    eth_ipv4(47, b"gre....."),
    eth_ipv4(132, b"\x00\x01\x00\x02sctp"),
    eth_ipv4(6, tcp_segment(), version=6),
    eth_ipv4(6, tcp_segment(), ethertype=0x86DD),
    eth_ipv4(6, tcp_segment(), ethertype=0x0806),
    eth_ipv4(6, tcp_segment())[:20],
    eth_ipv4(6, tcp_segment())[:36],
    eth_ipv4(6, tcp_segment())[:40],
    eth_ipv4(6, tcp_segment())[:50],
    b"",
    b"\x00" * 13,
    bytes(build.ether(vlans=[5]) / build.ipv4(src="10.1.1.1", dst="10.1.1.2") / build.tcp(sport=1, dport=2)),
    bytes(build.ether() / build.ipv6(src="2001:db8::1", dst="::1") / build.udp(sport=5, dport=6) / b"v6"),
]


# -- pcapng: the block walker and its hand-over to the container reader ----------------
def write_pcapng_variety(path, byte_order="little", second_section=True):
    """Interfaces of several link types, resolutions (10^-6, 10^-9, 2^-20) and offsets,
    skipped blocks in between, and optionally a second section with simple and obsolete
    packet blocks."""
    v4 = bytes(build.ether() / build.ipv4(src="10.0.0.1", dst="10.0.0.2") / build.udp(sport=1, dport=2) / b"x")
    tcp = bytes(build.ether() / build.ipv4(src="10.0.0.3", dst="10.0.0.4") / build.tcp(sport=3, dport=4))
    raw6 = bytes(build.ipv6(src="2001:db8::1", dst="2001:db8::2") / build.udp(sport=5, dport=6) / b"raw")
    t = 1_700_000_000_123_456_789
    with PcapngWriter(path, linktype=None, byte_order=byte_order) as w:
        w.add_interface(1, tsresol=6)
        w.add_interface(101, tsresol=9, tsoffset=3600)
        w.add_interface(1, tsresol=0x80 | 20)
        w.write_block(4, b"\x00\x00\x00\x00")  # an empty name resolution block
        for i in range(60):
            w.write_packet(t + i * 1_000_003, (v4, raw6, tcp)[i % 3], interface=i % 3)
            if i % 17 == 0:
                w.write_block(5, struct.pack("<IIII", i % 3, 0, 0, 0))  # interface statistics
                w.write_block(0x40000BAD, b"\x00\x00\x7f\x00custom..")
        if second_section:
            w.new_section("big" if byte_order == "little" else "little")
            w.add_interface(1, tsresol=9)
            w.write_simple(v4)
            w.write_obsolete(t, tcp)
            for i in range(10):
                w.write_packet(t + i, v4)
