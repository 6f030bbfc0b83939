# purepcap.headers.decode on packets built byte by byte here (a small struct-based
# builder, independent of purepcap.build), one test per link type and per header,
# and hypothesis properties: random valid stacks decode to the fields they were
# built from, and random or mutated bytes on every link type never raise.
from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purepcap import linktypes as lt
from purepcap._schema import APPLICATION
from purepcap.headers import (
    EXTRA_FIELDS,
    MAX_LINK_DEPTH,
    MAX_MPLS_LABELS,
    PROTOCOLS,
    decode,
    link_info,
)

KEYS = {"src_host", "dst_host", "src_port", "dst_port", "protocol", "ip_version", "ttl", "ip_id",
        "tcp_flags", "tcp_seq", "tcp_ack", "tcp_window", "icmp_type", "icmp_code", "vlan", "eth_src",
        "eth_dst", "fragment", "ip_proto", "ip_length", "payload"}

MAC_A = bytes.fromhex("0200000000aa")
MAC_B = bytes.fromhex("0200000000bb")


# --- a tiny builder -------------------------------------------------------------------
def a4(s: str) -> bytes:
    return ipaddress.IPv4Address(s).packed


def a6(s: str) -> bytes:
    return ipaddress.IPv6Address(s).packed


def tcp(sport=1234, dport=80, payload=b"", seq=1, ack=2, flags=0x18, window=512, options=b"") -> bytes:
    assert len(options) % 4 == 0
    off = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4 | (flags >> 8 & 1), flags & 0xFF,
                       window, 0, 0) + options + payload


def udp(sport=5353, dport=53, payload=b"", length=None) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload) if length is None else length, 0) + payload


def icmp(type_=8, code=0, payload=b"") -> bytes:
    return struct.pack("!BBH", type_, code, 0) + payload


def ipv4(proto: int, body: bytes, src="10.0.0.1", dst="10.0.0.2", ttl=64, ident=7, mf=False, offset=0,
         options=b"", total=None) -> bytes:
    assert len(options) % 4 == 0 and offset % 8 == 0
    ihl = 5 + len(options) // 4
    frag = (0x2000 if mf else 0) | offset // 8
    tot = ihl * 4 + len(body) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot, ident, frag, ttl, proto, 0, a4(src), a4(dst)) \
        + options + body


def ext(kind: int, nxt: int, size_units: int = 0) -> bytes:
    """An IPv6 extension header of the smallest legal size for its kind."""
    if kind == 51:  # AH: length in 4-byte units minus 2
        return bytes([nxt, 4]) + bytes(22)  # 24 bytes
    if kind == 44:
        raise ValueError("use frag6()")
    return bytes([nxt, size_units]) + bytes(6 + 8 * size_units)


def frag6(nxt: int, offset=0, mf=False, ident=0x1234) -> bytes:
    return struct.pack("!BBHI", nxt, 0, offset | int(mf), ident)


def ipv6(nxt: int, body: bytes, src="2001:db8::1", dst="2001:db8::2", hlim=64, plen=None) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(body) if plen is None else plen, nxt, hlim,
                       a6(src), a6(dst)) + body


def ether(etype: int, body: bytes, tags=(), dst=MAC_B, src=MAC_A) -> bytes:
    head = dst + src
    for tpid, tci in tags:
        head += struct.pack("!HH", tpid, tci)
    return head + struct.pack("!H", etype) + body


def mpls(labels, body: bytes) -> bytes:
    out = b""
    for i, label in enumerate(labels):
        bottom = 1 if i == len(labels) - 1 else 0
        out += struct.pack("!I", label << 12 | bottom << 8 | 64)
    return out + body


def pppoe(proto: int, body: bytes) -> bytes:
    return struct.pack("!BBHHH", 0x11, 0, 0x1234, len(body) + 2, proto) + body


def sll(proto: int, body: bytes, hatype=1) -> bytes:
    return struct.pack("!HHH8sH", 0, hatype, 6, MAC_A + b"\0\0", proto) + body


def sll2(proto: int, body: bytes, hatype=1) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, 3, hatype, 0, 6, MAC_A + b"\0\0") + body


V4_TCP = ipv4(6, tcp(40000, 443, b"hello", seq=100, ack=200, flags=0x18, window=4096), ttl=3, ident=99)
V6_UDP = ipv6(17, udp(5353, 53, b"dns?"), hlim=9)


def check_v4_tcp(r):
    assert r is not None and set(r) == KEYS
    assert (r["src_host"], r["dst_host"], r["src_port"], r["dst_port"]) == ("10.0.0.1", "10.0.0.2", 40000, 443)
    assert r["protocol"] == "tcp" and r["ip_proto"] == 6 and r["ip_version"] == 4
    assert (r["ttl"], r["ip_id"], r["ip_length"]) == (3, 99, len(V4_TCP))
    assert (r["tcp_seq"], r["tcp_ack"], r["tcp_flags"], r["tcp_window"]) == (100, 200, 0x18, 4096)
    assert r["payload"] == b"hello" and r["fragment"] is None


def check_v6_udp(r):
    assert r is not None and set(r) == KEYS
    assert (r["src_host"], r["dst_host"], r["src_port"], r["dst_port"]) == ("2001:db8::1", "2001:db8::2", 5353, 53)
    assert r["protocol"] == "udp" and r["ip_version"] == 6 and r["ttl"] == 9
    assert r["payload"] == b"dns?" and r["ip_length"] == len(V6_UDP)


# --- link types ----------------------------------------------------------------------
def test_ethernet_ipv4_tcp():
    r = decode(lt.EN10MB, ether(0x0800, V4_TCP))
    check_v4_tcp(r)
    assert r["eth_src"] == "02:00:00:00:00:aa" and r["eth_dst"] == "02:00:00:00:00:bb"
    assert r["vlan"] is None


def test_ethernet_ipv6_udp():
    check_v6_udp(decode(lt.EN10MB, ether(0x86DD, V6_UDP)))


@pytest.mark.parametrize("tpids", [(0x8100,), (0x88A8, 0x8100), (0x9100, 0x8100), (0x88A8, 0x88A8, 0x8100, 0x9100)])
def test_vlan_stacks(tpids):
    tags = [(tpid, 0x2000 | (100 + i)) for i, tpid in enumerate(tpids)]  # PCP bits must be masked off
    r = decode(lt.EN10MB, ether(0x0800, V4_TCP, tags=tags))
    check_v4_tcp(r)
    assert r["vlan"] == 100


def test_vlan_depth_is_bounded():
    deep = [(0x8100, 5)] * (MAX_LINK_DEPTH + 5)
    assert decode(lt.EN10MB, ether(0x0800, V4_TCP, tags=deep)) is None
    ok = [(0x8100, 5)] * (MAX_LINK_DEPTH - 1)
    assert decode(lt.EN10MB, ether(0x0800, V4_TCP, tags=ok))["vlan"] == 5


def test_ethernet_padding_excluded_from_payload():
    frame = ether(0x0800, ipv4(17, udp(1, 2, b"x")))
    padded = frame + bytes(60 - len(frame)) + b"FCS!"
    r = decode(lt.EN10MB, padded)
    assert r["payload"] == b"x" and r["src_port"] == 1


def test_llc_snap():
    body = b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + V4_TCP
    check_v4_tcp(decode(lt.EN10MB, ether(len(body), body)))
    assert decode(lt.EN10MB, ether(len(body), b"\x42\x42\x03" + bytes(40))) is None  # STP


@pytest.mark.parametrize("labels", [[16], [16, 17, 18], [0], [3000] * 5])
def test_mpls_ipv4(labels):
    check_v4_tcp(decode(lt.EN10MB, ether(0x8847, mpls(labels, V4_TCP))))


def test_mpls_ipv6_by_nibble_and_explicit_null():
    check_v6_udp(decode(lt.EN10MB, ether(0x8848, mpls([100, 200], V6_UDP))))
    check_v6_udp(decode(lt.EN10MB, ether(0x8847, mpls([2], V6_UDP))))
    # first nibble 0 (a pseudowire control word) is not guessed as IP
    assert decode(lt.EN10MB, ether(0x8847, mpls([100], b"\x00" * 40))) is None


def test_mpls_depth_is_bounded():
    stack = struct.pack("!I", 16 << 12 | 64) * (MAX_MPLS_LABELS + 1)
    assert decode(lt.EN10MB, ether(0x8847, stack + mpls([1], V4_TCP))) is None


def test_pppoe_session():
    check_v4_tcp(decode(lt.EN10MB, ether(0x8864, pppoe(0x0021, V4_TCP))))
    check_v6_udp(decode(lt.EN10MB, ether(0x8864, pppoe(0x0057, V6_UDP), tags=[(0x8100, 7)])))
    assert decode(lt.EN10MB, ether(0x8864, pppoe(0xC021, bytes(30)))) is None  # LCP


def test_macsec_integrity_only_and_encrypted():
    sectag = bytes([0x20, 0]) + struct.pack("!I", 1) + MAC_A + b"\0\x01"
    check_v4_tcp(decode(lt.EN10MB, ether(0x88E5, sectag + b"\x08\x00" + V4_TCP + bytes(16))))
    encrypted = bytes([0x2C, 0]) + sectag[2:]
    assert decode(lt.EN10MB, ether(0x88E5, encrypted + b"\x08\x00" + V4_TCP)) is None


def test_fabricpath_arista_and_nsh():
    inner = MAC_A + MAC_B + b"\x08\x00" + V4_TCP
    check_v4_tcp(decode(lt.EN10MB, ether(0x8903, b"\x40\x20" + inner)))
    for version, size in ((0x0010, 8), (0x0120, 6)):
        head = struct.pack("!HH", 1, version) + bytes(size)
        check_v4_tcp(decode(lt.EN10MB, ether(0xD28B, head + b"\x08\x00" + V4_TCP)))
    assert decode(lt.EN10MB, ether(0xD28B, struct.pack("!HH", 1, 0x11) + bytes(8) + b"\x08\x00" + V4_TCP)) is None
    nsh = bytes([0x0F, 0x06, 0x01, 0x01]) + bytes(20)  # length 6 words, MD type 1, next: IPv4
    check_v4_tcp(decode(lt.EN10MB, ether(0x894F, nsh + V4_TCP)))
    nsh_eth = bytes([0x0F, 0x02, 0x02, 0x03]) + bytes(4)  # length 2 words, next: Ethernet
    check_v6_udp(decode(lt.EN10MB, ether(0x894F, nsh_eth + MAC_A + MAC_B + b"\x86\xdd" + V6_UDP)))


def test_non_ip_ethernet():
    arp = ether(0x0806, bytes(28))
    assert decode(lt.EN10MB, arp) is None
    assert decode(lt.EN10MB, ether(0x88CC, bytes(40))) is None
    assert decode(lt.EN10MB, b"\x01" * 13) is None


@pytest.mark.parametrize("make", [sll, sll2])
def test_linux_cooked(make):
    link = lt.LINUX_SLL if make is sll else lt.LINUX_SLL2
    check_v4_tcp(decode(link, make(0x0800, V4_TCP)))
    check_v6_udp(decode(link, make(0x86DD, V6_UDP)))
    check_v4_tcp(decode(link, make(0x8100, struct.pack("!HH", 42, 0x0800) + V4_TCP)))
    assert decode(link, make(0x0806, bytes(28))) is None
    assert decode(link, make(0x0800, V4_TCP, hatype=824)) is None  # netlink: protocol is a family
    r = decode(link, make(0x0800, V4_TCP))
    assert r["eth_src"] is None and r["vlan"] is None


@pytest.mark.parametrize("af", [24, 28, 30])
@pytest.mark.parametrize("order", ["<", ">"])
def test_null_either_byte_order(af, order):
    check_v4_tcp(decode(lt.NULL, struct.pack(order + "I", 2) + V4_TCP))
    check_v6_udp(decode(lt.NULL, struct.pack(order + "I", af) + V6_UDP))
    assert decode(lt.NULL, struct.pack(order + "I", 7) + V4_TCP) is None  # AF_OSI


@pytest.mark.parametrize("af", [24, 28, 30])
def test_loop_network_order(af):
    check_v4_tcp(decode(lt.LOOP, struct.pack(">I", 2) + V4_TCP))
    check_v6_udp(decode(lt.LOOP, struct.pack(">I", af) + V6_UDP))
    assert decode(lt.LOOP, struct.pack("<I", 2) + V4_TCP) is None


@pytest.mark.parametrize("link", [lt.RAW, lt.RAW_OPENBSD, lt.RAW_LINUX])
def test_raw(link):
    check_v4_tcp(decode(link, V4_TCP))
    check_v6_udp(decode(link, V6_UDP))
    assert decode(link, b"\x00" * 40) is None


def test_ipv4_and_ipv6_link_types():
    check_v4_tcp(decode(lt.IPV4, V4_TCP))
    check_v6_udp(decode(lt.IPV6, V6_UDP))
    assert decode(lt.IPV6, V4_TCP) is None  # LINKTYPE_IPV6 carries only IPv6


def test_ipv4_ethertype_carrying_ipv6_is_ipv6():
    check_v6_udp(decode(lt.EN10MB, ether(0x0800, V6_UDP)))  # tshark hands it to IPv6 too
    assert decode(lt.EN10MB, ether(0x86DD, V4_TCP)) is None


@pytest.mark.parametrize("head", [b"\xff\x03\x00\x21", b"\x00\x21", b"\xff\x03\x21", b"\x21"])
def test_ppp_ipv4(head):
    check_v4_tcp(decode(lt.PPP, head + V4_TCP))


@pytest.mark.parametrize("head", [b"\xff\x03\x00\x57", b"\x00\x57", b"\x57"])
def test_ppp_ipv6(head):
    check_v6_udp(decode(lt.PPP, head + V6_UDP))


def test_ppp_mpls_and_other():
    check_v4_tcp(decode(lt.PPP, b"\xff\x03\x02\x81" + mpls([17], V4_TCP)))
    assert decode(lt.PPP, b"\xff\x03\xc0\x21" + bytes(20)) is None  # LCP
    check_v4_tcp(decode(lt.PPP, b"\x0f\x00\x08\x00" + V4_TCP))  # Cisco HDLC on a PPP link


def test_c_hdlc():
    check_v4_tcp(decode(lt.C_HDLC, b"\x0f\x00\x08\x00" + V4_TCP))
    check_v6_udp(decode(lt.C_HDLC, b"\x8f\x00\x86\xdd" + V6_UDP))
    assert decode(lt.C_HDLC, b"\x8f\x00\x80\x35" + bytes(20)) is None  # SLARP


def test_unknown_link_type():
    assert decode(lt.IEEE802_11_RADIOTAP, ether(0x0800, V4_TCP)) is None
    assert link_info(lt.IEEE802_11_RADIOTAP, b"") == (0, 0, None)


def test_link_info():
    assert link_info(lt.EN10MB, ether(0x0800, V4_TCP, tags=[(0x8100, 9)])) == (4, 18, 9)
    assert link_info(lt.LINUX_SLL, sll(0x86DD, V6_UDP)) == (6, 16, None)


# --- IPv4 -----------------------------------------------------------------------------
def test_ipv4_options():
    pkt = ipv4(17, udp(7, 8, b"opt"), options=b"\x94\x04\x00\x00" + b"\x01" * 4)
    r = decode(lt.RAW, pkt)
    assert (r["src_port"], r["dst_port"], r["payload"]) == (7, 8, b"opt")


def test_ipv4_first_fragment_has_ports_later_ones_not():
    body = udp(1000, 2000, b"A" * 16)
    first = decode(lt.RAW, ipv4(17, body, mf=True))
    assert first["fragment"] == (True, 0) and (first["src_port"], first["dst_port"]) == (1000, 2000)
    later = decode(lt.RAW, ipv4(17, b"B" * 16, offset=24))
    assert later["fragment"] == (False, 24) and later["src_port"] is None and later["protocol"] == "udp"
    assert later["payload"] == b"B" * 16


def test_ipv4_truncated_transport_has_no_ports():
    pkt = ipv4(6, tcp(1, 2, b"data"))
    assert decode(lt.RAW, pkt[:23])["src_port"] is None
    r = decode(lt.RAW, pkt[:24])
    assert (r["src_port"], r["dst_port"], r["tcp_seq"], r["payload"]) == (1, 2, None, b"")
    r = decode(lt.RAW, pkt[:42], length=len(pkt))
    assert r["payload"] == b"da"  # cut short at caplen
    assert decode(lt.RAW, pkt[:19]) is None


def test_ipv4_total_length_bounds_ports_and_payload():
    assert decode(lt.RAW, ipv4(17, udp(1, 2, b"xyz"), total=22))["src_port"] is None
    r = decode(lt.RAW, ipv4(17, udp(1, 2, b"xyz"), total=29))
    assert r["payload"] == b"x"


def test_ipv4_zero_total_length_means_to_the_end():  # segmentation offload
    r = decode(lt.RAW, ipv4(6, tcp(1, 2, b"tso"), total=0))
    assert r["payload"] == b"tso" and r["src_port"] == 1


def test_ipv4_bogus_header_lengths_give_no_record():
    good = bytearray(ipv4(6, tcp()))
    good[0] = 0x44
    assert decode(lt.RAW, bytes(good)) is None
    assert decode(lt.RAW, ipv4(6, tcp(), total=12)) is None


def test_udp_length_shorter_than_ip_payload_ends_payload():
    r = decode(lt.RAW, ipv4(17, udp(1, 2, b"abcdef", length=10)))
    assert r["payload"] == b"ab"


def test_tcp_options_and_flags():
    r = decode(lt.RAW, ipv4(6, tcp(1, 2, b"P", flags=0x1C2, options=b"\x02\x04\x05\xb4" + b"\x01" * 8)))
    assert r["payload"] == b"P" and r["tcp_flags"] == 0x1C2


@pytest.mark.parametrize("proto,name", [(1, "icmp"), (2, "igmp"), (47, "gre"), (50, "esp"), (51, "ah"),
                                        (89, "ospf"), (103, "pim"), (112, "vrrp"), (4, "ipv4"),
                                        (41, "ipv6"), (253, "ip-proto-253")])
def test_protocol_names(proto, name):
    r = decode(lt.RAW, ipv4(proto, b"\x03\x01" + bytes(10)))
    assert r["protocol"] == name and r["src_port"] is None and r["payload"] == b"\x03\x01" + bytes(10)
    if proto == 1:
        assert (r["icmp_type"], r["icmp_code"]) == (3, 1)
    assert name in PROTOCOLS or name.startswith("ip-proto-")


def test_sctp_has_ports():
    r = decode(lt.RAW, ipv4(132, struct.pack("!HHII", 2905, 2906, 1, 0)))
    assert (r["protocol"], r["src_port"], r["dst_port"]) == ("sctp", 2905, 2906)


def test_tunnel_reports_outer_header():
    inner = ipv4(6, tcp(1, 2), src="192.168.0.1", dst="192.168.0.2")
    r = decode(lt.RAW, ipv4(4, inner))
    assert (r["src_host"], r["protocol"], r["src_port"]) == ("10.0.0.1", "ipv4", None)
    gre = struct.pack("!HH", 0, 0x0800) + inner
    assert decode(lt.RAW, ipv4(47, gre))["protocol"] == "gre"
    assert decode(lt.RAW, ipv6(41, inner))["protocol"] == "ipv6"


def test_icmp_error_has_no_ports():
    quoted = ipv4(17, udp(53, 5353))
    r = decode(lt.RAW, ipv4(1, icmp(3, 3, quoted)))
    assert (r["protocol"], r["src_port"], r["icmp_type"], r["icmp_code"]) == ("icmp", None, 3, 3)


# --- IPv6 -----------------------------------------------------------------------------
def test_ipv6_extension_chain():
    chain = ext(0, 43) + ext(43, 60, 1) + ext(60, 51) + ext(51, 6)
    r = decode(lt.RAW, ipv6(0, chain + tcp(9, 10, b"x")))
    assert (r["protocol"], r["ip_proto"], r["src_port"], r["dst_port"], r["payload"]) == ("tcp", 6, 9, 10, b"x")


def test_ipv6_fragments():
    first = decode(lt.RAW, ipv6(44, frag6(17, 0, True, 77) + udp(1, 2, b"zz")))
    assert first["fragment"] == (True, 0) and first["src_port"] == 1 and first["ip_id"] == 77
    later = decode(lt.RAW, ipv6(44, frag6(17, 1448, False) + b"rest"))
    assert later["fragment"] == (False, 1448) and later["src_port"] is None
    assert later["protocol"] == "udp" and later["payload"] == b"rest"


def test_ipv6_icmpv6_and_no_next_header():
    r = decode(lt.RAW, ipv6(58, icmp(128, 0, b"ping")))
    assert (r["protocol"], r["icmp_type"], r["payload"]) == ("icmpv6", 128, b"\x80\x00\x00\x00ping")
    assert decode(lt.RAW, ipv6(59, b""))["protocol"] == "ipv6-nonxt"


def test_ipv6_long_chain_is_walked_and_bounded():
    n = 100
    chain = b"".join(ext(60, 60) for _ in range(n - 1)) + ext(60, 17)
    assert decode(lt.RAW, ipv6(60, chain + udp(1, 2)))["src_port"] == 1
    chain = b"".join(ext(60, 60) for _ in range(400))
    r = decode(lt.RAW, ipv6(60, chain))
    assert r["protocol"] == "ipv6-opts" and r["src_port"] is None


def test_ipv6_truncated_chain_and_header():
    pkt = ipv6(0, ext(0, 17) + udp(1, 2))
    r = decode(lt.RAW, pkt[:44])  # a cut header still names the next one (as tshark reads it)
    assert r["protocol"] == "udp" and r["src_port"] is None and r["payload"] == b""
    r = decode(lt.RAW, pkt[:40])
    assert r["protocol"] == "hopopt" and r["src_port"] is None
    cut_fragment = ipv6(44, frag6(17, 0, True) + udp(1, 2))[:46]
    r = decode(lt.RAW, cut_fragment)  # a fragment header is only read whole
    assert r["protocol"] == "ipv6-frag" and r["fragment"] is None
    assert decode(lt.RAW, pkt[:39]) is None


def test_ipv6_zero_payload_length_means_to_the_end():
    r = decode(lt.RAW, ipv6(0, ext(0, 17) + udp(1, 2, b"jumbo"), plen=0))
    assert r["payload"] == b"jumbo" and r["src_port"] == 1
    r = decode(lt.RAW, ipv6(59, b"", plen=0) + b"trailer")  # an empty packet, not a jumbogram
    assert r["payload"] == b""


def test_ipv6_address_text_is_rfc5952():
    r = decode(lt.RAW, ipv6(17, udp(), src="2001:0db8:0000:0000:0001:0000:0000:0001", dst="::ffff:1.2.3.4"))
    assert r["src_host"] == "2001:db8::1:0:0:1"
    assert r["dst_host"] == str(ipaddress.IPv6Address("::ffff:1.2.3.4"))


def test_non_bytes_input_and_extra_field_names():
    check_v4_tcp(decode(lt.RAW, memoryview(V4_TCP)))
    check_v4_tcp(decode(lt.RAW, bytearray(V4_TCP)))
    # every extra field but the packet's interface and the application fields (decoded
    # from the payload by purepcap._appfields, not by decode) is one of decode's keys
    assert set(EXTRA_FIELDS) - {"interface"} - set(APPLICATION) <= KEYS


# --- hypothesis -----------------------------------------------------------------------
LINKS = [lt.EN10MB, lt.LINUX_SLL, lt.LINUX_SLL2, lt.NULL, lt.LOOP, lt.RAW, lt.RAW_OPENBSD, lt.RAW_LINUX,
         lt.IPV4, lt.IPV6, lt.PPP, lt.PPP_HDLC, lt.C_HDLC]


@given(st.sampled_from(LINKS), st.binary(max_size=300), st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_random_bytes_never_raise(link, data, length):
    r = decode(link, data, length)
    assert r is None or set(r) == KEYS


ipv4_addr = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
ipv6_addr = st.builds(lambda n: str(ipaddress.IPv6Address(n)), st.integers(0, 2**128 - 1))
port = st.integers(0, 65535)


@st.composite
def stacks(draw):
    """A random valid packet and the fields it must decode to."""
    want: dict = {}
    version = draw(st.sampled_from([4, 6]))
    transport = draw(st.sampled_from(["tcp", "udp", "icmp", "sctp", "other"]))
    payload = draw(st.binary(max_size=64))
    sport, dport = draw(port), draw(port)
    want.update(src_port=None, dst_port=None, payload=payload)
    if transport == "tcp":
        seq, ack, win = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), draw(port)
        flags = draw(st.integers(0, 0x1FF))
        opts = b"\x01" * 4 * draw(st.integers(0, 10))
        body, proto = tcp(sport, dport, payload, seq, ack, flags, win, opts), 6
        want.update(src_port=sport, dst_port=dport, tcp_seq=seq, tcp_ack=ack, tcp_window=win, tcp_flags=flags)
    elif transport == "udp":
        body, proto = udp(sport, dport, payload), 17
        want.update(src_port=sport, dst_port=dport)
    elif transport == "sctp":
        body, proto = struct.pack("!HHII", sport, dport, 0, 0), 132
        want.update(src_port=sport, dst_port=dport, payload=body)
    elif transport == "icmp":
        t, c = draw(st.integers(0, 255)), draw(st.integers(0, 255))
        body, proto = icmp(t, c, payload), (1 if version == 4 else 58)
        want.update(icmp_type=t, icmp_code=c, payload=body)
    else:
        proto = draw(st.sampled_from([47, 50, 89, 103, 112, 253]))
        body = payload
    want["protocol"] = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 47: "gre", 50: "esp",
                        89: "ospf", 103: "pim", 112: "vrrp", 253: "ip-proto-253"}[proto]
    want["ip_proto"] = proto
    ttl = draw(st.integers(0, 255))
    if version == 4:
        src, dst = draw(ipv4_addr), draw(ipv4_addr)
        opts = b"\x01" * 4 * draw(st.integers(0, 10))
        ident = draw(port)
        mf = draw(st.booleans())
        ip = ipv4(proto, body, src, dst, ttl, ident, mf=mf, options=opts)
        want.update(ip_id=ident, fragment=(True, 0) if mf else None)
        etype, af = 0x0800, 2
    else:
        src, dst = draw(ipv6_addr), draw(ipv6_addr)
        kinds = draw(st.lists(st.sampled_from([0, 43, 60, 51, 44]), max_size=6))
        chain, nxt = b"", proto
        for kind in reversed(kinds):
            if kind == 44:
                chain = frag6(nxt, 0, True, 5) + chain
                want.update(fragment=(True, 0), ip_id=5)
            else:
                chain = ext(kind, nxt, draw(st.integers(0, 3))) + chain
            nxt = kind
        ip = ipv6(nxt, chain + body, src, dst, ttl)
        etype, af = 0x86DD, draw(st.sampled_from([24, 28, 30]))
    want.update(src_host=str(ipaddress.ip_address(src)), dst_host=str(ipaddress.ip_address(dst)),
                ip_version=version, ttl=ttl, ip_length=len(ip))
    link = draw(st.sampled_from(LINKS))
    if link == lt.EN10MB:
        tags = draw(st.lists(st.tuples(st.sampled_from([0x8100, 0x88A8, 0x9100]), port), max_size=4))
        wrap = draw(st.sampled_from(["plain", "mpls", "pppoe"]))
        if wrap == "mpls":
            labels = draw(st.lists(st.integers(16, 2**20 - 1), min_size=1, max_size=4))
            frame = ether(0x8847, mpls(labels, ip), tags=tags)
        elif wrap == "pppoe":
            frame = ether(0x8864, pppoe(0x21 if version == 4 else 0x57, ip), tags=tags)
        else:
            frame = ether(etype, ip, tags=tags)
        frame += bytes(max(0, 60 - len(frame)))  # Ethernet padding must not reach the payload
        want.update(vlan=tags[0][1] & 0xFFF if tags else None, eth_src="02:00:00:00:00:aa",
                    eth_dst="02:00:00:00:00:bb")
    elif link in (lt.LINUX_SLL, lt.LINUX_SLL2):
        frame = (sll if link == lt.LINUX_SLL else sll2)(etype, ip)
    elif link == lt.NULL:
        frame = struct.pack(draw(st.sampled_from("<>")) + "I", af) + ip
    elif link == lt.LOOP:
        frame = struct.pack(">I", af) + ip
    elif link in (lt.PPP, lt.PPP_HDLC):
        frame = draw(st.sampled_from([b"\xff\x03", b""])) + (b"\x00\x21" if version == 4 else b"\x00\x57") + ip
    elif link == lt.C_HDLC:
        frame = b"\x0f\x00" + struct.pack("!H", etype) + ip
    elif link == lt.IPV4 and version == 6:
        frame, link = ip, lt.IPV6
    else:
        frame = ip
        if link == lt.IPV6 and version == 4:
            link = lt.IPV4
    return link, frame, want


@given(stacks())
def test_valid_stacks_decode_to_built_fields(case):
    link, frame, want = case
    r = decode(link, frame, len(frame))
    assert r is not None
    for key, value in want.items():
        assert r[key] == value, key


@given(stacks(), st.data())
def test_truncated_and_mutated_stacks_never_raise(case, data):
    link, frame, _ = case
    cut = data.draw(st.integers(0, len(frame)))
    r = decode(link, frame[:cut], len(frame))
    assert r is None or set(r) == KEYS
    if r is not None:
        assert len(r["payload"]) <= cut
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(frame) - 1), st.integers(0, 255)), max_size=8))
    mutated = bytearray(frame)
    for i, b in flips:
        mutated[i] = b
    r = decode(link, bytes(mutated), data.draw(st.integers(0, 2**32 - 1)))
    assert r is None or set(r) == KEYS
