# purepcap.flows() and flows_to_pandas(): flow keys, directions, counts, timeouts, the
# tshark SYN rule, fragments, Zeek's conn_state (a hypothesis property over TCP
# scenarios built with purepcap.build, checked against Zeek's documented definitions),
# Community ID test vectors, nfstream's statistics against nfstream itself (when it is
# installed), damaged captures, and the DataFrame equal to the dicts, type for type.
from __future__ import annotations

import importlib.util
import io

import pytest
from conftest import FIXTURES
from hypothesis import given
from hypothesis import strategies as st

import purepcap
from purepcap import build
from purepcap._community_id import community_id
from purepcap._flows import CONN_STATES, FLOW_KEYS, STATS_KEYS, flows
from purepcap.format import PcapWriter

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000
A, B = "10.0.0.1", "10.0.0.2"


def capture(frames: list[tuple[int, bytes]]) -> bytes:
    out = io.BytesIO()
    w = PcapWriter(out, nanosecond=True)
    for t, f in frames:
        w.write_packet(t, f)
    return out.getvalue()


def tcp(src: str, dst: str, sport: int, dport: int, flags: str, seq: int = 0, data: bytes = b"",
        v6: bool = False, vlan: int | None = None) -> bytes:
    ip = build.ipv6(src=src, dst=dst) if v6 else build.ipv4(src=src, dst=dst)
    eth = build.ether(vlans=[vlan]) if vlan is not None else build.ether()
    return bytes(eth / ip / build.tcp(sport=sport, dport=dport, flags=flags or 0, seq=seq) / data)


def udp(src: str, dst: str, sport: int, dport: int, data: bytes = b"x", vlan: int | None = None) -> bytes:
    eth = build.ether(vlans=[vlan]) if vlan is not None else build.ether()
    return bytes(eth / build.ipv4(src=src, dst=dst) / build.udp(sport=sport, dport=dport) / data)


# -- the basics ---------------------------------------------------------------------------------
def test_local_fixture_flows():
    fl = list(flows(FIXTURES / "local.pcap"))
    assert all(list(f) == list(FLOW_KEYS) for f in fl)
    http = next(f for f in fl if f["dst_port"] == 80)
    assert (http["src_host"], http["dst_host"], http["protocol"]) == ("192.168.1.10", "93.184.216.34", "tcp")
    assert (http["src_packets"], http["dst_packets"]) == (6, 5)
    assert (http["conn_state"], http["end_reason"]) == ("SF", "fin")
    assert http["src_tcp_flags"] & 0x02 and http["dst_tcp_flags"] & 0x12 == 0x12
    dns = next(f for f in fl if f["dst_port"] == 53 and f["protocol"] == "udp")
    assert (dns["src_packets"], dns["dst_packets"], dns["conn_state"]) == (1, 1, "SF")
    assert dns["src_tcp_flags"] is None
    ntp = next(f for f in fl if f["dst_port"] == 123)
    assert (ntp["dst_packets"], ntp["conn_state"]) == (0, "S0")
    icmp = next(f for f in fl if f["protocol"] == "icmp")
    assert icmp["src_port"] is None and icmp["conn_state"] == "OTH" and icmp["community_id"]
    # every IP packet is in exactly one flow
    assert sum(f["src_packets"] + f["dst_packets"] for f in fl) == sum(1 for _ in purepcap.records(
        FIXTURES / "local.pcap"))
    assert [f["first_frame"] for f in fl] == sorted(f["first_frame"] for f in fl)  # all ended at eof


def test_bytes_and_ip_bytes_each_way():
    frames = [(T0, udp(A, B, 5000, 53, b"q" * 10)), (T0 + 1, udp(B, A, 53, 5000, b"r" * 30)),
              (T0 + 2, udp(A, B, 5000, 53, b"q" * 20))]
    (f,) = flows(capture(frames))
    lens = [len(fr) for _, fr in frames]
    assert (f["src_bytes"], f["dst_bytes"]) == (lens[0] + lens[2], lens[1])
    assert (f["src_ip_bytes"], f["dst_ip_bytes"]) == (28 + 10 + 28 + 20, 28 + 30)
    assert (f["start"], f["end"], f["first_frame"], f["last_frame"]) == (T0, T0 + 2, 1, 3)


def test_vlan_is_part_of_the_key():
    frames = [(T0, udp(A, B, 1, 2, vlan=10)), (T0 + 1, udp(B, A, 2, 1, vlan=20))]
    fl = list(flows(capture(frames)))
    assert [(f["vlan"], f["src_packets"], f["dst_packets"]) for f in fl] == [(10, 1, 0), (20, 1, 0)]


def test_protocol_and_filter_choose_packets():
    frames = [(T0, udp(A, B, 1, 2)), (T0 + 1, tcp(A, B, 3, 4, "S"))]
    assert [f["protocol"] for f in flows(capture(frames), protocol="tcp")] == ["tcp"]
    assert [f["protocol"] for f in flows(capture(frames), filter="udp")] == ["udp"]


def test_bad_arguments():
    with pytest.raises(ValueError):
        list(flows(FIXTURES / "local.pcap", idle_timeout=-1))
    with pytest.raises(ValueError):
        flows(FIXTURES / "local.pcap", active_timeout="soon")
    with pytest.raises(ValueError):
        flows(FIXTURES / "local.pcap", idle_timeout=float("inf"))
    with pytest.raises(ValueError):
        flows(FIXTURES / "local.pcap", protocol="nope")
    with pytest.raises(ValueError, match="'nope'; valid flow fields are server_name, ip_version, "):
        flows(FIXTURES / "local.pcap", fields=["nope"])


def test_fields_take_the_first_value():
    frames = [(T0, bytes(build.ether() / build.ipv4(src=A, dst=B, ttl=9) / build.udp(sport=1, dport=2))),
              (T0 + 1, bytes(build.ether() / build.ipv4(src=B, dst=A, ttl=7) / build.udp(sport=2, dport=1)))]
    (f,) = flows(capture(frames), fields=["ttl"])
    assert f["ttl"] == 9 and list(f)[-1] == "ttl"


# -- ends of flows ------------------------------------------------------------------------------
def test_idle_timeout_splits_and_streams():
    frames = [(T0 + i * SEC, udp(A, B, 1, 2)) for i in range(3)] + [(T0 + 100 * SEC, udp(A, B, 1, 2))]
    fl = list(flows(capture(frames), idle_timeout=10))
    assert [(f["first_frame"], f["last_frame"], f["end_reason"]) for f in fl] == [(1, 3, "idle"), (4, 4, "eof")]
    assert len(list(flows(capture(frames), idle_timeout=None))) == 1


def test_active_timeout_splits():
    frames = [(T0 + i * SEC, udp(A, B, 1, 2)) for i in range(10)]
    fl = list(flows(capture(frames), idle_timeout=None, active_timeout=4))
    assert [(f["first_frame"], f["last_frame"], f["end_reason"]) for f in fl] == [
        (1, 4, "active"), (5, 8, "active"), (9, 10, "eof")]


def test_silent_flows_leave_the_table():
    # flows that go idle come out while the capture is still being read (memory follows
    # the active flows): 5000 one-packet flows a second apart, idle timeout 10 s
    data = capture([(T0 + i * SEC, udp(A, B, 1000 + i, 2)) for i in range(5000)])
    read = []

    def packets():
        for p in purepcap.open(data):
            read.append(p.frame)
            yield p

    from purepcap._flows import _SWEEP_EVERY

    out = []
    for f in flows(packets(), idle_timeout=10):
        out.append(f)
        # never more than a sweep's worth of packets plus the 11 active flows held
        assert len(read) - len(out) <= _SWEEP_EVERY + 11
    assert len(out) == 5000 and out[0]["end_reason"] == "idle" and out[-1]["end_reason"] == "eof"


def test_fin_both_ways_closes_and_late_ack_joins():
    frames = [(T0, tcp(A, B, 1, 80, "S", 100)), (T0 + 1, tcp(B, A, 80, 1, "SA", 500)),
              (T0 + 2, tcp(A, B, 1, 80, "A", 101)), (T0 + 3, tcp(A, B, 1, 80, "FA", 101)),
              (T0 + 4, tcp(B, A, 80, 1, "FA", 501)), (T0 + 5, tcp(A, B, 1, 80, "A", 102))]
    (f,) = flows(capture(frames))
    assert (f["end_reason"], f["conn_state"], f["src_packets"], f["dst_packets"]) == ("fin", "SF", 4, 2)


def test_closed_flow_is_handed_out_after_the_close_delay():
    frames = [(T0, tcp(A, B, 1, 80, "S", 100)), (T0 + 1, tcp(B, A, 80, 1, "R", 0)),
              (T0 + 60 * SEC, udp(A, B, 9, 9))]
    fl = list(flows(capture(frames)))
    assert [(f["protocol"], f["end_reason"]) for f in fl] == [("tcp", "rst"), ("udp", "eof")]


def test_new_syn_with_other_sequence_starts_a_flow():
    # tshark's tcp.stream: a SYN (no ACK) whose sequence number differs from the one its
    # direction started with begins a new stream; a retransmitted SYN does not
    frames = [(T0, tcp(A, B, 1, 80, "S", 100)), (T0 + 1, tcp(A, B, 1, 80, "S", 100)),
              (T0 + 2, tcp(B, A, 80, 1, "R", 0)), (T0 + 3, tcp(A, B, 1, 80, "S", 7777)),
              (T0 + 4, tcp(B, A, 80, 1, "SA", 9))]
    fl = list(flows(capture(frames), idle_timeout=None, active_timeout=None))
    assert [(f["first_frame"], f["last_frame"], f["src_packets"], f["dst_packets"]) for f in fl] == [
        (1, 3, 2, 1), (4, 5, 1, 1)]
    assert fl[0]["conn_state"] == "REJ" and fl[0]["end_reason"] == "rst"


def test_later_fragment_joins_the_flow_of_its_first():
    payload = bytes(build.udp(sport=5353, dport=53) / (b"z" * 40))
    first = bytes(build.ether() / build.ipv4(src=A, dst=B, id=77, mf=True, proto=17) / payload[:16])
    later = bytes(build.ether() / build.ipv4(src=A, dst=B, id=77, offset=16, proto=17) / payload[16:])
    other = bytes(build.ether() / build.ipv4(src=A, dst=B, id=78, offset=16, proto=17) / payload[16:])
    fl = list(flows(capture([(T0, first), (T0 + 1, later), (T0 + 2, other)])))
    assert [(f["src_port"], f["src_packets"]) for f in fl] == [(5353, 2), (None, 1)]


# -- Zeek's conn_state --------------------------------------------------------------------------
# Zeek's documented definitions (base/protocols/conn/main.zeek, conn_state):
#   S0 attempt seen, no reply; S1 established, not terminated; SF normal establishment and
#   termination; REJ attempt rejected; S2 established, close attempt by originator (no reply
#   from responder); S3 established, close attempt by responder; RSTO established,
#   originator aborted (RST); RSTR responder sent a RST; RSTOS0 originator sent a SYN
#   followed by a RST, no SYN-ACK seen; RSTRH responder sent a SYN-ACK followed by a RST,
#   no SYN from the originator; SH originator sent a SYN followed by a FIN, no SYN-ACK;
#   SHR responder sent a SYN-ACK followed by a FIN, no SYN from the originator; OTH no
#   SYN seen, just midstream traffic.
ORIG, RESP = 0, 1
HANDSHAKE = [(ORIG, "S"), (RESP, "SA"), (ORIG, "A")]
SCENARIOS: dict[str, list] = {
    "S0": [(ORIG, "S")],
    "S1": HANDSHAKE + ["data"],
    "SF": HANDSHAKE + ["data", (ORIG, "FA"), (RESP, "FA"), (ORIG, "A")],
    "SF-resp-first": HANDSHAKE + ["data", (RESP, "FA"), (ORIG, "FA"), (RESP, "A")],
    "REJ": [(ORIG, "S"), (RESP, "RA")],
    "S2": HANDSHAKE + ["data", (ORIG, "FA")],
    "S3": HANDSHAKE + ["data", (RESP, "FA")],
    "RSTO": HANDSHAKE + ["data", (ORIG, "RA")],
    "RSTR": HANDSHAKE + ["data", (RESP, "RA")],
    "RSTOS0": [(ORIG, "S"), (ORIG, "R")],
    "RSTRH": [(RESP, "SA"), (RESP, "R")],
    "SH": [(ORIG, "S"), (ORIG, "F")],
    "SHR": [(RESP, "SA"), (RESP, "FA")],
    "OTH": ["data"],
}


@given(scenario=st.sampled_from(sorted(SCENARIOS)), retransmit=st.integers(0, 2),
       data=st.lists(st.tuples(st.sampled_from([ORIG, RESP]), st.binary(min_size=1, max_size=30)), min_size=1,
                     max_size=6),
       ports=st.tuples(st.integers(1, 65535), st.integers(1, 65535)), v6=st.booleans(),
       gap=st.integers(1, 10**9))
def test_conn_state_follows_zeek_definitions(scenario, retransmit, data, ports, v6, gap):
    hosts = ("2001:db8::1", "2001:db8::2") if v6 else (A, B)
    seq = [1000, 5000]
    steps = []
    for step in SCENARIOS[scenario]:
        if step == "data":
            steps += [(who, "PA", payload) for who, payload in data]
        else:
            steps.append((step[0], step[1], b""))
            if step[1] == "S" and retransmit:  # a retransmitted SYN, same sequence number
                steps += [(step[0], "S", b"")] * retransmit
    frames = []
    t = T0
    for who, flags, payload in steps:
        src, dst = hosts[who], hosts[1 - who]
        sp, dp = (ports[0], ports[1]) if who == ORIG else (ports[1], ports[0])
        frames.append((t, tcp(src, dst, sp, dp, flags, seq[who], payload, v6=v6)))
        if flags != "S":
            seq[who] += len(payload)
        t += gap
    fl = list(flows(capture(frames), idle_timeout=None, active_timeout=None))
    if ports[0] == ports[1] and hosts[0] == hosts[1]:
        return
    assert len(fl) == 1, fl
    (f,) = fl
    assert f["conn_state"] == scenario.split("-")[0]
    assert f["conn_state"] in CONN_STATES
    assert f["src_packets"] + f["dst_packets"] == len(steps)
    closing = [flg for _, flg, _ in steps if "R" in flg or "F" in flg]
    expected_end = "rst" if any("R" in c for c in closing) else "fin" if scenario.startswith("SF") else "eof"
    assert f["end_reason"] == expected_end
    # the flow's src is whoever sent the first packet
    assert f["src_host"] == hosts[steps[0][0]]


# -- Community ID ----------------------------------------------------------------------------
def test_community_id_vectors():
    # the spec's examples (and API.md's)
    assert community_id(6, "128.232.110.120", "66.35.250.204", 34855, 80) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id(6, "66.35.250.204", "128.232.110.120", 80, 34855) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id(17, "8.8.8.8", "192.168.1.52", 53, 54585) == "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
    assert community_id(1, "192.168.0.89", "192.168.0.1", icmp_type=8, icmp_code=0) == \
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
    assert community_id(6, "10.0.0.1", "10.0.0.2") is None  # TCP without ports


@given(proto=st.sampled_from([1, 6, 17, 47, 58, 132]), v6=st.booleans(), a=st.binary(min_size=16, max_size=16),
       b=st.binary(min_size=16, max_size=16), sport=st.integers(0, 65535), dport=st.integers(0, 65535),
       itype=st.integers(0, 255), icode=st.integers(0, 255))
def test_community_id_matches_the_reference_package(proto, v6, a, b, sport, dport, itype, icode):
    communityid = pytest.importorskip("communityid")
    import ipaddress

    if v6:
        src, dst = str(ipaddress.IPv6Address(a)), str(ipaddress.IPv6Address(b))
    else:
        src, dst = str(ipaddress.IPv4Address(a[:4])), str(ipaddress.IPv4Address(b[:4]))
    if proto in (1, 58):
        ours = community_id(proto, src, dst, icmp_type=itype, icmp_code=icode)
        tpl = communityid.FlowTuple(proto, src, dst, itype, icode)
    elif proto in (6, 17, 132):
        ours = community_id(proto, src, dst, sport, dport)
        tpl = communityid.FlowTuple(proto, src, dst, sport, dport)
    else:
        ours = community_id(proto, src, dst)
        tpl = communityid.FlowTuple(proto, src, dst)
    assert ours == communityid.CommunityID().calc(tpl)


# -- statistics ------------------------------------------------------------------------------
def test_stats_keys_and_values():
    frames = [(T0, udp(A, B, 1, 2, b"a" * 10)), (T0 + 3_000_000, udp(B, A, 2, 1, b"a" * 30)),
              (T0 + 10_000_000, udp(A, B, 1, 2, b"a" * 20))]
    (f,) = flows(capture(frames), stats=True)
    assert list(f)[len(FLOW_KEYS):] == list(STATS_KEYS)
    sizes = [len(fr) for _, fr in frames]
    assert f["bidirectional_min_ps"] == min(sizes) and f["bidirectional_max_ps"] == max(sizes)
    assert f["bidirectional_mean_ps"] == pytest.approx(sum(sizes) / 3)
    assert (f["bidirectional_min_piat_ms"], f["bidirectional_max_piat_ms"]) == (3, 7)
    assert f["src2dst_mean_piat_ms"] == 10.0 and f["dst2src_mean_piat_ms"] == 0.0
    assert f["src2dst_stddev_piat_ms"] == 0.0  # one inter-arrival time: no sample deviation


def test_stats_equal_nfstream():
    nfstream = pytest.importorskip("nfstream")
    compared = 0
    for name in ("local.pcap", "http.pcap"):
        ours = {(f["src_host"], f["src_port"] or 0, f["dst_host"], f["dst_port"] or 0): f
                for f in flows(FIXTURES / name, stats=True, idle_timeout=None, active_timeout=None)}
        theirs = nfstream.NFStreamer(str(FIXTURES / name), statistical_analysis=True, n_dissections=0,
                                     idle_timeout=10**9, active_timeout=10**9).to_pandas()
        for _, row in theirs.iterrows():
            f = ours[(row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"])]
            assert (f["src_packets"], f["dst_packets"]) == (row["src2dst_packets"], row["dst2src_packets"])
            for k in STATS_KEYS:
                assert f[k] == pytest.approx(row[k], rel=1e-9, abs=1e-9), (name, k)
            compared += 1
    assert compared == 11


# -- the DataFrame ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["local.pcap", "local.pcapng", "http.pcap", "vlan.pcap", "truncated-be.pcap"])
@pytest.mark.parametrize("kw", [{}, {"idle_timeout": None, "active_timeout": None},
                                {"idle_timeout": 0.01, "active_timeout": 0.05}])
def test_dataframe_equals_the_dicts(name, kw):
    pd = pytest.importorskip("pandas")
    from purepcap._flowframe import flow_frame

    df = purepcap.flows_to_pandas(FIXTURES / name, **kw)
    pd.testing.assert_frame_equal(df, flow_frame(list(flows(FIXTURES / name, **kw))))
    assert list(df["first_frame"]) == sorted(df["first_frame"])


def test_dataframe_types():
    pytest.importorskip("pandas")
    df = purepcap.flows_to_pandas(FIXTURES / "local.pcap")
    types = {k: str(v) for k, v in df.dtypes.items()}
    assert types["start"] == types["end"] == "datetime64[ns]" and types["duration"] == "timedelta64[ns]"
    assert {types[k] for k in ("src_host", "dst_host", "protocol", "conn_state", "end_reason")} == {"category"}
    assert types["src_port"] == types["dst_port"] == types["vlan"] == "UInt16"
    assert types["src_packets"] == "int64"
    empty = purepcap.flows_to_pandas(capture([]))
    assert len(empty) == 0 and {k: str(v) for k, v in empty.dtypes.items()}.keys() == types.keys()


def test_dataframe_with_stats_and_tcp_events():
    pd = pytest.importorskip("pandas")
    from purepcap._flowframe import flow_frame

    frames = [(T0, tcp(A, B, 1, 80, "S", 100)), (T0 + 1, tcp(B, A, 80, 1, "SA", 500)),
              (T0 + 5, udp(A, B, 7, 7)), (T0 + 9, tcp(A, B, 1, 80, "A", 101))]
    df = purepcap.flows_to_pandas(capture(frames), stats=True)
    pd.testing.assert_frame_equal(df, flow_frame(list(flows(capture(frames), stats=True)), stats=True))
    assert df["bidirectional_mean_ps"].dtype == "float64"


# -- damage --------------------------------------------------------------------------------------
def test_damaged_capture_gives_the_good_flows_then_the_error():
    frames = [(T0 + i, udp(A, B, 1000 + i, 53)) for i in range(5)]
    data = capture(frames)
    cut = data[:-10]  # the last record cut short
    got = []
    with pytest.raises(purepcap.PcapError):
        for f in flows(cut, idle_timeout=None):
            got.append(f)
    assert [f["first_frame"] for f in got] == [1, 2, 3, 4]


@given(picks=st.lists(st.tuples(st.sampled_from(sorted(SCENARIOS)), st.integers(0, 3), st.integers(0, 99)),
                      min_size=1, max_size=8),
       seed=st.integers(0, 2**32 - 1), idle=st.sampled_from([None, 0.5, 120.0]))
def test_dataframe_equals_the_dicts_on_interleaved_connections(picks, seed, idle):
    # several TCP scenarios at once, interleaved, some reusing the same ports (a new SYN,
    # other sequence numbers): the columnar path and its engine shortcut give flows()' rows
    pd = pytest.importorskip("pandas")
    import random

    from purepcap._flowframe import flow_frame

    rng = random.Random(seed)
    scripts = []
    for k, (name, port, seq0) in enumerate(picks):
        steps = []
        for step in SCENARIOS[name]:
            steps += [(rng.randrange(2), "PA", b"d" * rng.randrange(1, 20))] if step == "data" else [step + (b"",)]
        scripts.append((1000 + port, [seq0 * 1000 + k, 50000 + seq0], steps))
    frames, t = [], T0
    live = [[s, 0] for s in scripts]
    while live:
        item = rng.choice(live)
        (sport, seq, steps), i = item
        who, flags, payload = steps[i]
        src, dst, sp, dp = (A, B, sport, 80) if who == ORIG else (B, A, 80, sport)
        frames.append((t, tcp(src, dst, sp, dp, flags, seq[who], payload)))
        seq[who] += len(payload)
        t += rng.choice((1_000, 1_000_000, 300_000_000, 6 * SEC))
        item[1] += 1
        if item[1] == len(steps):
            live.remove(item)
    data = capture(frames)
    kw = {"idle_timeout": idle}
    pd.testing.assert_frame_equal(purepcap.flows_to_pandas(data, **kw), flow_frame(list(flows(data, **kw))))


def test_application_fields_per_flow():
    # issue 18's fields through the fields= hook; server_name is TLS SNI, else HTTP Host
    fl = list(flows(FIXTURES / "http.pcap", fields=["server_name", "http_user_agent", "dns_qname"]))
    dns = next(f for f in fl if f["protocol"] == "udp")
    http = next(f for f in fl if f["protocol"] == "tcp")
    assert (dns["dns_qname"], dns["server_name"]) == ("example.com", None)
    assert (http["server_name"], http["http_user_agent"]) == ("example.com", "purepcap-fixtures/1")


@pytest.mark.parametrize("name", ["local.pcap", "local.pcapng", "http.pcap"])
def test_an_empty_value_is_no_value(name):
    # a DNS query's dns_answers is (), its response's the addresses: the flow takes those
    path = FIXTURES / name
    packets = list(purepcap.records(path, fields=["dns_answers", "dns_qname"]))
    dns = [f for f in flows(path, fields=["dns_answers", "dns_qname"]) if f["dns_qname"] is not None]
    assert dns
    for f in dns:
        mine = [r["dns_answers"] for r in packets if f["first_frame"] <= r["frame"] <= f["last_frame"]
                and {r["src_port"], r["dst_port"]} == {f["src_port"], f["dst_port"]}]
        assert mine[0] == ()  # the query comes first
        assert f["dns_answers"] == next(a for a in mine if a) and f["dns_answers"]


# -- the columnar path against the engine --------------------------------------------------------
def test_end_reason_does_not_depend_on_when_sweeps_ran():
    # a flow silent for longer than the idle timeout before the capture ends ended by
    # it, whether a sweep found it (5000 packets after it) or the end of the capture (10)
    pd = pytest.importorskip("pandas")
    from purepcap._flowframe import flow_frame

    for after in (5000, 10):
        frames = [(T0, udp(A, B, 1, 2))] + [(T0 + SEC + i * (250 * SEC // after), udp(A, B, 3, 4))
                                            for i in range(after)]
        data = capture(frames)
        fl = list(flows(data, idle_timeout=120))
        assert [(f["first_frame"], f["end_reason"]) for f in fl] == [(1, "idle"), (2, "eof")]
        pd.testing.assert_frame_equal(purepcap.flows_to_pandas(data, idle_timeout=120), flow_frame(fl))


def test_a_flow_past_both_deadlines_ends_by_the_earlier_one():
    # idle deadline 4.5 + 5 s, active deadline 0 + 6 s: active came first, whether the
    # flow's next packet (at 100 s) or the end of the capture finds it
    pd = pytest.importorskip("pandas")
    from purepcap._flowframe import flow_frame

    kw = {"idle_timeout": 5, "active_timeout": 6}
    for last in (udp(A, B, 1, 2), udp(A, B, 7, 7)):
        data = capture([(T0, udp(A, B, 1, 2)), (T0 + 4_500_000_000, udp(B, A, 2, 1)), (T0 + 100 * SEC, last)])
        fl = list(flows(data, **kw))
        assert fl[0]["end_reason"] == "active" and fl[0]["last_frame"] == 2
        pd.testing.assert_frame_equal(purepcap.flows_to_pandas(data, **kw), flow_frame(fl))
        # with the idle deadline first (idle 1 s): idle
        assert next(flows(data, idle_timeout=1, active_timeout=6))["end_reason"] == "idle"


def test_where_time_goes_back_the_flows_do_not_depend_on_when_sweeps_ran(monkeypatch):
    # A's second packet is stamped 1 s before its first: its flow's last time is then a
    # whole idle timeout behind the capture's clock. A sweep after it ends the flow; the
    # flow's next packet (at 0.1 s) must end it alike when no sweep ran (it joined it
    # before: hypothesis found flows_to_pandas giving 5 flows against flows()' 6)
    from purepcap import _flows

    data = capture([(T0 + SEC, udp(A, B, 1, 2)), (T0, udp(A, B, 1, 2)), (T0, udp(A, B, 3, 4)),
                    (T0 + SEC // 10, udp(A, B, 1, 2))])
    seen = []
    for sweep in (1, 2, 4096):
        monkeypatch.setattr(_flows, "_SWEEP_EVERY", sweep)
        seen.append(sorted((f["first_frame"], f["last_frame"], f["end_reason"])
                           for f in flows(data, idle_timeout=1.0)))
    assert seen[0] == [(1, 2, "idle"), (3, 3, "idle"), (4, 4, "eof")]  # (B: 1 s behind the clock at the end)
    assert seen[1] == seen[2] == seen[0]
    if importlib.util.find_spec("pandas") is not None:
        from purepcap._flowframe import flow_frame

        fl = list(flows(data, idle_timeout=1.0))
        frame = purepcap.flows_to_pandas(data, idle_timeout=1.0)
        assert frame.equals(flow_frame(fl))


_PEERS = [("10.0.0.1", 1000), ("10.0.0.2", 80), ("10.0.0.3", 53), ("fd00::1", 1000), ("fd00::2", 80)]


@st.composite
def _mixed_packets(draw):
    """Packets of a few hosts and ports: TCP with any flags (or SYNs that reuse ports),
    UDP, ICMP, VLANs, IPv4 fragments; times that mostly go forward, sometimes back."""
    frames, t = [], T0
    steps = [1, SEC // 2, 2 * SEC, 7 * SEC, 200 * SEC] + ([-SEC] if draw(st.integers(0, 3)) == 0 else [])
    for _ in range(draw(st.integers(1, 40))):
        (a, pa), (b, pb) = draw(st.permutations(_PEERS).map(lambda p: p[:2]))
        if (":" in a) != (":" in b):
            b, pb = ("fd00::9", 80) if ":" in a else ("10.0.0.9", 80)
        kind = draw(st.sampled_from(["tcp", "tcp", "udp", "icmp", "frag"]))
        vlan = draw(st.sampled_from([None, None, 5]))
        eth = build.ether(vlans=[vlan]) if vlan is not None else build.ether()
        ip = build.ipv6(src=a, dst=b) if ":" in a else build.ipv4(src=a, dst=b, id=draw(st.integers(0, 2)))
        if kind == "tcp":
            flags = draw(st.sampled_from(["S", "SA", "A", "PA", "FA", "R", "RA", "F", "", "U"]))
            frame = eth / ip / build.tcp(sport=pa, dport=pb, flags=flags or 0, seq=draw(st.integers(0, 2)))
        elif kind == "udp":
            frame = eth / ip / build.udp(sport=pa, dport=pb) / b"x"
        elif kind == "icmp" and ":" not in a:
            frame = eth / ip / build.icmp(type=draw(st.sampled_from([0, 8, 3])), code=0)
        elif kind == "frag" and ":" not in a:
            later = draw(st.booleans())
            frame = eth / build.ipv4(src=a, dst=b, id=draw(st.integers(0, 2)), mf=not later,
                                     offset=16 if later else 0, proto=17) / (b"z" * 16)
        else:
            frame = eth / ip / build.udp(sport=pa, dport=pb)
        t += draw(st.sampled_from(steps))
        frames.append((t, bytes(frame)))
    return frames


@given(frames=_mixed_packets(), idle=st.sampled_from([None, 1.0, 6.0, 120.0]),
       active=st.sampled_from([None, 3.0, 1800.0]), sweep=st.sampled_from([2, 4096]))
def test_dataframe_equals_the_dicts_on_mixed_captures(frames, idle, active, sweep):
    # flows_to_pandas' columnar path (conversation numbers, sums per direction, the
    # engine for the conversations a timeout, fragment or TCP event may split) gives
    # flows()' rows field for field, whenever flows()' sweeps run
    pd = pytest.importorskip("pandas")
    from purepcap import _flows
    from purepcap._flowframe import flow_frame

    data = capture(frames)
    kw = {"idle_timeout": idle, "active_timeout": active}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_flows, "_SWEEP_EVERY", sweep)
        expected = flow_frame(list(flows(data, **kw)))
    pd.testing.assert_frame_equal(purepcap.flows_to_pandas(data, **kw), expected)


def test_conversations_are_exact_when_the_mix_collides(monkeypatch):
    # with a mix that maps every conversation alike, the exact numbering takes over
    pd = pytest.importorskip("pandas")
    import numpy as np

    from purepcap import _flowframe
    from purepcap._flowframe import flow_frame

    monkeypatch.setattr(_flowframe, "_MIX1", np.uint64(0))
    monkeypatch.setattr(_flowframe, "_MIX2", np.uint64(0))
    for name in ("local.pcap", "http.pcap", "vlan.pcap"):
        pd.testing.assert_frame_equal(purepcap.flows_to_pandas(FIXTURES / name),
                                      flow_frame(list(flows(FIXTURES / name))))


@given(keys=st.lists(st.integers(0, 5), min_size=1, max_size=50))
def test_first_seen_numbering_without_pandas_equals_factorize(keys):
    pd = pytest.importorskip("pandas")
    import sys

    import numpy as np

    from purepcap._flowframe import _first_seen_codes

    arr = np.array(keys, dtype=np.uint64)
    with_pandas = _first_seen_codes(arr)
    with pytest.MonkeyPatch.context() as mp:
        mp.delitem(sys.modules, "pandas")
        alone = _first_seen_codes(arr)
    assert with_pandas.tolist() == alone.tolist() == pd.factorize(arr)[0].tolist()
