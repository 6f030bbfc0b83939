# purepcap.flows_to_pandas: the flow table as a DataFrame, built from numpy columns.
#
# Strategy: the packets' columns come from the same batch decoder as to_pandas
# (_batches + _columns; hosts are category codes of one shared table). Every packet gets
# a conversation key (protocol, VLAN, the two endpoints in canonical order) as three
# int64 words, and one stable argsort of a 64-bit mix of them groups each conversation's
# packets in capture order (a hash collision is detected and the exact, slower lexsort
# used instead). A conversation that is one flow -- no IP fragment, no gap as long as the
# idle timeout (or, with TCP SYN/FIN/RST, as the close delay), shorter than the active
# timeout, every time known -- is summed up at once with reduceat over its run of the
# sorted arrays. If it has TCP SYN, FIN or RST, purepcap.flows' engine runs over just
# the packets that can change its TCP state (each SYN/FIN/RST, the first packet each
# way and the next each way after those) for conn_state and end_reason; if a new SYN
# splits it there, it joins the others. Every other conversation is handed, packet by
# packet in capture order, to the engine, whose sequential rules decide its flows; the
# flows of a conversation depend only on its own packets, so this gives the rows
# purepcap.flows() gives (tests compare them on the corpus and on hypothesis-made TCP
# sessions). stats=True and fields= take the engine for all.
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _flows, _schema
from .dataframe import _require_pandas, build_columns

if TYPE_CHECKING:
    import pandas as pd

    from .format import Span

__all__ = ["flows_to_pandas", "flow_frame", "empty_flow_frame"]

_COLUMNS = ["time", "src_host", "src_port", "dst_host", "dst_port", "frame", "length",
            "tcp_flags", "tcp_seq", "vlan", "ip_length", "fragment", "ip_id", "ip_proto", "icmp_type",
            "icmp_code"]

# pandas types of the flow columns (hosts, protocol, conn_state, end_reason: category);
# ports, VLAN and TCP flags typed as the packet fields they come from (purepcap._schema)
_DTYPES = {
    "first_frame": _schema.BY_NAME["frame"].pandas, "last_frame": _schema.BY_NAME["frame"].pandas,
    "src_port": _schema.BY_NAME["src_port"].pandas, "dst_port": _schema.BY_NAME["dst_port"].pandas,
    "vlan": _schema.BY_NAME["vlan"].pandas, "src_packets": "int64", "dst_packets": "int64",
    "src_bytes": "int64", "dst_bytes": "int64", "src_ip_bytes": "int64", "dst_ip_bytes": "int64",
    "src_tcp_flags": _schema.BY_NAME["tcp_flags"].pandas, "dst_tcp_flags": _schema.BY_NAME["tcp_flags"].pandas,
}
_CATEGORIES = ("src_host", "dst_host", "protocol", "conn_state", "end_reason")
NAT = np.iinfo(np.int64).min
_MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


def flows_to_pandas(source: Any, *, filter: str | None = None, protocol: str | Iterable[str] | None = None,
                    idle_timeout: float | None = 120.0, active_timeout: float | None = 1800.0,
                    stats: bool = False, fields: Sequence[str] | None = None,
                    storage_options: dict | None = None, span: Span | None = None,
                    progress: bool = False, reassemble: bool = False) -> pd.DataFrame:
    """The flows of ``source`` (as :func:`purepcap.flows` gives them) as a DataFrame, one
    row per flow sorted by ``first_frame``, with ``duration`` (end - start) after ``end``.

    Types: hosts, protocol, conn_state and end_reason are ``category``; ports, vlan and TCP
    flags nullable ``UInt16``; ``start``/``end`` ``datetime64[ns]`` (naive UTC);
    ``duration`` ``timedelta64[ns]``; counts ``int64``; ``community_id`` strings.
    ``progress=True`` shows the packets read on stderr, as to_pandas does (not yet with
    ``stats`` or ``fields``, which read through flows()). ``reassemble`` as flows().
    """
    _require_pandas()
    idle, active, app = _flows.check_arguments(idle_timeout, active_timeout, fields)
    if stats or app:
        rows = list(_flows.flows(source, filter=filter, protocol=protocol, idle_timeout=idle_timeout,
                                 active_timeout=active_timeout, stats=stats, fields=fields,
                                 storage_options=storage_options, reassemble=reassemble))
        return flow_frame(rows, stats=bool(stats), fields=app)
    cols = _packet_columns(source, filter, protocol, storage_options, span, progress)
    return _build(cols, idle, active)


# -- packet columns ---------------------------------------------------------------------------
def _packet_columns(source: Any, filter: str | None, protocol: Any, storage_options: dict | None,
                    span: Span | None, progress: Any = False) -> dict[str, Any]:
    (builder,) = build_columns(source, _COLUMNS, protocol=protocol, filter=filter,
                               storage_options=storage_options, span=span, progress=progress)
    # numbers as int64, -1 where missing; TCP flags and IP lengths 0 where missing (they
    # are summed), with the flags' mask kept for the engine; fragments as a boolean column
    # (None when there are none) and the (more, offset) tuples for the engine
    out: dict[str, Any] = {"hosts": builder.tables["host"].names}
    for name in _COLUMNS:
        part = builder.parts.pop(name)
        if name == "fragment":
            listed = [f for p in part for f in p]
            out["fragments"] = listed
            out[name] = np.fromiter((f is not None for f in listed), dtype=bool, count=len(listed)) \
                if any(listed) else None
            continue
        arr = part.finish()
        if name in builder.masks:
            miss = builder.masks.pop(name).finish()
            arr = arr.astype(np.int64)
            arr[miss] = 0 if name in ("tcp_flags", "ip_length") else -1
            if name == "tcp_flags":
                out["tcp_flags_missing"] = miss
        elif arr.dtype != np.int64 and name not in ("src_host", "dst_host", "protocol"):
            arr = arr.astype(np.int64)
        out[name] = arr
    out["has_nat"] = bool(len(out["time"])) and bool((out["time"] == NAT).any())
    return out


# -- the table --------------------------------------------------------------------------------
def _build(c: dict[str, Any], idle: int | None, active: int | None) -> pd.DataFrame:
    n = len(c["time"])
    if n == 0:
        return empty_flow_frame()
    t = c["time"]
    flags = c["tcp_flags"]  # 0 where missing (c["tcp_flags_missing"] says where)
    # each endpoint as one int (host code, port + 1), the conversation as the ordered pair
    e_src = (c["src_host"].astype(np.int64) << 17) | (c["src_port"] + 1)
    e_dst = (c["dst_host"].astype(np.int64) << 17) | (c["dst_port"] + 1)
    lo, hi = np.minimum(e_src, e_dst), np.maximum(e_src, e_dst)
    pv = (c["ip_proto"].astype(np.int64) << 13) | (c["vlan"] + 1)
    order, starts = _group(lo, hi, pv)
    new = np.zeros(n, dtype=bool)
    new[starts] = True
    g_of = np.cumsum(new) - 1  # the conversation of each sorted row
    gid = np.empty(n, dtype=np.int64)
    gid[order] = g_of
    n_g = len(starts)

    # Which conversations need the engine. "hard": its timeouts or fragment rules may
    # split them, so all their packets go through it. "events": TCP conversations with
    # SYN, FIN or RST, one flow unless a new SYN splits them; the engine runs over the
    # packets that can change their state only, and the sums are taken here.
    tcp = c["ip_proto"] == 6
    event_rows = (flags & 0x07) != 0  # SYN, FIN or RST
    events = np.zeros(n_g, dtype=bool)
    events[gid[event_rows]] = True
    hard = np.zeros(n_g, dtype=bool)
    if c["has_nat"]:
        hard[gid[t == NAT]] = True
    frag = c["fragment"]
    if frag is not None:  # every conversation of a host pair with fragments, ports or not
        pair = ((lo >> 17) << 31 | (hi >> 17)) * 131 + pv
        hard[gid[np.isin(pair, np.unique(pair[frag]))]] = True
    ends = np.empty(n_g, dtype=np.int64)
    ends[:-1] = starts[1:] - 1
    ends[-1] = n - 1
    if idle is not None:
        ts = t[order]
        gap = ts[1:] - ts[:-1]
        gap[new[1:]] = 0
        hard[g_of[1:][gap >= idle]] = True
        # a closed TCP flow waits only the close delay: any such gap, and the engine decides
        linger = min(idle, int(_flows.CLOSE_DELAY * 1_000_000_000))
        hard[g_of[1:][(gap >= linger) & events[g_of[1:]]]] = True
    if active is not None:
        hard[(t[order[ends]] - t[order[starts]]) >= active] = True
    # a TCP packet without flags, or a plain one without ACK, may change a state later
    # than the packets picked below: the engine sees all of such a conversation
    odd = tcp & (c["tcp_flags_missing"] | ((flags & 0x17) == 0))
    hard[gid[odd]] = True
    events &= ~hard

    parts: list = []
    states: dict[int, tuple[str, str]] = {}
    if events.any():
        states, split = _event_states(c, order, starts, g_of, gid, e_src, events, event_rows)
        if split:  # a new SYN split the conversation: the engine sees all of it
            hard[split] = True
            events[split] = False
    simple = ~hard
    if simple.any():
        parts.append(_simple_flows(c, order, starts, ends, None if simple.all() else simple, g_of, e_src,
                                   [states.get(g) for g in np.flatnonzero(simple).tolist()] if states else None))
    if hard.any():
        rows = np.flatnonzero(hard[gid])  # in capture order
        parts.append(_engine_flows(c, rows, idle, active))
    return _frame(parts, c)


def _event_states(c: dict[str, Any], order: np.ndarray, starts: np.ndarray, g_of: np.ndarray, gid: np.ndarray,
                  e_src: np.ndarray, events: np.ndarray, event_rows: np.ndarray) -> tuple[dict, list[int]]:
    """conn_state and end_reason of the "events" conversations, from the engine run over
    the packets that can change a TCP state: every SYN, FIN and RST, the first packet
    each way, and the first packet each way after each of those. Returns
    {conversation: (conn_state, end_reason)} and the conversations that were split."""
    n = len(order)
    sel = events[g_of]  # sorted positions of the events conversations
    fwd = e_src[order] == e_src[order[starts]][g_of]
    ev = np.flatnonzero(sel & event_rows[order])
    keep = np.zeros(n, dtype=bool)
    keep[ev] = True
    for side in (fwd, ~fwd):
        pos = np.flatnonzero(sel & side)
        if not len(pos):
            continue
        head = np.ones(len(pos), dtype=bool)
        head[1:] = g_of[pos[1:]] != g_of[pos[:-1]]
        keep[pos[head]] = True  # the first packet this way
        j = np.searchsorted(pos, ev, side="right")
        ok = j < len(pos)
        nxt = pos[j[ok]]
        keep[nxt[g_of[nxt] == g_of[ev[ok]]]] = True  # the next packet this way after an event
    rows = np.sort(order[keep])
    conv_of = dict(zip(c["frame"][rows].tolist(), gid[rows].tolist()))  # noqa: B905
    if len(conv_of) < len(rows):  # frame numbers repeat (packets of several captures): no shortcut
        return {}, np.flatnonzero(events).tolist()
    states: dict[int, tuple[str, str]] = {}
    count: dict[int, int] = {}
    for f in _engine_flows(c, rows, None, None):
        g = conv_of[f["first_frame"]]
        count[g] = count.get(g, 0) + 1
        states[g] = (f["conn_state"], f["end_reason"])
    split = [g for g, k in count.items() if k > 1]
    for g in split:
        del states[g]
    return states, split


def _group(lo: np.ndarray, hi: np.ndarray, pv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stable order that puts equal (lo, hi, pv) together, and where each group starts."""
    h = (lo.view(np.uint64) * _MIX1 ^ hi.view(np.uint64)) * _MIX2 ^ pv.view(np.uint64)
    h ^= h >> np.uint64(29)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same = hs[1:] == hs[:-1]
    a, b, v = lo[order], hi[order], pv[order]
    if (same & ((a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (v[1:] != v[:-1]))).any():
        # a hash collision: sort exactly
        order = np.lexsort((np.arange(len(h)), pv, hi, lo))
        a, b, v = lo[order], hi[order], pv[order]
        same = (a[1:] == a[:-1]) & (b[1:] == b[:-1]) & (v[1:] == v[:-1])
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    return order, starts


def _simple_flows(c: dict[str, Any], order: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  simple: np.ndarray | None, g_of: np.ndarray, e_src: np.ndarray,
                  states: list | None = None) -> dict[str, Any]:
    """One flow per simple conversation, summed over its run of the sorted rows;
    ``states`` the (conn_state, end_reason) the engine found for some of them."""
    if simple is not None:  # keep the simple conversations' rows only
        keep = simple[g_of]
        idx = order[keep]
        sizes = (ends - starts + 1)[simple]
        st = np.zeros(len(sizes), dtype=np.int64)
        np.cumsum(sizes[:-1], out=st[1:])
        g = np.repeat(np.arange(len(sizes)), sizes)
    else:
        idx, st, g = order, starts, g_of
    first = idx[st]
    last = idx[np.append(st[1:], len(idx)) - 1]
    fwd = e_src[idx] == e_src[first][g]  # sent by the first packet's sender
    out: dict[str, Any] = {"first": first, "last": last, "states": states}
    length, iplen, flags = c["length"][idx], c["ip_length"][idx], c["tcp_flags"][idx]
    all_packets = np.diff(np.append(st, len(idx)))
    src_packets = np.add.reduceat(fwd.astype(np.int64), st)
    out["src_packets"], out["dst_packets"] = src_packets, all_packets - src_packets
    for name, values in (("bytes", length), ("ip_bytes", iplen)):
        total = np.add.reduceat(values, st)
        src = np.add.reduceat(values * fwd, st)
        out[f"src_{name}"], out[f"dst_{name}"] = src, total - src
    out["src_tcp_flags"] = np.bitwise_or.reduceat(flags * fwd, st)
    out["dst_tcp_flags"] = np.bitwise_or.reduceat(flags * ~fwd, st)
    return out


def _engine_flows(c: dict[str, Any], rows: np.ndarray, idle: int | None, active: int | None) -> list[dict]:
    hosts = c["hosts"]

    def col(name: str) -> list:
        return c[name][rows].tolist()

    def opt(values: list) -> list:
        return [None if v < 0 else v for v in values]

    frag = c["fragments"]
    missing = c["tcp_flags_missing"][rows].tolist()
    flags = [None if m else v for v, m in zip(col("tcp_flags"), missing)]  # noqa: B905
    times = [None if v == NAT else v for v in col("time")]
    packets = zip(  # noqa: B905 - Python 3.9 has no strict=
        col("frame"), times, col("length"), [hosts[h] for h in col("src_host")], opt(col("src_port")),
                  [hosts[h] for h in col("dst_host")], opt(col("dst_port")), col("ip_proto"), opt(col("vlan")),
                  col("ip_length"), flags, opt(col("tcp_seq")),
                  [frag[i] for i in rows.tolist()], opt(col("ip_id")), opt(col("icmp_type")),
                  opt(col("icmp_code")), [None] * len(rows))
    return list(_flows._run(packets, idle, active, False, ()))


def _frame(parts: list, c: dict[str, Any]) -> pd.DataFrame:
    """The DataFrame of the simple flows' arrays and the engine's rows, by first frame."""
    cols: dict[str, list] = {k: [] for k in _flows.FLOW_KEYS}
    for part in parts:
        if isinstance(part, list):
            for k in _flows.FLOW_KEYS:
                cols[k].extend(r[k] for r in part)
        else:
            _simple_columns(part, c, cols)
    return _to_frame(cols)


def _simple_columns(p: dict[str, Any], c: dict[str, Any], cols: dict[str, list]) -> None:
    from ._protocols import NAMES

    first, last = p["first"], p["last"]
    hosts = c["hosts"]
    src = [hosts[h] for h in c["src_host"][first].tolist()]
    dst = [hosts[h] for h in c["dst_host"][first].tolist()]
    sport = [None if v < 0 else v for v in c["src_port"][first].tolist()]
    dport = [None if v < 0 else v for v in c["dst_port"][first].tolist()]
    proto = c["ip_proto"][first].tolist()
    vlan = [None if v < 0 else v for v in c["vlan"][first].tolist()]
    itype = c["icmp_type"][first].tolist()
    icode = c["icmp_code"][first].tolist()
    dpk = p["dst_packets"].tolist()
    cols["first_frame"].extend(c["frame"][first].tolist())
    cols["last_frame"].extend(c["frame"][last].tolist())
    cols["start"].extend(c["time"][first].tolist())
    cols["end"].extend(c["time"][last].tolist())
    cols["src_host"].extend(src)
    cols["src_port"].extend(sport)
    cols["dst_host"].extend(dst)
    cols["dst_port"].extend(dport)
    cols["protocol"].extend(NAMES[x] for x in proto)
    cols["vlan"].extend(vlan)
    for k in ("src_packets", "dst_packets", "src_bytes", "dst_bytes", "src_ip_bytes", "dst_ip_bytes"):
        cols[k].extend(p[k].tolist())
    for k in ("src_tcp_flags", "dst_tcp_flags"):
        cols[k].extend(v if x == 6 else None for v, x in zip(p[k].tolist(), proto))  # noqa: B905
    states = p["states"] or [None] * len(proto)
    cols["conn_state"].extend(st[0] if st else ("SF" if d else "S0") if x == 17 else "OTH"
                              for x, d, st in zip(proto, dpk, states))  # noqa: B905
    cols["end_reason"].extend(st[1] if st else "eof" for st in states)
    cid = _flows.community_id
    cols["community_id"].extend(
        cid(x, s, d, sp, dp, None if ty < 0 else ty, None if co < 0 else co)
        for x, s, d, sp, dp, ty, co in zip(proto, src, dst, sport, dport, itype, icode))  # noqa: B905


def _to_frame(cols: dict[str, list], extra: Sequence[str] = ()) -> pd.DataFrame:
    import pandas as pd

    order = np.argsort(np.asarray(cols["first_frame"], dtype=np.int64), kind="stable")
    data: dict[str, Any] = {}
    for k in list(_flows.FLOW_KEYS) + list(extra):
        values = cols[k]
        if k in ("start", "end"):
            arr = np.array([NAT if v is None else v for v in values], dtype=np.int64)[order]
            data[k] = arr.view("M8[ns]")
            if k == "end":
                data["duration"] = (data["end"] - data["start"]).astype("m8[ns]")
        elif k in _CATEGORIES:
            data[k] = pd.Categorical(np.asarray(values, dtype=object)[order])
        elif k in _DTYPES:
            data[k] = pd.array(np.asarray(values, dtype=object)[order] if len(values) else [], dtype=_DTYPES[k])
        elif k in _flows.STATS_KEYS:
            data[k] = np.asarray(values, dtype=np.float64 if "mean" in k or "stddev" in k else np.int64)[order]
        else:  # community_id and the fields= values
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            data[k] = arr[order]
    return pd.DataFrame(data)


def flow_frame(rows: list[dict[str, Any]], stats: bool = False, fields: Sequence[str] = ()) -> pd.DataFrame:
    """A DataFrame of flow dicts (as flows() yields them), typed as flows_to_pandas types them."""
    _require_pandas()
    keys = list(_flows.FLOW_KEYS) + (list(_flows.STATS_KEYS) if stats else []) + list(fields)
    cols = {k: [r[k] for r in rows] for k in keys}
    return _to_frame(cols, keys[len(_flows.FLOW_KEYS):])


def empty_flow_frame(stats: bool = False, fields: Sequence[str] = ()) -> pd.DataFrame:
    """A DataFrame with no rows and exactly the columns and types flows_to_pandas gives."""
    return flow_frame([], stats, fields)
