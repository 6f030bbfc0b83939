# purepcap.strategies: the documented example (a toy third-party DNS counter), the
# shape of what each strategy draws, argument checking, useful shrinking, and the
# ImportError without hypothesis.
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import purepcap
from purepcap import build, linktypes
from purepcap import strategies as pst

ROOT = Path(__file__).resolve().parent.parent


# -- the module docstring's example, verbatim in spirit ---------------------------------------------
def count_dns(frames, *, check_fragments: bool = True) -> int:
    """The decoder under test: UDP datagrams to or from port 53 in Ethernet/IPv4 frames."""
    n = 0
    for data in frames:
        if len(data) < 34 or data[12:14] != b"\x08\x00" or data[23] != 17:
            continue
        if check_fragments and struct.unpack_from("!H", data, 20)[0] & 0x1FFF:
            continue
        at = 14 + (data[14] & 15) * 4
        if len(data) >= at + 4:
            n += 53 in struct.unpack_from("!HH", data, at)
    return n


DNS_CAPTURES = pst.captures(format="pcap", packets=pst.packets(link="ether", ip="ipv4", transport=("udp", "tcp")))


def _dns_check(case, **kw) -> None:
    data, records = case
    with purepcap.open(data) as capture:
        got = count_dns((p.data for p in capture), **kw)
    assert got == sum(r["protocol"] == "udp" and 53 in (r["src_port"], r["dst_port"]) for r in records)


@given(DNS_CAPTURES)
def test_docstring_example_toy_dns_counter(case):
    _dns_check(case)


def _docstring_example() -> str:
    doc = pst.__doc__
    start = doc.index("::\n") + 3
    lines = []
    for line in doc[start:].splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines)


def test_docstring_example_runs_verbatim():
    code = _docstring_example()
    assert "def count_dns" in code and "@given(pst.captures(" in code
    namespace: dict = {}
    exec(compile(code, "<purepcap.strategies docstring>", "exec"), namespace)
    namespace["test_count_dns"]()  # runs the hypothesis test the docstring defines
    frame = bytes(build.ether() / build.ipv4() / build.udp(53, 1000) / b"q")
    assert namespace["count_dns"]([frame, frame]) == 2


def test_a_buggy_decoder_is_caught_and_shrinks_to_one_small_packet():
    failures = []

    @settings(max_examples=2000, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate, Phase.target, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(DNS_CAPTURES)
    def buggy(case):
        try:
            _dns_check(case, check_fragments=False)
        except AssertionError:
            failures.append(case)
            raise

    with pytest.raises(AssertionError):
        buggy()
    smallest = failures[-1]  # hypothesis re-runs the shrunk example last
    assert 1 <= len(smallest.packets) <= 3, smallest
    assert all(p.caplen <= 80 for p in smallest.packets), smallest
    assert len(failures[0].data) >= len(smallest.data)
    # a later fragment is what fools it
    assert any(f and f["fragment"] and f["fragment"][1] > 0 for f in smallest.fields), smallest


# -- what the strategies draw ------------------------------------------------------------------------
@given(pst.packets())
def test_packets_are_stacks_with_fields(pkt):
    assert isinstance(pkt, build.Stack)
    data = bytes(pkt)
    assert isinstance(pkt.linktype, int) and data
    f = pkt.fields()
    assert f is not None and set(f) == set(build.DECODED_KEYS)
    assert f["ip_version"] in (4, 6) and isinstance(f["payload"], bytes)


@given(pst.packets(link="raw", ip="ipv6", transport="icmp"))
def test_packets_respect_their_arguments(pkt):
    assert pkt.linktype in (linktypes.RAW, linktypes.IPV6, linktypes.RAW_LINUX)
    assert pkt.has(build.IPv6) and pkt.has(build.ICMPv6) and not pkt.has(build.IPv4)


@given(pst.packets(link=("ether", "sll"), ip="arp"))
def test_arp_packets_have_no_fields(pkt):
    assert pkt.has(build.ARP) and pkt.fields() is None


@given(pst.records(link="vlan", transport="tcp"))
def test_records_have_decoded_keys_data_and_linktype(rec):
    assert set(rec) == set(build.DECODED_KEYS) | {"data", "linktype"}
    assert rec["linktype"] == linktypes.EN10MB and rec["vlan"] is not None and rec["protocol"] == "tcp"
    assert rec["data"][12:14] in (b"\x81\x00", b"\x88\xa8", b"\x91\x00")


@given(pst.captures())
def test_captures_unpack_and_read_back(case):
    data, records = case
    assert isinstance(data, bytes)
    with purepcap.open(data) as cap:
        got = list(cap)
        assert cap.format == case.format
    assert got == case.packets
    assert len(case.fields) == len(case.packets)
    ip_frames = [p.frame for p, f in zip(case.packets, case.fields) if f is not None]
    assert [r["frame"] for r in records] == ip_frames
    for r in records:
        assert {"frame", "time", "length", "caplen", "interface", "src_host", "protocol"} <= set(r)


@settings(max_examples=40)
@given(pst.captures(format="pcap", max_packets=5))
def test_pcap_captures_have_one_link_type(case):
    assert len({p.linktype for p in case.packets}) <= 1
    assert len(case.packets) <= 5


@settings(max_examples=40)
@given(pst.damaged())
def test_damaged_cases_are_consistent(case):
    assert case.kind in ("truncate", "length", "trailing", "bitflip")
    assert case.delivered == case.original.packets[:len(case.delivered)]
    if case.kind == "bitflip":
        assert not case.must_fail and len(case.data) == len(case.original.data)
        assert sum(a != b for a, b in zip(case.data, case.original.data)) == 1
    elif case.kind == "truncate":
        assert case.original.data.startswith(case.data) and len(case.data) < len(case.original.data)
    elif case.kind == "trailing":
        assert case.data.startswith(case.original.data) and case.must_fail


def test_argument_errors():
    with pytest.raises(InvalidArgument, match="link"):
        pst.packets(link="token-ring")
    with pytest.raises(InvalidArgument, match="transport"):
        pst.packets(transport="quic")
    with pytest.raises(InvalidArgument, match="igmp"):
        pst.packets(ip="ipv6", transport="igmp")
    with pytest.raises(InvalidArgument, match="arp"):
        pst.packets(link="raw", ip="arp")
    with pytest.raises(InvalidArgument, match="format"):
        pst.captures(format="erf")
    with pytest.raises(InvalidArgument, match="min_packets"):
        pst.captures(min_packets=3, max_packets=2)
    with pytest.raises(InvalidArgument, match="ipv4 or ipv6"):
        pst.records(ip="arp")
    with pytest.raises(InvalidArgument, match="kinds"):
        pst.damaged(kinds="melted")


def test_custom_port_strategy():
    @settings(max_examples=30)
    @given(pst.packets(link="ether", ip="ipv4", transport="udp", fragments=False, ports=st.just(5353)))
    def check(pkt):
        assert pkt.fields()["src_port"] == 5353 == pkt.fields()["dst_port"]

    check()


def test_strategies_without_hypothesis_name_the_extra():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "try:\n    import purepcap.strategies\nexcept ImportError as e:\n    print(e)\n"
            "else:\n    raise SystemExit('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert "pip install 'purepcap[hypothesis]'" in out.stdout
