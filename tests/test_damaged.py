# The damaged and truncated captures of ../shared/corpus (issue 9): each yields its good
# frames and then a PcapError naming the offset, judged against what tshark and tcpdump
# (libpcap) say about the same files.
#
# The set is every file the corpus metadata flags: a `walk_note` or `capinfos_error` in
# the manifest, or tshark exit code 2. Three kinds turn up, and each is judged by the
# oracle that can judge it:
#   * damage to the container (a bad version, a reserved bit, an option running past
#     its block, a cut-short record): tshark's good frames, then a PcapError whose
#     message names its offset; strict=False gives the same frames and a warning.
#   * link types tshark 4.0 does not know (Broadcom and Marvell DSA tags, FRF.16,
#     Juniper): tshark refuses the whole file, yet the container is sound and libpcap
#     reads it. purepcap reads containers, not every link type, so we read these and
#     hold them to tcpdump's output instead: one packet per tcpdump line, same times.
#   * notes that are no damage at all (an FCS-length remark): a clean read, tshark's count.
from __future__ import annotations

import warnings
from datetime import datetime, timezone

import pytest
from conftest import corpus_path, have_corpus, manifest, needs_corpus, oracle_summary, tcpdump_lines

import purepcap
from purepcap import PcapError, PcapWarning


def _flagged(value: str | None) -> bool:
    return value not in (None, "", "-")


def damaged_files() -> list[str]:
    if not have_corpus():
        return []
    summary = oracle_summary()
    return sorted(p for p, r in manifest().items()
                  if _flagged(r["walk_note"]) or _flagged(r["capinfos_error"])
                  or summary.get(p, {}).get("tshark_rc") == "2")


def unknown_link_type(path: str) -> bool:
    """tshark refused the file only because it does not know the link type."""
    err = oracle_summary()[path]["stderr"]
    return "unknown or unsupported" in err and "network type" in err and "reserved" not in err


def read(path: str, strict: bool = True) -> tuple[list, PcapError | None, list, purepcap.Capture | None]:
    got: list = []
    err = None
    cap = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with purepcap.open(corpus_path(path), strict=strict) as cap:
                for p in cap:
                    assert len(p.data) == p.caplen
                    got.append(p)
        except PcapError as e:
            err = e
    return got, err, [w for w in caught if issubclass(w.category, PcapWarning)], cap


def tcpdump_time_ns(line: str) -> int | None:
    """The -tttt nanosecond timestamp a tcpdump packet line starts with (None for
    its "[Invalid header ...]" lines)."""
    if len(line) < 29 or line[4] != "-" or line[19] != ".":
        return None
    sec = datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(sec.timestamp()) * 1_000_000_000 + int(line[20:29])


@needs_corpus
def test_the_corpus_flags_about_23_files() -> None:
    files = damaged_files()
    assert 20 <= len(files) <= 30, len(files)
    kinds = [unknown_link_type(p) for p in files]
    assert 0 < sum(kinds) < len(files)


@needs_corpus
@pytest.mark.parametrize("path", [p for p in damaged_files() if not unknown_link_type(p)] or ["<corpus absent>"])
def test_damaged_file_gives_its_good_frames_then_names_the_offset(path: str) -> None:
    summary = oracle_summary()[path]
    got, err, _, _ = read(path)
    assert len(got) == int(summary["frames"]), (len(got), err)
    if summary["tshark_rc"] == "0":  # flagged by a note, not damaged: a clean read
        assert err is None, err
        return
    assert err is not None, "tshark stopped on damage here; purepcap must too"
    assert err.offset is not None and err.frame == len(got)
    assert str(err.offset) in str(err), str(err)
    # strict=False: the same good frames and a warning instead (damage in the file
    # header still refuses the file: there is nothing to read past)
    got2, err2, warned, _ = read(path, strict=False)
    assert got2 == got
    if err2 is None:
        assert len(warned) == 1 and str(err.offset) in str(warned[0].message)
    else:
        assert got == [] and type(err2) is type(err)


@needs_corpus
@pytest.mark.parametrize("path", [p for p in damaged_files() if unknown_link_type(p)] or ["<corpus absent>"])
def test_unknown_link_types_read_like_libpcap(path: str) -> None:
    rc, lines = tcpdump_lines()[path]
    assert rc == 0 and lines[0].startswith("reading from file")
    packets = lines[1:]  # one line per packet, times where tcpdump could print them
    got, err, warned, cap = read(path)
    assert err is None and not warned and cap is not None and cap.clean_end
    assert len(got) == len(packets) == int(manifest()[path]["packets_walk"])
    assert {p.linktype for p in got} == {int(manifest()[path]["linktypes"])}
    times = [(p.time, tcpdump_time_ns(line)) for p, line in zip(got, packets)]
    assert all(ours == theirs for ours, theirs in times if theirs is not None), times
    assert any(theirs is not None for _, theirs in times)
