# The fuzz harness in fuzz/ (issue 9), kept working by the ordinary test run: its seed
# corpus is made by our own writer and reads cleanly, every target accepts every seed,
# and each target does fail when the promise it checks is broken. An input a fuzzer
# finds becomes a regression test here, its bytes inline (none so far).
#
# Fuzzing runs so far (atheris 2.3, one core each, seeds from fuzz/make_seeds.py):
#   containers  1,482,593 inputs in 1,100 s, no finding
#   headers     5,048,489 inputs in 800 s, no finding
#   records       590,075 inputs in 800 s, no finding
#   filter        452,486 inputs in 800 s, no finding
#   records_direct  one finding within seconds: an interface block with a bad trailer
#                 right behind the section header was left out of the interfaces that
#                 records() and to_pandas() walk pcapng with, instead of being reported
#                 (fixed; regression test in test_records_direct.py); then 404,376
#                 inputs in 300 s, no finding
# (per run: fuzz/README.md)
# The other bugs found so far came from the hypothesis properties and resource tests;
# their regression tests are in test_robustness.py.
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import purepcap

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))
targets = importlib.import_module("targets")
make_seeds = importlib.import_module("make_seeds")

NEEDS = {"containers": [], "headers": ["purepcap.headers"], "records": ["purepcap._records"],
         "records_direct": ["purepcap._records"], "filter": ["purepcap.filter._parser"],
         "appfields": ["purepcap._appfields"], "reassembly": ["purepcap._reassembly"],
         "partitions": [], "filtered_read": ["purepcap._records", "purepcap.filter._parser"]}


def needs(target: str) -> None:
    for module in NEEDS[target]:
        pytest.importorskip(module)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    argv = sys.argv
    sys.argv = ["make_seeds.py", str(out)]
    try:
        make_seeds.main()
    finally:
        sys.argv = argv
    return out


def test_seed_captures_are_made_by_our_writer_and_read_cleanly(seeds: Path) -> None:
    files = sorted((seeds / "containers").iterdir())
    assert len(files) >= 15
    formats = set()
    for f in files:
        with purepcap.open(f) as cap:
            packets = list(cap)
            assert cap.clean_end, f.name
            formats.add((cap.format, cap.byte_order, cap.compression))
        assert packets, f.name
    assert {("pcap", "little", "none"), ("pcap", "big", "none"), ("pcapng", "little", "none"),
            ("pcapng", "big", "none"), ("pcap", "little", "gzip")} <= formats


def test_seeds_are_deterministic(seeds: Path, tmp_path: Path) -> None:
    argv = sys.argv
    sys.argv = ["make_seeds.py", str(tmp_path)]
    try:
        make_seeds.main()
    finally:
        sys.argv = argv
    for f in sorted(seeds.rglob("*")):
        if f.is_file():
            assert (tmp_path / f.relative_to(seeds)).read_bytes() == f.read_bytes(), f


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_every_target_accepts_its_seeds(seeds: Path, target: str) -> None:
    needs(target)
    files = sorted((seeds / target).iterdir())
    assert files
    for f in files:
        targets.TARGETS[target](f.read_bytes())


def test_container_target_fails_when_a_foreign_exception_escapes(monkeypatch) -> None:
    def broken_open(*args, **kwargs):
        raise KeyError("not a PcapError")

    monkeypatch.setattr(targets.purepcap, "open", broken_open)
    with pytest.raises(KeyError):
        targets.containers(b"\xd4\xc3\xb2\xa1")


def test_container_target_fails_on_an_error_without_offset(monkeypatch) -> None:
    def no_offset(*args, **kwargs):
        raise purepcap.DamagedError("somewhere")

    monkeypatch.setattr(targets.purepcap, "open", no_offset)
    with pytest.raises(AssertionError, match="without an offset"):
        targets.containers(b"")


def test_headers_target_fails_when_decode_raises(monkeypatch) -> None:
    needs("headers")
    import purepcap.headers

    def broken(*args):
        raise IndexError("read past the packet")

    monkeypatch.setattr(purepcap.headers, "decode", broken)
    with pytest.raises(IndexError):
        targets.headers(b"\x00\x00\x00abc")


def test_filter_target_fails_on_anything_but_filter_error(monkeypatch) -> None:
    needs("filter")
    import purepcap.filter

    def broken(text):
        raise RecursionError("too deep")

    monkeypatch.setattr(purepcap.filter, "parse", broken)
    with pytest.raises(RecursionError):
        targets.filter_expression(b"((((tcp))))")


def test_records_direct_target_fails_when_the_walks_differ(monkeypatch) -> None:
    needs("records_direct")
    import purepcap.format
    records_mod = importlib.import_module("purepcap._records")  # (purepcap.records is the function)

    real = records_mod._direct_rows

    def drops_the_first_row(*args, **kwargs):
        rows = real(*args, **kwargs)
        next(rows, None)
        return rows

    monkeypatch.setattr(records_mod, "_direct_rows", drops_the_first_row)
    import io
    buf = io.BytesIO()
    with purepcap.format.PcapngWriter(buf) as w:
        w.write_packet(1, bytes.fromhex("020000000002020000000001080045000028000000004006"
                                        "66d00a0000010a0000020001005000000000000000005002ffff00000000"))
    with pytest.raises(AssertionError, match="direct walk differs"):
        targets.records_direct(buf.getvalue())


def test_appfields_target_fails_on_a_value_of_the_wrong_type(monkeypatch) -> None:
    import purepcap._appfields as app
    needs("appfields")
    monkeypatch.setattr(app, "app_fields", lambda *a: (b"raw",) + (None,) * (len(app.APP_FIELDS) - 1))
    with pytest.raises(AssertionError):
        targets.appfields(targets.app_input(0, b"\x00" * 12))


def test_appfields_target_fails_when_a_decoder_raises(monkeypatch) -> None:
    import purepcap._appfields as app
    needs("appfields")

    def broken(payload, tcp=False):
        raise IndexError("a read past the end")
    monkeypatch.setattr(app, "dns_fields", broken)
    with pytest.raises(IndexError):
        targets.appfields(targets.app_input(0, b"\x00" * 12))


def test_reassembly_target_joins_its_seeds() -> None:
    # the seeds are split hellos and requests: the joiner must complete some of them
    from purepcap._reassembly import Reassembler

    joined = 0
    real = Reassembler

    class Counting(Reassembler):
        def segment(self, *args):
            nonlocal joined
            done = super().segment(*args)
            joined += done is not None and any(v is not None for v in done[1])
            return done

    import purepcap._reassembly as module
    module.Reassembler = Counting
    try:
        for name, p in make_seeds.app_payloads().items():
            if name in ("client-hello", "http-request"):
                targets.reassembly(targets.reassembly_input([(0 if "hello" in name else 1, 0, p[:7]),
                                                             (0 if "hello" in name else 1, 0, p[7:])]))
    finally:
        module.Reassembler = real
    assert joined == 2
