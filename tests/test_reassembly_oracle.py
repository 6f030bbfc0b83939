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
        "the capture ends in the middle of a TLS record that holds a whole ServerHello and the start "
        "of the Certificate: tshark waits for the record's end and reports nothing; purepcap reads "
        "the hello, which is whole (a hello whole in a cut record is read at once, by design)",
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
    assert total >= 150 and agree >= total - len(KNOWN)
    assert {(name, field) for name, field, _, _, _ in diffs} == set(KNOWN), diffs


if __name__ == "__main__":  # a report: python tests/test_reassembly_oracle.py
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    changed, agree, total, diffs = comparison.__wrapped__()
    print(f"{len(changed)} files, {sum(len(v) for v in changed.values())} frames changed; "
          f"{agree}/{total} values agree (compared per TCP stream)")
    for d in diffs:
        print(d)
