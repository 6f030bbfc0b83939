# The one field table (purepcap._schema): its own rules, every list derived from it,
# and every field given by records(), to_pandas() and the CLI's convert under the same
# name, in the same order, with the table's pandas type, and the same value row for row.
from __future__ import annotations

import csv
import importlib.util
import json

import pytest
from _edge_packets import EDGE_PACKETS, write_pcapng_variety
from test_cli import run_main

import purepcap
from purepcap import _schema, build, cli, dataframe, headers
from purepcap.format import PcapngWriter

# the table's rules, records() and the CLI's text outputs need no extra (the core suite
# runs them); the DataFrame and Parquet tests need pandas and pyarrow
needs_pandas = pytest.mark.skipif(
    importlib.util.find_spec("pandas") is None or importlib.util.find_spec("pyarrow") is None,
    reason="the DataFrame path needs pandas and pyarrow")

FIELDS = _schema.FIELDS


def test_table_rules():
    names = [f.name for f in FIELDS]
    assert len(names) == len(set(names))
    for f in FIELDS:
        assert f.source in _schema.SOURCES and f.role in _schema.ROLES, f
        assert (f.pandas == "category") == (f.category is not None), f
        assert f.category is None or f.category in _schema.CATEGORY_TABLES, f
        assert not f.nullable or f.numpy is not None, f
        assert f.doc, f
    assert [f.name for f in FIELDS if f.role == "payload"] == ["payload"]


def test_the_module_imports_no_numpy():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(_schema))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "typing"}


def test_public_lists_are_the_tables():
    assert headers.EXTRA_FIELDS == _schema.RECORD_EXTRA
    assert purepcap._records.EXTRA_FIELDS == _schema.RECORD_EXTRA
    assert tuple(headers._BLANK) == build.DECODED_KEYS == _schema.DECODED
    assert dataframe.DEFAULT_COLUMNS == _schema.FRAME_DEFAULT
    assert dataframe.EXTRA_COLUMNS == _schema.FRAME_EXTRA
    assert tuple(cli.BASE_COLUMNS) == _schema.FRAME_DEFAULT
    # the seed's columns, as intake-pcap gave them
    assert _schema.FRAME_DEFAULT == ("time", "src_host", "src_port", "dst_host", "dst_port", "protocol")
    # every field is reachable: a default, payload=True, or an extra name
    reachable = set(_schema.ROW_DEFAULT) | {"payload"} | set(_schema.RECORD_EXTRA)
    assert reachable == set(_schema.BY_NAME)
    assert set(_schema.FRAME_DEFAULT) | {"payload"} | set(_schema.FRAME_EXTRA) == set(_schema.BY_NAME)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """Every kind of packet the edge tests know, then a pcapng with several interfaces,
    link types and a second section, in one file."""
    path = tmp_path_factory.mktemp("schema") / "all.pcapng"
    write_pcapng_variety(path)
    more = tmp_path_factory.mktemp("schema") / "edge.pcapng"
    with PcapngWriter(more) as w:
        for i, pkt in enumerate(EDGE_PACKETS):
            w.write_packet(i * 1_000_000_007, pkt, length=len(pkt) + (i % 3) * 100)
    return [path, more]


def test_records_give_every_field_in_the_table_order(capture):
    for path in capture:
        rows = list(purepcap.records(path, payload=True, fields=_schema.RECORD_EXTRA))
        assert rows
        for r in rows:
            assert tuple(r) == _schema.ROW_DEFAULT + ("payload",) + _schema.RECORD_EXTRA
        assert tuple(next(iter(purepcap.records(path)))) == _schema.ROW_DEFAULT


@needs_pandas
def test_frames_give_every_field_with_its_type_in_the_table_order(capture):
    for path in capture:
        df = purepcap.to_pandas(path, payload=True, columns=_schema.FRAME_EXTRA)
        assert tuple(df.columns) == _schema.FRAME_DEFAULT + ("payload",) + _schema.FRAME_EXTRA
        assert {c: str(t) for c, t in df.dtypes.items()} == {c: _schema.BY_NAME[c].pandas for c in df.columns}
        meta = dataframe.empty_frame(_schema.FRAME_EXTRA, payload=True)
        assert {c: str(t) for c, t in meta.dtypes.items()} == {c: str(t) for c, t in df.dtypes.items()}


@needs_pandas
@pytest.mark.parametrize("name", _schema.FRAME_EXTRA)
def test_each_extra_alone_equals_records(capture, name):
    """Each field asked for on its own (the builder then makes only that column)."""
    for path in capture:
        df = purepcap.to_pandas(path, columns=[name])
        assert tuple(df.columns) == _schema.FRAME_DEFAULT + (name,)
        assert str(df[name].dtype) == _schema.BY_NAME[name].pandas
        from test_dataframe import assert_matches_records

        assert_matches_records(df, path, columns=[name])


@needs_pandas
def test_all_fields_equal_records(capture):
    for path in capture:
        df = purepcap.to_pandas(path, payload=True, columns=_schema.FRAME_EXTRA)
        from test_dataframe import assert_matches_records

        assert_matches_records(df, path, payload=True, columns=list(_schema.FRAME_EXTRA))


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_cli_convert_gives_every_field(capture, tmp_path, kind):
    path = capture[0]
    out = tmp_path / f"o.{kind}"
    rc, _, err = run_main("convert", str(path), str(out), "--columns", ",".join(_schema.FRAME_EXTRA))
    assert rc == 0, err
    want = _schema.FRAME_DEFAULT + _schema.FRAME_EXTRA
    recs = list(purepcap.records(path, fields=_schema.RECORD_EXTRA))
    if kind == "csv":
        with open(out, newline="") as f:
            rows = list(csv.reader(f))
        assert tuple(rows[0]) == want
        got = rows[1:]
    else:
        got = [json.loads(line) for line in out.read_text().splitlines()]
        assert all(tuple(r) == want for r in got)
    assert len(got) == len(recs)
    # the values the CLI writes are records()' (formatted: time as text, tuples as lists)
    col = want.index("frame")
    assert [int(r[col] if kind == "csv" else r["frame"]) for r in got] == [r["frame"] for r in recs]
    ttl = [(r[want.index("ttl")] if kind == "csv" else r["ttl"]) for r in got]
    assert [None if v in ("", None) else int(v) for v in ttl] == [r["ttl"] for r in recs]


@needs_pandas
@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_cli_convert_orders_columns_as_to_pandas(capture, tmp_path, kind):
    path = capture[0]
    out = tmp_path / f"o.{kind}"
    rc, _, err = run_main("convert", str(path), str(out), "--payload", "--columns", "vlan,frame,ttl")
    assert rc == 0, err
    want = tuple(purepcap.to_pandas(path, payload=True, columns=["vlan", "frame", "ttl"]).columns)
    assert want == _schema.FRAME_DEFAULT + ("payload", "vlan", "frame", "ttl")
    if kind == "csv":
        with open(out, newline="") as f:
            assert tuple(next(csv.reader(f))) == want
    elif kind == "jsonl":
        assert tuple(json.loads(out.read_text().splitlines()[0])) == want
    else:
        import pandas as pd

        assert tuple(pd.read_parquet(out).columns) == want


@needs_pandas
def test_cli_parquet_gives_every_field(capture, tmp_path):
    path = capture[0]
    out = tmp_path / "o.parquet"
    rc, _, err = run_main("convert", str(path), str(out), "--columns", ",".join(_schema.FRAME_EXTRA))
    assert rc == 0, err
    import pandas as pd

    got = pd.read_parquet(out)
    assert tuple(got.columns) == _schema.FRAME_DEFAULT + _schema.FRAME_EXTRA
    assert len(got) == len(list(purepcap.records(path)))
