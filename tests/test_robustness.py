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
import tracemalloc
import warnings

import pytest

import purepcap
from purepcap import DamagedError, PcapError, PcapWarning, TruncatedError
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
@pytest.mark.parametrize("compress", [gzip.compress, lambda b: bz2.compress(b, 1), lzma.compress],
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


def test_damaged_gzip_crc_is_a_pcap_error_after_every_packet() -> None:
    packed = bytearray(gzip.compress(small_pcap()))
    packed[-8] ^= 0xFF  # the CRC32 in the trailer
    got, err, _ = read_all(bytes(packed))
    assert len(got) == 300
    assert isinstance(err, DamagedError) and "CRC" in str(err)


# -- bounded memory and time: length fields are not believed past the format's limits ----------
def pcap_header(snaplen: int = 65535, linktype: int = 1) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def test_huge_snaplen_does_not_license_a_huge_record(tmp_path) -> None:
    # Regression: the record bound was max(snaplen, ...), so a header claiming a 4 GiB
    # snaplen let one record be gathered chunk by chunk (quadratic copying, the whole
    # file in memory). Records are now bounded by 32 MiB whatever the snaplen says.
    path = tmp_path / "huge.pcap"
    with open(path, "wb") as f:
        f.write(pcap_header(snaplen=0xFFFFFFFF) + struct.pack("<IIII", 1, 0, 0xFFFFFFF0, 0xFFFFFFF0))
        f.write(b"\x00" * (8 * CHUNK_SIZE))
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


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_streaming_holds_about_one_chunk(tmp_path, fmt: str) -> None:
    # Regression: the readers read the next chunk before parsing the opening one and
    # kept the parsed chunk alive while reading, so 4-5 chunks were alive at once.
    # Now: the unparsed rest of one chunk plus the next one, never the file.
    rnd = random.Random(7)
    payloads = [rnd.randbytes(rnd.randrange(40, 1500)) for _ in range(64)]
    path = tmp_path / f"big.{fmt}"
    writer = PcapWriter if fmt == "pcap" else PcapngWriter
    n = 32_000  # about 25 MB: six chunks
    with writer(path) as w:
        for i in range(n):
            w.write_packet(T0 + i, payloads[i % 64])
    assert path.stat().st_size > 5 * CHUNK_SIZE
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
