# errors="raise" | "warn" | "ignore" and the CLI's --keep-going (issue 20, "Cut-short
# captures lose everything in the table APIs").
#
# Every damaged capture here is judged against its good prefix: the bytes before the
# damage, a whole capture of their own, read strictly. "warn" must give exactly what
# that prefix gives, and one PcapWarning naming the file, the byte offset and the frame;
# "ignore" the same with no warning at all; "raise" the PcapError (after the good
# packets, for the iterators; instead of the table, for the table builders). The
# damage: pcap and pcapng files cut short (as `head -c 3000` cuts them), and garbage
# written into the middle of each. A hypothesis property cuts every fixture at any byte.
# (The same option through every path and every damaged case of the conformance suite
# is checked in tests/test_conformance*.py.)
from __future__ import annotations

import contextlib
import io
import json
import struct
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

import purepcap
from purepcap import PcapError, PcapWarning
from purepcap.cli import main

GARBAGE = b"\xff" * 37  # a record (block) header of 0xffffffff lengths: a lying length


def _pcap_boundaries(data: bytes) -> list[int]:
    """Where each record of a little-endian microsecond pcap starts (spec: 24-byte file
    header, 16-byte record headers with caplen at +8), and where the last one ends."""
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, pos = [], 24
    while pos + 16 <= len(data):
        out.append(pos)
        pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]
    if pos <= len(data):
        out.append(pos)
    return out


def _pcapng_boundaries(data: bytes) -> list[int]:
    """Where each block of a little-endian pcapng file starts, and where the last one
    ends (spec: type, then total length, at the start of every block)."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        out.append(pos)
        pos += struct.unpack_from("<I", data, pos + 4)[0]
    if pos <= len(data):
        out.append(pos)
    return out


def _first_packet(data: bytes, ng: bool) -> int:
    """The offset of the first packet record (block): before it, the file's own header."""
    if not ng:
        return 24
    return next(b for b in _pcapng_boundaries(data) if struct.unpack_from("<I", data, b)[0] in (3, 6))


def _damaged(kind: str) -> tuple[bytes, bytes]:
    """(damaged capture, its good prefix) for a kind of damage."""
    fmt, how = kind.split("-")
    raw = (FIXTURES / f"local.{fmt}").read_bytes()
    ng = fmt == "pcapng"
    bounds = _pcapng_boundaries(raw) if ng else _pcap_boundaries(raw)
    if how == "cut":
        data = raw[:3000]
        return data, data[:max(b for b in bounds if b < len(data))]
    at = bounds[len(bounds) // 2]  # garbage before the middle record (block)
    return raw[:at] + GARBAGE + raw[at:], raw[:at]


KINDS = ["pcap-cut", "pcapng-cut", "pcap-garbage", "pcapng-garbage"]


@pytest.fixture(params=KINDS)
def damaged(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    data, good = _damaged(request.param)
    ext = request.param.split("-")[0]
    bad_path, good_path = tmp_path / f"bad.{ext}", tmp_path / f"good.{ext}"
    bad_path.write_bytes(data)
    good_path.write_bytes(good)
    return bad_path, good_path


def _damage_of(path: Path) -> PcapError:
    """The damage a strict read meets (and checks that it meets some)."""
    with pytest.raises(PcapError) as e:
        list(purepcap.open(path))
    return e.value


@contextlib.contextmanager
def _warnings() -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _pcap_warnings(caught: list) -> list:
    return [w for w in caught if issubclass(w.category, PcapWarning)]


def _assert_names_the_damage(text: str, path: Path, damage: PcapError) -> None:
    assert str(path) in text, text
    assert f"offset {damage.offset}" in text, text
    assert f"frame {damage.frame}" in text, text


# -- every API -----------------------------------------------------------------------------
def _packets(path: Path, **kw: Any) -> list:
    with purepcap.open(path, **kw) as cap:
        return [(p.frame, p.time, p.caplen, p.length, p.data) for p in cap]


def _records(path: Path, **kw: Any) -> list:
    return list(purepcap.records(path, **kw))


def _records_fields(path: Path, **kw: Any) -> list:  # the Packet path of records()
    return list(purepcap.records(path, fields=["ttl"], **kw))


def _flows(path: Path, **kw: Any) -> list:
    return list(purepcap.flows(path, **kw))


def _pandas(path: Path, **kw: Any) -> Any:
    pytest.importorskip("pandas")
    return purepcap.to_pandas(path, columns=["frame"], **kw)


def _arrow(path: Path, **kw: Any) -> Any:
    pytest.importorskip("pyarrow")
    return purepcap.to_arrow(path, columns=["frame"], **kw)


def _polars(path: Path, **kw: Any) -> Any:
    pytest.importorskip("polars")
    return purepcap.to_polars(path, columns=["frame"], **kw)


def _flow_frame(path: Path, **kw: Any) -> Any:
    pytest.importorskip("pandas")
    return purepcap.flows_to_pandas(path, **kw)


def _flow_frame_stats(path: Path, **kw: Any) -> Any:  # through flows()
    pytest.importorskip("pandas")
    return purepcap.flows_to_pandas(path, stats=True, **kw)


def _intake(path: Path, **kw: Any) -> Any:
    intake = pytest.importorskip("intake")
    return intake.open_pcap(str(path), columns=["frame"], partition_size=700, **kw).read()


def _intake_flows(path: Path, **kw: Any) -> Any:
    intake = pytest.importorskip("intake")
    return intake.open_pcap(str(path), flows=True, **kw).read()


def _dask(path: Path, **kw: Any) -> Any:
    intake = pytest.importorskip("intake")
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="sync"):
        return intake.open_pcap(str(path), columns=["frame"], partition_size=700, **kw).to_dask().compute()


ITERATORS = {"open": _packets, "records": _records, "records-fields": _records_fields, "flows": _flows}
TABLES = {"to_pandas": _pandas, "to_arrow": _arrow, "to_polars": _polars, "flows_to_pandas": _flow_frame,
          "flows_to_pandas-stats": _flow_frame_stats, "intake": _intake, "intake-flows": _intake_flows,
          "dask": _dask}
APIS = {**ITERATORS, **TABLES}


def _same(got: Any, want: Any) -> None:
    if isinstance(want, list):
        assert got == want
    elif hasattr(want, "reset_index"):  # pandas
        import pandas as pd

        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    else:  # pyarrow Table, polars DataFrame
        assert got.equals(want)


@pytest.mark.parametrize("api", list(APIS))
def test_warn_keeps_every_good_packet_and_warns_once(api: str, damaged: tuple[Path, Path]) -> None:
    bad, good = damaged
    damage = _damage_of(bad)
    read = APIS[api]
    with _warnings() as caught:
        want = read(good, errors="raise")
    assert not _pcap_warnings(caught)
    with _warnings() as caught:
        got = read(bad, errors="warn")
    _same(got, want)
    found = _pcap_warnings(caught)
    assert len(found) == 1, [str(w.message) for w in found]
    _assert_names_the_damage(str(found[0].message), bad, damage)
    if not api.startswith(("intake", "dask")):  # (there: the first frame outside purepcap is intake's)
        assert found[0].filename == __file__  # the warning points at the caller's line
    error = found[0].message.error  # the PcapError it would have raised
    assert type(error) is type(damage) and (error.offset, error.frame) == (damage.offset, damage.frame)


@pytest.mark.parametrize("api", list(APIS))
def test_ignore_keeps_every_good_packet_silently(api: str, damaged: tuple[Path, Path]) -> None:
    bad, good = damaged
    read = APIS[api]
    want = read(good, errors="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PcapWarning)  # any PcapWarning fails the test
        got = read(bad, errors="ignore")
    _same(got, want)


@pytest.mark.parametrize("api", list(APIS))
def test_raise_raises_the_damage(api: str, damaged: tuple[Path, Path]) -> None:
    bad, _ = damaged
    damage = _damage_of(bad)
    with pytest.raises(type(damage)) as e:
        APIS[api](bad, errors="raise")
    assert (e.value.offset, e.value.frame) == (damage.offset, damage.frame)
    assert str(bad) in str(e.value)


@pytest.mark.parametrize("api", list(ITERATORS))
def test_iterators_raise_by_default_after_every_good_item(api: str, damaged: tuple[Path, Path]) -> None:
    """Nothing is lost by raising from an iterator: every good packet came first."""
    bad, good = damaged
    want = ITERATORS[api](good)
    got: list = []
    if api == "open":
        with pytest.raises(PcapError), purepcap.open(bad) as cap:
            got.extend((p.frame, p.time, p.caplen, p.length, p.data) for p in cap)
    elif api == "flows":
        with pytest.raises(PcapError):
            got.extend(purepcap.flows(bad))
        # the flows that ended before the damage, then the error (the others are cut off)
        assert all(f in want for f in got if f["end_reason"] != "eof")
        return
    else:
        with pytest.raises(PcapError):
            got.extend(purepcap.records(bad, fields=["ttl"] if api == "records-fields" else None))
    assert got == want


@pytest.mark.parametrize("api", list(TABLES))
def test_tables_warn_by_default(api: str, damaged: tuple[Path, Path]) -> None:
    """A table builder that raised would throw away every good row: it warns."""
    bad, good = damaged
    want = TABLES[api](good)
    with _warnings() as caught:
        got = TABLES[api](bad)
    _same(got, want)
    assert len(_pcap_warnings(caught)) == 1


@pytest.mark.parametrize("api", list(APIS))
def test_a_bad_errors_value_names_the_three_choices(api: str) -> None:
    with pytest.raises(ValueError) as e:
        APIS[api](FIXTURES / "local.pcap", errors="coerce")
    assert not isinstance(e.value, PcapError)
    assert all(f"'{name}'" in str(e.value) for name in ("raise", "warn", "ignore"))


def test_strict_false_is_still_warn() -> None:
    data, good = _damaged("pcap-cut")
    with _warnings() as caught:
        assert _packets_of_bytes(data, strict=False) == _packets_of_bytes(good)
    assert len(_pcap_warnings(caught)) == 1
    with purepcap.open(data, strict=False) as cap:
        assert cap.errors == "warn" and not cap.strict


def _packets_of_bytes(data: bytes, **kw: Any) -> list:
    with purepcap.open(data, **kw) as cap:
        return [(p.frame, p.data) for p in cap]


def test_intake_catalog_takes_errors(tmp_path: Path) -> None:
    intake = pytest.importorskip("intake")
    data, good = _damaged("pcapng-cut")
    (tmp_path / "bad.pcapng").write_bytes(data)
    (tmp_path / "good.pcapng").write_bytes(good)
    (tmp_path / "cat.yml").write_text(
        "sources:\n"
        "  quiet:\n    driver: pcap\n    args:\n      urlpath: '{{ CATALOG_DIR }}/bad.pcapng'\n"
        "      errors: ignore\n"
        "  strict:\n    driver: pcap\n    args:\n      urlpath: '{{ CATALOG_DIR }}/bad.pcapng'\n"
        "      errors: raise\n"
        "  good:\n    driver: pcap\n    args:\n      urlpath: '{{ CATALOG_DIR }}/good.pcapng'\n")
    cat = intake.open_catalog(str(tmp_path / "cat.yml"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PcapWarning)
        got = cat.quiet.read()
    _same(got, cat.good.read())
    with pytest.raises(purepcap.TruncatedError):
        cat.strict.read()


def test_warn_reads_the_other_files_of_a_glob(tmp_path: Path) -> None:
    """A damaged file among several: "warn" keeps the other files' rows whole."""
    pd = pytest.importorskip("pandas")
    intake = pytest.importorskip("intake")
    data, good = _damaged("pcap-cut")
    (tmp_path / "a.pcap").write_bytes(data)
    (tmp_path / "b.pcap").write_bytes((FIXTURES / "http.pcap").read_bytes())
    with _warnings() as caught:
        got = intake.open_pcap(str(tmp_path / "*.pcap")).read()
    assert len(_pcap_warnings(caught)) == 1
    want = pd.concat([purepcap.to_pandas(good), purepcap.to_pandas(FIXTURES / "http.pcap")])
    assert len(got) == len(want) and list(got["time"]) == list(want["time"])


# -- the property: any cut, any fixture ---------------------------------------------------------
CUT_FIXTURES = ["local.pcap", "local.pcapng", "http.pcap", "vlan.pcap", "truncated-be.pcap"]
_RAW = {name: (FIXTURES / name).read_bytes() for name in CUT_FIXTURES}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(CUT_FIXTURES), where=st.floats(0, 1))
def test_any_cut_gives_the_rows_of_the_longest_whole_record_prefix(name: str, where: float) -> None:
    pd = pytest.importorskip("pandas")
    raw = _RAW[name]
    ng = name.endswith(".pcapng")
    start = _first_packet(raw, ng)
    cut = start + int(where * (len(raw) - start))
    data = raw[:cut]
    whole = max(b for b in (_pcapng_boundaries(raw) if ng else _pcap_boundaries(raw)) if b <= cut)
    cols = ["frame", "length", "caplen", "ttl"]
    want = purepcap.to_pandas(raw[:whole], columns=cols, errors="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PcapWarning)
        got = purepcap.to_pandas(data, columns=cols, errors="ignore")
        rows = list(purepcap.records(data, errors="ignore"))
    pd.testing.assert_frame_equal(got, want)
    assert [r["frame"] for r in rows] == want["frame"].tolist()
    if whole < cut:  # damage, not a clean end: "raise" says so
        with pytest.raises(purepcap.TruncatedError):
            purepcap.to_pandas(data, columns=cols, errors="raise")


# -- the command line -----------------------------------------------------------------------------
def run_main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def _one_line(err: str, *needles: str) -> None:
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


def _where(bad: Path) -> tuple[str, str, str]:
    damage = _damage_of(bad)
    return str(bad), f"offset {damage.offset}", f"frame {damage.frame}"


@pytest.mark.parametrize("verb", [["read"], ["read", "--payload"], ["flows"], ["flows", "--json"]])
def test_cli_keep_going_prints_every_good_line(verb: list[str], damaged: tuple[Path, Path]) -> None:
    bad, good = damaged
    rc, want, err = run_main(*verb, str(good))
    assert rc == 0 and not err
    rc, got, err = run_main(*verb, str(bad), "--keep-going")
    assert rc == 1 and got == want
    _one_line(err, f"purepcap {verb[0]}: ", *_where(bad))
    rc, got, err = run_main(*verb, str(bad))  # without it: the damage ends the run
    assert rc == 1
    _one_line(err, f"purepcap {verb[0]}: ", *_where(bad))


@pytest.mark.parametrize("out", ["o.csv", "o.jsonl", "o.parquet", "w.pcap", "w.pcapng", "f.csv", "f.jsonl",
                                 "f.parquet"])
def test_cli_keep_going_writes_a_complete_file(out: str, damaged: tuple[Path, Path], tmp_path: Path) -> None:
    bad, good = damaged
    if out.endswith(".parquet"):
        pytest.importorskip("pyarrow")
        pytest.importorskip("pandas")
    verb = {"o": ["convert", "{}", "{out}"], "w": ["read", "{}", "-w", "{out}"],
            "f": ["flows", "{}", "-w", "{out}"]}[out[0]]
    want_path, got_path = tmp_path / ("want-" + out), tmp_path / ("got-" + out)

    def args(src: Path, dest: Path) -> list[str]:
        return [a.format(str(src), out=str(dest)) for a in verb]
    assert run_main(*args(good, want_path))[0] == 0
    rc, _, err = run_main(*args(bad, got_path), "--keep-going")
    assert rc == 1
    _one_line(err, *_where(bad))
    if out.endswith(".parquet"):
        import pyarrow.parquet as pq

        assert pq.read_table(got_path).equals(pq.read_table(want_path))
    elif out.startswith("w"):
        assert _packets(got_path) == _packets(want_path)
    else:
        assert got_path.read_bytes() == want_path.read_bytes()
    if out.startswith("o") or out.startswith("f"):
        # without it: one line, exit 1, and no file (the output is written atomically)
        got_path.unlink()
        rc, _, err = run_main(*args(bad, got_path))
        assert rc == 1 and not got_path.exists()
        _one_line(err, *_where(bad))


def test_cli_keep_going_on_a_good_file_exits_0(tmp_path: Path) -> None:
    rc, out, err = run_main("read", str(FIXTURES / "local.pcapng"), "--keep-going")
    assert rc == 0 and not err and len(out.splitlines()) == 38
    rc, _, err = run_main("convert", str(FIXTURES / "local.pcap"), str(tmp_path / "x.csv"), "--keep-going")
    assert rc == 0 and not err


def test_cli_info_on_a_cut_short_file_exits_1(damaged: tuple[Path, Path]) -> None:
    """As capinfos: the summary of what was read, then the damage on stderr, exit 1."""
    bad, good = damaged
    rc, out, err = run_main("info", "--json", str(bad))
    assert rc == 1
    _one_line(err, *_where(bad))
    doc = json.loads(out)[0]
    with purepcap.open(good) as cap:
        assert doc["packets"] == len(list(cap)) and doc["clean_end"] is False


def test_cli_keep_going_in_a_subprocess_never_shows_a_traceback(tmp_path: Path) -> None:
    data, _ = _damaged("pcap-cut")
    bad = tmp_path / "t.pcap"
    bad.write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "purepcap", "convert", str(bad), str(tmp_path / "t.csv"),
                        "--keep-going"], capture_output=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    _one_line(r.stderr.decode(), "t.pcap", "offset 2981", "frame 13")
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 1 + 12  # the header and 12 IP rows
