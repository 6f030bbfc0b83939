# purepcap._loops: which readers' loops an interpreter runs, chosen once at import, and
# overridden by PUREPCAP_LOOPS. The loops themselves are compared case by case in
# tests/test_conformance.py; here, what that suite's streams do not do: short reads,
# a stream that hands out more than it is asked for, and one with read() alone.
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from _conformance import ETHER_FRAMES, loops, packet_row
from conftest import ROOT

from purepcap import PcapError, _loops
from purepcap.format import Capture, PcapngWriter, PcapWriter


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_the_interpreter_chooses_and_the_environment_overrides() -> None:
    want = "pypy" if sys.implementation.name == "pypy" else "cpython"
    env = {k: v for k, v in os.environ.items() if k != "PUREPCAP_LOOPS"}
    r = subprocess.run([sys.executable, "-c", "from purepcap import _loops; print(_loops.LOOPS)"],
                       capture_output=True, text=True, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
    assert r.stdout.strip() == want, r.stderr
    for choice in _loops.CHOICES:
        r = _run("from purepcap import _loops; print(_loops.LOOPS)", PUREPCAP_LOOPS=choice)
        assert r.stdout.strip() == choice, r.stderr
    r = _run("import purepcap", PUREPCAP_LOOPS="jython")
    assert r.returncode != 0 and "PUREPCAP_LOOPS='jython'" in r.stderr


class _Odd(io.RawIOBase):
    """A stream of ``data`` with read() alone: ``mode`` "short" gives at most 3 bytes a
    read, "more" gives twice what is asked for (as a misbehaving file object may)."""

    def __init__(self, data: bytes, mode: str) -> None:
        self._data, self._pos, self._mode = data, 0, mode

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = len(self._data)
        n = min(n, 3) if self._mode == "short" else 2 * n
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out


def _pcap() -> bytes:
    f = io.BytesIO()
    w = PcapWriter(f)
    for i, frame in enumerate(ETHER_FRAMES * 30):
        w.write_packet(1_700_000_000_000_000_000 + i * 1000, frame + bytes(i))
    return f.getvalue()


def _pcapng() -> bytes:
    f = io.BytesIO()
    w = PcapngWriter(f)
    for i, frame in enumerate(ETHER_FRAMES * 30):
        if i == 70:
            w.new_section("big")
            w.add_interface(1, tsresol=6)
        w.write_packet(1_700_000_000_000_000_000 + i * 1000, frame + bytes(i))
    return f.getvalue()


@pytest.mark.parametrize("make", [_pcap, _pcapng], ids=["pcap", "pcapng"])
@pytest.mark.parametrize("mode", ["short", "more"])
@pytest.mark.parametrize("choice", _loops.CHOICES)
@pytest.mark.parametrize("chunk", [7, 100, 4096])
def test_odd_streams_read_as_the_file_does(make, mode: str, choice: str, chunk: int) -> None:
    data = make()
    with Capture(data) as cap:
        want = [packet_row(p) for p in cap]
        assert cap.clean_end
    assert len(want) == len(ETHER_FRAMES) * 30
    with loops(choice), Capture(_Odd(data, mode), chunk_size=chunk) as cap:
        got = [packet_row(p) for p in cap]
        assert cap.clean_end
    assert got == want


@pytest.mark.parametrize("choice", _loops.CHOICES)
def test_a_file_cut_short_on_an_odd_stream_is_reported_there(choice: str) -> None:
    data = _pcap()
    cut = data[:len(data) - 5]
    with Capture(cut) as cap:
        want = []
        with pytest.raises(PcapError) as ref:
            for p in cap:
                want.append(packet_row(p))
    with loops(choice), Capture(_Odd(cut, "short"), chunk_size=64) as cap:
        got = []
        with pytest.raises(type(ref.value)) as exc:
            for p in cap:
                got.append(packet_row(p))
    assert got == want
    assert (exc.value.offset, exc.value.frame) == (ref.value.offset, ref.value.frame)
