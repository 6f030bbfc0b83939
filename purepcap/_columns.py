# Columnar decoding for DataFrames: batches of packets (_batches) in, numpy columns
# out, no dict per packet.
#
# Strategy: each batch is decoded at once: one fixed-size gather takes the first bytes
# of every packet, and structured numpy types read the fields of all packets together.
# That covers the common cases -- Ethernet (plain or one VLAN tag), Linux cooked and raw
# links; IPv4 without options or fragmentation and IPv6 without extension headers;
# TCP, UDP, ICMP and ICMPv6 with whole headers. Every other packet goes through
# purepcap.headers.decode, the reference decoder, so the result equals
# purepcap.records() row for row. Hosts, protocols and MAC addresses become category
# codes (_categories) against one table per call, so an address string is made once
# per distinct address (by purepcap.headers' own formatters), not once per packet.
#
# The columns follow the field table (purepcap._schema): a column from the packet
# container is the batch's array of that name; a decoded column is read for the fast
# rows by its producer in _FAST_COLUMNS and for the other rows from the reference
# decoder's dict, by its kind (category code, nullable integer, object). A decoded
# column without a producer (a new field) sends every row to the reference decoder.
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import _schema, linktypes
from ._appfields import (
    APP_FIELDS,
    CANDIDATE_FIRST,
    CANDIDATE_FIRST_HTTP,
    DNS_PORTS,
    HEADER_NAME_SPAN,
    HTTP_PORTS,
    TOKEN_BYTES,
    app_fields,
    decode_candidate,
)
from ._batches import PAD, Batch, _gather
from ._categories import _BytesCoder, _code_type, _Coder, _mac_str, _Table
from ._dns import HEADER_BYTES as DNS_HEADER_BYTES
from ._dns import dns_fields, dns_fields_by_header

__all__ = ["DEFAULT_COLUMNS", "EXTRA_COLUMNS", "Column", "ColumnBuilder"]

# The columns, their storage and their category tables: all from the one field table.
DEFAULT_COLUMNS = _schema.FRAME_DEFAULT
EXTRA_COLUMNS = _schema.FRAME_EXTRA
# numeric columns that may be missing: numpy storage type (a pandas nullable type on top)
NULLABLE_INT = {f.name: np.dtype(f.numpy).type for f in _schema.FIELDS if f.nullable}
# numeric columns that every packet has
PLAIN_INT = {f.name: np.dtype(f.numpy).type for f in _schema.FIELDS
             if f.numpy == "int64" and f.pandas == "int64"}
# string columns stored as category codes; the table each one uses
CATEGORY_TABLE = {f.name: f.category for f in _schema.FIELDS if f.category is not None}


_TCP, _UDP, _ICMP = 6, 17, 1
_ICMPV6 = 58
_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100, 0x9200, 0x9300)  # as purepcap.headers follows them
_IS_VLAN_TPID = np.zeros(1 << 16, dtype=bool)  # a gather is much cheaper than np.isin
_IS_VLAN_TPID[list(_VLAN_TPIDS)] = True
_RAW_LINKTYPES = (linktypes.RAW, linktypes.RAW_OPENBSD, linktypes.RAW_LINUX, linktypes.IPV4)


def _fields(spec: list[tuple[str, str, int]], size: int) -> np.dtype:
    """A big-endian record type over ``size`` bytes."""
    return np.dtype({"names": [f[0] for f in spec], "formats": [f[1] for f in spec],
                     "offsets": [f[2] for f in spec], "itemsize": size})


class _Fields:
    """The named fields of records read in wire order, each made a native-order array
    when first asked for (a batch uses about half of them), at ``rows`` only if given."""

    __slots__ = ("_wire", "_rows", "_done")

    def __init__(self, wire: np.ndarray, rows: np.ndarray | None = None) -> None:
        self._wire, self._rows = wire, rows
        self._done: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        v = self._done.get(name)
        if v is None:
            v = self._wire[name]
            if self._rows is not None:
                v = v[self._rows]
            v = self._done[name] = v.astype(v.dtype.newbyteorder("="))
        return v

    @property
    def wire(self) -> np.ndarray:
        """The records as read (every row), in wire order."""
        return self._wire

    def at(self, rows: np.ndarray) -> _Fields:
        return _Fields(self._wire, rows)


# 60 bytes from the IP header on, read as IPv4 (no options) + the first 20 transport
# bytes, and as IPv6 + the same. UDP's length sits where TCP's sequence number does,
# ICMP's type and code in the bytes of the source port.
_TRANSPORT = [("sport", ">u2", 0), ("dport", ">u2", 2), ("seq", ">u4", 4), ("ack", ">u4", 8),
              ("doff", "u1", 12), ("flags", "u1", 13), ("win", ">u2", 14)]
_W4 = _fields([("vihl", "u1", 0), ("ip_len", ">u2", 2), ("ip_id", ">u2", 4), ("frag", ">u2", 6),
                     ("ttl", "u1", 8), ("proto", "u1", 9), ("src", ">u4", 12), ("dst", ">u4", 16)]
                    + [(n, f, o + 20) for n, f, o in _TRANSPORT], 60)
_W6 = _fields([("vtc", "u1", 0), ("plen", ">u2", 4), ("nh", "u1", 6), ("hlim", "u1", 7)]
                    + [(n, f, o + 40) for n, f, o in _TRANSPORT], 60)


def _in_numpy(name: str) -> bool:
    """Whether a column is built as a numpy Column (else as a list of parts)."""
    f = _schema.BY_NAME[name]
    return f.category is not None or f.numpy not in (None, "object")


def _storage(name: str) -> Any:
    # category codes start small and widen when their table outgrows them
    return np.int8 if name in CATEGORY_TABLE else np.dtype(_schema.BY_NAME[name].numpy).type


class Column:
    """A growing numpy column.

    Room is taken with np.empty, whose pages cost no memory until rows are written
    into them, so reserving for an estimated row count is nearly free and a good
    estimate means the column is never copied; without one it grows by half each
    time. At the end it is trimmed in place.
    """

    __slots__ = ("arr", "n")

    def __init__(self, dtype: Any) -> None:
        self.arr = np.empty(0, dtype=dtype)
        self.n = 0

    def reserve(self, rows: int) -> None:
        if rows > len(self.arr):
            bigger = np.empty(rows, dtype=self.arr.dtype)
            bigger[:self.n] = self.arr[:self.n]
            self.arr = bigger

    def append(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.arr):
            self.reserve(max(need, len(self.arr) + (len(self.arr) >> 1) + 4096))
        self.arr[self.n:need] = values
        self.n = need

    def widen(self, dtype: Any) -> None:
        if np.dtype(dtype).itemsize > self.arr.dtype.itemsize:
            self.arr = self.arr.astype(dtype)

    def finish(self) -> np.ndarray:
        """The column, trimmed to its rows; the Column must not be used afterwards."""
        arr, self.arr = self.arr, np.empty(0, dtype=self.arr.dtype)
        arr.resize(self.n, refcheck=False)  # shrinking: no copy, the tail is given back
        return arr


class ColumnBuilder:
    """Accumulates the columns of the kept packets of many batches.

    ``columns`` are the names to produce (from DEFAULT_COLUMNS, EXTRA_COLUMNS and
    "payload"); ``protocols`` the protocol names to keep, or None for all.
    """

    def __init__(self, columns: Iterable[str], protocols: Iterable[str] | None = None,
                 reassembler: Any = None) -> None:
        self.columns = list(columns)
        self.want = set(self.columns)
        self.protocols = None if protocols is None else set(protocols)
        self.tables = {t: _Table() for t in _schema.CATEGORY_TABLES}
        from .headers import ip4_str, ip6_str

        # address strings made by purepcap.headers itself, so they equal records()'
        self._v4 = _Coder(self.tables["host"], ip4_str, np.uint32)
        self._v6 = _BytesCoder(self.tables["host"], ip6_str)
        self._mac = _Coder(self.tables["mac"], _mac_str, np.uint64)
        # numpy columns grow in place; the others (object arrays, Arrow payloads) are lists of parts
        self.parts: dict[str, Any] = {c: Column(_storage(c)) if _in_numpy(c) else []
                                      for c in self.columns}
        self.masks: dict[str, Column] = {c: Column(np.bool_) for c in self.columns if c in NULLABLE_INT}
        self.rows = 0
        self._proto_code = np.full(256, -1, dtype=np.int32)  # IP protocol number -> code
        self._decode = None
        # What each batch does, chosen once from the field table: the fast rows' producers
        # (protocol always: the protocol filter reads it), the object columns filled row by
        # row, and how each column's values are taken from a batch.
        fields = [_schema.BY_NAME[c] for c in self.columns]
        self._fast_cols = [(c, p) for c, p in _FAST_COLUMNS.items()
                           if p is not None and (c in self.want or c == "protocol")]
        self._all_general = any(f.source in _schema.DECODED_SOURCES and f.name not in _FAST_COLUMNS
                                for f in fields)
        self._object_cols = [f.name for f in fields if f.numpy == "object" and f.source not in _schema.APP_SOURCES]
        # the application columns asked for, with each one's place in app_fields' tuple
        self._app_cols = [(f.name, _APP_INDEX[f.name]) for f in fields if f.source in _schema.APP_SOURCES]
        # reassemble=True (purepcap._reassembly, shared by the builders of one read): the
        # TCP segments it must see, gathered by both paths of a batch as (row, direction,
        # ports, seq, SYN, payload) and fed in frame order once the batch is added
        self.joiner = reassembler if self._app_cols else None
        self._feed: list[tuple] | None = None
        self._payload = "payload" in self.want
        self._kinds = [(f.name, "packet" if f.source == "packet" else "payload" if f.role == "payload"
                        else "app" if f.source in _schema.APP_SOURCES
                        else "object" if f.numpy == "object" else "numpy") for f in fields]

    def reserve(self, rows: int) -> None:
        """Make room for about ``rows`` rows in every column (an estimate is fine)."""
        for col in self.parts.values():
            if isinstance(col, Column):
                col.reserve(rows)
        for col in self.masks.values():
            col.reserve(rows)

    def _proto_codes(self, numbers: np.ndarray) -> np.ndarray:
        codes = self._proto_code[numbers]
        if (codes < 0).any():
            from ._protocols import NAMES

            for num in np.unique(numbers[codes < 0]).tolist():
                self._proto_code[num] = self.tables["proto"].code(NAMES[num])
            codes = self._proto_code[numbers]
        return codes

    # -- one batch ----------------------------------------------------------------------
    @staticmethod
    def _link_layer(b: Batch, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """From each packet's first 20 bytes (ten big-endian u16): where the IP header
        starts (l3, -1 when the packet needs the general decoder), which IP the link names
        (ipk; 1: "IP", whose version nibble decides; 2: IPv6 only), the VLAN id (-1:
        none), and which rows are Ethernet (None: all of them)."""
        link = _gather(b.buf, b.off, 20).view(">u2").reshape(n, 10)
        l3 = np.full(n, -1, dtype=np.int64)
        ipk = np.zeros(n, dtype=np.int8)
        vlan = np.full(n, -1, dtype=np.int32)
        if isinstance(b.linktype, int):  # a pcap batch: one link type for every row
            lt, kinds = None, [b.linktype]
        else:
            lt = b.linktype
            kinds = np.unique(lt).tolist()
            if len(kinds) == 1:
                lt = None
        eth: np.ndarray | None = np.zeros(n, dtype=bool) if linktypes.EN10MB not in kinds else None
        for kind in kinds:
            rows = slice(None) if lt is None else (lt == kind)
            if kind == linktypes.EN10MB:
                et, et2 = link[:, 6].astype(np.int32), link[:, 8].astype(np.int32)
                plain = (et == 0x0800) | (et == 0x86DD)
                tagged = _IS_VLAN_TPID[et] & ((et2 == 0x0800) | (et2 == 0x86DD))
                if lt is not None:
                    eth = rows
                    plain &= rows
                    tagged &= rows
                l3[plain], ipk[plain] = 14, np.where(et[plain] == 0x0800, 1, 2)
                l3[tagged], ipk[tagged] = 18, np.where(et2[tagged] == 0x0800, 1, 2)
                vlan[tagged] = link[tagged, 7] & 0x0FFF
            elif kind in _RAW_LINKTYPES:
                l3[rows], ipk[rows] = 0, 1
            elif kind == linktypes.IPV6:
                l3[rows], ipk[rows] = 0, 2
            elif kind in (linktypes.LINUX_SLL, linktypes.LINUX_SLL2):
                at, hatype_at, proto_at = (16, 1, 7) if kind == linktypes.LINUX_SLL else (20, 4, 0)
                proto = link[:, proto_at].astype(np.int32)
                sll = (link[:, hatype_at] != 824) & ((proto == 0x0800) | (proto == 0x86DD))
                if lt is not None:
                    sll &= rows
                l3[sll], ipk[sll] = at, np.where(proto[sll] == 0x0800, 1, 2)
        return l3, ipk, vlan, eth

    def add(self, b: Batch) -> None:
        n = len(b)
        if n == 0:
            return
        off, cap = b.off, b.caplen
        l3, ipk, vlan, eth = self._link_layer(b, n)

        # IP and transport, from 60 bytes at the IP header, read as IPv4 + 40 and as IPv6 + 20
        at3 = off + np.maximum(l3, 0)
        win = _gather(b.buf, at3, 60)
        w4, w6 = _Fields(win.view(_W4)), _Fields(win.view(_W6))
        del win
        if self._all_general:  # a column only the reference decoder makes: every row takes it
            fast = np.zeros(n, dtype=bool)
            hdr4 = hdr6 = None
        else:
            known = l3 >= 0
            # IPv4 without options or fragmentation, carrying TCP, UDP or ICMP
            p4 = w4["proto"]
            tcp4 = p4 == _TCP
            hdr4 = np.where(tcp4, (w4["doff"] >> 4).astype(np.int64) * 4, np.where(p4 == _UDP, 8, 4))
            f4 = known & (ipk == 1) & (w4["vihl"] == 0x45) & ((w4["frag"] & 0x3FFF) == 0)
            f4 &= tcp4 | (p4 == _UDP) | (p4 == _ICMP)
            f4 &= (hdr4 >= np.where(tcp4, 20, 0)) & (l3 + 20 + hdr4 <= cap) & (20 + hdr4 <= w4["ip_len"])
            # IPv6 without extension headers, carrying TCP, UDP or ICMPv6
            p6 = w6["nh"]
            tcp6 = p6 == _TCP
            hdr6 = np.where(tcp6, (w6["doff"] >> 4).astype(np.int64) * 4, np.where(p6 == _UDP, 8, 4))
            f6 = known & ((w6["vtc"] >> 4) == 6) & (tcp6 | (p6 == _UDP) | (p6 == _ICMPV6))
            f6 &= (hdr6 >= np.where(tcp6, 20, 0)) & (l3 + 40 + hdr6 <= cap) & (hdr6 <= w6["plen"])
            fast = f4 | f6

        fi = np.flatnonzero(fast)
        si = np.flatnonzero(~fast)
        keep = fast.copy()
        out: dict[str, np.ndarray] = {}
        miss: dict[str, np.ndarray] = {}
        objects = {c: np.empty(n, dtype=object) for c in self._object_cols}  # None-filled
        # the application fields found: (batch rows, the first k of APP_FIELDS over those
        # rows, each a sequence), kept sparse: most rows have none
        app: list[tuple[Any, list[Any]]] = []
        if self.joiner is not None:
            self._feed = []
        pay_start = pay_stop = None
        if self._payload:
            pay_start = np.zeros(n, dtype=np.int64)
            pay_stop = np.zeros(n, dtype=np.int64)

        if len(fi):
            # fast rows, vectorised: each column from its producer in _FAST_COLUMNS
            f = _FastRows(b, fi, at3, w4, w6, f6, hdr4, hdr6, vlan, eth, n)
            every = len(fi) == n  # (the common batch: the producers' arrays are the columns)
            for name, produce in self._fast_cols:
                values, missing = produce(self, f)
                if every:
                    out[name] = values.astype(NULLABLE_INT.get(name) or values.dtype, copy=False)
                    if name in NULLABLE_INT:
                        miss[name] = np.zeros(n, dtype=bool) if missing is None else missing
                    continue
                col = out.get(name)
                if col is None:
                    col = out[name] = np.zeros(n, dtype=NULLABLE_INT.get(name) or values.dtype)
                    if name in NULLABLE_INT:
                        miss[name] = np.ones(n, dtype=bool)
                col[fi] = values
                if name in NULLABLE_INT:
                    miss[name][fi] = False if missing is None else missing
            if pay_start is not None or self._app_cols:
                starts, stops = _fast_payload(f)
                if pay_start is not None:
                    pay_start[fi], pay_stop[fi] = starts, stops
                if self._app_cols:
                    cand = _fast_app(app, f, starts, stops)
                    if self._feed is not None and cand is not None:
                        self._fast_feed(f, cand, starts, stops)

        # every other packet: the reference decoder
        extra = self._slow(b, si, keep, out, miss, objects, app, pay_start, pay_stop, n) if len(si) else b""

        if self.protocols is not None:
            pcodes = [self.tables["proto"].codes[p] for p in self.protocols if p in self.tables["proto"].codes]
            keep &= np.isin(out["protocol"], pcodes)
        kept = np.flatnonzero(keep)
        if len(kept) == 0:
            return
        if self._app_cols:
            self._add_app(app, kept, n)
            if self._feed:
                self._reassemble(b, kept, n)
        self.rows += len(kept)
        for name, table in CATEGORY_TABLE.items():
            if name in self.parts:
                self.parts[name].widen(_code_type(len(self.tables[table].names)))
        rows = slice(None) if len(kept) == n else kept  # (every row kept: no copy to take them)
        for name, kind in self._kinds:
            part = self.parts[name]
            if kind == "packet":  # a per-packet array, or one value for the whole batch
                part.append(np.broadcast_to(np.asarray(getattr(b, name), dtype=np.int64), (n,))[rows])
            elif kind == "object":
                part.append(objects[name][rows])
            elif kind == "app":
                pass  # added by _add_app
            elif kind == "payload":
                part.append(_payload(b, extra, kept, pay_start, pay_stop))
            else:
                part.append(out[name][rows])
                if name in miss:
                    self.masks[name].append(miss[name][rows])

    def _add_app(self, app: list[tuple[Any, list[Any]]], kept: np.ndarray, n: int) -> None:
        """Add the application values found in a batch, at their rows' places in the
        frame (rows not kept, by the protocol filter, are dropped)."""
        place = np.full(n, -1, dtype=np.int64)
        place[kept] = np.arange(self.rows, self.rows + len(kept))
        for rows, by_field in app:
            at = place[np.asarray(rows, dtype=np.intp)]
            ok = None if len(kept) == n else at >= 0
            for c, k in self._app_cols:
                if k < len(by_field):
                    column = by_field[k]
                    if not isinstance(column, np.ndarray):  # (fromiter keeps each tuple value one element)
                        column = np.fromiter(column, dtype=object, count=len(rows))
                    self.parts[c].append((at, column) if ok is None else (at[ok], column[ok]))

    def _fast_feed(self, f: _FastRows, cand: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> None:
        """The fast rows the reassembly must see: TCP segments with a payload of the
        connections (by port pair; the joiner checks the whole direction) that have a
        pending message or a candidate segment in this batch. Every other segment could
        neither start nor continue a message."""
        tcp = np.flatnonzero(f.tcp & (stops > starts))
        if not len(tcp):
            return
        sport, dport = f.pick("sport")[tcp], f.pick("dport")[tcp]
        pairs = sport.astype(np.int64) << 16 | dport
        known = [k[2] << 16 | k[4] for k in self.joiner.pending_keys()]
        opening = pairs[cand[tcp]]
        rows = tcp[np.isin(pairs, np.concatenate([np.array(known, dtype=np.int64), opening]))]
        if not len(rows):
            return
        names = self.tables["host"].names
        hosts = f.hosts(self)
        m = len(f.fi)
        at = f.fi[rows]
        vlans = f.vlan[at].tolist()
        buf = f.b.buf
        feed = self._feed
        for r, v, src, dst, sp, dp, seq, flags, s, e in zip(  # noqa: B905
                at.tolist(), vlans, hosts[rows].tolist(), hosts[rows + m].tolist(), f.pick("sport")[rows].tolist(),
                f.pick("dport")[rows].tolist(), f.pick("seq")[rows].tolist(), f.pick("flags")[rows].tolist(),
                starts[rows].tolist(), stops[rows].tolist()):
            feed.append((r, (None if v < 0 else v, names[src], sp, names[dst], dp), sp, dp, seq,
                         bool(flags & 2), bytes(buf[s:e])))

    def _reassemble(self, b: Batch, kept: np.ndarray, n: int) -> None:
        """Feed the batch's segments to the joiner in frame order; where a message is
        complete, its fields replace its first row's and clear the rows it took (a later
        (rows, values) part overrides an earlier one: see dataframe._frame)."""
        place = np.full(n, -1, dtype=np.int64)
        place[kept] = np.arange(self.rows, self.rows + len(kept))
        feed, self._feed = self._feed, None
        feed.sort(key=_first)
        joiner = self.joiner
        frames = b.frame
        for i, key, sp, dp, seq, syn, body in feed:
            at = int(place[i])
            if at < 0:
                continue  # (a protocol filter that drops TCP)
            done = joiner.segment(int(frames[i]), at, key, sp, dp, seq, syn, body)
            if done is not None:
                first, values, others = done
                rows = np.array([first] + others, dtype=np.int64)
                for c, k in self._app_cols:
                    column = np.full(len(rows), None, dtype=object)
                    column[0] = values[k]
                    self.parts[c].append((rows, column))
        joiner.expire(int(frames[n - 1]))

    def _slow(self, b: Batch, si: np.ndarray, keep: np.ndarray, out: dict, miss: dict,
              objects: dict[str, np.ndarray], app: list, pay_start: np.ndarray | None,
              pay_stop: np.ndarray | None,
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
        objs = list(objects.items())
        app_rows: list[int] = []
        app_values: list[tuple] = []
        find_app = app_fields if self._app_cols else None
        feed = self._feed
        extra: list[bytes] = []
        extra_at = len(buf) - PAD  # slow payloads are appended after the batch's data
        for i, o, cl, ln, lt in zip(si.tolist(), offs, caps, lens, lts):
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
            if objs:
                for c, values in objs:
                    values[i] = d[c]
            if find_app is not None:
                got = find_app(d["ip_proto"], d["src_port"], d["dst_port"], d["payload"])
                if got is not None:
                    app_rows.append(i)
                    app_values.append(got)
                if (feed is not None and d["ip_proto"] == _TCP and d["payload"] and d["fragment"] is None
                        and d["tcp_seq"] is not None):
                    feed.append((i, (d["vlan"], d["src_host"], d["src_port"], d["dst_host"], d["dst_port"]),
                                 d["src_port"], d["dst_port"], d["tcp_seq"], bool(d["tcp_flags"] & 2),
                                 d["payload"]))
            if pay_start is not None:
                p = d["payload"] or b""
                pay_start[i] = extra_at
                extra_at += len(p)
                pay_stop[i] = extra_at
                extra.append(p)
        if app_rows:
            app.append((app_rows, list(zip(*app_values))))  # noqa: B905 - one tuple per field
        return b"".join(extra)


class _FastRows:
    """The rows of a batch the vectorised path decodes (``fi``), read as IPv4 (``a4``)
    or IPv6 (``a6``, where ``v6``), and what several columns share: the protocol, its
    kind and the transport header's length; host and MAC codes once asked for."""

    __slots__ = ("b", "fi", "at3", "a4", "a6", "v6", "any6", "vlan", "eth", "proto", "tcp", "udp", "icmp",
                 "hdr", "_hosts", "_macs")

    def __init__(self, b: Batch, fi: np.ndarray, at3: np.ndarray, w4: _Fields, w6: _Fields, f6: np.ndarray,
                 hdr4: np.ndarray, hdr6: np.ndarray, vlan: np.ndarray, eth: np.ndarray | None, n: int) -> None:
        every = len(fi) == n
        self.b, self.fi, self.at3, self.vlan, self.eth = b, fi, at3, vlan, eth
        self.v6 = v6 = f6 if every else f6[fi]
        self.any6 = any6 = bool(v6.any())
        self.a4 = w4 if every else w4.at(fi)
        self.a6 = w6 if every else w6.at(fi)
        self.proto = proto = self.pick("proto", "nh")
        self.tcp, self.udp = proto == _TCP, proto == _UDP
        self.icmp = (proto == _ICMP) | (proto == _ICMPV6)
        self.hdr = hdr4[fi] if not any6 else np.where(v6, hdr6[fi], hdr4[fi])
        self._hosts: np.ndarray | None = None
        self._macs: tuple[np.ndarray, np.ndarray] | None = None

    def pick(self, f4_field: str, f6_field: str | None = None) -> np.ndarray:
        """A field of every fast row: the IPv6 one (``f6_field`` if named) where the row is IPv6."""
        if not self.any6:
            return self.a4[f4_field]
        return np.where(self.v6, self.a6[f6_field or f4_field], self.a4[f4_field])

    def payload_head(self, starts: np.ndarray, size: int, rows: np.ndarray | None = None) -> np.ndarray:
        """``size`` bytes from each fast row's payload start (``starts``, as _fast_payload
        gives them; only at ``rows`` of them if given), one bytes record per row: from
        the windows at the IP headers that ColumnBuilder.add has read (and the cache
        still holds) where they reach that far, else from the batch (the same bytes,
        past a payload's end too)."""
        window = _W4.itemsize
        fi = self.fi if rows is None else self.fi[rows]
        if rows is not None:
            starts = starts[rows]
        rel = starts - (self.at3 if len(fi) == len(self.b.off) else self.at3[fi])
        near = rel + size <= window
        windows = self.a4.wire.view(np.uint8)  # (every row's window, in batch order)
        if near.all():
            return _gather(windows, fi * window + rel, size)
        out = np.empty(len(fi), dtype=f"S{size}")
        out[near] = _gather(windows, fi[near] * window + rel[near], size)
        out[~near] = _gather(self.b.buf, starts[~near], size)
        return out

    def ip_length(self) -> np.ndarray:
        if not self.any6:
            return self.a4["ip_len"]
        return np.where(self.v6, self.a6["plen"].astype(np.uint32) + 40, self.a4["ip_len"])

    def hosts(self, cb: ColumnBuilder) -> np.ndarray:
        """Source codes, then destination codes (made together: one table lookup)."""
        if self._hosts is None:
            fi, v6 = self.fi, self.v6
            codes = np.empty(2 * len(fi), dtype=np.int32)
            four = np.flatnonzero(~v6)
            codes[np.concatenate([four, four + len(fi)])] = cb._v4.codes(
                np.concatenate([self.a4["src"][four], self.a4["dst"][four]]))
            if self.any6:
                six = np.flatnonzero(v6)
                raw6 = _gather(self.b.buf, self.at3[fi[six]] + 8, 32).view("S16").reshape(-1, 2)
                codes[np.concatenate([six, six + len(fi)])] = cb._v6.codes(
                    np.concatenate([raw6[:, 0], raw6[:, 1]]))
            self._hosts = codes
        return self._hosts

    def mac(self, cb: ColumnBuilder, k: int) -> np.ndarray:
        """Codes of the MAC address at 16-bit word ``k`` (0: destination, 3: source);
        -1 on rows of other link types, which have none."""
        if self._macs is None:
            fi = self.fi
            ethrows = np.arange(len(fi)) if self.eth is None else np.flatnonzero(self.eth[fi])
            words = _gather(self.b.buf, self.b.off[fi[ethrows]], 12).view(">u2").reshape(-1, 6).astype(np.uint64)
            self._macs = (ethrows, words)
        ethrows, words = self._macs
        mac = (words[:, k] << np.uint64(32)) | (words[:, k + 1] << np.uint64(16)) | words[:, k + 2]
        codes = np.full(len(self.fi), -1, dtype=np.int32)
        codes[ethrows] = cb._mac.codes(mac)
        return codes


def _vlan(f: _FastRows) -> tuple[np.ndarray, np.ndarray]:
    fv = f.vlan[f.fi]
    return np.maximum(fv, 0).astype(np.uint16), fv < 0


# How each column is read for the fast rows of a batch, all at once: (builder, fast rows)
# -> (values, rows where the field is missing, or None). The columns from the packet
# container, the payload and the object columns are not here (ColumnBuilder.add takes
# them from the batch, _fast_payload and the reference decoder); fragment is None on
# every fast row (they are not fragments). A decoded column with no producer here is
# made by the reference decoder for every row of the batch: correct, and slower.
Producer = Callable[["ColumnBuilder", _FastRows], "tuple[np.ndarray, np.ndarray | None]"]
_FAST_COLUMNS: dict[str, Producer | None] = {
    "src_host": lambda cb, f: (f.hosts(cb)[:len(f.fi)], None),
    "dst_host": lambda cb, f: (f.hosts(cb)[len(f.fi):], None),
    "protocol": lambda cb, f: (cb._proto_codes(f.proto), None),
    "src_port": lambda cb, f: (f.pick("sport"), ~(f.tcp | f.udp)),
    "dst_port": lambda cb, f: (f.pick("dport"), ~(f.tcp | f.udp)),
    "ip_version": lambda cb, f: (np.where(f.v6, 6, 4).astype(np.uint8), None),
    "ttl": lambda cb, f: (f.pick("ttl", "hlim"), None),
    "ip_id": lambda cb, f: (f.a4["ip_id"], f.v6),
    "tcp_flags": lambda cb, f: (((f.pick("doff") & 1).astype(np.uint16) << 8) | f.pick("flags"), ~f.tcp),
    "tcp_seq": lambda cb, f: (f.pick("seq"), ~f.tcp),
    "tcp_ack": lambda cb, f: (f.pick("ack"), ~f.tcp),
    "tcp_window": lambda cb, f: (f.pick("win"), ~f.tcp),
    "icmp_type": lambda cb, f: (f.pick("sport") >> 8, ~f.icmp),  # ICMP's type and code sit where ports do
    "icmp_code": lambda cb, f: (f.pick("sport") & 0xFF, ~f.icmp),
    "vlan": lambda cb, f: _vlan(f),
    "eth_src": lambda cb, f: (f.mac(cb, 3), None),
    "eth_dst": lambda cb, f: (f.mac(cb, 0), None),
    "fragment": None,
    "ip_proto": lambda cb, f: (f.proto, None),
    "ip_length": lambda cb, f: (f.ip_length(), None),
}


# The application fields' candidate test (purepcap._appfields.is_candidate) for a whole
# batch: first-byte and port tables as numpy lookups, the tables taken from _appfields.
_APP_INDEX = {name: i for i, name in enumerate(APP_FIELDS)}
# One lookup per row gives every class a byte or a port is in (bits, or'ed over both ports).
_FIRST_ANY, _FIRST_HTTP = 1, 2  # CANDIDATE_FIRST, CANDIDATE_FIRST_HTTP
_FIRST_CLASS = (np.frombuffer(CANDIDATE_FIRST, dtype=np.uint8) * _FIRST_ANY
                | np.frombuffer(CANDIDATE_FIRST_HTTP, dtype=np.uint8) * _FIRST_HTTP).astype(np.uint8)
_ON_DNS, _ON_HTTP, _ON_TCP_DNS = 1, 2, 4  # DNS_PORTS, HTTP_PORTS, 53 (DNS over TCP)
_PORT_CLASS = np.zeros(1 << 16, dtype=np.uint8)
_PORT_CLASS[list(DNS_PORTS)] |= _ON_DNS
_PORT_CLASS[list(HTTP_PORTS)] |= _ON_HTTP
_PORT_CLASS[53] |= _ON_TCP_DNS
# a colon in a word of 8 bytes: the classic test for a zero byte (exact for "any"), on
# the word xor'ed with colons
_COLONS, _ONES, _HIGHS = np.uint64(0x3A3A3A3A3A3A3A3A), np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)
_SPAN_WORDS = -(-HEADER_NAME_SPAN // 8)  # (a few bytes past the span only let more rows on)
_NOT_NAME = np.ones(256, dtype=bool)
_NOT_NAME[list(TOKEN_BYTES)] = False
_SPAN_AT = np.arange(HEADER_NAME_SPAN)


def _first(item: tuple) -> int:
    return item[0]


def _fast_app(app: list, f: _FastRows, starts: np.ndarray, stops: np.ndarray) -> np.ndarray | None:
    """The application fields of the fast rows: purepcap._appfields.is_candidate for all
    of them at once, with its tables, then its decoder for the candidates only; each
    group of rows found goes to ``app`` as (batch rows, a sequence per field: the first
    of APP_FIELDS, or all of them).
    Returns the candidate test's result over the fast rows (None: no TCP or UDP payload)."""
    b = f.b
    sport, dport = f.pick("sport"), f.pick("dport")
    size = stops - starts
    udp, tcp = f.udp & (size > 0), f.tcp & (size > 0)
    if not (udp.any() or tcp.any()):
        return None
    # the first 6 payload bytes of every row (the buffer's padding covers a short one;
    # a byte past a payload's end is only looked at where the size test refuses it)
    head = f.payload_head(starts, 6).view(np.uint8).reshape(-1, 6)
    ports = _PORT_CLASS[sport] | _PORT_CLASS[dport]
    first = _FIRST_CLASS[head[:, 0]]
    on_dns = (ports & _ON_DNS) != 0
    dns_like = (size >= 17) & (head[:, 4] == 0) & (head[:, 5] == 1) & ((head[:, 2] & 0x78) == 0) \
        & ((head[:, 3] & 0x40) == 0)
    cand = udp & (on_dns | dns_like)
    cand |= tcp & ((ports & _ON_TCP_DNS) | (first & _FIRST_ANY) != 0)
    # a header line cut by the segment, on HTTP's ports: a colon within the span (the
    # rows with a colon anywhere in it first, 8 bytes at a time; most have none)
    maybe = np.flatnonzero(tcp & ~cand & ((first & _FIRST_HTTP) != 0) & ((ports & _ON_HTTP) != 0))
    if len(maybe):
        words = _gather(b.buf, starts[maybe], _SPAN_WORDS * 8).view(np.uint64).reshape(len(maybe), -1) ^ _COLONS
        maybe = maybe[(((words - _ONES) & ~words & _HIGHS) != 0).any(axis=1)]
    if len(maybe):
        span = _gather(b.buf, starts[maybe], HEADER_NAME_SPAN).view(np.uint8).reshape(-1, HEADER_NAME_SPAN)
        colons = (span == 0x3A) & (_SPAN_AT < np.minimum(size[maybe], HEADER_NAME_SPAN)[:, None])
        colons[:, 0] = False
        colon = np.where(colons.any(axis=1), colons.argmax(axis=1), 0)  # the first, or 0: none
        name_ok = ~(_NOT_NAME[span] & (_SPAN_AT < colon[:, None])).any(axis=1)
        cand[maybe[(colon > 0) & name_ok]] = True
    # UDP on DNS's ports is DNS (decode_candidate's first rule): its rows go straight
    # to the DNS decoder and fill only the DNS columns; those its header decides (a
    # cut or empty message, or bytes on port 53 that are not DNS) all at once, by
    # purepcap._dns's own reading of them, and only the rest one by one
    on_dns &= udp
    cand &= ~on_dns
    buf = b.buf
    rows = np.flatnonzero(on_dns)
    if len(rows):
        dns_head = f.payload_head(starts, DNS_HEADER_BYTES, rows).view(np.uint8).reshape(-1, DNS_HEADER_BYTES)
        decided, found_at, columns = dns_fields_by_header(dns_head, size[rows])
        if len(found_at):
            app.append((f.fi[rows[found_at]], columns))
        rows = rows[~decided]
    if len(rows):
        found: list[int] = []
        results: list[tuple] = []
        for r, s, e in zip(f.fi[rows].tolist(), starts[rows].tolist(), stops[rows].tolist()):  # noqa: B905
            got = dns_fields(bytes(buf[s:e]))
            if got is not None:
                found.append(r)
                results.append(got)
        if found:
            app.append((found, list(zip(*results))))  # noqa: B905 - one tuple per field
    rows = np.flatnonzero(cand)
    if len(rows):
        found = []
        results = []
        for r, proto, sp, dp, s, e in zip(f.fi[rows].tolist(), f.proto[rows].tolist(),  # noqa: B905
                                          sport[rows].tolist(), dport[rows].tolist(), starts[rows].tolist(),
                                          stops[rows].tolist()):
            got = decode_candidate(proto, sp, dp, bytes(buf[s:e]))
            if got is not None:
                found.append(r)
                results.append(got)
        if found:
            app.append((found, list(zip(*results))))  # noqa: B905 - one tuple per field
    return cand


def _fast_payload(f: _FastRows) -> tuple[np.ndarray, np.ndarray]:
    """Where the fast rows' payloads start and stop in the batch's buffer: as
    headers.decode, after the TCP/UDP header, from the ICMP header on; up to the IP
    length or caplen, and for UDP also up to a shorter UDP length."""
    b, fi, v6 = f.b, f.fi, f.v6
    every = len(fi) == len(b.off)  # (the common batch: no row to pick)
    f3 = f.at3 if every else f.at3[fi]
    fl4 = f3 + np.where(v6, 40, 20) if f.any6 else f3 + 20
    start = fl4 + np.where(f.icmp, 0, f.hdr)
    stop = np.minimum(f3 + f.ip_length().astype(np.int64), b.off + b.caplen if every else b.off[fi] + b.caplen[fi])
    ulen = (f.pick("seq") >> 16).astype(np.int64)  # UDP length sits where TCP's sequence does
    stop = np.where(f.udp & (ulen >= 8), np.minimum(stop, fl4 + ulen), stop)
    return start, np.maximum(stop, start)

def _payload(b: Batch, extra: bytes, kept: np.ndarray, start: np.ndarray, stop: np.ndarray) -> Any:
    """The kept packets' payloads as one Arrow binary array (one buffer, no object per row)."""
    import pyarrow as pa

    src = memoryview(bytes(b.buf[:len(b.buf) - PAD]) + extra if extra else b.buf)
    s, e = start[kept], stop[kept]
    offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(e - s, out=offsets[1:])
    data = b"".join([src[i:j] for i, j in zip(s.tolist(), e.tolist())])
    return pa.Array.from_buffers(pa.binary(), len(kept), [None, pa.py_buffer(offsets.astype(np.int32)),
                                                         pa.py_buffer(data)])
