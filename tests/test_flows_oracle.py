# flows() against tshark 4.0's tcp.stream / udp.stream on the shared corpus (../shared,
# skipped when absent), compared as corpus-meta/README.md prescribes: every stream it
# does not leave out must be one flow with the same first and last frame, endpoints,
# packets, bytes, IP bytes and TCP flags each way, start and end. Every remaining
# difference is named below with its reason, and the reason is checked. Community ID:
# every corpus flow carries what the reference `communityid` package computes.
from __future__ import annotations

import functools
import warnings

import pytest
from _flows_oracle import comparison, stream_rows
from conftest import corpus_path, needs_corpus, oracle_rows

import purepcap
from purepcap._flows import flows as purepcap_flows
from purepcap._records import records

pytestmark = needs_corpus

VLAN_IGNORED = ("tshark's streams ignore VLAN ids; our flow key has the outermost VLAN (issue 17), "
                "so the packets of the other VLAN are a flow of their own")
TSO = ("IPv4 total length 0 (TCP segmentation offload / BIG TCP): records()' ip_length is the header's 0, "
       "tshark counts the IP bytes actually captured")
LENGTH_CLAMPED = ("the record header claims an original length of 4093509168 bytes; tshark stores it "
                  "in a signed 32-bit field and prints 2147483647, purepcap keeps the file's value")
BOGUS_OFFSET = ("the TCP data offset is 2 (< 5 words): tshark stops at the bogus header length and "
                "reports no flags; records() reads the flags byte (FIN)")

# (file, first frame of tshark's stream) -> (what differs, why)
KNOWN: dict[tuple[str, int], tuple[str, str]] = {
    ("ndpi/tests/cfgs/default/pcap/syslog.pcap", 72): (
        "dst_packets dst_bytes dst_ip_bytes dst_tcp_flags", VLAN_IGNORED),
    ("ndpi/tests/cfgs/default/pcap/capwap_data.pcapng", 1): (
        "src_packets dst_packets src_bytes dst_bytes src_ip_bytes dst_ip_bytes", VLAN_IGNORED),
    ("ndpi/tests/cfgs/default/pcap/anydesk.pcapng", 66): ("src_ip_bytes", TSO),
    ("ndpi/tests/cfgs/default/pcap/line.pcap", 51): ("src_ip_bytes", TSO),
    ("tcpdump/tests/bigtcp-ipv4.pcap", 1): ("src_ip_bytes", TSO),
    ("tcpdump/tests/ipv4_tcp_http_xml_tso.pcap", 1): ("src_ip_bytes", TSO),
    ("ndpi/tests/cfgs/default/pcap/fuzz-2021-06-07-c6c72a0a56.pcap", 1): ("src_bytes", LENGTH_CLAMPED),
    ("ndpi/tests/cfgs/default/pcap/kerberos_fuzz.pcapng", 1): ("src_tcp_flags", BOGUS_OFFSET),
}


def test_agreement_with_tshark():
    compared, agreed, _, diffs, _ = comparison()
    assert compared > 2000
    assert agreed / compared >= 0.995, f"{agreed}/{compared}"
    print(f"flows agree with tshark's streams: {agreed}/{compared}")


def test_every_difference_is_a_named_exception():
    _, _, _, diffs, _ = comparison()
    assert {k: v for k, v in diffs.items() if KNOWN.get(k, (None,))[0] != v} == {}
    assert set(KNOWN) == set(diffs), "a named exception no longer differs: remove it"


def _stream_frames(path: str, first: int) -> list[dict[str, str]]:
    rows = stream_rows()[path]
    head = next(r for r in rows if int(r["frame"]) == first)
    col = "tcp_stream" if head["tcp_stream"] else "udp_stream"
    return [r for r in rows if r[col] == head[col]]


@pytest.mark.parametrize("key", sorted(KNOWN))
def test_named_exception_reason_holds(key):
    path, first = key
    what, why = KNOWN[key]
    frames = _stream_frames(path, first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packets = {p.frame: p for p in purepcap.open(corpus_path(path), strict=False)}
    recs = {r["frame"]: r for r in records([packets[int(f["frame"])] for f in frames],
                                           fields=["ip_length", "tcp_flags", "vlan", "ip_version"])}
    if why == VLAN_IGNORED:
        assert len({f["vlan"] for f in frames}) == 2
        assert len({recs[int(f["frame"])]["vlan"] for f in frames}) == 2
    elif why == TSO:
        zero = [f for f in frames if recs[int(f["frame"])]["ip_length"] == 0]
        assert zero and all(recs[int(f["frame"])]["ip_version"] == 4 for f in zero)
        assert all(int(f["ip_len"]) > 0 for f in zero)
    elif why == LENGTH_CLAMPED:
        assert packets[first].length == 4093509168 and frames[0]["frame_len"] == "2147483647"
    elif why == BOGUS_OFFSET:
        p = packets[first]
        ihl = (p.data[0] & 15) * 4  # raw IPv4 link type
        assert p.data[ihl + 12] >> 4 < 5 and frames[0]["tcp_flags"] == ""
    else:
        raise AssertionError(why)


def test_streams_left_out_are_few():
    compared, _, left_out, _, _ = comparison()
    assert left_out < compared // 5


def test_community_id_matches_reference_package():
    communityid = pytest.importorskip("communityid")
    algo = communityid.CommunityID()
    checked = 0
    for path, fl in all_flows().items():
        icmp_first = {f["first_frame"] for f in fl if f["protocol"] in ("icmp", "icmpv6")}
        types = {}
        if icmp_first:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pk = [p for p in purepcap.open(corpus_path(path), strict=False) if p.frame in icmp_first]
            types = {r["frame"]: (r["icmp_type"], r["icmp_code"]) for r in
                     records(pk, fields=["icmp_type", "icmp_code", "ip_proto"])}
        for f in fl:
            proto = _number(f["protocol"])
            if f["protocol"] in ("tcp", "udp", "sctp"):
                if f["src_port"] is None:
                    assert f["community_id"] is None
                    continue
                tpl = communityid.FlowTuple(proto, f["src_host"], f["dst_host"], f["src_port"], f["dst_port"])
            elif f["protocol"] in ("icmp", "icmpv6"):
                t, c = types.get(f["first_frame"], (None, None))
                if t is None:
                    assert f["community_id"] is None
                    continue
                tpl = communityid.FlowTuple(proto, f["src_host"], f["dst_host"], t, c)
            else:
                tpl = communityid.FlowTuple(proto, f["src_host"], f["dst_host"])
            assert f["community_id"] == algo.calc(tpl), (path, f)
            checked += 1
    assert checked > 3000
    print(f"community ids checked: {checked}")


@functools.cache
def all_flows() -> dict[str, list[dict]]:
    """flows() of every corpus file (the good packets of damaged ones)."""
    out = {}
    for path in oracle_rows():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                packets = list(purepcap.open(corpus_path(path), strict=False))
            except purepcap.PcapError:
                continue
        out[path] = list(purepcap_flows(packets, idle_timeout=None, active_timeout=None))
    return out


def _number(name: str) -> int:
    from purepcap._protocols import number

    return number(name)


def _corpus_packets(path: str) -> list | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return list(purepcap.open(corpus_path(path), strict=False))
        except purepcap.PcapError:
            return None


def test_fast_path_equals_records_on_the_corpus():
    # flows() reads Packets through its own one-unpack path; what it hands the engine
    # must equal what records() gives, packet for packet, on every corpus file
    from purepcap._flows import NEEDED_FIELDS, _fast_packets, _packets

    n = 0
    for path in oracle_rows():
        packets = _corpus_packets(path)
        if packets is None:
            continue
        assert list(_fast_packets(packets, None, None)) == \
            list(_packets(records(packets, fields=NEEDED_FIELDS), ())), path
        n += len(packets)
    assert n > 30000


@pytest.mark.parametrize("kw", [{}, {"idle_timeout": None, "active_timeout": None},
                                {"idle_timeout": 0.5, "active_timeout": 2}])
def test_dataframe_equals_the_dicts_on_the_corpus(kw):
    # flows_to_pandas' columnar path (and the engine it hands the rest to) gives the
    # rows flows() gives, on every sixth corpus file (the full corpus agreed when this was written)
    pd = pytest.importorskip("pandas")
    from purepcap._flowframe import flow_frame, flows_to_pandas

    for path in sorted(oracle_rows())[::6]:
        packets = _corpus_packets(path)
        if packets is None:
            continue
        pd.testing.assert_frame_equal(flows_to_pandas(packets, **kw), flow_frame(list(purepcap_flows(packets, **kw))),
                                      obj=path)
