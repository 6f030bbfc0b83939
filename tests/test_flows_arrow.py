# flows_to_arrow and flows_to_polars: the flow table of flows_to_pandas, row for row (on
# the fixtures, on generated captures and on the public corpus), typed for Arrow by one
# schema whatever the capture holds, built without pandas; the missing-extra messages;
# and `purepcap flows -w OUT.parquet`, written from that Arrow table (one schema with or
# without pandas).
from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, corpus_path, manifest, needs_corpus, with_pcap_warnings

import purepcap

pa = pytest.importorskip("pyarrow")
np = pytest.importorskip("numpy")

from test_arrow import assert_same, pandas_columns  # noqa: E402

from purepcap.arrow import flow_arrow_schema, flows_to_arrow  # noqa: E402

FIXTURE_FILES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.pcap*"))
NAT = np.iinfo(np.int64).min
# the arguments flows_to_pandas takes, each tried on every fixture
OPTIONS = [{}, {"idle_timeout": None, "active_timeout": None}, {"idle_timeout": 0.01, "active_timeout": 0.05},
           {"stats": True}, {"fields": ["server_name", "ja3", "ttl", "tls_alpn", "dns_qname"]},
           {"protocol": "tcp"}, {"filter": "udp or icmp"}]


def plain_table(table: pa.Table) -> dict[str, list]:
    """Each column as plain Python values: int ns for times and durations, str for
    dictionary strings, tuples for lists."""
    out = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type) or pa.types.is_duration(col.type):
            values = col.cast(pa.int64()).to_pylist()
        elif pa.types.is_list(col.type):
            values = [None if v is None else tuple(v) for v in col.to_pylist()]
        else:
            values = col.to_pylist()
        out[name] = values
    return out


def plain_frame(df) -> dict[str, list]:
    """flows_to_pandas' frame as plain_table gives a table (int ns times and durations)."""
    return pandas_columns(df, times=("start", "end", "duration"))


# -- types ---------------------------------------------------------------------------------------
def test_types_are_the_promised_ones():
    t = flows_to_arrow(FIXTURES / "local.pcap")
    types = dict(zip(t.schema.names, t.schema.types))  # noqa: B905
    strings = pa.dictionary(pa.int32(), pa.string())
    for k in ("src_host", "dst_host", "protocol", "conn_state", "end_reason"):
        assert types[k] == strings, k
    assert types["start"] == types["end"] == pa.timestamp("ns", tz="UTC")
    assert types["duration"] == pa.duration("ns")
    for k in ("src_port", "dst_port", "vlan", "src_tcp_flags", "dst_tcp_flags"):
        assert types[k] == pa.uint16(), k
    assert types["community_id"] == pa.string() and types["src_packets"] == pa.int64()
    assert t.column("src_port").null_count > 0  # ICMP flows have no ports
    assert t.column("vlan").null_count == len(t)


@pytest.mark.parametrize("kw", [{}, {"stats": True}, {"fields": ["ja3", "ttl", "server_name"]}],
                         ids=["plain", "stats", "fields"])
def test_one_schema_whatever_the_capture_holds(kw):
    schema = flow_arrow_schema(kw.get("stats", False), kw.get("fields", ()))
    for name in FIXTURE_FILES:
        assert flows_to_arrow(FIXTURES / name, **kw).schema == schema, name
    assert flows_to_arrow(FIXTURES / "local.pcap", filter="host 203.0.113.99", **kw).schema == schema
    pd = pytest.importorskip("pandas")
    frame = purepcap.flows_to_pandas(FIXTURES / "local.pcap", **kw)
    assert schema.names == list(frame.columns)
    del pd


def test_categories_are_the_used_names_sorted_as_in_pandas():
    pytest.importorskip("pandas")
    t = flows_to_arrow(FIXTURES / "local.pcap")
    df = purepcap.flows_to_pandas(FIXTURES / "local.pcap")
    for k in ("src_host", "dst_host", "protocol", "conn_state"):
        assert t.column(k).combine_chunks().dictionary.to_pylist() == list(df[k].cat.categories), k


# -- rows ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_rows_equal_flows_to_pandas(name):
    pytest.importorskip("pandas")
    for kw in OPTIONS:
        assert_same(plain_table(flows_to_arrow(FIXTURES / name, **kw)),
                    plain_frame(purepcap.flows_to_pandas(FIXTURES / name, **kw)))


def test_the_arguments_are_flows_to_pandas_arguments():
    """One signature for the three tables (flow_columns'), so an argument added there
    reaches all; an unknown one is refused by each."""
    from purepcap._flowframe import flow_columns

    params = set(inspect.signature(flow_columns).parameters) - {"source"}
    assert {"filter", "protocol", "idle_timeout", "active_timeout", "stats", "fields"} <= params
    for f in (purepcap.flows_to_arrow, purepcap.flows_to_polars, purepcap.flows_to_pandas):
        with pytest.raises(TypeError, match="bogus"):
            f(FIXTURES / "local.pcap", bogus=1)


def test_generated_captures_equal_flows_to_pandas():
    """On hypothesis-made captures (TCP, UDP, ICMP, SCTP, IPv6, VLANs, packets without a
    time, ...), with and without timeouts: the columnar path and the engine both."""
    pytest.importorskip("pandas")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from purepcap import strategies as pst

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(pst.captures(), st.sampled_from([None, 0.001, 60.0]))
    def check(case, idle):
        assert_same(plain_table(flows_to_arrow(case.data, idle_timeout=idle)),
                    plain_frame(purepcap.flows_to_pandas(case.data, idle_timeout=idle)))

    check()


@needs_corpus
def test_corpus_rows_equal_flows_to_pandas():
    """On every readable capture of the public corpus: flows_to_arrow == flows_to_pandas,
    row for row (both timeouts off, as the tshark comparison runs)."""
    pytest.importorskip("pandas")
    rows = agree = files = 0
    for rel in sorted(manifest()):
        path = corpus_path(rel)
        try:
            df, said = with_pcap_warnings(purepcap.flows_to_pandas, path, idle_timeout=None, active_timeout=None)
        except (purepcap.PcapError, OSError):
            with pytest.raises((purepcap.PcapError, OSError)):
                flows_to_arrow(path, idle_timeout=None, active_timeout=None)
            continue
        table, arrow_said = with_pcap_warnings(flows_to_arrow, path, idle_timeout=None, active_timeout=None)
        assert arrow_said == said, rel  # a cut-short file warns alike
        got = plain_table(table)
        want = plain_frame(df)
        assert list(got) == list(want)
        files += 1
        rows += len(df)
        agree += sum(all(got[c][i] == want[c][i] for c in want) for i in range(len(df)))
    print(f"\nflows_to_arrow vs flows_to_pandas on the corpus: {agree} / {rows} flows agree, {files} files")
    assert files > 1000 and agree == rows


def test_flows_to_arrow_does_not_import_pandas():
    pytest.importorskip("pandas")
    code = (f"import sys, purepcap\nt = purepcap.flows_to_arrow({str(FIXTURES / 'local.pcap')!r})\n"
            f"print(len(t), 'pandas' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    rows, imported = r.stdout.split()
    assert int(rows) == len(list(purepcap.flows(FIXTURES / "local.pcap"))) and imported == "False"


def test_strings_with_nulls_from_buffers():
    from purepcap.arrow import _strings

    got = _strings(["a", None, "ü", None, ""])
    got.validate(full=True)
    assert got.to_pylist() == ["a", None, "ü", None, ""] and got.null_count == 2


# -- polars --------------------------------------------------------------------------------------
def test_polars_rows_and_types():
    pl = pytest.importorskip("polars")
    path = FIXTURES / "local.pcap"
    df = purepcap.flows_to_polars(path, stats=True)
    assert df.schema["start"] == pl.Datetime("ns", "UTC") and df.schema["duration"] == pl.Duration("ns")
    assert df.schema["src_port"] == pl.UInt16 and df.schema["vlan"] == pl.UInt16
    assert df.schema["src_host"] == pl.Categorical or isinstance(df.schema["src_host"], pl.Categorical)
    got = {}
    for name in df.columns:
        col = df[name]
        if name in ("start", "end"):
            got[name] = col.dt.epoch("ns").to_list()
        elif name == "duration":
            got[name] = col.dt.total_nanoseconds().to_list()
        else:
            got[name] = col.to_list()
    assert_same(got, plain_table(flows_to_arrow(path, stats=True)))


def test_polars_lazy_query():
    pl = pytest.importorskip("polars")
    top = (purepcap.flows_to_polars(FIXTURES / "local.pcap").lazy()
           .group_by("protocol").agg(pl.col("src_bytes").sum() + pl.col("dst_bytes").sum())
           .collect())
    total = {}
    for f in purepcap.flows(FIXTURES / "local.pcap"):
        total[f["protocol"]] = total.get(f["protocol"], 0) + f["src_bytes"] + f["dst_bytes"]
    assert dict(zip(top["protocol"].to_list(), top["src_bytes"].to_list())) == total  # noqa: B905


# -- missing extras ------------------------------------------------------------------------------
@pytest.mark.parametrize("blocked, call, extra", [("pyarrow", "flows_to_arrow", "arrow"),
                                                  ("polars", "flows_to_polars", "polars")])
def test_missing_pyarrow_or_polars_says_what_to_install(blocked, call, extra):
    from test_users import without

    code = without(blocked) + (f"import purepcap\ntry:\n    purepcap.{call}({str(FIXTURES / 'local.pcap')!r})\n"
                               f"except ImportError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.stdout.strip() == f"this needs the optional dependency {blocked!r}: pip install 'purepcap[{extra}]'", \
        r.stderr


# -- Parquet from `purepcap flows -w` ------------------------------------------------------------
def test_flows_parquet_has_one_schema_with_or_without_pandas(tmp_path: Path):
    pq = pytest.importorskip("pyarrow.parquet")
    from test_users import without

    src = str(FIXTURES / "local.pcap")
    a, b = tmp_path / "with.parquet", tmp_path / "without.parquet"
    for out, block in ((a, ""), (b, "pandas")):
        code = (without(block) if block else "") + \
            f"from purepcap.cli import main\nraise SystemExit(main({['flows', src, '-w', str(out), '--stats']!r}))\n"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert r.returncode == 0, r.stderr
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.schema.remove_metadata() == tb.schema.remove_metadata() == flow_arrow_schema(stats=True)
    assert ta.equals(tb)
    assert_same(plain_table(ta), plain_table(flows_to_arrow(src, stats=True)))
