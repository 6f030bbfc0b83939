# Smoke test of the benchmark harness (bench/run.py) on tiny captures: it must produce
# a results table with every row and every target line. Speeds are never asserted here
# (they belong to the benchmark itself, run on a quiet machine).
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"

pytest.importorskip("pandas")
pytest.importorskip("dpkt")


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = mod  # dataclasses look their module up there
    sys.path.insert(0, str(RUN.parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(RUN.parent))
        del sys.modules["bench_run"]
    return mod


def test_quick_run_writes_every_row_and_target(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--packets", "600", "--subset", "100", "--runs", "1",
         "--no-live", "--data", str(tmp_path / "data"), "--results", str(results)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = results.read_text()
    table = text[text.index("### All rows"):]
    rows = _run_module().make_rows(600, 100, 6000)
    assert len(rows) >= 29
    for row in rows:
        line = next((ln for ln in table.splitlines() if ln.startswith(f"| {row.label} |")), None)
        assert line is not None, f"row {row.key} missing from the table"
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[2].startswith("skipped"):
            continue  # a tool that is not installed here
        assert not cells[2].startswith("exit"), f"row {row.key} failed: {cells[2]}"
        assert re.fullmatch(r"[\d.]+ \([\d., ]+\)", cells[2]), line  # median (each run)
        assert float(cells[5]) >= 0  # CPU seconds
        assert float(cells[8]) > 0  # peak RSS
    # the purepcap rows and dpkt agree on how many IP rows the capture holds
    raw = json.loads((tmp_path / "data" / "results-quick.json").read_text())
    outs = {r["key"]: r["out"][-1]["n"] for r in raw["rows"] if r["out"]}
    assert outs["records"] == outs["dpkt_rows"] == outs["to_pandas"] == outs["dpkt_pandas"] == 600
    assert outs["to_pandas_app"] == 600
    assert outs["v_records"] == outs["v_dpkt_rows"] < 600  # ARP frames have no IP row
    assert outs["records_filter"] == outs["open_filter"] < 600
    assert outs["records_10x"] == 6000
    assert outs["floor_bytes"] == outs["floor_tuples"] == outs["open"] == 600  # the yardsticks see every packet
    targets = text[text.index("### Targets"):text.index("### All rows")]
    verdicts = re.findall(r"\| (PASS|MISS|n/a) \|$", targets, re.M)
    # the to_pandas() target is two lines: 12x dpkt, and 1.3M/s; issue 18 adds two
    # (application columns: <= 1.5x plain to_pandas, >= 20x tshark)
    assert len(verdicts) == 13
    assert "Live capture" in text and "--no-live" in text
    for what in ("Machine:", "Versions:", "python 3.", "dpkt", "Load average"):
        assert what in text
