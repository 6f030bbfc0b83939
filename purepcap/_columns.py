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

import struct
from collections.abc import Iterable, Iterator
from typing import IO, Any

import numpy as np

from . import linktypes
from ._sources import open_source, source_name
from .errors import DamagedError, TruncatedError
from .format import CHUNK_SIZE, NS, Packet, Span

__all__ = ["DEFAULT_COLUMNS", "EXTRA_COLUMNS", "Batch", "ColumnBuilder", "pcap_batches", "packet_batches"]

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
    """Batches read straight from a classic pcap (version 2.4, any magic, any compression).

    Raises NotFastPcap before the first batch when the source is anything else; the
    exception carries the opened stream and the bytes already read from it. Damage is
    reported as purepcap.format's reader reports it, after the packets before it.
    """
    name = source_name(source)
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
    return _pcap_batches(stream, closers, name, order, ticks, reclen, snaplen, ltfield & 0xFFFF,
                         span, chunk_size)


def _pcap_batches(stream: IO[bytes], closers: list, name: str, order: str, ticks: int, reclen: int,
                  snaplen: int, linktype: int, span: Span | None, chunk_size: int) -> Iterator[Batch]:
    caplen_at = struct.Struct(order + "I").unpack_from
    limit = max(snaplen, linktypes.max_caplen(linktype))
    mult = NS // ticks
    u32 = np.dtype(order + "u4")
    try:
        if span is not None:
            stream.seek(span.start)
            base, frame, stop = span.start, span.first_frame - 1, span.stop
        else:
            base, frame, stop = 24, 0, None
        rest = b""
        eof = False
        while not eof:
            want = chunk_size if stop is None else min(chunk_size, stop - base - len(rest))
            data = stream.read(want) if want > 0 else b""
            if not data:
                eof = True
                if not rest:
                    break
            buf = rest + data if rest else data
            end = len(buf)
            starts: list[int] = []
            append = starts.append
            pos = 0
            damage = None
            while pos + reclen <= end:
                caplen = caplen_at(buf, pos + 8)[0]
                if caplen > limit:
                    damage = DamagedError(
                        f"record at offset {base + pos} (after frame {frame + len(starts)}) claims {caplen} "
                        f"bytes, more than the snaplen {snaplen}" if snaplen >= limit else
                        f"record at offset {base + pos} (after frame {frame + len(starts)}) claims {caplen} "
                        f"bytes, more than the largest possible {limit} (snaplen {snaplen})",
                        offset=base + pos, frame=frame + len(starts), source=name)
                    break
                nxt = pos + reclen + caplen
                if nxt > end:
                    break
                append(pos)
                pos = nxt
            if starts:
                padded = buf + bytes(PAD)
                rec = np.array(starts, dtype=np.int64)
                view = np.ndarray((len(padded) - 3,), dtype=u32, buffer=padded, strides=(1,))
                sec = view[rec].astype(np.int64)
                frac = view[rec + 4].astype(np.int64) * mult
                # libpcap's rule for fractions of a second or more: a signed 32-bit product
                frac &= 0xFFFFFFFF
                frac[frac >= 0x80000000] -= 0x100000000
                n = len(rec)
                yield Batch(padded, rec + reclen, view[rec + 8].astype(np.int64),
                            view[rec + 12].astype(np.int64), sec * NS + frac,
                            np.arange(frame + 1, frame + 1 + n, dtype=np.int64), linktype, 0)
                frame += n
            if damage is not None:
                raise damage
            rest = buf[pos:]
            base += pos
            if eof and rest:
                what = "record header" if len(rest) < reclen else "record data"
                raise TruncatedError(
                    f"capture cut short in a {what} at offset {base} (after frame {frame})",
                    offset=base, frame=frame, source=name)
    finally:
        for c in closers:
            c.close()


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
        self._v4cache: dict[int, int] = {}  # IPv4 as int -> host code
        self._maccache: dict[int, int] = {}
        self.parts: dict[str, list] = {c: [] for c in self.columns}
        self.masks: dict[str, list] = {c: [] for c in self.columns if c in NULLABLE_INT}
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
        buf, off, cap = b.buf, b.off, b.caplen
        u8 = np.frombuffer(buf, dtype=np.uint8)
        be16 = np.ndarray((len(buf) - 1,), dtype=">u2", buffer=buf, strides=(1,))
        be32 = np.ndarray((len(buf) - 3,), dtype=">u4", buffer=buf, strides=(1,))

        # which packets take the fixed-offset path
        fast = (np.asarray(b.linktype) == linktypes.EN10MB) & (cap >= 38)
        fast &= be16[off + 12] == _ETHERTYPE_IPV4
        vihl = u8[off + 14]
        ihl = (vihl & 15).astype(np.int64) * 4
        fast &= ((vihl >> 4) == 4) & (ihl >= 20)
        fast &= (be16[off + 20] & 0x3FFF) == 0  # neither more-fragments nor an offset
        proto = u8[off + 23]
        is_tcp, is_udp = proto == _TCP, proto == _UDP
        fast &= is_tcp | is_udp | (proto == _ICMP)
        tot = be16[off + 16].astype(np.int64)
        l4 = off + 14 + ihl
        hdr = np.where(is_tcp, (u8[l4 + 12] >> 4).astype(np.int64) * 4, np.where(is_udp, 8, 4))
        fast &= (hdr >= np.where(is_tcp, 20, 0)) & (14 + ihl + hdr <= cap) & (ihl + hdr <= tot)

        fi = np.flatnonzero(fast)
        si = np.flatnonzero(~fast)
        keep = fast.copy()
        out: dict[str, np.ndarray] = {}
        miss: dict[str, np.ndarray] = {}
        want = self.want

        # fast rows, vectorised
        foff, fl4, fproto = off[fi], l4[fi], proto[fi]
        ports = (fproto == _TCP) | (fproto == _UDP)
        ftcp, ficmp = fproto == _TCP, fproto == _ICMP

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
            src = be32[foff + 26]
            dst = be32[foff + 30]
            both = np.concatenate([src, dst])
            uniq, inv = np.unique(both, return_inverse=True)
            cache, table = self._v4cache, self.tables["host"]
            ucodes = np.empty(len(uniq), dtype=np.int32)
            for k, v in enumerate(uniq.tolist()):
                c = cache.get(v)
                if c is None:
                    c = cache[v] = table.code(_ipv4_str(v))
                ucodes[k] = c
            codes = ucodes[inv.reshape(-1)]
            put("src_host", codes[:len(fi)])
            put("dst_host", codes[len(fi):])
        put("protocol", self._fast_proto[fproto])
        if "src_port" in want:
            put("src_port", be16[fl4], ~ports)
        if "dst_port" in want:
            put("dst_port", be16[fl4 + 2], ~ports)
        if "ip_proto" in want:
            put("ip_proto", fproto)
        if "ip_length" in want:
            put("ip_length", tot[fi])
        if "ip_version" in want:
            put("ip_version", np.full(len(fi), 4, dtype=np.uint8))
        if "ttl" in want:
            put("ttl", u8[foff + 22])
        if "ip_id" in want:
            put("ip_id", be16[foff + 18])
        if "tcp_flags" in want:
            put("tcp_flags", be16[fl4 + 12] & 0x01FF, ~ftcp)
        if "tcp_seq" in want:
            put("tcp_seq", be32[fl4 + 4], ~ftcp)
        if "tcp_ack" in want:
            put("tcp_ack", be32[fl4 + 8], ~ftcp)
        if "tcp_window" in want:
            put("tcp_window", be16[fl4 + 14], ~ftcp)
        if "icmp_type" in want:
            put("icmp_type", u8[fl4], ~ficmp)
        if "icmp_code" in want:
            put("icmp_code", u8[fl4 + 1], ~ficmp)
        if "vlan" in want:
            put("vlan", np.zeros(len(fi), dtype=np.uint16), np.ones(len(fi), dtype=bool))
        for name, at in (("eth_dst", 0), ("eth_src", 6)):
            if name in want:
                mac = (be32[foff + at].astype(np.int64) << 16) | be16[foff + at + 4]
                uniq, inv = np.unique(mac, return_inverse=True)
                cache, table = self._maccache, self.tables["mac"]
                ucodes = np.empty(len(uniq), dtype=np.int32)
                for k, v in enumerate(uniq.tolist()):
                    c = cache.get(v)
                    if c is None:
                        c = cache[v] = table.code(_mac_str(v))
                    ucodes[k] = c
                put(name, ucodes[inv.reshape(-1)])
        fragments = [None] * n if "fragment" in want else None
        pay_start = pay_stop = None
        if "payload" in want:
            pay_start = np.zeros(n, dtype=np.int64)
            pay_stop = np.zeros(n, dtype=np.int64)
            # as headers.decode: after the TCP/UDP header, from the ICMP header on; up to
            # the IP length or caplen, and for UDP also up to a shorter UDP length
            start = fl4 + np.where(ficmp, 0, hdr[fi])
            stop = np.minimum(foff + 14 + tot[fi], foff + cap[fi])
            ulen = be16[fl4 + 4].astype(np.int64)
            stop = np.where((fproto == _UDP) & (ulen >= 8), np.minimum(stop, fl4 + ulen), stop)
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
    """The kept packets' payloads as one Arrow binary array, gathered without a loop."""
    import pyarrow as pa

    src = np.frombuffer(b.buf[:len(b.buf) - PAD] + extra if extra else b.buf, dtype=np.uint8)
    s, e = start[kept], stop[kept]
    lens = e - s
    offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    total = int(offsets[-1])
    data = src[np.repeat(s - offsets[:-1], lens) + np.arange(total, dtype=np.int64)]
    return pa.Array.from_buffers(pa.binary(), len(kept), [None, pa.py_buffer(offsets.astype(np.int32)),
                                                         pa.py_buffer(data)])
