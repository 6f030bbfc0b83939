# purepcap.flows_to_pandas: the flow table as a DataFrame, built from numpy columns.
#
# Strategy: the packets' columns come from the same batch decoder as to_pandas
# (_batches + _columns; hosts are category codes of one shared table), kept in their
# narrow types. Every packet gets a conversation key (protocol, VLAN, the two endpoints
# in canonical order) as three int64 words; one hash-table pass over a 64-bit mix of
# them numbers the conversations in order of first appearance (a mix shared by two
# conversations is detected and the exact, slower lexsort used instead), and ufunc.at
# sums packets, bytes, IP bytes and TCP flags per conversation and direction, with no
# sort. A conversation that is one flow -- no IP fragment, no gap as long as the idle
# timeout (or, with TCP SYN/FIN/RST, as the close delay), shorter than the active
# timeout -- is taken from those sums; only the conversations that span a timeout are
# sorted (a linear radix sort) to look at their gaps. If it has TCP SYN, FIN or RST,
# purepcap.flows' engine runs over just the packets that can change its TCP state (each
# SYN/FIN/RST, the first packet each way and the next each way after those) for
# conn_state and end_reason; if a new SYN splits it there, it joins the others. Every
# other conversation is handed, packet by packet in capture order, to the engine, whose
# sequential rules decide its flows. With time never going back, the flows of a
# conversation depend only on its own packets and the capture's last time (a flow past a
# deadline when the capture ends ended by it), so this gives the rows purepcap.flows()
# gives; a capture whose time goes back goes through the engine whole, and one with NaT
# times (packets without a time, or past 2262) is read again by purepcap.flows itself
# when the source can be read twice (tests compare the two on the corpus, on every
# conformance case and on hypothesis-made captures). stats=True computes nfstream's
# statistics of the one-flow conversations from the columns too (a radix sort per
# group and segment reductions, see _flow_stats), and fields= of application fields
# (server_name, ja3, ...: each conversation's first row that has a value, from the sparse
# application columns to_pandas reads); any other field takes purepcap.flows for all.
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _flows, _schema
from .dataframe import _require_pandas, build_columns
from .errors import errors_policy

if TYPE_CHECKING:
    import pandas as pd

    from .format import Span

__all__ = ["flows_to_pandas", "flow_columns", "flow_frame", "empty_flow_frame"]

_COLUMNS = ["time", "src_host", "src_port", "dst_host", "dst_port", "frame", "length",
            "tcp_flags", "tcp_seq", "vlan", "ip_length", "fragment", "ip_id", "ip_proto", "icmp_type",
            "icmp_code"]

# The integer flow columns typed as the packet field they come from (purepcap._schema:
# UInt16 ports, VLAN and TCP flags; int64 frames), and the counts (int64). Hosts,
# protocol, conn_state and end_reason are categories.
FIELD_OF = {"first_frame": "frame", "last_frame": "frame", "src_port": "src_port", "dst_port": "dst_port",
            "vlan": "vlan", "src_tcp_flags": "tcp_flags", "dst_tcp_flags": "tcp_flags"}
_DTYPES = {k: _schema.BY_NAME[f].pandas for k, f in FIELD_OF.items()}
_DTYPES.update(dict.fromkeys(("src_packets", "dst_packets", "src_bytes", "dst_bytes", "src_ip_bytes",
                              "dst_ip_bytes"), "int64"))
# the nullable integer columns (-1 is None in flow_columns' arrays) and the category ones
NULLABLE = frozenset(k for k, v in _DTYPES.items() if v != "int64")
CATEGORIES = ("src_host", "dst_host", "protocol", "conn_state", "end_reason")
NAT = np.iinfo(np.int64).min
_NS_MAX = np.iinfo(np.int64).max
_MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


def flow_columns(source: Any, *, filter: str | None = None, protocol: str | Iterable[str] | None = None,
                 idle_timeout: float | None = 120.0, active_timeout: float | None = 1800.0,
                 stats: bool = False, fields: Sequence[str] | None = None,
                 storage_options: dict | None = None, span: Span | None = None,
                 progress: bool = False, errors: str = "warn", reassemble: bool = False) -> dict[str, np.ndarray]:
    """The flows of ``source`` (as :func:`purepcap.flows` gives them) as the columns every
    flow table is made of (flows_to_pandas, flows_to_arrow, flows_to_polars), sorted by
    ``first_frame``: numpy arrays, int64 with -1 for None in the nullable integer columns
    (:data:`NULLABLE`), NaT's int64 for a missing time, float64 for the mean and stddev
    statistics, objects for strings and the ``fields=`` values. Needs numpy only.
    ``progress=True`` shows the packets read on stderr, as to_pandas does (not yet with
    ``fields`` other than application ones, which read through flows()). ``errors`` ("warn", the
    default, "ignore" or "raise") as in to_pandas: the flows of the good packets. ``reassemble``
    as flows().
    """
    errors = errors_policy(errors)
    idle, active, app = _flows.check_arguments(idle_timeout, active_timeout, fields)
    stats = bool(stats)
    if app and not all(_app_field(name) for name in app):
        # (fields other than the application ones, and the names records() refuses)
        return _streamed(source, filter, protocol, idle_timeout, active_timeout, stats, fields,
                         storage_options, errors, reassemble)
    cols = _packet_columns(source, filter, protocol, storage_options, span, progress, errors, app, reassemble)
    if cols["has_nat"] and span is None and isinstance(source, (str, bytes, bytearray, memoryview, os.PathLike)):
        # NaT in the packet columns is a packet without a time or one past 2262 (which
        # datetime64[ns] cannot hold): the engine reads the capture again with the times
        # themselves (with "warn", quietly: the first read warned). A source that cannot be
        # read twice goes to the engine from the columns (a time past 2262 taken as none).
        return _streamed(source, filter, protocol, idle_timeout, active_timeout, stats, fields,
                         storage_options, "ignore" if errors == "warn" else errors, reassemble)
    return _sorted(_build(cols, idle, active, stats, app))


def _streamed(source: Any, filter: str | None, protocol: Any, idle_timeout: float | None,
              active_timeout: float | None, stats: bool, fields: Sequence[str] | None,
              storage_options: dict | None, errors: str, reassemble: bool) -> dict[str, np.ndarray]:
    """flow_columns from purepcap.flows' dicts."""
    rows = list(_flows.flows(source, filter=filter, protocol=protocol, idle_timeout=idle_timeout,
                             active_timeout=active_timeout, stats=stats, fields=fields,
                             storage_options=storage_options, errors=errors, reassemble=reassemble))
    return _sorted(_columns_of(rows, _flows.flow_keys(stats, _flows.check_arguments(None, None, fields)[2])))


def flows_to_pandas(source: Any, **kwargs: Any) -> pd.DataFrame:
    """The flows of ``source`` (as :func:`purepcap.flows` gives them) as a DataFrame, one
    row per flow sorted by ``first_frame``, with ``duration`` (end - start) after ``end``.
    The arguments are :func:`flow_columns`' (flows()' and ``storage_options``, ``span``,
    ``progress``).

    Types: hosts, protocol, conn_state and end_reason are ``category``; ports, vlan and TCP
    flags nullable ``UInt16``; ``start``/``end`` ``datetime64[ns]`` (naive UTC);
    ``duration`` ``timedelta64[ns]``; counts ``int64``; ``community_id`` strings.
    """
    _require_pandas()
    return _to_frame(flow_columns(source, **kwargs))


# -- packet columns ---------------------------------------------------------------------------
def _app_field(name: str) -> bool:
    """Whether flow field ``name`` is made of application columns (read column-wise here)."""
    parts = _flows._DERIVED.get(name, (name,))
    return all(p in _schema.BY_NAME and _schema.BY_NAME[p].source in _schema.APP_SOURCES for p in parts)


def _packet_columns(source: Any, filter: str | None, protocol: Any, storage_options: dict | None,
                    span: Span | None, progress: Any = False, errors: str = "raise", app: Sequence[str] = (),
                    reassemble: bool = False) -> dict[str, Any]:
    """The packets' columns as the ColumnBuilder stores them (narrow types), each
    nullable one with its mask of missing rows in ``miss`` (None where none is missing);
    ``fragment`` a boolean column and ``fragments`` the (more, offset) tuples, both None
    when no packet is a fragment; in ``app`` each flow field of ``app`` as the sorted
    rows that have a value (as purepcap.flows takes one: not in _flows.NO_VALUE) and those values."""
    names = list(dict.fromkeys(p for a in app for p in _flows._DERIVED.get(a, (a,))))
    (builder,) = build_columns(source, _COLUMNS + names, protocol=protocol, filter=filter,
                               storage_options=storage_options, span=span, progress=progress, errors=errors,
                               reassemble=reassemble)
    out: dict[str, Any] = {"hosts": builder.tables["host"].names, "miss": {}, "app": {}}
    sparse = {}
    for name in names:  # (rows, values) per batch, rows of the whole capture
        found: dict[int, Any] = {}
        for at, values in builder.parts.pop(name):
            found.update(zip(at.tolist(), values.tolist()))  # noqa: B905
        sparse[name] = found
    for a in app:
        parts = _flows._DERIVED.get(a)
        if parts is None:  # the first value a packet has, as _flows._run takes it
            found = {r: v for r, v in sparse[a].items() if v not in _flows.NO_VALUE}
        else:  # the first part a packet has (_flows._field)
            found = {}
            for part in reversed(parts):
                found.update((r, v) for r, v in sparse[part].items() if v not in _flows.NO_VALUE)
        rows = sorted(found)
        out["app"][a] = (np.array(rows, dtype=np.int64), _objects([found[r] for r in rows]))
    for name in _COLUMNS:
        part = builder.parts.pop(name)
        if name == "fragment":  # object arrays, None on every row but a fragment's
            is_frag = np.concatenate([p.astype(bool) for p in part]) if part else np.zeros(0, dtype=bool)
            found = bool(is_frag.any())
            out["fragment"] = is_frag if found else None
            out["fragments"] = np.concatenate(part) if found else None
            continue
        out[name] = part.finish()
        if name in builder.masks:
            miss = builder.masks.pop(name).finish()
            out["miss"][name] = miss if miss.any() else None
    t = out["time"]
    out["has_nat"] = bool(len(t)) and bool((t == NAT).any())
    return out


def _filled(c: dict[str, Any], name: str, fill: int) -> np.ndarray:
    """Column ``name`` as int64, ``fill`` where it is missing."""
    arr = c[name].astype(np.int64)
    miss = c["miss"].get(name)
    if miss is not None:
        arr[miss] = fill
    return arr


def _optional(c: dict[str, Any], name: str, rows: np.ndarray) -> list:
    """Column ``name`` at ``rows`` as a list, None where it is missing."""
    values = c[name][rows].tolist()
    miss = c["miss"].get(name)
    if miss is None:
        return values
    return [None if m else v for v, m in zip(values, miss[rows].tolist())]  # noqa: B905


# -- the table --------------------------------------------------------------------------------
def _build(c: dict[str, Any], idle: int | None, active: int | None, stats: bool = False,
           app: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    n = len(c["time"])
    keys = _flows.flow_keys(stats, app)
    if n == 0:
        return _columns_of([], keys)
    t = c["time"]
    # (a timeout of 2**62 ns, 146 years, or more never ends a flow here: so that the
    # sums of times and timeouts below stay inside int64)
    idle, active = (None if x is None or x >= 1 << 62 else x for x in (idle, active))
    # each endpoint as one int (host code, port + 1), the conversation as the ordered pair
    # (arrays made in place and dropped once used: peak memory is a few int64 columns)
    e_src, e_dst = _endpoint(c, "src_host", "src_port"), _endpoint(c, "dst_host", "dst_port")
    lo = np.minimum(e_src, e_dst)
    hi = np.maximum(e_src, e_dst, out=e_dst)
    src_is_hi = e_src != lo
    del e_src, e_dst
    pv = _filled(c, "ip_proto", -1)
    pv <<= 13
    pv |= _filled(c, "vlan", -1) + 1
    codes, first = _conversations(lo, hi, pv)
    n_g = len(first)
    if c["has_nat"] or (any(x is not None for x in (idle, active)) and bool((t[1:] < t[:-1]).any())):
        # A packet without a time takes the engine's running time, and with time going
        # back the engine's sweeps may end a flow before a gap says so: both depend on
        # every packet before, so the engine sees them all, in capture order.
        return _frame([_engine_flows(c, np.arange(n), idle, active, stats=stats, app=app)], keys)
    last = np.zeros(n_g, dtype=np.int64)
    np.maximum.at(last, codes, np.arange(n))
    span = t[last] - t[first]  # (time never goes back here)
    idx2 = codes << 1  # conversation and direction (1: sent by the flow's dst)
    idx2 |= src_is_hi != src_is_hi[first][codes]
    del src_is_hi

    # Which conversations need the engine. "hard": its timeouts or fragment rules may
    # split them, so all their packets go through it. "events": TCP conversations with
    # SYN, FIN or RST, one flow unless a new SYN splits them; the engine runs over the
    # packets that can change their state only, and the sums are taken here.
    flags = _filled(c, "tcp_flags", 0)
    flags_missing = c["miss"].get("tcp_flags")
    event_rows = (flags & 0x07) != 0  # SYN, FIN or RST
    events = np.zeros(n_g, dtype=bool)
    events[codes[event_rows]] = True
    hard = np.zeros(n_g, dtype=bool)
    frag = c["fragment"]
    if frag is not None:  # every conversation of a host pair with fragments, ports or not
        pair = ((lo >> 17) << 31 | (hi >> 17)) * 131 + pv
        hard[codes[np.isin(pair, np.unique(pair[frag]))]] = True
        del pair
    del lo, hi, pv
    if active is not None:
        hard[span >= active] = True
    # a TCP packet without flags, or a plain one without ACK, may change a state later
    # than the packets _event_states picks: the engine sees all of such a conversation
    tcp = c["ip_proto"] == 6  # (a missing ip_proto is stored as 0)
    odd = tcp & ((flags & 0x17) == 0)
    if flags_missing is not None:
        odd &= ~flags_missing
        odd |= tcp & flags_missing
    hard[codes[odd]] = True
    if idle is not None:
        # a gap as long as the idle timeout splits a conversation, and a closed TCP flow
        # waits only the close delay; a conversation's gaps are at most its span, so only
        # the conversations that span that long are sorted to find them
        linger = min(idle, int(_flows.CLOSE_DELAY * 1_000_000_000))
        look = ~hard & ((span >= idle) | (events & (span >= linger)))
        if look.any():
            rows = np.flatnonzero(look[codes])
            rows = rows[_stable_order(codes[rows], n_g)]
            g, ts = codes[rows], t[rows]
            same = g[1:] == g[:-1]
            gap = ts[1:] - ts[:-1]
            g = g[1:]
            hard[g[same & (gap >= idle)]] = True
            hard[g[same & (gap >= linger) & events[g]]] = True
    events &= ~hard

    states: dict[int, tuple[str, str]] = {}
    if events.any():
        states, split = _event_states(c, codes, idx2, events, event_rows)
        if split:  # a new SYN split the conversation: the engine sees all of it
            hard[split] = True
    parts: list = []
    simple = np.flatnonzero(~hard)
    if len(simple):
        part = _simple_flows(c, simple, first, last, idx2, flags, states, idle, active)
        if stats:
            part.update(_flow_stats(c, codes, idx2, flags, n_g, simple))
        for name in app:
            part[name] = _first_values(c["app"][name], codes, simple)
        parts.append(part)
    if hard.any():
        rows = np.flatnonzero(hard[codes])  # in capture order
        parts.append(_engine_flows(c, rows, idle, active, int(t[-1]), stats=stats, app=app))
    return _frame(parts, keys)


def _endpoint(c: dict[str, Any], host: str, port: str) -> np.ndarray:
    """Each row's endpoint as one int64: host code << 17 | (port + 1, 0 without a port)."""
    e = _filled(c, port, -1)
    e += 1
    e |= c[host].astype(np.int64) << 17
    return e


def _conversations(lo: np.ndarray, hi: np.ndarray, pv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's conversation (equal ``lo``, ``hi``, ``pv``) as a number, numbered in
    order of first appearance, and each conversation's first row. One 64-bit mix of the
    three words is numbered by hash table (pandas' factorize, when pandas is loaded) or
    by sort; a mix shared by two conversations is detected and the exact, slower lexsort
    used instead."""
    h = lo.view(np.uint64) * _MIX1
    h ^= hi.view(np.uint64)
    h *= _MIX2
    h ^= pv.view(np.uint64)
    h ^= h >> np.uint64(29)
    codes = _first_seen_codes(h)
    del h
    first = _firsts(codes)
    if ((lo[first][codes] != lo) | (hi[first][codes] != hi) | (pv[first][codes] != pv)).any():
        order = np.lexsort((pv, hi, lo))  # a mix collision: number the exact words
        a, b, v = lo[order], hi[order], pv[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (v[1:] != v[:-1])
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.cumsum(new) - 1
        codes = _first_seen_codes(rank)
        first = _firsts(codes)
    return codes, first


def _first_seen_codes(keys: np.ndarray) -> np.ndarray:
    """Equal keys as equal numbers 0, 1, ..., numbered in order of first appearance."""
    import sys

    pd = sys.modules.get("pandas")  # (flows_to_pandas has loaded it; numpy alone sorts)
    if pd is not None:
        # (a small first table: one sized for every row would be mostly empty, and slow to walk)
        codes, _ = pd.factorize(keys, size_hint=min(len(keys), 4096))
        return codes.astype(np.int64, copy=False)
    _, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    first = np.full(int(inverse.max()) + 1, len(keys), dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(len(keys)))
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


def _firsts(codes: np.ndarray) -> np.ndarray:
    """The first row of each number of first-appearance codes (where the running maximum grows)."""
    top = np.maximum.accumulate(codes)
    new = np.ones(len(codes), dtype=bool)
    new[1:] = top[1:] != top[:-1]
    return np.flatnonzero(new)


def _stable_order(keys: np.ndarray, top: int) -> np.ndarray:
    """A stable argsort of integer keys in [0, top), by 16-bit digits (numpy's stable
    sort of 16-bit integers is a radix sort: linear time, where 64-bit keys take n log n)."""
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    shift = 16
    while top > 1 << shift:
        digit = ((keys[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


def _event_states(c: dict[str, Any], codes: np.ndarray, idx2: np.ndarray, events: np.ndarray,
                  event_rows: np.ndarray) -> tuple[dict, list[int]]:
    """conn_state and end_reason of the "events" conversations, from the engine run over
    the packets that can change a TCP state: every SYN, FIN and RST, the first packet
    each way, and the first packet each way after each of those. Returns
    {conversation: (conn_state, end_reason)} and the conversations that were split."""
    n = len(codes)
    rows = np.flatnonzero(events[codes])  # in capture order
    k = idx2[rows]
    o = _stable_order(k, 2 * len(events))
    at, k = rows[o], k[o]  # by conversation and direction, each in capture order
    is_ev = event_rows[at]
    keep = is_ev.copy()
    keep[0] = True
    keep[1:] |= k[1:] != k[:-1]  # the first packet each way
    ev, ev_k = at[is_ev], k[is_ev]
    place = k * (n + 1) + at  # increasing
    for way in (0, 1):  # the first packet this way after each event
        want = (ev_k & ~1) | way
        j = np.searchsorted(place, want * (n + 1) + ev, side="right")
        ok = j < len(place)
        j = j[ok]
        keep[j[k[j] == want[ok]]] = True
    rows = np.sort(at[keep])
    conv_of = dict(zip(c["frame"][rows].tolist(), codes[rows].tolist()))  # noqa: B905
    if len(conv_of) < len(rows):  # frame numbers repeat (packets of several captures): no shortcut
        return {}, np.flatnonzero(events).tolist()
    states: dict[int, tuple[str, str]] = {}
    count: dict[int, int] = {}
    for frame, state in _engine_flows(c, rows, None, None, emit=_state_of):
        g = conv_of[frame]
        count[g] = count.get(g, 0) + 1
        states[g] = state
    split = [g for g, x in count.items() if x > 1]
    for g in split:
        del states[g]
    return states, split


def _at(c: dict[str, Any], name: str, rows: np.ndarray, fill: int = -1) -> np.ndarray:
    """Column ``name`` at ``rows`` as int64, ``fill`` where it is missing."""
    arr = c[name][rows].astype(np.int64)
    miss = c["miss"].get(name)
    if miss is not None:
        arr[miss[rows]] = fill
    return arr


def _simple_flows(c: dict[str, Any], sg: np.ndarray, first: np.ndarray, last: np.ndarray, idx2: np.ndarray,
                  flags: np.ndarray, states: dict[int, tuple[str, str]], idle: int | None,
                  active: int | None) -> dict[str, np.ndarray]:
    """One flow per conversation of ``sg`` (each one flow), as columns (see _to_frame):
    the sums taken per conversation and direction at once over all packets (``idx2``);
    ``states`` the (conn_state, end_reason) the engine found for some of them."""
    from ._protocols import NAMES

    m = 2 * len(first)
    packets = np.bincount(idx2, minlength=m)
    sums = {}
    for name, values in (("bytes", c["length"].astype(np.int64, copy=False)), ("ip_bytes", _filled(c, "ip_length", 0))):
        total = np.zeros(m, dtype=np.int64)
        np.add.at(total, idx2, values)
        sums[name] = total
    ored = np.zeros(m, dtype=np.int64)
    np.bitwise_or.at(ored, idx2, flags)
    f, lf = first[sg], last[sg]
    src, dst = 2 * sg, 2 * sg + 1
    t = c["time"]
    hosts = np.empty(len(c["hosts"]), dtype=object)
    hosts[:] = c["hosts"]
    proto = _at(c, "ip_proto", f)
    kinds, which = np.unique(proto, return_inverse=True)
    is_tcp = proto == 6
    out: dict[str, np.ndarray] = {
        "first_frame": c["frame"][f], "last_frame": c["frame"][lf], "start": t[f], "end": t[lf],
        "src_host": hosts[c["src_host"][f]], "src_port": _at(c, "src_port", f),
        "dst_host": hosts[c["dst_host"][f]], "dst_port": _at(c, "dst_port", f),
        "protocol": _objects([NAMES[x] for x in kinds.tolist()])[which.reshape(-1)],
        "vlan": _at(c, "vlan", f), "src_packets": packets[src], "dst_packets": packets[dst],
        "src_bytes": sums["bytes"][src], "dst_bytes": sums["bytes"][dst],
        "src_ip_bytes": sums["ip_bytes"][src], "dst_ip_bytes": sums["ip_bytes"][dst],
        "src_tcp_flags": np.where(is_tcp, ored[src], -1), "dst_tcp_flags": np.where(is_tcp, ored[dst], -1),
    }
    conn = np.where(proto == 17, np.where(out["dst_packets"] > 0, "SF", "S0"), "OTH").astype(object)
    reason = np.full(len(sg), "eof", dtype=object)
    if states:
        pos = np.searchsorted(sg, np.fromiter(states, dtype=np.int64, count=len(states)))
        found = list(states.values())
        conn[pos] = [s[0] for s in found]
        reason[pos] = [s[1] for s in found]
    if idle is not None or active is not None:  # ended by a timeout the capture's end is past
        now = int(t[-1])
        late = np.zeros(len(sg), dtype=bool)
        if idle is not None:
            late |= now - out["end"] >= idle
        if active is not None:
            late |= now - out["start"] >= active
        late &= reason == "eof"
        if late.any():
            reason[late] = _timeout_reasons(out["start"][late], out["end"][late], idle, active)
    out["conn_state"], out["end_reason"] = conn, reason
    cid = _flows.community_id
    itype, icode = _at(c, "icmp_type", f).tolist(), _at(c, "icmp_code", f).tolist()
    out["community_id"] = _objects([
        cid(x, s, d, sp, dp, None if ty < 0 else ty, None if co < 0 else co)
        for x, s, d, sp, dp, ty, co in zip(proto.tolist(), out["src_host"].tolist(), out["dst_host"].tolist(),  # noqa: B905
                                           [None if v < 0 else v for v in out["src_port"].tolist()],
                                           [None if v < 0 else v for v in out["dst_port"].tolist()], itype, icode)])
    return out


# -- nfstream's statistics, per group ----------------------------------------------------------
# The engine (purepcap._flows) keeps running sums per flow (Welford's mean and sum of
# squared deviations); here each group's packets are sorted together (a stable radix
# sort keeps capture order within a group) and reduced segment by segment: min, max and
# the exact int64 sum; mean = sum / count; the squared deviations from that mean summed
# per segment. The definitions are the engine's: sizes are frame lengths, inter-arrival
# times the differences of times truncated to whole ms between a group's consecutive
# packets; standard deviations are sample ones (the sum of squared deviations over
# count - 1: n - 1 for sizes, n - 2 for the n - 1 gaps); a value without enough
# packets is 0. Only the order of rounding differs (tests: equal within 1e-9 relative).
def _flow_stats(c: dict[str, Any], codes: np.ndarray, idx2: np.ndarray, flags: np.ndarray, n_g: int,
                sg: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics columns (_flows.STATS_KEYS) of the one-flow conversations ``sg``."""
    size = c["length"].astype(np.int64, copy=False)
    ms = c["time"] // 1_000_000
    if len(sg) < n_g:  # only the packets of these conversations
        keep = np.zeros(n_g, dtype=bool)
        keep[sg] = True
        rows = keep[codes]
        codes, idx2, size, ms, flags = codes[rows], idx2[rows], size[rows], ms[rows], flags[rows]
    way = _group_stats(idx2, 2 * n_g, size, ms)  # conversation and direction
    groups = {"bidirectional": (_group_stats(codes, n_g, size, ms), sg), "src2dst": (way, 2 * sg),
              "dst2src": (way, 2 * sg + 1)}
    out: dict[str, np.ndarray] = {}
    for d in _flows._DIRS:
        values, at = groups[d]
        for name, arr in values.items():
            out[f"{d}_{name}"] = arr[at]
    for name in _flows._FLAG_NAMES:
        bit = _flows._FLAG_BITS[name]
        ways = np.bincount(idx2[(flags & bit) != 0], minlength=2 * n_g)
        src, dst = ways[2 * sg], ways[2 * sg + 1]
        out[f"src2dst_{name}_packets"], out[f"dst2src_{name}_packets"] = src, dst
        out[f"bidirectional_{name}_packets"] = src + dst
    return {k: out[k] for k in _flows.STATS_KEYS}


def _group_stats(key: np.ndarray, m: int, size: np.ndarray, ms: np.ndarray) -> dict[str, np.ndarray]:
    """Size and inter-arrival statistics of each group 0 <= key < m ("min_ps", ...,
    "max_piat_ms"), arrays of m."""
    order = _stable_order(key, m)
    k, v, tm = key[order], size[order], ms[order]
    count = np.bincount(key, minlength=m)
    lo, mean, sd, hi = _segments(k, v, m, count)
    out = {"min_ps": lo, "mean_ps": mean, "stddev_ps": sd, "max_ps": hi}
    same = k[1:] == k[:-1]
    gaps = (tm[1:] - tm[:-1])[same]
    lo, mean, sd, hi = _segments(k[1:][same], gaps, m, np.maximum(count - 1, 0))
    out.update({"min_piat_ms": lo, "mean_piat_ms": mean, "stddev_piat_ms": sd, "max_piat_ms": hi})
    return out


def _segments(k: np.ndarray, v: np.ndarray, m: int, count: np.ndarray) -> tuple:
    """min, mean, sample stddev and max of ``v`` per group, ``k`` sorted (each group's
    values one run); ``count`` the values of each group; 0 for a group without values
    (and stddev 0 with fewer than 2)."""
    lo, hi = np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64)
    mean, sd = np.zeros(m, dtype=np.float64), np.zeros(m, dtype=np.float64)
    if len(k):
        start = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
        g = k[start]
        n = count[g]
        lo[g] = np.minimum.reduceat(v, start)
        hi[g] = np.maximum.reduceat(v, start)
        avg = np.add.reduceat(v, start) / n
        mean[g] = avg
        dev = v - np.repeat(avg, n)
        dev *= dev
        m2 = np.add.reduceat(dev, start)
        two = n > 1
        sd[g[two]] = np.sqrt(m2[two] / (n[two] - 1))
    return lo, mean, sd, hi


def _timeout_reasons(start: np.ndarray, end: np.ndarray, idle: int | None, active: int | None) -> np.ndarray:
    """purepcap._flows' rule for a flow past a deadline: the timeout whose deadline came first, idle on a tie."""
    if idle is None or active is None:
        return np.full(len(start), "active" if idle is None else "idle", dtype=object)
    return np.where(end - start <= active - idle, "idle", "active").astype(object)


def _objects(values: list) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _state_of(f: Any, reason: str) -> tuple[int, tuple[str, str]]:
    """What _event_states takes from a flow of the engine: its first frame, conn_state and end_reason."""
    return f.first_frame, (_flows.conn_state(f), f.closed or reason)


def _first_values(found: tuple[np.ndarray, np.ndarray], codes: np.ndarray, sg: np.ndarray) -> np.ndarray:
    """Each conversation of ``sg``'s first value of a flow field (``found``: the rows
    that have one, in order, and their values), None where none of its packets has one."""
    out = np.empty(len(sg), dtype=object)
    rows, values = found
    if len(rows):
        g, first = np.unique(codes[rows], return_index=True)
        pos = np.searchsorted(sg, g)
        ok = pos < len(sg)
        ok[ok] = sg[pos[ok]] == g[ok]
        out[pos[ok]] = values[first[ok]]
    return out


def _extras(c: dict[str, Any], rows: np.ndarray, app: tuple[str, ...]) -> list:
    """The engine's per-packet dicts of flow fields at ``rows`` (None without fields)."""
    if not app:
        return [None] * len(rows)
    columns = []
    for name in app:
        at, values = c["app"][name]
        col = np.empty(len(rows), dtype=object)
        if len(at):
            pos = np.searchsorted(at, rows)
            ok = pos < len(at)
            ok[ok] = at[pos[ok]] == rows[ok]
            col[ok] = values[pos[ok]]
        columns.append(col.tolist())
    return [dict(zip(app, vals)) for vals in zip(*columns)]  # noqa: B905


def _engine_flows(c: dict[str, Any], rows: np.ndarray, idle: int | None, active: int | None,
                  now: int | None = None, emit: Any = None, stats: bool = False,
                  app: tuple[str, ...] = ()) -> list:
    """purepcap.flows' engine over the packets at ``rows`` (its dicts, or what ``emit``
    makes of each flow); with ``now`` (the capture's last time, when these rows may end
    before it) a flow past a deadline then ends by it."""
    hosts = c["hosts"]

    def col(name: str) -> list:
        return c[name][rows].tolist()

    frag = c["fragments"]
    times = [None if v == NAT else v for v in col("time")]
    packets = zip(  # noqa: B905 - Python 3.9 has no strict=
        col("frame"), times, col("length"), [hosts[h] for h in col("src_host")], _optional(c, "src_port", rows),
        [hosts[h] for h in col("dst_host")], _optional(c, "dst_port", rows), _at(c, "ip_proto", rows).tolist(),
        _optional(c, "vlan", rows), _at(c, "ip_length", rows, 0).tolist(), _optional(c, "tcp_flags", rows),
        _optional(c, "tcp_seq", rows), [None] * len(rows) if frag is None else frag[rows].tolist(),
        _optional(c, "ip_id", rows), _optional(c, "icmp_type", rows), _optional(c, "icmp_code", rows),
        _extras(c, rows, app))
    flows = list(_flows._run(packets, idle, active, stats, app, emit))
    if now is not None and (idle is not None or active is not None):
        never = _flows._NEVER
        idle_i, active_i = never if idle is None else idle, never if active is None else active
        for f in flows:
            if f["end_reason"] == "eof" and (now - f["end"] >= idle_i or now - f["start"] >= active_i):
                f["end_reason"] = _flows.timeout_reason(f["start"], f["end"], idle_i, active_i)
    return flows


def _frame(parts: list, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The columns ``keys`` of the simple flows and the engine's rows (unsorted)."""
    pieces = [_columns_of(p, keys) if isinstance(p, list) else p for p in parts]
    return {k: np.concatenate([p[k] for p in pieces]) for k in keys}


def _columns_of(rows: list[dict[str, Any]], keys: Sequence[str] = _flows.FLOW_KEYS) -> dict[str, np.ndarray]:
    """Flow dicts as the columns flow_columns gives (unsorted): int64 (-1 for None in the
    nullable ones, NaT for a missing time), float64 for the mean and stddev statistics, objects."""
    out: dict[str, np.ndarray] = {}
    for k in keys:
        values = [r[k] for r in rows]
        if k in ("start", "end"):
            # (None, or a time past 2262 that datetime64[ns] cannot hold: NaT)
            out[k] = np.array([NAT if v is None or not NAT < v <= _NS_MAX else v for v in values], dtype=np.int64)
        elif k in _DTYPES:
            out[k] = np.array([-1 if v is None else v for v in values], dtype=np.int64)
        elif k in _flows.STATS_KEYS:
            out[k] = np.array(values, dtype=np.float64 if "mean" in k or "stddev" in k else np.int64)
        else:
            out[k] = _objects(values)
    return out


def _sorted(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(cols["first_frame"], kind="stable")
    return {k: values[order] for k, values in cols.items()}


def _to_frame(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """flow_columns' columns as the DataFrame flows_to_pandas gives."""
    import pandas as pd

    data: dict[str, Any] = {}
    for k, values in cols.items():
        if k in ("start", "end"):
            data[k] = values.view("M8[ns]")
            if k == "end":
                data["duration"] = (data["end"] - data["start"]).astype("m8[ns]")
        elif k in CATEGORIES:
            data[k] = pd.Categorical(values)
        elif k in NULLABLE:  # -1 is None
            dtype = pd.api.types.pandas_dtype(_DTYPES[k])
            data[k] = pd.arrays.IntegerArray(values.astype(dtype.numpy_dtype), values < 0)
        else:
            data[k] = values
    return pd.DataFrame(data)


def flow_frame(rows: list[dict[str, Any]], stats: bool = False, fields: Sequence[str] = ()) -> pd.DataFrame:
    """A DataFrame of flow dicts (as flows() yields them), typed as flows_to_pandas types them."""
    _require_pandas()
    return _to_frame(_sorted(_columns_of(rows, _flows.flow_keys(stats, fields))))


def empty_flow_frame(stats: bool = False, fields: Sequence[str] = ()) -> pd.DataFrame:
    """A DataFrame with no rows and exactly the columns and types flows_to_pandas gives."""
    return flow_frame([], stats, fields)
