# to_arrow and to_polars: their types (one schema whatever the data), their rows (equal
# to records() and to to_pandas(), row for row, on the fixtures, on generated captures
# and on the public corpus), and Parquet from `purepcap convert`: one schema with or
# without pandas, row groups of bounded size, and a directory of converted files read
# as one dataset.
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, corpus_path, manifest, needs_corpus, with_pcap_warnings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import purepcap
from purepcap import strategies as pst

pa = pytest.importorskip("pyarrow")
np = pytest.importorskip("numpy")

from purepcap.arrow import arrow_schema, arrow_tables, to_arrow  # noqa: E402
from purepcap.dataframe import EXTRA_COLUMNS  # noqa: E402

ALL = list(EXTRA_COLUMNS)
FIXTURE_FILES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.pcap*"))


def plain_columns(table: pa.Table) -> dict[str, list]:
    """Each column as records() gives it: int ns times, str hosts, tuples for fragments
    and for the application fields' lists of strings."""
    out = {}
    for name in table.column_names:
        col = table.column(name)
        if name == "time":
            values = col.cast(pa.int64()).to_pylist()
        elif name == "fragment":
            values = [None if v is None else (v["more_fragments"], v["offset"]) for v in col.to_pylist()]
        elif pa.types.is_list(col.type):
            values = [None if v is None else tuple(v) for v in col.to_pylist()]
        else:
            values = col.to_pylist()
        out[name] = values
    return out


def records_columns(source, names: list[str], **kw) -> dict[str, list]:
    from purepcap._records import EXTRA_FIELDS

    fields = [n for n in names if n in EXTRA_FIELDS]
    recs = list(purepcap.records(source, fields=fields or None, **kw))
    return {n: [r[n] for r in recs] for n in names}


def pandas_columns(df, times: tuple[str, ...] = ("time",)) -> dict[str, list]:
    """Each column as records() gives it (``times``, datetime64 or timedelta64, as int ns)."""
    pd = pytest.importorskip("pandas")
    out = {}
    for name in df.columns:
        if name in times:
            ns = df[name].to_numpy().view(np.int64).tolist()
            out[name] = [None if t == np.iinfo(np.int64).min else t for t in ns]
        else:
            out[name] = [None if (v is None or v is pd.NA or (isinstance(v, float) and v != v)) else v
                         for v in df[name].tolist()]
    return out


def assert_same(got: dict[str, list], want: dict[str, list]) -> None:
    assert list(got) == list(want)
    for name in want:
        if got[name] != want[name]:
            bad = [i for i, (a, b) in enumerate(zip(got[name], want[name])) if a != b][:3]  # noqa: B905
            raise AssertionError(f"column {name}: {len(got[name])} rows against {len(want[name])}; rows {bad}: "
                                 f"{[got[name][i] for i in bad]} != {[want[name][i] for i in bad]}")


# -- types ---------------------------------------------------------------------------------------
def test_types_are_the_promised_ones():
    t = to_arrow(FIXTURES / "local.pcap", payload=True, columns=ALL)
    s = t.schema
    assert s.field("time").type == pa.timestamp("ns", tz="UTC")
    for name in ("src_host", "dst_host", "protocol", "eth_src", "eth_dst"):
        assert s.field(name).type == pa.dictionary(pa.int32(), pa.string()), name
    for name in ("src_port", "dst_port", "tcp_flags", "tcp_window", "vlan"):
        assert s.field(name).type == pa.uint16(), name
    assert s.field("payload").type == pa.binary()
    assert s.field("ttl").type == pa.uint8() and s.field("tcp_seq").type == pa.uint32()
    assert s.field("frame").type == pa.int64()
    assert t.column("src_port").null_count > 0  # ICMP and friends: no port
    assert t.column_names == list(purepcap.to_pandas(FIXTURES / "local.pcap", payload=True, columns=ALL).columns)


def test_one_schema_whatever_the_capture_holds(tmp_path: Path):
    empty = tmp_path / "empty.pcap"
    with purepcap.PcapWriter(empty):
        pass
    tables = [to_arrow(p, payload=True, columns=ALL) for p in (empty, FIXTURES / "local.pcap",
                                                              FIXTURES / "vlan.pcap")]
    assert len(tables[0]) == 0
    for t in tables:
        assert t.schema == arrow_schema(ALL, payload=True)
        assert not any(pa.types.is_null(f.type) for f in t.schema)


def test_categories_are_the_used_names_sorted_as_in_pandas():
    pd = pytest.importorskip("pandas")
    t = to_arrow(FIXTURES / "local.pcap", protocol="udp")
    df = purepcap.to_pandas(FIXTURES / "local.pcap", protocol="udp")
    for name in ("src_host", "protocol"):
        (chunk,) = t.column(name).chunks
        assert chunk.dictionary.to_pylist() == list(df[name].cat.categories), name
    assert isinstance(df["src_host"].dtype, pd.CategoricalDtype)


# -- rows ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_rows_equal_records_and_pandas(name):
    path = FIXTURES / name
    t = to_arrow(path, payload=True, columns=ALL)
    assert_same(plain_columns(t), records_columns(path, t.column_names, payload=True))
    pytest.importorskip("pandas")
    assert_same(plain_columns(t), pandas_columns(purepcap.to_pandas(path, payload=True, columns=ALL)))


def test_arguments_mean_what_they_mean_for_pandas():
    pytest.importorskip("pandas")
    path = FIXTURES / "local.pcap"
    for kw in ({"protocol": "udp"}, {"protocol": ("tcp", "icmp")}, {"filter": "tcp port 80"},
               {"columns": ["ttl", "vlan"]}, {"payload": True, "filter": "udp"}):
        assert_same(plain_columns(to_arrow(path, **kw)), pandas_columns(purepcap.to_pandas(path, **kw)))
    with purepcap.open(path) as cap:  # an iterable of Packets, as to_pandas takes
        assert_same(plain_columns(to_arrow(cap)), pandas_columns(purepcap.to_pandas(path)))
    assert_same(plain_columns(to_arrow(path.read_bytes())), pandas_columns(purepcap.to_pandas(path)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pst.captures(packets=pst.packets(link=("ether", "vlan", "sll", "raw", "null"),
                                        ip=("ipv4", "ipv6", "arp")), max_packets=12))
def test_generated_captures_equal_records(case):
    t = to_arrow(case.data, payload=True, columns=ALL)
    assert_same(plain_columns(t), records_columns(case.data, t.column_names, payload=True))


def big_capture(tmp_path: Path, packets: int = 800) -> Path:
    """Several 4 MiB batches of UDP datagrams (16 kB each), each to its own port."""
    from purepcap import build

    path = tmp_path / "big.pcap"
    with purepcap.PcapWriter(path) as w:
        for i in range(packets):
            frame = bytes(build.ether() / build.ipv4(src=f"10.0.{i % 7}.1", dst="10.1.0.1")
                          / build.udp(sport=1000 + i, dport=53) / bytes(16000))
            w.write_packet(1_700_000_000_000_000_000 + i * 1000, frame)
    return path


def test_parts_hold_the_rows_of_the_whole(tmp_path: Path):
    path = big_capture(tmp_path)
    whole = plain_columns(to_arrow(path, columns=ALL))
    parts = list(arrow_tables(path, columns=ALL, part_rows=5))
    assert len(parts) > 1 and all(p.schema == parts[0].schema for p in parts)
    joined = plain_columns(pa.concat_tables(parts))
    assert_same(joined, whole)


@needs_corpus
def test_corpus_rows_equal_pandas():
    """On every readable capture of the public corpus: to_arrow == to_pandas, row for row."""
    pytest.importorskip("pandas")
    rows = agree = files = 0
    for rel in sorted(manifest()):
        path = corpus_path(rel)
        try:
            df, said = with_pcap_warnings(purepcap.to_pandas, path, columns=ALL)
        except (purepcap.PcapError, OSError, ImportError):
            with pytest.raises((purepcap.PcapError, OSError, ImportError)):
                to_arrow(path, columns=ALL)
            continue
        t, arrow_said = with_pcap_warnings(to_arrow, path, columns=ALL)
        assert arrow_said == said, rel  # a cut-short file warns alike
        got, want = plain_columns(t), pandas_columns(df)
        files += 1
        rows += len(df)
        agree += sum(all(got[c][i] == want[c][i] for c in want) for i in range(len(df)))
    print(f"\nto_arrow vs to_pandas on the corpus: {agree} / {rows} rows agree, {files} files")
    assert files > 1000 and agree == rows


def test_to_arrow_does_not_import_pandas():
    """to_arrow() must not pay pandas' import (half a second) when pandas is installed:
    pyarrow's pa.array() imports it on first use, so the default columns avoid it."""
    pytest.importorskip("pandas")
    code = (f"import sys, purepcap\nt = purepcap.to_arrow({str(FIXTURES / 'vlan.pcap')!r})\n"
            f"print(len(t), 'pandas' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    rows, imported = r.stdout.split()
    assert int(rows) == len(list(purepcap.records(FIXTURES / "vlan.pcap"))) and imported == "False"


@given(st.lists(st.text(max_size=6), max_size=8), st.lists(st.booleans(), min_size=1, max_size=8))
def test_string_dictionaries_and_nulls_built_from_buffers(names, nulls):
    """The buffer-built arrays equal pyarrow's own conversion (UTF-8 names of any
    width; validity bits in Arrow's little-endian order)."""
    from purepcap.arrow import _fixed_width, _strings

    assert _strings(names).to_pylist() == pa.array(names, pa.string()).to_pylist()
    values = np.arange(len(nulls), dtype=np.uint16)
    missing = np.array(nulls)
    got = _fixed_width(values, pa.uint16(), missing)
    got.validate(full=True)
    assert got.to_pylist() == [None if m else int(v) for v, m in zip(values, nulls)]


# -- polars --------------------------------------------------------------------------------------
def test_polars_rows_and_types():
    pl = pytest.importorskip("polars")
    path = FIXTURES / "vlan.pcap"
    df = purepcap.to_polars(path, payload=True, columns=ALL)
    assert df.schema["time"] == pl.Datetime("ns", "UTC")
    assert df.schema["src_port"] == pl.UInt16 and df.schema["vlan"] == pl.UInt16
    assert df.schema["src_host"] == pl.Categorical or isinstance(df.schema["src_host"], pl.Categorical)
    got = {}
    for name in df.columns:
        col = df[name]
        if name == "time":
            got[name] = col.dt.epoch("ns").to_list()
        elif name == "fragment":
            got[name] = [None if v is None else (v["more_fragments"], v["offset"]) for v in col.to_list()]
        elif isinstance(col.dtype, pl.List):
            got[name] = [None if v is None else tuple(v) for v in col.to_list()]
        else:
            got[name] = col.to_list()
    assert_same(got, records_columns(path, df.columns, payload=True))


def test_polars_lazy_query():
    pl = pytest.importorskip("polars")
    lazy = purepcap.to_polars(FIXTURES / "local.pcap").lazy()
    top = (lazy.filter(pl.col("protocol") == "udp").group_by("dst_port").agg(pl.len().alias("n"))
           .sort(["n", "dst_port"], descending=[True, False]).collect())
    recs = [r for r in purepcap.records(FIXTURES / "local.pcap") if r["protocol"] == "udp"]
    assert top["n"].sum() == len(recs) and top["dst_port"][0] in {r["dst_port"] for r in recs}


# -- missing extras ------------------------------------------------------------------------------
def _run(code: str) -> subprocess.CompletedProcess:
    from test_users import without

    return subprocess.run([sys.executable, "-c", without(*code.split("|", 1)[0].split(",")) + code.split("|", 1)[1]],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_missing_pyarrow_or_polars_says_what_to_install():
    r = _run(f"pyarrow|import purepcap\ntry:\n    purepcap.to_arrow({str(FIXTURES / 'local.pcap')!r})\n"
             f"except ImportError as e:\n    print(e)\n")
    assert r.stdout.strip() == "this needs the optional dependency 'pyarrow': pip install 'purepcap[arrow]'", r.stderr
    r = _run(f"polars|import purepcap\ntry:\n    purepcap.to_polars({str(FIXTURES / 'local.pcap')!r})\n"
             f"except ImportError as e:\n    print(e)\n")
    assert r.stdout.strip() == "this needs the optional dependency 'polars': pip install 'purepcap[polars]'", r.stderr


def test_progress_on_to_arrow(capsys, monkeypatch):
    monkeypatch.setenv("PUREPCAP_PROGRESS_DELAY", "0")
    from test_users import _block

    _block(monkeypatch, "tqdm")
    _block(monkeypatch, "rich")
    t = to_arrow(FIXTURES / "local.pcap", progress=True)
    assert len(t) == 36 and "38 packets" in capsys.readouterr().err


# -- Parquet from the command line ----------------------------------------------------------------
def convert(*argv: str, block: str = "") -> subprocess.CompletedProcess:
    from test_users import without

    code = (without(block) if block else "") + \
        f"from purepcap.cli import main\nraise SystemExit(main({list(argv)!r}))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_parquet_has_one_schema_with_or_without_pandas(tmp_path: Path):
    pq = pytest.importorskip("pyarrow.parquet")
    src = str(FIXTURES / "local.pcap")
    a, b = tmp_path / "with.parquet", tmp_path / "without.parquet"
    for out, block in ((a, ""), (b, "pandas")):
        r = convert("convert", src, str(out), "--payload", "--columns", "ttl,vlan,fragment", block=block)
        assert r.returncode == 0, r.stderr
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.schema.remove_metadata() == tb.schema.remove_metadata() == \
        arrow_schema(["ttl", "vlan", "fragment"], payload=True)
    assert ta.equals(tb)
    assert_same(plain_columns(ta), plain_columns(to_arrow(src, payload=True, columns=["ttl", "vlan", "fragment"])))


def test_a_directory_of_converted_files_is_one_dataset(tmp_path: Path):
    ds = pytest.importorskip("pyarrow.dataset")
    out = tmp_path / "lake"
    out.mkdir()
    names = ["local.pcap", "vlan.pcap", "http.pcap", "truncated-be.pcap", "multi/part-1.pcap"]
    for i, name in enumerate(names):
        # columns that are all null in some files (vlan outside vlan.pcap) and not in others,
        # written with and without pandas installed
        r = convert("convert", str(FIXTURES / name), str(out / f"{i}.parquet"), "--columns", "vlan,ttl,eth_src",
                    block="pandas" if i % 2 else "")
        assert r.returncode == 0, r.stderr
    table = ds.dataset(out, format="parquet").to_table()
    want = sum(len(list(purepcap.records(FIXTURES / n))) for n in names)
    assert len(table) == want
    assert table.schema.field("vlan").type == pa.uint16() and table.column("vlan").null_count < len(table)
    assert sorted(set(table.column("src_host").to_pylist())) == sorted(
        {r["src_host"] for n in names for r in purepcap.records(FIXTURES / n)})


def test_parquet_is_written_in_row_groups(tmp_path: Path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    import purepcap.arrow
    from purepcap.cli import main

    monkeypatch.setattr(purepcap.arrow, "ROW_GROUP_ROWS", 10)
    path = big_capture(tmp_path)
    out = tmp_path / "g.parquet"
    assert main(["convert", str(path), str(out), "--columns", "frame"]) == 0
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups >= 3  # a group per batch of packets: memory holds one
    assert sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) == 800
    assert pq.read_table(out).column("src_port").to_pylist() == list(range(1000, 1800))
