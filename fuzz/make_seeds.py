# Writes the fuzzers' seed corpus with purepcap's own writer and packet builder, so the
# fuzzer starts from every container variant and protocol stack we know instead of
# from nothing. Deterministic; never copies a capture from elsewhere.
#
#   python fuzz/make_seeds.py [OUT_DIR]      (default fuzz/seeds; one directory per target)
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from targets import APP_PORTS, app_input, header_input, reassembly_input  # noqa: E402

from purepcap import build as b  # noqa: E402
from purepcap.format import PcapngWriter, PcapWriter  # noqa: E402

T0 = 1_700_000_000_123_456_789


def stacks() -> list[tuple[int, bytes]]:
    """(link type, packet) pairs covering the decoder's paths."""
    a, c = "10.0.0.1", "192.0.2.7"
    a6, c6 = "2001:db8::1", "2001:db8::2"
    made = [
        (1, b.ether() / b.ipv4(src=a, dst=c) / b.tcp(sport=4242, dport=80, flags="S") / b"GET / HTTP/1.0\r\n"),
        (1, b.ether() / b.ipv4(src=a, dst=c) / b.udp(sport=53, dport=5353) / b"\x12\x34\x01\x00"),
        (1, b.ether() / b.ipv4(src=a, dst=c) / b.icmp() / b"ping"),
        (1, b.ether() / b.vlan(5) / b.vlan(7) / b.ipv6(src=a6, dst=c6) / b.udp(sport=1, dport=2) / b"x"),
        (1, b.ether() / b.mpls(16) / b.ipv4(src=a, dst=c) / b.tcp() / b"mpls"),
        (1, b.ether() / b.ipv6(src=a6, dst=c6) / b.hop_by_hop() / b.fragment() / b.tcp() / b"frag"),
        (1, b.ether() / b.ipv6(src=a6, dst=c6) / b.icmpv6() / b"nd"),
        (1, b.ether() / b.ipv4(src=a, dst=c) / b.gre() / b.ipv4(src=c, dst=a) / b.udp() / b"gre"),
        (1, b.ether() / b.ipv4(src=a, dst=c) / b.ipv6(src=a6, dst=c6) / b.tcp() / b"6in4"),
        (1, b.ether() / b.arp()),
        (113, b.sll() / b.ipv4(src=a, dst=c) / b.udp() / b"sll"),
        (276, b.sll2() / b.ipv6(src=a6, dst=c6) / b.tcp() / b"sll2"),
        (0, b.null() / b.ipv4(src=a, dst=c) / b.tcp() / b"null"),
        (108, b.loop() / b.ipv6(src=a6, dst=c6) / b.udp() / b"loop"),
        (101, b.raw() / b.ipv4(src=a, dst=c) / b.igmp()),
        (9, b.ppp() / b.ipv4(src=a, dst=c) / b.udp() / b"ppp"),
        (104, b.chdlc() / b.ipv4(src=a, dst=c) / b.tcp() / b"chdlc"),
        (1, b.ether() / b.pppoe() / b.ipv4(src=a, dst=c) / b.udp() / b"pppoe"),
        (1, b.ether() / b.ipv4(src=a, dst=c) / b.sctp() / b"sctp"),
    ]
    out = []
    for linktype, stack in made:
        try:
            out.append((linktype, bytes(stack)))
        except Exception as e:  # noqa: BLE001 - a builder gap must not stop the other seeds
            print(f"skipped a seed stack for link type {linktype}: {e}", file=sys.stderr)
    return out


def captures(packets: list[tuple[int, bytes]]) -> dict[str, bytes]:
    eth = [p for lt, p in packets if lt == 1]
    out: dict[str, bytes] = {}

    def pcap(name: str, pkts: list[bytes], **kw) -> None:
        f = io.BytesIO()
        with PcapWriter(f, **kw) as w:
            for i, p in enumerate(pkts):
                w.write_packet(T0 + i * 1_000_003, p)
        out[name] = f.getvalue()

    pcap("pcap-le-us", eth)
    pcap("pcap-be-ns", eth, byte_order="big", nanosecond=True)
    pcap("pcap-modified", eth[:3], modified=True)
    pcap("pcap-v2.2", eth[:3], version=(2, 2))
    pcap("pcap-fcs", eth[:2], fcs_length=4)
    for lt, p in packets:
        if lt != 1:
            pcap(f"pcap-linktype-{lt}", [p], linktype=lt)
    f = io.BytesIO()
    with PcapWriter(f, snaplen=64) as w:  # truncated records: length > caplen
        for i, p in enumerate(eth):
            w.write_packet(T0 + i, p[:64], length=len(p))
    out["pcap-snaplen-64"] = f.getvalue()

    for order in ("little", "big"):
        f = io.BytesIO()
        with PcapngWriter(f, byte_order=order, name="eth0") as w:
            w.add_interface(113, tsresol=0x80 | 20, tsoffset=3, name="any", description="cooked")
            for i, p in enumerate(eth[:4]):
                w.write_packet(T0 + i, p)
            w.write_simple(eth[0])
            w.write_obsolete(T0, eth[1], interface=0)
            sll = next(p for lt, p in packets if lt == 113)
            w.write_packet(T0 + 9, sll, interface=1)
            o = "<" if order == "little" else ">"
            w.write_block(4, struct.pack(o + "HH", 1, 8) + b"\x0a\x00\x00\x01ab\x00\x00" + struct.pack(o + "HH", 0, 0))
            w.write_block(5, struct.pack(o + "III", 0, 0, 0))  # interface statistics
            w.write_block(0x40000BAD, b"\x00\x00\x7e\x8f" + b"custom")
            w.new_section("big" if order == "little" else "little")
            w.add_interface(101, tsresol=3)
            raw_ip = next(p for lt, p in packets if lt == 101)
            w.write_packet(T0, raw_ip)
        out[f"pcapng-{order}"] = f.getvalue()

    small = out["pcap-le-us"]
    out["pcap.gz"] = gzip.compress(small, mtime=0)
    out["pcap.bz2"] = bz2.compress(small)
    out["pcap.xz"] = lzma.compress(small)
    try:
        import zstandard
        out["pcap.zst"] = zstandard.ZstdCompressor().compress(small)
    except ImportError:
        pass
    return out


FILTERS = [
    "tcp port 80", "udp and not port 53", "host 10.0.0.1 and (tcp or icmp)", "net 192.0.2.0/24",
    "src net 10.0.0.0 mask 255.0.0.0", "ip6 and dst host 2001:db8::2", "vlan 5 and vlan 7 and ip6",
    "mpls 16 and tcp", "pppoes and udp", "ether host 02:00:00:00:00:01", "ether proto 0x0806", "arp",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn", "ip[0] & 0xf > 5", "icmp[icmptype] = icmp-echo",
    "len > 100 and less 1500", "greater 60", "portrange 1000-2000", "ip proto 47",
    "ip6 proto 58", "ip multicast or ether broadcast", "not (tcp or udp)", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    "ip[2:2] - ((ip[0] & 0xf) << 2) > 40", "inbound", "gateway", "proto \\tcp",
]


def app_payloads() -> dict[str, bytes]:
    """A DNS response, an HTTP request and response, a TLS ClientHello and ServerHello."""
    question = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    dns = (struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + question
           + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1]))
    ext_body = b"\x00\x0e\x00\x00\x0bexample.com"
    exts = (struct.pack("!HH", 0, len(ext_body)) + ext_body
            + struct.pack("!HH", 16, 5) + b"\x00\x03\x02h2"
            + struct.pack("!HH", 10, 4) + b"\x00\x02\x00\x1d"
            + struct.pack("!HH", 0x2A2A, 0))
    hello = (b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x04\x13\x01\xc0\x2f" + b"\x01\x00"
             + struct.pack("!H", len(exts)) + exts)
    server = b"\x03\x03" + bytes(32) + b"\x00" + b"\x13\x01\x00" + b"\x00\x00"

    def record(msg_type: int, body: bytes) -> bytes:
        msg = bytes([msg_type]) + len(body).to_bytes(3, "big") + body
        return b"\x16\x03\x01" + struct.pack("!H", len(msg)) + msg

    return {"dns": dns, "dns-tcp": struct.pack("!H", len(dns)) + dns,
            "http-request": b"GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x/1\r\n\r\n",
            "http-response": b"HTTP/1.1 200 OK\r\nServer: y\r\n\r\n",
            "client-hello": record(1, hello), "server-hello": record(2, server)}


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "seeds")
    packets = stacks()
    files = {
        "containers": captures(packets),
        "headers": {f"lt{lt}-{i}": header_input(lt, p, len(p)) for i, (lt, p) in enumerate(packets)},
        "filter": {f"expr-{i}": e.encode() for i, e in enumerate(FILTERS)},
        "appfields": {f"{name}-{i}": app_input(i, p) for name, p in app_payloads().items()
                      for i in range(len(APP_PORTS))},
    }
    pieces = app_payloads()
    files["reassembly"] = {
        f"{name}-split-{cut}": reassembly_input([(k, 0, p[:cut]), (k, 0, p[cut:]), (k, -len(p), p[:cut])])
        for name, p in pieces.items() if len(p) > 8 for k in (0, 1) for cut in (5, len(p) // 2)
    }
    files["records"] = dict(files["containers"])
    files["records_direct"] = dict(files["containers"])
    files["partitions"] = dict(files["containers"])
    files["filtered_read"] = {f"expr-{i}-sample-{k}": bytes([k]) + e.encode()
                              for i, e in enumerate(FILTERS) for k in (0, 1)}
    for target, seeds in files.items():
        d = os.path.join(root, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{d}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
