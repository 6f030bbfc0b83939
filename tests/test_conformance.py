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
    ERRORS,
    FRAME_COLUMNS,
    Case,
    Outcome,
    all_cases,
    as_frame,
    as_records,
    close_floats,
    collect,
    difference,
    frame_rows,
    loops,
    read_flow_table,
    read_flows,
    read_intake,
    read_open,
    read_pandas,
    read_records,
    read_spans,
)

import purepcap
from purepcap import NotACaptureError, _loops

# The frame consumers need their libraries; the others are the core suite's, run on every
# Python purepcap supports (PyPy included, where open() and records() may walk differently).
_LIBRARIES = {"pandas": ("pandas",), "intake": ("pandas", "intake"), "dask": ("pandas", "intake", "dask"),
              "arrow": ("pyarrow",), "polars": ("pyarrow", "polars")}

CASES = {c.name: c for c in all_cases()}
_FLOWS: dict[tuple, tuple] = {}  # what flows() gives, by (case, errors, stats, timeouts)


# -- the reference -------------------------------------------------------------------------
_REFERENCE: dict[tuple[str, str], Outcome] = {}


def reference(case: Case, errors: str) -> Outcome:
    key = (case.name, errors)
    if key not in _REFERENCE:
        _REFERENCE[key] = read_open(case.data, errors)
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
    packets, then this error (or none). Reading with errors="warn" gives the same
    packets first, and a warning for damage stepped over or stopped at; "ignore" gives
    what "warn" gives, without a warning."""
    case = CASES[name]
    ref = reference(case, "raise")
    assert (len(ref.rows), ref.error and ref.error[0]) == (case.packets, case.error)
    assert ref.warnings == []
    lenient = reference(case, "warn")
    assert lenient.rows[:case.packets] == ref.rows
    if ref.error is not None and lenient.error is None:  # damage stepped over or stopped at
        assert lenient.warnings
    quiet = reference(case, "ignore")
    assert (quiet.rows, quiet.error, quiet.stopped, quiet.warnings) == \
        (lenient.rows, lenient.error, lenient.stopped, [])


# A pcap-filter that keeps packets by their length on the wire, whatever their link type.
FILTER_LEN = 70
FILTER = f"len >= {FILTER_LEN}"


# -- the consumers -----------------------------------------------------------------------------
# name -> (errors, whether it applies to a case, run(case, path) -> (got, want)); every
# consumer runs with each of errors="raise", "warn" and "ignore"
Run = Callable[[Case, Path], "tuple[Outcome, Outcome]"]
CONSUMERS: dict[str, tuple[str, Callable[[Case], bool], Run]] = {}


def _always(case: Case) -> bool:
    return True


def _uncompressed(case: Case) -> bool:
    return not case.compressed


def _small(case: Case) -> bool:
    return not case.big


def _small_uncompressed(case: Case) -> bool:
    return not case.compressed and not case.big


BIG_PART = 1 << 18  # a partition size for the big cases: ~18 spans


def _add(name: str, errors: str, run: Run, applies: Callable[[Case], bool] = _always) -> None:
    CONSUMERS[f"{name}/{errors}"] = (errors, applies, run)


for _mode in ERRORS:
    def _open_path(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_open(path, s, name=str(path)), reference(case, s)

    def _open_file(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_open(io.BytesIO(case.data), s, name="<stream>"), reference(case, s)

    def _records_bytes(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_records(case.data, s), as_records(reference(case, s))

    def _records_path(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_records(path, s, name=str(path)), as_records(reference(case, s))

    def _records_general(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        # an extra field sends records() down its Packet path
        return (read_records(path, s, fields=["interface"], name=str(path)),
                as_records(reference(case, s), interface=True))

    def _records_file(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_records(io.BytesIO(case.data), s, name="<stream>"), as_records(reference(case, s))

    def _records_payload(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        out = Outcome()

        def run() -> None:
            for r in purepcap.records(path, errors=s, payload=True):
                out.rows.append((r["frame"], r["time"], r["length"], r["caplen"]))
        return collect(run, str(path), out), as_records(reference(case, s))

    def _open_filter(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        # a filter runs inside the reader's loops (Capture.keep_only), before a Packet is made
        want = reference(case, s)
        return (read_open(case.data, s, filter=FILTER),
                Outcome([r for r in want.rows if r[2] >= FILTER_LEN], want.error, want.warnings, want.stopped))

    def _records_filter(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        want = reference(case, s)
        return (read_records(path, s, filter=FILTER, name=str(path)),
                as_records(Outcome([r for r in want.rows if r[2] >= FILTER_LEN], want.error, want.warnings)))

    def _records_packets(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        # records() over an open Capture: the Capture reports damage, records only passes it on
        out = Outcome()

        def run() -> None:
            with purepcap.open(case.data, errors=s) as cap:
                for r in purepcap.records(cap):
                    out.rows.append((r["frame"], r["time"], r["length"], r["caplen"]))
        return collect(run, "<bytes>", out), as_records(reference(case, s))

    def _flows(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        # flows() over the same packets: the first frame of each flow, and the same end
        out = Outcome()

        def run() -> None:
            for f in purepcap.flows(path, errors=s, idle_timeout=None, active_timeout=None):
                out.rows.append((f["first_frame"],))
        got = collect(run, str(path), out)
        got.rows.sort()
        return got, _flow_firsts(reference(case, s))

    def _pandas_bytes(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_pandas(case.data, errors=s), as_frame(reference(case, s))

    def _pandas_path(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_pandas(path, name=str(path), errors=s), as_frame(reference(case, s))

    def _pandas_file(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_pandas(io.BytesIO(case.data), name="<stream>", errors=s), as_frame(reference(case, s))

    def _pandas_packets(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        # an open Capture: to_pandas batches its Packets (the Packet path of the batch walk);
        # the Capture's errors= decides, to_pandas' own only checks the name
        out = Outcome()

        def run() -> None:
            with purepcap.open(case.data, errors=s) as cap:
                out.rows = frame_rows(purepcap.to_pandas(cap, columns=FRAME_COLUMNS, errors=s))
        return collect(run, "<bytes>", out), as_frame(reference(case, s))

    def _pandas_filter(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        want = reference(case, s)
        return (read_pandas(path, name=str(path), filter=FILTER, errors=s),
                as_frame(Outcome([r for r in want.rows if r[2] >= FILTER_LEN], want.error, want.warnings)))

    def _arrow_path(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_pandas(path, name=str(path), errors=s, table="arrow"), as_frame(reference(case, s))

    def _polars_bytes(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        return read_pandas(case.data, errors=s, table="polars"), as_frame(reference(case, s))

    def _records_reassemble(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        # reassemble=True holds rows back and gives them in frame order: the same rows and
        # the same error at the same place (an application field turns it on)
        out = Outcome()

        def run() -> None:
            for r in purepcap.records(path, errors=s, fields=["ja3"], reassemble=True):
                out.rows.append((r["frame"], r["time"], r["length"], r["caplen"]))
        return collect(run, str(path), out), as_records(reference(case, s))

    def _pandas_reassemble(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        out = Outcome()

        def run() -> None:
            out.rows = frame_rows(purepcap.to_pandas(path, columns=FRAME_COLUMNS + ["ja3"], reassemble=True,
                                                     errors=s))
        return collect(run, str(path), out), as_frame(reference(case, s))

    _add("open-path", _mode, _open_path)
    _add("open-filter", _mode, _open_filter)
    _add("records-filter", _mode, _records_filter)
    _add("open-fileobj", _mode, _open_file)
    _add("records-bytes", _mode, _records_bytes)
    _add("records-path", _mode, _records_path)
    _add("records-fields", _mode, _records_general)
    _add("records-fileobj", _mode, _records_file)
    _add("records-payload", _mode, _records_payload)
    _add("records-capture", _mode, _records_packets)
    _add("flows-path", _mode, _flows, _small)
    # flows_to_pandas and flows_to_arrow (the vectorised path) against flows() (the
    # engine, the definition): every column of every flow, with and without the
    # statistics, with both timeouts None and with the default ones
    for _stats in (False, True):
        for _timeouts in ("no-timeouts", "timeouts"):
            for _table in ("pandas", "arrow"):
                def _flow_table(case: Case, path: Path, s: str = _mode, stats: bool = _stats, t: str = _timeouts,
                                table: str = _table) -> tuple[Outcome, Outcome]:
                    kw: dict[str, Any] = {"stats": stats}
                    if t == "no-timeouts":
                        kw.update(idle_timeout=None, active_timeout=None)
                    want, keys = _FLOWS.get((case.name, s, stats, t)) or read_flows(path, s, str(path), **kw)
                    _FLOWS[(case.name, s, stats, t)] = (want, keys)
                    got = read_flow_table(path, keys, s, str(path), table, **kw)
                    return close_floats(got, want), want
                _add(f"{_table}-flows-{_timeouts}{'-stats' if _stats else ''}", _mode, _flow_table)

    def _flow_fields(case: Case, path: Path, s: str = _mode) -> tuple[Outcome, Outcome]:
        # application fields per flow, read column-wise by flows_to_pandas
        kw: dict[str, Any] = {"stats": True, "fields": ["server_name", "dns_qname", "http_user_agent"]}
        want, keys = read_flows(path, s, str(path), **kw)
        return close_floats(read_flow_table(path, keys, s, str(path), "pandas", **kw), want), want
    _add("pandas-flows-fields", _mode, _flow_fields)
    _add("records-reassemble", _mode, _records_reassemble)
    _add("pandas-reassemble", _mode, _pandas_reassemble)
    for _n in (1, 64, 1000, BIG_PART):
        def _spans(case: Case, path: Path, s: str = _mode, n: int = _n) -> tuple[Outcome, Outcome]:
            want = reference(case, s)
            return read_spans(path, n, s), want
        _add(f"spans-{_n}", _mode, _spans, _uncompressed if _n == BIG_PART else _small_uncompressed)
    _add("pandas-filter", _mode, _pandas_filter)
    _add("pandas-bytes", _mode, _pandas_bytes)
    _add("pandas-path", _mode, _pandas_path)
    _add("pandas-fileobj", _mode, _pandas_file)
    _add("pandas-capture", _mode, _pandas_packets)
    _add("arrow-path", _mode, _arrow_path)
    _add("polars-bytes", _mode, _polars_bytes)
    for _n in (1, 200, BIG_PART, None):
        def _intake(case: Case, path: Path, s: str = _mode, n: int | None = _n) -> tuple[Outcome, Outcome]:
            return read_intake(path, n, errors=s), as_frame(reference(case, s))
        _add(f"intake-{_n or 'default'}", _mode, _intake, _small if _n in (1, 200) else _always)
    for _n in (1, 200, BIG_PART):
        def _dask(case: Case, path: Path, s: str = _mode, n: int = _n) -> tuple[Outcome, Outcome]:
            return read_intake(path, n, dask=True, errors=s), as_frame(reference(case, s))
        _add(f"dask-{_n}", _mode, _dask, _small if _n in (1, 200) else _always)


# Both interpreters' loops (purepcap._loops: the one each interpreter runs) over every
# case, whichever interpreter runs the tests: the Packet readers over a path, a file
# object and a filter, in reads small enough that records straddle them, and as spans;
# and records() of a path (the direct walk, or rows of Packets).
for _choice in _loops.CHOICES:
    for _m in ("raise", "warn"):  # "ignore" is "warn" without the warning
        def _loop_path(case: Case, path: Path, s: str = _m, c: str = _choice) -> tuple[Outcome, Outcome]:
            with loops(c):
                return read_open(path, s, name=str(path)), reference(case, s)

        def _loop_file(case: Case, path: Path, s: str = _m, c: str = _choice) -> tuple[Outcome, Outcome]:
            with loops(c):
                return read_open(io.BytesIO(case.data), s, name="<stream>"), reference(case, s)

        def _loop_filter(case: Case, path: Path, s: str = _m, c: str = _choice) -> tuple[Outcome, Outcome]:
            want = reference(case, s)
            with loops(c):
                return (read_open(case.data, s, filter=FILTER),
                        Outcome([r for r in want.rows if r[2] >= FILTER_LEN], want.error, want.warnings, want.stopped))

        def _loop_spans(case: Case, path: Path, s: str = _m, c: str = _choice) -> tuple[Outcome, Outcome]:
            with loops(c):
                return read_spans(path, 64, s), reference(case, s)

        _add(f"loops-{_choice}-path", _m, _loop_path)
        _add(f"loops-{_choice}-fileobj", _m, _loop_file)
        _add(f"loops-{_choice}-filter", _m, _loop_filter)
        _add(f"loops-{_choice}-spans", _m, _loop_spans, _small_uncompressed)

        def _loop_records(case: Case, path: Path, s: str = _m, c: str = _choice) -> tuple[Outcome, Outcome]:
            with loops(c):  # "cpython": the direct walk; "pypy": rows of the Packets
                return read_records(path, s, name=str(path)), as_records(reference(case, s))

        _add(f"loops-{_choice}-records", _m, _loop_records)
        for _n in (5, 97, 4096):
            def _loop_chunks(case: Case, path: Path, s: str = _m, c: str = _choice,
                             n: int = _n) -> tuple[Outcome, Outcome]:
                with loops(c):
                    return read_open(path, s, name=str(path), chunk_size=n), reference(case, s)
            _add(f"loops-{_choice}-reads-{_n}", _m, _loop_chunks, _always if _n == 4096 else _small)


def _flow_firsts(ref: Outcome) -> Outcome:
    """What flows() must give: one flow per distinct key among the IP packets, found by
    its first frame (here: by purepcap.flows over the reference's own packets, so that
    only where the packets end and how the damage is reported can differ), and the
    reference's error and warnings."""
    from purepcap.format import Packet

    packets = [Packet(r[0], r[1], r[3], r[2], r[4], r[5], r[6]) for r in ref.rows]
    rows = sorted((f["first_frame"],) for f in purepcap.flows(packets, idle_timeout=None, active_timeout=None))
    return Outcome(rows, ref.error, ref.warnings)


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
    _, _, run = CONSUMERS[consumer]
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
