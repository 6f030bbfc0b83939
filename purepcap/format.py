# Capture-file containers: classic pcap (all six magics) and pcapng, read and written.
#
# Strategy: the stream is read in large chunks into one bytes buffer and records are
# cut out of it with precompiled ``struct.Struct.unpack_from``; a record that straddles
# two chunks is carried over into the next buffer. Memory is therefore bounded by the
# chunk size plus the largest record the format allows, never by what a length field
# claims. The only per-packet object is the ``Packet`` itself. Everything about the
# file (versions, interfaces, resolutions) is decoded once, outside the hot loop.
#
# Errors are raised *after* every good packet before them has been delivered; with
# ``strict=False`` they become a PcapWarning and a clean stop (or, in pcapng, a skip
# over a damaged block whose length still leads to the next block).
from __future__ import annotations

import io
import os
import struct
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from . import linktypes
from ._sources import Source, open_source, source_name
from .errors import (
    DamagedError,
    FilterError,
    NotACaptureError,
    PcapError,
    PcapWarning,
    TruncatedError,
    UnsupportedFormatError,
)

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
NS = 1_000_000_000

# pcap magics as read little-endian: (byte order, ticks per second, record header length)
_PCAP_MAGICS = {
    0xA1B2C3D4: ("<", 1_000_000, 16, False),
    0xD4C3B2A1: (">", 1_000_000, 16, False),
    0xA1B23C4D: ("<", NS, 16, False),
    0x4D3CB2A1: (">", NS, 16, False),
    0xA1B2CD34: ("<", 1_000_000, 24, True),  # Alexey Kuznetzov's "modified" pcap
    0x34CDB2A1: (">", 1_000_000, 24, True),
}
_PCAPNG_SHB = 0x0A0D0D0A
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_PCAPNG_MAX_BLOCK = 32 * 1024 * 1024  # well above any honest block, far below a lie
# Blocks without packets that the reader steps over: name resolution, interface
# statistics, decryption secrets, custom (the batch walkers in records and _columns
# step over exactly these too and hand anything else back to the reader)
_PACKETLESS_BLOCKS = frozenset((4, 5, 10, 0x00000BAD, 0x40000BAD))
# Interfaces are kept for the whole file, so their number and their options are what a
# crafted file could grow without bound (millions of 20-byte IDBs cost 20 times their
# size in objects). Together they get the bound of one block: an interface counts
# _INTERFACE_COST plus 64 per option and the option's bytes.
_INTERFACE_BUDGET = _PCAPNG_MAX_BLOCK
_INTERFACE_COST = 1024
_MAX_SKIP_WARNINGS = 100  # strict=False warns for this many skipped blocks, then counts

_BT_IDB = 1
_BT_PB = 2  # obsolete Packet Block
_BT_SPB = 3
_BT_EPB = 6
# The EPB runs here and in records read a block's type, length and fixed fields in one
# unpack (_EPB_HEAD), and a block's trailing length with the next block's fields in one
# more (_EPB_STEP). The interface id and the top 32 bits of the timestamp are read as
# one u64 ``key``: it is only compared with the last packet's, and one int costs less
# to make than two. _epb_key_split gives them back when the key changes.
_EPB_HEAD = "IIQIII"  # type, length, key, low 32 time bits, caplen, length on the wire
_EPB_STEP = "I" + _EPB_HEAD  # a trailing length, then the next block's _EPB_HEAD


def _epb_key_split(key: int, order: str) -> tuple[int, int]:
    """(interface id, top 32 time bits) of an EPB key read in byte order ``order``."""
    return (key & 0xFFFFFFFF, key >> 32) if order == "<" else (key >> 32, key & 0xFFFFFFFF)


# if_tsresol default and options
_OPT_ENDOFOPT = 0
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_IF_FILTER = 11
_IF_OS = 12
_IF_FCSLEN = 13
_IF_TSOFFSET = 14
_SHB_HARDWARE = 2
_SHB_OS = 3
_SHB_USERAPPL = 4


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


@dataclass
class Interface:
    """A capture interface: the one of a pcap file, or a pcapng IDB."""

    linktype: int
    snaplen: int
    tsresol: int = 1_000_000  # timestamp ticks per second
    tsoffset: int = 0  # seconds added to every timestamp
    name: str | None = None
    description: str | None = None
    os: str | None = None
    filter: str | None = None
    fcslen: int | None = None
    section: int = 0
    index: int = 0  # position in Capture.interfaces
    options: dict[int, list[bytes]] = field(default_factory=dict, repr=False)

    @property
    def linktype_name(self) -> str:
        return linktypes.name(self.linktype)

    @property
    def precision(self) -> str:
        return _precision_name(self.tsresol)


def _precision_name(tsresol: int) -> str:
    return {1: "s", 1000: "ms", 1_000_000: "us", NS: "ns"}.get(tsresol, f"1/{tsresol} s")


def _decode_tsresol(raw: int) -> int:
    """Ticks per second from an if_tsresol byte: 10^-n, or 2^-n when the top bit is set."""
    if raw & 0x80:
        return 1 << (raw & 0x7F)
    return 10 ** raw


@dataclass(frozen=True)
class Span:
    """A byte range of a capture that can be read on its own (a Dask partition).

    ``prefix`` holds the file header (pcap) or the section header and interface
    blocks in force at ``start`` (pcapng), replayed before seeking to ``start``.
    """

    start: int
    stop: int
    first_frame: int
    prefix: bytes
    interface_base: int = 0
    section: int = 0


class Capture:
    """An open capture file: an iterator of Packets plus what the file says of itself.

    Use ``open_capture`` (or ``purepcap.open``) to make one. Attributes describe the
    file: ``format`` ("pcap" or "pcapng"), ``version``, ``byte_order``, ``snaplen``,
    ``precision``, ``linktype``, ``interfaces``, ``compression``. After iteration
    ends, ``clean_end`` says whether the file ended on a record boundary,
    ``error`` holds the damage ``strict=False`` stopped at, and ``skipped`` counts the
    damaged pcapng blocks it stepped over (only the first 100 of them warn).
    """

    format: str
    version: tuple[int, int]
    byte_order: str
    snaplen: int
    modified: bool = False
    fcs_length: int | None = None

    def __init__(self, source: Source, *, strict: bool = True, storage_options: dict | None = None,
                 span: Span | None = None, chunk_size: int = READ_SIZE) -> None:
        self.name = source_name(source)
        self.strict = strict
        self.interfaces: list[Interface] = []
        self.sections = 0
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
                self._start(head, 0)
        except PcapError as exc:
            self.close()
            exc.source = exc.source or self.name
            exc.frame = 0 if exc.frame is None else exc.frame
            raise
        except BaseException:
            self.close()
            raise

    # -- set-up -------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        return self._stream.read(n) or b""

    def _init_span(self, span: Span) -> None:
        seek = getattr(self._stream, "seek", None)
        if seek is None or not getattr(self._stream, "seekable", lambda: False)():
            raise PcapError(f"{self.name}: reading a span needs a seekable file")
        self._start(span.prefix, 0, span=span)
        seek(span.start)

    def _start(self, head: bytes, base: int, span: Span | None = None) -> None:
        if len(head) < 4:
            if not head:
                raise NotACaptureError("empty file: not a capture", offset=0, frame=0, source=self.name)
            raise TruncatedError(f"file is {len(head)} bytes, too short for a capture header",
                                 offset=0, frame=0, source=self.name)
        magic = struct.unpack_from("<I", head)[0]
        if magic in _PCAP_MAGICS:
            self._gen = self._start_pcap(head, magic, span)
        elif magic == _PCAPNG_SHB:
            self._gen = self._start_pcapng(head, span)
        else:
            raise NotACaptureError(
                f"not a capture file (starts with {head[:4].hex(' ')})", offset=0, frame=0,
                source=self.name)

    def _fail(self, exc: PcapError) -> None:
        """Damage found: raise it (strict) or record it, warn and stop."""
        exc.source = self.name
        exc.frame = self.frames
        self.clean_end = False
        self.error = exc
        if self.strict:
            raise exc
        warnings.warn(str(exc), PcapWarning, stacklevel=3)

    def _read_more(self, rest: bytes, base: int, stop: int | None, chunk: int,
                   missing: int = 0) -> tuple[bytes, bool, PcapError | None]:
        """``rest`` (the unparsed end of the last read, which starts at file offset ``base``)
        plus the next read: (buffer, whether the stream ended, damage the stream itself
        reported). Damaged compressed data ends the stream after what came before it.

        ``missing`` is what the record cut off in ``rest`` still lacks. Only that much is
        read: the one record is parsed from that small buffer, and the next read is a
        whole fresh chunk. Gluing ``rest`` onto a whole chunk instead copies every byte of
        the file once more (a quarter of open()'s time on 1M mixed packets). A record
        longer than a chunk is still gathered in doubling reads, which keeps a
        decompressor's output for one read (and its copy) small."""
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

    # -- classic pcap -------------------------------------------------------------------
    def _start_pcap(self, head: bytes, magic: int, span: Span | None) -> Iterator[Packet]:
        order, ticks, reclen, modified = _PCAP_MAGICS[magic]
        while len(head) < 24:
            more = self._read(24 - len(head))
            if not more:
                raise TruncatedError(f"pcap file header cut short at {len(head)} of 24 bytes",
                                     offset=len(head), frame=0, source=self.name)
            head += more
        _, major, minor, _thiszone, _sigfigs, snaplen, ltfield = struct.unpack_from(order + "IHHiIII", head)
        self.format = "pcap"
        self.version = (major, minor)
        self.byte_order = "little" if order == "<" else "big"
        self.snaplen = snaplen
        self.modified = modified
        if major != 2:
            raise UnsupportedFormatError(f"pcap major version {major} at offset 4 is not supported (only 2)",
                                         offset=4, frame=0, source=self.name)
        if ltfield & 0x03FF0000:
            raise UnsupportedFormatError(
                f"pcap link-type field 0x{ltfield:08x} at offset 20 has its reserved bits set", offset=20,
                frame=0, source=self.name)
        linktype = ltfield & 0xFFFF
        if ltfield & 0x04000000:
            self.fcs_length = (ltfield >> 28) * 2  # in 16-bit units in the file
        self.linktype = linktype
        self.precision = _precision_name(ticks)
        self.interfaces = [Interface(linktype, snaplen, tsresol=ticks, fcslen=self.fcs_length)]
        self.sections = 1
        return self._iter_pcap(head[24:], 24, order, ticks, reclen, span)

    def _iter_pcap(self, buf: bytes, base: int, order: str, ticks: int, reclen: int,
                   span: Span | None) -> Iterator[Packet]:
        unpack = struct.Struct(order + "IIII").unpack_from
        new = _new_packet
        cur_sec = -1  # sec * NS is kept for the second the last packet was in
        sbase = 0
        chunk = self._chunk
        mult = NS // ticks
        lt = self.linktype
        # A record may be as big as the snaplen says, but the snaplen is a length field
        # too: past the pcapng block bound it is not believed, or one lying header would
        # make us gather (and re-copy, chunk by chunk) gigabytes for a single record.
        limit = max(min(self.snaplen, _PCAPNG_MAX_BLOCK), linktypes.max_caplen(lt))
        maybe_swapped = self.version < (2, 4)
        keep = self._test_for(lt) if self._test_for is not None else None
        frame = 0
        stop = None
        if span is not None:
            frame = span.first_frame - 1
            base = span.start
            buf = b""
            stop = span.stop
        self.frames = frame
        pos = 0
        eof = False
        stream_error: PcapError | None = None
        fresh = pos < len(buf)  # what the opening read left over is parsed before reading more
        while True:
            if not eof and not fresh:
                # The parsed chunk stays alive until the next one is read. Freed first, it
                # can be the top of the heap, which malloc then gives back to the system
                # and faults in again on the next read (15k page faults on 1M mixed
                # pcapng). A buffer that gathered a record longer than a chunk is dropped
                # first, so that such a record is not held twice.
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
                        self._fail(DamagedError(
                            f"record at offset {base + pos} (after frame {frame}) claims {caplen} bytes, "
                            f"more than the snaplen {self.snaplen}"
                            + (f" and the largest possible {limit}" if self.snaplen != limit else ""),
                            offset=base + pos))
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
                p.time = sbase + frac * mult if frac < ticks else _wrapped_time(sec, frac, mult)
                p.caplen = caplen
                p.length = length
                p.linktype = lt
                p.interface = 0
                p.data = data
                yield p
                pos = nxt
            if eof:
                self.frames = frame
                if stream_error is not None:
                    self._fail(stream_error)
                elif pos < end:
                    what = "record header" if end - pos < reclen else "record's data"
                    self._fail(TruncatedError(
                        f"capture cut short in a {what} at offset {base + pos} (after frame {frame})",
                        offset=base + pos))
                else:
                    self.clean_end = True
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
        order = self._shb_order(buf, 0, 0)
        blen = struct.unpack_from(order + "I", buf, 4)[0]
        self._check_block_length(_PCAPNG_SHB, blen, 0, 0)
        if not self._fill(buf, blen):
            raise TruncatedError(f"pcapng section header at offset 0 claims {blen} bytes, "
                                 f"the file has {len(self._buf)}", offset=0, frame=0, source=self.name)
        buf = self._buf
        self._pcapng_order = order
        self._parse_shb(buf, 0, blen, order, 0)
        if span is not None:
            self._iface_base = span.interface_base
            self.sections = span.section
        pos = blen
        while self._fill(buf, pos + 8):
            buf = self._buf
            btype, ilen = struct.unpack_from(order + "II", buf, pos)
            if btype != _BT_IDB or not 20 <= ilen <= _PCAPNG_MAX_BLOCK or ilen % 4:
                break
            if not self._fill(buf, pos + ilen):
                break
            buf = self._buf
            if struct.unpack_from(order + "I", buf, pos + ilen - 4)[0] != ilen:
                break
            try:
                self._parse_idb(buf, pos, ilen, order, pos)
            except PcapError:
                break  # the packet loop meets it again and reports it in order
            pos += ilen
        buf = self._buf
        self._buf = b""  # the generator owns the opening chunk now; do not pin it here
        if span is not None:
            return self._iter_pcapng(b"", span.start, 0, span)
        return self._iter_pcapng(buf, 0, pos, None)

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

    def _shb_order(self, buf: bytes, pos: int, base: int) -> str:
        if len(buf) < pos + 12:
            raise TruncatedError(f"pcapng section header at offset {base + pos} cut short",
                                 offset=base + pos)
        bom = struct.unpack_from("<I", buf, pos + 8)[0]
        if bom == _BYTE_ORDER_MAGIC:
            return "<"
        if bom == 0x4D3C2B1A:
            return ">"
        raise DamagedError(f"pcapng section header at offset {base + pos} has a bad byte-order magic "
                           f"{buf[pos + 8:pos + 12].hex(' ')}", offset=base + pos)

    def _check_block_length(self, btype: int, blen: int, offset: int, frame: int) -> None:
        if blen < 12 or (blen % 4 and btype != _BT_PB) or blen > _PCAPNG_MAX_BLOCK:
            raise DamagedError(f"pcapng block at offset {offset} has length {blen}",
                               offset=offset, frame=frame, source=self.name)

    def _parse_options(self, buf: bytes, pos: int, end: int, order: str, where: str,
                       offset: int, budget: int = _INTERFACE_BUDGET) -> dict[int, list[bytes]]:
        """Options from pos to end; every length is checked against the block, and what
        they cost to keep (64 + their length each) against ``budget``."""
        opts: dict[int, list[bytes]] = {}
        unpack = struct.Struct(order + "HH").unpack_from
        cost = 0
        while pos + 4 <= end:
            code, olen = unpack(buf, pos)
            if code == _OPT_ENDOFOPT:
                break
            vend = pos + 4 + olen
            if vend > end:
                raise DamagedError(f"{where} at offset {offset} has option {code} of length {olen}, "
                                   f"past the end of its block", offset=offset)
            cost += 64 + olen
            if cost > budget:
                raise UnsupportedFormatError(
                    f"{where} at offset {offset}: its options and those before it exceed purepcap's "
                    f"bound of {_INTERFACE_BUDGET} bytes for interface options", offset=offset)
            opts.setdefault(code, []).append(buf[pos + 4:vend])
            pos = vend + (-olen % 4)
        self._options_cost = cost
        return opts

    def _parse_shb(self, buf: bytes, pos: int, blen: int, order: str, offset: int) -> None:
        if blen < 28:
            raise DamagedError(f"pcapng section header at offset {offset} has length {blen}", offset=offset)
        major, minor = struct.unpack_from(order + "HH", buf, pos + 12)
        if major != 1 or minor not in (0, 2):
            raise UnsupportedFormatError(
                f"pcapng section at offset {offset} has unknown version {major}.{minor}", offset=offset)
        tail = struct.unpack_from(order + "I", buf, pos + blen - 4)[0]
        if tail != blen:
            raise DamagedError(f"pcapng section header at offset {offset} has length {blen} at its start "
                               f"and {tail} at its end", offset=offset)
        opts = self._parse_options(buf, pos + 24, pos + blen - 4, order, "pcapng section header", offset)
        self.sections += 1
        if self.sections == 1:
            self.version = (major, minor)
            self.byte_order = "little" if order == "<" else "big"
            self.hardware = _opt_str(opts, _SHB_HARDWARE)
            self.os = _opt_str(opts, _SHB_OS)
            self.application = _opt_str(opts, _SHB_USERAPPL)
        self._section_ifaces: list[tuple] = []

    def _parse_idb(self, buf: bytes, pos: int, blen: int, order: str, offset: int) -> None:
        if blen < 20:
            raise DamagedError(f"pcapng interface block at offset {offset} has length {blen}", offset=offset)
        lt, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        budget = _INTERFACE_BUDGET - self._interfaces_cost - _INTERFACE_COST
        if budget < 0:
            raise UnsupportedFormatError(
                f"pcapng interface block at offset {offset} would be interface {len(self.interfaces)}: "
                f"more than purepcap keeps in one file (at most {_INTERFACE_BUDGET // _INTERFACE_COST}, "
                f"fewer when they carry many options)", offset=offset)
        opts = self._parse_options(buf, pos + 16, pos + blen - 4, order, "pcapng interface block", offset,
                                   budget)
        self._interfaces_cost += _INTERFACE_COST + self._options_cost
        tsresol = 1_000_000
        if _IF_TSRESOL in opts and opts[_IF_TSRESOL][0]:
            raw = opts[_IF_TSRESOL][0][0]
            if (raw & 0x7F) > (63 if raw & 0x80 else 18):
                raise DamagedError(f"pcapng interface block at offset {offset} has if_tsresol 0x{raw:02x}",
                                   offset=offset)
            tsresol = _decode_tsresol(raw)
        tsoffset = 0
        if _IF_TSOFFSET in opts and len(opts[_IF_TSOFFSET][0]) == 8:
            tsoffset = struct.unpack(order + "q", opts[_IF_TSOFFSET][0])[0]
        fcslen = opts[_IF_FCSLEN][0][0] if _IF_FCSLEN in opts and opts[_IF_FCSLEN][0] else None
        filt = opts.get(_IF_FILTER, [b""])[0]
        iface = Interface(
            linktype=lt, snaplen=snaplen, tsresol=tsresol, tsoffset=tsoffset,
            name=_opt_str(opts, _IF_NAME), description=_opt_str(opts, _IF_DESCRIPTION),
            os=_opt_str(opts, _IF_OS), filter=filt[1:].decode("utf-8", "replace") if filt else None,
            fcslen=fcslen, section=self.sections - 1, index=self._iface_base + len(self._section_ifaces),
            options=opts)
        self.interfaces.append(iface)
        if len(self.interfaces) == 1:
            self.linktype = lt
            self.snaplen = snaplen
            self.precision = iface.precision
        if tsresol <= NS and NS % tsresol == 0:
            mult, div = NS // tsresol, 1
        else:
            mult, div = NS, tsresol
        self._section_ifaces.append((iface.index, lt, mult, div, tsoffset * NS, snaplen))

    _iface_base = 0
    skipped = 0  # damaged pcapng blocks strict=False stepped over
    _interfaces_cost = 0  # what the interfaces read so far cost, against _INTERFACE_BUDGET
    _options_cost = 0
    linktype = linktypes.EN10MB
    snaplen = 0
    precision = "us"
    hardware = os = application = None

    def _iter_pcapng(self, buf: bytes, base: int, pos: int, span: Span | None) -> Iterator[Packet]:
        chunk = self._chunk
        order = self._pcapng_order
        hdr = struct.Struct(order + "II").unpack_from
        u32 = struct.Struct(order + "I").unpack_from
        epb = struct.Struct(order + "IIIII").unpack_from
        head = struct.Struct(order + _EPB_HEAD).unpack_from
        step = struct.Struct(order + _EPB_STEP).unpack_from
        new = _new_packet
        # the interface of the last packet and the top 32 bits of its time (as one u64
        # ``key``), and that interface's time base for them
        cur_key = -1
        gidx = lt = mult = div = off = hbase = 0
        test_for = self._test_for
        keep = None
        EPB = _BT_EPB  # a local: the run tests it per packet
        # The run takes only blocks that lie whole in a buffer no longer than the block
        # bound, so every block it takes is below the bound with no test per block (a
        # block of exactly the bound is left to the careful path). A longer buffer (rare:
        # the doubling reads that gather a section header of over 16 MiB, or a stream that
        # hands out more than it is asked for) is left to the careful path whole.
        fast_bound = _PCAPNG_MAX_BLOCK
        frame = 0
        ifaces = self._section_ifaces
        stop = None
        if span is not None:
            frame = span.first_frame - 1
            stop = span.stop
        self.frames = frame
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
                    missing = 0 if btype == _PCAPNG_SHB else blen - len(rest)
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
                # type, damage, the end of the buffer near) is left to the careful path.
                while (btype == EPB and (nxt := pos + blen) <= last  # (caplen .. are read only then)
                       and caplen + 32 <= blen and not blen & 3):
                    if key != cur_key:
                        iid, hi = _epb_key_split(key, order)
                        # an interface whose tick is not a whole number of ns is left to the
                        # careful path, so that the run needs no test for it per packet
                        if iid >= len(ifaces) or ifaces[iid][3] != 1:
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
                    if tail != this_len:  # not delivered: the careful path reports the damage
                        btype, blen = hdr(buf, pos)
                        break
                    frame += 1
                    pos = nxt
                    p.frame = frame
                    yield p
                # everything else, and every damaged block, takes the careful path; it reuses
                # the names of the cached interface fields, so the cache is dropped here
                cur_key = -1
                if btype == _PCAPNG_SHB:
                    try:
                        new_order = self._shb_order(buf, pos, base)
                    except DamagedError as exc:
                        self.frames = frame
                        exc.offset = base + pos
                        self._fail(exc)
                        return
                    if new_order != order:
                        order = new_order
                        hdr = struct.Struct(order + "II").unpack_from
                        u32 = struct.Struct(order + "I").unpack_from
                        epb = struct.Struct(order + "IIIII").unpack_from
                        head = struct.Struct(order + _EPB_HEAD).unpack_from
                        step = struct.Struct(order + _EPB_STEP).unpack_from
                        btype, blen = hdr(buf, pos)
                    self._pcapng_order = order
                try:
                    self._check_block_length(btype, blen, base + pos, frame)
                except DamagedError as exc:
                    self.frames = frame
                    self._fail(exc)
                    return
                nxt = pos + blen
                if nxt > end or (nxt + 12 > end and not eof and not self.strict):
                    break  # strict=False may need the next block's header to judge this one
                try:
                    tail = u32(buf, nxt - 4)[0] if btype != _BT_PB or not blen & 3 else blen
                    if tail != blen:
                        raise DamagedError(f"pcapng block at offset {base + pos} has length {blen} at "
                                           f"its start and {tail} at its end", offset=base + pos)
                    if btype == _PCAPNG_SHB:
                        self._parse_shb(buf, pos, blen, order, base + pos)
                        ifaces = self._section_ifaces
                        cur_key = -1  # a new section numbers its interfaces from 0 again
                        self._iface_base = len(self.interfaces)
                    elif btype == _BT_IDB:
                        self._parse_idb(buf, pos, blen, order, base + pos)
                    elif btype == _BT_EPB or btype == _BT_PB:
                        if blen < 32:
                            raise DamagedError(f"pcapng block at offset {base + pos} has length {blen}",
                                               offset=base + pos)
                        if btype == _BT_EPB:
                            iid, hi, lo, caplen, length = epb(buf, pos + 8)
                        else:  # the obsolete Packet Block: a 16-bit interface, then a drops count
                            iid, _drops, hi, lo, caplen, length = struct.unpack_from(order + "HHIIII", buf,
                                                                                     pos + 8)
                        if iid >= len(ifaces):
                            raise DamagedError(
                                f"pcapng packet block at offset {base + pos} names interface {iid}, "
                                f"the section has {len(ifaces)}", offset=base + pos)
                        if caplen > blen - 32:
                            raise DamagedError(
                                f"pcapng packet block at offset {base + pos} claims {caplen} bytes in a "
                                f"block of {blen}", offset=base + pos)
                        gidx, lt, mult, div, off, _ = ifaces[iid]
                        ts = (hi << 32) | lo
                        t = ts * mult + off if div == 1 else ts * NS // div + off
                        frame += 1
                        data = buf[pos + 28:pos + 28 + caplen]
                        if test_for is None or test_for(lt)(data, length):
                            yield Packet(frame, t, caplen, length, lt, gidx, data)
                    elif btype == _BT_SPB:
                        if not ifaces:
                            raise DamagedError(f"pcapng simple packet block at offset {base + pos} "
                                               f"comes before any interface", offset=base + pos)
                        if blen < 16:
                            raise DamagedError(f"pcapng block at offset {base + pos} has length {blen}",
                                               offset=base + pos)
                        gidx, lt, _, _, _, snap = ifaces[0]
                        length = u32(buf, pos + 8)[0]
                        caplen = min(length, blen - 16)
                        if snap:
                            caplen = min(caplen, snap)
                        frame += 1
                        data = buf[pos + 12:pos + 12 + caplen]
                        if test_for is None or test_for(lt)(data, length):
                            yield Packet(frame, None, caplen, length, lt, gidx, data)
                    # NRB, ISB, DSB, custom and unknown blocks carry no packets: skipped
                except PcapError as exc:
                    if isinstance(exc, FilterError):  # the filter's, not the file's
                        raise
                    self.frames = frame
                    if exc.offset is None:
                        exc.offset = base + pos
                    if self.strict or not self._next_block_plausible(buf, nxt, end, order, eof):
                        self._fail(exc)
                        return
                    exc.source = self.name
                    exc.frame = frame
                    # Every distinct warning text stays in the caller's warnings registry
                    # for good, so a file of a million damaged blocks would grow memory
                    # without bound: past the first few, skips are only counted.
                    self.skipped += 1
                    if self.skipped <= _MAX_SKIP_WARNINGS:
                        more = ("; further damaged blocks are skipped without a warning "
                                "(Capture.skipped counts them)") if self.skipped == _MAX_SKIP_WARNINGS else ""
                        warnings.warn(f"{exc}; skipped that block{more}", PcapWarning, stacklevel=2)
                pos = nxt
            if eof:
                self.frames = frame
                if stream_error is not None:
                    self._fail(stream_error)
                elif pos < end:
                    self._fail(TruncatedError(
                        f"pcapng block at offset {base + pos} cut short (after frame {frame})",
                        offset=base + pos))
                else:
                    self.clean_end = self.error is None
                return

    @staticmethod
    def _next_block_plausible(buf: bytes, nxt: int, end: int, order: str, eof: bool) -> bool:
        if nxt == end:
            return True
        if nxt + 8 > end:
            return False
        btype = struct.unpack_from(order + "I", buf, nxt)[0]
        if btype == _PCAPNG_SHB:  # a new section's length is in its own byte order
            if nxt + 12 > end:
                return False
            bom = struct.unpack_from("<I", buf, nxt + 8)[0]
            if bom not in (_BYTE_ORDER_MAGIC, 0x4D3C2B1A):
                return False
            order = "<" if bom == _BYTE_ORDER_MAGIC else ">"
        blen = struct.unpack_from(order + "I", buf, nxt + 4)[0]
        return (btype in (1, 2, 3, 4, 5, 6, 10, _PCAPNG_SHB, 0xBAD, 0x40000BAD)
                and 12 <= blen <= _PCAPNG_MAX_BLOCK)

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
        gen = getattr(self, "_gen", None)
        if gen is not None:
            gen.close()
        for c in self._closers:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing must not mask the real error
                pass
        self._closers = []

    def __repr__(self) -> str:
        # public attributes only: the readers that set them may change underneath
        kind = f"{getattr(self, 'format', '?')} {'.'.join(map(str, getattr(self, 'version', ())))}"
        links = ",".join(dict.fromkeys(i.linktype_name for i in self.interfaces)) or "no interface yet"
        packed = "" if self.compression == "none" else f" {self.compression}"
        # self.frames is kept up to date only when the walk ends (a store per packet costs)
        ended = "" if self.clean_end is None else \
            f", {'ended' if self.clean_end else 'stopped at damage'} after {self.frames} packets"
        return f"<purepcap.Capture {self.name!r} {kind}{packed} {links} {getattr(self, 'precision', '?')}{ended}>"

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


def _wrapped_time(sec: int, frac: int, mult: int) -> int:
    """Time of a record whose fraction is invalid (one second or more).

    libpcap and Wireshark scale the fraction to nanoseconds in a signed 32-bit
    integer; doing the same keeps purepcap's times equal to theirs on such files.
    """
    ns = (frac * mult) & 0xFFFFFFFF
    if ns >= 0x80000000:
        ns -= 0x100000000
    return sec * NS + ns


def _opt_str(opts: dict[int, list[bytes]], code: int) -> str | None:
    if code not in opts:
        return None
    return opts[code][0].rstrip(b"\x00").decode("utf-8", "replace")


def open_capture(source: Source, *, strict: bool = True, storage_options: dict | None = None,
                 span: Span | None = None) -> Capture:
    """Open a pcap or pcapng capture (possibly compressed) for reading Packets."""
    return Capture(source, strict=strict, storage_options=storage_options, span=span)


# -- splitting a capture into independently readable byte ranges ---------------------------
def read_pcapng_head(read: Callable[[int], bytes], head: bytes) -> tuple[bytes, int, int]:
    """Read on from ``head`` (the start of a pcapng stream) until its section header and
    the interface blocks right behind it are whole.

    Returns (everything read, ``head`` included; the length of those leading blocks; how
    many interface blocks they hold). They end before the first interface block that
    ``Capture`` does not take on opening either (a bad length or trailer): the reader
    meets that one in its packet loop. The length is 0 when the stream ends inside them
    or the section header's length is out of bounds. For the batch walkers that let this
    module parse the blocks (``Capture(prefix)``) and then walk the packet blocks.
    """
    if len(head) < 12:
        return head, 0, 0
    order = "<" if struct.unpack_from("<I", head, 8)[0] == _BYTE_ORDER_MAGIC else ">"
    held = head
    pos = idbs = 0
    while True:
        while len(held) < pos + 8:
            more = read(max(65536, pos + 8 - len(held)))
            if not more:
                return held, 0, 0
            held += more
        btype, blen = struct.unpack_from(order + "II", held, pos)
        if pos and (btype != _BT_IDB or not 20 <= blen <= _PCAPNG_MAX_BLOCK or blen % 4):
            return held, pos, idbs
        if not 12 <= blen <= _PCAPNG_MAX_BLOCK:
            return held, 0, 0
        while len(held) < pos + blen:
            more = read(max(65536, pos + blen - len(held)))
            if not more:
                return held, 0, 0
            held += more
        if pos:
            if struct.unpack_from(order + "I", held, pos + blen - 4)[0] != blen:
                return held, pos, idbs
            idbs += 1
        pos += blen


def split_capture(path: str | os.PathLike, part_bytes: int = 64 * 1024 * 1024) -> list[Span]:
    """Cut an uncompressed capture file into spans of about ``part_bytes`` each.

    One pass reads only record (block) headers and seeks over the data, so it costs
    one small read per record. Spans begin on record boundaries and, for pcapng,
    carry the section and interface blocks needed to decode them.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) >= 4 and struct.unpack_from("<I", head)[0] == _PCAPNG_SHB:
            return _split_pcapng(f, size, part_bytes)
        if len(head) < 24 or struct.unpack_from("<I", head)[0] not in _PCAP_MAGICS:
            raise NotACaptureError(f"{os.fspath(path)}: not an uncompressed capture file; cannot split",
                                   offset=0, frame=0)
        order, _, reclen, _ = _PCAP_MAGICS[struct.unpack_from("<I", head)[0]]
        unpack = struct.Struct(order + "IIII").unpack_from
        spans, start, first, frame, pos = [], 24, 1, 0, 24
        while True:
            if pos - start >= part_bytes:
                spans.append(Span(start, pos, first, head))
                start, first = pos, frame + 1
            f.seek(pos)
            rec = f.read(reclen)
            if len(rec) < reclen:
                break
            caplen = unpack(rec, 0)[2]
            if caplen > _PCAPNG_MAX_BLOCK:
                break  # damage: the reader of the last span will report it
            pos += reclen + caplen
            frame += 1
        spans.append(Span(start, size, first, head))
        return spans


def _split_pcapng(f: IO[bytes], size: int, part_bytes: int) -> list[Span]:
    spans: list[Span] = []
    order = "<"
    pos = frame = 0
    n_ifaces = 0  # interfaces in all sections so far: the global index base
    section = 0
    section_prefix = b""  # SHB + IDBs of the current section
    span_start, span_first, span_prefix, span_base = 0, 1, b"", 0
    while pos + 12 <= size:
        f.seek(pos)
        hdr = f.read(12)
        if len(hdr) < 12:
            break
        btype = struct.unpack_from(order + "I", hdr)[0]  # the SHB type reads the same either way
        if btype == _PCAPNG_SHB:
            order = "<" if struct.unpack_from("<I", hdr, 8)[0] == _BYTE_ORDER_MAGIC else ">"
        blen = struct.unpack_from(order + "I", hdr, 4)[0]
        if blen < 12 or blen > _PCAPNG_MAX_BLOCK:
            break  # damage: the reader of the last span will report it
        if btype == _PCAPNG_SHB:
            if frame + 1 > span_first:
                spans.append(Span(span_start, pos, span_first, span_prefix, span_base, section))
            f.seek(pos)
            section_prefix = f.read(blen)
            section += 1
            span_start, span_first, span_prefix, span_base = pos + blen, frame + 1, section_prefix, n_ifaces
        elif btype == _BT_IDB:
            f.seek(pos)
            section_prefix += f.read(blen)
            n_ifaces += 1
            if span_start == pos:  # no packet yet in this span: the IDB joins its prefix
                span_start, span_prefix = pos + blen, section_prefix
        elif btype in (_BT_EPB, _BT_SPB, _BT_PB):
            if pos - span_start >= part_bytes:
                spans.append(Span(span_start, pos, span_first, span_prefix, span_base, section))
                span_start, span_first, span_prefix = pos, frame + 1, section_prefix
            frame += 1
        pos += blen
    spans.append(Span(span_start, size, span_first, span_prefix, span_base, section))
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
            opts = _opt(o, _SHB_USERAPPL, self._application.encode()) + _opt(o, 0, b"")
        body = struct.pack(o + "IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + opts
        self._f.write(_block(o, _PCAPNG_SHB, body))
        self._ifaces: list[tuple[int, int, int]] = []  # (ticks per second, tsoffset, snaplen)

    def add_interface(self, linktype: int, *, snaplen: int = linktypes.MAX_SNAPLEN, tsresol: int = 9,
                      tsoffset: int = 0, name: str | None = None, description: str | None = None,
                      fcslen: int | None = None) -> int:
        """Add an interface to the current section; returns its number there."""
        o = self._order
        opts = b""
        if name is not None:
            opts += _opt(o, _IF_NAME, name.encode())
        if description is not None:
            opts += _opt(o, _IF_DESCRIPTION, description.encode())
        if tsresol != 6:
            opts += _opt(o, _IF_TSRESOL, bytes([tsresol]))
        if tsoffset:
            opts += _opt(o, _IF_TSOFFSET, struct.pack(o + "q", tsoffset))
        if fcslen is not None:
            opts += _opt(o, _IF_FCSLEN, bytes([fcslen]))
        if opts:
            opts += _opt(o, 0, b"")
        self._f.write(_block(o, _BT_IDB, struct.pack(o + "HHI", linktype, 0, snaplen) + opts))
        self._ifaces.append((_decode_tsresol(tsresol), tsoffset, snaplen))
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
        self._f.write(_block(o, _BT_EPB, body))
        self.packets += 1

    def write_simple(self, data: bytes, *, length: int | None = None) -> None:
        """A simple packet block: no timestamp, interface 0."""
        if not self._ifaces:
            raise ValueError("a simple packet block needs interface 0")
        o = self._order
        self._f.write(_block(o, _BT_SPB, struct.pack(o + "I", len(data) if length is None else length) + data))
        self.packets += 1

    def write_obsolete(self, time: int, data: bytes, *, length: int | None = None, interface: int = 0) -> None:
        """The obsolete Packet Block (type 2), which old writers still produce."""
        o = self._order
        ticks = self._ticks(time, interface)
        caplen = len(data)
        body = struct.pack(o + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF, caplen,
                           caplen if length is None else length) + data
        self._f.write(_block(o, _BT_PB, body))
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
