# Hostile input, round two (issue 23), the findings that live in the container walkers and
# partition spans: partitioned reads that hid damage (item 1), splitting made quadratic by
# interface blocks (4), leading interface blocks read without a budget (5) and records
# bigger than a chunk gathered in doubling copies (6). Each test failed before its fix.
from __future__ import annotations

import gzip
import io
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import purepcap
from purepcap import build, linktypes
from purepcap._container import INTERFACE_BUDGET, INTERFACE_COST, MAX_BLOCK
from purepcap.format import SPLIT_PREFIX_BUDGET, read_pcapng_head, split_capture

ROOT = Path(__file__).resolve().parent.parent
FRAME = bytes(build.ether() / build.ipv4(src="10.0.0.1", dst="10.0.0.2") / build.udp(sport=1, dport=2) / b"x")
T0 = 1_700_000_000 * 10**9


def idb(tsresol: int | None = None, order: str = "<") -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(order + "HH", 0, 0)
    body = struct.pack(order + "HHI", linktypes.EN10MB, 0, 262144) + opts
    return struct.pack(order + "II", 1, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))


def shb(order: str = "<") -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    return struct.pack(order + "II", 0x0A0D0D0A, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))


def epb(i: int, iid: int = 0, data: bytes = FRAME) -> bytes:
    ticks = T0 + i * 1000
    pad = data + bytes(-len(data) % 4)
    body = struct.pack("<IIIII", iid, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + pad
    return struct.pack("<II", 6, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def outcome(read):
    try:
        got = read()
    except purepcap.PcapError as exc:
        return type(exc)
    return len(got)


def whole_and_partitioned(path: Path) -> dict[str, object]:
    pytest.importorskip("intake")
    pytest.importorskip("dask")
    from purepcap.intake_source import PcapSource

    return {
        "to_pandas": outcome(lambda: purepcap.to_pandas(path, errors="raise")),
        "open": outcome(lambda: list(purepcap.open(path))),
        "partition_size=1": outcome(lambda: PcapSource(str(path), partition_size=1, errors="raise").read()),
        "partition_size=500": outcome(lambda: PcapSource(str(path), partition_size=500, errors="raise").read()),
        "dask": outcome(lambda: PcapSource(str(path), partition_size=1, errors="raise").to_dask().compute()),
        "default": outcome(lambda: PcapSource(str(path), errors="raise").read()),
    }


# -- item 1: partitioned and whole reads give the same error ------------------------------------
def test_a_second_section_cut_short_is_reported_by_every_partitioning(tmp_path):
    path = tmp_path / "cut.pcapng"
    path.write_bytes(shb() + idb() + b"".join(epb(i) for i in range(20)) + shb()[:20])
    got = whole_and_partitioned(path)
    assert set(got.values()) == {purepcap.TruncatedError}, got


@pytest.mark.parametrize("where", ["leading", "second leading", "after packets", "last block"])
def test_a_bad_interface_block_is_reported_by_every_partitioning(tmp_path, where):
    packets = b"".join(epb(i) for i in range(20))
    if where == "leading":
        data = shb() + idb(tsresol=0x7F) + packets
    elif where == "second leading":  # the packets name the good first interface
        data = shb() + idb() + idb(tsresol=0x7F) + packets
    elif where == "after packets":
        data = shb() + idb() + packets + idb(tsresol=0x7F) + b"".join(epb(i, iid=0) for i in range(20, 40))
    else:
        data = shb() + idb() + packets + idb(tsresol=0x7F)
    path = tmp_path / "badidb.pcapng"
    path.write_bytes(data)
    got = whole_and_partitioned(path)
    assert set(got.values()) == {purepcap.DamagedError}, got


def test_spans_of_a_damaged_file_never_start_past_its_end(tmp_path):
    path = tmp_path / "cut.pcapng"
    path.write_bytes(shb() + idb() + b"".join(epb(i) for i in range(5)) + shb()[:20])
    size = path.stat().st_size
    for part in (1, 64, 10**6):
        assert all(s.start <= s.stop == size or s.start <= s.stop < size for s in split_capture(path, part))
        assert all(s.start <= size for s in split_capture(path, part))


# -- item 4: splitting keeps the interface budget and a bound on the prefixes it copies ---------
def test_splitting_keeps_the_interface_budget(tmp_path):
    n = INTERFACE_BUDGET // INTERFACE_COST + 1000
    path = tmp_path / "idbs.pcapng"
    path.write_bytes(shb() + idb() + epb(0) + idb() * n + epb(1))
    spans = split_capture(path, 1)
    most = INTERFACE_BUDGET // INTERFACE_COST
    assert all(len(s.prefix) <= len(shb()) + most * len(idb()) for s in spans)
    with pytest.raises(purepcap.UnsupportedFormatError):
        list(purepcap.open(path))


def test_splitting_interleaved_interface_blocks_bounds_the_prefixes(tmp_path):
    # an interface block before every packet: each span's prefix is one longer than the last
    n = 6000
    path = tmp_path / "interleaved.pcapng"
    with open(path, "wb") as f:
        f.write(shb())
        for i in range(n):
            f.write(idb() + epb(i, iid=i, data=FRAME + bytes(1000)))
    spans = split_capture(path, 1)
    distinct = {id(s.prefix): len(s.prefix) for s in spans}
    assert sum(distinct.values()) <= SPLIT_PREFIX_BUDGET + len(shb()) + n * len(idb())
    # still the same packets, in order, through the spans
    frames = [p.frame for s in spans for p in purepcap.open(path, span=s)]
    assert frames == list(range(1, n + 1))


# -- item 5: the leading interface blocks are read within the budget, in linear time -----------
class _EndlessInterfaces(io.RawIOBase):
    """A section header and then interface blocks without end, made as they are read; it
    fails the test once more than ``limit`` bytes are asked of it."""

    def __init__(self, limit: int) -> None:
        self.head, self.block = shb(), idb()
        self.given = 0
        self.limit = limit

    def read(self, n: int = -1) -> bytes:
        assert self.given <= self.limit, f"read {self.given} bytes of leading interface blocks"
        pos, end = self.given, self.given + n
        out = self.head[pos:end]
        at = max(pos, len(self.head)) - len(self.head)  # offset into the interface blocks
        skip = at % len(self.block)
        want = end - max(pos, len(self.head))
        out += (self.block * ((skip + want) // len(self.block) + 1))[skip:skip + want]
        self.given = end
        return out


def test_leading_interface_blocks_are_read_within_the_budget():
    stream = _EndlessInterfaces(limit=8 * 1024 * 1024)
    head = stream.read(24)
    held, n, idbs = read_pcapng_head(stream.read, head)
    assert idbs == INTERFACE_BUDGET // INTERFACE_COST
    assert n == len(shb()) + idbs * len(idb())


def test_records_and_to_pandas_refuse_too_many_leading_interfaces_as_open_does(tmp_path):
    path = tmp_path / "many.pcapng"
    path.write_bytes(shb() + idb() * (INTERFACE_BUDGET // INTERFACE_COST + 10) + epb(0))
    with pytest.raises(purepcap.UnsupportedFormatError):
        list(purepcap.open(path))
    with pytest.raises(purepcap.UnsupportedFormatError):
        list(purepcap.records(path))
    pytest.importorskip("pandas")
    with pytest.raises(purepcap.UnsupportedFormatError):
        purepcap.to_pandas(path, errors="raise")


# -- item 6: a record longer than a chunk costs the record and one copy of it --------------------
def test_big_records_in_a_compressed_capture_stay_within_twice_their_size(tmp_path):
    pytest.importorskip("pandas")
    rec = 48 * 1024 * 1024
    path = tmp_path / "big.pcap.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, rec, linktypes.DBUS))
        for _ in range(2):
            f.write(struct.pack("<IIII", 1, 0, rec, rec) + bytes(rec))
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        import purepcap, purepcap.dataframe, purepcap._columns
        purepcap.to_pandas({str(ROOT / "fixtures" / "local.pcap")!r})
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        df = purepcap.to_pandas({str(path)!r})
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(len(df), (peak - base) * 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows, grown = map(int, out.stdout.split())
    assert rows == 0
    assert grown <= 2.5 * rec, f"peak grew by {grown / rec:.1f} records"  # (4.4 before the fix)


# -- issue 19: a second section no longer sends the rest of the file to the slow path ----------
def test_a_second_section_keeps_the_fast_walks(tmp_path, monkeypatch):
    pytest.importorskip("numpy")  # one of the walks is _batches'
    from purepcap import _container

    path = tmp_path / "two.pcapng"
    path.write_bytes(shb() + idb() + epb(0) + shb() + idb() + b"".join(epb(i) for i in range(1, 400)))
    calls = []
    real = _container.pcapng_block

    def counting(*a, **kw):
        calls.append(a[2])
        return real(*a, **kw)

    for module in ("purepcap.format", "purepcap._records", "purepcap._batches"):
        monkeypatch.setattr(f"{module}.pcapng_block", counting)
    for read in (lambda: list(purepcap.open(path)), lambda: list(purepcap.records(path)),
                 lambda: purepcap.to_pandas(path) if _has_pandas() else []):
        calls.clear()
        read()
        assert len(calls) <= 4, f"{len(calls)} blocks through the careful step"


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def test_the_block_bound_is_the_containers_own():
    pytest.importorskip("numpy")  # _batches imports it
    from purepcap import _batches, _records, format

    for module in (format, _records, _batches):
        assert "33554432" not in Path(module.__file__).read_text()
    assert MAX_BLOCK == 32 * 1024 * 1024
