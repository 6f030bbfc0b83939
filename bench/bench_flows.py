#!/usr/bin/env python3
"""Flows benchmark (issue 17): purepcap.flows_to_pandas() and flows() against nfstream.

    python3 bench/bench_flows.py                 # 1M mixed packets, 3 interleaved runs per row
    python3 bench/bench_flows.py --quick         # 20k packets, 1 run
    python3 bench/bench_flows.py --ten           # also the streaming RSS on 10M packets (7 GB file)

Each row is one fresh process timed whole from the parent (interpreter start and
imports included), peak RSS from wait4(); runs are interleaved (run 1 of every row,
then run 2, ...) and the median reported. The flows_to_pandas row also prints the
time of the call alone (in-process rate), wall and CPU (process_time). The capture is bench/_gen.py's mixed one
(20,000 flows, 70% TCP / 25% UDP / 5% ICMP, no SYN or FIN: every conversation takes
flows_to_pandas' vectorised path); the sessions_ rows read a fifth as many packets of
complete TCP connections (handshake, data, FIN both ways), which take its sequential
engine. The 10M file is the mixed records ten times over (the same flow population),
for the flat-memory check of the streaming flows().
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
        "import time, purepcap, pandas; t = time.perf_counter(); c = time.process_time(); df = purepcap.flows_to_pandas(F); "
        "print(len(df), time.perf_counter() - t, time.process_time() - c)"),
    "flows_to_pandas_nt": (
        "import time, purepcap, pandas; t = time.perf_counter(); c = time.process_time(); "
        "df = purepcap.flows_to_pandas(F, idle_timeout=None, active_timeout=None); "
        "print(len(df), time.perf_counter() - t, time.process_time() - c)"),
    "flows": (
        "import time, purepcap; t = time.perf_counter(); c = time.process_time(); n = sum(1 for _ in purepcap.flows(F)); "
        "print(n, time.perf_counter() - t, time.process_time() - c)"),
    "to_pandas": (
        "import time, purepcap, pandas; t = time.perf_counter(); c = time.process_time(); df = purepcap.to_pandas(F); "
        "print(len(df), time.perf_counter() - t, time.process_time() - c)"),
    # the floor under any pandas row: the interpreter, purepcap, numpy and pandas imported
    "imports": "import time, purepcap, pandas; print(0, 0.0, 0.0)",
    "nfstream": (
        "import time; from nfstream import NFStreamer; t = time.perf_counter(); c = time.process_time(); "
        f"df = NFStreamer(F, idle_timeout={HUGE}, active_timeout={HUGE}).to_pandas(); "
        "print(len(df), time.perf_counter() - t, time.process_time() - c)"),
    "nfstream_stats": (
        "import time; from nfstream import NFStreamer; t = time.perf_counter(); c = time.process_time(); "
        f"df = NFStreamer(F, idle_timeout={HUGE}, active_timeout={HUGE}, n_dissections=0, "
        "statistical_analysis=True).to_pandas(); print(len(df), time.perf_counter() - t, time.process_time() - c)"),
    "flows_to_pandas_stats": (
        "import time, purepcap, pandas; t = time.perf_counter(); c = time.process_time(); df = purepcap.flows_to_pandas(F, stats=True); "
        "print(len(df), time.perf_counter() - t, time.process_time() - c)"),
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
    rows, inner, inner_cpu = out.split()[-3:]
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "rows": int(rows), "inner": float(inner), "inner_cpu": float(inner_cpu)}


def capture(data: Path, n: int) -> Path:
    """bench/_gen.py's mixed capture of n packets (reused when this _gen.py made it)."""
    from purepcap.format import PcapWriter

    data.mkdir(parents=True, exist_ok=True)
    path = data / f"flows-mixed-{n}-{_gen.MADE_BY}.pcap"
    if not path.exists():
        for old in data.glob(f"flows-mixed-{n}*.pcap"):
            old.unlink()
        tmp = path.with_suffix(".part")
        with _gen._out(tmp) as f:
            w = PcapWriter(f)
            for t, frame in _gen.mixed_packets(n):
                w.write_packet(t, frame)
        tmp.rename(path)
    return path


def sessions_capture(data: Path, n: int) -> Path:
    """About n packets of complete TCP connections (SYN, SYN-ACK, ACK, data both ways,
    FIN both ways, last ACK), 200 open at a time, interleaved: the conversations that
    flows_to_pandas must hand to its sequential engine (checksums left 0)."""
    import random
    import struct

    from purepcap.format import PcapWriter

    path = data / f"flows-sessions-{n}.pcap"
    if path.exists():
        return path
    rng = random.Random(17)
    head = struct.Struct("!6s6sHBBHHHBBH4s4sHHIIBBHHH")
    t = _gen.T0
    written = 0
    conn = 0
    live: list[list] = []
    tmp = path.with_suffix(".part")
    with _gen._out(tmp) as f:
        w = PcapWriter(f)
        while written < n:
            while len(live) < 200:
                conn += 1
                a = bytes([10, 1, conn >> 8 & 255, conn & 255])
                b = bytes([10, 2, rng.randrange(256), rng.randrange(1, 255)])
                data_packets = rng.randrange(2, 40)
                script = [(0, 0x02, 0), (1, 0x12, 0), (0, 0x10, 0)]
                script += [(rng.randrange(2), 0x18, rng.choice((60, 300, 1400))) for _ in range(data_packets)]
                script += [(0, 0x11, 0), (1, 0x11, 0), (0, 0x10, 0)]
                live.append([a, b, 1024 + conn % 60000, 443, script, 0, [1000, 9000]])
            c = live[rng.randrange(len(live))]
            a, b, sp, dp, script, i, seqs = c
            who, flags, size = script[i]
            src, dst, sport, dport = (a, b, sp, dp) if who == 0 else (b, a, dp, sp)
            total = 40 + size
            frame = head.pack(b"\x02\x00" + dst, b"\x02\x00" + src, 0x0800, 0x45, 0, total, conn & 0xFFFF, 0x4000,
                              64, 6, 0, src, dst, sport, dport, seqs[who], 0, 0x50, flags, 65535, 0, 0) \
                + _gen.PAYLOAD[:size]
            seqs[who] += size + (1 if flags & 0x03 else 0)
            t += 20_000
            w.write_packet(t, frame)
            written += 1
            c[5] += 1
            if c[5] == len(script):
                live.remove(c)
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
    sessions = sessions_capture(args.data, n // 5)
    names = args.only.split(",") if args.only else list(WORK) + ["sessions_flows_to_pandas", "sessions_flows",
                                                                   "sessions_to_pandas", "sessions_nfstream"]
    try:
        import nfstream  # noqa: F401
    except ImportError:
        names = [k for k in names if "nfstream" not in k]
        print("nfstream is not installed: its rows are skipped", file=sys.stderr)
    results: dict[str, list[dict]] = {k: [] for k in names}
    for i in range(runs):
        for k in names:
            r = run(WORK[k.replace("sessions_", "")], sessions if k.startswith("sessions_") else path)
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
        summary[k] = {m: statistics.median(r[m] for r in ok) for m in ("wall", "cpu", "rss_mib", "inner", "inner_cpu")}
        summary[k]["rows"] = ok[0]["rows"]
        summary[k]["packets"] = n * 10 if k == "flows_10x" else n // 5 if k.startswith("sessions_") else n
    out = {"packets": n, "runs": runs, "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                       time.gmtime()),
           "summary": summary, "runs_raw": results}
    (args.data / "flows-results.json").write_text(json.dumps(out, indent=1))
    print(table(summary, n))
    return 0


def table(summary: dict, n: int) -> str:
    lines = ["| row | rows out | wall s (whole process) | packets/s whole | in-process s | packets/s in-process "
             "| CPU s (whole) | in-process CPU s | peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for k, s in summary.items():
        if "error" in s:
            lines.append(f"| {k} | error: {s['error']} | | | | | | | |")
            continue
        pk = s["packets"]
        if k == "imports":
            lines.append(f"| {k} | | {s['wall']:.2f} | | | | {s['cpu']:.2f} | | {s['rss_mib']:.0f} |")
            continue
        lines.append(f"| {k} | {s['rows']:,} | {s['wall']:.2f} | {pk / s['wall']:,.0f} | {s['inner']:.2f} | "
                     f"{pk / s['inner']:,.0f} | {s['cpu']:.2f} | {s['inner_cpu']:.2f} | {s['rss_mib']:.0f} |")
    nf, ours = summary.get("nfstream"), summary.get("flows_to_pandas")
    if nf and ours and "error" not in nf and "error" not in ours:
        lines.append("")
        lines.append(f"flows_to_pandas() vs nfstream, whole process: {nf['wall'] / ours['wall']:.1f}x "
                     f"(wall), {nf['cpu'] / ours['cpu']:.1f}x (CPU)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
