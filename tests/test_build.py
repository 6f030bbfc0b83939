# purepcap.build: bytes checked field by field, against an independent checksum
# verifier written here, and against scapy where it is installed (an outside oracle
# for the layouts); hypothesis properties over every stack the strategies draw.
from __future__ import annotations

import ipaddress
import struct
import subprocess
import sys
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purepcap
from purepcap import build, linktypes
from purepcap import strategies as pst


# -- an independent verifier: sum every 16-bit word *including* the checksum --------------------
def ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = int.from_bytes(data, "big") and sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total >> 16) + (total & 0xFFFF)
    return total


def verifies(data: bytes, pseudo: bytes = b"") -> bool:
    """A correct Internet checksum makes the ones'-complement sum of all words 0xffff."""
    return ones_sum(pseudo + data) == 0xFFFF


def pseudo4(ip: bytes, proto: int, length: int) -> bytes:
    return ip[12:20] + bytes([0, proto]) + length.to_bytes(2, "big")


def pseudo6(ip: bytes, proto: int, length: int) -> bytes:
    return ip[8:40] + length.to_bytes(4, "big") + bytes([0, 0, 0, proto])


# -- the example of the issue ---------------------------------------------------------------
def test_issue_example_gives_bytes():
    pkt = (build.ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
           / build.ipv4(src="10.0.0.1", dst="10.0.0.2", ttl=3) / build.udp(sport=53, dport=4242) / b"payload")
    data = bytes(pkt)
    assert len(data) == 60  # 14 + 20 + 8 + 7 = 49, padded to the Ethernet minimum
    assert data[:6] == bytes.fromhex("020000000002") and data[6:12] == bytes.fromhex("020000000001")
    assert data[12:14] == b"\x08\x00"
    ip = data[14:34]
    assert ip[0] == 0x45 and struct.unpack("!H", ip[2:4])[0] == 35 and ip[8] == 3 and ip[9] == 17
    assert ip[12:16] == bytes([10, 0, 0, 1]) and ip[16:20] == bytes([10, 0, 0, 2])
    assert verifies(ip)
    udp = data[34:49]
    assert struct.unpack("!HHH", udp[:6]) == (53, 4242, 15)
    assert verifies(udp, pseudo4(ip, 17, 15))
    assert udp[8:] == b"payload" and data[49:] == bytes(11)
    assert pkt.linktype == linktypes.EN10MB


def test_function_chain_and_operator_agree():
    a = build.ether() / build.ipv4() / build.tcp() / b"x"
    b = build.Stack([build.Ether(), build.IPv4(), build.TCP(), b"x"])
    assert bytes(a) == bytes(b) and a == b
    assert bytes(b"x" / build.Stack([])) == b"x"


# -- link layers -----------------------------------------------------------------------------
def test_vlan_tags_any_depth_and_tpids():
    pkt = build.ether(vlans=[(10, 0x88A8), 20, build.vlan(30, pcp=5, dei=1, tpid=0x9100)]) / build.ipv6() / build.udp()
    data = bytes(pkt)
    assert data[12:14] == b"\x88\xa8" and struct.unpack("!H", data[14:16])[0] == 10
    assert data[16:18] == b"\x81\x00" and struct.unpack("!H", data[18:20])[0] == 20
    assert data[20:22] == b"\x91\x00" and struct.unpack("!H", data[22:24])[0] == (5 << 13 | 1 << 12 | 30)
    assert data[24:26] == b"\x86\xdd" and data[26] >> 4 == 6
    chained = build.ether() / build.vlan(7) / build.vlan(8) / build.ipv4() / build.udp()
    assert bytes(chained)[12:22] == bytes.fromhex("8100 0007 8100 0008 0800")
    assert chained.fields()["vlan"] == 7 and pkt.fields()["vlan"] == 10


def test_ethernet_padding_fcs_and_overrides():
    short = build.ether() / build.arp()
    assert len(bytes(short)) == 60
    assert len(bytes(build.ether(pad=False) / build.arp())) == 42
    assert len(bytes(build.ether(pad=64) / build.arp())) == 64
    frame = bytes(build.ether(fcs=True) / build.arp())
    assert len(frame) == 64 and struct.unpack("<I", frame[60:])[0] == zlib.crc32(frame[:60])
    assert bytes(build.ether(fcs=b"\xde\xad\xbe\xef") / build.arp())[-4:] == b"\xde\xad\xbe\xef"
    assert bytes(build.ether(type=0x1234) / build.ipv4())[12:14] == b"\x12\x34"
    big = bytes(build.ether() / build.ipv4() / build.udp() / bytes(100))
    assert len(big) == 14 + 20 + 8 + 100  # no padding once above the minimum


def test_arp_layout():
    data = bytes(build.ether(pad=False) / build.arp(op=2, sha="aa:bb:cc:dd:ee:ff", spa="1.2.3.4",
                                                    tha="11:22:33:44:55:66", tpa="5.6.7.8"))
    assert data[12:14] == b"\x08\x06"
    assert data[14:22] == bytes.fromhex("0001 0800 06 04 0002")
    assert data[22:28] == bytes.fromhex("aabbccddeeff") and data[28:32] == bytes([1, 2, 3, 4])
    assert data[32:38] == bytes.fromhex("112233445566") and data[38:42] == bytes([5, 6, 7, 8])
    assert (build.ether() / build.arp()).fields() is None


def test_cooked_and_loopback_links():
    sll = bytes(build.sll(pkttype=4, addr="02:00:00:00:00:09") / build.ipv4() / build.udp())
    assert struct.unpack("!HHH", sll[:6]) == (4, 1, 6) and sll[6:14] == bytes.fromhex("020000000009") + bytes(2)
    assert sll[14:16] == b"\x08\x00" and sll[16] == 0x45
    sll2 = bytes(build.sll2(ifindex=7, pkttype=1) / build.ipv6() / build.udp())
    assert sll2[:2] == b"\x86\xdd" and struct.unpack("!I", sll2[4:8])[0] == 7 and sll2[10] == 1 and sll2[11] == 6
    assert sll2[20] >> 4 == 6
    assert bytes(build.null() / build.ipv4())[:4] == (2).to_bytes(4, "little")
    assert bytes(build.null(byte_order="big") / build.ipv6())[:4] == (24).to_bytes(4, "big")
    assert bytes(build.null(30) / build.ipv6())[:4] == (30).to_bytes(4, "little")
    assert bytes(build.loop() / build.ipv4())[:4] == (2).to_bytes(4, "big")
    assert bytes(build.raw() / build.ipv4())[0] == 0x45
    assert (build.raw(linktypes.IPV4) / build.ipv4()).linktype == linktypes.IPV4
    assert (build.ipv4() / build.udp()).linktype == linktypes.RAW
    assert (build.sll() / build.ipv4()).linktype == linktypes.LINUX_SLL
    assert (build.sll2() / build.ipv4()).linktype == linktypes.LINUX_SLL2
    assert (build.null() / build.ipv4()).linktype == linktypes.NULL
    assert (build.loop() / build.ipv4()).linktype == linktypes.LOOP


def test_ppp_chdlc_pppoe_mpls():
    assert bytes(build.ppp() / build.ipv4())[:4] == b"\xff\x03\x00\x21"
    assert bytes(build.ppp(hdlc=False) / build.ipv6())[:2] == b"\x00\x57"
    assert bytes(build.chdlc() / build.ipv6())[:4] == b"\x0f\x00\x86\xdd"
    data = bytes(build.ether(pad=False) / build.pppoe(0x1234) / build.ipv4() / build.udp() / b"abc")
    assert data[12:14] == b"\x88\x64"
    assert struct.unpack("!BBHHH", data[14:22]) == (0x11, 0, 0x1234, 2 + 20 + 8 + 3, 0x0021)
    data = bytes(build.ether(pad=False) / build.mpls(100, ttl=9) / build.mpls(200, tc=3) / build.ipv6() / build.udp())
    assert data[12:14] == b"\x88\x47"
    first, second = struct.unpack("!II", data[14:22])
    assert first >> 12 == 100 and not first & 0x100 and first & 0xFF == 9
    assert second >> 12 == 200 and second & 0x100 and (second >> 9) & 7 == 3
    assert data[22] >> 4 == 6


def test_raw_bytes_after_a_link_or_ip_layer_get_experimental_types():
    assert bytes(build.ether() / b"hello")[12:14] == b"\x88\xb5"
    assert bytes(build.ipv4() / b"hello")[9] == 253
    assert bytes(build.ipv6() / b"hello")[6] == 253
    with pytest.raises(ValueError, match="cannot carry"):
        bytes(build.ether() / build.tcp())


# -- IP ------------------------------------------------------------------------------------------
def test_ipv4_options_fragments_and_overrides():
    pkt = build.ipv4("1.2.3.4", "5.6.7.8", id=77, tos=0x10, df=True, options=b"\x94\x04\x00\x00\x01") / build.udp() / b"x"
    data = bytes(pkt)
    assert data[0] == 0x47  # 20 + 5 option bytes padded to 8: IHL 7
    assert data[20:28] == b"\x94\x04\x00\x00\x01\x00\x00\x00"
    assert struct.unpack("!HHH", data[2:8]) == (28 + 9, 77, 0x4000)
    assert verifies(data[:28])
    frag = bytes(build.ipv4(mf=True, offset=1480) / b"abc")
    assert struct.unpack("!H", frag[6:8])[0] == 0x2000 | 185
    assert bytes(build.ipv4(evil=True))[6] == 0x80
    with pytest.raises(ValueError, match="multiple of 8"):
        build.ipv4(offset=3)
    bad = bytes(build.ipv4(ihl=4, length=9999, checksum=0xBEEF, proto=99, version=5) / b"zz")
    assert bad[0] == 0x54 and struct.unpack("!H", bad[2:4])[0] == 9999 and bad[9] == 99
    assert bad[10:12] == b"\xbe\xef"


def test_ipv4_fragments_helper_splits_and_reassembles():
    whole = build.ether() / build.ipv4("10.0.0.1", "10.0.0.2", id=9) / build.udp(1, 2) / bytes(range(100))
    frags = build.ipv4_fragments(whole, 48)
    assert len(frags) == 3
    pieces = []
    for n, f in enumerate(frags):
        data = bytes(f)
        ip = data[14:34]
        assert verifies(ip)
        word = struct.unpack("!H", ip[6:8])[0]
        assert (word & 0x1FFF) * 8 == 48 * n and bool(word & 0x2000) == (n < 2)
        assert struct.unpack("!H", ip[4:6])[0] == 9 and ip[9] == 17
        pieces.append(data[34:14 + struct.unpack("!H", ip[2:4])[0]])
    datagram = b"".join(pieces)
    assert datagram == bytes(build.ipv4("10.0.0.1", "10.0.0.2", id=9) / build.udp(1, 2) / bytes(range(100)))[20:]
    assert verifies(datagram, pseudo4(bytes(frags[0])[14:34], 17, len(datagram)))
    assert frags[1].fields()["fragment"] == (True, 48) and frags[1].fields()["src_port"] is None
    assert frags[0].fields()["src_port"] == 1


def test_ipv6_extension_chain():
    pkt = (build.ipv6("2001:db8::1", "2001:db8::2", hlim=9, tc=0xAB, flow=0x12345) / build.hop_by_hop(b"\x05\x02\x00\x00")
           / build.routing(["2001:db8::9"]) / build.fragment(16, m=True, id=0xDEADBEEF) / build.dest_opts()
           / build.tcp(1, 2) / b"data")
    data = bytes(pkt)
    first = struct.unpack("!I", data[:4])[0]
    assert first >> 28 == 6 and (first >> 20) & 0xFF == 0xAB and first & 0xFFFFF == 0x12345
    assert struct.unpack("!H", data[4:6])[0] == len(data) - 40 and data[6] == 0 and data[7] == 9
    hbh = data[40:48]
    assert hbh[0] == 43 and hbh[1] == 0 and hbh[2:6] == b"\x05\x02\x00\x00" and hbh[6:8] == b"\x01\x00"  # PadN
    rt = data[48:72]
    assert rt[0] == 44 and rt[1] == 2 and rt[2] == 0 and rt[3] == 0 and rt[8:24] == ipaddress.IPv6Address("2001:db8::9").packed
    fr = data[72:80]
    assert fr[0] == 60 and struct.unpack("!HI", fr[2:8]) == (16 | 1, 0xDEADBEEF)
    do = data[80:88]
    assert do[0] == 6 and do[1] == 0 and do[2:4] == b"\x01\x04"
    f = pkt.fields()
    assert f["fragment"] == (True, 16) and f["ip_id"] == 0xDEADBEEF and f["ip_proto"] == 6
    assert f["src_port"] is None and f["payload"] == data[88:]  # a later fragment has no ports
    assert len(bytes(build.ipv6() / build.hop_by_hop(b"\x00" * 5) / build.udp())) == 40 + 8 + 8
    assert len(bytes(build.ipv6() / build.dest_opts(b"\x00" * 7) / build.udp())) == 40 + 16 + 8


def test_routing_header_changes_the_pseudo_header_destination():
    final = "2001:db8::ff"
    pkt = build.ipv6("2001:db8::1", "2001:db8::2") / build.routing(["2001:db8::3", final], segleft=2) / build.udp(1, 2) / b"q"
    data = bytes(pkt)
    udp = data[40 + 40:]
    ph = data[8:24] + ipaddress.IPv6Address(final).packed + len(udp).to_bytes(4, "big") + bytes([0, 0, 0, 17])
    assert verifies(udp, ph)
    assert not verifies(udp, pseudo6(data[:40], 17, len(udp)))


# -- transports ----------------------------------------------------------------------------------
def test_tcp_flags_options_and_offsets():
    pkt = build.ipv4() / build.tcp(1234, 80, seq=5, ack=6, flags="SAEC", window=999, urgptr=3,
                                   options=[("mss", 1460), "nop", ("wscale", 7), ("sackok", None),
                                            ("timestamp", (1, 2)), ("sack", [(10, 20)])]) / b"hi"
    data = bytes(pkt)
    tcp = data[20:]
    sport, dport, seq, ack, off, flags, win, _c, urg = struct.unpack("!HHIIBBHHH", tcp[:20])
    assert (sport, dport, seq, ack, win, urg) == (1234, 80, 5, 6, 999, 3)
    assert flags == 0x02 | 0x10 | 0x40 | 0x80
    opts = bytes.fromhex("020405b4 01 030307 0402 080a0000000100000002 050a0000000a00000014")
    assert off >> 4 == (20 + len(opts) + (-len(opts) % 4)) // 4
    assert tcp[20:20 + len(opts)] == opts and tcp[(off >> 4) * 4:] == b"hi"
    assert verifies(tcp, pseudo4(data[:20], 6, len(tcp)))
    ns = bytes(build.ipv4() / build.tcp(flags=0x100 | 0x02))[20:]
    assert ns[12] & 1 and ns[13] == 0x02
    assert (build.ipv4() / build.tcp(flags=0x1FF)).fields()["tcp_flags"] == 0x1FF
    with pytest.raises(ValueError, match="unknown TCP flag"):
        bytes(build.ipv4() / build.tcp(flags="Z"))
    assert bytes(build.ipv4() / build.tcp(checksum=0x1234, dataofs=15))[20 + 12] >> 4 == 15


def test_udp_checksum_zero_becomes_ffff_and_can_be_disabled():
    # find a payload whose checksum computes to zero: it must be sent as 0xffff (RFC 768)
    base = build.ipv4("0.0.0.0", "0.0.0.0") / build.udp(0, 0)
    data = bytes(base / b"\x00\x00")
    c = struct.unpack("!H", data[26:28])[0]
    # the payload word that makes the sum 0xffff, i.e. the checksum 0
    filler = (c).to_bytes(2, "big")
    zero = bytes(base / filler)
    assert zero[26:28] == b"\xff\xff" and verifies(zero[20:], pseudo4(zero[:20], 17, 10))
    assert bytes(build.ipv4() / build.udp(checksum=0))[26:28] == b"\x00\x00"
    assert struct.unpack("!H", bytes(build.ipv4() / build.udp(length=3))[24:26])[0] == 3


def test_icmp_icmpv6_igmp_sctp_checksums():
    v4 = bytes(build.ipv4() / build.icmp(3, 1, rest=b"\x00\x00\x05\xdc") / b"inner")
    assert v4[20:22] == b"\x03\x01" and v4[24:28] == b"\x00\x00\x05\xdc" and verifies(v4[20:])
    echo = bytes(build.ipv4() / build.icmp(id=0x1234, seq=7))
    assert echo[24:28] == b"\x12\x34\x00\x07" and verifies(echo[20:])
    v6 = bytes(build.ipv6("fe80::1", "ff02::1") / build.icmpv6(135, 0, rest=bytes(4)) / bytes(16))
    icmp6 = v6[40:]
    assert icmp6[0] == 135 and verifies(icmp6, pseudo6(v6[:40], 58, len(icmp6)))
    assert not verifies(icmp6)  # without the pseudo-header it would not verify
    ig = bytes(build.ipv4(ttl=1) / build.igmp(0x16, 0, "239.1.2.3"))
    assert ig[9] == 2 and ig[20:22] == b"\x16\x00" and ig[24:28] == bytes([239, 1, 2, 3]) and verifies(ig[20:])
    v2 = bytes(build.ipv4() / build.igmp(0x16) / b"trailer")
    assert verifies(v2[20:28]) and not verifies(v2[20:])
    v3 = bytes(build.ipv4() / build.igmp(0x22, 0, "0.0.0.0") / bytes.fromhex("0001 0400 00000000 ef000001"))
    assert verifies(v3[20:])
    v3q = bytes(build.ipv4() / build.igmp(0x11, 100, "0.0.0.0") / bytes(4))
    assert verifies(v3q[20:])
    v2q = bytes(build.ipv4() / build.igmp(0x11, 100, "0.0.0.0") / b"xy")
    assert verifies(v2q[20:28]) and not verifies(v2q[20:])
    assert build.crc32c(b"123456789") == 0xE3069283  # the RFC 3720 check value
    sc = bytes(build.ipv4() / build.sctp(1, 2, vtag=3) / b"chunk!!!")
    stored = int.from_bytes(sc[28:32], "little")
    assert stored == build.crc32c(sc[20:28] + bytes(4) + sc[32:])
    assert bytes(build.ipv4() / build.icmp(checksum=0))[22:24] == b"\x00\x00"


def test_gre_carries_an_inner_packet_and_reports_the_outer_one():
    pkt = build.ether() / build.ipv4("1.1.1.1", "2.2.2.2") / build.gre() / build.ipv4("10.0.0.1", "10.0.0.2") / build.udp(5, 6)
    data = bytes(pkt)
    assert data[23] == 47 and data[34:38] == b"\x00\x00\x08\x00"
    f = pkt.fields()
    assert (f["src_host"], f["protocol"], f["src_port"]) == ("1.1.1.1", "gre", None)


# -- expected fields -------------------------------------------------------------------------------
def test_fields_follow_caplen():
    pkt = build.ether() / build.ipv4() / build.tcp(1, 2, seq=3) / bytes(50)
    assert pkt.fields()["tcp_seq"] == 3 and len(pkt.fields()["payload"]) == 50
    cut = pkt.fields(caplen=14 + 20 + 4)
    assert cut["src_port"] == 1 and cut["tcp_seq"] is None and cut["payload"] == b""
    assert pkt.fields(caplen=14 + 19) is None
    assert pkt.fields(caplen=14 + 20 + 19)["payload"] == b""  # the TCP header itself is cut
    assert pkt.fields(caplen=14 + 20 + 19)["tcp_flags"] is None
    assert len(pkt.fields(caplen=14 + 20 + 20 + 7)["payload"]) == 7
    assert set(pkt.fields()) == set(build.DECODED_KEYS)


def test_fields_decode_with_headers():
    headers = pytest.importorskip("purepcap.headers")
    stacks = [
        build.ether(vlans=[5]) / build.ipv4(options=b"\x01") / build.tcp(flags="PA") / b"GET /",
        build.sll2() / build.ipv6() / build.fragment(0, m=True, id=3) / build.udp(53, 1) / b"q",
        build.null() / build.ipv6() / build.icmpv6(1, 4) / bytes(8),
        build.ppp() / build.ipv4() / build.igmp(),
        build.ether() / build.pppoe() / build.ipv6() / build.sctp(7, 8) / bytes(4),
        build.ether() / build.mpls() / build.ipv4() / build.udp(),
    ]
    for s in stacks:
        assert headers.decode(s.linktype, bytes(s)) == s.fields(), s


# -- capture files -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,order,res", [("pcap", "little", "us"), ("pcap", "big", "ns"),
                                           ("pcapng", "big", "ns"), ("pcapng", "little", 0x80 | 20)])
def test_capture_builder_round_trip(fmt, order, res):
    cb = build.CaptureBuilder(fmt, byte_order=order, resolution=res, snaplen=80)
    t0 = 1_700_000_000_123_456_789
    pkts = [build.ether() / build.ipv4() / build.udp() / bytes(n) for n in (0, 10, 100)]
    for n, p in enumerate(pkts):
        cb.add(p, t0 + n)
    with purepcap.open(bytes(cb)) as cap:
        got = list(cap)
        assert cap.format == fmt and cap.byte_order == order
    assert got == cb.packets()
    assert [p.caplen for p in got] == [60, 60, 80] and got[2].length == 142
    tick = {"us": 1000, "ns": 1}.get(res)
    if tick:
        assert got[0].time == t0 // tick * tick
    else:  # 2^-20 s ticks
        assert got[0].time == (t0 * 2**20 // 10**9) * 10**9 // 2**20
    with pytest.raises(ValueError):
        build.CaptureBuilder("pcap", resolution="ms")


def test_capture_builder_sections_interfaces_and_simple_blocks(tmp_path):
    cb = build.CaptureBuilder("pcapng")
    eth = cb.interface(linktypes.EN10MB, name="eth0", snaplen=0)
    raw = cb.interface(linktypes.RAW, resolution="us", tsoffset=1000, name="tun0")
    cb.add(build.ether() / build.ipv4() / build.udp(), 2_000_000_000_000, interface=eth)
    cb.add(build.ipv6() / build.tcp(), 3_000_000_000_500, interface=raw)
    cb.add(build.ether() / build.arp(), None)
    cb.section("big")
    cb.add(build.sll() / build.ipv4() / build.icmp(), 4_000_000_000_000)
    path = tmp_path / "x.pcapng"
    cb.write(path)
    with purepcap.open(path) as cap:
        got = list(cap)
        ifaces = cap.interfaces
    assert got == cb.packets()
    assert [p.interface for p in got] == [0, 1, 0, 2] and got[2].time is None
    assert [i.linktype for i in ifaces] == [linktypes.EN10MB, linktypes.RAW, linktypes.LINUX_SLL]
    assert ifaces[1].name == "tun0" and ifaces[1].tsoffset == 1000 and ifaces[2].section == 1
    assert [r is None for r in cb.records()] == [False, False, True, False]
    assert [k for k, *_ in cb.layout()] == ["section", "interface", "interface", "packet", "packet", "packet",
                                             "section", "interface", "packet"]
    with pytest.raises(ValueError):
        build.CaptureBuilder("pcap").section()
    with pytest.raises(ValueError):
        build.CaptureBuilder("pcap").add(build.ether(), None)


def test_capture_builder_modified_pcap_and_obsolete_blocks():
    pkts = [build.ether() / build.ipv4() / build.udp() / bytes(n) for n in (1, 2)]
    mod = build.CaptureBuilder("pcap", modified=True).extend(pkts)
    data = bytes(mod)
    assert data[:4] == bytes.fromhex("34cdb2a1") and len(data) == 24 + 2 * (24 + 60)
    with purepcap.open(data) as cap:
        assert list(cap) == mod.packets() and cap.modified
    ng = build.CaptureBuilder("pcapng")
    ng.add(pkts[0], 10**18, obsolete=True)
    ng.add(pkts[1], 10**18 + 1000)
    kinds = [int.from_bytes(bytes(ng)[s:s + 4], "little") for k, s, _e in ng.layout() if k == "packet"]
    assert kinds == [2, 6]
    with purepcap.open(bytes(ng)) as cap:
        assert list(cap) == ng.packets()
    with pytest.raises(ValueError):
        build.CaptureBuilder("pcap", modified=True, resolution="ns")
    with pytest.raises(ValueError):
        build.CaptureBuilder("pcap").add(pkts[0], 0, obsolete=True)


def test_capture_function():
    data = build.capture([build.ether() / build.ipv4() / build.udp(), (5 * 10**18, build.ether() / build.arp())],
                         "pcapng", start=10**18)
    with purepcap.open(data) as cap:
        got = list(cap)
    assert [p.time for p in got] == [10**18, 5 * 10**18] and cap.format == "pcapng"


# -- outside oracle: scapy dissects what we build ---------------------------------------------------------
def _scapy():
    pytest.importorskip("scapy")
    import logging
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy import layers  # noqa: F401
    from scapy.layers.l2 import Ether  # type: ignore
    return Ether


@settings(max_examples=40)
@given(pst.packets(link="ether", transport=("tcp", "udp", "icmp"), fragments=False))
def test_scapy_agrees_on_layout_and_checksums(pkt):
    Ether = _scapy()
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    data = bytes(pkt)
    s = Ether(data)
    f = pkt.fields()
    ip = s[IP] if s.haslayer(IP) else s[IPv6]
    same = ipaddress.ip_address  # scapy writes IPv4-mapped IPv6 differently: compare values
    assert same(ip.src) == same(f["src_host"]) and same(ip.dst) == same(f["dst_host"])
    if s.haslayer(IP):
        assert s[IP].ttl == f["ttl"] and s[IP].proto == f["ip_proto"] and s[IP].len == f["ip_length"]
        stored = s[IP].chksum
        del s[IP].chksum
        assert Ether(bytes(s))[IP].chksum == stored  # scapy recomputes the same IPv4 checksum
    for cls in (TCP, UDP):
        if s.haslayer(cls) and f["src_port"] is not None:
            assert (s[cls].sport, s[cls].dport) == (f["src_port"], f["dst_port"])
            stored = s[cls].chksum
            del s[cls].chksum
            assert Ether(bytes(s))[cls].chksum == stored  # scapy's pseudo-header checksum is ours
    if s.haslayer(ICMP) and s.haslayer(IP):
        assert (s[ICMP].type, s[ICMP].code) == (f["icmp_type"], f["icmp_code"])


# -- hypothesis properties of the builders ---------------------------------------------------------------
def _ip_offset(pkt: build.Stack) -> tuple[int, int]:
    data, offsets = pkt.encode()
    for layer, off in zip(pkt.layers, offsets):
        if isinstance(layer, (build.IPv4, build.IPv6)):
            return off, layer.version
    raise AssertionError("no IP layer")


@given(pst.packets(ip=("ipv4", "ipv6")))
def test_every_built_checksum_verifies(pkt):
    data = bytes(pkt)
    off, version = _ip_offset(pkt)
    ip_layers = [x for x in pkt.layers if isinstance(x, (build.IPv4, build.IPv6))]
    assert len(ip_layers) == 1
    if version == 4:
        ihl = (data[off] & 15) * 4
        total = struct.unpack_from("!H", data, off + 2)[0]
        assert verifies(data[off:off + ihl]), "IPv4 header checksum"
        assert off + total <= len(data) and (off + total == len(data) or pkt.layers[0].__class__ is build.Ether)
        body, proto, pseudo = data[off + ihl:off + total], data[off + 9], pseudo4
        later = struct.unpack_from("!H", data, off + 6)[0] & 0x1FFF
    else:
        plen = struct.unpack_from("!H", data, off + 4)[0]
        body = data[off + 40:off + 40 + plen]
        _, offsets = pkt.encode()
        idx = pkt.layers.index(ip_layers[0])
        j = idx + 1
        later = 0
        while j < len(pkt.layers) and isinstance(pkt.layers[j], (build.HopByHop, build.Routing, build.Fragment,
                                                               build.DestOpts)):
            if isinstance(pkt.layers[j], build.Fragment):
                later = pkt.layers[j].offset
            j += 1
        start = offsets[j] - off - 40 if j < len(pkt.layers) else plen
        proto = data[offsets[j - 1]] if j > idx + 1 else data[off + 6]
        body = body[start:]
        pseudo = pseudo6
    if later:
        return
    ph = pseudo(data[off:off + 40], proto, len(body))
    if proto in (6, 17, 58):
        assert verifies(body, ph), f"checksum of protocol {proto}"
    elif proto == 1:
        assert verifies(body)
    elif proto == 2:  # IGMPv1/v2 checksums cover their 8 bytes, v3 the whole message
        v2 = body[0] in (0x12, 0x16, 0x17) or (body[0] == 0x11 and len(body) < 12)
        assert verifies(body[:8] if v2 else body)
    elif proto == 132:
        assert int.from_bytes(body[8:12], "little") == build.crc32c(body[:8] + bytes(4) + body[12:])
    if proto == 17:
        assert struct.unpack_from("!H", body, 4)[0] == len(body)
    if proto == 6:
        assert (body[12] >> 4) * 4 >= 20 and (body[12] >> 4) * 4 <= len(body)


@given(pst.packets(link=("ether", "vlan", "pppoe", "mpls")))
def test_ethernet_frames_are_never_short(pkt):
    assert len(bytes(pkt)) >= 60


@given(st.binary(max_size=300), st.integers(1, 20).map(lambda n: n * 8))
def test_fragments_reassemble(payload, size):
    whole = build.ipv4("10.0.0.1", "10.0.0.2", id=5) / build.udp(7, 9) / payload
    frags = build.ipv4_fragments(whole, size)
    pieces = {}
    for f in frags:
        d = bytes(f)
        assert verifies(d[:20])
        pieces[(struct.unpack("!H", d[6:8])[0] & 0x1FFF) * 8] = d[20:]
    assert b"".join(pieces[k] for k in sorted(pieces)) == bytes(whole)[20:]
    assert not struct.unpack("!H", bytes(frags[-1])[6:8])[0] & 0x2000


@given(pst.packets())
def test_overriding_a_checksum_writes_exactly_that_value(pkt):
    ip = next(x for x in pkt.layers if isinstance(x, (build.IPv4, build.IPv6)))
    if isinstance(ip, build.IPv4):
        off, _ = _ip_offset(pkt)
        wrong = build.Stack([build.IPv4(**{**vars(ip), "checksum": 0xABCD}) if x is ip else x for x in pkt.layers])
        assert bytes(wrong)[off + 10:off + 12] == b"\xab\xcd"
        assert bytes(wrong)[:off + 10] == bytes(pkt)[:off + 10]


# -- the zero-dependency promise -------------------------------------------------------------------------------
def test_import_build_without_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import purepcap.build as b\n"
            "assert len(bytes(b.ether() / b.ipv4() / b.udp())) == 60\n"
            "try:\n    import purepcap.strategies\nexcept ImportError as e:\n    print(e)\n"
            "else:\n    raise SystemExit('strategies imported without hypothesis')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert out.returncode == 0, out.stderr
    assert "pip install 'purepcap[hypothesis]'" in out.stdout
