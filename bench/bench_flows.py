#!/usr/bin/env python3
"""Flows benchmark (issue 17): purepcap.flows_to_pandas() and flows() against nfstream.

    python3 bench/bench_flows.py                 # 1M mixed packets, 3 interleaved runs per row
    python3 bench/bench_flows.py --quick         # 20k packets, 1 run
    python3 bench/bench_flows.py --ten           # also the streaming RSS on 10M packets (7 GB file)

Each row is one fresh process timed whole from the parent (interpreter start and
imports included), peak RSS from wait4(); runs are interleaved (run 1 of every row,
then run 2, ...) and the median reported. The flows_to_pandas row also prints the
time of the call alone (in-process rate). The capture is bench/_gen.py's mixed one
(20,000 flows, 70% TCP / 25% UDP / 5% ICMP); the 10M file is its records ten times
over (the same flow population), for the flat-memory check of the streaming flows().
Writes bench/data/flows-results.json and prints a Markdown table for bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import _gen  # noqa: E402

PY = sys.executable
HUGE = 10**9  # seconds: nfstream's timeouts, so that no flow is cut

WORK = {
    "flows_to_pandas": (
        "import time, purepcap, pandas; t = time.perf_counter(); df = purepcap.flows_to_pandas(F); "
        "print(len(df), time.perf_counter() - t)"),
    "flows_to_pandas_nt": (
        "import time, purepcap, pandas; t = time.perf_counter(); "
        "df = purepcap.flows_to_pandas(F, idle_timeout=None, active_timeout=None); "
        "print(len(df), time.perf_counter() - t)"),
    "flows": (
        "import time, purepcap; t = time.perf_counter(); n = sum(1 for _ in purepcap.flows(F)); "
        "print(n, time.perf_counter() - t)"),
    "to_pandas": (
        "import time, purepcap, pandas; t = time.perf_counter(); df = purepcap.to_pandas(F); "
        "print(len(df), time.perf_counter() - t)"),
    "nfstream": (
        "import time; from nfstream import NFStreamer; t = time.perf_counter(); "
        f"df = NFStreamer(F, idle_timeout={HUGE}, active_timeout={HUGE}).to_pandas(); "
        "print(len(df), time.perf_counter() - t)"),
    "nfstream_stats": (
        "import time; from nfstream import NFStreamer; t = time.perf_counter(); "
        f"df = NFStreamer(F, idle_timeout={HUGE}, active_timeout={HUGE}, n_dissections=0, "
        "statistical_analysis=True).to_pandas(); print(len(df), time.perf_counter() - t)"),
    "flows_to_pandas_stats": (
        "import time, purepcap, pandas; t = time.perf_counter(); df = purepcap.flows_to_pandas(F, stats=True); "
        "print(len(df), time.perf_counter() - t)"),
}


def run(code: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    p = subprocess.Popen([PY, "-c", f"F = {str(path)!r}\n" + code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        return {"error": (err.strip().splitlines() or ["failed"])[-1]}
    rows, inner = out.split()[-2:]
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "rows": int(rows), "inner": float(inner)}


def capture(data: Path, n: int) -> Path:
    """bench/_gen.py's mixed capture of n packets (reused when it exists)."""
    from purepcap.format import PcapWriter

    data.mkdir(parents=True, exist_ok=True)
    path = data / f"flows-mixed-{n}.pcap"
    if not path.exists():
        tmp = path.with_suffix(".part")
        with _gen._out(tmp) as f:
            w = PcapWriter(f)
            for t, frame in _gen.mixed_packets(n):
                w.write_packet(t, frame)
        tmp.rename(path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--packets", type=int)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--only", help="comma-separated rows")
    ap.add_argument("--ten", action="store_true", help="also streaming flows() on 10x the packets (RSS)")
    args = ap.parse_args(argv)
    n = args.packets or (20_000 if args.quick else 1_000_000)
    runs = args.runs or (1 if args.quick else 3)
    path = capture(args.data, n)
    names = args.only.split(",") if args.only else list(WORK)
    try:
        import nfstream  # noqa: F401
    except ImportError:
        names = [k for k in names if not k.startswith("nfstream")]
        print("nfstream is not installed: its rows are skipped", file=sys.stderr)
    results: dict[str, list[dict]] = {k: [] for k in names}
    for i in range(runs):
        for k in names:
            r = run(WORK[k], path)
            results[k].append(r)
            print(f"run {i + 1} {k}: {r}", file=sys.stderr)
    if args.ten:
        ten = args.data / f"flows-mixed-{n}-x10.pcap"
        if not ten.exists():
            _gen.concat_records(path, ten, 10)
        results["flows_10x"] = [run(WORK["flows"], ten)]
        print(f"flows_10x: {results['flows_10x'][0]}", file=sys.stderr)
        if not args.quick:
            ten.unlink()
    summary = {}
    for k, rs in results.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            summary[k] = {"error": rs[0].get("error") if rs else "no run"}
            continue
        summary[k] = {m: statistics.median(r[m] for r in ok) for m in ("wall", "cpu", "rss_mib", "inner")}
        summary[k]["rows"] = ok[0]["rows"]
        summary[k]["packets"] = n * (10 if k == "flows_10x" else 1)
    out = {"packets": n, "runs": runs, "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                       time.gmtime()),
           "summary": summary, "runs_raw": results}
    (args.data / "flows-results.json").write_text(json.dumps(out, indent=1))
    print(table(summary, n))
    return 0


def table(summary: dict, n: int) -> str:
    lines = ["| row | rows out | wall s (whole process) | packets/s whole | in-process s | packets/s in-process "
             "| CPU s | peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]
    for k, s in summary.items():
        if "error" in s:
            lines.append(f"| {k} | error: {s['error']} | | | | | | |")
            continue
        pk = s["packets"]
        lines.append(f"| {k} | {s['rows']:,} | {s['wall']:.2f} | {pk / s['wall']:,.0f} | {s['inner']:.2f} | "
                     f"{pk / s['inner']:,.0f} | {s['cpu']:.2f} | {s['rss_mib']:.0f} |")
    nf, ours = summary.get("nfstream"), summary.get("flows_to_pandas")
    if nf and ours and "error" not in nf and "error" not in ours:
        lines.append("")
        lines.append(f"flows_to_pandas() vs nfstream, whole process: {nf['wall'] / ours['wall']:.1f}x "
                     f"(wall), {nf['cpu'] / ours['cpu']:.1f}x (CPU)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
