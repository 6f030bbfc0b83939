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

from . import linktypes
from ._sources import open_source, source_name
from .format import _PACKETLESS_BLOCKS, _PCAPNG_MAX_BLOCK, _PCAPNG_SHB, CHUNK_SIZE, NS, Packet, Span

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
_PCAP_MAGICS = {  # as read little-endian: (byte order, ticks per second, record header length)
    0xA1B2C3D4: ("<", 1_000_000, 16), 0xD4C3B2A1: (">", 1_000_000, 16),
    0xA1B23C4D: ("<", NS, 16), 0x4D3CB2A1: (">", NS, 16),
    0xA1B2CD34: ("<", 1_000_000, 24), 0x34CDB2A1: (">", 1_000_000, 24),
}


class NotFastPcap(Exception):
    """The source is not a classic pcap the batch reader handles; ``head`` was consumed."""

    def __init__(self, stream: IO[bytes], head: bytes, closers: list) -> None:
        super().__init__("not a plain pcap")
        self.stream, self.head, self.closers = stream, head, closers


class _Prepend:
    """A stream that gives ``head`` first and then the rest of ``stream`` (for pipes)."""

    def __init__(self, head: bytes, stream: IO[bytes], name: str) -> None:
        self._head, self._stream, self.name = head, stream, name

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            data, self._head = self._head + (self._stream.read() or b""), b""
            return data
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._stream.read(n - len(data)) or b""
            return data
        return self._stream.read(n) or b""

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return True


def pcap_batches(source: Any, *, storage_options: dict | None = None, span: Span | None = None,
                 chunk_size: int = CHUNK_SIZE) -> Iterator[Batch]:
    """Batches read straight from a classic pcap (version 2.4, any magic) or a pcapng
    file's enhanced packet blocks, compressed or not.

    Raises NotFastPcap before the first batch when the source is anything else; the
    exception carries the opened stream and the bytes already read from it. Anything
    irregular (a lying length, a cut-short end) is handed to purepcap.format's reader
    from that record on, so damage is reported exactly as it reports it.
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
        if magic == _PCAPNG_SHB and len(head) >= 12:
            return _pcapng_start(source, stream, closers, head, span, chunk_size)
        if magic not in _PCAP_MAGICS or len(head) < 24:
            raise NotFastPcap(stream, head, closers)
        order, ticks, reclen = _PCAP_MAGICS[magic]
        _, major, minor, _, _, snaplen, ltfield = struct.unpack_from(order + "IHHiIII", head)
        if (major, minor) != (2, 4) or ltfield & 0x03FF0000:
            raise NotFastPcap(stream, head, closers)
    except NotFastPcap:
        raise
    except BaseException:
        for c in closers:
            c.close()
        raise
    return _pcap_batches(source, stream, closers, head, order, ticks, reclen, snaplen,
                         ltfield & 0xFFFF, span, chunk_size)


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

    def carry(self, pos: int, end: int) -> int:
        """Keep the unfinished record in ``buf[pos:end]`` for the next fill; its length."""
        self._tail = (pos, end)
        return end - pos

    def _want(self, have: int = 0) -> int:
        # a record bigger than a chunk is completed in doubling reads, not chunk by chunk
        n = max(self._size, have)
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
        return self._stream.read(n) or b""

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
        if self._pending is not None and have <= self.ROOM:
            got = self._take(self._pending.result(), self._spare, self.ROOM)
            self._pending = None
            start = self.ROOM - have
            self._spare[start:self.ROOM] = self.buf[pos:end]
            self._mem, self._spare, self._at = self._spare, self._mem, start
        else:
            early = self._collect()
            kept = bytes(self.buf[pos:end])  # a copy: it may overlap where it goes
            want = self._want(have)
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


def _regular_file(stream: Any) -> bool:
    """Whether reading ahead is safe and pays: an unbuffered file on disk (a read there
    never waits on a writer, and releases the GIL for its whole copy)."""
    if type(stream) is not io.FileIO:
        return False
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def _pcap_batches(source: Any, stream: IO[bytes], closers: list, head: bytes,
                  order: str, ticks: int, reclen: int, snaplen: int, linktype: int, span: Span | None,
                  chunk_size: int) -> Iterator[Batch]:
    caplen_at = struct.Struct(order + "8xI").unpack_from  # a record header's caplen
    # the container reader's bound on a record; anything above it is its business
    limit = max(min(snaplen, 32 * 1024 * 1024), linktypes.max_caplen(linktype))
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
            got = chunks.fill()
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
            if irregular or (eof and pos < end):
                yield from _irregular(source, stream, chunks.rest(pos, end), head, base + pos, frame, stop, span)
                return
            have = chunks.carry(pos, end)
            base += pos
    finally:
        if chunks is not None:
            chunks.close()  # before the stream it may be reading
        for c in closers:
            c.close()


# -- batches straight from a pcapng file ------------------------------------------------
_EPB = 6


def _pcapng_start(source: Any, stream: IO[bytes], closers: list, head: bytes, span: Span | None,
                  chunk_size: int) -> Iterator[Batch]:
    """Read the section header and the interface blocks after it (or take them from the
    span), and let purepcap.format parse them; the packets are then walked here."""
    from .errors import PcapError
    from .format import Capture, read_pcapng_head

    try:
        if span is not None:
            prefix, held, base = span.prefix, b"", span.start
            stream.seek(span.start)
        else:
            held, pos, idbs = read_pcapng_head(stream.read, head)
            if not pos:
                raise NotFastPcap(stream, held, closers)
            prefix, held, base = held[:pos], held[pos:], pos
            head = prefix + held  # what NotFastPcap must replay from here on
        try:
            with Capture(prefix, span=None) as described:
                interfaces = described.interfaces
                order = "<" if described.byte_order == "little" else ">"
        except PcapError:
            raise NotFastPcap(stream, head, closers) from None
        if span is None and len(interfaces) != idbs:  # an interface block it refused
            raise NotFastPcap(stream, head, closers)
    except NotFastPcap:
        raise
    except BaseException:
        for c in closers:
            c.close()
        raise
    return _pcapng_batches(source, stream, closers, prefix, held, base, order, interfaces, span, chunk_size)


def _pcapng_batches(source: Any, stream: IO[bytes], closers: list, prefix: bytes, held: bytes, base: int,
                    order: str, interfaces: list, span: Span | None, chunk_size: int) -> Iterator[Batch]:
    blen_at = struct.Struct(order + "4xI").unpack_from  # a block's length
    u32 = np.dtype(order + "u4")
    epb_dtype = np.dtype([("btype", u32), ("blen", u32), ("iid", u32), ("hi", u32),
                          ("lo", u32), ("caplen", u32), ("length", u32)])
    iface_base = span.interface_base if span else 0
    n_if = len(interfaces)
    # per interface: link type, global index, and how its ticks become nanoseconds
    lt_of = np.array([i.linktype for i in interfaces] or [0], dtype=np.int64)
    gidx_of = np.arange(iface_base, iface_base + max(n_if, 1), dtype=np.int64)
    mult_of = np.array([NS // i.tsresol if i.tsresol <= NS and NS % i.tsresol == 0 else 0
                        for i in interfaces] or [0], dtype=np.int64)
    # an offset beyond +-2**62 ns (146 years) sends that interface's times to Python integers
    offsets = [i.tsoffset * NS for i in interfaces] or [0]
    mult_of[[abs(o) >= 1 << 62 for o in offsets]] = 0
    off_of = np.array([o if abs(o) < 1 << 62 else 0 for o in offsets], dtype=np.int64)
    chunks: _ChunkBuffer | None = None
    try:
        frame = span.first_frame - 1 if span else 0
        stop = span.stop if span else None
        chunks = _ChunkBuffer(stream, chunk_size, held, None if stop is None else stop - base - len(held))
        have = len(held)
        eof = False
        while True:
            got = chunks.fill()
            buf = chunks.buf
            if not got:
                eof = True
            end = have + got
            # The one Python step per block follows block lengths only (at least 12 a
            # step, so a lying zero cannot stall it; such a block fails the checks).
            # Whether each block walked is a whole EPB or a block without packets is
            # then checked for all of them at once, and the batch ends before the first
            # that is not.
            starts: list[int] = []
            append = starts.append
            pos = 0
            last = end - 12  # the last offset a block fits at
            while pos <= last:
                append(pos)
                blen = blen_at(buf, pos)[0]
                pos += blen if blen >= 12 else 12
            pos, irregular, rec, is_epb = _check_blocks(buf, starts, pos, end, u32)
            epbs = rec[is_epb]
            if len(epbs):
                e = _gather(buf, epbs, 28).view(epb_dtype)
                iid = e["iid"].astype(np.int64)
                caplen = e["caplen"].astype(np.int64)
                bad = np.flatnonzero((iid >= n_if) | (caplen > e["blen"].astype(np.int64) - 32))
                if len(bad):  # the container reader reports (or steps over) this block
                    k = int(bad[0])
                    pos, irregular = int(epbs[k]), True
                    epbs, e, iid, caplen = epbs[:k], e[:k], iid[:k], caplen[:k]
                n = len(e)
                if n:
                    one = n_if == 1  # one interface: scalars, as for pcap
                    yield Batch(buf, epbs + 28, caplen, e["length"].astype(np.int64),
                                _pcapng_times(e, iid, interfaces, mult_of, off_of),
                                np.arange(frame + 1, frame + 1 + n, dtype=np.int64),
                                int(lt_of[0]) if one else lt_of[iid], iface_base if one else gidx_of[iid])
                    frame += n
            if irregular or (eof and pos < end):
                rest = Span(base + pos, stop if stop is not None else 1 << 62, frame + 1, prefix, iface_base,
                            span.section if span else 0)
                yield from _resume(source, stream, chunks.rest(pos, end), rest)
                return
            if eof:
                return
            have = chunks.carry(pos, end)
            base += pos
    finally:
        if chunks is not None:
            chunks.close()  # before the stream it may be reading
        for c in closers:
            c.close()


def _check_blocks(buf: Any, starts: list[int], walked_to: int, end: int,
                  u32: np.dtype) -> tuple[int, bool, np.ndarray, np.ndarray]:
    """Check the blocks a length-only walk of ``buf[:end]`` found at ``starts``.

    A block passes as the format reader's fast path would take it: an EPB of 32 bytes
    or more, or a block without packets of 12 or more, a multiple of 4 and within the
    block bound, whose trailing length repeats its length. The blocks before the first
    that fails are returned -- (where the walk stops, whether it stopped at a block the
    reader must judge, their offsets, which of them are EPBs). A last block that the
    data cut short is left for the next read, unless its header already fails."""
    if not starts:
        return walked_to, False, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    rec = np.fromiter(starts, dtype=np.int64, count=len(starts))
    nxt = np.empty_like(rec)
    nxt[:-1] = rec[1:]
    nxt[-1] = walked_to
    head = _gather(buf, rec, 8).view(u32).reshape(-1, 2)
    btype, blen = head[:, 0], head[:, 1].astype(np.int64)
    is_epb = btype == _EPB
    ok = (blen >= np.where(is_epb, 32, 12)) & (blen <= _PCAPNG_MAX_BLOCK) & ((blen & 3) == 0)
    if not is_epb.all():
        ok &= is_epb | np.isin(btype, list(_PACKETLESS_BLOCKS))
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


def _pcapng_times(e: np.ndarray, iid: np.ndarray, interfaces: list, mult_of: np.ndarray,
                  off_of: np.ndarray) -> np.ndarray:
    """Nanoseconds from EPB ticks exactly as purepcap.format computes them; vectorised
    where int64 cannot overflow, in Python integers (NaT past 2262) elsewhere."""
    ticks = (e["hi"].astype(np.uint64) << np.uint64(32)) | e["lo"].astype(np.uint64)
    mult = mult_of[iid]
    offs = off_of[iid]
    # |ticks * mult| < 2**62 and |offset| < 2**62 (checked per interface): no int64 overflow
    safe = (mult > 0) & (ticks < np.uint64(1 << 62) // np.maximum(mult, 1).astype(np.uint64))
    if safe.all():
        return ticks.astype(np.int64) * mult + offs
    out = np.empty(len(iid), dtype=np.int64)
    out[safe] = ticks[safe].astype(np.int64) * mult[safe] + offs[safe]
    lo, hi = NAT + 1, np.iinfo(np.int64).max
    for i in np.flatnonzero(~safe).tolist():
        iface = interfaces[int(iid[i])]
        t_ticks = int(ticks[i])
        m = int(mult[i])
        t = t_ticks * m + iface.tsoffset * NS if m else t_ticks * NS // iface.tsresol + iface.tsoffset * NS
        out[i] = t if lo <= t <= hi else NAT
    return out


def _irregular(source: Any, stream: IO[bytes], held: bytes, head: bytes, at: int, frame: int,
               stop: int | None, span: Span | None) -> Iterator[Batch]:
    rest = Span(at, stop if stop is not None else 1 << 62, frame + 1, head,
                span.interface_base if span else 0, span.section if span else 0)
    yield from _resume(source, stream, held, rest)


def _resume(source: Any, stream: IO[bytes], held: bytes, rest: Span) -> Iterator[Batch]:
    """Continue from byte ``rest.start`` with purepcap.format's reader, which delivers
    what it can and raises exactly its own error for the damage.

    The reader is given a span starting there over a stream that replays the bytes
    already held and then goes on reading where we stopped, so this works on pipes
    and decompressed streams too, with the reader's own offsets and frames.
    """
    from ._open import open as open_capture

    with open_capture(_Resume(held, stream, rest.start, source_name(source)), span=rest) as cap:
        yield from packet_batches(cap)


class _Resume(io.RawIOBase):
    """The rest of a stream from absolute offset ``origin``: ``held`` (bytes already
    read) and then the stream. It can seek only within ``held``, which is all a span
    reader needs (it peeks a few bytes, seeks back, and seeks to ``origin``)."""

    def __init__(self, held: bytes, stream: IO[bytes], origin: int, name: str) -> None:
        super().__init__()
        self._held, self._stream, self._origin, self._pos, self.name = held, stream, origin, 0, name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._origin + self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        rel = offset - self._origin if whence == 0 else self._pos + offset if whence == 1 else -1
        if not (0 <= rel <= len(self._held) and self._pos <= len(self._held)):
            raise OSError("cannot seek outside the replayed bytes")
        self._pos = rel
        return self._origin + rel

    def readinto(self, b: Any) -> int:
        n = len(b)
        if self._pos < len(self._held):
            chunk = self._held[self._pos:self._pos + n]
        else:
            chunk = self._stream.read(n) or b""
        b[:len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)
