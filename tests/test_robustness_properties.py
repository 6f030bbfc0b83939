# hypothesis properties for hostile input (issue 9): arbitrary bytes raise nothing but
# PcapError; valid captures of every shape our writers make (both byte orders, several
# sections and interfaces, simple and obsolete packet blocks, non-packet blocks) that
# are then cut, bit-flipped or given lying lengths deliver every packet before the
# damage, unchanged, and then stop with a PcapError naming where (or, with
# strict=False, a PcapWarning and a clean stop).
#
# "Before the damage" is exact: the builder records where every block ends, and a
# packet whose block ends at or before the damaged byte cannot have been touched.
from __future__ import annotations

import importlib.util
import io
import struct
import warnings
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

import purepcap
from purepcap import PcapError, PcapWarning
from purepcap.format import PcapngWriter, PcapWriter

T0 = 1_600_000_000_000_000_000


@dataclass
class Built:
    raw: bytes
    packet_ends: list[int]  # end offset of each packet's block, in frame order
    boundaries: set[int]  # every offset at which a cut leaves a whole capture
    lengths: list[int]  # offsets of length fields: where a lie is told


def names_where(err: PcapError) -> bool:
    """The message says where: the offset, unless the whole file is at fault (offset 0)."""
    return err.offset is not None and (str(err.offset) in str(err) or err.offset == 0)


ZSTD = importlib.util.find_spec("zstandard") is not None


def read(raw: bytes, *, strict: bool = True) -> tuple[list, PcapError | None, list]:
    got: list = []
    err = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ResourceWarning)  # the collector's (PyPy), for files others left
        try:
            with purepcap.open(raw, strict=strict) as cap:
                for p in cap:
                    assert len(p.data) == p.caplen
                    got.append(p)
        except PcapError as e:
            err = e
        except ImportError as e:  # zstd's magic where the zstandard extra is absent (the core suite's venvs)
            if ZSTD or "purepcap[zstd]" not in str(e):
                raise
    assert all(issubclass(w.category, PcapWarning) for w in caught), [str(w.message) for w in caught]
    return got, err, caught


payloads = st.binary(max_size=70)


@st.composite
def pcap_captures(draw) -> Built:
    order = draw(st.sampled_from(["little", "big"]))
    modified = draw(st.booleans())
    nano = False if modified else draw(st.booleans())
    version = draw(st.sampled_from([(2, 4), (2, 4), (2, 2)]))
    out = io.BytesIO()
    w = PcapWriter(out, byte_order=order, nanosecond=nano, modified=modified, version=version,
                   linktype=draw(st.sampled_from([1, 101, 113, 276, 147])))
    w.flush()
    reclen = 24 if modified else 16
    boundaries, ends, lengths = {len(out.getvalue())}, [], []
    for i, data in enumerate(draw(st.lists(payloads, max_size=8))):
        start = len(out.getvalue())
        w.write_packet(T0 + i * 1_000_000_007, data, length=len(data) + draw(st.integers(0, 3)))
        w.flush()
        end = len(out.getvalue())
        assert end == start + reclen + len(data)
        ends.append(end)
        boundaries.add(end)
        lengths += [start + 8, start + 12]  # caplen, len
    return Built(out.getvalue(), ends, boundaries, lengths)


@st.composite
def pcapng_captures(draw) -> Built:
    out = io.BytesIO()
    order = draw(st.sampled_from(["little", "big"]))
    w = PcapngWriter(out, byte_order=order, tsresol=draw(st.sampled_from([6, 9, 0x80 | 20])))
    w.flush()
    fmt = "<I" if order == "little" else ">I"
    head = out.getvalue()
    shb_end = struct.unpack_from(fmt, head, 4)[0]
    boundaries, ends, lengths = {shb_end, len(head)}, [], [4, shb_end - 4, shb_end + 4, len(head) - 4]
    sections = draw(st.integers(1, 3))
    n_ifaces = 1

    def note(packet: bool) -> None:
        end = len(out.getvalue())
        start = max(boundaries)
        boundaries.add(end)
        lengths.extend([start + 4, end - 4])  # the block's total length, at both ends
        if packet:
            ends.append(end)

    for s in range(sections):
        if s:
            w.new_section(draw(st.sampled_from(["little", "big"])))
            w.flush()
            note(False)
            w.add_interface(draw(st.sampled_from([1, 113])))
            w.flush()
            note(False)
            n_ifaces = 1
        for _ in range(draw(st.integers(0, 2))):
            w.add_interface(draw(st.sampled_from([1, 101, 228])), tsresol=draw(st.sampled_from([6, 9, 3])),
                            tsoffset=draw(st.integers(0, 5)), name=draw(st.sampled_from([None, "eth0"])))
            w.flush()
            note(False)
            n_ifaces += 1
        for i, data in enumerate(draw(st.lists(payloads, max_size=5))):
            kind = draw(st.sampled_from(["epb", "epb", "spb", "pb", "nrb", "custom"]))
            start = len(out.getvalue())
            t = T0 + i * 1_000_000_000
            if kind == "epb":
                w.write_packet(t, data, interface=draw(st.integers(0, n_ifaces - 1)))
                lengths.append(start + 20)  # captured length
            elif kind == "spb":
                w.write_simple(data)
                lengths.append(start + 8)  # original length, which bounds the captured one
            elif kind == "pb":
                w.write_obsolete(t, data, interface=draw(st.integers(0, n_ifaces - 1)))
                lengths.append(start + 20)
            elif kind == "nrb":
                o = "<" if w._order == "<" else ">"
                w.write_block(4, struct.pack(o + "HH", 1, 8) + b"\x0a\x00\x00\x01ab\x00\x00"
                              + struct.pack(o + "HH", 0, 0))
            else:
                w.write_block(0x40000BAD, b"\x00\x00\x7e\x8f" + data)
            w.flush()
            note(kind in ("epb", "spb", "pb"))
    return Built(out.getvalue(), ends, boundaries, lengths)


captures = st.one_of(pcap_captures(), pcapng_captures())


def check_prefix(built: Built, pos: int, damaged: bytes, strict: bool) -> None:
    """The packets whose blocks end at or before ``pos`` come out unchanged, first."""
    ref, err, _ = read(built.raw)
    assert err is None and len(ref) == len(built.packet_ends)
    intact = sum(1 for e in built.packet_ends if e <= pos)
    got, err, caught = read(damaged, strict=strict)
    assert got[:intact] == ref[:intact]
    if err is not None:
        assert err.frame == len(got) and names_where(err), str(err)
        if not strict:  # strict=False still refuses what is no capture at all, but only that
            assert got == [] and err.frame == 0
    if not strict:
        # against the strict reading of the same bytes: the same packets up to its error,
        # and where it raised mid-file, a PcapWarning instead
        strict_got, strict_err, _ = read(damaged)
        assert got[:len(strict_got)] == strict_got
        if strict_err is not None and err is None:
            assert caught, "strict=False passed damage over in silence"
            assert str(strict_err.offset) in str(caught[0].message)


@given(captures, st.data(), st.booleans())
def test_truncated_capture_gives_the_whole_packets_then_an_error(built: Built, data, strict: bool) -> None:
    cut = data.draw(st.integers(0, len(built.raw)))
    got, err, caught = read(built.raw[:cut], strict=strict)
    ref = read(built.raw)[0]
    whole = sum(1 for e in built.packet_ends if e <= cut)
    assert got == ref[:whole]
    clean = cut in built.boundaries
    if strict:
        assert (err is None) == clean, (cut, err)
        if err is not None:
            assert err.frame == whole and names_where(err), str(err)
    elif err is None:
        assert (len(caught) == 0) == clean, (cut, [str(w.message) for w in caught])


@given(captures, st.data(), st.booleans())
def test_bit_flips_keep_the_packets_before_them(built: Built, data, strict: bool) -> None:
    damaged = bytearray(built.raw)
    pos = data.draw(st.integers(0, len(damaged) - 1))
    damaged[pos] ^= 1 << data.draw(st.integers(0, 7))
    check_prefix(built, pos, bytes(damaged), strict)


LIES = st.one_of(st.sampled_from([0, 1, 3, 7, 11, 12, 13, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC,
                                  32 * 1024 * 1024, 32 * 1024 * 1024 + 4, 262144, 262145]),
                 st.integers(0, 0xFFFFFFFF))


@given(captures, st.data(), LIES, st.booleans())
def test_lying_lengths_keep_the_packets_before_them(built: Built, data, lie: int, strict: bool) -> None:
    if not built.lengths:
        return
    at = data.draw(st.sampled_from(built.lengths))
    damaged = bytearray(built.raw)
    big = built.raw[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d", b"\xa1\xb2\xcd\x34")
    if built.raw[:4] == b"\x0a\x0d\x0d\x0a":  # pcapng: the order of the section the field is in
        big = _pcapng_big_at(built.raw, at)
    damaged[at:at + 4] = struct.pack(">I" if big else "<I", lie)
    check_prefix(built, at, bytes(damaged), strict)


def _pcapng_big_at(raw: bytes, at: int) -> bool:
    pos, big = 0, False
    while pos + 12 <= len(raw) and pos <= at:
        if raw[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            big = raw[pos + 8:pos + 12] == b"\x1a\x2b\x3c\x4d"
        pos += struct.unpack_from(">I" if big else "<I", raw, pos + 4)[0]
    return big


@given(captures)
def test_a_lie_beyond_every_bound_stops_exactly_there(built: Built) -> None:
    # a packet length of 4 GiB - 4 is no packet: the packets before it, then a
    # DamagedError at that very block
    if not built.packet_ends:
        return
    raw = bytearray(built.raw)
    k = len(built.packet_ends) // 2
    start = max([b for b in built.boundaries if b < built.packet_ends[k]])
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        big = _pcapng_big_at(built.raw, start)
        raw[start + 4:start + 8] = struct.pack(">I" if big else "<I", 0xFFFFFFFC)
    else:
        big = built.raw[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d", b"\xa1\xb2\xcd\x34")
        raw[start + 8:start + 12] = struct.pack(">I" if big else "<I", 0xFFFFFFFC)
        raw[start + 12:start + 16] = struct.pack(">I" if big else "<I", 0xFFFFFFFC)
    got, err, _ = read(bytes(raw))
    assert len(got) == k
    assert isinstance(err, purepcap.DamagedError), err
    assert err.offset == start and f"offset {start}" in str(err)
    got2, err2, caught = read(bytes(raw), strict=False)
    assert len(got2) == k and err2 is None and len(caught) == 1


# -- arbitrary bytes ----------------------------------------------------------------------------
MAGIC_PREFIXES = [
    b"",
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
    struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0xFFFFFFFF, 1),
    struct.pack("<IHHiIII", 0xA1B23C4D, 2, 2, 0, 0, 100, 113),
    struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1),
    struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28),
    struct.pack(">IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack(">I", 28),
    struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    + struct.pack("<IIHHI", 1, 20, 1, 0, 0) + struct.pack("<I", 20),
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
    b"BZh9",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
]


@given(st.sampled_from(MAGIC_PREFIXES), st.binary(max_size=600), st.booleans())
def test_arbitrary_bytes_after_any_magic_raise_only_pcap_errors(prefix: bytes, tail: bytes, strict: bool) -> None:
    got, err, _ = read(prefix + tail, strict=strict)
    if err is not None:
        assert names_where(err), str(err)
        assert err.frame == len(got)


@given(st.binary(max_size=300).map(lambda b: b"\x0a\x0d\x0d\x0a" + b))
def test_arbitrary_pcapng_blocks_raise_only_pcap_errors(raw: bytes) -> None:
    read(raw)
    read(raw, strict=False)


def test_records_raise_only_pcap_errors() -> None:
    records_mod = pytest.importorskip("purepcap._records")
    pytest.importorskip("purepcap.headers")

    @given(st.sampled_from(MAGIC_PREFIXES[:8]), st.binary(max_size=600))
    def prop(prefix: bytes, tail: bytes) -> None:
        try:
            for r in records_mod.records(prefix + tail, payload=True):
                assert isinstance(r, dict)
        except PcapError:
            pass

    prop()


# -- chunk boundaries change nothing ----------------------------------------------------------------
class Trickle(io.RawIOBase):
    """A non-seekable pipe that hands out a few bytes at a time."""

    def __init__(self, raw: bytes, step: int) -> None:
        self._raw, self._pos, self._step = raw, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self._step, len(self._raw) - self._pos)
        b[:n] = self._raw[self._pos:self._pos + n]
        self._pos += n
        return n


def outcome(source, *, chunk_size: int | None = None, strict: bool = True) -> tuple:
    got: list = []
    err = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ResourceWarning)  # the collector's (PyPy), for files others left
        try:
            cap = purepcap.format.Capture(source, strict=strict, chunk_size=chunk_size) if chunk_size \
                else purepcap.open(source, strict=strict)
            with cap:
                for p in cap:
                    got.append(p)
        except PcapError as e:
            err = (type(e).__name__, e.offset, e.frame, e.message)
    # warnings name the source ("<bytes>", "<stream>"); compare what follows
    return got, err, [str(w.message).split(": ", 1)[-1] for w in caught]


@given(captures, st.data(), st.sampled_from([1, 3, 7, 64]), st.booleans())
def test_damage_reads_the_same_whatever_the_chunking(built: Built, data, chunk: int, strict: bool) -> None:
    damaged = bytearray(built.raw)
    for _ in range(data.draw(st.integers(0, 2))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        damaged[at] ^= 1 << data.draw(st.integers(0, 7))
    raw = bytes(damaged[:data.draw(st.integers(0, len(damaged)))])
    expected = outcome(raw, strict=strict)
    assert outcome(raw, chunk_size=chunk, strict=strict) == expected
    assert outcome(Trickle(raw, chunk), strict=strict) == expected


# -- damage inside compressed data -------------------------------------------------------------------
def _compressors():
    import bz2
    import gzip
    import lzma
    out = [("gzip", lambda b: gzip.compress(b, mtime=0)), ("bz2", bz2.compress), ("xz", lzma.compress)]
    try:
        import zstandard
        out.append(("zstd", zstandard.ZstdCompressor().compress))
    except ImportError:
        pass
    return out


@given(captures, st.sampled_from(_compressors()), st.data(), st.booleans())
def test_damaged_compressed_captures_raise_only_pcap_errors(built: Built, codec, data, strict: bool) -> None:
    _, compress = codec
    packed = bytearray(compress(built.raw))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(packed) - 1))
        packed[at] ^= 1 << data.draw(st.integers(0, 7))
    cut = data.draw(st.integers(0, len(packed)))
    got, err, caught = read(bytes(packed[:cut]), strict=strict)
    if err is not None:
        assert err.frame == len(got) and names_where(err), str(err)
