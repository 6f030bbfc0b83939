# Conformance (issue 19; issue 23 item 1): every container case through every consumer.
#
# Each case of tests/_conformance.py (all pcap variants, pcapng sections, interfaces,
# resolutions, packetless and unknown blocks, damage, lying lengths, cut-short files,
# gzip) is read by purepcap.open -- the reference -- and then by every other consumer:
# open over a path and a file object, records() down its direct walk (bytes, path)
# and down its Packet path (fields=, a file object, an open Capture), to_pandas' batch
# walk and its Packet path, spans from split_capture read one by one, and the Intake
# source read whole and through Dask at several partition sizes. Each must give what
# the reference gives, narrowed to what it shows: the same rows, the same error
# (class, byte offset, last good frame) and, reading leniently, the same warnings.
#
# Every case agrees through every consumer. (Until the walkers took their rules from
# _container and split_capture its own from the reader, 225 pairs disagreed, in nine
# causes: damage in a span's prefix stepped over or misplaced, a cut section header
# hidden by Intake, split_capture ignoring the pre-2.4 length swap or counting a
# skipped block as a frame, to_pandas' hand-over stream sniffed for a compression
# magic, Dask raising a later partition's error, a decompression error without its frame.)
from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _conformance import (
    FRAME_COLUMNS,
    Case,
    Outcome,
    all_cases,
    as_frame,
    as_records,
    collect,
    difference,
    frame_rows,
    read_intake,
    read_open,
    read_pandas,
    read_records,
    read_spans,
)

import purepcap
from purepcap import NotACaptureError

# The frame consumers need their libraries; the others are the core suite's, run on every
# Python purepcap supports (PyPy included, where open() and records() may walk differently).
_LIBRARIES = {"pandas": ("pandas",), "intake": ("pandas", "intake"), "dask": ("pandas", "intake", "dask")}

CASES = {c.name: c for c in all_cases()}


# -- the reference -------------------------------------------------------------------------
_REFERENCE: dict[tuple[str, bool], Outcome] = {}


def reference(case: Case, strict: bool) -> Outcome:
    key = (case.name, strict)
    if key not in _REFERENCE:
        _REFERENCE[key] = read_open(case.data, strict)
    return _REFERENCE[key]


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("conformance")
    for c in CASES.values():
        (d / c.name).write_bytes(c.data)
    return d


@pytest.mark.parametrize("name", list(CASES))
def test_case_is_what_its_name_says(name: str) -> None:
    """The reference itself, against what the case was built to be: this many good
    packets, then this error (or none). Reading leniently gives the same packets."""
    case = CASES[name]
    ref = reference(case, True)
    assert (len(ref.rows), ref.error and ref.error[0]) == (case.packets, case.error)
    assert ref.warnings == []
    lenient = reference(case, False)
    assert lenient.rows[:case.packets] == ref.rows
    if ref.error is not None and lenient.error is None:  # damage stepped over or stopped at
        assert lenient.warnings


# A pcap-filter that keeps packets by their length on the wire, whatever their link type.
FILTER_LEN = 70
FILTER = f"len >= {FILTER_LEN}"


# -- the consumers -----------------------------------------------------------------------------
# name -> (strict, whether it applies to a case, run(case, path) -> (got, want))
Run = Callable[[Case, Path], "tuple[Outcome, Outcome]"]
CONSUMERS: dict[str, tuple[bool, Callable[[Case], bool], Run]] = {}


def _always(case: Case) -> bool:
    return True


def _uncompressed(case: Case) -> bool:
    return not case.compressed


def _small(case: Case) -> bool:
    return not case.big


def _small_uncompressed(case: Case) -> bool:
    return not case.compressed and not case.big


BIG_PART = 1 << 18  # a partition size for the big cases: ~18 spans


def _strict_names(strict: bool) -> str:
    return "strict" if strict else "lenient"


def _add(name: str, strict: bool, run: Run, applies: Callable[[Case], bool] = _always) -> None:
    CONSUMERS[f"{name}/{_strict_names(strict)}"] = (strict, applies, run)


for _strict in (True, False):
    def _open_path(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        return read_open(path, s, name=str(path)), reference(case, s)

    def _open_file(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        return read_open(io.BytesIO(case.data), s, name="<stream>"), reference(case, s)

    def _records_bytes(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        return read_records(case.data, s), as_records(reference(case, s))

    def _records_path(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        return read_records(path, s, name=str(path)), as_records(reference(case, s))

    def _records_general(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        # an extra field sends records() down its Packet path
        return (read_records(path, s, fields=["interface"], name=str(path)),
                as_records(reference(case, s), interface=True))

    def _records_file(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        return read_records(io.BytesIO(case.data), s, name="<stream>"), as_records(reference(case, s))

    def _records_payload(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        out = Outcome()

        def run() -> None:
            for r in purepcap.records(path, strict=s, payload=True):
                out.rows.append((r["frame"], r["time"], r["length"], r["caplen"]))
        return collect(run, str(path), out), as_records(reference(case, s))

    def _open_filter(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        # a filter runs inside the reader's loops (Capture.keep_only), before a Packet is made
        want = reference(case, s)
        return (read_open(case.data, s, filter=FILTER),
                Outcome([r for r in want.rows if r[2] >= FILTER_LEN], want.error, want.warnings, want.stopped))

    def _records_filter(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        want = reference(case, s)
        return (read_records(path, s, filter=FILTER, name=str(path)),
                as_records(Outcome([r for r in want.rows if r[2] >= FILTER_LEN], want.error, want.warnings)))

    def _records_reassemble(case: Case, path: Path, s: bool = _strict) -> tuple[Outcome, Outcome]:
        # reassemble=True holds rows back and gives them in frame order: the same rows and
        # the same error at the same place (an application field turns it on)
        out = Outcome()

        def run() -> None:
            for r in purepcap.records(path, strict=s, fields=["ja3"], reassemble=True):
                out.rows.append((r["frame"], r["time"], r["length"], r["caplen"]))
        return collect(run, str(path), out), as_records(reference(case, s))

    _add("open-path", _strict, _open_path)
    _add("records-reassemble", _strict, _records_reassemble)
    _add("open-filter", _strict, _open_filter)
    _add("records-filter", _strict, _records_filter)
    _add("open-fileobj", _strict, _open_file)
    _add("records-bytes", _strict, _records_bytes)
    _add("records-path", _strict, _records_path)
    _add("records-fields", _strict, _records_general)
    _add("records-fileobj", _strict, _records_file)
    _add("records-payload", _strict, _records_payload)
    for _n in (1, 64, 1000, BIG_PART):
        def _spans(case: Case, path: Path, s: bool = _strict, n: int = _n) -> tuple[Outcome, Outcome]:
            want = reference(case, s)
            return read_spans(path, n, s), want
        _add(f"spans-{_n}", _strict, _spans, _uncompressed if _n == BIG_PART else _small_uncompressed)


def _records_packets(case: Case, path: Path) -> tuple[Outcome, Outcome]:
    # records() over an open Capture: the Capture raises, records only passes it on
    out = Outcome()

    def run() -> None:
        with purepcap.open(case.data) as cap:
            for r in purepcap.records(cap):
                out.rows.append((r["frame"], r["time"], r["length"], r["caplen"]))
    return collect(run, "<bytes>", out), as_records(reference(case, True))


def _pandas_bytes(case: Case, path: Path) -> tuple[Outcome, Outcome]:
    return read_pandas(case.data), as_frame(reference(case, True))


def _pandas_path(case: Case, path: Path) -> tuple[Outcome, Outcome]:
    return read_pandas(path, name=str(path)), as_frame(reference(case, True))


def _pandas_file(case: Case, path: Path) -> tuple[Outcome, Outcome]:
    return read_pandas(io.BytesIO(case.data), name="<stream>"), as_frame(reference(case, True))


def _pandas_packets(case: Case, path: Path) -> tuple[Outcome, Outcome]:
    # an open Capture: to_pandas batches its Packets (the Packet path of the batch walk)
    out = Outcome()

    def run() -> None:
        with purepcap.open(case.data) as cap:
            out.rows = frame_rows(purepcap.to_pandas(cap, columns=FRAME_COLUMNS))
    return collect(run, "<bytes>", out), as_frame(reference(case, True))


def _pandas_filter(case: Case, path: Path) -> tuple[Outcome, Outcome]:
    want = reference(case, True)
    return (read_pandas(path, name=str(path), filter=FILTER),
            as_frame(Outcome([r for r in want.rows if r[2] >= FILTER_LEN], want.error)))


def _pandas_reassemble(case: Case, path: Path) -> tuple[Outcome, Outcome]:
    out = Outcome()

    def run() -> None:
        out.rows = frame_rows(purepcap.to_pandas(path, columns=FRAME_COLUMNS + ["ja3"], reassemble=True))
    return collect(run, str(path), out), as_frame(reference(case, True))


_add("records-capture", True, _records_packets)
_add("pandas-reassemble", True, _pandas_reassemble)
_add("pandas-filter", True, _pandas_filter)
_add("pandas-bytes", True, _pandas_bytes)
_add("pandas-path", True, _pandas_path)
_add("pandas-fileobj", True, _pandas_file)
_add("pandas-capture", True, _pandas_packets)
for _n in (1, 200, BIG_PART, None):
    def _intake(case: Case, path: Path, n: int | None = _n) -> tuple[Outcome, Outcome]:
        return read_intake(path, n), as_frame(reference(case, True))
    _add(f"intake-{_n or 'default'}", True, _intake, _small if _n in (1, 200) else _always)
for _n in (1, 200, BIG_PART):
    def _dask(case: Case, path: Path, n: int = _n) -> tuple[Outcome, Outcome]:
        return read_intake(path, n, dask=True), as_frame(reference(case, True))
    _add(f"dask-{_n}", True, _dask, _small if _n in (1, 200) else _always)


def _params() -> list[Any]:
    out = []
    for cname, case in CASES.items():
        for kname, (_, applies, _) in CONSUMERS.items():
            if not applies(case):
                continue
            absent = [m for m in _LIBRARIES.get(kname.split("-")[0], ()) if importlib.util.find_spec(m) is None]
            marks = [pytest.mark.skip(reason=f"{', '.join(absent)} not installed")] if absent else []
            out.append(pytest.param(cname, kname, marks=marks, id=f"{cname}:{kname}"))
    return out


@pytest.mark.parametrize("case_name, consumer", _params())
def test_consumer_agrees_with_open(case_name: str, consumer: str, case_dir: Path) -> None:
    case = CASES[case_name]
    strict, _, run = CONSUMERS[consumer]
    got, want = run(case, case_dir / case_name)
    wrong = difference(got, want)
    if wrong:
        pytest.fail(f"{consumer} disagrees with purepcap.open on {case_name}: {wrong}", pytrace=False)


def test_compressed_captures_cannot_be_split(case_dir: Path) -> None:
    """split_capture takes only uncompressed files; the Intake source then reads a
    compressed file whole (its agreement is checked above)."""
    for case in CASES.values():
        if case.compressed:
            with pytest.raises(NotACaptureError):
                purepcap.split_capture(case_dir / case.name, 64)
