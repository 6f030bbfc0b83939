# Capture-file containers: classic pcap (all six magics) and pcapng, read and written.
# Every container rule (magics, layouts, bounds, time rules, the careful pcapng step)
# lives in _container; this module keeps the Packet reader's own tight loops.
#
# Strategy: the stream is read in large chunks into one bytes buffer and records are
# cut out of it with precompiled ``struct.Struct.unpack_from``; a record that straddles
# two chunks is carried over into the next buffer. Memory is therefore bounded by the
# chunk size plus the largest record the format allows, never by what a length field
# claims. The only per-packet object is the ``Packet`` itself. Everything about the
# file (versions, interfaces, resolutions) is decoded once, outside the hot loop.
#
# Errors are raised *after* every good packet before them has been delivered; with
# ``errors="warn"`` (or "ignore": the same without the warning) they become a
# PcapWarning and a clean stop (or, in pcapng, a skip over a damaged block whose length
# still leads to the next block), reported by _container.report_damage as every walker
# reports them.
from __future__ import annotations

import io
import os
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from . import _loops, linktypes
from ._container import (
    BT_EPB,
    BT_IDB,
    BT_PB,
    BT_SPB,
    BYTE_ORDER_MAGIC,
    DAMAGE,
    EPB_DATA,
    EPB_HEAD,
    EPB_STEP,
    EPB_WORDS,
    IF_DESCRIPTION,
    IF_FCSLEN,
    IF_NAME,
    IF_TSOFFSET,
    IF_TSRESOL,
    INTERFACE,
    MAX_BLOCK,
    NEED_MORE,
    NS,
    PACKET,
    PACKET_BLOCK_HEAD,
    PACKET_BLOCKS,
    PCAP_HEADER_LEN,
    PCAP_MAGICS,
    PCAP_RECORD,
    PCAPNG_SHB,
    SECTION,
    SHB_USERAPPL,
    Interface,
    PcapHeader,
    PcapngState,
    bad_block_length,
    block_length_ok,
    decode_tsresol,
    epb_fits,
    epb_key_split,
    leading_blocks,
    packet_block_damage,
    pcap_cut_short,
    pcap_record_too_long,
    pcap_wrapped_time,
    pcapng_block,
    pcapng_cut_short,
    precision_name,
    read_pcap_header,
    report_damage,
    shb_byte_order,
)
from ._sources import Source, open_source, source_name
from .errors import DamagedError, NotACaptureError, PcapError, TruncatedError, errors_policy

__all__ = [
    "Packet",
    "Interface",
    "Capture",
    "Span",
    "open_capture",
    "split_capture",
    "PcapWriter",
    "PcapngWriter",
    "open_writer",
    "CHUNK_SIZE",
]

CHUNK_SIZE = 4 * 1024 * 1024
# What a Capture reads at a time. Smaller than CHUNK_SIZE on purpose: a read that stays
# in the CPU's L2 cache while its packets are cut out of it made open() on 1M mixed
# packets ~40% faster than 4 MiB reads (bench/RESULTS.md). A record bigger than this
# is gathered in doubling reads.
READ_SIZE = 256 * 1024
# the streams whose readinto() the PyPy loops' reused buffer is filled by (see _loops)
_READS_INTO = (io.FileIO, io.BufferedReader, io.BytesIO)


def refill(stream: Any, chunk: int, buf: Any, pos: int, end: int, base: int, stop: int | None,
           need: int) -> tuple[bytearray, int, int, bool, PcapError | None]:
    """The read of the PyPy loops (see _loops) and of records()' PyPy walk
    (_records_pypy). ``buf[pos:end]`` is the unparsed end of the buffer (at file offset
    ``base + pos``) and ``need`` the bytes the record there needs whole (a header's
    worth where that is not known yet). That rest moves to the front of one reused
    bytearray, and as much of ``stream`` as fits follows it. Returns (buffer, where its
    data ends, the file offset of its start, whether the stream ended, damage the
    stream itself reported).

    The buffer holds ``chunk`` bytes beyond the rest, so every call reads something until
    the stream ends, and grows to hold a record longer than that (the formats bound
    it), shrinking back after it. Streams whose readinto() fills the buffer directly
    are read so; any other stream is read() and copied in."""
    rest = end - pos
    want = max(need, rest + chunk)
    if type(buf) is not bytearray or len(buf) < want or len(buf) > 2 * want + chunk:
        old = buf
        buf = bytearray(max(want, chunk + min(chunk, 65536)))
        buf[:rest] = old[pos:end]
    elif rest and pos:
        buf[:rest] = buf[pos:end]
    base += pos
    room = len(buf) - rest
    if stop is not None:
        room = min(room, stop - base - rest)
    try:
        if room <= 0:
            n = 0
        elif type(stream) in _READS_INTO:
            with memoryview(buf)[rest:rest + room] as view:
                n = stream.readinto(view) or 0
        else:
            data = stream.read(room) or b""
            n = len(data)
            if n > room:  # a stream that gives more than it is asked for
                buf = buf[:rest] + data
            else:
                buf[rest:rest + n] = data
    except PcapError as exc:
        return buf, rest, base, True, exc
    return buf, rest + n, base, n == 0, None


class Packet:
    """One captured packet, the same type for files and live captures.

    ``time`` is integer nanoseconds since the epoch (UTC), None only for a pcapng
    simple packet block. ``data`` holds exactly ``caplen`` bytes; ``length`` is the
    packet's original length on the wire. ``interface`` indexes ``Capture.interfaces``.
    """

    __slots__ = ("frame", "time", "caplen", "length", "linktype", "interface", "data")

    def __init__(self, frame: int, time: int | None, caplen: int, length: int, linktype: int,
                 interface: int, data: bytes) -> None:
        self.frame = frame
        self.time = time
        self.caplen = caplen
        self.length = length
        self.linktype = linktype
        self.interface = interface
        self.data = data

    def __repr__(self) -> str:
        return (f"Packet(frame={self.frame}, time={self.time}, caplen={self.caplen}, "
                f"length={self.length}, linktype={self.linktype}, interface={self.interface}, "
                f"data={self.data[:16]!r}{'...' if self.caplen > 16 else ''})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return (self.frame, self.time, self.caplen, self.length, self.linktype, self.interface,
                self.data) == (other.frame, other.time, other.caplen, other.length, other.linktype,
                               other.interface, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (Packet, (self.frame, self.time, self.caplen, self.length, self.linktype,
                         self.interface, self.data))


# The readers' hot loops make a Packet as ``p = _new_packet(Packet)`` and then store its
# seven slots in the loop itself: that skips type.__call__ entering __init__ through a
# C-level call (a fresh interpreter frame), ~65 ns of ~200 per Packet on CPython 3.11.
# So Packet.__init__ must stay a plain store of its arguments.
_new_packet = object.__new__


class Span:
    """A byte range of a capture that can be read on its own (a Dask partition).

    ``prefix`` holds the file header (pcap) or the section header and interface
    blocks in force at ``start`` (pcapng), replayed before seeking to ``start``.
    ``prefix_at`` holds, for each block of a pcapng prefix, its offset in the file and
    the frames before it, so that damage found in the prefix is reported where the
    whole file has it.

    Immutable, hashable and compared by value, as a frozen dataclass would be (written
    out for the reason Interface is: see _container.Interface).
    """

    __slots__ = ("start", "stop", "first_frame", "prefix", "interface_base", "section", "prefix_at")

    def __init__(self, start: int, stop: int, first_frame: int, prefix: bytes, interface_base: int = 0,
                 section: int = 0, prefix_at: tuple[tuple[int, int], ...] = ()) -> None:
        for name, value in zip(self.__slots__, (start, stop, first_frame, prefix, interface_base, section,
                                                prefix_at)):
            object.__setattr__(self, name, value)

    def _fields(self) -> tuple:
        return tuple(getattr(self, f) for f in self.__slots__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: a Span is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: a Span is immutable")

    def __repr__(self) -> str:
        return "Span(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__) + ")"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple:
        return (Span, self._fields())


def span_prefix_error(exc: PcapError, span: Span) -> PcapError:
    """``exc``, found at an offset of ``span.prefix``, moved to where the file has it."""
    if not span.prefix_at or exc.offset is None or len(span.prefix) < 8:
        exc.frame = span.first_frame - 1 if exc.frame is None else exc.frame
        return exc
    order = shb_byte_order(span.prefix, 0)
    pos = 0
    for at, frames in span.prefix_at:
        blen = struct.unpack_from(order + "I", span.prefix, pos + 4)[0] if pos + 8 <= len(span.prefix) else 0
        if pos <= exc.offset < pos + max(blen, 1) or blen < 12:
            exc.offset, exc.frame = at + exc.offset - pos, frames
            return exc
        pos += blen
    exc.frame = span.first_frame - 1
    return exc


class Capture:
    """An open capture file: an iterator of Packets plus what the file says of itself.

    Use ``open_capture`` (or ``purepcap.open``) to make one. Attributes describe the
    file: ``format`` ("pcap" or "pcapng"), ``version``, ``byte_order``, ``snaplen``,
    ``precision``, ``linktype``, ``interfaces``, ``compression``. After iteration
    ends, ``clean_end`` says whether the file ended on a record boundary,
    ``error`` holds the damage ``errors="warn"`` or ``"ignore"`` stopped at, and
    ``skipped`` counts the damaged pcapng blocks it stepped over (only the first 100 of
    them warn). ``errors`` is what damage does ("raise", "warn", "ignore"; ``strict=False``
    is the older spelling of "warn").
    """

    format: str
    version: tuple[int, int]
    byte_order: str
    snaplen: int
    modified: bool = False
    fcs_length: int | None = None
    filter: str | None = None  # the pcap-filter expression purepcap.open(filter=) applied
    linktype = linktypes.EN10MB
    snaplen = 0
    precision = "us"
    hardware = os = application = None
    _ng: PcapngState | None = None

    def __init__(self, source: Source, *, strict: bool = True, storage_options: dict | None = None,
                 span: Span | None = None, chunk_size: int = READ_SIZE, errors: str | None = None) -> None:
        self.name = source_name(source)
        self.errors = errors_policy(errors, strict)  # what damage does: raise, warn or ignore
        self.interfaces: list[Interface] = []
        self.frames = 0
        self.clean_end: bool | None = None
        self.error: PcapError | None = None
        self._test_for: Callable[[int], Callable[[bytes, int], Any]] | None = None
        # No read is longer than the largest record libpcap allows any link type, so a
        # pcap record that fits in a read needs no test against that bound (see _iter_pcap)
        self._chunk = min(chunk_size, linktypes.MAX_SNAPLEN)
        self._span = span
        self._stream, self._closers, self.compression = open_source(source, storage_options)
        try:
            if span is not None:
                self._init_span(span)
            else:
                head = self._read(self._chunk)
                while 0 < len(head) < 4:  # a short first read is not a short file
                    more = self._read(4 - len(head))
                    if not more:
                        break
                    head += more
                self._start(head)
        except PcapError as exc:
            self.close()
            exc.source = exc.source or self.name
            exc.frame = 0 if exc.frame is None else exc.frame
            raise
        except BaseException:
            self.close()
            raise

    @property
    def sections(self) -> int:
        return self._ng.sections if self._ng is not None else 1

    @property
    def strict(self) -> bool:
        """Whether damage raises (errors="raise")."""
        return self.errors == "raise"

    @property
    def skipped(self) -> int:
        """Damaged pcapng blocks a reading not raising on damage stepped over."""
        return self._ng.skipped if self._ng is not None else 0

    # -- set-up -------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        return self._stream.read(n) or b""

    def _init_span(self, span: Span) -> None:
        seek = getattr(self._stream, "seek", None)
        if seek is None or not getattr(self._stream, "seekable", lambda: False)():
            raise PcapError(f"{self.name}: reading a span needs a seekable file")
        self._start(span.prefix, span=span)
        seek(span.start)

    def _start(self, head: bytes, span: Span | None = None) -> None:
        if len(head) < 4:
            if not head:
                raise NotACaptureError("empty file: not a capture", offset=0, frame=0, source=self.name)
            raise TruncatedError(f"file is {len(head)} bytes, too short for a capture header",
                                 offset=0, frame=0, source=self.name)
        magic = struct.unpack_from("<I", head)[0]
        if magic in PCAP_MAGICS:
            self._gen = self._start_pcap(head, span)
        elif magic == PCAPNG_SHB:
            self._gen = self._start_pcapng(head, span)
        else:
            raise NotACaptureError(
                f"not a capture file (starts with {head[:4].hex(' ')})", offset=0, frame=0,
                source=self.name)

    def _walk_end(self, frame: int, stream_error: PcapError | None, cut: PcapError | None) -> None:
        """How every packet loop ends at the end of its input: the stream's read error,
        else ``cut`` (bytes left over that make no whole record or block), else cleanly."""
        self.frames = frame
        if stream_error is not None:
            self._fail(stream_error)
        elif cut is not None:
            self._fail(cut)
        else:
            self.clean_end = self.error is None
            self._close_files()

    def _fail(self, exc: PcapError) -> None:
        """Damage found: record it, then raise it, warn or say nothing (self.errors); the
        walk then stops."""
        self.clean_end = False
        self.error = exc
        # a walk that stops reads no more: the file we opened is closed now, so that
        # ``list(purepcap.open(path))`` leaves no file open, whether it ends or raises
        self._close_files()
        report_damage(exc, self.name, self.frames, self.errors)

    def _read_more(self, rest: bytes, base: int, stop: int | None, chunk: int,
                   missing: int = 0) -> tuple[bytes, bool, PcapError | None]:
        """``rest`` (the unparsed end of the last read, which starts at file offset ``base``)
        plus the next read: (buffer, whether the stream ended, damage the stream itself
        reported). Damaged compressed data ends the stream after what came before it.

        ``missing`` is what the record cut off in ``rest`` still lacks. Only that much is
        read: the one record is parsed from that small buffer, and the next read is a
        whole fresh chunk. Gluing ``rest`` onto a whole chunk instead copies every byte of
        the file once more. A record longer than a chunk is still gathered in doubling
        reads, which keeps a decompressor's output for one read (and its copy) small."""
        size = max(chunk, len(rest))
        if rest and 0 < missing < size:
            size = missing
        want = size if stop is None else min(size, stop - base - len(rest))
        try:
            data = self._stream.read(want) if want > 0 else b""
        except PcapError as exc:
            return rest, True, exc
        if not data:
            return rest, True, None
        return (rest + data if rest else data), False, None

    def _walk_start(self, span: Span | None, buf: bytes, base: int,
                    pos: int) -> tuple[bytes, int, int, int, int | None]:
        """Where a packet loop starts, the same for all four (see _loops): (buffer, its
        file offset, where in it the next record is, the frame number before that
        record, the file offset the loop stops at: None for the whole stream). The whole
        stream goes on from what the opening read left in ``buf``; a span starts at its
        own first record with nothing read, its frames numbered as in the whole file."""
        if span is None:
            self.frames = 0
            return buf, base, pos, 0, None
        self.frames = frame = span.first_frame - 1
        return b"", span.start, 0, frame, span.stop

    # -- classic pcap -------------------------------------------------------------------
    def _start_pcap(self, head: bytes, span: Span | None) -> Iterator[Packet]:
        while len(head) < PCAP_HEADER_LEN:
            more = self._read(PCAP_HEADER_LEN - len(head))
            if not more:
                raise TruncatedError(f"pcap file header cut short at {len(head)} of 24 bytes",
                                     offset=len(head), frame=0, source=self.name)
            head += more
        self.format = "pcap"
        hdr = read_pcap_header(head)
        variant = hdr.variant
        self.version = hdr.version
        self.byte_order = "little" if variant.order == "<" else "big"
        self.snaplen = hdr.snaplen
        self.modified = variant.modified
        self.fcs_length = hdr.fcs_length
        self.linktype = hdr.linktype
        self.precision = precision_name(variant.ticks)
        self.interfaces = [Interface(hdr.linktype, hdr.snaplen, tsresol=variant.ticks, fcslen=hdr.fcs_length)]
        walk = self._iter_pcap_pypy if _loops.LOOPS == "pypy" else self._iter_pcap  # see _loops
        return walk(head[PCAP_HEADER_LEN:], PCAP_HEADER_LEN, hdr, span)

    def _iter_pcap(self, buf: bytes, base: int, hdr: PcapHeader, span: Span | None) -> Iterator[Packet]:
        order, ticks, reclen, _ = hdr.variant
        unpack = struct.Struct(order + PCAP_RECORD).unpack_from
        new = _new_packet
        cur_sec = -1  # sec * NS is kept for the second the last packet was in
        sbase = 0
        chunk = self._chunk
        mult = NS // ticks
        lt = self.linktype
        limit = hdr.record_limit
        maybe_swapped = hdr.swaps_lengths
        keep = self._test_for(lt) if self._test_for is not None else None
        buf, base, pos, frame, stop = self._walk_start(span, buf, base, 0)
        eof = False
        stream_error: PcapError | None = None
        fresh = pos < len(buf)  # what the opening read left over is parsed before reading more
        while True:
            if not eof and not fresh:
                # The parsed chunk stays alive until the next one is read. Freed first, it
                # can be the top of the heap, which malloc then gives back to the system
                # and faults in again on the next read. A buffer that gathered a record
                # longer than a chunk is dropped first, so that such a record is not held
                # twice.
                rest = buf[pos:] if pos < len(buf) else b""
                missing = reclen - len(rest)
                if missing <= 0:  # the header is whole; it passed the limit check above
                    caplen, length = unpack(rest, 0)[2:]
                    missing += caplen if not maybe_swapped or caplen <= length else length
                base += pos
                pos = 0
                if len(buf) > chunk:
                    buf = b""
                buf, eof, stream_error = self._read_more(rest, base, stop, chunk, missing)
                rest = b""
            fresh = False
            end = len(buf)
            last = end - reclen  # the last offset a record header fits at
            while pos <= last:
                sec, frac, caplen, length = unpack(buf, pos)
                if maybe_swapped and caplen > length:
                    caplen, length = length, caplen
                nxt = pos + reclen + caplen
                if nxt > end:
                    # Only a record that does not fit can be over the limit: a read is never
                    # longer than the limit, and a record gathered over several reads was
                    # checked here before the first of them.
                    if caplen > limit:
                        self.frames = frame
                        self._fail(pcap_record_too_long(base + pos, frame, caplen, hdr))
                        return
                    break
                frame += 1
                data = buf[nxt - caplen:nxt]
                if keep is not None and not keep(data, length):
                    pos = nxt
                    continue
                p = new(Packet)  # see _new_packet
                p.frame = frame
                if sec != cur_sec:
                    cur_sec = sec
                    sbase = sec * NS
                p.time = sbase + frac * mult if frac < ticks else pcap_wrapped_time(sec, frac, mult)
                p.caplen = caplen
                p.length = length
                p.linktype = lt
                p.interface = 0
                p.data = data
                yield p
                pos = nxt
            if eof:
                self._walk_end(frame, stream_error,
                               pcap_cut_short(base + pos, frame, end - pos < reclen) if pos < end else None)
                return

    # -- pcapng -------------------------------------------------------------------------
    def _start_pcapng(self, head: bytes, span: Span | None) -> Iterator[Packet]:
        self.format = "pcapng"
        # The first SHB and the IDBs right behind it are decoded on open, so that what
        # the file says of itself is known before the first packet is asked for.
        buf = head
        if not self._fill(buf, 12):
            raise TruncatedError(f"pcapng section header cut short at {len(self._buf)} bytes",
                                 offset=len(self._buf), frame=0, source=self.name)
        buf = self._buf
        order = shb_byte_order(buf, 0)
        blen = struct.unpack_from(order + "I", buf, 4)[0]
        if not block_length_ok(PCAPNG_SHB, blen):
            raise bad_block_length(blen, 0)
        if not self._fill(buf, blen):
            raise TruncatedError(f"pcapng section header at offset 0 claims {blen} bytes, "
                                 f"the file has {len(self._buf)}", offset=0, frame=0, source=self.name)
        buf = self._buf
        # a span's section and interfaces are numbered as in the whole file
        st = PcapngState(order, span.interface_base if span else 0, span.section - 1 if span else 0)
        try:
            st.parse_shb(buf, 0, blen, 0)
        except PcapError as exc:
            raise exc if span is None else span_prefix_error(exc, span) from None
        self._ng = st
        self.interfaces = st.interfaces
        self.version, self.byte_order = st.version, st.byte_order
        self.hardware, self.os, self.application = st.hardware, st.os, st.application
        # the interface blocks right behind, as far as leading_blocks takes them
        pos = blen
        end, idbs, more = leading_blocks(buf, order, blen, 0)
        while True:
            if pos == end:
                if not more or not self._fill(buf, 2 * len(buf)):  # doubling: linear in all
                    break
                buf = self._buf
                end, idbs, more = leading_blocks(buf, order, end, idbs)
                continue
            ilen = struct.unpack_from(order + "I", buf, pos + 4)[0]
            try:
                st.parse_idb(buf, pos, ilen, pos)
            except PcapError as exc:
                if span is None:
                    break  # the packet loop meets it again and reports it in order
                if self.strict:  # a span has no packet loop before its own start to meet it
                    raise span_prefix_error(exc, span) from None
                # strict=False stepped over it where it stands in the file
            else:
                self._first_interface()
            pos += ilen
        buf = self._buf
        self._buf = b""  # the generator owns the opening chunk now; do not pin it here
        if span is not None:
            if pos != len(span.prefix):
                raise DamagedError(f"the leading blocks of a span at offset {span.start} end at {pos} "
                                   f"of {len(span.prefix)} bytes", offset=span.start, frame=0)
        walk = self._iter_pcapng_pypy if _loops.LOOPS == "pypy" else self._iter_pcapng  # see _loops
        return walk(buf, 0, pos, span)

    def _first_interface(self) -> None:
        if len(self.interfaces) == 1:
            first = self.interfaces[0]
            self.linktype, self.snaplen, self.precision = first.linktype, first.snaplen, first.precision

    def _fill(self, buf: bytes, n: int) -> bool:
        """Make self._buf = buf plus more of the stream until it holds n bytes."""
        while len(buf) < n:
            more = b"" if self._span is not None else self._read(max(n - len(buf), 65536))
            if not more:
                self._buf = buf
                return False
            buf += more
        self._buf = buf
        return True

    def _iter_pcapng(self, buf: bytes, base: int, pos: int, span: Span | None) -> Iterator[Packet]:
        chunk = self._chunk
        st = self._ng
        assert st is not None
        order = st.order
        hdr = struct.Struct(order + "II").unpack_from
        head = struct.Struct(order + EPB_HEAD).unpack_from
        step = struct.Struct(order + EPB_STEP).unpack_from
        new = _new_packet
        # the interface of the last packet and the top 32 bits of its time (as one u64
        # ``key``), and that interface's time base for them
        cur_key = -1
        gidx = lt = mult = off = hbase = 0
        test_for = self._test_for
        keep = None
        EPB = BT_EPB  # a local: the run tests it per packet
        # The run takes only blocks that lie whole in a buffer no longer than the block
        # bound, so every block it takes is below the bound with no test per block (a
        # block of exactly the bound is left to the careful step). A longer buffer (rare:
        # the doubling reads that gather a section header of over 16 MiB, or a stream that
        # hands out more than it is asked for) is left to the careful step whole.
        fast_bound = MAX_BLOCK
        ifaces = st.section_ifaces
        strict = self.strict
        buf, base, pos, frame, stop = self._walk_start(span, buf, base, pos)
        eof = False
        stream_error: PcapError | None = None
        fresh = pos < len(buf)  # what the opening read left over is parsed before reading more
        while True:
            if not eof and not fresh:
                # the parsed chunk stays alive until the next one is read (see _iter_pcap)
                rest = buf[pos:] if pos < len(buf) else b""
                missing = 12 - len(rest)
                if missing <= 0:
                    btype, blen = hdr(rest, 0)
                    # the loop stopped short of this block's end (it checked blen first);
                    # an SHB's length may be in the other byte order: read a whole chunk
                    missing = 0 if btype == PCAPNG_SHB else blen - len(rest)
                base += pos
                pos = 0
                if len(buf) > chunk:
                    buf = b""
                buf, eof, stream_error = self._read_more(rest, base, stop, chunk, missing)
                rest = b""
            fresh = False
            end = len(buf)
            # the last offset an EPB may end at for its run to read on
            last = end - 28 if end <= fast_bound else -1
            while pos + 12 <= end:
                if pos + 28 <= end:
                    btype, blen, key, lo, caplen, length = head(buf, pos)
                else:
                    btype, blen = hdr(buf, pos)
                # A run of whole EPBs. Each turn reads this block's trailer together with
                # the next block's fields (one unpack), so a block's fields are already
                # in hand when its turn comes; a block the run does not take (another
                # type, damage, the end of the buffer near) goes to the careful step.
                while (btype == EPB and (nxt := pos + blen) <= last  # (caplen .. are read only then)
                       and caplen + 32 <= blen and not blen & 3):
                    if key != cur_key:
                        iid, hi = epb_key_split(key, order)
                        # an interface whose tick is not a whole number of ns is left to the
                        # careful step, so that the run needs no test for it per packet
                        if iid >= len(ifaces) or ifaces[iid].div != 1:
                            break
                        cur_key = key
                        gidx, lt, mult, _, off, _ = ifaces[iid]
                        hbase = (hi << 32) * mult + off
                        keep = test_for(lt) if test_for is not None else None
                    data = buf[(at := pos + 28):at + caplen]
                    if keep is not None and not keep(data, length):
                        this_len = blen  # filtered out, but the block is checked all the same
                        tail, btype, blen, key, lo, caplen, length = step(buf, nxt - 4)
                        if tail != this_len:
                            btype, blen = hdr(buf, pos)
                            break
                        frame += 1
                        pos = nxt
                        continue
                    p = new(Packet)  # see _new_packet
                    p.time = hbase + lo * mult  # = ((hi << 32) | lo) * mult + off
                    p.caplen = caplen
                    p.length = length
                    p.linktype = lt
                    p.interface = gidx
                    p.data = data
                    this_len = blen
                    tail, btype, blen, key, lo, caplen, length = step(buf, nxt - 4)
                    if tail != this_len:  # not delivered: the careful step reports the damage
                        btype, blen = hdr(buf, pos)
                        break
                    frame += 1
                    pos = nxt
                    p.frame = frame
                    yield p
                # Everything else, and every damaged block, takes the careful step; the
                # run's cached interface is dropped, as the step may change the section.
                cur_key = -1
                what, value, nxt = pcapng_block(st, buf, pos, end, base, eof, strict)
                if what == NEED_MORE:
                    break
                if what == PACKET:
                    it, t, caplen, length, at = value
                    frame += 1
                    data = buf[at:at + caplen]
                    if test_for is None or test_for(it.linktype)(data, length):
                        yield Packet(frame, t, caplen, length, it.linktype, it.index, data)
                elif what == SECTION:
                    ifaces = st.section_ifaces
                    if st.order != order:
                        order = st.order
                        hdr = struct.Struct(order + "II").unpack_from
                        head = struct.Struct(order + EPB_HEAD).unpack_from
                        step = struct.Struct(order + EPB_STEP).unpack_from
                elif what == INTERFACE:
                    self._first_interface()
                elif what == DAMAGE:
                    self.frames = frame
                    if nxt < 0:
                        self._fail(value)
                        return
                    st.note_skipped(value, self.name, frame, self.errors)
                pos = nxt
            if eof:
                self._walk_end(frame, stream_error, pcapng_cut_short(base + pos, frame) if pos < end else None)
                return

    # -- the PyPy loops (see _loops) ----------------------------------------------------
    def _iter_pcap_pypy(self, buf: bytes, base: int, hdr: PcapHeader, span: Span | None) -> Iterator[Packet]:
        """_iter_pcap as PyPy's JIT runs it best (see _loops): the same Packets, errors
        and warnings, the records cut out of the buffer refill() keeps."""
        order, ticks, reclen, _ = hdr.variant
        unpack = struct.Struct(order + PCAP_RECORD).unpack_from
        mult = NS // ticks
        lt = self.linktype
        limit = hdr.record_limit
        swapped = hdr.swaps_lengths
        keep = self._test_for(lt) if self._test_for is not None else None
        buf, base, pos, frame, stop = self._walk_start(span, buf, base, 0)
        end = len(buf)
        need = reclen  # what the record at pos needs whole
        eof = False
        stream_error: PcapError | None = None
        fresh = pos < end  # what the opening read left over is parsed before reading more
        while True:
            if not eof and not fresh:
                buf, end, base, eof, stream_error = refill(self._stream, self._chunk, buf, pos, end, base, stop, need)
                pos = 0
            fresh = False
            need = reclen
            while pos + reclen <= end:
                sec, frac, caplen, length = unpack(buf, pos)
                if swapped and caplen > length:
                    caplen, length = length, caplen
                if caplen > limit:
                    self.frames = frame
                    self._fail(pcap_record_too_long(base + pos, frame, caplen, hdr))
                    return
                nxt = pos + reclen + caplen
                if nxt > end:
                    need = reclen + caplen
                    break
                frame += 1
                data = bytes(buf[nxt - caplen:nxt])
                pos = nxt
                if keep is not None and not keep(data, length):
                    continue
                yield Packet(frame, sec * NS + frac * mult if frac < ticks else pcap_wrapped_time(sec, frac, mult),
                             caplen, length, lt, 0, data)
            if eof:
                self._walk_end(frame, stream_error,
                               pcap_cut_short(base + pos, frame, end - pos < reclen) if pos < end else None)
                return

    def _iter_pcapng_pypy(self, buf: bytes, base: int, pos: int, span: Span | None) -> Iterator[Packet]:
        """_iter_pcapng as PyPy's JIT runs it best (see _loops): a whole, sound enhanced
        packet block of an interface whose tick is a whole number of ns is taken here;
        every other block, and every damaged one, goes through _container's careful step."""
        st = self._ng
        assert st is not None
        order = st.order
        head = struct.Struct(order + EPB_WORDS).unpack_from
        u32 = struct.Struct(order + "I").unpack_from
        test_for = self._test_for
        keep = None
        cur_iid = -1  # the interface of the last packet the run took; its fields:
        gidx = lt = mult = off = 0
        ifaces = st.section_ifaces
        strict = self.strict
        buf, base, pos, frame, stop = self._walk_start(span, buf, base, pos)
        end = len(buf)
        need = 12  # what the block at pos needs whole
        eof = False
        stream_error: PcapError | None = None
        fresh = pos < end  # what the opening read left over is parsed before reading more
        while True:
            if not eof and not fresh:
                buf, end, base, eof, stream_error = refill(self._stream, self._chunk, buf, pos, end, base, stop, need)
                pos = 0
            fresh = False
            need = 12
            while pos + 12 <= end:
                if pos + EPB_DATA <= end:
                    btype, blen, iid, hi, lo, caplen, length = head(buf, pos)
                    nxt = pos + blen
                    if btype == BT_EPB and nxt <= end and epb_fits(blen, caplen) and u32(buf, nxt - 4)[0] == blen:
                        if iid != cur_iid and iid < len(ifaces) and ifaces[iid].div == 1:
                            cur_iid = iid
                            gidx, lt, mult, _, off, _ = ifaces[iid]
                            keep = test_for(lt) if test_for is not None else None
                        if iid == cur_iid:
                            frame += 1
                            data = bytes(buf[pos + EPB_DATA:pos + EPB_DATA + caplen])
                            pos = nxt
                            if keep is None or keep(data, length):
                                yield Packet(frame, ((hi << 32) | lo) * mult + off, caplen, length, lt, gidx, data)
                            continue
                # everything else takes the careful step, which may change the section
                cur_iid = -1
                what, value, nxt = pcapng_block(st, buf, pos, end, base, eof, strict)
                if what == NEED_MORE:
                    btype = u32(buf, pos)[0]
                    if btype == PCAPNG_SHB:  # its length is in its own byte order (a sound one:
                        # the careful step reports a bad byte-order magic as damage)
                        need = struct.unpack_from(shb_byte_order(buf, pos) + "I", buf, pos + 4)[0]
                    else:
                        need = u32(buf, pos + 4)[0]
                    break
                if what == PACKET:
                    it, t, caplen, length, at = value
                    frame += 1
                    data = bytes(buf[at:at + caplen])
                    if test_for is None or test_for(it.linktype)(data, length):
                        yield Packet(frame, t, caplen, length, it.linktype, it.index, data)
                elif what == SECTION:
                    ifaces = st.section_ifaces
                    if st.order != order:
                        order = st.order
                        head = struct.Struct(order + EPB_WORDS).unpack_from
                        u32 = struct.Struct(order + "I").unpack_from
                elif what == INTERFACE:
                    self._first_interface()
                elif what == DAMAGE:
                    self.frames = frame
                    if nxt < 0:
                        self._fail(value)
                        return
                    st.note_skipped(value, self.name, frame, self.errors)
                pos = nxt
            if eof:
                self._walk_end(frame, stream_error, pcapng_cut_short(base + pos, frame) if pos < end else None)
                return

    # -- public surface -----------------------------------------------------------------
    def keep_only(self, test_for: Callable[[int], Callable[[bytes, int], Any]]) -> None:
        """Deliver only the packets for which ``test_for(linktype)(data, length)`` is true;
        frame numbers still count every packet. Call it before iterating. A test that
        raises stops the iteration with its exception.

        This is how ``purepcap.open(filter=)`` runs a pcap-filter: the test sees the
        packet's bytes before a Packet is made, so a rejected packet costs no Packet.
        """
        self._test_for = test_for

    def __iter__(self) -> Iterator[Packet]:
        return self._gen

    def __next__(self) -> Packet:
        return next(self._gen)

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file. A Capture is read by one thread at a time, but close() may come
        from any thread: the iteration in the reading thread then ends. If that thread is
        between packets, or gets there within CLOSE_PATIENCE seconds, its next step is
        StopIteration and the file is closed before close() returns; if it stays inside
        the reader (waiting on a pipe, say), it finishes the packets already read, then
        gets a ValueError saying the capture was closed and closes the file itself."""
        gen = getattr(self, "_gen", None)
        if gen is not None:
            deadline = None
            while True:
                try:
                    gen.close()
                    break
                except ValueError:  # "generator already executing": someone is inside it
                    now = time.monotonic()
                    deadline = deadline or now + CLOSE_PATIENCE
                    if now >= deadline or _inside(gen):
                        self._stream = _ClosedStream(self)  # the reader's next read stops it
                        return
                    time.sleep(0.001)
        self._close_files()

    def _close_files(self) -> None:
        closers, self._closers = self._closers, []
        for c in closers:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing must not mask the real error
                pass

    def __repr__(self) -> str:
        # public attributes only: the readers that set them may change underneath
        kind = f"{getattr(self, 'format', '?')} {'.'.join(map(str, getattr(self, 'version', ())))}"
        links = ",".join(dict.fromkeys(i.linktype_name for i in self.interfaces)) or "no interface yet"
        packed = "" if self.compression == "none" else f" {self.compression}"
        # self.frames is kept up to date only when the walk ends (a store per packet costs)
        ended = "" if self.clean_end is None else \
            f", {'ended' if self.clean_end else 'stopped at damage'} after {self.frames} packets"
        kept = "" if self.filter is None else f", filter {self.filter!r}"
        return (f"<purepcap.Capture {self.name!r} {kind}{packed} {links} {getattr(self, 'precision', '?')}"
                f"{kept}{ended}>")

    def describe(self) -> dict[str, Any]:
        """What the file says of itself, as plain data."""
        return {
            "name": self.name,
            "format": self.format,
            "version": f"{self.version[0]}.{self.version[1]}",
            "byte_order": self.byte_order,
            "compression": self.compression,
            "snaplen": self.snaplen,
            "precision": self.precision,
            "linktype": self.linktype,
            "modified": self.modified,
            "fcs_length": self.fcs_length,
            "interfaces": [
                {"index": i.index, "linktype": i.linktype, "linktype_name": i.linktype_name,
                 "snaplen": i.snaplen, "name": i.name, "precision": i.precision, "section": i.section}
                for i in self.interfaces
            ],
        }


CLOSE_PATIENCE = 0.5  # seconds close() waits for a reading thread to step out of the reader


def _inside(gen: Any) -> bool:
    """Whether this thread is running ``gen`` (close() called from within the reader)."""
    frame = sys._getframe(1)
    target = gen.gi_frame
    while frame is not None:
        if frame is target:
            return True
        frame = frame.f_back
    return False


class _ClosedStream:
    """What a Capture reads after close() found another thread (or itself) inside the
    reader: the reading thread closes the file here and stops, as on a closed file."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture

    def read(self, n: int = -1) -> bytes:
        self._capture._close_files()
        raise ValueError(f"{self._capture.name}: the capture was closed while it was being read")


def open_capture(source: Source, *, strict: bool = True, errors: str | None = None,
                 storage_options: dict | None = None,
                 span: Span | None = None) -> Capture:
    """Open a pcap or pcapng capture (possibly compressed) for reading Packets."""
    return Capture(source, strict=strict, errors=errors, storage_options=storage_options, span=span)


# -- splitting a capture into independently readable byte ranges ---------------------------
def read_pcapng_head(read: Callable[[int], bytes], head: bytes) -> tuple[bytes, int, int]:
    """Read on from ``head`` (the start of a pcapng stream) until its section header and
    the interface blocks right behind it are whole (``leading_blocks`` says how far).

    Returns (everything read, ``head`` included; the length of those leading blocks; how
    many interface blocks they hold). The length is 0 when the stream ends inside them
    or the section header's length is out of bounds. Reads double in size, so a long run
    of interface blocks costs linear time; it stops at the interface budget. For the
    batch walkers, which then let PcapngState parse the blocks and walk the packets.
    """
    if len(head) < 12:
        return head, 0, 0
    order = "<" if struct.unpack_from("<I", head, 8)[0] == BYTE_ORDER_MAGIC else ">"
    held = bytearray(head)
    pos = idbs = 0
    while True:
        pos, idbs, more = leading_blocks(held, order, pos, idbs)
        if not more:
            return bytes(held), pos, idbs
        data = read(max(65536, len(held)))
        if not data:
            return bytes(held), 0, 0
        held += data


# Spans of one pcapng section each carry the section's leading blocks; where interface
# blocks come between packets, every span holds its own longer copy. Past this many
# bytes of such copies in all, no new span is cut (the spans grow instead), so that
# splitting a crafted file cannot take memory without bound.
SPLIT_PREFIX_BUDGET = MAX_BLOCK


def split_capture(path: str | os.PathLike, part_bytes: int = 64 * 1024 * 1024) -> list[Span]:
    """Cut an uncompressed capture file into spans of about ``part_bytes`` each.

    One pass reads only record (block) headers and seeks over the data, so it costs
    one small read per record. Spans begin on record boundaries and, for pcapng,
    carry the section and interface blocks needed to decode them. Damage ends the pass:
    the last span then runs to the end of the file, and its reader reports the damage.
    """
    size = os.path.getsize(path)
    # a file whose header the reader refuses is refused here with the reader's own error
    Capture(path).close()
    with open(path, "rb") as f:
        head = f.read(PCAP_HEADER_LEN)
        if len(head) >= 4 and struct.unpack_from("<I", head)[0] == PCAPNG_SHB:
            return _split_pcapng(f, size, part_bytes)
        if len(head) < PCAP_HEADER_LEN or struct.unpack_from("<I", head)[0] not in PCAP_MAGICS:
            raise NotACaptureError(f"{os.fspath(path)}: not an uncompressed capture file; cannot split",
                                   offset=0, frame=0)
        hdr = read_pcap_header(head)
        reclen = hdr.variant.record_len
        unpack = struct.Struct(hdr.variant.order + PCAP_RECORD).unpack_from
        spans, start, first, frame, pos = [], PCAP_HEADER_LEN, 1, 0, PCAP_HEADER_LEN
        while True:
            if pos - start >= part_bytes:
                spans.append(Span(start, pos, first, head))
                start, first = pos, frame + 1
            f.seek(pos)
            rec = f.read(reclen)
            if len(rec) < reclen:
                break
            _, _, caplen, length = unpack(rec, 0)
            if hdr.swaps_lengths and caplen > length:
                caplen = length
            if caplen > hdr.record_limit or pos + reclen + caplen > size:
                break  # damage: the reader of the last span will report it
            pos += reclen + caplen
            frame += 1
        spans.append(Span(start, size, first, head))
        return spans


def _split_pcapng(f: IO[bytes], size: int, part_bytes: int) -> list[Span]:
    # The walk keeps a PcapngState as the reader does and judges every section header and
    # interface block by the reader's rules, and every packet block's fields and trailing
    # length: damage ends the walk before that block, so the damage lies in the body of the
    # last span, where its reader meets it exactly as a whole read does (strict or not),
    # and no prefix ever holds a block the reader would refuse. A step reads the last
    # block's trailing length and this block's header in one read.
    spans: list[Span] = []
    st = PcapngState()
    pos = frame = 0
    section_blocks: list[bytes] = []  # SHB + IDBs of the current section
    section_at: list[tuple[int, int]] = []  # where each of them is, and the frames before it
    section_prefix = b""  # the same, joined, once a span needs them
    prefix_total = 0  # bytes of distinct prefixes the spans hold (SPLIT_PREFIX_BUDGET)
    span_start, span_first = 0, 1
    span_prefix: tuple[bytes, tuple[tuple[int, int], ...]] | None = None
    last_len = 0  # the length of the block before pos, whose trailer the next read holds

    def prefix() -> tuple[bytes, tuple[tuple[int, int], ...]]:
        nonlocal section_prefix, prefix_total
        if len(section_prefix) != sum(map(len, section_blocks)):
            section_prefix = b"".join(section_blocks)
            prefix_total += len(section_prefix)
        return section_prefix, tuple(section_at)

    def cut(stop: int, base: int | None = None, section: int | None = None) -> None:
        data, at = span_prefix or prefix()
        spans.append(Span(span_start, stop, span_first, data, st.interface_base if base is None else base,
                          st.sections if section is None else section, at))

    while pos + 12 <= size:
        f.seek(pos - 4 if last_len else pos)
        raw = f.read((4 if last_len else 0) + PACKET_BLOCK_HEAD)
        if last_len:
            if struct.unpack_from(st.order + "I", raw)[0] != last_len:
                pos -= last_len  # that block is damaged: the reader of the last span says how
                break
            raw = raw[4:]
        if len(raw) < 12:
            break
        order = st.order
        btype = struct.unpack_from(order + "I", raw)[0]  # the SHB type reads the same either way
        if btype == PCAPNG_SHB:
            try:
                order = shb_byte_order(raw, 0, pos)
            except PcapError:
                break
        blen = struct.unpack_from(order + "I", raw, 4)[0]
        if not block_length_ok(btype, blen) or blen & 3 or pos + blen > size:
            break  # damage: the reader of the last span will report it
        if btype == PCAPNG_SHB or btype == BT_IDB:
            f.seek(pos)
            block = f.read(blen)
            if struct.unpack_from(order + "I", block, blen - 4)[0] != blen:
                break  # damage: the reader of the last span will report it
            was = st.order, st.interface_base, st.section_ifaces, st.sections
            try:
                if btype == PCAPNG_SHB:
                    st.order = order
                    st.parse_shb(block, 0, blen, pos)
                else:
                    st.parse_idb(block, 0, blen, pos)
            except PcapError:
                st.order, st.interface_base, st.section_ifaces, st.sections = was
                break  # (over the interface budget too)
            last_len = 0  # its trailer was read with it
            if btype == PCAPNG_SHB:
                if frame + 1 > span_first:
                    cut(pos, was[1], was[3])
                section_blocks, section_at = [block], [(pos, frame)]
                span_start, span_first = pos + blen, frame + 1
                span_prefix = prefix()
            else:
                section_blocks.append(block)
                section_at.append((pos, frame))
                if span_start == pos:  # no packet yet in this span: the IDB joins its prefix
                    span_start = pos + blen
                    span_prefix = None  # joined when the span is cut or the section ends
            pos += blen
            continue
        if btype in PACKET_BLOCKS:
            if len(raw) < PACKET_BLOCK_HEAD and btype != BT_SPB:
                break
            if packet_block_damage(btype, blen, raw, 0, order, len(st.section_ifaces), pos) is not None:
                break
            if span_prefix is None:
                span_prefix = prefix()
            if pos - span_start >= part_bytes and prefix_total <= SPLIT_PREFIX_BUDGET:
                cut(pos)
                span_start, span_first, span_prefix = pos, frame + 1, prefix()
            frame += 1
        last_len = blen
        pos += blen
    cut(size)
    return spans


# -- writing ------------------------------------------------------------------------------
def _open_dest(dest: str | os.PathLike | IO[bytes]) -> tuple[IO[bytes], bool]:
    if isinstance(dest, str) and dest == "-":
        return sys.stdout.buffer, False
    if isinstance(dest, (str, os.PathLike)):
        return open(dest, "wb"), True
    return dest, False


def _pair(item: Packet | tuple) -> tuple[int | None, bytes, int | None]:
    if isinstance(item, Packet):
        return item.time, item.data, item.length
    if len(item) == 2:
        return item[0], item[1], None
    return item[0], item[1], item[2]


class _Writer:
    def __init__(self, dest: str | os.PathLike | IO[bytes]) -> None:
        self._f, self._owned = _open_dest(dest)
        self.packets = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._f is None:
            return
        try:
            self._f.flush()
        finally:
            if self._owned:
                self._f.close()
            self._f = None

    def write(self, item: Packet | tuple, **kw: Any) -> None:
        """Write a Packet, or a ``(time_ns, data)`` / ``(time_ns, data, length)`` tuple."""
        t, data, length = _pair(item)
        self.write_packet(t, data, length=length, **kw)

    def write_all(self, items: Iterable[Packet | tuple]) -> int:
        n = 0
        for item in items:
            self.write(item)
            n += 1
        return n

    def write_packet(self, time: int | None, data: bytes, *, length: int | None = None) -> None:
        raise NotImplementedError


class PcapWriter(_Writer):
    """Writes classic pcap, with micro- or nanosecond timestamps, in either byte order."""

    def __init__(self, dest: str | os.PathLike | IO[bytes], *, linktype: int = linktypes.EN10MB,
                 snaplen: int = linktypes.MAX_SNAPLEN, nanosecond: bool = False,
                 byte_order: str = "little", version: tuple[int, int] = (2, 4), fcs_length: int | None = None,
                 modified: bool = False) -> None:
        super().__init__(dest)
        order = {"little": "<", "big": ">"}[byte_order]
        if modified and nanosecond:
            raise ValueError("the modified pcap format has no nanosecond variant")
        magic = 0xA1B2CD34 if modified else (0xA1B23C4D if nanosecond else 0xA1B2C3D4)
        self._div = 1 if nanosecond else 1000
        self._ticks = NS // self._div
        self._rec = struct.Struct(order + "IIII")
        self._modified_tail = b"\x00" * 8 if modified else b""
        self.linktype = linktype
        self.snaplen = snaplen
        ltfield = linktype
        if fcs_length is not None:
            ltfield |= 0x04000000 | ((fcs_length // 2) << 28)
        self._f.write(struct.pack(order + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, ltfield))

    def write_packet(self, time: int | None, data: bytes, *, length: int | None = None) -> None:
        if time is None:
            time = 0
        sec, frac = divmod(time // self._div, self._ticks)
        if not 0 <= sec <= 0xFFFFFFFF:
            raise ValueError(f"time {time} ns does not fit a pcap timestamp")
        caplen = len(data)
        self._f.write(self._rec.pack(sec, frac, caplen, caplen if length is None else length))
        if self._modified_tail:
            self._f.write(self._modified_tail)
        self._f.write(data)
        self.packets += 1


def _opt(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


class PcapngWriter(_Writer):
    """Writes pcapng: one or several sections and interfaces, either byte order.

    ``tsresol`` is the raw if_tsresol value: n for 10^-n seconds, 0x80|n for 2^-n.
    """

    def __init__(self, dest: str | os.PathLike | IO[bytes], *, linktype: int | None = linktypes.EN10MB,
                 snaplen: int = linktypes.MAX_SNAPLEN, tsresol: int = 9, byte_order: str = "little",
                 name: str | None = None, application: str | None = "purepcap") -> None:
        super().__init__(dest)
        self._application = application
        self.new_section(byte_order)
        if linktype is not None:
            self.add_interface(linktype, snaplen=snaplen, tsresol=tsresol, name=name)

    def new_section(self, byte_order: str | None = None) -> None:
        """Start a new section; its interfaces are numbered from 0 again."""
        if byte_order is not None:
            self._order = {"little": "<", "big": ">"}[byte_order]
        o = self._order
        opts = b""
        if self._application:
            opts = _opt(o, SHB_USERAPPL, self._application.encode()) + _opt(o, 0, b"")
        body = struct.pack(o + "IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts
        self._f.write(_block(o, PCAPNG_SHB, body))
        self._ifaces: list[tuple[int, int, int]] = []  # (ticks per second, tsoffset, snaplen)

    def add_interface(self, linktype: int, *, snaplen: int = linktypes.MAX_SNAPLEN, tsresol: int = 9,
                      tsoffset: int = 0, name: str | None = None, description: str | None = None,
                      fcslen: int | None = None) -> int:
        """Add an interface to the current section; returns its number there."""
        o = self._order
        opts = b""
        if name is not None:
            opts += _opt(o, IF_NAME, name.encode())
        if description is not None:
            opts += _opt(o, IF_DESCRIPTION, description.encode())
        if tsresol != 6:
            opts += _opt(o, IF_TSRESOL, bytes([tsresol]))
        if tsoffset:
            opts += _opt(o, IF_TSOFFSET, struct.pack(o + "q", tsoffset))
        if fcslen is not None:
            opts += _opt(o, IF_FCSLEN, bytes([fcslen]))
        if opts:
            opts += _opt(o, 0, b"")
        self._f.write(_block(o, BT_IDB, struct.pack(o + "HHI", linktype, 0, snaplen) + opts))
        self._ifaces.append((decode_tsresol(tsresol), tsoffset, snaplen))
        return len(self._ifaces) - 1

    def _ticks(self, time: int, interface: int) -> int:
        if not 0 <= interface < len(self._ifaces):
            raise ValueError(f"interface {interface} not defined in this section")
        ticks_per_s, tsoffset, _ = self._ifaces[interface]
        ns = time - tsoffset * NS
        ticks = ns * ticks_per_s // NS
        if not 0 <= ticks <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"time {time} ns does not fit a pcapng timestamp")
        return ticks

    def write(self, item: Packet | tuple, *, interface: int | None = None) -> None:  # type: ignore[override]
        t, data, length = _pair(item)
        if interface is None:
            interface = item.interface if isinstance(item, Packet) and item.interface < len(self._ifaces) else 0
        if t is None:
            self.write_simple(data, length=length)
        else:
            self.write_packet(t, data, length=length, interface=interface)

    def write_packet(self, time: int | None, data: bytes, *, length: int | None = None,
                     interface: int = 0) -> None:
        o = self._order
        ticks = self._ticks(time or 0, interface)
        caplen = len(data)
        body = struct.pack(o + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, caplen,
                           caplen if length is None else length) + data
        self._f.write(_block(o, BT_EPB, body))
        self.packets += 1

    def write_simple(self, data: bytes, *, length: int | None = None) -> None:
        """A simple packet block: no timestamp, interface 0."""
        if not self._ifaces:
            raise ValueError("a simple packet block needs interface 0")
        o = self._order
        self._f.write(_block(o, BT_SPB, struct.pack(o + "I", len(data) if length is None else length) + data))
        self.packets += 1

    def write_obsolete(self, time: int, data: bytes, *, length: int | None = None, interface: int = 0) -> None:
        """The obsolete Packet Block (type 2), which old writers still produce."""
        o = self._order
        ticks = self._ticks(time, interface)
        caplen = len(data)
        body = struct.pack(o + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF, caplen,
                           caplen if length is None else length) + data
        self._f.write(_block(o, BT_PB, body))
        self.packets += 1

    def write_block(self, btype: int, body: bytes) -> None:
        """Any other block (name resolution, statistics, custom), written as given."""
        self._f.write(_block(self._order, btype, body))


def open_writer(dest: str | os.PathLike | IO[bytes], *, format: str | None = None,
                linktype: int = linktypes.EN10MB, snaplen: int = linktypes.MAX_SNAPLEN,
                nanosecond: bool = True, interfaces: list[Interface] | None = None) -> _Writer:
    """A writer chosen by ``format`` or by the file name: ``.pcapng`` gives pcapng, else pcap."""
    if format is None:
        format = "pcapng" if isinstance(dest, (str, os.PathLike)) and os.fspath(dest).endswith(".pcapng") else "pcap"
    if format == "pcapng":
        if interfaces:
            w = PcapngWriter(dest, linktype=None)
            section = interfaces[0].section
            for iface in interfaces:
                if iface.section != section:
                    break
                w.add_interface(iface.linktype, snaplen=iface.snaplen, name=iface.name,
                                tsresol=9 if nanosecond else 6)
            return w
        return PcapngWriter(dest, linktype=linktype, snaplen=snaplen, tsresol=9 if nanosecond else 6)
    if format == "pcap":
        if interfaces:
            linktype, snaplen = interfaces[0].linktype, interfaces[0].snaplen
        return PcapWriter(dest, linktype=linktype, snaplen=snaplen, nanosecond=nanosecond)
    raise ValueError(f"unknown capture format {format!r} (pcap or pcapng)")


del io
