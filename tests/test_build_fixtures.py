# The committed fixtures are exactly what fixtures/make_fixtures.py writes, and what
# they hold reads back and decodes to what the script built.
from __future__ import annotations

import importlib.util
import shutil
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
    assert NAMES == sorted(["local.pcap", "local.pcapng", "http.pcap", "tls.pcap", "vlan.pcap", "truncated-be.pcap",
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


# -- tls.pcap: the README's top-10 SNI example, its fingerprints checked by outside tools -------
TLS = FIXTURES / "tls.pcap"


def test_tls_fixture_holds_the_server_names_counted_as_built():
    counts: dict[str, int] = {}
    alpn = set()
    for r in purepcap.records(TLS, fields=["tls_sni", "tls_alpn", "ja3", "ja3s", "ja4"]):
        if r["tls_sni"] is not None:
            counts[r["tls_sni"]] = counts.get(r["tls_sni"], 0) + 1
            assert r["ja3"] and r["ja4"] and r["ja3s"] is None
        elif r["tls_alpn"] is not None:
            assert r["ja3s"] and r["ja3"] is None
        alpn.add(r["tls_alpn"])
    assert counts == dict(make_fixtures.TLS_SERVERS)
    assert {("h2", "http/1.1"), ("http/1.1",), ("h2",)} <= alpn


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tls_fixture_ja3_ja3s_sni_alpn_equal_tshark():
    out = subprocess.run(["tshark", "-r", str(TLS), "-Y", "tls.handshake", "-T", "fields", "-e", "frame.number",
                          "-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.ja3",
                          "-e", "tls.handshake.ja3s", "-e", "tls.handshake.extensions_alpn_str"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    theirs = {int(f): (sni or None, ja3 or None, ja3s or None, tuple(alpn.split(",")) if alpn else None)
              for f, sni, ja3, ja3s, alpn in (line.split("\t") for line in out.splitlines())}
    ours = {r["frame"]: (r["tls_sni"], r["ja3"], r["ja3s"], r["tls_alpn"])
            for r in purepcap.records(TLS, fields=["tls_sni", "ja3", "ja3s", "tls_alpn"])
            if r["ja3"] or r["ja3s"]}
    assert len(theirs) == sum(c for _, c in make_fixtures.TLS_SERVERS) * 2
    assert ours == theirs


def test_tls_fixture_ja4_equals_ja4plus():
    ja4 = pytest.importorskip("ja4plus.fingerprinters.ja4")
    from ja4plus.utils.tls_utils import parse_tls_handshake

    hellos = [r for r in purepcap.records(TLS, payload=True, fields=["ja4"]) if r["ja4"]]
    assert len(hellos) == sum(c for _, c in make_fixtures.TLS_SERVERS)
    assert [r["ja4"] for r in hellos] == [ja4.generate_ja4(parse_tls_handshake(r["payload"])) for r in hellos]
    assert len({r["ja4"] for r in hellos}) == len(make_fixtures.TLS_PROFILES)
