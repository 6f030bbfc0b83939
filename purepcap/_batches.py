# Batches: packets in one bytes buffer plus numpy arrays of where each packet's data
# starts and how long it is -- what the column decoder (_columns) consumes.
#
# Strategy: classic pcap files and pcapng enhanced packet blocks are batched straight
# from reused read buffers (one Python step per record follows the record lengths;
# every check on them is made with numpy afterwards), a file on disk being read a
# chunk ahead in a worker thread, and anything irregular is handed to
# purepcap.format's reader from that record on, so damage is reported exactly as it
# reports it. Other sources (filters, live captures, lists of Packets) are batched by
# joining Packet.data.
from __future__ import annotations

import io
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from typing import IO, Any

import numpy as np

from ._container import (
    BT_EPB,
    DAMAGE,
    EPB_MIN,
    INTERFACE,
    MAX_BLOCK,
    NEED_MORE,
    NS,
    PACKET,
    PACKETLESS_BLOCKS,
    PCAP_HEADER_LEN,
    PCAP_MAGICS,
    PCAPNG_SHB,
    SECTION,
    IfaceTime,
    PcapHeader,
    PcapngState,
    pcap_cut_short,
    pcap_record_too_long,
    pcapng_block,
    pcapng_cut_short,
    pcapng_state_from,
    read_pcap_header,
    report_damage,
)
from ._sources import open_source, source_name
from .errors import PcapError
from .format import CHUNK_SIZE, Packet, Span, span_prefix_error

__all__ = ["Batch", "NotFastPcap", "pcap_batches", "packet_batches"]

NAT = np.iinfo(np.int64).min  # datetime64 NaT: a simple packet block has no time
PAD = 128  # zero bytes after every batch buffer: fixed-offset reads never run off its end
BATCH_BYTES = CHUNK_SIZE  # generic batches: about this much packet data each


def _gather(buf: Any, at: np.ndarray, size: int) -> np.ndarray:
    """``size`` bytes at each offset, as one fixed-size bytes record per offset (the
    fastest gather numpy has for this: one small copy per row)."""
    heads = np.ndarray((len(buf) - size + 1,), dtype=f"S{size}", buffer=buf, strides=(1,))
    return heads[at]


class Batch:
    """Packets in one buffer: packet i's data is ``buf[off[i]:off[i] + caplen[i]]``."""

    __slots__ = ("buf", "off", "caplen", "length", "time", "frame", "linktype", "interface")

    def __init__(self, buf: bytes, off: np.ndarray, caplen: np.ndarray, length: np.ndarray,
                 time: np.ndarray, frame: np.ndarray, linktype: np.ndarray | int,
                 interface: np.ndarray | int) -> None:
        self.buf = buf  # ends with PAD zero bytes
        self.off = off
        self.caplen = caplen
        self.length = length
        self.time = time
        self.frame = frame
        self.linktype = linktype
        self.interface = interface

    def __len__(self) -> int:
        return len(self.off)


# -- batches from Packets ---------------------------------------------------------------
def packet_batches(packets: Iterable[Packet], batch_bytes: int = BATCH_BYTES) -> Iterator[Batch]:
    """Batches from any iterable of Packets (a Capture, a filtered or live capture, a list)."""
    datas: list[bytes] = []
    meta: list[tuple] = []
    size = 0
    for p in packets:
        if isinstance(p, list):  # a live capture with chunksize yields lists
            for q in p:
                datas.append(q.data)
                meta.append((q.frame, q.time, q.length, q.linktype, q.interface))
                size += len(q.data)
        else:
            datas.append(p.data)
            meta.append((p.frame, p.time, p.length, p.linktype, p.interface))
            size += len(p.data)
        if size >= batch_bytes:
            yield _batch_of(datas, meta)
            datas, meta, size = [], [], 0
    if datas:
        yield _batch_of(datas, meta)


def _batch_of(datas: list[bytes], meta: list[tuple]) -> Batch:
    caplen = np.fromiter(map(len, datas), dtype=np.int64, count=len(datas))
    off = np.zeros(len(datas), dtype=np.int64)
    np.cumsum(caplen[:-1], out=off[1:])
    frame, time, length, linktype, interface = zip(*meta)
    return Batch(b"".join(datas) + bytes(PAD), off, caplen, np.array(length, dtype=np.int64),
                 _times(time), np.array(frame, dtype=np.int64), np.array(linktype, dtype=np.int64),
                 np.array(interface, dtype=np.int64))


def _times(times: tuple) -> np.ndarray:
    try:
        return np.array(times, dtype=np.int64)
    except (TypeError, OverflowError):
        # None (simple packet block) or a time past 2262 that datetime64[ns] cannot hold
        lo, hi = NAT + 1, np.iinfo(np.int64).max
        return np.array([t if t is not None and lo <= t <= hi else NAT for t in times], dtype=np.int64)


# -- batches straight from a classic pcap file ------------------------------------------
class NotFastPcap(Exception):
    """The source is not a classic pcap the batch reader handles; ``head`` was consumed."""

    def __init__(self, stream: IO[bytes], head: bytes, closers: list) -> None:
        super().__init__("not a plain pcap")
        self.stream, self.head, self.closers = stream, head, closers


def pcap_batches(source: Any, *, storage_options: dict | None = None, span: Span | None = None,
                 chunk_size: int = CHUNK_SIZE, errors: str = "raise") -> Iterator[Batch]:
    """Batches read straight from a classic pcap (version 2.4, any magic) or a pcapng
    file's enhanced packet blocks, compressed or not.

    Raises NotFastPcap before the first batch when the source is anything else; the
    exception carries the opened stream and the bytes already read from it. Anything
    irregular (a lying length, a cut-short end) is handed to purepcap.format's reader
    from that record on, so damage is reported exactly as it reports it: by the
    ``errors`` policy (purepcap.errors.ERRORS) through _container.report_damage.
    """
    stream, closers, _ = open_source(source, storage_options)
    try:
        if span is not None:
            head = span.prefix
        else:
            head = b""
            while len(head) < 24:
                more = stream.read(24 - len(head))
                if not more:
                    break
                head += more
        magic = struct.unpack_from("<I", head)[0] if len(head) >= 4 else None
        if magic == PCAPNG_SHB and len(head) >= 12:
            return _pcapng_start(source, stream, closers, head, span, chunk_size, errors)
        if magic not in PCAP_MAGICS or len(head) < PCAP_HEADER_LEN:
            raise NotFastPcap(stream, head, closers)
        try:
            hdr = read_pcap_header(head)
        except PcapError:  # purepcap.format's reader reports it
            raise NotFastPcap(stream, head, closers) from None
        if hdr.swaps_lengths:  # pre-2.4 lengths are judged record by record: the reader's work
            raise NotFastPcap(stream, head, closers)
    except NotFastPcap:
        raise
    except BaseException:
        for c in closers:
            c.close()
        raise
    return _pcap_batches(source, stream, closers, head, hdr, span, chunk_size, errors)


class _ChunkBuffer:
    """The read buffer of a batch walker: ``buf[:end]`` holds the unfinished record
    carried over from the last chunk, then the new chunk, then PAD zero bytes (so that
    fixed-size gathers may run past a short last record). At most ``limit`` bytes are
    taken from the stream (a span's end), all of them if None.

    Reads go straight into the buffer (readinto) where the stream allows, so a chunk is
    copied once. On a regular file the next chunk is read by a worker thread while the
    walker decodes this one, into a second buffer behind room for the carried record:
    the kernel's copy releases the GIL, so it runs beside the decoding (it was 0.12 s
    of to_pandas()' 0.87 s on 1M mixed packets). A carried record larger than that
    room is joined to the next chunk in the calling thread.
    """

    ROOM = 256 * 1024  # for a carried record in front of a chunk read ahead

    def __init__(self, stream: Any, size: int, held: bytes = b"", limit: int | None = None) -> None:
        self._stream = stream
        self._size = size
        self._left = limit  # bytes the stream may still give; None: unbounded
        self._readinto = getattr(stream, "readinto", None)
        self._worker: Any = None
        self._pending: Any = None  # the read running in the worker, into the spare buffer
        if _regular_file(stream):
            from concurrent.futures import ThreadPoolExecutor

            self._worker = ThreadPoolExecutor(1, thread_name_prefix="purepcap-read-ahead")
        room = self.ROOM if self._worker is not None else 0
        self._mem = bytearray(room + max(size, len(held)) + PAD)
        self._spare = bytearray(len(self._mem)) if self._worker is not None else None
        self._at = room - len(held) if len(held) <= room else 0  # where buf starts in _mem
        self._mem[self._at:self._at + len(held)] = held
        self.buf: Any = memoryview(self._mem)[self._at:]
        self._tail = (0, len(held))  # what the next fill keeps, as offsets in buf

    def carry(self, pos: int, end: int, need: int = 0) -> int:
        """Keep the unfinished record in ``buf[pos:end]`` for the next fill; its length.
        ``need`` is the whole record's length where the walker knows it (0 if not)."""
        self._tail = (pos, end)
        self._need = need
        return end - pos

    _need = 0

    def _want(self, have: int = 0, need: int = 0) -> int:
        # A record bigger than a chunk is completed by one read of what it lacks, into a
        # buffer of its size (peak memory: the record and one chunk), or, where its
        # length is not known, in doubling reads, not chunk by chunk.
        n = max(self._size, need - have if need > self._size else have)
        return n if self._left is None else min(n, self._left)

    def _read_into(self, mem: bytearray, at: int, n: int) -> bytes | int:
        """Read up to n bytes into mem[at:]; the count, or the bytes when the stream
        cannot readinto."""
        if n <= 0:
            return 0
        if self._readinto is not None:
            try:
                return self._readinto(memoryview(mem)[at:at + n]) or 0
            except (NotImplementedError, io.UnsupportedOperation):
                self._readinto = None
        if n <= self._size:
            return self._stream.read(n) or b""
        # a record longer than a chunk: pieces of a chunk each go straight into place, so
        # that no copy of the whole record is made beside the buffer
        got = 0
        while got < n:
            piece = self._stream.read(min(self._size, n - got))
            if not piece:
                break
            mem[at + got:at + got + len(piece)] = piece
            got += len(piece)
        return got

    def _take(self, got: bytes | int, mem: bytearray, at: int) -> int:
        if isinstance(got, bytes):
            mem[at:at + len(got)] = got
            got = len(got)
        if self._left is not None:
            self._left -= got
        return got

    def fill(self) -> int:
        """Read the next chunk behind the kept record; how many bytes came (0 at the end).
        Afterwards ``buf`` starts with the kept record."""
        pos, end = self._tail
        have = end - pos
        need, self._need = self._need, 0
        if self._pending is not None and have <= self.ROOM and need <= self._size:
            got = self._take(self._pending.result(), self._spare, self.ROOM)
            self._pending = None
            start = self.ROOM - have
            self._spare[start:self.ROOM] = self.buf[pos:end]
            self._mem, self._spare, self._at = self._spare, self._mem, start
        else:
            early = self._collect()
            kept = bytes(self.buf[pos:end])  # a copy: it may overlap where it goes
            want = self._want(have, need)
            if have + len(early) + want + PAD > len(self._mem) - self._at:  # a record bigger than a chunk
                # (the spare keeps its size: a chunk read ahead always fits behind its room)
                self._mem = bytearray(self._at + have + len(early) + want + PAD)
            self._mem[self._at:self._at + have] = kept
            at = self._at + have
            self._mem[at:at + len(early)] = early
            at += len(early)
            got = len(early) + self._take(self._read_into(self._mem, at, want), self._mem, at)
        end = self._at + have + got
        self._mem[end:end + PAD] = bytes(PAD)
        self.buf = memoryview(self._mem)[self._at:]
        if got and self._worker is not None and self._want() > 0:
            self._pending = self._worker.submit(self._read_into, self._spare, self.ROOM, self._want())
        return got

    def _collect(self) -> bytes:
        """The chunk read ahead, if any, as bytes (the worker is then idle)."""
        if self._pending is None:
            return b""
        got = self._pending.result()
        self._pending = None
        n = self._take(got, self._spare, self.ROOM)
        return bytes(self._spare[self.ROOM:self.ROOM + n])

    def rest(self, pos: int, end: int) -> bytes:
        """``buf[pos:end]`` and whatever was read ahead of it: all the stream gave that
        no batch took, for the container reader to go on from."""
        return bytes(self.buf[pos:end]) + self._collect()

    def close(self) -> None:
        """Let a read in the worker finish (before the stream is closed), and stop it."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = self._pending = None


def _fill(chunks: _ChunkBuffer, name: str, frame: int, errors: str) -> int | None:
    """chunks.fill(), with damage the stream itself reports (a decompressor's) reported
    by the ``errors`` policy, as the container reader reports it: None when the walk
    is to stop there."""
    try:
        return chunks.fill()
    except PcapError as exc:
        report_damage(exc, exc.source or name, frame, errors)
        return None


def _regular_file(stream: Any) -> bool:
    """Whether reading ahead is safe and pays: an unbuffered file on disk (a read there
    never waits on a writer, and releases the GIL for its whole copy)."""
    if type(stream) is not io.FileIO:
        return False
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def _pcap_batches(source: Any, stream: IO[bytes], closers: list, head: bytes, file_hdr: PcapHeader,
                  span: Span | None, chunk_size: int, errors: str) -> Iterator[Batch]:
    order, ticks, reclen, _ = file_hdr.variant
    name = source_name(source)
    linktype = file_hdr.linktype
    caplen_at = struct.Struct(order + "8xI").unpack_from  # a record header's caplen
    limit = file_hdr.record_limit
    mult = NS // ticks
    rec_dtype = np.dtype([("sec", order + "u4"), ("frac", order + "u4"), ("caplen", order + "u4"),
                          ("length", order + "u4")])
    chunks: _ChunkBuffer | None = None
    try:
        if span is not None:
            stream.seek(span.start)
            base, frame, stop = span.start, span.first_frame - 1, span.stop
        else:
            base, frame, stop = 24, 0, None
        chunks = _ChunkBuffer(stream, chunk_size, limit=None if stop is None else stop - base)
        have = 0  # bytes of the buffer holding data
        eof = False
        while not eof:
            got = _fill(chunks, name, frame, errors)
            if got is None:
                return
            buf = chunks.buf
            if not got:
                eof = True
            end = have + got
            starts: list[int] = []
            append = starts.append
            pos = 0
            last = end - reclen
            # The one Python step per record. Only the last record walked can run past
            # the data, so it is taken back after the loop rather than tested in it.
            while pos <= last:
                append(pos)
                pos += reclen + caplen_at(buf, pos)[0]
            if pos > end:
                pos = starts.pop()
            irregular = pos <= last and caplen_at(buf, pos)[0] > limit
            if starts:
                rec = np.fromiter(starts, dtype=np.int64, count=len(starts))
                hdr = _gather(buf, rec, 16).view(rec_dtype)
                caplen = hdr["caplen"].astype(np.int64)
                bad = np.flatnonzero(caplen > limit)
                if len(bad):  # a lying length the walk stepped over: stop before it
                    k = int(bad[0])
                    rec, hdr, caplen = rec[:k], hdr[:k], caplen[:k]
                    pos, irregular = int(starts[k]), True
                n = len(rec)
                if n:
                    frac = hdr["frac"].astype(np.int64) * mult
                    # libpcap's rule for fractions of a second or more: a signed 32-bit product
                    frac &= 0xFFFFFFFF
                    frac[frac >= 0x80000000] -= 0x100000000
                    yield Batch(buf, rec + reclen, caplen, hdr["length"].astype(np.int64),
                                hdr["sec"].astype(np.int64) * NS + frac,
                                np.arange(frame + 1, frame + 1 + n, dtype=np.int64), linktype, 0)
                    frame += n
            if irregular:
                report_damage(pcap_record_too_long(base + pos, frame, caplen_at(buf, pos)[0], file_hdr),
                              name, frame, errors)
                return
            if eof and pos < end:
                report_damage(pcap_cut_short(base + pos, frame, end - pos < reclen), name, frame, errors)
                return
            # a record longer than a chunk is gathered in one read of what it lacks
            have = chunks.carry(pos, end, reclen + caplen_at(buf, pos)[0] if end - pos >= reclen else 0)
            base += pos
    finally:
        if chunks is not None:
            chunks.close()  # before the stream it may be reading
        for c in closers:
            c.close()


# -- batches straight from a pcapng file ------------------------------------------------
def _pcapng_start(source: Any, stream: IO[bytes], closers: list, head: bytes, span: Span | None,
                  chunk_size: int, errors: str) -> Iterator[Batch]:
    """Read the section header and the interface blocks after it (or take them from the
    span) and parse them; the packets are then walked here. Called inside pcap_batches'
    guard, which closes the stream on any error but NotFastPcap."""
    from .format import read_pcapng_head

    if span is not None:
        prefix, held, base = span.prefix, b"", span.start
        try:
            st = pcapng_state_from(prefix, span.interface_base, span.section - 1)
        except PcapError as exc:
            exc.source = exc.source or source_name(source)
            raise span_prefix_error(exc, span) from None
        stream.seek(span.start)
    else:
        held, pos, _ = read_pcapng_head(stream.read, head)
        if not pos:
            raise NotFastPcap(stream, held, closers)
        prefix, held, base = held[:pos], held[pos:], pos
        try:
            st = pcapng_state_from(prefix)
        except PcapError:  # purepcap.format's reader reports it
            raise NotFastPcap(stream, prefix + held, closers) from None
    return _pcapng_batches(source, stream, closers, held, base, st, span, chunk_size, errors)


class _Interfaces:
    """The interface tables of one section, as numpy arrays indexed by interface id:
    link type, global index, ns per tick (0 where a tick is not a whole number of ns, or
    the offset is past +-2**62 ns: those times are computed in Python integers) and
    offset in ns."""

    def __init__(self, ifaces: list[IfaceTime]) -> None:
        self.ifaces = ifaces
        self.n = len(ifaces)
        self.linktype = np.array([i.linktype for i in ifaces] or [0], dtype=np.int64)
        self.index = np.array([i.index for i in ifaces] or [0], dtype=np.int64)
        self.mult = np.array([i.mult if i.div == 1 and abs(i.offset) < 1 << 62 else 0 for i in ifaces] or [0],
                             dtype=np.int64)
        self.offset = np.array([i.offset if abs(i.offset) < 1 << 62 else 0 for i in ifaces] or [0],
                               dtype=np.int64)


def _pcapng_batches(source: Any, stream: IO[bytes], closers: list, held: bytes, base: int,
                    st: PcapngState, span: Span | None, chunk_size: int, errors: str) -> Iterator[Batch]:
    name = source_name(source)
    strict = errors == "raise"
    order = st.order
    blen_at = struct.Struct(order + "4xI").unpack_from  # a block's length
    u32 = np.dtype(order + "u4")
    epb_dtype = np.dtype([("btype", u32), ("blen", u32), ("iid", u32), ("hi", u32),
                          ("lo", u32), ("caplen", u32), ("length", u32)])
    tab = _Interfaces(st.section_ifaces)
    chunks: _ChunkBuffer | None = None
    try:
        frame = span.first_frame - 1 if span else 0
        stop = span.stop if span else None
        chunks = _ChunkBuffer(stream, chunk_size, held, None if stop is None else stop - base - len(held))
        have = len(held)
        eof = False
        refill = True
        pos = 0
        while True:
            if refill:
                got = _fill(chunks, name, frame, errors)
                if got is None:
                    return
                buf = chunks.buf
                if not got:
                    eof = True
                end = have + got
                pos = 0
            refill = True
            # The one Python step per block follows block lengths only (at least 12 a
            # step, so a lying zero cannot stall it; such a block fails the checks).
            # Whether each block walked is a whole EPB or a block without packets is
            # then checked for all of them at once, and the batch ends before the first
            # that is not.
            starts: list[int] = []
            append = starts.append
            last = end - 12  # the last offset a block fits at
            walk = pos
            while walk <= last:
                append(walk)
                blen = blen_at(buf, walk)[0]
                walk += blen if blen >= 12 else 12
            pos, irregular, rec, is_epb = _check_blocks(buf, starts, walk, end, u32, pos)
            epbs = rec[is_epb]
            if len(epbs):
                e = _gather(buf, epbs, 28).view(epb_dtype)
                iid = e["iid"].astype(np.int64)
                caplen = e["caplen"].astype(np.int64)
                bad = np.flatnonzero((iid >= tab.n) | (caplen > e["blen"].astype(np.int64) - 32))
                if len(bad):  # the careful step reports (or reads) this block
                    k = int(bad[0])
                    pos, irregular = int(epbs[k]), True
                    epbs, e, iid, caplen = epbs[:k], e[:k], iid[:k], caplen[:k]
                n = len(e)
                if n:
                    one = tab.n == 1  # one interface: scalars, as for pcap
                    yield Batch(buf, epbs + 28, caplen, e["length"].astype(np.int64),
                                _pcapng_times(e, iid, tab),
                                np.arange(frame + 1, frame + 1 + n, dtype=np.int64),
                                int(tab.linktype[0]) if one else tab.linktype[iid],
                                int(tab.index[0]) if one else tab.index[iid])
                    frame += n
            if irregular or (eof and pos < end):
                # One block for the careful step, then back to the walk on the same buffer.
                what, value, nxt = pcapng_block(st, buf, pos, end, base, eof, strict)
                if what == NEED_MORE:
                    if eof:
                        report_damage(pcapng_cut_short(base + pos, frame), name, frame, errors)
                        return
                    have = chunks.carry(pos, end, _block_need(buf, pos, end, blen_at))
                    base += pos
                    continue
                if what == DAMAGE:
                    if nxt < 0:
                        report_damage(value, name, frame, errors)
                        return
                    st.note_skipped(value, name, frame, errors)
                elif what == PACKET:
                    it, t, caplen1, length1, at = value
                    frame += 1
                    yield _batch_of([bytes(buf[at:at + caplen1])], [(frame, t, length1, it.linktype, it.index)])
                elif what == SECTION or what == INTERFACE:
                    tab = _Interfaces(st.section_ifaces)
                    if st.order != order:
                        order = st.order
                        blen_at = struct.Struct(order + "4xI").unpack_from
                        u32 = np.dtype(order + "u4")
                        epb_dtype = np.dtype([("btype", u32), ("blen", u32), ("iid", u32), ("hi", u32),
                                              ("lo", u32), ("caplen", u32), ("length", u32)])
                pos = nxt
                refill = False
                continue
            if eof:
                return
            have = chunks.carry(pos, end, _block_need(buf, pos, end, blen_at))
            base += pos
    finally:
        if chunks is not None:
            chunks.close()  # before the stream it may be reading
        for c in closers:
            c.close()


def _block_need(buf: Any, pos: int, end: int, blen_at: Any) -> int:
    """The length of the block cut off at ``pos``, where it can be believed (else 0)."""
    if end - pos < 12 or struct.unpack_from("<I", buf, pos)[0] == PCAPNG_SHB:
        return 0  # (a section header's length may be in the other byte order)
    blen = blen_at(buf, pos)[0]
    return blen if blen <= MAX_BLOCK else 0


def _check_blocks(buf: Any, starts: list[int], walked_to: int, end: int,
                  u32: np.dtype, first: int = 0) -> tuple[int, bool, np.ndarray, np.ndarray]:
    """Check the blocks a length-only walk of ``buf[first:end]`` found at ``starts``.

    A block passes as the format reader's fast path would take it: an EPB of 32 bytes
    or more, or a block without packets of 12 or more, a multiple of 4 and below the
    block bound, whose trailing length repeats its length. The blocks before the first
    that fails are returned -- (where the walk stops, whether it stopped at a block the
    careful step must judge, their offsets, which of them are EPBs). A last block that
    the data cut short is left for the next read, unless its header already fails."""
    if not starts:
        return first, False, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    rec = np.fromiter(starts, dtype=np.int64, count=len(starts))
    nxt = np.empty_like(rec)
    nxt[:-1] = rec[1:]
    nxt[-1] = walked_to
    head = _gather(buf, rec, 8).view(u32).reshape(-1, 2)
    btype, blen = head[:, 0], head[:, 1].astype(np.int64)
    is_epb = btype == BT_EPB
    ok = (blen >= np.where(is_epb, EPB_MIN, 12)) & (blen < MAX_BLOCK) & ((blen & 3) == 0)
    if not is_epb.all():
        ok &= is_epb | np.isin(btype, list(PACKETLESS_BLOCKS))
    cut = walked_to > end  # the last block runs past the data
    whole = ok.copy()
    if cut:
        whole[-1] = False
    trail = np.flatnonzero(whole)
    ok[trail] &= _gather(buf, nxt[trail] - 4, 4).view(u32).astype(np.int64) == blen[trail]
    bad = np.flatnonzero(~ok)
    if len(bad):
        k = int(bad[0])
        return int(rec[k]), True, rec[:k], is_epb[:k]
    if cut:
        return int(rec[-1]), False, rec[:-1], is_epb[:-1]
    return walked_to, False, rec, is_epb


def _pcapng_times(e: np.ndarray, iid: np.ndarray, tab: _Interfaces) -> np.ndarray:
    """Nanoseconds from EPB ticks by each interface's IfaceTime rule; vectorised where
    int64 cannot overflow, in Python integers (NaT past 2262) elsewhere."""
    ticks = (e["hi"].astype(np.uint64) << np.uint64(32)) | e["lo"].astype(np.uint64)
    mult = tab.mult[iid]
    offs = tab.offset[iid]
    # |ticks * mult| < 2**62 and |offset| < 2**62 (checked per interface): no int64 overflow
    safe = (mult > 0) & (ticks < np.uint64(1 << 62) // np.maximum(mult, 1).astype(np.uint64))
    if safe.all():
        return ticks.astype(np.int64) * mult + offs
    out = np.empty(len(iid), dtype=np.int64)
    out[safe] = ticks[safe].astype(np.int64) * mult[safe] + offs[safe]
    lo, hi = NAT + 1, np.iinfo(np.int64).max
    for i in np.flatnonzero(~safe).tolist():
        t = tab.ifaces[int(iid[i])].ns(int(ticks[i]))
        out[i] = t if lo <= t <= hi else NAT
    return out
