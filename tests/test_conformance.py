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
# A disagreement that exists today is kept as a strict xfail on exactly that case and
# consumer (KNOWN, grouped by cause): it fails once fixed, and the mark goes then.
from __future__ import annotations

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
    frame_rows,
    read_intake,
    read_open,
    read_pandas,
    read_records,
    read_spans,
)

import purepcap
from purepcap import NotACaptureError

pytest.importorskip("pandas")

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


# -- the consumers -----------------------------------------------------------------------------
# name -> (strict, whether it applies to a case, run(case, path) -> (got, want))
Run = Callable[[Case, Path], "tuple[Outcome, Outcome]"]
CONSUMERS: dict[str, tuple[bool, Callable[[Case], bool], Run]] = {}


def _always(case: Case) -> bool:
    return True


def _uncompressed(case: Case) -> bool:
    return not case.compressed


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

    _add("open-path", _strict, _open_path)
    _add("open-fileobj", _strict, _open_file)
    _add("records-bytes", _strict, _records_bytes)
    _add("records-path", _strict, _records_path)
    _add("records-fields", _strict, _records_general)
    _add("records-fileobj", _strict, _records_file)
    _add("records-payload", _strict, _records_payload)
    for _n in (1, 64, 1000):
        def _spans(case: Case, path: Path, s: bool = _strict, n: int = _n) -> tuple[Outcome, Outcome]:
            want = reference(case, s)
            return read_spans(path, n, s), want
        _add(f"spans-{_n}", _strict, _spans, _uncompressed)


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


_add("records-capture", True, _records_packets)
_add("pandas-bytes", True, _pandas_bytes)
_add("pandas-path", True, _pandas_path)
_add("pandas-fileobj", True, _pandas_file)
_add("pandas-capture", True, _pandas_packets)
for _n in (1, 200, None):
    def _intake(case: Case, path: Path, n: int | None = _n) -> tuple[Outcome, Outcome]:
        return read_intake(path, n), as_frame(reference(case, True))
    _add(f"intake-{_n or 'default'}", True, _intake)
for _n in (1, 200):
    def _dask(case: Case, path: Path, n: int = _n) -> tuple[Outcome, Outcome]:
        return read_intake(path, n, dask=True), as_frame(reference(case, True))
    _add(f"dask-{_n}", True, _dask)


# -- disagreements that exist today ------------------------------------------------------------
# (case, consumer) -> reason, grouped by cause (letters as in the report to the lead);
# each group is one fix. Issue 23.1 is A-C.
KNOWN: dict[tuple[str, str], str] = {}


def _known(reason: str, cases: list[str], consumers: list[str]) -> None:
    for c in cases:
        for k in consumers:
            assert c in CASES and k in CONSUMERS, (c, k)
            KNOWN[(c, k)] = reason


_SPANS = [f"spans-{n}/{m}" for n in (1, 64, 1000) for m in ("strict", "lenient")]
_INTAKE = ["intake-1/strict", "intake-200/strict", "dask-1/strict", "dask-200/strict"]
_FRAMES = ["pandas-bytes/strict", "pandas-path/strict", "pandas-fileobj/strict", "intake-1/strict",
           "intake-200/strict", "intake-default/strict", "dask-1/strict", "dask-200/strict"]

# A: _split_pcapng puts a damaged interface block into the prefix of the spans after it,
# and the span reader steps over it there (_start_pcapng's "except PcapError: break";
# the interface-count check is skipped for a span), so the error names a later block
# (leniently: the warning for the interface is lost).
_known("issue 23.1 A: a damaged interface block in a span's prefix is stepped over",
       ["ng-idb-bad-trailer", "ng-idb-option-past-block", "ng-idb-tsresol-0x7f-leading", "ng-idb-tsresol-2^-64",
        "ng-second-section-idb-tsresol-0x7f"], _SPANS + _INTAKE)
# A, seen only by Dask: a later partition, whose prefix holds the damaged interface
# block, raises its own different error, and Dask computes it first.
_known("issue 23.1 A: a damaged interface block in a later span's prefix",
       ["ng-idb-tsresol-0x7f-after-packets"], ["dask-1/strict", "dask-200/strict"])
# B: a damaged section header after the first becomes the prefix of the next span, whose
# reader reports it at offset 0, frame 0 (it parses the prefix as if it began the file).
_known("issue 23.1 B: a damaged later section header is reported at offset 0",
       ["ng-second-shb-bad-trailer", "ng-second-shb-version-2"], _SPANS + _INTAKE)
# C: a file cut inside its second section header: _split_pcapng makes a span that
# starts past the end of the file; its reader says TruncatedError at offset 0, and
# Intake's _partitions drops it as empty, returning the good rows and no error.
_known("issue 23.1 C: a cut in a later section header is hidden",
       ["ng-cut-in-second-shb"], _SPANS + ["intake-1/strict", "dask-1/strict"])
# D: split_capture on a file whose header open() rejects: NotACaptureError (pcap:
# "cannot split"; pcapng: a span with an empty prefix, read as an empty file) where
# open() says TruncatedError or DamagedError. (Intake reads such a file whole: agrees.)
_known("D: split_capture misnames a bad file header",
       ["pcap-cut-in-magic", "pcap-cut-in-file-header", "ng-cut-in-shb-header", "ng-shb-bad-bom",
        "ng-shb-length-huge"], _SPANS)
# E: split_capture ignores the caplen/len swap of pcap before 2.4 that the reader
# undoes, so its spans start inside records.
_known("E: split_capture ignores the pre-2.4 caplen/len swap",
       ["pcap-v2.2-swapped", "pcap-v2.3-swapped-be", "pcap-v2.2-modified"],
       [f"spans-{n}/{m}" for n in (1, 64) for m in ("strict", "lenient")] + ["intake-1/strict", "dask-1/strict"])
# F: lenient partitioned reads number the frames after a damaged packet block one
# higher: split_capture counts the block as a frame, a lenient whole read steps over it.
_known("F: lenient spans count a skipped damaged packet block as a frame",
       ["ng-damage-in-two-places", "ng-epb-bad-trailer", "ng-be-epb-bad-trailer", "ng-epb-caplen-over-block",
        "ng-epb-interface-out-of-range", "ng-be-epb-interface-out-of-range", "ng-first-epb-bad-trailer"],
       ["spans-1/lenient", "spans-64/lenient"])
# G: to_pandas hands an irregular record or block to the container reader through
# _batches._Resume, and open_source sniffs that stream's first bytes for a compression
# magic: a record or block starting 1f 8b (gzip; BZh, xz and zstd likewise) ends the
# read in "PcapError: reading a span needs a seekable file", offset None, even when the
# file is valid.
_known("G: to_pandas' hand-over stream is sniffed for a compression magic",
       ["pcap-lying-caplen-starts-like-gzip", "pcap-cut-in-record-starting-like-gzip",
        "ng-unknown-block-starts-like-gzip"], _FRAMES)
# H: to_dask() raises the error of whichever damaged partition Dask computes first
# (here a later one), not the file's first damage as read() and a whole read do.
_known("H: to_dask() raises a later partition's error", ["pcap-damage-in-two-places"],
       ["dask-1/strict", "dask-200/strict"])
_known("H: to_dask() raises a later partition's error", ["ng-damage-in-two-places"], ["dask-1/strict"])
# I: to_pandas loses the frame of an error the decompressor raises (TruncatedError.frame
# is None where open() says the last good frame): the batch walk does not stamp it.
_known("I: to_pandas drops the frame of a decompression error", ["gz-stream-cut-short"], _FRAMES)


def _params() -> list[Any]:
    out = []
    for cname, case in CASES.items():
        for kname, (_, applies, _) in CONSUMERS.items():
            if not applies(case):
                continue
            marks = []
            if (cname, kname) in KNOWN:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[(cname, kname)]))
            out.append(pytest.param(cname, kname, marks=marks, id=f"{cname}:{kname}"))
    return out


@pytest.mark.parametrize("case_name, consumer", _params())
def test_consumer_agrees_with_open(case_name: str, consumer: str, case_dir: Path) -> None:
    case = CASES[case_name]
    strict, _, run = CONSUMERS[consumer]
    got, want = run(case, case_dir / case_name)
    assert got.error == want.error
    assert got.rows == want.rows
    assert got.warnings == want.warnings
    assert got.stopped == want.stopped


def test_compressed_captures_cannot_be_split(case_dir: Path) -> None:
    """split_capture takes only uncompressed files; the Intake source then reads a
    compressed file whole (its agreement is checked above)."""
    for case in CASES.values():
        if case.compressed:
            with pytest.raises(NotACaptureError):
                purepcap.split_capture(case_dir / case.name, 64)
