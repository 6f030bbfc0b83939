# `purepcap flows`: one line per flow on a terminal, JSON Lines with --json, CSV / JSON
# Lines / Parquet with -w, the timeouts and --stats passed through, one-line errors.
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES

from purepcap._flows import FLOW_KEYS, STATS_KEYS, flows
from purepcap.cli import main

ROOT = Path(__file__).resolve().parent.parent
LOCAL = str(FIXTURES / "local.pcap")
TLS = str(FIXTURES / "tls.pcap")
FIELDS = ["server_name", "ja4", "tls_alpn", "dns_answers"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_table_has_one_line_per_flow():
    rc, out, err = run("flows", LOCAL)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    fl = list(flows(LOCAL))
    assert len(lines) == len(fl)
    http = next(line for line in lines if ":80 " in line)
    assert "192.168.1.10:60536 <-> 93.184.216.34:80" in http and "6 > 5 pkts" in http and "SF fin" in http
    assert "[2001:db8:1::10]:54119 <-> [2001:db8:2::80]:443" in out


def test_json_equals_flows_with_expression_and_timeouts():
    rc, out, _ = run("flows", LOCAL, "tcp", "--json", "--idle", "none", "--active", "0.05")
    assert rc == 0
    got = [json.loads(line) for line in out.splitlines()]
    assert got == list(flows(LOCAL, filter="tcp", idle_timeout=None, active_timeout=0.05))
    assert {g["protocol"] for g in got} == {"tcp"}


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_write(tmp_path, ext):
    if ext == "parquet":
        pytest.importorskip("pyarrow")
        pytest.importorskip("pandas")
    out = tmp_path / f"flows.{ext}"
    rc, stdout, _ = run("flows", LOCAL, "-w", str(out), "--stats")
    assert rc == 0 and stdout == ""
    expected = list(flows(LOCAL, stats=True))
    if ext == "csv":
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == list(FLOW_KEYS) + list(STATS_KEYS)
        assert [int(r["first_frame"]) for r in rows] == [e["first_frame"] for e in expected]
        assert [r["community_id"] for r in rows] == [e["community_id"] for e in expected]
    elif ext == "jsonl":
        assert [json.loads(line) for line in out.read_text().splitlines()] == expected
    else:
        import pandas as pd

        df = pd.read_parquet(out)
        assert len(df) == len(expected) and "bidirectional_mean_ps" in df.columns
        assert sorted(df["community_id"]) == sorted(e["community_id"] for e in expected)


def test_bad_timeout_is_a_usage_error():
    rc, _, err = run("flows", LOCAL, "--idle", "-3")
    assert rc == 2 and "--idle" in err


def test_damaged_capture_prints_the_good_flows_then_one_line(tmp_path):
    data = (FIXTURES / "local.pcap").read_bytes()
    bad = tmp_path / "cut.pcap"
    bad.write_bytes(data[:-7])
    rc, out, err = run("flows", str(bad), "--idle", "none")
    assert rc == 1
    assert len(out.splitlines()) >= 5
    assert err.count("\n") == 1 and err.startswith("purepcap flows: ") and "cut.pcap" in err


def test_stdin_through_the_module():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(LOCAL, "rb") as f:
        p = subprocess.run([sys.executable, "-m", "purepcap", "flows", "-", "--json"], stdin=f,
                           capture_output=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert [json.loads(line) for line in p.stdout.decode().splitlines()] == list(flows(LOCAL))


def _as_json(rows: list[dict]) -> list[dict]:
    return json.loads(json.dumps(rows))  # (tuples become lists)


@pytest.mark.parametrize("source", [TLS, LOCAL])
def test_columns_add_flow_fields_to_each_line(source):
    rc, out, err = run("flows", source, "--columns", ",".join(FIELDS))
    assert rc == 0 and err == ""
    expected = list(flows(source, fields=FIELDS))
    assert any(e["server_name"] for e in expected)
    lines, plain = out.splitlines(), run("flows", source)[1].splitlines()
    assert len(lines) == len(plain) == len(expected)
    for line, bare, e in zip(lines, plain, expected):  # noqa: B905 (3.9 has no strict=)
        shown = [f"{n}={','.join(e[n]) if isinstance(e[n], tuple) else e[n]}" for n in FIELDS
                 if e[n] is not None]
        assert line == " ".join([bare] + shown)


@pytest.mark.parametrize("ext", ["json", "csv", "jsonl", "parquet"])
def test_columns_add_flow_fields_to_every_format(tmp_path, ext):
    expected = list(flows(TLS, fields=FIELDS))
    if ext == "json":
        rc, out, _ = run("flows", TLS, "--json", "--columns", ",".join(FIELDS))
        assert rc == 0 and [json.loads(line) for line in out.splitlines()] == _as_json(expected)
        return
    if ext == "parquet":
        pytest.importorskip("pyarrow")
        pytest.importorskip("numpy")
    path = tmp_path / f"flows.{ext}"
    rc, _, err = run("flows", TLS, "-w", str(path), "--columns", ",".join(FIELDS))
    assert rc == 0, err
    if ext == "csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == list(FLOW_KEYS) + FIELDS
        assert len(rows) == len(expected)
        for r, e in zip(rows, expected):  # noqa: B905 (a tuple is its items joined by commas)
            assert [r[n] for n in FIELDS] == [",".join(e[n]) if isinstance(e[n], tuple) else e[n] or ""
                                              for n in FIELDS]
    elif ext == "jsonl":
        assert [json.loads(line) for line in path.read_text().splitlines()] == _as_json(expected)
    else:
        import pyarrow.parquet as pq

        from purepcap.arrow import flows_to_arrow

        assert pq.read_table(path).equals(flows_to_arrow(TLS, fields=FIELDS))


def test_columns_that_are_flow_keys_are_not_doubled():
    rc, out, _ = run("flows", LOCAL, "--json", "--columns", "vlan,ttl,ttl")
    assert rc == 0
    assert [json.loads(line) for line in out.splitlines()] == list(flows(LOCAL, fields=["ttl"]))


def test_unknown_column_is_one_line():
    rc, out, err = run("flows", LOCAL, "--columns", "server_name,nope")
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("purepcap flows: ") and "'nope'" in err


def test_reassemble_reaches_the_flows(tmp_path):
    from test_appfields import client_hello, record, sni_ext
    from test_reassembly import CLIENT, SERVER, tcp, write

    hello = record(client_hello(extensions=sni_ext("split.example") + bytes(2000)))
    path = write(tmp_path / "split.pcap", [tcp(CLIENT, SERVER, 40000, 443, 1, data=hello[:900]),
                                          tcp(CLIENT, SERVER, 40000, 443, 901, data=hello[900:])])
    off = run("flows", path, "--json", "--columns", "server_name")[1]
    on = run("flows", path, "--json", "--columns", "server_name", "--reassemble")[1]
    assert [json.loads(line)["server_name"] for line in off.splitlines()] == [None]
    assert [json.loads(line) for line in on.splitlines()] == list(flows(path, fields=["server_name"],
                                                                         reassemble=True))
    assert json.loads(on)["server_name"] == "split.example"


def test_a_value_with_spaces_is_quoted_on_a_line():
    from purepcap.cli import _flow_line

    (f,) = [f for f in flows(LOCAL, fields=["http_user_agent"]) if f["dst_port"] == 80]
    plain = _flow_line(f)
    ua = 'Mozilla/5.0 (X11; Linux) "quoted"'
    assert _flow_line({**f, "http_user_agent": ua}, ["http_user_agent"]) == plain + " http_user_agent=" + json.dumps(ua)
    assert _flow_line({**f, "http_user_agent": "curl/8.0"}, ["http_user_agent"]) == plain + " http_user_agent=curl/8.0"
