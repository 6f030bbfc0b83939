"""Container formats: every pcap and pcapng variant, read back exactly as written."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import subprocess
import sys
import warnings

import pytest
from conftest import needs_tracemalloc

import purepcap
from purepcap import linktypes
from purepcap.errors import (
    DamagedError,
    NotACaptureError,
    PcapError,
    PcapWarning,
    TruncatedError,
    UnsupportedFormatError,
)
from purepcap.format import PcapngWriter, PcapWriter, open_writer, split_capture

T0 = 1_700_000_000_123_456_789
PACKETS = [(T0 + i * 1_000_333, bytes([i % 256]) * (40 + i * 7)) for i in range(20)]


def write_pcap(writer: type = PcapWriter, **kw) -> bytes:
    """PACKETS through ``writer`` (PcapWriter, or PcapngWriter for pcapng)."""
    out = io.BytesIO()
    with writer(out, **kw) as w:
        for t, d in PACKETS:
            w.write((t, d))
    return out.getvalue()


def read_all(source, **kw) -> list[purepcap.Packet]:
    with purepcap.open(source, **kw) as cap:
        return list(cap)


# -- classic pcap ----------------------------------------------------------------------------
@pytest.mark.parametrize("byte_order", ["little", "big"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_round_trip(byte_order: str, nanosecond: bool) -> None:
    raw = write_pcap(byte_order=byte_order, nanosecond=nanosecond, linktype=linktypes.RAW, snaplen=9000)
    with purepcap.open(raw) as cap:
        got = list(cap)
        assert cap.format == "pcap"
        assert cap.version == (2, 4)
        assert cap.byte_order == byte_order
        assert cap.snaplen == 9000
        assert cap.linktype == linktypes.RAW
        assert cap.precision == ("ns" if nanosecond else "us")
        assert cap.clean_end is True
    assert [p.frame for p in got] == list(range(1, 21))
    for p, (t, d) in zip(got, PACKETS):
        assert p.time == (t if nanosecond else t // 1000 * 1000)
        assert p.data == d and p.caplen == len(d) == p.length
        assert p.linktype == linktypes.RAW and p.interface == 0
        assert type(p.data) is bytes


@pytest.mark.parametrize("byte_order", ["little", "big"])
def test_modified_pcap_magic(byte_order: str) -> None:
    raw = write_pcap(byte_order=byte_order, modified=True)
    assert raw[:4] == (b"\x34\xcd\xb2\xa1" if byte_order == "little" else b"\xa1\xb2\xcd\x34")
    got = read_all(raw)
    assert [p.data for p in got] == [d for _, d in PACKETS]
    assert [p.time for p in got] == [t // 1000 * 1000 for t, _ in PACKETS]


def test_six_magics_are_recognised() -> None:
    seen = set()
    for order in ("little", "big"):
        for kw in ({}, {"nanosecond": True}, {"modified": True}):
            raw = write_pcap(byte_order=order, **kw)
            seen.add(raw[:4])
            assert len(read_all(raw)) == len(PACKETS)
    assert len(seen) == 6


def test_original_length_and_truncated_records() -> None:
    out = io.BytesIO()
    with PcapWriter(out, snaplen=96, byte_order="big") as w:
        w.write_packet(T0, b"x" * 96, length=1514)
    (p,) = read_all(out.getvalue())
    assert (p.caplen, p.length) == (96, 1514)


def test_fcs_bits_in_link_type_field() -> None:
    raw = write_pcap(fcs_length=4)
    with purepcap.open(raw) as cap:
        assert cap.linktype == linktypes.EN10MB
        assert cap.fcs_length == 4
        assert len(list(cap)) == len(PACKETS)


def test_reserved_link_type_bits_are_refused() -> None:
    raw = bytearray(write_pcap())
    raw[20:24] = struct.pack("<I", 0x00300001)
    with pytest.raises(UnsupportedFormatError, match="reserved"):
        read_all(bytes(raw))


@pytest.mark.parametrize("minor", [2, 3])
def test_old_versions_swap_lengths_like_libpcap(minor: int) -> None:
    # pre-2.4 writers stored the original length where caplen belongs and vice versa
    head = io.BytesIO()
    PcapWriter(head, version=(2, minor)).flush()
    raw = (head.getvalue() + struct.pack("<IIII", 1, 0, 60, 40) + b"a" * 40
           + struct.pack("<IIII", 2, 0, 40, 60) + b"b" * 40)
    p1, p2 = read_all(raw)
    assert (p1.caplen, p1.length) == (40, 60) and p1.data == b"a" * 40
    assert (p2.caplen, p2.length) == (40, 60) and p2.data == b"b" * 40


def test_version_2_4_does_not_swap() -> None:
    out = io.BytesIO()
    with PcapWriter(out) as w:
        w.write_packet(T0, b"a" * 60, length=40)
    (p,) = read_all(out.getvalue())
    assert (p.caplen, p.length) == (60, 40)


def test_invalid_microsecond_fraction_wraps_like_libpcap() -> None:
    # a fraction of 2**31 microseconds is 2**31 * 1000 ns, which is 0 in 32 bits
    raw = write_pcap()[:24] + struct.pack("<IIII", 100, 2**31, 1, 1) + b"x"
    (p,) = read_all(raw)
    assert p.time == 100 * 10**9


def test_unsupported_major_version() -> None:
    raw = bytearray(write_pcap())
    raw[4:6] = struct.pack("<H", 1)
    with pytest.raises(UnsupportedFormatError, match="major version 1"):
        read_all(bytes(raw))


# -- pcapng --------------------------------------------------------------------------------
@pytest.mark.parametrize("byte_order", ["little", "big"])
@pytest.mark.parametrize("tsresol,tick_ns", [(6, 1000), (9, 1), (3, 10**6), (0x80 | 10, None), (0x80 | 30, None)])
def test_pcapng_round_trip(byte_order: str, tsresol: int, tick_ns: int | None) -> None:
    out = io.BytesIO()
    with PcapngWriter(out, byte_order=byte_order, tsresol=tsresol, name="eth0") as w:
        for t, d in PACKETS:
            w.write((t, d))
    with purepcap.open(out.getvalue()) as cap:
        got = list(cap)
        assert cap.format == "pcapng" and cap.version == (1, 0)
        assert cap.byte_order == byte_order
        assert cap.interfaces[0].name == "eth0"
        assert cap.clean_end is True
    assert len(got) == len(PACKETS)
    for p, (t, d) in zip(got, PACKETS):
        if tick_ns is not None:
            assert p.time == t // tick_ns * tick_ns
        else:  # binary resolution: within one tick, never later
            tick = -(-10**9 // (1 << (tsresol & 0x7F)))
            assert 0 <= t - p.time <= tick + 1  # floored twice: on writing and on reading
        assert p.data == d


def test_pcapng_tsoffset_and_binary_resolution_exactly() -> None:
    out = io.BytesIO()
    with PcapngWriter(out, linktype=None) as w:
        w.add_interface(linktypes.EN10MB, tsresol=0x80 | 20, tsoffset=1_000_000)
        w.write_packet(5 * 10**9 + 2**19 * 0 + 500_000_000 + 1_000_000 * 10**9, b"abc")
    (p,) = read_all(out.getvalue())
    # 5.5 s is exactly representable in 2^-20 s ticks
    assert p.time == 1_000_000 * 10**9 + 5_500_000_000


def test_pcapng_several_interfaces_and_sections() -> None:
    out = io.BytesIO()
    w = PcapngWriter(out, linktype=None, byte_order="little")
    a = w.add_interface(linktypes.EN10MB, name="eth0", tsresol=6)
    b = w.add_interface(linktypes.RAW, name="tun0", tsresol=9)
    w.write_packet(T0, b"e1", interface=a)
    w.write_packet(T0 + 1, b"r1", interface=b)
    w.new_section(byte_order="big")
    c = w.add_interface(linktypes.LINUX_SLL, name="any", snaplen=128)
    w.write_packet(T0 + 2, b"s1", interface=c)
    w.write_simple(b"simple")
    w.write_obsolete(T0 + 3, b"old", interface=c)
    w.close()
    with purepcap.open(out.getvalue()) as cap:
        got = list(cap)
        assert cap.sections == 2
        assert [i.name for i in cap.interfaces] == ["eth0", "tun0", "any"]
        assert [i.section for i in cap.interfaces] == [0, 0, 1]
        assert cap.byte_order == "little"  # of the first section
    assert [(p.frame, p.linktype, p.interface, p.data) for p in got] == [
        (1, linktypes.EN10MB, 0, b"e1"), (2, linktypes.RAW, 1, b"r1"),
        (3, linktypes.LINUX_SLL, 2, b"s1"), (4, linktypes.LINUX_SLL, 2, b"simple"),
        (5, linktypes.LINUX_SLL, 2, b"old")]
    assert got[0].time == T0 // 1000 * 1000
    assert got[1].time == T0 + 1
    assert got[3].time is None and (got[3].caplen, got[3].length) == (6, 6)


@pytest.mark.parametrize("byte_order", ["little", "big"])
def test_pcapng_high_time_word_is_not_taken_for_an_interface(byte_order: str) -> None:
    # The EPB run compares an EPB's interface id and the top 32 bits of its timestamp as
    # one u64. These times put a valid interface number in the top word and a 0 or 1
    # interface id beside it, so a key split in the wrong byte order reads the wrong
    # interface (another resolution) instead of falling back to the careful path.
    out = io.BytesIO()
    w = PcapngWriter(out, linktype=None, byte_order=byte_order)
    us = w.add_interface(linktypes.EN10MB, tsresol=6)
    ns = w.add_interface(linktypes.EN10MB, tsresol=9)
    times = [((1 << 32) + 7) * 1000, ((1 << 32) + 9) * 1000, 5, 6, ((1 << 32) + 11) * 1000]
    ifaces = [us, us, ns, ns, us]
    for t, i in zip(times, ifaces):
        w.write_packet(t, b"x" * 60, interface=i)
    w.close()
    got = read_all(out.getvalue())
    assert [(p.time, p.interface) for p in got] == list(zip(times, ifaces))


def test_simple_packet_block_capped_by_snaplen() -> None:
    out = io.BytesIO()
    with PcapngWriter(out, snaplen=4) as w:
        w.write_simple(b"abcdefgh")
    (p,) = read_all(out.getvalue())
    assert (p.data, p.caplen, p.length) == (b"abcd", 4, 8)


def test_unknown_blocks_and_options_are_skipped() -> None:
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_block(4, b"\x00\x00\x00\x00")  # empty name resolution block
        w.write_block(0x0BAD, b"\x00\x00\x7b\x2a" + b"custom!!")
        w.write_block(5, struct.pack("<III", 0, 1, 2))  # interface statistics
        w.write_block(0x12345678, b"unknown")
        w.write_packet(T0, b"pkt")
    assert [p.data for p in read_all(out.getvalue())] == [b"pkt"]


def test_pcapng_interface_description_and_options() -> None:
    out = io.BytesIO()
    with PcapngWriter(out, linktype=None) as w:
        w.add_interface(linktypes.EN10MB, name="en0", description="Wi-Fi", fcslen=4, snaplen=1500)
    with purepcap.open(out.getvalue()) as cap:
        (iface,) = cap.interfaces
        assert (iface.name, iface.description, iface.fcslen, iface.snaplen) == ("en0", "Wi-Fi", 4, 1500)
        assert cap.snaplen == 1500 and cap.linktype == linktypes.EN10MB
        assert cap.describe()["interfaces"][0]["linktype_name"] == "EN10MB"


# -- bad input ----------------------------------------------------------------------------
def test_not_a_capture_names_its_first_bytes() -> None:
    with pytest.raises(NotACaptureError, match="starts with 3c 68 74 6d") as info:
        purepcap.open(b"<html><body>nope</body></html>")
    assert info.value.offset == 0 and isinstance(info.value, ValueError)


def test_empty_input() -> None:
    with pytest.raises(NotACaptureError, match="empty"):
        purepcap.open(b"")


def test_lying_record_length_is_named_with_offset_and_frame() -> None:
    raw = write_pcap(snaplen=65535)
    good = raw[:24]
    off = 24
    for _t, d in PACKETS[:17]:
        off += 16 + len(d)
    lie = raw[:off] + struct.pack("<IIII", 1, 0, 0xFFFFFFFF, 0xFFFFFFFF) + b"x" * 40
    got = []
    with pytest.raises(DamagedError) as info:
        with purepcap.open(lie) as cap:
            for p in cap:
                got.append(p)
    assert len(got) == 17 and good
    e = info.value
    assert (e.offset, e.frame) == (off, 17)
    assert f"record at offset {off} (after frame 17) claims 4294967295 bytes, more than the snaplen 65535" in str(e)


def test_lying_length_strict_false_warns_and_stops() -> None:
    raw = write_pcap()[:24 + 16 + 40] + struct.pack("<IIII", 1, 0, 10**9, 10**9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with purepcap.open(raw, strict=False) as cap:
            got = list(cap)
            assert cap.clean_end is False and isinstance(cap.error, DamagedError)
    assert len(got) == 1
    assert any(issubclass(w.category, PcapWarning) for w in caught)


def test_pcapng_zero_length_block_is_rejected() -> None:
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_packet(T0, b"ok")
    raw = out.getvalue() + struct.pack("<II", 6, 0) + b"\x00" * 24
    got = []
    with pytest.raises(DamagedError, match=r"pcapng block at offset \d+ has length 0"):
        for p in purepcap.open(raw):
            got.append(p)
    assert [p.data for p in got] == [b"ok"]


def test_pcapng_length_not_multiple_of_four() -> None:
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_packet(T0, b"ok")
    n = len(out.getvalue())
    raw = out.getvalue() + struct.pack("<II", 6, 7) + b"\x00" * 24
    with pytest.raises(DamagedError, match=f"pcapng block at offset {n} has length 7"):
        list(purepcap.open(raw))


def _pcapng_with_a_misaligned_epb() -> tuple[bytes, int]:
    """Three good EPBs, then one whose length (42) is not a multiple of 4 although its
    trailer agrees, then two good EPBs at the offset that length leads to; and where
    the misaligned block starts."""
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        for k in range(3):
            w.write_packet(T0 + k, b"good%d" % k)
    n = len(out.getvalue())
    data = b"x" * 10
    bad = struct.pack("<IIIIIII", 6, 42, 0, 0, 0, len(data), len(data)) + data + struct.pack("<I", 42)
    tail = io.BytesIO()
    with PcapngWriter(tail) as w:
        w.write_packet(T0, b"after1")
        w.write_packet(T0, b"after2")
    after = tail.getvalue()[-80:]  # the file's two EPBs, 40 bytes each (28 + 8 of data + 4)
    assert struct.unpack_from("<II", after) == (6, 40)
    return out.getvalue() + bad + after, n


def test_pcapng_misaligned_block_inside_a_run_of_packets_is_rejected() -> None:
    # The EPB run must refuse a length that is not a multiple of 4 even when the block's
    # trailer agrees and good blocks follow it: the careful path reports it.
    raw, at = _pcapng_with_a_misaligned_epb()
    got = []
    with pytest.raises(DamagedError, match=f"pcapng block at offset {at} has length 42"):
        for p in purepcap.open(raw):
            got.append(p.data)
    assert got == [b"good0", b"good1", b"good2"]


def test_pcapng_bad_option_length_in_idb() -> None:
    o = "<"
    shb = struct.pack(o + "IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack(o + "I", 28)
    body = struct.pack(o + "HHI", 1, 0, 0) + struct.pack(o + "HH", 2, 200) + b"abcd"
    idb = struct.pack(o + "II", 1, 12 + len(body)) + body + struct.pack(o + "I", 12 + len(body))
    with pytest.raises(DamagedError, match="option 2 of length 200"):
        list(purepcap.open(shb + idb))


def test_pcapng_packet_naming_missing_interface() -> None:
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_packet(T0, b"ok")
    raw = bytearray(out.getvalue())
    epb_at = raw.index(struct.pack("<I", 6))
    raw[epb_at + 8:epb_at + 12] = struct.pack("<I", 5)
    with pytest.raises(DamagedError, match="names interface 5"):
        list(purepcap.open(bytes(raw)))


def test_pcapng_strict_false_skips_a_damaged_block_found_by_its_length() -> None:
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        for t, d in PACKETS[:3]:
            w.write((t, d))
    raw = bytearray(out.getvalue())
    # damage the second EPB's interface id but leave its length intact
    epbs = [i for i in range(len(raw) - 4) if raw[i:i + 4] == struct.pack("<I", 6)
            and struct.unpack_from("<I", raw, i + 4)[0] in (32 + ((len(d) + 3) // 4) * 4 for _, d in PACKETS[:3])]
    raw[epbs[1] + 8:epbs[1] + 12] = b"\xff\xff\xff\xff"
    with pytest.warns(PcapWarning, match="skipped that block"):
        got = read_all(bytes(raw), strict=False)
    assert [p.data for p in got] == [PACKETS[0][1], PACKETS[2][1]]
    assert [p.frame for p in got] == [1, 2]
    with pytest.raises(DamagedError):
        read_all(bytes(raw))


def test_unknown_pcapng_version() -> None:
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_packet(T0, b"x")
    raw = bytearray(out.getvalue())
    raw[12:14] = struct.pack("<H", 2)
    with pytest.raises(UnsupportedFormatError, match="unknown version 2.0"):
        purepcap.open(bytes(raw))


def _block_ends(raw: bytes) -> set[int]:
    ends, pos = set(), 0
    while pos + 8 <= len(raw):
        pos += struct.unpack_from("<I", raw, pos + 4)[0]
        ends.add(pos)
    return ends


@pytest.mark.parametrize("maker", ["pcap", "pcapng"])
def test_truncation_at_every_offset(maker: str) -> None:
    out = io.BytesIO()
    w = PcapWriter(out) if maker == "pcap" else PcapngWriter(out)
    w.flush()
    header_ends = {24} if maker == "pcap" else _block_ends(out.getvalue())
    ends = []
    for t, d in PACKETS[:4]:
        w.write((t, d))
        w.flush()
        ends.append(len(out.getvalue()))
    raw = out.getvalue()
    for cut in range(len(raw)):
        complete = sum(1 for e in ends if e <= cut)
        got = []
        try:
            with purepcap.open(raw[:cut]) as cap:
                for p in cap:
                    got.append(p)
        except PcapError as e:
            assert isinstance(e, (TruncatedError, NotACaptureError)), (cut, e)
            assert e.offset is not None
        else:
            assert cut in ends or cut in header_ends, cut  # only a cut on a boundary reads cleanly
        assert len(got) == complete, cut


@needs_tracemalloc
def test_huge_claimed_packet_allocates_nothing_big() -> None:
    import tracemalloc
    raw = write_pcap()[:24] + struct.pack("<IIII", 1, 0, 200_000, 4_000_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(TruncatedError):
            list(purepcap.open(raw))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


# -- sources ------------------------------------------------------------------------------
def test_sources_path_pathlike_file_bytes_memoryview(tmp_path) -> None:
    raw = write_pcap()
    f = tmp_path / "a.pcap"
    f.write_bytes(raw)
    expected = [p.data for p in read_all(raw)]
    assert [p.data for p in read_all(str(f))] == expected
    assert [p.data for p in read_all(f)] == expected
    assert [p.data for p in read_all(memoryview(raw))] == expected
    assert [p.data for p in read_all(bytearray(raw))] == expected
    with open(f, "rb") as fh:
        assert [p.data for p in read_all(fh)] == expected
        assert not fh.closed  # the caller's file stays the caller's


class _Trickle(io.RawIOBase):
    """A non-seekable stream that hands out at most 7 bytes per read, like a slow pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        n = 7 if n is None or n < 0 else min(n, 7)
        out, self._data = self._data[:n], self._data[n:]
        return out


@pytest.mark.parametrize("maker", ["pcap", "pcapng"])
def test_non_seekable_trickling_pipe(maker: str) -> None:
    out = io.BytesIO()
    with (PcapWriter(out) if maker == "pcap" else PcapngWriter(out)) as w:
        for item in PACKETS:
            w.write(item)
    assert [p.data for p in read_all(_Trickle(out.getvalue()))] == [d for _, d in PACKETS]


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_input(compress) -> None:
    raw = write_pcap()
    with purepcap.open(compress(raw)) as cap:
        assert [p.data for p in cap] == [d for _, d in PACKETS]
        assert cap.compression in ("gzip", "bzip2", "xz")


def test_zstd_input() -> None:
    zstandard = pytest.importorskip("zstandard")
    raw = write_pcap()
    with purepcap.open(zstandard.ZstdCompressor().compress(raw)) as cap:
        assert cap.compression == "zstd"
        assert len(list(cap)) == len(PACKETS)


def test_zstd_without_extra_names_it() -> None:
    code = ("import sys; sys.modules['zstandard'] = None\n"
            "import purepcap\n"
            "try:\n    purepcap.open(bytes.fromhex('28b52ffd') + bytes(20))\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert "pip install 'purepcap[zstd]'" in out.stdout


def test_stdin_dash() -> None:
    raw = write_pcap()
    code = "import purepcap\nwith purepcap.open('-') as c: print(sum(1 for _ in c))"
    out = subprocess.run([sys.executable, "-c", code], input=raw, capture_output=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == str(len(PACKETS)).encode()


def test_fsspec_memory_url() -> None:
    fsspec = pytest.importorskip("fsspec")
    raw = write_pcap()
    with fsspec.open("memory://purepcap-test/a.pcap", "wb") as f:
        f.write(gzip.compress(raw))
    assert len(read_all("memory://purepcap-test/a.pcap")) == len(PACKETS)


def test_path_is_closed_after_reading(tmp_path) -> None:
    f = tmp_path / "a.pcap"
    f.write_bytes(write_pcap())
    cap = purepcap.open(f)
    raw_file = cap._closers[-1]
    list(cap)
    cap.close()
    assert raw_file.closed


@pytest.mark.parametrize("cut", [0, 3], ids=["whole", "cut-short"])
@pytest.mark.parametrize("errors", ["raise", "warn", "ignore"])
@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
def test_a_walk_that_ends_closes_the_file_it_opened(tmp_path, ng: bool, errors: str, cut: int) -> None:
    # list(purepcap.open(path)) without a with-block: the file is closed when the walk
    # ends (cleanly, or at damage, raised or not), not whenever the collector runs
    raw = write_pcap(PcapngWriter if ng else PcapWriter)
    f = tmp_path / "a.cap"
    f.write_bytes(raw[:len(raw) - cut])
    cap = purepcap.open(f, errors=errors)
    raw_file = cap._closers[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PcapWarning)
        try:
            got = list(cap)
        except PcapError:
            got = None
    assert raw_file.closed
    assert (got is None) == (cut > 0 and errors == "raise")
    assert cap.clean_end is (cut == 0)


@pytest.mark.parametrize("compress", [None, gzip.compress, bz2.compress, lzma.compress])
def test_a_walk_that_ends_leaves_a_file_object_it_was_given_open(compress) -> None:
    raw = write_pcap()
    given = io.BytesIO(compress(raw) if compress else raw)
    assert len(list(purepcap.open(given))) == len(PACKETS)
    assert not given.closed


# -- writers ------------------------------------------------------------------------------
def test_writer_from_packets_keeps_everything(tmp_path) -> None:
    src = tmp_path / "src.pcap"
    with PcapWriter(src, nanosecond=True, snaplen=100) as w:
        w.write_packet(T0, b"a" * 100, length=1500)
        w.write_packet(T0 + 5, b"b" * 10)
    for name in ("copy.pcap", "copy.pcapng"):
        with purepcap.open(src) as cap, open_writer(tmp_path / name, interfaces=cap.interfaces) as w:
            for p in cap:
                w.write(p)
        a, b = read_all(src), read_all(tmp_path / name)
        assert [(p.time, p.caplen, p.length, p.data, p.linktype) for p in a] == \
               [(p.time, p.caplen, p.length, p.data, p.linktype) for p in b]


def test_writer_refuses_times_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO()).write_packet(-1, b"")
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO()).write_packet(2**32 * 10**9, b"")


# -- spans ---------------------------------------------------------------------------------
@pytest.mark.parametrize("maker", ["pcap", "pcapng"])
def test_split_capture_spans_cover_every_packet_once(tmp_path, maker: str) -> None:
    path = tmp_path / f"big.{maker}"
    if maker == "pcap":
        w = PcapWriter(path, nanosecond=True)
    else:
        w = PcapngWriter(path, linktype=None)
        w.add_interface(linktypes.EN10MB, name="a")
        w.add_interface(linktypes.RAW, name="b")
    items = [(T0 + i, bytes([i % 251]) * (20 + i % 300)) for i in range(600)]
    for i, item in enumerate(items):
        if maker == "pcapng" and i == 300:
            w.new_section(byte_order="big")
            w.add_interface(linktypes.LINUX_SLL, name="c")
        if maker == "pcapng":
            w.write(item, interface=i % 2 if i < 300 else 0)
        else:
            w.write(item)
    w.close()
    whole = read_all(path)
    spans = split_capture(path, part_bytes=10_000)
    assert len(spans) > 5
    parts = []
    for span in spans:
        parts.extend(read_all(path, span=span))
    assert parts == whole
    assert [p.frame for p in parts] == list(range(1, 601))


def test_damaged_gzip_delivers_packets_then_a_pcap_error() -> None:
    raw = gzip.compress(write_pcap() * 1)
    cut = raw[: len(raw) - 30]
    got = []
    with pytest.raises(TruncatedError) as info:
        with purepcap.open(cut) as cap:
            for p in cap:
                got.append(p)
    assert info.value.frame == len(got)
    assert "gzip" in str(info.value)


def test_pcapng_packet_block_whose_trailing_length_disagrees() -> None:
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_packet(T0, b"a" * 8)
        w.write_packet(T0, b"b" * 8)
    raw = bytearray(out.getvalue())
    first = raw.index(struct.pack("<I", 6))
    blen = struct.unpack_from("<I", raw, first + 4)[0]
    raw[first + 4:first + 8] = struct.pack("<I", blen + 4)  # the leading length lies by 4
    got = []
    with pytest.raises(DamagedError, match=f"pcapng block at offset {first} has length {blen + 4} at its start"):
        for p in purepcap.open(bytes(raw)):
            got.append(p)
    assert got == []


def test_public_submodules_are_attributes_of_the_package() -> None:
    code = ("import purepcap\n"
            "assert callable(purepcap.live.capture) and callable(purepcap.live.interfaces)\n"
            "assert callable(purepcap.build.ipv4) and callable(purepcap.headers.decode)\n"
            "assert callable(purepcap.filter.compile_bpf) and callable(purepcap.records)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "ok", out.stderr


def test_obsolete_and_simple_blocks_between_packets_keep_each_packets_interface() -> None:
    out = io.BytesIO()
    with PcapngWriter(out, linktype=None) as w:
        w.add_interface(linktypes.EN10MB)
        w.add_interface(linktypes.NULL)
        w.write_packet(T0, b"n1", interface=1)
        w.write_obsolete(T0, b"e1", interface=0)
        w.write_packet(T0, b"n2", interface=1)
        w.write_simple(b"e2")
        w.write_packet(T0, b"n3", interface=1)
    got = [(p.data, p.linktype, p.interface) for p in read_all(out.getvalue())]
    assert got == [(b"n1", 0, 1), (b"e1", 1, 0), (b"n2", 0, 1), (b"e2", 1, 0), (b"n3", 0, 1)]


class _Flood(io.RawIOBase):
    """A stream that answers its first read as asked and every later one with all it
    holds, whatever it was asked for: the reader then holds blocks longer than the block
    bound in one buffer, which no honest stream makes it do."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._asked = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        size = n if not self._asked and n is not None and n >= 0 else len(self._data)
        self._asked = True
        out, self._data = self._data[:size], self._data[size:]
        return out


@pytest.mark.parametrize("flood", [False, True])
@pytest.mark.parametrize("extra,ok", [(-4, True), (0, True), (4, False)])
def test_pcapng_packet_block_at_the_block_bound(extra: int, ok: bool, flood: bool) -> None:
    # 32 MiB is the largest block read; the fast EPB run leaves a block of exactly that
    # size to the careful path, which must still deliver it (and refuse one 4 bytes more),
    # also when a stream hands out all the rest of the file at once
    bound = 32 * 1024 * 1024
    buf = io.BytesIO()
    with PcapngWriter(buf) as w:
        w.write_packet(1, b"a" * 60)
        w.write_packet(2, b"b" * (bound + extra - 32))
        w.write_packet(3, b"c" * 60)
    raw: bytes | _Flood = buf.getvalue()
    if flood:
        raw = _Flood(raw)
    if ok:
        assert [(p.frame, p.caplen) for p in purepcap.open(raw)] == [(1, 60), (2, bound + extra - 32), (3, 60)]
    else:
        got = []
        with pytest.raises(DamagedError, match=f"has length {bound + 4}"):
            for p in purepcap.open(raw):
                got.append(p.frame)
        assert got == [1]
