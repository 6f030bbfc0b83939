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
