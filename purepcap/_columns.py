# Columnar decoding for DataFrames: packets in, numpy columns out, no dict per packet.
#
# Strategy: packets arrive in *batches*, one bytes buffer plus numpy arrays of where
# each packet's data starts and how long it is. A classic pcap file is batched
# straight from its read chunks (one Python step per record finds the record
# offsets; nothing else is done per packet); any other source (pcapng, filters,
# live captures, lists of Packets) is batched by joining Packet.data. Each batch is
# decoded at once: overlapping big-endian views of the buffer (element i = the u16
# or u32 at byte i) let one fancy index read a field for every packet. The common
# case, Ethernet + IPv4 (no fragment) + TCP/UDP/ICMP with whole headers, is decoded
# that way; every other packet goes through purepcap.headers.decode, the reference
# decoder, so the result equals purepcap.records() row for row.
# Hosts, protocols and MAC addresses become category codes against one table per
# call, so an address string is made once per distinct address, not per packet.
from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator
from typing import IO, Any

import numpy as np

from . import linktypes
from ._sources import open_source, source_name
from .format import CHUNK_SIZE, NS, Packet, Span

__all__ = ["DEFAULT_COLUMNS", "EXTRA_COLUMNS", "Batch", "Column", "ColumnBuilder", "pcap_batches",
           "packet_batches"]

DEFAULT_COLUMNS = ("time", "src_host", "src_port", "dst_host", "dst_port", "protocol")
EXTRA_COLUMNS = ("ip_version", "ttl", "ip_id", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_window",
                 "icmp_type", "icmp_code", "vlan", "eth_src", "eth_dst", "interface", "fragment",
                 "frame", "length", "caplen", "ip_proto", "ip_length")

# numeric columns that may be missing: numpy storage type (a pandas nullable type on top)
NULLABLE_INT = {
    "src_port": np.uint16, "dst_port": np.uint16,
    "ip_version": np.uint8, "ttl": np.uint8, "ip_id": np.uint32, "tcp_flags": np.uint16,
    "tcp_seq": np.uint32, "tcp_ack": np.uint32, "tcp_window": np.uint16,
    "icmp_type": np.uint8, "icmp_code": np.uint8, "vlan": np.uint16,
    "ip_proto": np.uint8, "ip_length": np.uint32,
}
# numeric columns that every packet has
PLAIN_INT = {"frame": np.int64, "length": np.int64, "caplen": np.int64, "interface": np.int64}
# string columns stored as category codes; the table each one uses
CATEGORY_TABLE = {"src_host": "host", "dst_host": "host", "protocol": "proto",
                  "eth_src": "mac", "eth_dst": "mac"}

NAT = np.iinfo(np.int64).min  # datetime64 NaT: a simple packet block has no time
PAD = 128  # zero bytes after every batch buffer: fixed-offset reads never run off its end
BATCH_BYTES = CHUNK_SIZE  # generic batches: about this much packet data each

_ETHERTYPE_IPV4 = 0x0800
_TCP, _UDP, _ICMP = 6, 17, 1
_FAST_NAMES = {_TCP: "tcp", _UDP: "udp", _ICMP: "icmp"}
# The first 54 bytes of an Ethernet + IPv4 (no options) + TCP packet, as one record
# type: fields of UDP and ICMP are read from the same bytes (UDP length = top of
# "seq", ICMP type/code = the bytes of "sport").
_WINDOW = np.dtype({
    "names": ["eth_dst_hi", "eth_dst_lo", "eth_src_hi", "eth_src_lo", "ethertype", "vihl", "ip_len",
              "ip_id", "frag", "ttl", "proto", "src", "dst", "sport", "dport", "seq", "ack", "doff",
              "flags", "win"],
    "formats": [">u4", ">u2", ">u4", ">u2", ">u2", "u1", ">u2", ">u2", ">u2", "u1", "u1", ">u4", ">u4",
                ">u2", ">u2", ">u4", ">u4", "u1", "u1", ">u2"],
    "offsets": [0, 4, 6, 10, 12, 14, 16, 18, 20, 22, 23, 26, 30, 34, 36, 38, 42, 46, 47, 48],
    "itemsize": 54,
})
_NATIVE = np.dtype([(name, _WINDOW.fields[name][0].newbyteorder("=")) for name in _WINDOW.names])


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
    frame, time, length, linktype, interface = zip(*meta, strict=True)
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


def _pcap_batches(source: Any, stream: IO[bytes], closers: list, head: bytes,
                  order: str, ticks: int, reclen: int, snaplen: int, linktype: int, span: Span | None,
                  chunk_size: int) -> Iterator[Batch]:
    caplen_at = struct.Struct(order + "I").unpack_from
    # the container reader's bound on a record; anything above it is its business
    limit = max(min(snaplen, 32 * 1024 * 1024), linktypes.max_caplen(linktype))
    mult = NS // ticks
    rec_dtype = np.dtype([("sec", order + "u4"), ("frac", order + "u4"), ("caplen", order + "u4"),
                          ("length", order + "u4")])
    readinto = getattr(stream, "readinto", None)
    try:
        if span is not None:
            stream.seek(span.start)
            base, frame, stop = span.start, span.first_frame - 1, span.stop
        else:
            base, frame, stop = 24, 0, None
        # one reused buffer: [carried-over part of the last chunk | new chunk | PAD zeros]
        buf = bytearray(chunk_size + PAD)
        view = memoryview(buf)
        have = 0  # bytes of buf holding data
        eof = False
        while not eof:
            want = chunk_size if stop is None else min(chunk_size, stop - base - have)
            if have + max(want, 0) + PAD > len(buf):  # a record bigger than a chunk
                bigger = bytearray(have + want + PAD)
                bigger[:have] = buf[:have]
                buf, view = bigger, memoryview(bigger)
            got = 0
            if want > 0:
                if readinto is not None:
                    try:
                        got = readinto(view[have:have + want]) or 0
                    except (NotImplementedError, io.UnsupportedOperation):
                        readinto = None
                if readinto is None:
                    data = stream.read(want) or b""
                    got = len(data)
                    view[have:have + got] = data
            if not got:
                eof = True
            end = have + got
            buf[end:end + PAD] = bytes(PAD)
            starts: list[int] = []
            append = starts.append
            pos = 0
            last = end - reclen
            while pos <= last:
                nxt = pos + reclen + caplen_at(buf, pos + 8)[0]
                if nxt > end:
                    break
                append(pos)
                pos = nxt
            irregular = pos <= last and caplen_at(buf, pos + 8)[0] > limit
            if starts:
                rec = np.array(starts, dtype=np.int64)
                hdr = np.lib.stride_tricks.sliding_window_view(np.frombuffer(buf, dtype=np.uint8), reclen)
                hdr = hdr[rec][:, :16].copy().view(rec_dtype).reshape(-1)
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
                yield from _irregular(source, stream, bytes(buf[pos:end]), head, base + pos, frame, stop, span)
                return
            # carry the unfinished record to the front of the buffer
            buf[0:end - pos] = buf[pos:end]
            have = end - pos
            base += pos
    finally:
        for c in closers:
            c.close()


# -- batches straight from a pcapng file ------------------------------------------------
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_IDB, _EPB = 1, 6
_MAX_BLOCK = 32 * 1024 * 1024  # purepcap.format's bound on a pcapng block
# blocks that carry no packet and that the container reader only steps over:
# name resolution, interface statistics, decryption secrets, custom
_SKIPPED_BLOCKS = frozenset((4, 5, 10, 0x00000BAD, 0x40000BAD))


def _pcapng_start(source: Any, stream: IO[bytes], closers: list, head: bytes, span: Span | None,
                  chunk_size: int) -> Iterator[Batch]:
    """Read the section header and the interface blocks after it (or take them from the
    span), and let purepcap.format parse them; the packets are then walked here."""
    from .errors import PcapError
    from .format import Capture

    try:
        if span is not None:
            prefix, held, base = span.prefix, b"", span.start
            stream.seek(span.start)
        else:
            held = head
            order = "<" if struct.unpack_from("<I", held, 8)[0] == _PCAPNG_BOM else ">"
            pos = 0
            while True:  # the SHB, then every IDB right behind it
                while len(held) < pos + 8:
                    more = stream.read(max(65536, pos + 8 - len(held)))
                    if not more:
                        raise NotFastPcap(stream, held, closers)
                    held += more
                btype, blen = struct.unpack_from(order + "II", held, pos)
                if pos and btype != _IDB:
                    break
                if not 12 <= blen <= _MAX_BLOCK:
                    raise NotFastPcap(stream, held, closers)
                while len(held) < pos + blen:
                    more = stream.read(max(65536, pos + blen - len(held)))
                    if not more:
                        raise NotFastPcap(stream, held, closers)
                    held += more
                pos += blen
            prefix, held, base = held[:pos], held[pos:], pos
            head = prefix + held  # what NotFastPcap must replay from here on
        try:
            with Capture(prefix, span=None) as described:
                interfaces = described.interfaces
                order = "<" if described.byte_order == "little" else ">"
        except PcapError:
            raise NotFastPcap(stream, head, closers) from None
    except NotFastPcap:
        raise
    except BaseException:
        for c in closers:
            c.close()
        raise
    return _pcapng_batches(source, stream, closers, prefix, held, base, order, interfaces, span, chunk_size)


def _pcapng_batches(source: Any, stream: IO[bytes], closers: list, prefix: bytes, held: bytes, base: int,
                    order: str, interfaces: list, span: Span | None, chunk_size: int) -> Iterator[Batch]:
    hdr = struct.Struct(order + "II").unpack_from
    u32 = struct.Struct(order + "I").unpack_from
    epb_dtype = np.dtype([("blen", order + "u4"), ("iid", order + "u4"), ("hi", order + "u4"),
                          ("lo", order + "u4"), ("caplen", order + "u4"), ("length", order + "u4")])
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
    readinto = getattr(stream, "readinto", None)
    try:
        frame = span.first_frame - 1 if span else 0
        stop = span.stop if span else None
        buf = bytearray(max(chunk_size, len(held)) + PAD)
        view = memoryview(buf)
        view[:len(held)] = held
        have = len(held)
        eof = False
        while True:
            want = chunk_size if stop is None else min(chunk_size, stop - base - have)
            if have + max(want, 0) + PAD > len(buf):
                bigger = bytearray(have + max(want, 0) + PAD)
                bigger[:have] = buf[:have]
                buf, view = bigger, memoryview(bigger)
            got = 0
            if want > 0 and not eof:
                if readinto is not None:
                    try:
                        got = readinto(view[have:have + want]) or 0
                    except (NotImplementedError, io.UnsupportedOperation):
                        readinto = None
                if readinto is None:
                    data = stream.read(want) or b""
                    got = len(data)
                    view[have:have + got] = data
            if not got:
                eof = True
            end = have + got
            buf[end:end + PAD] = bytes(PAD)
            starts: list[int] = []
            append = starts.append
            pos = 0
            irregular = False
            while pos + 12 <= end:
                btype, blen = hdr(buf, pos)
                nxt = pos + blen
                if btype == _EPB and 32 <= blen <= _MAX_BLOCK and not blen & 3:
                    if nxt > end:
                        break
                    append(pos)
                elif btype in _SKIPPED_BLOCKS and 12 <= blen <= _MAX_BLOCK and not blen & 3:
                    if nxt > end:
                        break
                    if u32(buf, nxt - 4)[0] != blen:
                        irregular = True
                        break
                else:  # a new section or interface, a simple or old packet block, damage
                    irregular = True
                    break
                pos = nxt
            if starts:
                rec = np.array(starts, dtype=np.int64)
                heads = np.ndarray((len(buf) - 27,), dtype="S24", buffer=buf, offset=4, strides=(1,))
                e = heads[rec].view(epb_dtype)
                iid = e["iid"].astype(np.int64)
                caplen = e["caplen"].astype(np.int64)
                bad = np.flatnonzero((iid >= n_if) | (caplen > e["blen"].astype(np.int64) - 32))
                if len(bad):  # the container reader reports (or steps over) this block
                    k = int(bad[0])
                    rec, e, iid, caplen = rec[:k], e[:k], iid[:k], caplen[:k]
                    pos, irregular = int(starts[k]), True
                n = len(rec)
                if n:
                    yield Batch(buf, rec + 28, caplen, e["length"].astype(np.int64),
                                _pcapng_times(e, iid, interfaces, mult_of, off_of),
                                np.arange(frame + 1, frame + 1 + n, dtype=np.int64), lt_of[iid], gidx_of[iid])
                    frame += n
            if irregular or (eof and pos < end):
                rest = Span(base + pos, stop if stop is not None else 1 << 62, frame + 1, prefix, iface_base,
                            span.section if span else 0)
                yield from _resume(source, stream, bytes(buf[pos:end]), rest)
                return
            if eof:
                return
            buf[0:end - pos] = buf[pos:end]
            have = end - pos
            base += pos
    finally:
        for c in closers:
            c.close()


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


# -- decoding batches into columns ------------------------------------------------------
class _Table:
    """Strings to category codes, in order of first appearance."""

    __slots__ = ("codes", "names")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, s: str | None) -> int:
        if s is None:
            return -1
        c = self.codes.get(s)
        if c is None:
            c = self.codes[s] = len(self.names)
            self.names.append(s)
        return c


def _ipv4_str(v: int) -> str:
    return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"


def _mac_str(v: int) -> str:
    return ":".join(f"{(v >> s) & 255:02x}" for s in (40, 32, 24, 16, 8, 0))


def _storage(name: str) -> Any:
    if name in NULLABLE_INT:
        return NULLABLE_INT[name]
    # category codes start small and widen when their table outgrows them
    return np.int8 if name in CATEGORY_TABLE else np.int64


def _code_type(n_names: int) -> Any:
    """The code type pandas itself picks for n categories (so it keeps our array)."""
    return np.int8 if n_names < 127 else np.int16 if n_names < 32767 else np.int32


class Column:
    """A growing numpy column. It grows in place with ``ndarray.resize`` (realloc,
    which moves large blocks by remapping pages), so building a column of n rows
    never holds a second copy of it, unlike joining per-batch parts at the end."""

    __slots__ = ("arr", "n")

    def __init__(self, dtype: Any) -> None:
        self.arr = np.empty(0, dtype=dtype)
        self.n = 0

    def append(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.arr):
            self.arr.resize(max(need, len(self.arr) + (len(self.arr) >> 3) + 4096), refcheck=False)
        self.arr[self.n:need] = values
        self.n = need

    def widen(self, dtype: Any) -> None:
        if np.dtype(dtype).itemsize > self.arr.dtype.itemsize:
            self.arr = self.arr.astype(dtype)

    def finish(self) -> np.ndarray:
        """The column, trimmed to its rows; the Column must not be used afterwards."""
        arr, self.arr = self.arr, np.empty(0, dtype=self.arr.dtype)
        arr.resize(self.n, refcheck=False)
        return arr


class _Coder:
    """Integer keys (IPv4 addresses, MACs) to category codes, vectorised: a sorted
    array of the keys seen so far is searched; only new keys are made into strings."""

    def __init__(self, table: _Table, fmt: Any, dtype: Any) -> None:
        self.table, self.fmt = table, fmt
        self.keys = np.zeros(0, dtype=dtype)
        self.vals = np.zeros(0, dtype=np.int32)

    def codes(self, keys: np.ndarray) -> np.ndarray:
        # sorting a batch's keys is cheaper than searching each of them
        uniq, inv = np.unique(keys, return_inverse=True)
        idx = np.searchsorted(self.keys, uniq)
        if len(self.keys):
            np.minimum(idx, len(self.keys) - 1, out=idx)
            new = uniq[self.keys[idx] != uniq]
        else:
            new = uniq
        if len(new):
            fmt, table = self.fmt, self.table
            codes = np.array([table.code(fmt(v)) for v in new.tolist()], dtype=np.int32)
            allkeys = np.concatenate([self.keys, new])
            order = np.argsort(allkeys, kind="stable")
            self.keys, self.vals = allkeys[order], np.concatenate([self.vals, codes])[order]
            idx = np.searchsorted(self.keys, uniq)
        return self.vals[idx][inv.reshape(-1)]


class ColumnBuilder:
    """Accumulates the columns of the kept packets of many batches.

    ``columns`` are the names to produce (from DEFAULT_COLUMNS, EXTRA_COLUMNS and
    "payload"); ``protocols`` the protocol names to keep, or None for all.
    """

    def __init__(self, columns: Iterable[str], protocols: Iterable[str] | None = None) -> None:
        self.columns = list(columns)
        self.want = set(self.columns)
        self.protocols = None if protocols is None else set(protocols)
        self.tables = {"host": _Table(), "proto": _Table(), "mac": _Table()}
        self._v4 = _Coder(self.tables["host"], _ipv4_str, np.uint32)
        self._mac = _Coder(self.tables["mac"], _mac_str, np.uint64)
        self.parts: dict[str, Any] = {c: [] if c in ("payload", "fragment") else Column(_storage(c))
                                      for c in self.columns}
        self.masks: dict[str, Column] = {c: Column(np.bool_) for c in self.columns if c in NULLABLE_INT}
        self.rows = 0
        self._fast_proto = np.full(256, -1, dtype=np.int32)
        for num, pname in _FAST_NAMES.items():
            self._fast_proto[num] = self.tables["proto"].code(pname)
        self._decode = None

    # -- one batch ----------------------------------------------------------------------
    def add(self, b: Batch) -> None:
        n = len(b)
        if n == 0:
            return
        off, cap = b.off, b.caplen
        # one gather: the first 54 bytes of every packet (a fixed-size bytes type copies
        # fastest), then read through a structured type and byte-swapped once
        size = _WINDOW.itemsize
        heads = np.ndarray((len(b.buf) - size + 1,), dtype=f"S{size}", buffer=b.buf, strides=(1,))
        w = heads[off].view(_WINDOW).astype(_NATIVE)
        del heads

        # which packets take the fixed-offset path: Ethernet, IPv4 without options or
        # fragmentation, TCP/UDP/ICMP whose whole header was captured and fits the IP length
        proto = w["proto"]
        is_tcp, is_udp = proto == _TCP, proto == _UDP
        hdr = np.where(is_tcp, (w["doff"] >> 4).astype(np.int64) * 4, np.where(is_udp, 8, 4))
        fast = (w["ethertype"] == _ETHERTYPE_IPV4) & (w["vihl"] == 0x45) & ((w["frag"] & 0x3FFF) == 0)
        fast &= is_tcp | is_udp | (proto == _ICMP)
        fast &= (np.asarray(b.linktype) == linktypes.EN10MB) & (cap >= 38)
        fast &= (hdr >= np.where(is_tcp, 20, 0)) & (34 + hdr <= cap) & (20 + hdr <= w["ip_len"])

        fi = np.flatnonzero(fast)
        si = np.flatnonzero(~fast)
        keep = fast.copy()
        out: dict[str, np.ndarray] = {}
        miss: dict[str, np.ndarray] = {}
        want = self.want

        # fast rows, vectorised
        wf = w if len(fi) == n else w[fi]
        fproto = wf["proto"]
        ftcp, fudp, ficmp = fproto == _TCP, fproto == _UDP, fproto == _ICMP

        def put(name: str, values: np.ndarray, missing: np.ndarray | None = None) -> None:
            col = out.get(name)
            if col is None:
                col = out[name] = np.zeros(n, dtype=NULLABLE_INT.get(name) or values.dtype)
                if name in NULLABLE_INT:
                    miss[name] = np.ones(n, dtype=bool)
            col[fi] = values
            if name in NULLABLE_INT:
                miss[name][fi] = False if missing is None else missing

        if "src_host" in want or "dst_host" in want:
            codes = self._v4.codes(np.concatenate([wf["src"], wf["dst"]]))
            put("src_host", codes[:len(fi)])
            put("dst_host", codes[len(fi):])
        put("protocol", self._fast_proto[fproto])
        if "src_port" in want or "dst_port" in want:
            noports = ~(ftcp | fudp)
            put("src_port", wf["sport"], noports)
            put("dst_port", wf["dport"], noports)
        if "ip_proto" in want:
            put("ip_proto", fproto)
        if "ip_length" in want:
            put("ip_length", wf["ip_len"])
        if "ip_version" in want:
            put("ip_version", np.full(len(fi), 4, dtype=np.uint8))
        if "ttl" in want:
            put("ttl", wf["ttl"])
        if "ip_id" in want:
            put("ip_id", wf["ip_id"])
        if "tcp_flags" in want:
            put("tcp_flags", ((wf["doff"] & 1).astype(np.uint16) << 8) | wf["flags"], ~ftcp)
        if "tcp_seq" in want:
            put("tcp_seq", wf["seq"], ~ftcp)
        if "tcp_ack" in want:
            put("tcp_ack", wf["ack"], ~ftcp)
        if "tcp_window" in want:
            put("tcp_window", wf["win"], ~ftcp)
        if "icmp_type" in want:
            put("icmp_type", wf["sport"] >> 8, ~ficmp)
        if "icmp_code" in want:
            put("icmp_code", wf["sport"] & 0xFF, ~ficmp)
        if "vlan" in want:
            put("vlan", np.zeros(len(fi), dtype=np.uint16), np.ones(len(fi), dtype=bool))
        for name in ("eth_dst", "eth_src"):
            if name in want:
                mac = (wf[name + "_hi"].astype(np.uint64) << np.uint64(16)) | wf[name + "_lo"]
                put(name, self._mac.codes(mac))
        fragments = [None] * n if "fragment" in want else None
        pay_start = pay_stop = None
        if "payload" in want:
            pay_start = np.zeros(n, dtype=np.int64)
            pay_stop = np.zeros(n, dtype=np.int64)
            # as headers.decode: after the TCP/UDP header, from the ICMP header on; up to
            # the IP length or caplen, and for UDP also up to a shorter UDP length
            foff, fl4 = off[fi], off[fi] + 34
            start = fl4 + np.where(ficmp, 0, hdr[fi])
            stop = np.minimum(foff + 14 + wf["ip_len"], foff + cap[fi])
            ulen = (wf["seq"] >> 16).astype(np.int64)  # UDP length sits where TCP's sequence does
            stop = np.where(fudp & (ulen >= 8), np.minimum(stop, fl4 + ulen), stop)
            pay_start[fi] = start
            pay_stop[fi] = np.maximum(stop, start)

        # every other packet: the reference decoder
        extra = self._slow(b, si, keep, out, miss, fragments, pay_start, pay_stop, n) if len(si) else b""

        if self.protocols is not None:
            pcodes = [self.tables["proto"].codes[p] for p in self.protocols if p in self.tables["proto"].codes]
            keep &= np.isin(out["protocol"], pcodes)
        kept = np.flatnonzero(keep)
        if len(kept) == 0:
            return
        self.rows += len(kept)
        for name, table in CATEGORY_TABLE.items():
            if name in self.parts:
                self.parts[name].widen(_code_type(len(self.tables[table].names)))
        for name in self.columns:
            if name == "time":
                self.parts[name].append(b.time[kept])
            elif name in PLAIN_INT:
                src = {"frame": b.frame, "length": b.length, "caplen": b.caplen, "interface": b.interface}[name]
                self.parts[name].append(np.broadcast_to(np.asarray(src, dtype=np.int64), (n,))[kept])
            elif name == "fragment":
                self.parts[name].append([fragments[i] for i in kept.tolist()])
            elif name == "payload":
                self.parts[name].append(_payload(b, extra, kept, pay_start, pay_stop))
            else:
                self.parts[name].append(out[name][kept])
                if name in miss:
                    self.masks[name].append(miss[name][kept])

    def _slow(self, b: Batch, si: np.ndarray, keep: np.ndarray, out: dict, miss: dict,
              fragments: list | None, pay_start: np.ndarray | None, pay_stop: np.ndarray | None,
              n: int) -> bytes:
        """Decode the packets at ``si`` one by one; return the payload bytes they add."""
        if self._decode is None:
            from .headers import decode
            self._decode = decode
        decode = self._decode
        buf = b.buf
        offs, caps, lens = b.off[si].tolist(), b.caplen[si].tolist(), b.length[si].tolist()
        lts = np.broadcast_to(np.asarray(b.linktype), (n,))[si].tolist()
        cat = {c: self.tables[t] for c, t in CATEGORY_TABLE.items() if c in self.want or c == "protocol"}
        for c in cat:
            if c not in out:
                out[c] = np.full(n, -1, dtype=np.int32)
        nums = [c for c in NULLABLE_INT if c in self.want]
        for c in nums:
            if c not in out:
                out[c] = np.zeros(n, dtype=NULLABLE_INT[c])
                miss[c] = np.ones(n, dtype=bool)
        extra: list[bytes] = []
        extra_at = len(buf) - PAD  # slow payloads are appended after the batch's data
        for i, o, cl, ln, lt in zip(si.tolist(), offs, caps, lens, lts, strict=True):
            d = decode(lt, buf[o:o + cl], ln)
            if d is None:
                continue
            keep[i] = True
            for c, table in cat.items():
                out[c][i] = table.code(d[c])
            for c in nums:
                v = d[c]
                if v is not None:
                    out[c][i] = v
                    miss[c][i] = False
            if fragments is not None:
                fragments[i] = d["fragment"]
            if pay_start is not None:
                p = d["payload"] or b""
                pay_start[i] = extra_at
                extra_at += len(p)
                pay_stop[i] = extra_at
                extra.append(p)
        return b"".join(extra)


def _payload(b: Batch, extra: bytes, kept: np.ndarray, start: np.ndarray, stop: np.ndarray) -> Any:
    """The kept packets' payloads as one Arrow binary array (one buffer, no object per row)."""
    import pyarrow as pa

    src = memoryview(bytes(b.buf[:len(b.buf) - PAD]) + extra if extra else b.buf)
    s, e = start[kept], stop[kept]
    offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(e - s, out=offsets[1:])
    data = b"".join([src[i:j] for i, j in zip(s.tolist(), e.tolist(), strict=True)])
    return pa.Array.from_buffers(pa.binary(), len(kept), [None, pa.py_buffer(offsets.astype(np.int32)),
                                                         pa.py_buffer(data)])
