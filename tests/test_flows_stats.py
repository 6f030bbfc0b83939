# flows_to_pandas(stats=True) (issue 17): nfstream's statistics computed column-wise by
# purepcap._flowframe equal the streaming engine's (purepcap._flows, the definition) on
# generated captures: the engine's Welford sums and the vectorised per-group sums differ
# only in rounding order (floats equal within 1e-9 relative; counts, minima and maxima exactly).
from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purepcap
from purepcap import build, strategies
from purepcap._flows import STATS_KEYS, flows
from purepcap.format import PcapWriter

pd = pytest.importorskip("pandas")

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000
_HOSTS = [("10.0.0.1", 1000), ("10.0.0.2", 80), ("10.0.0.3", 53), ("fd00::1", 1000), ("fd00::2", 80)]


def _capture(frames: list[tuple[int, bytes]]) -> bytes:
    out = io.BytesIO()
    w = PcapWriter(out, nanosecond=True)
    for t, f in frames:
        w.write_packet(t, f)
    return out.getvalue()


def _expected(data: bytes, **kw):
    from purepcap._flowframe import flow_frame

    return flow_frame(list(flows(data, stats=True, **kw)), stats=True)


def _assert_same(data: bytes, **kw) -> None:
    got = purepcap.flows_to_pandas(data, stats=True, **kw)
    want = _expected(data, **kw)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, atol=0)
    ints = [k for k in STATS_KEYS if "mean" not in k and "stddev" not in k]
    pd.testing.assert_frame_equal(got[ints], want[ints], check_exact=True)


@st.composite
def _conversations(draw):
    """A few long conversations of TCP (any flags, or none), UDP and ICMP packets of
    varied sizes, at times from 1 ns to minutes apart (sub-millisecond steps, so that
    truncation to whole ms matters), sometimes going back."""
    frames, t = [], T0 + draw(st.integers(0, SEC))
    steps = [1, 999_999, 1_000_000, 1_500_001, 37 * 1_000_000, SEC // 3, 7 * SEC, 200 * SEC]
    if draw(st.booleans()):
        steps.append(-2_500_000)
    n = draw(st.integers(1, 120))
    for _ in range(n):
        (a, pa), (b, pb) = draw(st.permutations(_HOSTS).map(lambda p: p[:2]))
        if (":" in a) != (":" in b):
            b, pb = ("fd00::9", 80) if ":" in a else ("10.0.0.9", 80)
        kind = draw(st.sampled_from(["tcp", "tcp", "udp", "udp", "icmp"]))
        ip = build.ipv6(src=a, dst=b) if ":" in a else build.ipv4(src=a, dst=b)
        payload = b"p" * draw(st.sampled_from([0, 1, 7, 100, 1400]))
        if kind == "tcp":
            flags = draw(st.sampled_from(["A", "PA", "PA", "S", "SA", "FA", "R", "", "UAPEC"]))
            frame = build.ether() / ip / build.tcp(sport=pa, dport=pb, flags=flags or 0, seq=draw(st.integers(0, 1))) / payload
        elif kind == "icmp" and ":" not in a:
            frame = build.ether() / ip / build.icmp(type=8, code=0) / payload
        else:
            frame = build.ether() / ip / build.udp(sport=pa, dport=pb) / payload
        t += draw(st.sampled_from(steps))
        frames.append((t, bytes(frame)))
    return frames


@settings(max_examples=150, deadline=None)
@given(frames=_conversations(), idle=st.sampled_from([None, 1.0, 120.0]), active=st.sampled_from([None, 30.0, 1800.0]))
def test_vectorised_stats_equal_the_engines(frames, idle, active):
    _assert_same(_capture(frames), idle_timeout=idle, active_timeout=active)


@settings(max_examples=60, deadline=None)
@given(case=strategies.captures(max_packets=20), idle=st.sampled_from([None, 120.0]))
def test_stats_equal_the_engines_on_any_capture(case, idle):
    # any format, link type, resolution, simple packet blocks (packets without a time)
    _assert_same(case.data, idle_timeout=idle, active_timeout=None if idle is None else 1800.0)


def test_stats_of_plain_conversations_do_not_go_through_the_engine(monkeypatch):
    # UDP conversations that are one flow each: the statistics come from the columns
    from purepcap import _flows

    frames = [(T0 + i * 1_234_567, bytes(build.ether() / build.ipv4(src="10.0.0.1", dst="10.0.0.2")
                                         / build.udp(sport=1000 + i % 3, dport=53) / (b"q" * i)))
              for i in range(30)]
    data = _capture(frames)
    want = _expected(data)

    def no_engine(*args, **kw):
        raise AssertionError("the engine ran")
    monkeypatch.setattr(_flows, "_run", no_engine)
    got = purepcap.flows_to_pandas(data, stats=True)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, atol=0)
    assert got["bidirectional_max_ps"].tolist() == [14 + 20 + 8 + 27 + k for k in range(3)]  # the last i of each port


def test_long_flow_stats_stay_within_rounding():
    # 20,000 packets of one flow: the running and the two-pass sums stay within 1e-9
    import random

    rng = random.Random(7)
    t, frames = T0, []
    for _ in range(20_000):
        t += rng.choice((1, 10_000, 999_999, 3_000_000, 250_000_000))
        src, dst = ("10.0.0.1", "10.0.0.2") if rng.random() < 0.6 else ("10.0.0.2", "10.0.0.1")
        sp, dp = (5000, 443) if src == "10.0.0.1" else (443, 5000)
        frames.append((t, bytes(build.ether() / build.ipv4(src=src, dst=dst) / build.udp(sport=sp, dport=dp)
                                / (b"x" * rng.randrange(0, 1400)))))
    _assert_same(_capture(frames), idle_timeout=None, active_timeout=None)


# -- fields= (the application fields per flow) ---------------------------------------------------
APP_FIELDS = ["server_name", "ja3", "ja4", "ja3s", "http_user_agent", "dns_qname", "dns_answers", "tls_alpn"]


def _app_captures() -> list:
    from conftest import CORPUS, FIXTURES, have_corpus

    out = [FIXTURES / n for n in ("http.pcap", "tls.pcap", "local.pcapng")]
    if have_corpus():
        picked = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.stat().st_size < 2_000_000
                        and any(w in p.name.lower() for w in ("tls", "http", "dns", "ssl")))
        out += picked[:: max(1, len(picked) // 25)]
    return out


@pytest.mark.parametrize("reassemble", [False, True])
@pytest.mark.parametrize("kw", [{}, {"idle_timeout": None, "active_timeout": None}, {"stats": True, "idle_timeout": 1.0}])
def test_fields_from_the_columns_equal_the_engines(kw, reassemble, monkeypatch):
    # the application fields read column-wise (first packet of each flow that has each)
    # give flows()' values, on captures with TLS, HTTP and DNS
    from purepcap import _flowframe
    from purepcap._flowframe import flow_frame

    def no_stream(*args, **kw):
        raise AssertionError("read through flows()")
    compared = 0
    for path in _app_captures():
        want = flow_frame(list(flows(path, fields=APP_FIELDS, reassemble=reassemble, errors="ignore", **kw)),
                          bool(kw.get("stats")), APP_FIELDS)
        with monkeypatch.context() as mp:
            mp.setattr(_flowframe, "_streamed", no_stream)
            got = purepcap.flows_to_pandas(path, fields=APP_FIELDS, reassemble=reassemble, errors="ignore", **kw)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, atol=0, obj=str(path))
        compared += int(want[APP_FIELDS].notna().to_numpy().sum())
    assert compared >= 5  # values were found, not only Nones compared


def test_other_fields_still_read_through_flows():
    from conftest import FIXTURES

    from purepcap._flowframe import flow_frame

    path = FIXTURES / "local.pcap"
    want = flow_frame(list(flows(path, fields=["ttl", "server_name"])), False, ["ttl", "server_name"])
    pd.testing.assert_frame_equal(purepcap.flows_to_pandas(path, fields=["ttl", "server_name"]), want)
