# TCP reassembly of the messages the application fields are read from (issue 18's
# reassemble=True): a TLS ClientHello or ServerHello, or an HTTP/1.x request's header
# block, cut by the sender into several TCP segments. Sans-I/O: the record and
# DataFrame paths feed it the TCP segments of a capture in frame order and apply what
# it hands back; it keeps no packets, only the bytes of the messages it is joining.
#
# Strategy. Pending messages are keyed by the direction of a connection (VLAN, source
# host and port, destination host and port), at most one per direction.
#   - A segment opens a message when its payload starts one that it does not hold
#     whole: a TLS handshake record (after any whole ChangeCipherSpec or alert records)
#     whose first handshake message is a ClientHello or ServerHello longer than the
#     segment, or an HTTP request line (a known method and a space) whose header block
#     has no blank line yet. Only where the single-packet decoders would read that
#     segment as TLS or HTTP (purepcap._appfields.tcp_reader: tshark's port table).
#   - Later segments of that direction are followed by sequence number: the next
#     expected byte is appended (the new part of one that overlaps what we have); a
#     segment that holds only bytes we have (a retransmission) is ignored; a segment
#     that leaves a gap (a lost or reordered segment) abandons the message -- there
#     is no out-of-order repair -- and may open a new one itself.
#   - TLS is parsed as it arrives (each byte once): record headers are read and the
#     handshake bytes of consecutive handshake records are joined, so a hello spread
#     over several records (or cut in the middle of one) is put back together; once the
#     hello is whole it is decoded as one record by purepcap._tls. HTTP is complete at
#     the header block's blank line (CRLF CRLF or LF LF); the header block is decoded by
#     purepcap._http. A hello that a single segment holds whole, but over several
#     records or in a record the segment cuts, is decoded at once (nothing to wait for).
#   - The joined message's fields are handed back for the message's FIRST segment,
#     with the other segments it took (their own single-packet fields no longer apply).
#     A message that is abandoned leaves every segment its single-packet fields.
#   - A message is reported once: each direction remembers the sequence range of its
#     last message (joined, abandoned, or one that a single candidate segment held), and
#     a candidate segment that lies inside it is a retransmission, whose fields are
#     cleared (as tshark, reassembling, reports a retransmitted request once).
# What it is fed decides what it does, and only candidate segments
# (purepcap._appfields.is_candidate) and the segments of a direction with a pending
# message change anything: so the DataFrame path feeds only those, records() every TCP
# segment, and the two agree.
# Bounds (each evicts, oldest message first, and an evicted message is abandoned):
# MAX_MESSAGE bytes per message, MAX_PENDING_BYTES over all messages, MAX_PENDING
# messages, and MAX_SPAN frames from a message's first segment to its last (which also
# bounds the rows records() holds back); MAX_DIRECTIONS remembered last messages (the
# least recently started forgotten first). The end of the capture abandons what is left.
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ._appfields import NO_APP, is_candidate, tcp_reader
from ._dns import DNS_FIELDS
from ._http import HTTP_FIELDS, http_fields, starts_request
from ._tls import TLS_FIELDS, tls_fields

__all__ = ["Reassembler", "MAX_MESSAGE", "MAX_PENDING_BYTES", "MAX_PENDING", "MAX_SPAN", "MAX_DIRECTIONS"]

# a ClientHello with post-quantum key shares is 1.5-2 KB; 64 KiB leaves room for any real
# hello (the TLS record and the decoder take a hello of at most 65,535 bytes)
MAX_MESSAGE = 1 << 16
MAX_PENDING_BYTES = 1 << 22  # 4 MiB over all pending messages
MAX_PENDING = 1024  # pending messages
MAX_SPAN = 1 << 14  # frames from a message's first segment to its last
MAX_DIRECTIONS = 1 << 16  # directions whose last message is remembered (for retransmissions)

_MOD = 0xFFFFFFFF
_HALF = 1 << 31
_NO_DNS_HTTP = (None,) * (len(DNS_FIELDS) + len(HTTP_FIELDS))
_NO_DNS = (None,) * len(DNS_FIELDS)
_NO_TLS = (None,) * len(TLS_FIELDS)
_CLIENT_HELLO, _SERVER_HELLO = 1, 2
_TLS_FIRST = (0x14, 0x15, 0x16)  # ChangeCipherSpec, alert, handshake
_MAX_HELLO = 0xFFFF  # what one TLS record's length can say


class _Message:
    """A message being joined: who it is reported on, what it took, and its bytes."""

    __slots__ = ("first", "tag", "tags", "seq", "next_seq", "http", "data", "size", "total",
                 "pos", "rend", "in_hs", "hs", "need", "records")

    def __init__(self, first: int, tag: Any, seq: int, http: bool) -> None:
        self.first, self.tag = first, tag
        self.tags: list[Any] = []
        self.seq = self.next_seq = seq
        self.http = http
        self.data = bytearray()  # HTTP: the whole block so far; TLS: bytes not yet parsed
        self.size = 0  # bytes held (data + hs), counted against MAX_PENDING_BYTES
        self.total = 0  # bytes taken from the stream, counted against MAX_MESSAGE
        # the TLS parse: where the next unparsed byte is in data, the end of the current
        # handshake record there (-1: at a record header), the handshake bytes so far,
        # the hello's whole length once known, and how many records it took
        self.pos = 0
        self.rend = -1
        self.in_hs = False
        self.hs = bytearray()
        self.need = -1
        self.records = 0


def _tls_step(m: _Message) -> bytes | bool | None:
    """Parse what m.data holds: the hello's bytes once whole, None for "more to come",
    False where the stream is not (or no longer) a hello we read."""
    data = m.data
    n = len(data)
    while True:
        if m.rend < 0:  # at a record header
            pos = m.pos
            if pos + 5 > n:
                break
            ctype = data[pos]
            if data[pos + 1] != 3 or data[pos + 2] > 4:
                return False
            rend = pos + 5 + (data[pos + 3] << 8 | data[pos + 4])
            if not m.in_hs:
                if ctype == 22:
                    m.in_hs = True
                elif ctype == 20 or ctype == 21:  # ChangeCipherSpec or alert before the hello
                    if rend > n:
                        break
                    m.pos = rend
                    continue
                else:
                    return False
            elif ctype != 22:
                return False  # the hello's records end before the hello does
            m.rend, m.pos = rend, pos + 5
            m.records += 1
        stop = m.rend if m.rend < n else n
        if stop > m.pos:
            m.hs += data[m.pos:stop]
            m.pos = stop
        hs = m.hs
        if m.need < 0 and len(hs) >= 4:
            if hs[0] != _CLIENT_HELLO and hs[0] != _SERVER_HELLO:
                return False
            m.need = 4 + (hs[1] << 16 | hs[2] << 8 | hs[3])
            if m.need > _MAX_HELLO:
                return False
        if 0 <= m.need <= len(hs):
            return bytes(hs[:m.need])
        if m.pos < m.rend:
            break  # the record goes on in a later segment
        m.rend = -1
    # keep only the bytes not parsed yet (part of a record header, or a cut alert record)
    if m.pos:
        del data[:m.pos]
        if m.rend >= 0:
            m.rend -= m.pos
        m.pos = 0
    return None


def _tls_fields(hello: bytes) -> tuple | None:
    record = b"\x16\x03\x01" + len(hello).to_bytes(2, "big") + hello
    t = tls_fields(record)
    return None if t is None else _NO_DNS_HTTP + t


def _http_done(data: bytes | bytearray, start: int) -> bool:
    """Whether the header block in ``data`` has its blank line (searched from ``start``)."""
    return data.find(b"\n\r\n", start) >= 0 or data.find(b"\n\n", start) >= 0


class Reassembler:
    """Joins the TCP segments of hellos and HTTP request headers (see the module
    comment). Feed every TCP segment with a payload, in frame order, to segment()."""

    def __init__(self, max_message: int | None = None, max_pending_bytes: int | None = None,
                 max_pending: int | None = None, max_span: int | None = None) -> None:
        # (None: the module's limit, read now, so a test can lower it for a whole read)
        self.max_message = MAX_MESSAGE if max_message is None else max_message
        self.max_pending_bytes = MAX_PENDING_BYTES if max_pending_bytes is None else max_pending_bytes
        self.max_pending = MAX_PENDING if max_pending is None else max_pending
        self.max_span = MAX_SPAN if max_span is None else max_span
        self._pending: OrderedDict[Any, _Message] = OrderedDict()  # oldest first
        # direction -> [first, end) sequence range of its last message, least recently
        # started first (entries move only when a message starts, at a fed segment)
        self._last: OrderedDict[Any, list[int]] = OrderedDict()
        self.pending_bytes = 0
        self.joined = self.abandoned = 0  # messages completed and given up (for tests)

    def __len__(self) -> int:
        return len(self._pending)

    def pending_keys(self) -> list:
        """The directions with a pending message."""
        return list(self._pending)

    def oldest(self) -> int | None:
        """The first frame of the oldest pending message, None when none is pending."""
        for m in self._pending.values():
            return m.first
        return None

    def expire(self, frame: int) -> None:
        """Abandon the messages that began more than max_span frames before ``frame``."""
        pending = self._pending
        while pending:
            key, m = next(iter(pending.items()))
            if frame - m.first <= self.max_span:
                break
            self._drop(key, m)

    def _drop(self, key: Any, m: _Message) -> None:
        del self._pending[key]
        self.pending_bytes -= m.size
        self.abandoned += 1
        self._ended(key, m)

    def _ended(self, key: Any, m: _Message) -> None:
        """Remember where a message that was pending ended (in place: no reordering)."""
        last = self._last.get(key)
        if last is not None:
            last[0], last[1] = m.seq, m.next_seq

    def _started(self, key: Any, seq: int, end: int) -> None:
        last = self._last
        if key in last:
            last.move_to_end(key)
        elif len(last) >= MAX_DIRECTIONS:
            last.popitem(last=False)
        last[key] = [seq, end]

    def _resize(self, m: _Message) -> None:
        size = len(m.data) + len(m.hs)
        self.pending_bytes += size - m.size
        m.size = size

    def segment(self, frame: int, tag: Any, key: Any, sport: int, dport: int, seq: int, syn: bool,
                payload: bytes) -> tuple[Any, tuple, list] | None:
        """Take one TCP segment (``key``: its direction; ``tag``: what the caller wants
        back for its frame). Returns (first segment's tag, the APP_FIELDS tuple of the
        joined message, the tags of the other segments it took) when a message is
        complete; (tag, all None, []) for a retransmission, whose fields are cleared;
        else None (the segment keeps its own fields)."""
        if not payload:
            return None
        pending = self._pending
        if pending:
            self.expire(frame)
        if syn:
            seq = (seq + 1) & _MOD  # (data on a SYN starts after it)
        m = pending.get(key)
        if m is not None:
            ahead = (seq - m.next_seq) & _MOD
            if ahead >= _HALF:
                ahead -= 1 << 32
            if ahead + len(payload) <= 0:
                return tag, NO_APP, []  # only bytes we have: a retransmission
            if ahead > 0:
                self._drop(key, m)  # a gap: a lost or reordered segment
            else:
                return self._append(key, m, tag, payload[-ahead:] if ahead else payload)
        if not is_candidate(6, sport, dport, payload):
            return None
        end = (seq + len(payload)) & _MOD
        last = self._last.get(key)
        if last is not None and (seq - last[0]) & _MOD < _HALF and (last[1] - end) & _MOD < _HALF:
            return tag, NO_APP, []  # inside the last message: a retransmission of it
        self._started(key, seq, end)
        return self._open(frame, tag, key, sport, dport, seq, payload)

    def _append(self, key: Any, m: _Message, tag: Any, new: bytes) -> tuple[Any, tuple, list] | None:
        m.total += len(new)
        if m.total > self.max_message:
            self._drop(key, m)
            return None
        m.next_seq = (m.next_seq + len(new)) & _MOD
        m.tags.append(tag)
        data = m.data
        start = max(len(data) - 2, 0)  # an HTTP header's end may straddle the segments
        data += new
        hello = None if m.http else _tls_step(m)  # the hello's bytes, False, or None: more to come
        finished = _http_done(data, start) if m.http else hello is not None
        if not finished:
            self._resize(m)
            self._bound()
            return None
        del self._pending[key]
        self.pending_bytes -= m.size
        self._ended(key, m)
        if m.http:
            fields = http_fields(bytes(data))
            got = None if fields is None else _NO_DNS + fields + _NO_TLS
        else:
            got = None if hello is False else _tls_fields(hello)
        if got is None:
            self.abandoned += 1
            return None
        self.joined += 1
        return m.tag, got, m.tags

    def _open(self, frame: int, tag: Any, key: Any, sport: int, dport: int, seq: int,
              payload: bytes) -> tuple[Any, tuple, list] | None:
        first = payload[0]
        if first in _TLS_FIRST:
            if tcp_reader(sport, dport, payload) != "tls":
                return None
            m = _Message(frame, tag, seq, False)
            m.data += payload
            hello = _tls_step(m)
            if hello is False:
                return None
            if hello is not None:
                # whole here: single-packet decoding reads it, unless it lies over several
                # records or in a record this segment cuts
                if m.records == 1 and m.rend <= len(payload):
                    return None
                got = _tls_fields(hello)
                return None if got is None else (tag, got, [])
        elif 65 <= first <= 90 and starts_request(payload):
            if tcp_reader(sport, dport, payload) != "http":
                return None
            line_end = payload.find(b"\n")
            if line_end >= 0 and (b" HTTP/" not in payload[:line_end] or _http_done(payload, 0)):
                return None  # whole already (or HTTP/0.9: a request line without headers)
            m = _Message(frame, tag, seq, True)
            m.data += payload
        else:
            return None
        m.total = len(payload)
        if m.total > self.max_message:
            return None
        m.next_seq = (seq + len(payload)) & _MOD
        pending = self._pending
        while len(pending) >= self.max_pending:
            k, old = next(iter(pending.items()))
            self._drop(k, old)
        pending[key] = m
        self._resize(m)
        self._bound()
        return None

    def _bound(self) -> None:
        """Abandon the oldest messages while the pending bytes pass their cap."""
        pending = self._pending
        while self.pending_bytes > self.max_pending_bytes and pending:
            k, old = next(iter(pending.items()))
            self._drop(k, old)
