# The committed fixtures are exactly what fixtures/make_fixtures.py writes, and what
# they hold reads back and decodes to what the script built.
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import purepcap

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SCRIPT = FIXTURES / "make_fixtures.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_fixtures", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make_fixtures = _load_script()
NAMES = sorted(make_fixtures.FIXTURES)


def test_fixture_list_is_the_documented_one():
    assert NAMES == sorted(["local.pcap", "local.pcapng", "http.pcap", "vlan.pcap", "truncated-be.pcap",
                            "multi/part-1.pcap", "multi/part-2.pcap", "multi/part-3.pcap"])


def test_script_regenerates_fixtures_byte_identically(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    for name in NAMES:
        fresh = (tmp_path / name).read_bytes()
        committed = (FIXTURES / name).read_bytes()
        assert fresh == committed, f"fixtures/{name} differs from what make_fixtures.py writes now"
        assert len(committed) < 64 * 1024, f"fixtures/{name} should stay small"


@pytest.mark.parametrize("name", NAMES)
def test_fixture_reads_back_as_built(name):
    cb = make_fixtures.FIXTURES[name]()
    with purepcap.open(FIXTURES / name) as cap:
        got = list(cap)
        assert cap.clean_end is True
    assert got == cb.packets()


def test_fixture_properties():
    with purepcap.open(FIXTURES / "truncated-be.pcap") as cap:
        pkts = list(cap)
        assert cap.byte_order == "big" and cap.snaplen == 96 and cap.format == "pcap"
    assert pkts and all(p.caplen == 96 < p.length for p in pkts)
    with purepcap.open(FIXTURES / "local.pcapng") as cap:
        ng = list(cap)
        assert cap.format == "pcapng" and cap.interfaces[0].tsresol == 1_000_000_000
    with purepcap.open(FIXTURES / "local.pcap") as cap:
        assert [(p.time, p.data) for p in cap] == [(p.time, p.data) for p in ng]
    assert 30 <= len(ng) <= 50
    ethertypes = {p.data[12:14] for p in ng}
    assert {b"\x08\x00", b"\x86\xdd", b"\x08\x06", b"\x88\xcc"} <= ethertypes
    with purepcap.open(FIXTURES / "vlan.pcap") as cap:
        vl = list(cap)
    assert vl and all(p.data[12:14] in (b"\x81\x00", b"\x88\xa8") for p in vl)
    assert any(p.data[12:14] == b"\x88\xa8" for p in vl)
    parts = [len(list(purepcap.open(FIXTURES / f"multi/part-{k}.pcap"))) for k in (1, 2, 3)]
    assert all(parts) and len(set(parts)) == 3
