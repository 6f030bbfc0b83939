# purepcap.flows (module _flows): one dict per conversation (flow), the table analysts build first.
#
# Strategy: one flow engine (_run) consumes compact per-packet tuples in capture order
# and keeps a table of the *active* flows only, keyed by protocol, outermost VLAN and
# the two endpoints in canonical order. A flow is handed out as soon as it ends, so
# memory follows the number of active flows, not the capture's length:
#   - idle:   no packet for idle_timeout seconds (checked when the flow's next packet
#             comes, and by a sweep from the least recently active end of an ordered
#             dict every few thousand packets, so that silent flows leave the table);
#   - active: the flow has lasted active_timeout seconds (same two checks; the sweep
#             runs when capture time passes the oldest flow's deadline);
#   - fin/rst: a TCP close (FIN both ways, or a RST). The flow lingers for Zeek's
#             tcp_close_delay (5 s, or the idle timeout if shorter; forever when
#             idle_timeout is None) so that the last ACK or a retransmitted FIN still
#             joins it, as it joins tshark's tcp.stream;
#   - a SYN without ACK whose sequence number differs from the one its direction
#             started with starts a new flow (tshark's tcp.stream rule, port reuse);
#   - eof:    the end of the capture (or a damaged capture: the flows of the good
#             packets come out, then the PcapError), unless the capture's last time is
#             past the flow's idle or active deadline: then that timeout ended it.
# A flow past both deadlines ended by the one that came first (idle on a tie), whether
# a packet, a sweep or the end of the capture finds it: so a flow's end_reason never
# depends on when the sweeps ran, and flows_to_pandas can compute it column-wise.
# The packets come from purepcap.open's Packets through _fast_packets (one unpack for
# Ethernet/IPv4 TCP, UDP and ICMP; headers.decode for the rest, so the fields equal
# records()' -- a corpus test checks it), or through records() itself when fields= asks
# for more. Stdlib only. purepcap._flowframe builds the DataFrame from numpy columns and
# feeds this same engine only what needs its sequential rules.
"""``purepcap.flows``: conversations (flows) of a capture, one dict per flow.

Keys of every flow dict, in this order (None where a value does not apply):

================  ===========================================================================
first_frame       frame number of the flow's first packet (as ``Packet.frame``)
last_frame        frame number of its last packet
start, end        int ns since the epoch, UTC, of the first and the last packet
src_host          the host that sent the flow's first packet, as in ``records()``
src_port          its port, None where ``records()`` has none
dst_host          the other host
dst_port          its port
protocol          as in ``records()`` (``tcp``, ``udp``, ``icmp``, ...)
vlan              outermost 802.1Q id, or None
src_packets       packets src -> dst
dst_packets       packets dst -> src
src_bytes         original frame lengths src -> dst (as tshark's conversations count them)
dst_bytes         dst -> src
src_ip_bytes      IP total lengths src -> dst
dst_ip_bytes      dst -> src
src_tcp_flags     OR of the TCP flag bits src -> dst (0 without packets; None for other protocols)
dst_tcp_flags     dst -> src
conn_state        Zeek's conn.log state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH
                  (as Zeek, a flow whose first packet is a SYN-ACK has dst as its originator)
end_reason        idle, active, fin, rst or eof (a flow whose ports a new connection took
                  over before any close was seen: idle; a flow past both its idle and
                  active deadlines, also when the capture ends there: the earlier one)
community_id      Community ID v1, seed 0 (``1:`` + base64)
================  ===========================================================================

With ``stats=True`` nfstream's statistical features follow, with nfstream's names and
meanings (:data:`STATS_KEYS`): packet sizes (frame lengths) and inter-arrival times
(whole milliseconds, from times truncated to the millisecond as nfstream takes them)
min/mean/stddev/max both ways (``bidirectional_``) and per direction (``src2dst_``,
``dst2src_``), and per-flag TCP packet counts. Standard deviations are sample ones
(n - 1 for sizes, n - 2 for inter-arrival times); values without enough packets are 0.

``fields`` names extra ``records()`` fields (``ttl``, the application fields ``ja3``,
``ja4``, ``ja3s``, ``http_user_agent``, ``dns_qname``, ...) and ``server_name`` (TLS SNI,
else HTTP Host); each flow carries the first value any of its packets has for each (an
empty string or tuple is no value).
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ._community_id import community_id
from ._schema import RECORD_EXTRA
from .errors import PcapError, errors_policy

__all__ = ["flows", "FLOW_KEYS", "STATS_KEYS", "CONN_STATES", "END_REASONS", "CLOSE_DELAY"]

FLOW_KEYS: tuple[str, ...] = (
    "first_frame", "last_frame", "start", "end", "src_host", "src_port", "dst_host", "dst_port",
    "protocol", "vlan", "src_packets", "dst_packets", "src_bytes", "dst_bytes", "src_ip_bytes",
    "dst_ip_bytes", "src_tcp_flags", "dst_tcp_flags", "conn_state", "end_reason", "community_id")

CONN_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")
END_REASONS = ("idle", "active", "fin", "rst", "eof")

# Zeek's tcp_close_delay: how long a closed TCP flow waits for stragglers (last ACK,
# retransmitted FIN) before it is handed out.
CLOSE_DELAY = 5.0

_DIRS = ("bidirectional", "src2dst", "dst2src")
_FLAG_NAMES = ("syn", "cwr", "ece", "urg", "ack", "psh", "rst", "fin")  # nfstream's order
_FLAG_BITS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20,
              "ece": 0x40, "cwr": 0x80}
STATS_KEYS: tuple[str, ...] = tuple(
    [f"{d}_{s}_ps" for d in _DIRS for s in ("min", "mean", "stddev", "max")]
    + [f"{d}_{s}_piat_ms" for d in _DIRS for s in ("min", "mean", "stddev", "max")]
    + [f"{d}_{f}_packets" for d in _DIRS for f in _FLAG_NAMES])

# the records() fields the engine reads
NEEDED_FIELDS = ("tcp_flags", "tcp_seq", "vlan", "ip_length", "fragment", "ip_id", "ip_proto",
                 "icmp_type", "icmp_code")

_U16 = struct.Struct("!H").unpack_from
_NS = 1_000_000_000
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_TCP, _ICMP, _UDP, _ICMPV6 = 6, 1, 17, 58
_SWEEP_EVERY = 4096  # packets between sweeps of the flow table
_NEVER = 1 << 126  # a time span longer than any capture's
_MAX_FRAGMENTS = 1 << 16  # first fragments remembered (oldest forgotten first)

# Zeek's TCP endpoint states
_INACTIVE, _SYN_SENT, _SYN_ACK_SENT, _PARTIAL, _ESTABLISHED, _CLOSED, _RESET = range(7)


def _seconds(name: str, value: float | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, or None, not {value!r}")
    return int(value * _NS)


class _Flow:
    __slots__ = ("key", "first_frame", "last_frame", "start", "end", "src", "sport", "dst", "dport",
                 "proto", "vlan", "counts", "flags", "states", "base_seq",
                 "closed", "flipped", "syn_then_clean", "established", "icmp", "stats", "app")

    def __init__(self, key: tuple, frame: int, t: int, src: str, sport: int | None, dst: str,
                 dport: int | None, proto: int, vlan: int | None) -> None:
        self.key = key
        self.first_frame = self.last_frame = frame
        self.start = self.end = t
        self.src, self.sport, self.dst, self.dport = src, sport, dst, dport
        self.proto, self.vlan = proto, vlan
        self.counts = [0, 0, 0, 0, 0, 0]  # packets, bytes, IP bytes: src side, dst side
        self.flags = [0, 0]  # OR of the TCP flags each way
        self.states = [_INACTIVE, _INACTIVE]  # TCP endpoint states, src side and dst side
        self.base_seq = [None, None]  # sequence number each direction started with
        self.closed: str | None = None  # "fin" or "rst" once the TCP connection closed
        self.flipped = False  # Zeek's originator is dst (the first packet was a SYN-ACK)
        self.syn_then_clean = None  # Zeek's history ^S[^HAFGIQ]*R for the originator
        self.established = False  # the handshake completed at some point
        self.icmp = None  # (type, code) of the first ICMP packet
        self.stats: list | None = None
        self.app: dict | None = None


# -- Zeek's conn_state ----------------------------------------------------------------------
def _tcp_update(f: _Flow, d: int, flags: int) -> None:
    """Zeek's TCP endpoint state machine, for a packet with ``flags`` from side ``d``."""
    states = f.states
    me = states[d]
    if f.counts[0] + f.counts[1] == 1 and flags & (_SYN | _ACK) == _SYN | _ACK:
        f.flipped = True  # Zeek makes the SYN-ACK sender the responder
    orig = 1 if f.flipped else 0
    if d == orig:  # Zeek's history ^S[^HAFGIQ]*R: a SYN, then a RST before any ACK or FIN
        if f.syn_then_clean is None:
            f.syn_then_clean = flags & (_SYN | _ACK | _FIN | _RST) == _SYN
        elif f.syn_then_clean is True:
            if flags & _RST:
                f.syn_then_clean = 2  # decided: the RST came first
            elif flags & (_ACK | _FIN):
                f.syn_then_clean = False
    if flags & _RST:
        states[d] = _RESET
    elif flags & _FIN:
        if me != _RESET:
            states[d] = _CLOSED
    elif flags & _SYN:
        if me == _INACTIVE or me == _PARTIAL:
            states[d] = _SYN_ACK_SENT if flags & _ACK else _SYN_SENT
    elif me == _INACTIVE:
        states[d] = _PARTIAL
    elif (me == _SYN_SENT or me == _SYN_ACK_SENT) and flags & _ACK:
        peer = states[1 - d]
        if peer == _SYN_SENT or peer == _SYN_ACK_SENT or peer == _ESTABLISHED:
            states[d] = _ESTABLISHED  # the handshake completed
            f.established = True
            if peer != _ESTABLISHED:
                states[1 - d] = _ESTABLISHED


def conn_state(f: _Flow) -> str:
    """Zeek's conn_state (base/protocols/conn/main.zeek) from the endpoint states."""
    if f.proto == _UDP:
        return "SF" if f.counts[1] else "S0"
    if f.proto != _TCP:
        return "OTH"
    os, rs = (f.states[1], f.states[0]) if f.flipped else (f.states[0], f.states[1])
    o_inactive = os == _INACTIVE or os == _PARTIAL
    r_inactive = rs == _INACTIVE or rs == _PARTIAL
    if rs == _RESET:
        # (Zeek's REJ for two RSTs asks that neither side sent data; without payload
        # sizes here, a connection that never completed its handshake stands for that)
        if os == _SYN_SENT or os == _SYN_ACK_SENT or (os == _RESET and not f.established):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os == _RESET:
        if r_inactive:
            return "RSTOS0" if f.syn_then_clean else "OTH"
        return "RSTO"
    if rs == _CLOSED and os == _CLOSED:
        return "SF"
    if os == _CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == _CLOSED:
        return "SHR" if o_inactive else "S3"
    if os == _SYN_SENT and rs == _INACTIVE:
        return "S0"
    if os == _ESTABLISHED and rs == _ESTABLISHED:
        return "S1"
    return "OTH"


# -- statistics (nfstream's) ----------------------------------------------------------------
# per group (both ways, src2dst, dst2src): packets, min/max/mean/M2 of sizes, last time
# (ms), a spare slot, min/max/mean/M2 of inter-arrival ms, then the 8 flag counts
_G = 19


def _stats_update(acc: list, d: int, size: int, t: int, flags: int | None) -> None:
    ms = t // 1_000_000
    for base in (0, _G * (1 + d)):
        n = acc[base] + 1
        acc[base] = n
        if n == 1:
            acc[base + 1] = acc[base + 2] = acc[base + 3] = size
            acc[base + 5] = ms
        else:
            if size < acc[base + 1]:
                acc[base + 1] = size
            if size > acc[base + 2]:
                acc[base + 2] = size
            mean = acc[base + 3]
            acc[base + 3] = mean + (size - mean) / n
            acc[base + 4] += (size - mean) * (size - acc[base + 3])
            piat = ms - acc[base + 5]
            acc[base + 5] = ms
            k = n - 1
            if k == 1:
                acc[base + 7] = acc[base + 8] = acc[base + 9] = piat
            else:
                if piat < acc[base + 7]:
                    acc[base + 7] = piat
                if piat > acc[base + 8]:
                    acc[base + 8] = piat
                mean = acc[base + 9]
                acc[base + 9] = mean + (piat - mean) / k
                acc[base + 10] += (piat - mean) * (piat - acc[base + 9])
        if flags:
            for i, name in enumerate(_FLAG_NAMES):
                if flags & _FLAG_BITS[name]:
                    acc[base + 11 + i] += 1


def _stats_out(acc: list | None, row: dict) -> None:
    if acc is None:
        acc = [0] * (3 * _G)
    ps: dict[str, Any] = {}
    piat: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    for g, name in enumerate(_DIRS):
        b = g * _G
        n = acc[b]
        ps[f"{name}_min_ps"] = acc[b + 1]
        ps[f"{name}_mean_ps"] = float(acc[b + 3])
        ps[f"{name}_stddev_ps"] = (acc[b + 4] / (n - 1)) ** 0.5 if n > 1 else 0.0
        ps[f"{name}_max_ps"] = acc[b + 2]
        piat[f"{name}_min_piat_ms"] = acc[b + 7]
        piat[f"{name}_mean_piat_ms"] = float(acc[b + 9])
        piat[f"{name}_stddev_piat_ms"] = (acc[b + 10] / (n - 2)) ** 0.5 if n > 2 else 0.0
        piat[f"{name}_max_piat_ms"] = acc[b + 8]
        for i, f in enumerate(_FLAG_NAMES):
            flags[f"{name}_{f}_packets"] = acc[b + 11 + i]
    row.update(ps)
    row.update(piat)
    row.update(flags)


# -- the flow dict ----------------------------------------------------------------------------
_PROTO_NAMES: dict[int, str] = {}


def _proto_name(num: int) -> str:
    name = _PROTO_NAMES.get(num)
    if name is None:
        from ._protocols import NAMES

        name = _PROTO_NAMES[num] = NAMES[num]
    return name


def _row(f: _Flow, reason: str, stats: bool, app: tuple[str, ...]) -> dict[str, Any]:
    icmp = f.icmp or (None, None)
    c = f.counts
    row = {
        "first_frame": f.first_frame, "last_frame": f.last_frame, "start": f.start, "end": f.end,
        "src_host": f.src, "src_port": f.sport, "dst_host": f.dst, "dst_port": f.dport,
        "protocol": _proto_name(f.proto), "vlan": f.vlan,
        "src_packets": c[0], "dst_packets": c[1], "src_bytes": c[2], "dst_bytes": c[3],
        "src_ip_bytes": c[4], "dst_ip_bytes": c[5],
        "src_tcp_flags": f.flags[0] if f.proto == _TCP else None,
        "dst_tcp_flags": f.flags[1] if f.proto == _TCP else None,
        "conn_state": conn_state(f), "end_reason": f.closed or reason,
        "community_id": community_id(f.proto, f.src, f.dst, f.sport, f.dport, icmp[0], icmp[1]),
    }
    if stats:
        _stats_out(f.stats, row)
    for name in app:
        row[name] = f.app.get(name) if f.app else None
    return row


# -- the engine -------------------------------------------------------------------------------
# A packet, as the engine takes it: (frame, time, length, src, sport, dst, dport, ip_proto,
# vlan, ip_length, tcp_flags, tcp_seq, fragment, ip_id, icmp_type, icmp_code, app) where
# fragment is None or (more_fragments, offset) and app None or a dict of extra fields.
Packet = tuple


def _run(packets: Iterable[Packet], idle: int | None, active: int | None, stats: bool,
         app: tuple[str, ...], emit: Callable[[_Flow, str], Any] | None = None) -> Iterator[Any]:
    """The flows of ``packets`` as each ends: ``emit(flow, reason)`` of each, by default its dict."""
    row = emit if emit is not None else (lambda f, reason: _row(f, reason, stats, app))
    table: OrderedDict[tuple, _Flow] = OrderedDict()  # least recently active first
    closing: OrderedDict[tuple, _Flow] = OrderedDict()  # closed flows, least recently active first
    frags: dict[tuple, tuple] = {}  # (src, dst, proto, ip id) of a first fragment -> flow key
    linger = None if idle is None else min(idle, int(CLOSE_DELAY * _NS))
    # the checks of the hot loop, with "never" as a time no capture reaches
    idle_i = _NEVER if idle is None else idle
    active_i = _NEVER if active is None else active
    linger_i = _NEVER if linger is None else linger
    now = -_NEVER
    next_active = None  # capture time at which the oldest flow reaches active_timeout
    countdown = _SWEEP_EVERY
    get = table.get
    touch = table.move_to_end
    try:
        for (frame, t, length, src, sport, dst, dport, proto, vlan, iplen, flags, seq, frag, ipid,
             itype, icode, extra) in packets:
            if t is None:
                t = now if now > -_NEVER else 0
            elif t > now:
                now = t
            if frag is None:
                if src < dst or (src == dst and (sport or 0) <= (dport or 0)):
                    key = (proto, vlan, src, sport, dst, dport)
                else:
                    key = (proto, vlan, dst, dport, src, sport)
            elif frag[1]:  # a later fragment: the flow of its first one
                key = frags.get((src, dst, proto, ipid))
                if key is None:
                    key = (proto, vlan, src, None, dst, None) if src <= dst else (proto, vlan, dst, None, src, None)
                    sport = dport = None
            else:
                if src < dst or (src == dst and (sport or 0) <= (dport or 0)):
                    key = (proto, vlan, src, sport, dst, dport)
                else:
                    key = (proto, vlan, dst, dport, src, sport)
                if frag[0]:  # a first fragment: remember where its later fragments belong
                    if len(frags) >= _MAX_FRAGMENTS:
                        del frags[next(iter(frags))]
                    frags[(src, dst, proto, ipid)] = key
            f = get(key)
            if f is not None:
                # timeouts are read on the capture's clock, the latest time seen (now), as
                # the sweeps read them: where time goes back, a flow a sweep could have
                # ended is ended here too, so the flows do not depend on when sweeps ran
                if (now - f.end >= idle_i or now - f.start >= active_i or (f.closed and now - f.end >= linger_i)
                        or (flags is not None and flags & 0x12 == _SYN)):
                    reason = _ends(f, now, idle_i, active_i, linger_i, src, sport, flags, seq)
                    if reason is not None:
                        del table[key]
                        closing.pop(key, None)
                        yield row(f, reason)
                        f = None
                if f is not None:
                    touch(key)
            if f is None:
                f = _Flow(key, frame, t, src, sport, dst, dport, proto, vlan)
                table[key] = f
                if next_active is None and active is not None:
                    next_active = t + active
                d = 0
            elif src == f.src and (sport == f.sport or (frag is not None and frag[1])):
                d = 0  # (a later fragment carries no ports)
            else:
                d = 1
            c = f.counts
            c[d] += 1
            c[2 + d] += length
            if iplen is not None:
                c[4 + d] += iplen
            f.last_frame = frame
            f.end = t
            if flags is not None:
                fl = f.flags
                fl[d] |= flags
                if c[d] == 1 and seq is not None:  # the sequence number this direction started with
                    f.base_seq[d] = seq if flags & _SYN else (seq - 1) & 0xFFFFFFFF
                if flags & 0x07 or f.states[d] < _PARTIAL:
                    _tcp_update(f, d, flags)
                if f.closed is None:
                    if flags & 0x05:
                        if flags & _RST:
                            f.closed = "rst"
                        elif fl[0] & fl[1] & _FIN:
                            f.closed = "fin"
                        if f.closed is not None:
                            closing[key] = f
                else:
                    closing.move_to_end(key)
            elif f.closed is not None:
                closing.move_to_end(key)
            if itype is not None and f.icmp is None:
                f.icmp = (itype, icode)
            if stats:
                if f.stats is None:
                    f.stats = [0] * (3 * _G)
                _stats_update(f.stats, d, length, t, flags)
            if extra:
                a = f.app
                if a is None:
                    a = f.app = {}
                for name, value in extra.items():
                    if value not in NO_VALUE and name not in a:
                        a[name] = value
            countdown -= 1
            if countdown == 0:
                countdown = _SWEEP_EVERY
                yield from _sweep(table, closing, now, idle, linger, active_i, row)
                if next_active is not None and now >= next_active:
                    next_active = yield from _sweep_active(table, closing, now, active, row)
    except PcapError:
        yield from _flush(table, row, now, idle_i, active_i)
        raise
    yield from _flush(table, row, now, idle_i, active_i)


def _ends(f: _Flow, now: int, idle: int, active: int, linger: int, src: str, sport: int | None,
          flags: int | None, seq: int | None) -> str | None:
    """Why a packet that comes when the capture's clock reads ``now`` does not join flow
    ``f`` but starts a new one, or None."""
    if now - f.end >= idle or now - f.start >= active:
        return _expired(f, idle, active)
    if f.closed and now - f.end >= linger:
        return "idle"
    if flags is not None and flags & (_SYN | _ACK) == _SYN and seq is not None:
        base = f.base_seq[0 if (src == f.src and sport == f.sport) else 1]
        if base is not None and seq != base:
            return "idle"  # a new connection on the same ports (tshark's rule)
    return None


def timeout_reason(start: int, end: int, idle: int, active: int) -> str:
    """The timeout that ended a flow found past its idle or active deadline (``_NEVER``
    for a timeout that is None): the one whose deadline came first, idle on a tie."""
    return "idle" if end + idle <= start + active else "active"


def _expired(f: _Flow, idle: int, active: int) -> str:
    return timeout_reason(f.start, f.end, idle, active)


def _sweep(table: OrderedDict, closing: OrderedDict, now: int, idle: int | None, linger: int | None,
           active: int, row: Callable[[_Flow, str], Any]) -> Iterator[Any]:
    """Hand out the flows that went idle (or closed and quiet), least recently active first."""
    if linger is not None:
        while closing:
            key, f = next(iter(closing.items()))
            if now - f.end < linger:
                break
            del closing[key]
            if table.get(key) is f:
                del table[key]
                yield row(f, "idle")
    if idle is not None:
        while table:
            key, f = next(iter(table.items()))
            if now - f.end < idle:
                break
            del table[key]
            closing.pop(key, None)
            yield row(f, _expired(f, idle, active))


def _sweep_active(table: OrderedDict, closing: OrderedDict, now: int, active: int,
                  row: Callable[[_Flow, str], Any]) -> Iterator[Any]:
    """Hand out the flows that reached the active timeout; returns the next deadline."""
    done = [key for key, f in table.items() if now - f.start >= active]
    for key in done:
        f = table.pop(key)
        closing.pop(key, None)
        yield row(f, "active")
    return min((f.start for f in table.values()), default=now) + active if table else None


def _flush(table: OrderedDict, row: Callable[[_Flow, str], Any], now: int, idle: int,
           active: int) -> Iterator[Any]:
    """The flows still in the table at the end, by first frame: ended by a timeout if
    the capture's last time ``now`` is past a deadline, else by the end of the capture."""
    rest = sorted(table.values(), key=lambda f: f.first_frame)
    table.clear()
    for f in rest:
        yield row(f, _expired(f, idle, active) if now - f.end >= idle or now - f.start >= active else "eof")


# -- packets in -------------------------------------------------------------------------------
# Ethernet (untagged or one 802.1Q tag) + IPv4 without options, not a fragment, + the
# first 14 transport bytes: ethertype, version/IHL, total length, id, flags/fragment
# offset, protocol, source, destination, ports (ICMP: type and code), TCP sequence
# number, data offset byte, flags byte. Anything else goes through headers.decode.
_FAST4 = struct.Struct("!12xHBxHHHxBxxIIHHIxxxxBB")
_FAST4_LEN = _FAST4.size  # 48


def _fast_packets(packets: Iterable, wanted: frozenset[int] | None, owned: Any) -> Iterator[Packet]:
    """The engine's tuples straight from Packets: the common case unpacked in one go,
    the rest as headers.decode gives it (what records() gives, field for field)."""
    from . import linktypes
    from .headers import _ip4_cache as names4
    from .headers import decode

    unpack = _FAST4.unpack_from
    eth = linktypes.EN10MB
    need = _FAST4_LEN
    try:
        for p in packets:
            data = p.data
            if p.linktype == eth and len(data) >= need:
                etype, vihl, total, ipid, frag, proto, src, dst, sport, dport, seq, doff, fl = unpack(data, 0)
                o = 0
                vlan = None
                if etype == 0x8100 and len(data) >= need + 4:
                    vlan = _U16(data, 14)[0] & 0x0FFF
                    etype, vihl, total, ipid, frag, proto, src, dst, sport, dport, seq, doff, fl = unpack(data, 4)
                    o = 4
                if etype == 0x0800 and vihl == 0x45 and not frag & 0x3FFF:
                    if wanted is not None and proto not in wanted:
                        continue
                    if proto == 6:
                        if total >= 40 and len(data) >= o + 54:
                            yield (p.frame, p.time, p.length, names4[src], sport, names4[dst], dport, 6, vlan,
                                   total, fl | (doff & 1) << 8, seq, None, ipid, None, None, None)
                            continue
                    elif proto == 17:
                        if total >= 24:
                            yield (p.frame, p.time, p.length, names4[src], sport, names4[dst], dport, 17, vlan,
                                   total, None, None, None, ipid, None, None, None)
                            continue
                    elif proto == 1:
                        if total >= 22:
                            yield (p.frame, p.time, p.length, names4[src], None, names4[dst], None, 1, vlan,
                                   total, None, None, None, ipid, sport >> 8, sport & 0xFF, None)
                            continue
            r = decode(p.linktype, data, p.length)
            if r is None or (wanted is not None and r["ip_proto"] not in wanted):
                continue
            yield (p.frame, p.time, p.length, r["src_host"], r["src_port"], r["dst_host"], r["dst_port"],
                   r["ip_proto"], r["vlan"], r["ip_length"], r["tcp_flags"], r["tcp_seq"], r["fragment"],
                   r["ip_id"], r["icmp_type"], r["icmp_code"], None)
    finally:
        if owned is not None:
            owned.close()


# flow fields made of records() fields: the first of these a packet has
_DERIVED = {"server_name": ("tls_sni", "http_host")}
# what a packet's field holds when it gives the flow no value: missing, or empty (a DNS
# query's dns_answers is (), the response's are what the flow should carry)
NO_VALUE = (None, "", ())


def _field(r: dict[str, Any], name: str) -> Any:
    if name in _DERIVED:
        for part in _DERIVED[name]:
            if r[part] not in NO_VALUE:
                return r[part]
        return None
    return r[name]


def _packets(rows: Iterable[dict[str, Any]], app: tuple[str, ...]) -> Iterator[Packet]:
    """The engine's tuples from records() dicts (what _fast_packets must equal)."""
    for r in rows:
        extra = {name: _field(r, name) for name in app} if app else None
        yield (r["frame"], r["time"], r["length"], r["src_host"], r["src_port"], r["dst_host"],
               r["dst_port"], r["ip_proto"], r["vlan"], r["ip_length"], r["tcp_flags"], r["tcp_seq"],
               r["fragment"], r["ip_id"], r["icmp_type"], r["icmp_code"], extra)


def flow_keys(stats: bool = False, fields: Sequence[str] = ()) -> list[str]:
    """The flow columns, in order (``duration`` is added after ``end`` by the tables)."""
    return list(FLOW_KEYS) + (list(STATS_KEYS) if stats else []) + list(fields)


def check_arguments(idle_timeout: float | None, active_timeout: float | None,
                    fields: Sequence[str] | str | None) -> tuple[int | None, int | None, tuple[str, ...]]:
    idle = _seconds("idle_timeout", idle_timeout)
    active = _seconds("active_timeout", active_timeout)
    if fields is None:
        app: tuple[str, ...] = ()
    else:
        app = (fields,) if isinstance(fields, str) else tuple(fields)
    for name in app:
        if name not in _DERIVED and name not in RECORD_EXTRA:
            raise ValueError(f"unknown field {name!r}; valid flow fields are "
                             f"{', '.join((*_DERIVED, *RECORD_EXTRA))}")
    return idle, active, app


def flows(source: Any, *, filter: str | None = None, protocol: str | Iterable[str] | None = None,
          idle_timeout: float | None = 120.0, active_timeout: float | None = 1800.0,
          stats: bool = False, fields: Sequence[str] | None = None,
          storage_options: dict | None = None, errors: str = "raise", reassemble: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one dict per flow of ``source`` as each flow ends (see the module docstring).

    ``source`` is anything :func:`purepcap.records` takes. ``filter`` (pcap-filter) and
    ``protocol`` choose the packets; ``idle_timeout`` and ``active_timeout`` are seconds
    (None: never). ``stats=True`` adds nfstream's statistical features. ``fields`` adds
    the first value of each named ``records()`` field. A damaged capture yields the
    flows of its good packets, then raises the PcapError; ``errors="warn"`` or
    ``"ignore"`` (as in ``purepcap.open``) ends them at the damage instead. ``reassemble=True`` reads the
    application fields as ``records(reassemble=True)`` does (a split ClientHello's JA3
    counts, on its first frame).
    """
    errors = errors_policy(errors)
    idle, active, app = check_arguments(idle_timeout, active_timeout, fields)
    from ._records import packets_of, protocol_numbers

    wanted = protocol_numbers(protocol)
    if app:
        # The hook for per-flow application fields (server_name, ja3, ...): any field
        # records() takes, read through records() itself, so a field it gains (issue 18's
        # decoders) reaches flows with no change here. records() checks the names.
        from ._records import records

        names = tuple(dict.fromkeys(NEEDED_FIELDS + tuple(n for a in app for n in _DERIVED.get(a, (a,)))))
        rows = records(source, protocol=protocol, filter=filter, fields=names, storage_options=storage_options,
                       errors=errors, reassemble=reassemble)
        return _run(_packets(rows, app), idle, active, bool(stats), app)
    packets, owned = packets_of(source, filter=filter, storage_options=storage_options, errors=errors)
    return _run(_fast_packets(packets, wanted, owned), idle, active, bool(stats), ())
