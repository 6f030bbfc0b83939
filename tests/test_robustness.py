# Hostile input: whatever the bytes, only PcapError escapes, every packet before the
# damage is delivered first, and time and memory stay bounded by the format's limits
# rather than by what a length field claims (issue 9).
#
# Captures are made with our own writers (both byte orders, several sections and
# interfaces, simple and obsolete packet blocks) and then damaged on purpose; the
# expected good frames are known because we know where every block ends.
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import struct
import warnings

import pytest
from conftest import needs_tracemalloc

import purepcap
from purepcap import DamagedError, PcapError, PcapWarning, TruncatedError, UnsupportedFormatError
from purepcap.format import CHUNK_SIZE, PcapngWriter, PcapWriter

T0 = 1_700_000_000_123_456_000


def read_all(raw: bytes, *, strict: bool = True) -> tuple[list, PcapError | None, list]:
    """Packets delivered, the PcapError that ended them (or None), warnings raised."""
    got: list = []
    err = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with purepcap.open(raw, strict=strict) as cap:
                for p in cap:
                    got.append(p)
        except PcapError as e:
            err = e
    return got, err, [w for w in caught if issubclass(w.category, PcapWarning)]


def small_pcap(n: int = 300, size: int = 200) -> bytes:
    rnd = random.Random(n)  # incompressible payloads: compressed blocks stay small
    out = io.BytesIO()
    with PcapWriter(out) as w:
        for i in range(n):
            w.write_packet(T0 + i, rnd.randbytes(size))
    return out.getvalue()


# -- compressed input -------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [gzip.compress, lambda b: bz2.compress(b, 1), lambda b: lzma.compress(b, preset=0)],
                         ids=["gzip", "bz2", "xz"])
def test_cut_compressed_stream_delivers_the_packets_before_the_cut(compress) -> None:
    # Regression: one failing read() of the decompressor threw away every byte it had
    # decompressed, so a cut .gz gave 0 packets instead of those before the cut.
    raw = small_pcap(2000)  # several 100 kB bzip2 blocks: a cut one still leaves whole ones
    packed = compress(raw)
    cut = packed[: len(packed) * 3 // 4]
    import zlib
    if compress is gzip.compress:
        avail = len(zlib.decompressobj(31).decompress(cut))
    elif packed.startswith(b"BZh"):
        avail = len(bz2.BZ2Decompressor().decompress(cut))
    else:
        avail = len(lzma.LZMADecompressor().decompress(cut))
    whole_records = max(0, (avail - 24) // 216)
    got, err, _ = read_all(cut)
    assert isinstance(err, TruncatedError), err
    assert len(got) == whole_records > 0
    assert err.offset is not None and str(err.offset) in str(err)
    got2, err2, warned = read_all(cut, strict=False)
    assert len(got2) == whole_records and err2 is None and len(warned) == 1


def test_zstd_frames_are_all_read_and_a_cut_one_is_noticed() -> None:
    # Regression: zstandard's stream reader stopped after the first frame of a
    # multi-frame .zst (pzstd writes those, and so does appending to a .zst) and ended
    # a cut-short frame as if it were whole: packets were lost without a word.
    zstandard = pytest.importorskip("zstandard")
    raw = small_pcap(2000)
    half = 24 + 1000 * 216  # the first frame ends on a record boundary
    z = zstandard.ZstdCompressor()
    two_frames = z.compress(raw[:half]) + z.compress(raw[half:])
    got, err, _ = read_all(two_frames)
    assert err is None and len(got) == 2000
    cut = two_frames[: len(two_frames) - 5000]  # inside the second frame
    avail = len(zstandard.ZstdDecompressor().decompressobj().decompress(z.compress(raw[half:])[:-5000]))
    got, err, _ = read_all(cut)
    assert isinstance(err, TruncatedError) and "zstd" in str(err)
    assert len(got) == 1000 + avail // 216
    assert str(err.offset) in str(err)


def test_damaged_gzip_crc_is_a_pcap_error_after_every_packet() -> None:
    packed = bytearray(gzip.compress(small_pcap()))
    packed[-8] ^= 0xFF  # the CRC32 in the trailer
    got, err, _ = read_all(bytes(packed))
    assert len(got) == 300
    assert isinstance(err, DamagedError) and "CRC" in str(err)


# -- bounded memory and time: length fields are not believed past the format's limits ----------
def pcap_header(snaplen: int = 65535, linktype: int = 1) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


@needs_tracemalloc
def test_huge_snaplen_does_not_license_a_huge_record(tmp_path) -> None:
    # Regression: the record bound was max(snaplen, ...), so a header claiming a 4 GiB
    # snaplen let one record be gathered chunk by chunk (quadratic copying, the whole
    # file in memory). Records are now bounded by 32 MiB whatever the snaplen says.
    path = tmp_path / "huge.pcap"
    with open(path, "wb") as f:
        f.write(pcap_header(snaplen=0xFFFFFFFF) + struct.pack("<IIII", 1, 0, 0xFFFFFFF0, 0xFFFFFFF0))
        f.write(b"\x00" * (8 * CHUNK_SIZE))
    import tracemalloc
    tracemalloc.start()
    try:
        got, err, _ = read_all(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [] and isinstance(err, DamagedError) and err.offset == 24
    assert "claims 4294967280 bytes" in str(err) and "offset 24" in str(err)
    assert peak < 2.5 * CHUNK_SIZE, peak  # not the 32 MiB that follow the lying header


def test_big_snaplen_still_reads_big_records() -> None:
    # an honest 1 MB record in a file whose snaplen allows it (above the 256 kB default)
    out = io.BytesIO()
    with PcapWriter(out, snaplen=4_000_000) as w:
        w.write_packet(T0, b"\xab" * 1_000_000)
    got, err, _ = read_all(out.getvalue())
    assert err is None and [p.caplen for p in got] == [1_000_000]


@needs_tracemalloc
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_streaming_holds_about_one_chunk(tmp_path, fmt: str) -> None:
    # Regression: the readers read the next chunk before parsing the opening one and
    # kept the parsed chunk alive while reading, so 4-5 chunks were alive at once.
    # Now: the unparsed rest of one chunk plus the next one, never the file.
    rnd = random.Random(7)
    payloads = [rnd.randbytes(rnd.randrange(3000, 5000)) for _ in range(64)]
    path = tmp_path / f"big.{fmt}"
    writer = PcapWriter if fmt == "pcap" else PcapngWriter
    n = 6_000  # about 25 MB: six chunks
    with writer(path) as w:
        for i in range(n):
            w.write_packet(T0 + i, payloads[i % 64])
    assert path.stat().st_size > 5 * CHUNK_SIZE
    import tracemalloc
    tracemalloc.start()
    try:
        count = 0
        with purepcap.open(path) as cap:
            for _ in cap:
                count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 2.5 * CHUNK_SIZE, f"peak {peak / CHUNK_SIZE:.2f} chunks"


@pytest.mark.parametrize("section", [0, 1])
def test_bad_byte_order_magic_offset_is_the_one_in_the_message(section: int) -> None:
    # Regression (found by test_robustness_properties): the error said "section header
    # at offset 0" but carried offset 8, the magic's own offset, for the first section.
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_packet(T0, b"first")
        w.flush()
        second = len(out.getvalue())
        w.new_section()
        w.add_interface(1)
        w.write_packet(T0, b"second")
    raw = bytearray(out.getvalue())
    at = 0 if section == 0 else second
    raw[at + 8] ^= 0x01
    got, err, _ = read_all(bytes(raw))
    assert len(got) == section
    assert isinstance(err, DamagedError) and err.offset == at
    assert f"offset {at} " in str(err)


# -- strict=False reads past a damaged pcapng block found again by its length --------------------
def two_section_capture() -> tuple[bytes, dict[str, int]]:
    """A little-endian section then a big-endian one; returns the bytes and the offsets
    of the blocks the tests damage."""
    out = io.BytesIO()
    at: dict[str, int] = {}
    with PcapngWriter(out) as w:
        w.write_packet(T0, b"le-1")
        w.flush()
        at["le-2"] = len(out.getvalue())
        w.write_packet(T0 + 1, b"le-2")
        w.write_packet(T0 + 2, b"le-3")
        w.flush()
        at["nrb"] = len(out.getvalue())
        w.write_block(4, struct.pack("<HH", 1, 8) + b"\x0a\x00\x00\x01ab\x00\x00" + struct.pack("<HH", 0, 0))
        w.new_section("big")
        w.add_interface(1)
        w.flush()
        at["idb-2"] = len(out.getvalue())
        w.add_interface(101, name="tun0")
        w.write_packet(T0 + 3, b"be-1")
        w.flush()
        at["be-on-idb-2"] = len(out.getvalue())
        w.write_packet(T0 + 4, b"be-2", interface=1)
        w.write_simple(b"be-3")
        w.flush()
        at["pb"] = len(out.getvalue())
        w.write_obsolete(T0 + 5, b"be-4")
        w.write_packet(T0 + 6, b"be-5")
    return out.getvalue(), at


def datas(packets) -> list[bytes]:
    return [p.data for p in packets]


def test_strict_false_skips_a_damaged_packet_block_in_a_big_endian_section() -> None:
    raw, at = two_section_capture()
    bad = bytearray(raw)
    bad[at["pb"] + 8:at["pb"] + 10] = struct.pack(">H", 9)  # obsolete PB names interface 9
    got, err, _ = read_all(bytes(bad))
    assert datas(got) == [b"le-1", b"le-2", b"le-3", b"be-1", b"be-2", b"be-3"]
    assert isinstance(err, DamagedError) and err.offset == at["pb"] and f"offset {at['pb']}" in str(err)
    got, err, warned = read_all(bytes(bad), strict=False)
    assert err is None and len(warned) == 1 and f"offset {at['pb']}" in str(warned[0].message)
    assert datas(got) == [b"le-1", b"le-2", b"le-3", b"be-1", b"be-2", b"be-3", b"be-5"]


def test_strict_false_skips_a_damaged_interface_and_the_packets_that_name_it() -> None:
    raw, at = two_section_capture()
    bad = bytearray(raw)
    # the second IDB's if_name option claims more bytes than its block holds
    opt = at["idb-2"] + 16
    assert struct.unpack_from(">H", bad, opt)[0] == 2  # if_name
    bad[opt + 2:opt + 4] = struct.pack(">H", 400)
    got, err, warned = read_all(bytes(bad), strict=False)
    assert err is None
    assert datas(got) == [b"le-1", b"le-2", b"le-3", b"be-1", b"be-3", b"be-4", b"be-5"]
    messages = [str(w.message) for w in warned]
    assert len(messages) == 2, messages  # the interface, then the one packet naming it
    assert f"offset {at['idb-2']}" in messages[0] and "option 2 of length 400" in messages[0]
    assert f"offset {at['be-on-idb-2']}" in messages[1] and "names interface 1" in messages[1]


def test_strict_false_skips_a_block_whose_trailing_length_disagrees() -> None:
    # Regression: the block after the damaged one was checked in the damaged section's
    # byte order, so a following big-endian section header looked implausible and
    # strict=False stopped instead of reading the next section.
    raw, at = two_section_capture()
    bad = bytearray(raw)
    nrb_len = struct.unpack_from("<I", bad, at["nrb"] + 4)[0]
    bad[at["nrb"] + nrb_len - 4:at["nrb"] + nrb_len] = struct.pack("<I", 12345)
    got, err, _ = read_all(bytes(bad))
    assert len(got) == 3 and isinstance(err, DamagedError) and err.offset == at["nrb"]
    got, err, warned = read_all(bytes(bad), strict=False)
    assert err is None and len(warned) == 1 and len(got) == 8


def test_strict_false_stops_cleanly_when_the_length_leads_nowhere() -> None:
    raw, at = two_section_capture()
    bad = bytearray(raw)
    bad[at["le-2"] + 8:at["le-2"] + 12] = struct.pack("<I", 7)  # EPB names interface 7 ...
    bad[at["le-2"] + 4:at["le-2"] + 8] = struct.pack("<I", 44)  # ... and its length lands mid-block
    with purepcap.open(bytes(bad), strict=False) as cap:
        with pytest.warns(PcapWarning, match=f"offset {at['le-2']}"):
            got = list(cap)
        assert datas(got) == [b"le-1"]
        assert cap.clean_end is False and isinstance(cap.error, DamagedError)
        assert cap.error.offset == at["le-2"]


# -- truncation at every byte offset ----------------------------------------------------------------
def block_ends(raw: bytes) -> set[int]:
    """Every offset at which a pcapng file may end cleanly (each section in its order)."""
    ends, pos, order = set(), 0, "<"
    while pos + 12 <= len(raw):
        if raw[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if raw[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        pos += struct.unpack_from(order + "I", raw, pos + 4)[0]
        ends.add(pos)
    return ends


def pcap_variants() -> dict[str, tuple[bytes, set[int]]]:
    out = {}
    for name, kw in {"be-ns": {"byte_order": "big", "nanosecond": True}, "modified": {"modified": True},
                     "v2.2": {"version": (2, 2)}}.items():
        f = io.BytesIO()
        with PcapWriter(f, **kw) as w:
            w.flush()
            ends = {len(f.getvalue())}
            for i in range(3):
                w.write_packet(T0 + i, bytes([i]) * (5 + i), length=9 + i)
                w.flush()
                ends.add(len(f.getvalue()))
        out[name] = (f.getvalue(), ends)
    raw, _ = two_section_capture()
    out["pcapng-two-sections"] = (raw, block_ends(raw))
    return out


@pytest.mark.parametrize("name", sorted(pcap_variants()))
def test_truncation_at_every_offset_gives_packets_then_a_pcap_error(name: str) -> None:
    raw, clean_ends = pcap_variants()[name]
    whole, err, _ = read_all(raw)
    assert err is None
    n_packets_at = {}
    for cut in range(len(raw) + 1):
        got, err, _ = read_all(raw[:cut])  # only a PcapError may end it: read_all lets others escape
        assert got == whole[:len(got)], cut
        if cut in clean_ends or cut == len(raw):
            assert err is None, (cut, err)
        else:
            assert err is not None and err.frame == len(got) and err.offset is not None, cut
            assert err.offset <= cut
        n_packets_at[cut] = len(got)
    counts = [n_packets_at[c] for c in sorted(n_packets_at)]
    assert counts == sorted(counts) and counts[-1] == len(whole)  # never fewer for a longer prefix


def _zstd(data: bytes) -> bytes:
    return pytest.importorskip("zstandard").ZstdCompressor().compress(data)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, _zstd],
                         ids=["gzip", "bz2", "xz", "zstd"])
def test_compressed_truncation_at_every_offset_raises_only_pcap_errors(compress) -> None:
    raw, _ = two_section_capture()
    packed = compress(raw)
    whole = read_all(raw)[0]
    for cut in range(len(packed)):
        got, err, _ = read_all(packed[:cut])
        assert got == whole[:len(got)], cut
        assert err is not None, cut  # any cut of a compressed stream is damage


def test_records_over_every_truncation_raise_only_pcap_errors() -> None:
    records = pytest.importorskip("purepcap._records").records
    raw, _ = two_section_capture()
    for cut in range(len(raw) + 1):
        try:
            for row in records(raw[:cut], payload=True):
                assert isinstance(row, dict)
        except PcapError:
            pass


# -- interfaces are kept for the whole file: their number and options are bounded ------------------
def idb(options: bytes = b"") -> bytes:
    body = struct.pack("<HHI", 1, 0, 0) + options
    return struct.pack("<II", 1, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def test_millions_of_interfaces_are_refused_not_kept() -> None:
    # Regression: every IDB was kept, at ~20 times its 20 bytes, so a file of IDBs
    # grew memory without bound (a 100 MB file: 2 GB). At most ~32,000 are kept now;
    # tests/test_robustness_resources.py reads a million under RLIMIT_AS.
    head = pcapng_with_packet()
    raw = head + idb() * 34_000 + epb_on_interface_0()
    got, err, _ = read_all(raw)
    assert len(got) == 1
    assert isinstance(err, UnsupportedFormatError) and "more than purepcap keeps" in str(err)
    assert err.offset is not None and f"offset {err.offset}" in str(err)
    assert (err.offset - len(head)) % 20 == 0 and 30_000 < (err.offset - len(head)) // 20 < 33_000


def test_a_block_of_a_million_options_is_refused_without_building_them() -> None:
    # Regression: all options of a block were built before anything was checked: a
    # 30 MiB interface block of empty options made 7.8 million list entries. Now what
    # options cost to keep counts against the same bound as the interfaces.
    head = pcapng_with_packet()
    raw = head + idb(struct.pack("<HH", 99, 0) * (3 * 1024 * 1024 // 4)) + epb_on_interface_0()
    got, err, _ = read_all(raw)
    assert len(got) == 1 and isinstance(err, UnsupportedFormatError)
    assert err.offset == len(head) and f"offset {len(head)}" in str(err)


def test_an_honest_option_heavy_interface_is_kept_whole() -> None:
    opts = b"".join(struct.pack("<HH", 2, 16) + b"interface-name-x" for _ in range(100))
    raw = pcapng_with_packet() + idb(opts + struct.pack("<HH", 0, 0)) + epb_on_interface_0()
    with purepcap.open(raw) as cap:
        assert len(list(cap)) == 2
        assert len(cap.interfaces[1].options[2]) == 100


def pcapng_with_packet() -> bytes:
    out = io.BytesIO()
    with PcapngWriter(out) as w:
        w.write_packet(T0, b"first")
    return out.getvalue()


def epb_on_interface_0() -> bytes:
    body = struct.pack("<IIIII", 0, 0, 0, 4, 4) + b"last"
    return struct.pack("<II", 6, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


# -- chunk boundaries change nothing (found by test_robustness_properties' chunking property) -----
class ShortReads(io.RawIOBase):
    """A seekable stream that hands out at most ``step`` bytes per read."""

    def __init__(self, raw: bytes, step: int) -> None:
        self._f, self._step = io.BytesIO(raw), step

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, b) -> int:
        data = self._f.read(min(len(b), self._step))
        b[:len(data)] = data
        return len(data)


def test_a_short_first_read_is_not_a_short_file() -> None:
    # Regression: a first read of fewer than 4 bytes was taken for the whole file
    # ("file is 2 bytes, too short for a capture header").
    raw = small_pcap(3)
    with purepcap.open(ShortReads(raw, 2)) as cap:
        assert len(list(cap)) == 3 and cap.clean_end


def test_a_cut_section_header_names_the_bytes_there_are() -> None:
    # Regression: the message and offset counted only the first read, not the file.
    raw, _ = two_section_capture()
    with pytest.raises(TruncatedError) as info:
        purepcap.format.Capture(raw[:10], chunk_size=4)
    assert info.value.offset == 10 and "cut short at 10 bytes" in str(info.value)


def test_strict_false_skips_the_same_at_every_chunk_boundary() -> None:
    # Regression: when a damaged block ended where the buffered data ended, the next
    # block's header was not read yet, so strict=False stopped there instead of
    # skipping: what a pipe delivered depended on how it delivered it.
    raw, at = two_section_capture()
    bad = bytearray(raw)
    bad[at["pb"] + 8:at["pb"] + 10] = struct.pack(">H", 9)
    bad = bytes(bad)
    expected = datas(read_all(bad, strict=False)[0])
    assert len(expected) == 7
    for step in range(1, 80):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with purepcap.open(ShortReads(bad, step), strict=False) as cap:
                assert datas(cap) == expected, step
        # only ours: on PyPy the collector may run inside the block and finalise files
        # earlier tests left open, with a ResourceWarning each
        ours = [str(w.message) for w in caught if issubclass(w.category, PcapWarning)]
        assert len(ours) == 1, (step, ours)


def test_strict_false_warns_for_the_first_hundred_skips_then_counts() -> None:
    # Regression: every skipped block warned with its own offset, and every distinct
    # warning text stays in the caller's warnings registry: a 6 MiB file of damaged
    # blocks left 51 MB behind after reading (a 1 GB file: gigabytes).
    body = struct.pack("<IIIII", 77, 0, 0, 4, 4) + b"abcd"  # names interface 77
    bad_epb = struct.pack("<II", 6, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    raw = pcapng_with_packet() + bad_epb * 20_000 + epb_on_interface_0()
    globals().pop("__warningregistry__", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # the filter that keeps a registry
        with purepcap.open(raw, strict=False) as cap:
            got = [p.data for p in cap]  # the warnings are attributed to this line
        registry = dict(globals().get("__warningregistry__", {}))
    assert got == [b"first", b"last"]
    assert cap.skipped == 20_000 and cap.error is None
    caught = [w for w in caught if issubclass(w.category, PcapWarning)]
    assert len(caught) == 100 and "Capture.skipped counts them" in str(caught[-1].message)
    assert len(registry) <= 101, len(registry)
