# purepcap.records: the API (sources, key order, protocol=, payload=, fields=,
# filter=), and the property that the Ethernet/IPv4 fast path gives exactly the
# rows the general decoder gives, on valid, truncated and mutated packets.
from __future__ import annotations

import io

import pytest
from conftest import FIXTURES
from hypothesis import given
from hypothesis import strategies as st
from test_headers import V4_TCP, V6_UDP, ether, ext, frag6, icmp, ipv4, ipv6, sll, tcp, udp

import purepcap
from purepcap import linktypes as lt
from purepcap import strategies as pst
from purepcap._records import EXTRA_FIELDS, protocol_numbers, records
from purepcap.format import Packet, PcapngWriter, PcapWriter

DEFAULT_KEYS = ["frame", "time", "length", "caplen", "src_host", "src_port", "dst_host", "dst_port", "protocol"]
T0 = 1_700_000_000_123_456_789

FRAMES = [
    ether(0x0800, V4_TCP),                                             # 1 tcp (fast path)
    ether(0x0806, bytes(28)),                                          # 2 ARP: no record
    ether(0x86DD, V6_UDP),                                             # 3 udp over IPv6
    ether(0x0800, ipv4(1, icmp(8, 0, b"ping"), src="10.9.9.9")),       # 4 icmp (fast path)
    ether(0x0800, ipv4(17, udp(53, 4242, b"answer")), tags=[(0x8100, 12)]),  # 5 udp in a VLAN
    ether(0x0800, ipv4(47, b"\x00\x00\x08\x00" + V4_TCP)),             # 6 gre
    ether(0x0800, ipv4(17, b"later", offset=8)),                       # 7 later fragment
]


def capture_bytes(frames=FRAMES, linktype=lt.EN10MB, nanosecond=True) -> bytes:
    buf = io.BytesIO()
    w = PcapWriter(buf, linktype=linktype, nanosecond=nanosecond)
    for i, f in enumerate(frames):
        w.write_packet(T0 + i * 1000, f)
    w.flush()
    return buf.getvalue()


def test_rows_keys_and_values(tmp_path):
    path = tmp_path / "a.pcap"
    path.write_bytes(capture_bytes())
    rows = list(records(path))
    assert [r["frame"] for r in rows] == [1, 3, 4, 5, 6, 7]
    assert all(list(r) == DEFAULT_KEYS for r in rows)
    first = rows[0]
    assert first == {"frame": 1, "time": T0, "length": len(FRAMES[0]), "caplen": len(FRAMES[0]),
                     "src_host": "10.0.0.1", "src_port": 40000, "dst_host": "10.0.0.2", "dst_port": 443,
                     "protocol": "tcp"}
    assert [r["protocol"] for r in rows] == ["tcp", "udp", "icmp", "udp", "gre", "udp"]
    assert rows[1]["src_host"] == "2001:db8::1" and rows[1]["time"] == T0 + 2000
    assert rows[2]["src_port"] is None and rows[2]["src_host"] == "10.9.9.9"
    assert (rows[3]["src_port"], rows[3]["dst_port"]) == (53, 4242)
    assert rows[4]["src_port"] is None and rows[5]["src_port"] is None


def test_sources_path_str_bytes_fileobj_packets_and_capture(tmp_path):
    raw = capture_bytes()
    path = tmp_path / "a.pcap"
    path.write_bytes(raw)
    expect = list(records(raw))
    assert len(expect) == 6
    assert list(records(str(path))) == expect
    assert list(records(io.BytesIO(raw))) == expect
    assert list(records(memoryview(raw))) == expect
    with purepcap.open(raw) as cap:
        assert list(records(cap)) == expect
    packets = list(purepcap.open(raw))
    assert list(records(packets)) == expect
    assert list(records(iter(packets))) == expect


def test_pcapng_multi_interface_link_types():
    buf = io.BytesIO()
    w = PcapngWriter(buf, linktype=None)
    w.add_interface(lt.EN10MB)
    w.add_interface(lt.LINUX_SLL)
    w.add_interface(lt.RAW)
    w.write_packet(T0, ether(0x0800, V4_TCP), interface=0)
    w.write_packet(T0 + 1, sll(0x86DD, V6_UDP), interface=1)
    w.write_packet(T0 + 2, V4_TCP, interface=2)
    w.flush()
    rows = list(records(buf.getvalue(), fields=["interface", "ip_version"]))
    assert [(r["interface"], r["ip_version"], r["protocol"]) for r in rows] == [(0, 4, "tcp"), (1, 6, "udp"),
                                                                             (2, 4, "tcp")]


def test_protocol_one_or_several():
    raw = capture_bytes()
    assert [r["frame"] for r in records(raw, protocol="udp")] == [3, 5, 7]
    assert [r["frame"] for r in records(raw, protocol=("tcp", "udp"))] == [1, 3, 5, 7]
    assert [r["frame"] for r in records(raw, protocol=["icmp", "gre"])] == [4, 6]
    assert [r["frame"] for r in records(raw, protocol="ip-proto-47")] == [6]
    assert [r["frame"] for r in records(raw, protocol="UDP", payload=True)] == [3, 5, 7]
    assert [r["frame"] for r in records(raw, protocol="udp", fields=["ttl"])] == [3, 5, 7]
    assert list(records(raw, protocol="sctp")) == []


def test_unknown_protocol_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"unknown protocol 'tcpp'.*tcp, udp, icmp, icmpv6, igmp.*ip-proto-N"):
        records(b"not even read", protocol="tcpp")
    with pytest.raises(ValueError, match="unknown protocol"):
        records(b"", protocol=("tcp", "ip-proto-256"))
    with pytest.raises(ValueError):
        records(b"", protocol=[6])


def test_protocol_aliases():
    assert protocol_numbers("icmp6") == protocol_numbers("icmpv6") == frozenset({58})
    assert protocol_numbers("ospfigp") == protocol_numbers("ospf") == frozenset({89})
    assert protocol_numbers(None) is None


def test_payload_rows():
    rows = list(records(capture_bytes(), payload=True))
    assert all(list(r) == DEFAULT_KEYS + ["payload"] for r in rows)
    assert [r["payload"] for r in rows] == [b"hello", b"dns?", icmp(8, 0, b"ping"), b"answer",
                                            b"\x00\x00\x08\x00" + V4_TCP, b"later"]


def test_payload_excludes_padding_and_is_cut_at_caplen():
    short = ether(0x0800, ipv4(17, udp(1, 2, b"ab")))
    frames = [short + bytes(60 - len(short)), ether(0x0800, ipv4(6, tcp(1, 2, b"0123456789")))]
    buf = io.BytesIO()
    w = PcapWriter(buf, snaplen=60)
    w.write_packet(T0, frames[0])
    w.write_packet(T0, frames[1][:60], length=len(frames[1]))
    w.flush()
    rows = list(records(buf.getvalue(), payload=True))
    assert rows[0]["payload"] == b"ab"
    assert rows[1]["payload"] == b"012345" and rows[1]["caplen"] == 60 and rows[1]["length"] == 64


def test_extra_fields():
    rows = list(records(capture_bytes(), fields=list(EXTRA_FIELDS)))
    assert list(rows[0]) == DEFAULT_KEYS + list(EXTRA_FIELDS)
    r = rows[0]
    assert (r["ip_version"], r["ttl"], r["ip_id"], r["tcp_seq"], r["tcp_ack"], r["tcp_flags"],
            r["tcp_window"]) == (4, 3, 99, 100, 200, 0x18, 4096)
    assert (r["eth_src"], r["eth_dst"], r["interface"], r["vlan"]) == ("02:00:00:00:00:aa",
                                                                     "02:00:00:00:00:bb", 0, None)
    assert rows[2]["icmp_type"] == 8 and rows[3]["vlan"] == 12 and rows[5]["fragment"] == (False, 8)
    with_payload = list(records(capture_bytes(), payload=True, fields=("ttl",)))
    assert list(with_payload[0]) == DEFAULT_KEYS + ["payload", "ttl"]
    with pytest.raises(ValueError, match="unknown field 'colour'.*tcp_flags"):
        records(b"", fields=["colour"])


def test_filter_goes_through_open():
    raw = capture_bytes()
    from purepcap.filter import offline_matcher
    try:
        offline_matcher("udp")
    except NotImplementedError:
        with pytest.raises(NotImplementedError, match="filter"):
            list(records(raw, filter="udp"))
        with pytest.raises(NotImplementedError, match="filter"):
            list(records(list(purepcap.open(raw)), filter="udp"))
    else:
        # as in tcpdump, "udp" does not look inside the VLAN tag of frame 5, "vlan and udp" does
        assert [r["frame"] for r in records(raw, filter="udp")] == [3, 7]
        assert [r["frame"] for r in records(list(purepcap.open(raw)), filter="udp")] == [3, 7]
        assert [r["frame"] for r in records(raw, filter="vlan and udp", protocol="udp")] == [5]


def test_records_closes_what_it_opened(tmp_path):
    path = tmp_path / "a.pcap"
    path.write_bytes(capture_bytes())
    it = records(path)
    next(it)
    it.close()  # the generator's finally closes the capture it opened
    assert list(records(path))  # and a new call works


def test_damaged_file_rows_then_error():
    raw = capture_bytes()
    with pytest.raises(purepcap.PcapError):
        rows = []
        for r in records(raw[:-3]):
            rows.append(r)
    assert [r["frame"] for r in rows] == [1, 3, 4, 5, 6]
    with pytest.warns(purepcap.PcapWarning):
        assert len(list(records(raw[:-3], strict=False))) == 5


# --- the fast path agrees with the general path --------------------------------------------
def general_rows(packets, payload):
    return [{k: r[k] for k in DEFAULT_KEYS + (["payload"] if payload else [])}
            for r in records(packets, payload=payload, fields=["ttl"])]


@st.composite
def ethernet_ip(draw):
    proto = draw(st.sampled_from([6, 17, 1, 132, 47]))
    body = draw(st.binary(max_size=40))
    if proto == 6:
        body = tcp(draw(st.integers(0, 65535)), 80, body, options=b"\x01" * 4 * draw(st.integers(0, 3)))
    elif proto == 17:
        body = udp(draw(st.integers(0, 65535)), 53, body)
    frag = draw(st.sampled_from([(False, 0), (True, 0), (False, 8), (True, 16)]))
    tags = draw(st.sampled_from([[], [], [(0x8100, 0x2005)], [(0x88A8, 7), (0x8100, 9)], [(0x8100, 1)] * 2]))
    if draw(st.booleans()):
        pkt = ether(0x0800, ipv4(proto, body, mf=frag[0], offset=frag[1]), tags=tags)
    else:
        nxt = draw(st.sampled_from([proto, 60, 44]))  # no extension header, destination options, fragment
        head = {proto: b"", 60: ext(60, proto), 44: frag6(proto, frag[1], frag[0])}[nxt]
        pkt = ether(0x86DD, ipv6(nxt, head + body, plen=draw(st.sampled_from([None, 0, 3, 500]))), tags=tags)
    pkt += bytes(draw(st.integers(0, 20)))  # padding or trailer
    return pkt


@given(st.lists(st.tuples(ethernet_ip(), st.integers(0, 120),
                          st.lists(st.tuples(st.integers(0, 90), st.integers(0, 255)), max_size=3)),
                min_size=1, max_size=8),
       st.booleans())
def test_fast_path_equals_general_path(cases, payload):
    packets = []
    for i, (frame, cut, flips) in enumerate(cases):
        data = bytearray(frame[:cut] if cut < len(frame) else frame)
        for at, value in flips:
            if at < len(data):
                data[at] = value
        packets.append(Packet(i + 1, T0 + i, len(data), len(frame), lt.EN10MB, 0, bytes(data)))
    assert list(records(packets, payload=payload)) == general_rows(packets, payload)


def test_fast_path_equals_general_path_on_the_built_frames():
    packets = list(purepcap.open(capture_bytes()))
    for payload in (False, True):
        assert list(records(packets, payload=payload)) == general_rows(packets, payload)


def test_rows_are_plain_dicts_of_builtin_types():
    for r in records(capture_bytes(), payload=True):
        assert type(r) is dict
        assert all(type(v) in (int, str, bytes, type(None)) for v in r.values())


def test_package_attribute_is_the_function_even_after_importing_the_module():
    import importlib

    importlib.import_module("purepcap._records")
    assert callable(purepcap.records) and purepcap.records is records


# --- purepcap.strategies (the build engineer's independent builder) ---------------------------
@given(st.lists(pst.packets(max_payload=100), min_size=1, max_size=6), st.booleans())
def test_records_of_built_packets_give_the_built_fields(stacks, payload):
    packets = [Packet(i + 1, T0 + i, len(bytes(s)), len(bytes(s)), s.linktype, 0, bytes(s))
               for i, s in enumerate(stacks)]
    rows = list(records(packets, payload=payload, fields=["ttl", "vlan"]))
    fast = list(records(packets, payload=payload))
    expected = [(i + 1, s.fields()) for i, s in enumerate(stacks) if s.fields() is not None]
    assert [r["frame"] for r in rows] == [f for f, _ in expected]
    for row, quick, (_, want) in zip(rows, fast, expected, strict=True):
        for key in ("src_host", "src_port", "dst_host", "dst_port", "protocol", "ttl", "vlan") + (
                ("payload",) if payload else ()):
            assert row[key] == want[key], key
        assert quick == {k: row[k] for k in quick}


def test_chunked_live_style_source_is_flattened():
    class Chunked:  # what purepcap.live.capture(..., chunksize=N) iterates: lists of Packets
        chunksize = 2

        def __init__(self, packets):
            self.packets = packets

        def __iter__(self):
            return (self.packets[i:i + 2] for i in range(0, len(self.packets), 2))

    packets = list(purepcap.open(capture_bytes()))
    assert list(records(Chunked(packets))) == list(records(packets))


def test_one_source_classifier_for_records_and_frames(tmp_path):
    """records() and to_pandas() tell a capture to open from Packets to take by one
    rule (purepcap._sources.is_openable); it relies on captures having no read()."""
    from purepcap import _records, dataframe, live
    from purepcap._sources import is_openable
    from purepcap.format import Capture

    path = FIXTURES / "local.pcap"
    assert not hasattr(Capture, "read") and not hasattr(live.LiveCapture, "read")
    with open(path, "rb") as f:
        for source in (path, str(path), path.read_bytes(), memoryview(path.read_bytes()), f):
            assert is_openable(source)
    with purepcap.open(path) as cap, purepcap.open(path, filter="tcp") as filtered:
        assert not is_openable(cap) and not is_openable(filtered)
        assert filtered.filter == "tcp" and cap.filter is None
    assert not is_openable([]) and not is_openable(iter(()))
    assert _records.is_openable is is_openable and dataframe.is_openable is is_openable
