# The core round trip of the project: build -> write -> read -> decode gives back
# the built fields; damaged captures deliver their promised frames, then a
# PcapError; and tshark, an outside tool, finds every built checksum correct.
from __future__ import annotations

import importlib.util
import ipaddress
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import purepcap
from purepcap import build, linktypes
from purepcap import strategies as pst

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

try:
    from purepcap import headers
except ImportError:  # pragma: no cover - headers is written in parallel
    headers = None
try:
    from purepcap._records import EXTRA_FIELDS
    from purepcap._records import records as records_of
    from purepcap._schema import APPLICATION
except ImportError:  # pragma: no cover
    records_of = None

needs_headers = pytest.mark.skipif(headers is None, reason="purepcap.headers (issue 3) is not there yet")
needs_records = pytest.mark.skipif(records_of is None, reason="purepcap.records (issue 3) is not there yet")
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


def _diff(got: dict | None, want: dict | None) -> dict:
    keys = set(got or {}) | set(want or {})
    return {k: ((got or {}).get(k), (want or {}).get(k)) for k in keys if (got or {}).get(k) != (want or {}).get(k)}


# -- build, write, read, decode ---------------------------------------------------------------
@needs_headers
@given(pst.captures())
def test_build_write_read_decode(case):
    with purepcap.open(case.data) as cap:
        got = list(cap)
        assert cap.clean_end is True
    assert got == case.packets
    assert len(case.fields) == len(got)
    for p, want in zip(got, case.fields):
        decoded = headers.decode(p.linktype, p.data, p.length)
        assert decoded == want, (p, _diff(decoded, want))


@needs_headers
@given(pst.packets(max_payload=200), st.sampled_from(("pcap", "pcapng")), st.sampled_from(("little", "big")))
def test_every_link_and_stack_round_trips(pkt, fmt, order):
    cb = build.CaptureBuilder(fmt, byte_order=order)
    cb.add(pkt, 1_600_000_000_000_000_000)
    with purepcap.open(bytes(cb)) as cap:
        (p,) = list(cap)
    assert p.linktype == pkt.linktype and p.data == bytes(pkt)
    assert headers.decode(p.linktype, p.data, p.length) == pkt.fields()


@needs_records
@given(pst.captures(max_packets=6))
def test_records_give_the_expected_records(case):
    data, expected = case
    # the builder knows every header field; the application fields of its random
    # payloads are tests/test_appfields.py's business
    header_fields = [f for f in EXTRA_FIELDS if f not in APPLICATION]
    got = list(records_of(data, payload=True, fields=header_fields))
    assert len(got) == len(expected)
    for g, want in zip(got, expected):
        assert g == {k: want[k] for k in g}, _diff(g, {k: want[k] for k in g})


@settings(max_examples=50)
@given(pst.captures())
def test_to_pandas_gives_the_expected_records(case):
    pd = pytest.importorskip("pandas")
    df = purepcap.to_pandas(case.data, payload=True)
    assert len(df) == len(case.records)

    def opt(v):
        return None if pd.isna(v) else v

    for row, want in zip(df.itertuples(index=False), case.records):
        time = None if pd.isna(row.time) else int(row.time.value)
        ports = tuple(None if opt(v) is None else int(v) for v in (row.src_port, row.dst_port))
        assert (time, row.src_host, row.dst_host, *ports, row.protocol, bytes(row.payload)) == (
            want["time"], want["src_host"], want["dst_host"], want["src_port"], want["dst_port"], want["protocol"],
            want["payload"])


# -- filters select what the built fields say they should ------------------------------------------
_FILTERED = {
    "udp": lambda f: f["protocol"] == "udp",
    "tcp": lambda f: f["protocol"] == "tcp",
    "icmp": lambda f: f["protocol"] == "icmp",
    "icmp6": lambda f: f["protocol"] == "icmpv6",
    "ip": lambda f: f["ip_version"] == 4,
    "ip6": lambda f: f["ip_version"] == 6,
    "port 53": lambda f: 53 in (f["src_port"], f["dst_port"]),
    "udp dst port 53": lambda f: f["protocol"] == "udp" and f["dst_port"] == 53,
    "tcp or icmp": lambda f: f["protocol"] in ("tcp", "icmp"),
    "src host 0.0.0.0": lambda f: f["src_host"] == "0.0.0.0",
}
# no VLAN/MPLS/PPPoE (tcpdump's offset-shifting keywords), no extension headers or
# fragments (where pcap-filter's "ip6 proto" and "port" deliberately look less far)
_PLAIN = pst.packets(link=("ether", "raw", "sll", "null"), ip=("ipv4", "ipv6"), fragments=False,
                     extension_headers=False)


@given(pst.captures(packets=_PLAIN, truncate=False), st.sampled_from(sorted(_FILTERED)))
def test_filters_select_what_the_built_fields_say(case, expr):
    with purepcap.open(case.data, filter=expr) as cap:
        got = [p.frame for p in cap]
    assert len(case.fields) == len(case.packets)
    want = [p.frame for p, f in zip(case.packets, case.fields) if f is not None and _FILTERED[expr](f)]
    assert got == want, expr


# -- damaged captures -----------------------------------------------------------------------------
def _read_all(data: bytes, strict: bool) -> tuple[list, Exception | None, list]:
    got: list = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ResourceWarning)  # the collector's (PyPy), for files others left
        try:
            with purepcap.open(data, strict=strict) as cap:
                for p in cap:
                    got.append(p)
        except purepcap.PcapError as exc:  # anything else fails the test
            return got, exc, list(caught)
    return got, None, [w for w in caught if issubclass(w.category, purepcap.PcapWarning)]


@given(pst.damaged())
def test_damaged_captures_deliver_promised_frames_then_pcaperror(case):
    got, err, _ = _read_all(case.data, strict=True)
    assert got[:len(case.delivered)] == case.delivered, (len(got), len(case.delivered))
    if case.must_fail:
        assert err is not None, f"{case.kind} damage read without a PcapError"
        if err.frame is not None:
            assert err.frame >= len(case.delivered)
    if case.exact:
        assert len(got) == len(case.delivered)


@given(pst.damaged(kinds=("truncate", "length", "trailing")))
def test_damaged_captures_non_strict_warn_and_stop(case):
    got, err, warned = _read_all(case.data, strict=False)
    assert got[:len(case.delivered)] == case.delivered
    if err is not None:
        # only a file cut inside its first header cannot be opened at all, strict or not
        first_header_end = case.original.builder.layout()[0][2]
        assert case.kind == "truncate" and case.position < first_header_end and not got, err
    elif case.must_fail:
        # a warning, then a clean stop (a damaged pcapng block may be stepped over)
        assert warned, case
    else:
        assert not warned and got == case.delivered


@needs_headers
@given(pst.damaged(pst.captures(format="pcap"), kinds="truncate"))
def test_truncated_capture_decodes_delivered_frames(case):
    got, _err, _ = _read_all(case.data, strict=True)
    fields = case.original.fields
    for p in got:
        assert headers.decode(p.linktype, p.data, p.length) == fields[p.frame - 1]


# -- the committed fixtures decode to what make_fixtures.py built ------------------------------------------
def _make_fixtures():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@needs_headers
@pytest.mark.parametrize("name", ["local.pcap", "local.pcapng", "http.pcap", "vlan.pcap", "truncated-be.pcap",
                                  "multi/part-1.pcap", "multi/part-2.pcap", "multi/part-3.pcap"])
def test_fixture_decodes_to_built_fields(name):
    cb = _make_fixtures().FIXTURES[name]()
    expected = cb.records()
    with purepcap.open(FIXTURES / name) as cap:
        got = [headers.decode(p.linktype, p.data, p.length) for p in cap]
    assert got == expected
    assert any(f is not None and f["src_port"] is not None for f in expected)
    if name == "truncated-be.pcap":
        assert all(f["payload"] == b"" or len(f["payload"]) < 96 for f in expected)
    if name in ("local.pcap", "http.pcap"):
        assert {f["protocol"] for f in expected if f} >= {"tcp", "udp"}
    if name == "local.pcap":
        assert {f["ip_version"] for f in expected if f} == {4, 6} and None in expected


# -- checksums judged by an outside tool ------------------------------------------------------------------
_TSHARK_OPTS = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
_STATUS = ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status",
           "icmpv6.checksum.status", "igmp.checksum.status"]


def _tshark(path: Path) -> list[tuple[int, list[str], str]]:
    """Per frame: (frame, the checksum statuses tshark reports, its expert messages)."""
    cmd = [TSHARK, "-r", str(path), "-n", *_TSHARK_OPTS, "-T", "fields", "-E", "separator=\t",
           "-e", "frame.number", *[x for f in _STATUS for x in ("-e", f)], "-e", "_ws.expert.message"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = []
    for line in out.stdout.splitlines():
        cols = line.split("\t")
        statuses = [s for c in cols[1:1 + len(_STATUS)] for s in c.split(",") if s]
        rows.append((int(cols[0]), statuses, cols[-1] if len(cols) > len(_STATUS) + 1 else ""))
    return rows


def _bad_checksum(statuses: list[str], messages: str) -> bool:
    # status 0 is "Bad"; the expert messages say "incorrect" / "Bad checksum"
    low = messages.lower()
    return "0" in statuses or ("checksum" in low and ("incorrect" in low or "bad checksum" in low))


def _outer_only(pkt: build.Stack) -> bool:
    # ICMP errors quote an inner IP header; ours are random bytes whose "checksums"
    # tshark would judge too, so those frames are left out of this oracle
    icmp = next((x for x in pkt.layers if isinstance(x, build.ICMP)), None)
    if icmp is None:
        return True
    errors = (1, 2, 3, 4) if isinstance(icmp, build.ICMPv6) else (3, 4, 5, 11, 12)
    return icmp.type not in errors


_FIELDS = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport", "udp.srcport",
           "udp.dstport", "sctp.srcport", "sctp.dstport", "frame.protocols"]


def _tshark_fields(path: Path) -> list[list[str]]:
    """Per frame, the outermost addresses and ports and the protocol stack, as tshark sees them."""
    cmd = [TSHARK, "-r", str(path), "-n", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f", *[x for f in _FIELDS for x in ("-e", f)]]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines()]


def _generated_packets(n: int) -> list[build.Stack]:
    # hypothesis only draws the packets (no shrinking: one tshark run judges them all)
    pkts: list[build.Stack] = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate], deadline=None)
    @given(pst.packets(max_payload=120).filter(_outer_only))
    def collect(pkt):
        pkts.append(pkt)

    collect()
    return pkts


@needs_tshark
def test_tshark_finds_every_built_checksum_correct_and_agrees_on_fields(tmp_path):
    pkts = _generated_packets(300)
    path = tmp_path / "built.pcapng"
    cb = build.CaptureBuilder("pcapng")
    for n, p in enumerate(pkts):
        cb.add(p, 1_700_000_000_000_000_000 + n * 1000)
    cb.write(path)
    rows = _tshark(path)
    assert len(rows) == len(pkts) >= 100
    bad = [(frame, statuses, messages, pkts[frame - 1]) for frame, statuses, messages in rows
           if _bad_checksum(statuses, messages)]
    assert not bad, bad[:3]
    checked = sum(statuses.count("1") for _f, statuses, _m in rows)
    assert checked >= len(pkts)  # tshark did verify (status 1 = Good) the headers
    # the expected fields strategies promise are what tshark reads too
    ip = ipaddress.ip_address
    for n, cols in enumerate(_tshark_fields(path)):
        f = pkts[n].fields()
        src, dst = cols[0] or cols[2], cols[1] or cols[3]
        sport, dport = cols[4] or cols[6] or cols[8], cols[5] or cols[7] or cols[9]
        got = (ip(src), ip(dst), int(sport) if sport else None, int(dport) if dport else None)
        assert got == (ip(f["src_host"]), ip(f["dst_host"]), f["src_port"], f["dst_port"]), (n + 1, pkts[n])
        later = any(isinstance(x, (build.IPv4, build.Fragment)) and x.offset for x in pkts[n].layers)
        if f["protocol"] in ("tcp", "udp", "sctp", "icmp", "icmpv6", "igmp") and not later:
            assert f["protocol"] in cols[10].split(":"), (n + 1, cols[10], pkts[n])


@needs_tshark
@pytest.mark.parametrize("name", ["local.pcap", "local.pcapng", "http.pcap", "vlan.pcap", "truncated-be.pcap",
                                  "multi/part-1.pcap", "multi/part-2.pcap", "multi/part-3.pcap"])
def test_tshark_reads_fixtures_without_complaint(name):
    rows = _tshark(FIXTURES / name)
    assert rows
    for frame, statuses, messages in rows:
        assert not _bad_checksum(statuses, messages), (frame, messages)
        assert "malformed" not in messages.lower(), (frame, messages)


@needs_tshark
def test_tshark_oracle_catches_wrong_checksums(tmp_path):
    # the check above can fail: deliberately wrong checksums are each reported
    wrong = [
        build.ether() / build.ipv4(checksum=0x1234) / build.udp(1000, 2000) / b"a",
        build.ether() / build.ipv4() / build.tcp(1000, 2000, checksum=0x1234) / b"b",
        build.ether() / build.ipv4() / build.udp(1000, 2000, checksum=0x1234) / b"c",
        build.ether() / build.ipv6() / build.udp(1000, 2000, checksum=0x1234) / b"d",
        build.ether() / build.ipv4() / build.icmp(checksum=0x1234),
        build.ether() / build.ipv6() / build.icmpv6(checksum=0x1234),
    ]
    right = [build.Stack([layer if not hasattr(layer, "checksum") else type(layer)(**{**vars(layer), "checksum": None})
                          for layer in p.layers]) for p in wrong]
    path = tmp_path / "wrong.pcap"
    build.CaptureBuilder("pcap").extend(wrong + right).write(path)
    rows = _tshark(path)
    flags = [_bad_checksum(s, m) for _f, s, m in rows]
    assert flags == [True] * len(wrong) + [False] * len(right), rows


@needs_tshark
def test_tshark_checks_every_link_type(tmp_path):
    links = [build.ether(vlans=[(5, 0x88A8), 6]), build.sll(), build.sll2(), build.null(), build.loop(),
             build.raw(), build.ppp(), build.chdlc()]
    pkts = [link / build.ipv4("10.0.0.1", "10.0.0.2") / build.tcp(1, 2, flags="PA") / b"hello" for link in links]
    pkts += [link / build.ipv6() / build.udp(3, 4) / b"world" for link in links]
    pkts += [build.ether() / build.pppoe() / build.ipv4() / build.udp() / b"x",
             build.ether() / build.mpls(100) / build.ipv6() / build.tcp() / b"y"]
    cb = build.CaptureBuilder("pcapng")
    for n, p in enumerate(pkts):
        cb.add(p, 1_700_000_000_000_000_000 + n)
    cb.write(tmp_path / "links.pcapng")
    rows = _tshark(tmp_path / "links.pcapng")
    for frame, statuses, messages in rows:
        assert not _bad_checksum(statuses, messages), (frame, messages)
        assert statuses.count("1") >= 1, (frame, statuses, pkts[frame - 1])  # tshark reached the transport
    assert {p.linktype for p in pkts} >= {linktypes.EN10MB, linktypes.LINUX_SLL, linktypes.LINUX_SLL2,
                                           linktypes.NULL, linktypes.LOOP, linktypes.RAW, linktypes.PPP,
                                           linktypes.C_HDLC}
