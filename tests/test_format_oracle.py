"""The container readers against tshark 4.0 on the 1,311 corpus captures.

For every file tshark read without error, purepcap gives the same frame count, and
every frame the same time (ns), original length and captured length. Damaged files
give tshark's frames, then a PcapError.
"""
from __future__ import annotations

import pytest
from conftest import corpus_path, manifest, needs_corpus, oracle_rows, oracle_summary, oracle_time_ns

import purepcap
from purepcap import linktypes
from purepcap.errors import PcapError

pytestmark = needs_corpus

# Every difference between purepcap and tshark, each with its reason. Nothing else may differ.
TSHARK_DIFFERS = {
    # SunATM records start with a 4-byte pseudo-header (flags, VPI, VCI). Wireshark's pcap
    # reader moves it into its own pseudo-header and subtracts 4 from both lengths; the bytes
    # are in the record all the same, and purepcap, like libpcap, counts them.
    ("tcpdump/tests/atm-heapoverflow.pcap", 1): "sunatm",
    ("tcpdump/tests/atm-oam-heapoverflow.pcap", 1): "sunatm",
    ("tcpdump/tests/atm-oam-loopback-print-overrun.pcap", 1): "sunatm",
    # The record claims an original length of 4093509168 (b"\x30\xfe\xfd\xf3"); tshark clamps
    # lengths to INT32_MAX (2147483647). The file says what it says, so we report it.
    ("ndpi/tests/cfgs/default/pcap/fuzz-2021-06-07-c6c72a0a56.pcap", 1): "clamped",
}


def _read(path: str) -> tuple[list[purepcap.Packet], PcapError | None]:
    got: list[purepcap.Packet] = []
    try:
        with purepcap.open(corpus_path(path)) as cap:
            for p in cap:
                got.append(p)
    except PcapError as e:
        return got, e
    return got, None


def test_every_frame_agrees_with_tshark() -> None:
    rows, summary = oracle_rows(), oracle_summary()
    compared = agreeing = 0
    problems = []
    for path, s in summary.items():
        got, err = _read(path)
        expected = rows.get(path, [])
        if s["tshark_rc"] == "0":
            if err is not None:
                problems.append(f"{path}: tshark read it, we raised {err}")
            if len(got) != len(expected):
                problems.append(f"{path}: {len(got)} frames, tshark {len(expected)}")
        for p, r in zip(got, expected):
            compared += 1
            want = (int(r["frame"]), oracle_time_ns(r["time_epoch"]), int(r["frame_len"]), int(r["cap_len"]))
            have = (p.frame, p.time, p.length, p.caplen)
            reason = TSHARK_DIFFERS.get((path, p.frame))
            if reason == "sunatm":
                assert p.linktype == linktypes.SUNATM
                have = (p.frame, p.time, p.length - 4, p.caplen - 4)
            elif reason == "clamped":
                have = (p.frame, p.time, min(p.length, 2**31 - 1), p.caplen)
            if have == want:
                agreeing += 1
            else:
                problems.append(f"{path} frame {p.frame}: purepcap {have}, tshark {want}")
    assert compared > 38_000
    assert not problems, "\n".join(problems[:30])
    assert agreeing == compared


def test_linktype_and_interface_agree_with_tshark() -> None:
    rows, summary = oracle_rows(), oracle_summary()
    differ = []
    for path, s in summary.items():
        if s["tshark_rc"] != "0" or not rows.get(path):
            continue
        got, _ = _read(path)
        for p, r in zip(got, rows[path]):
            if str(p.linktype) != r["linktype"]:
                differ.append((path, p.frame, p.linktype, r["linktype"]))
    assert not differ, differ[:20]


def test_damaged_files_give_good_frames_then_an_error_naming_the_offset() -> None:
    summary = oracle_summary()
    damaged = [p for p, s in summary.items() if s["tshark_rc"] != "0"]
    assert len(damaged) >= 20
    for path in damaged:
        got, err = _read(path)
        tshark_frames = int(summary[path]["frames"])
        if err is None:
            # tshark refuses link types it cannot dissect (e.g. 281, 284, 182); the
            # container itself is sound, so we deliver every record it holds.
            assert "network type" in summary[path]["stderr"], path
            assert len(got) == int(manifest()[path]["packets_walk"]), path
            continue
        assert len(got) == tshark_frames, (path, len(got), tshark_frames)
        assert err.offset is not None and err.frame == len(got), path
        assert f"offset {err.offset}" in str(err), (path, str(err))


@pytest.mark.parametrize("path", ["tcpdump/tests/timestamp_invalid_micro.pcap",
                                  "tcpdump/tests/timestamp_invalid_nano.pcap"])
def test_invalid_fractions_follow_libpcap_arithmetic(path: str) -> None:
    got, err = _read(path)
    assert err is None
    want = [oracle_time_ns(r["time_epoch"]) for r in oracle_rows()[path]]
    assert [p.time for p in got] == want


def test_format_facts_agree_with_the_manifest() -> None:
    checked = 0
    for path, m in manifest().items():
        if m["format"] not in ("pcap", "pcapng") or m["capinfos_error"] not in ("-", ""):
            continue
        with purepcap.open(corpus_path(path)) as cap:
            assert cap.format == m["format"], path
            assert cap.byte_order == {"LE": "little", "BE": "big"}[m["byte_order"]], path
            if m["format"] == "pcap":
                assert f"{cap.version[0]}.{cap.version[1]}" == m["pcap_version"], path
                assert cap.precision == m["ts_prec"], path
            want_lts = [int(x) for x in m["linktypes"].split(",") if x]
            got_lts = [i.linktype for i in cap.interfaces]
            list(cap)  # interfaces defined later in the file count too
            got_lts = [i.linktype for i in cap.interfaces]
            assert got_lts == want_lts or sorted(set(got_lts)) == sorted(set(want_lts)), (path, got_lts, want_lts)
        checked += 1
    assert checked > 1200
