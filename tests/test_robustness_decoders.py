# Hostile packets and expressions (issue 9): a malformed single packet never raises,
# whatever its link type and bytes; nesting (VLAN, MPLS, IPv6 extension headers,
# tunnels, filter parentheses) has depth limits, so deep input costs a bounded amount
# and never a RecursionError; the filter parser raises only FilterError (a PcapError).
#
# These check headers.decode, records() and the filter parser written for issues 3 and
# 5 against the interfaces in INTERFACES.md; each skips cleanly while its module is absent.
from __future__ import annotations

import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import purepcap
from purepcap import FilterError, PcapError, linktypes
from purepcap.format import Packet

headers = pytest.importorskip("purepcap.headers")

KEYS = {"src_host", "dst_host", "src_port", "dst_port", "protocol", "ip_version", "ttl", "ip_id",
        "tcp_flags", "tcp_seq", "tcp_ack", "tcp_window", "icmp_type", "icmp_code", "vlan", "eth_src",
        "eth_dst", "fragment", "ip_proto", "ip_length", "payload"}

LINKTYPES = sorted({v for k, v in vars(linktypes).items() if k.isupper() and isinstance(v, int) and v < 1000}
                   | {0, 1, 9, 12, 14, 101, 104, 105, 113, 127, 228, 229, 276, 0xFFFF})

ETH = bytes(6) + bytes.fromhex("020000000001")
IPV4 = bytes.fromhex("4500003c000040004006") + bytes(2) + bytes([10, 0, 0, 1, 10, 0, 0, 2])
IPV6 = bytes.fromhex("6000000000140640") + bytes(15) + b"\x01" + bytes(15) + b"\x02"


def decode_ok(linktype: int, data: bytes, length: int | None = None) -> dict | None:
    out = headers.decode(linktype, data, length)
    assert out is None or isinstance(out, dict)
    if out is not None:
        assert KEYS <= set(out), KEYS - set(out)
    return out


# Prefixes that take the decoder deep before the random bytes begin
DEEP_PREFIXES = [
    (1, b""),
    (1, ETH + b"\x08\x00"),
    (1, ETH + b"\x86\xdd"),
    (1, ETH + b"\x81\x00\x00\x05\x81\x00\x00\x06\x08\x00"),
    (1, ETH + b"\x88\x47" + bytes.fromhex("0001 0100")),
    (1, ETH + b"\x88\x64" + bytes.fromhex("1100 0001 0010 0021")),
    (1, ETH + b"\x08\x00" + IPV4[:9] + b"\x2f" + IPV4[10:]),  # GRE
    (1, ETH + b"\x08\x00" + IPV4[:9] + b"\x04" + IPV4[10:]),  # IP in IP
    (1, ETH + b"\x86\xdd" + IPV6[:6] + b"\x00" + IPV6[7:]),  # hop-by-hop next
    (1, ETH + b"\x86\xdd" + IPV6[:6] + b"\x2c" + IPV6[7:]),  # fragment next
    (101, IPV4[:9] + b"\x11" + IPV4[10:]),
    (101, IPV6[:6] + b"\x3a" + IPV6[7:]),
    (113, bytes(14) + b"\x08\x00"),
    (276, bytes.fromhex("0800 0000") + bytes(16)),
    (0, b"\x02\x00\x00\x00"),
    (9, b"\x00\x21"),
]


@given(st.sampled_from(LINKTYPES), st.binary(max_size=200), st.one_of(st.none(), st.integers(0, 70000)))
def test_decode_never_raises_on_any_bytes(linktype: int, data: bytes, length: int | None) -> None:
    decode_ok(linktype, data, length)


@given(st.sampled_from(DEEP_PREFIXES), st.binary(max_size=120), st.one_of(st.none(), st.integers(0, 70000)))
def test_decode_never_raises_past_a_valid_prefix(prefix, tail: bytes, length: int | None) -> None:
    linktype, head = prefix
    data = head + tail
    decode_ok(linktype, data, length)
    for cut in range(0, len(data) + 1, 7):  # every truncation of it too
        decode_ok(linktype, data[:cut])


def count_lines_in(module, fn) -> int:
    n = 0

    def local(frame, event, arg):
        nonlocal n
        if event == "line":
            n += 1
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename == module.__file__ else None

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return n


NESTING = {
    "vlan": lambda n: ETH + b"\x81\x00\x00\x01" * n + b"\x08\x00" + IPV4,
    "qinq": lambda n: ETH + b"\x88\xa8\x00\x01" * n + b"\x08\x00" + IPV4,
    "mpls": lambda n: ETH + b"\x88\x47" + b"\x00\x01\x00\x40" * n + b"\x00\x01\x01\x40" + IPV4,
    "ipv6-extensions": lambda n: ETH + b"\x86\xdd" + IPV6[:4] + struct.pack(">H", min(8 * n + 20, 0xFFFF)) + b"\x00"
    + IPV6[7:] + b"\x3c\x00" + bytes(6) + (b"\x3c\x00" + bytes(6)) * (n - 2) + b"\x06\x00" + bytes(6) + bytes(20),
    "ip-in-ip": lambda n: ETH + b"\x08\x00" + (IPV4[:9] + b"\x04" + IPV4[10:]) * n + IPV4,
    "ipv6-in-ipv6": lambda n: ETH + b"\x86\xdd" + (IPV6[:6] + b"\x29" + IPV6[7:]) * n + IPV6,
}


@pytest.mark.parametrize("kind", sorted(NESTING))
def test_nesting_is_bounded(kind: str) -> None:
    make = NESTING[kind]
    shallow = count_lines_in(headers, lambda: decode_ok(1, make(300)))
    deep = count_lines_in(headers, lambda: decode_ok(1, make(3000)))
    # ten times the nesting may not cost ten times the work: a depth limit stops it
    assert deep < 2 * shallow + 200, (shallow, deep)
    decode_ok(1, make(100_000))  # and no RecursionError at any depth


def test_records_never_raise_on_malformed_packets() -> None:
    records_mod = pytest.importorskip("purepcap._records")
    fields = list(headers.EXTRA_FIELDS)

    @given(st.lists(st.tuples(st.sampled_from(DEEP_PREFIXES), st.binary(max_size=80),
                              st.integers(0, 70000)), max_size=6))
    def prop(items) -> None:
        packets = [Packet(i + 1, None, len(h + t), n, lt, 0, h + t) for i, ((lt, h), t, n) in enumerate(items)]
        rows = list(records_mod.records(packets, payload=True, fields=fields))
        assert len(rows) <= len(packets)

    prop()


# -- the filter parser ---------------------------------------------------------------------------
def filter_api():
    try:
        from purepcap.filter import offline_matcher, parse
    except ImportError:
        pytest.skip("purepcap.filter (issue 5) is not there yet")
    return parse, offline_matcher


WORDS = ["tcp", "udp", "icmp", "ip", "ip6", "host", "net", "port", "portrange", "src", "dst", "and", "or",
         "not", "(", ")", "[", "]", "ether", "vlan", "mpls", "len", "less", "greater", "proto", "broadcast",
         "multicast", "gateway", "mask", "/", "&", "|", "+", "-", "*", "%", "<<", ">>", "=", "!=", "<", ">=",
         "!", "&&", "||", ":", "0", "1", "80", "65536", "4294967296", "10.0.0.1", "::1", "fe80::/10",
         "aa:bb:cc:dd:ee:ff", "0x8100", "tcp[13]", "ip[0:4]", "tcp[tcpflags]", "icmptype", "\\", "'", "\""]


@given(st.text(max_size=80))
def test_filter_parse_raises_only_filter_error_on_any_text(expression: str) -> None:
    parse, _ = filter_api()
    try:
        parse(expression)
    except FilterError as e:
        assert isinstance(e, PcapError)


@given(st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join))
def test_filter_parse_raises_only_filter_error_on_token_soup(expression: str) -> None:
    parse, _ = filter_api()
    try:
        parse(expression)
    except FilterError:
        pass


DEEP_EXPRESSIONS = {
    "parentheses": "(" * 20_000 + "tcp" + ")" * 20_000,
    "not": "not " * 20_000 + "tcp",
    "long-and-chain": "tcp and " * 5_000 + "udp",
    "long-sum": "len = " + "1 + " * 10_000 + "1",
    "nested-index": "ip[" * 5_000 + "0" + "]" * 5_000 + " = 1",
    "unary-minus": "-" * 20_000 + "1 = 1",
}


@pytest.mark.parametrize("expression", list(DEEP_EXPRESSIONS.values()), ids=list(DEEP_EXPRESSIONS))
def test_deep_expressions_are_a_filter_error_not_a_recursion_error(expression: str) -> None:
    parse, _ = filter_api()
    try:
        parse(expression)
    except FilterError:
        pass


@given(st.sampled_from(["tcp port 80", "ip[0] & 0xf > 5", "vlan and udp", "ip6 and tcp[13] & 2 != 0",
                        "mpls and net 10.0.0.0/8", "icmp[icmptype] = 8", "len > 60 and ether[12:2] = 0x800",
                        "ip[ip[0] & 0xf] = 1", "tcp[tcp[12] >> 4] = 0", "udp[100000] = 1"]),
       st.sampled_from(DEEP_PREFIXES), st.binary(max_size=80))
def test_filters_never_raise_on_malformed_packets(expression: str, prefix, tail: bytes) -> None:
    _, offline_matcher = filter_api()
    match = offline_matcher(expression)
    lt, head = prefix
    data = head + tail
    try:
        assert match(Packet(1, 0, len(data), len(data), lt, 0, data)) in (True, False)
    except FilterError:
        # an expression that cannot apply to the link type at all ("vlan" on raw IP,
        # which tcpdump refuses to compile too): that depends on the link type only,
        # never on the packet's bytes
        with pytest.raises(FilterError):
            offline_matcher(expression)(Packet(1, 0, 0, 0, lt, 0, b""))


def test_a_filtered_damaged_capture_still_raises_only_pcap_error() -> None:
    filter_api()
    import io

    from purepcap.format import PcapWriter
    out = io.BytesIO()
    with PcapWriter(out) as w:
        w.write_packet(0, ETH + b"\x08\x00" + IPV4[:9] + b"\x06" + IPV4[10:] + bytes(20))
    raw = out.getvalue()
    for cut in range(len(raw) + 1):
        try:
            with purepcap.open(raw[:cut], filter="tcp") as cap:
                list(cap)
        except PcapError:
            pass


# -- to_pandas reads damage as open() and records() do --------------------------------------------
def test_to_pandas_refuses_a_packet_block_whose_trailing_length_lies() -> None:
    pytest.importorskip("pandas")
    import io

    from purepcap._records import records
    from purepcap.dataframe import to_pandas
    from purepcap.format import PcapngWriter
    frame = ETH + b"\x08\x00" + IPV4[:9] + b"\x11" + IPV4[10:] + bytes.fromhex("0001003500090000") + b"q"
    out = io.BytesIO()
    starts = []
    with PcapngWriter(out) as w:
        for i in range(3):
            w.flush()
            starts.append(len(out.getvalue()))
            w.write_packet(10**18 + i, frame)
    raw = bytearray(out.getvalue())
    start = starts[1]
    blen = struct.unpack_from("<I", raw, start + 4)[0]
    raw[start + blen - 4:start + blen] = struct.pack("<I", 12345)
    with pytest.raises(purepcap.DamagedError) as by_records:
        list(records(bytes(raw)))
    assert by_records.value.offset == start
    with pytest.raises(purepcap.DamagedError) as by_pandas:
        to_pandas(bytes(raw), errors="raise")
    assert by_pandas.value.offset == start
