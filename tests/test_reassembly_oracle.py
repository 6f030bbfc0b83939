# reassemble=True against tshark 4 with TCP reassembly ON, on the shared corpus. tshark is
# run here (not stored in corpus-meta: that oracle has reassembly off), only on the
# corpus files where purepcap's reassembly changes a field, and only on the TCP streams
# where it does. tshark reports a reassembled message on the frame of its LAST segment,
# purepcap on its FIRST: so each field is compared per TCP stream (tshark's tcp.stream),
# as the list of values the stream's frames carry, in frame order.
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections import defaultdict

import pytest
from conftest import CORPUS, have_corpus

import purepcap

pytestmark = [
    pytest.mark.skipif(not have_corpus(), reason="the shared corpus is absent"),
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
]

# our field -> tshark's, for what the reassembly joins (JA4 is not in tshark 4.0)
FIELDS = {"tls_sni": "tls.handshake.extensions_server_name", "ja3": "tls.handshake.ja3",
          "ja3s": "tls.handshake.ja3s", "http_method": "http.request.method", "http_uri": "http.request.uri",
          "http_host": "http.host", "http_user_agent": "http.user_agent"}
TSHARK_REASSEMBLY = ["-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tls.desegment_ssl_records:TRUE",
                     "-o", "http.desegment_headers:TRUE", "-o", "http.desegment_body:FALSE",
                     "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
# (file, field) -> why purepcap and tshark differ there
KNOWN: dict[tuple[str, str], str] = {
    ("ndpi/tests/cfgs/default/pcap/KakaoTalk_chat.pcap", "ja3s"):
        "two ServerHellos whole in a segment that cuts their TLS record, which tshark never completes "
        "(stream 18: the capture ends inside it; stream 2: tshark's TCP analysis, confused by a "
        "SYN-ACK on reused ports, calls the segment a retransmission): tshark reports nothing; "
        "purepcap reads the hello, which is whole (a hello whole in a cut record is read at once, "
        "by design)",
}


def _rows(path: str, reassemble: bool) -> dict[int, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return {r["frame"]: r for r in purepcap.records(path, fields=list(FIELDS), strict=False,
                                                            reassemble=reassemble)}
        except purepcap.PcapError:
            return {}


def _changed_files() -> dict[str, set[int]]:
    """The corpus files where reassembly changes a field: file -> the frames it changes."""
    out = {}
    for top, _, names in os.walk(CORPUS):
        for name in sorted(names):
            path = os.path.join(top, name)
            off, on = _rows(path, False), _rows(path, True)
            changed = {f for f, r in on.items() if any(r[k] != off[f][k] for k in FIELDS)}
            if changed:
                out[path] = changed
    return out


def _tshark(path: str) -> dict[int, tuple[str, dict[str, str]]]:
    """frame -> (tcp.stream, {field: first value}) from tshark with reassembly on."""
    cmd = ["tshark", "-n", "-r", path, *TSHARK_REASSEMBLY, "-T", "fields", "-E", "occurrence=f",
           "-e", "frame.number", "-e", "tcp.stream"] + [x for f in FIELDS.values() for x in ("-e", f)]
    run = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300)
    out = {}
    for line in run.stdout.splitlines():
        cells = line.split("\t")
        if len(cells) < 2 + len(FIELDS) or not cells[1]:
            continue
        out[int(cells[0])] = (cells[1], dict(zip(FIELDS, cells[2:])))  # noqa: B905
    return out


def _value(field: str, value) -> str:
    return "" if value is None else str(value).strip(" \t") if field.startswith("http_") else str(value)


@pytest.fixture(scope="module")
def comparison():
    agree = total = 0
    diffs = []
    changed = _changed_files()
    for path, frames in changed.items():
        ours = _rows(path, True)
        theirs = _tshark(path)
        streams = {theirs[f][0] for f in frames if f in theirs}
        for field in FIELDS:
            mine: dict[str, list] = defaultdict(list)
            tsh: dict[str, list] = defaultdict(list)
            for f in sorted(theirs):
                stream, values = theirs[f]
                if stream not in streams:
                    continue
                if values[field]:
                    tsh[stream].append(values[field])
                v = _value(field, ours[f][field]) if f in ours else ""
                if v:
                    mine[stream].append(v)
            for stream in streams:
                if not (mine[stream] or tsh[stream]):
                    continue  # (a value counts where either side has one)
                total += max(len(mine[stream]), len(tsh[stream]))  # values, counted per stream
                if mine[stream] == tsh[stream]:
                    agree += len(mine[stream])
                else:
                    diffs.append((os.path.relpath(path, CORPUS), field, stream, mine[stream], tsh[stream]))
    return changed, agree, total, diffs


def test_reassembly_finds_the_split_messages_of_the_corpus(comparison):
    changed, _, _, _ = comparison
    # split ClientHellos (codm, dingtalk, KakaoTalk, gaijin), split HTTP request headers
    assert len(changed) >= 6
    assert sum(len(v) for v in changed.values()) >= 40


def test_agreement_with_tshark_reassembling(comparison):
    _, agree, total, diffs = comparison
    assert total >= 150 and agree >= 0.99 * total
    assert {(name, field) for name, field, _, _, _ in diffs} == set(KNOWN), diffs


def compare_all() -> tuple[int, int, list]:
    """Every corpus file with TLS or HTTP over TCP (by corpus-meta/appfields.csv.gz), every
    stream: the report's --all (about 100 s of tshark; the test runs only the changed files)."""
    import csv
    import gzip

    from conftest import META

    names = set()
    with gzip.open(META / "appfields.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            if r["transport"] == "tcp" and (r["tls_types"] or r["http_method"] or r["http_host"]):
                names.add(r["file"])
    agree = total = 0
    diffs = []
    for name in sorted(names):
        path = os.path.join(CORPUS, name)
        ours, theirs = _rows(path, True), _tshark(path)
        for field in FIELDS:
            mine: dict[str, list] = defaultdict(list)
            tsh: dict[str, list] = defaultdict(list)
            for f in sorted(theirs):
                stream, values = theirs[f]
                if values[field]:
                    tsh[stream].append(values[field])
                v = _value(field, ours[f][field]) if f in ours else ""
                if v:
                    mine[stream].append(v)
            for stream in set(mine) | set(tsh):
                total += max(len(mine[stream]), len(tsh[stream]))
                if mine[stream] == tsh[stream]:
                    agree += len(mine[stream])
                else:
                    diffs.append((name, field, stream, mine[stream][:3], tsh[stream][:3]))
    return agree, total, diffs


if __name__ == "__main__":  # a report: python tests/test_reassembly_oracle.py [--all]
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    if "--all" in sys.argv:
        agree, total, diffs = compare_all()
        print(f"all TLS/HTTP files: {agree}/{total} values agree (compared per TCP stream)")
    else:
        changed, agree, total, diffs = comparison.__wrapped__()
        print(f"{len(changed)} files, {sum(len(v) for v in changed.values())} frames changed; "
              f"{agree}/{total} values agree (compared per TCP stream)")
    for d in diffs:
        print(d)
