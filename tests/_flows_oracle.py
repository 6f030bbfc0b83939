# The flow check against tshark's tcp.stream / udp.stream (corpus-meta/streams.csv.gz),
# shared by tests/test_flows_oracle.py: the comparison its README prescribes.
from __future__ import annotations

import csv
import functools
import gzip
import warnings
from collections import defaultdict

from conftest import META, corpus_path, oracle_rows, oracle_time_ns

import purepcap
from purepcap._flows import flows
from purepcap.errors import PcapError

# Link types records() reads (as tests/test_oracle_records.py lists them).
# tshark prints 12 TCP flag bits (the 3 reserved ones too); records()' tcp_flags has 9 (up to NS)
FLAG_BITS = 0x1FF
LINKTYPES = {"1", "0", "9", "12", "14", "50", "101", "104", "108", "113", "228", "229", "276"}


@functools.cache
def stream_rows() -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with gzip.open(META / "streams.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            rows[r["file"]].append(r)
    return dict(rows)


def _five(r: dict[str, str]) -> tuple:
    proto = "tcp" if ":tcp" in r["protocols"] else "udp"
    a, b = (r["src"], r["src_port"]), (r["dst"], r["dst_port"])
    return (proto,) + (a + b if a <= b else b + a)


def expected_streams(rows: list[dict[str, str]]) -> tuple[list[dict], int]:
    """tshark's streams of one file that the README says to compare, and how many it leaves out."""
    streams: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    bad_tuples = set()
    for r in rows:
        if r["tcp_stream"]:
            streams[("tcp", r["tcp_stream"])].append(r)
        elif r["udp_stream"]:
            streams[("udp", r["udp_stream"])].append(r)
        else:  # a frame with ports but no stream: its 5-tuple is left out
            bad_tuples.add(_five(r))
    out = []
    left = 0
    for (proto, _), frames in streams.items():
        if any(_bad(r) for r in frames) or any(_five(r) in bad_tuples for r in frames):
            left += 1
            continue
        first = frames[0]
        fwd = [r for r in frames if (r["src"], r["src_port"]) == (first["src"], first["src_port"])]
        rev = [r for r in frames if (r["src"], r["src_port"]) != (first["src"], first["src_port"])]
        if first["src"] == first["dst"] and first["src_port"] == first["dst_port"]:
            fwd, rev = frames, []

        out.append({
            "first_frame": int(first["frame"]), "last_frame": int(frames[-1]["frame"]),
            "start": oracle_time_ns(first["time_epoch"]), "end": oracle_time_ns(frames[-1]["time_epoch"]),
            "src_host": first["src"], "src_port": int(first["src_port"]),
            "dst_host": first["dst"], "dst_port": int(first["dst_port"]), "protocol": proto,
            "src_packets": len(fwd), "dst_packets": len(rev),
            "src_bytes": sum(int(r["frame_len"]) for r in fwd), "dst_bytes": sum(int(r["frame_len"]) for r in rev),
            "src_ip_bytes": sum(int(r["ip_len"]) for r in fwd), "dst_ip_bytes": sum(int(r["ip_len"]) for r in rev),
            "src_tcp_flags": _flags(proto, fwd), "dst_tcp_flags": _flags(proto, rev),
        })
    return out, left


def _flags(proto: str, rows: list[dict[str, str]]) -> int | None:
    if proto != "tcp":
        return None
    v = 0
    for r in rows:
        v |= int(r["tcp_flags"], 16) if r["tcp_flags"] else 0
    return v & FLAG_BITS


def _bad(r: dict[str, str]) -> bool:
    return r["n_ip"] != "1" or r["frag"] == "1" or r["malformed"] == "1" or r["linktype"] not in LINKTYPES


def our_flows(path: str) -> list[dict]:
    """flows() with no timeouts over the frames tshark reported."""
    last = max(int(r["frame"]) for r in oracle_rows()[path])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            packets = [p for p in purepcap.open(corpus_path(path), strict=False) if p.frame <= last]
        except PcapError:
            return []
    out = []
    try:
        for f in flows(packets, idle_timeout=None, active_timeout=None):
            out.append(f)
    except PcapError:
        pass
    return out


COMPARED = ("protocol", "src_host", "src_port", "dst_host", "dst_port", "last_frame", "src_packets",
            "dst_packets", "src_bytes", "dst_bytes", "src_ip_bytes", "dst_ip_bytes", "src_tcp_flags",
            "dst_tcp_flags", "start", "end")


@functools.cache
def comparison():
    """(compared, agreed, left out, {(file, first_frame): what differs}, our flows by file)."""
    compared = agreed = left_out = 0
    diffs: dict[tuple[str, int], str] = {}
    ours_by_file: dict[str, list[dict]] = {}
    for path, rows in stream_rows().items():
        expected, left = expected_streams(rows)
        left_out += left
        if not expected:
            continue
        ours = our_flows(path)
        ours_by_file[path] = ours
        by_first = {f["first_frame"]: f for f in ours}
        for e in expected:
            compared += 1
            f = by_first.get(e["first_frame"])
            if f is None:
                diffs[(path, e["first_frame"])] = "no-flow"
                continue
            why = [k for k in COMPARED if f[k] != e[k]]
            if why:
                diffs[(path, e["first_frame"])] = " ".join(why)
            else:
                agreed += 1
    return compared, agreed, left_out, diffs, ours_by_file
