# purepcap.flows_to_pandas: the flow table as a DataFrame, built from numpy columns.
#
# Strategy: the packets' columns come from the same batch decoder as to_pandas
# (_batches + _columns; hosts are category codes of one shared table). Every packet gets
# a conversation key (protocol, VLAN, the two endpoints in canonical order) packed into
# two uint64 words, and one stable argsort of their hash groups each conversation's
# packets in capture order (a hash collision is detected and the exact, slower lexsort
# used instead). A conversation whose flow is simply "all its packets" -- no TCP SYN, FIN
# or RST, no IP fragment, no gap as long as the idle timeout, shorter than the active
# timeout, every time known -- is summed up at once with reduceat over its run of the
# sorted arrays. Every other conversation (TCP handshakes and closes, fragments,
# timeouts) is handed, packet by packet in capture order, to purepcap.flows' engine,
# whose sequential rules (tshark's new-SYN rule, lingering closes, Zeek's states)
# decide its flows; the flows of a conversation depend only on its own packets, so this
# gives the rows purepcap.flows() gives. stats=True and fields= take the engine for all.
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import flows as _flows
from .dataframe import _protocols, _require_pandas, _size_of, _source_batches

if TYPE_CHECKING:
    import pandas as pd

    from .format import Span

__all__ = ["flows_to_pandas", "flow_frame", "empty_flow_frame"]

_COLUMNS = ["time", "src_host", "src_port", "dst_host", "dst_port", "protocol", "frame", "length",
            "tcp_flags", "tcp_seq", "vlan", "ip_length", "fragment", "ip_id", "ip_proto", "icmp_type",
            "icmp_code"]

# pandas types of the flow columns (hosts, protocol, conn_state, end_reason: category)
_DTYPES = {
    "first_frame": "int64", "last_frame": "int64", "src_port": "UInt16", "dst_port": "UInt16",
    "vlan": "UInt16", "src_packets": "int64", "dst_packets": "int64", "src_bytes": "int64",
    "dst_bytes": "int64", "src_ip_bytes": "int64", "dst_ip_bytes": "int64", "src_tcp_flags": "UInt16",
    "dst_tcp_flags": "UInt16",
}
_CATEGORIES = ("src_host", "dst_host", "protocol", "conn_state", "end_reason")
NAT = np.iinfo(np.int64).min
_MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


def flows_to_pandas(source: Any, *, filter: str | None = None, protocol: str | Iterable[str] | None = None,
                    idle_timeout: float | None = 120.0, active_timeout: float | None = 1800.0,
                    stats: bool = False, fields: Sequence[str] | None = None,
                    storage_options: dict | None = None, span: Span | None = None) -> pd.DataFrame:
    """The flows of ``source`` (as :func:`purepcap.flows` gives them) as a DataFrame, one
    row per flow sorted by ``first_frame``, with ``duration`` (end - start) after ``end``.

    Types: hosts, protocol, conn_state and end_reason are ``category``; ports, vlan and TCP
    flags nullable ``UInt16``; ``start``/``end`` ``datetime64[ns]`` (naive UTC);
    ``duration`` ``timedelta64[ns]``; counts ``int64``; ``community_id`` strings.
    """
    _require_pandas()
    idle, active, app = _flows.check_arguments(idle_timeout, active_timeout, fields)
    if stats or app:
        rows = list(_flows.flows(source, filter=filter, protocol=protocol, idle_timeout=idle_timeout,
                                 active_timeout=active_timeout, stats=stats, fields=fields,
                                 storage_options=storage_options))
        return flow_frame(rows, stats=bool(stats), fields=app)
    cols = _packet_columns(source, filter, protocol, storage_options, span)
    return _build(cols, idle, active)


# -- packet columns ---------------------------------------------------------------------------
def _packet_columns(source: Any, filter: str | None, protocol: Any, storage_options: dict | None,
                    span: Span | None) -> dict[str, Any]:
    from . import _columns

    builder = _columns.ColumnBuilder(_COLUMNS, _protocols(protocol))
    total = _size_of(source, span)
    for i, batch in enumerate(_source_batches(source, filter=filter, storage_options=storage_options, span=span)):
        builder.add(batch)
        if i == 0 and total and len(batch):
            used = int(batch.off[-1] + batch.caplen[-1])
            builder.reserve(int(builder.rows * total / max(used, 1) * 1.05) + 1024)
    out: dict[str, Any] = {"hosts": builder.tables["host"].names, "protos": builder.tables["proto"].names}
    for name in _COLUMNS:
        part = builder.parts.pop(name)
        if name == "fragment":
            out[name] = [f for p in part for f in p]
            continue
        arr = part.finish()
        if name in builder.masks:
            miss = builder.masks.pop(name).finish()
            arr = arr.astype(np.int64)
            arr[miss] = -1
        out[name] = arr
    return out


# -- the table --------------------------------------------------------------------------------
def _build(c: dict[str, Any], idle: int | None, active: int | None) -> pd.DataFrame:
    n = len(c["time"])
    if n == 0:
        return empty_flow_frame()
    src = c["src_host"].astype(np.int64)
    dst = c["dst_host"].astype(np.int64)
    sport, dport = c["src_port"], c["dst_port"]
    proto = c["ip_proto"]
    vlan = c["vlan"]
    flags = c["tcp_flags"]
    t = c["time"].astype(np.int64)
    frag = c["fragment"]
    has_frag = np.fromiter((f is not None for f in frag), dtype=bool, count=n) if any(frag) else \
        np.zeros(n, dtype=bool)

    # conversation keys: the smaller (host, port) first
    swap = (src > dst) | ((src == dst) & (sport > dport))
    lo_h, hi_h = np.where(swap, dst, src), np.where(swap, src, dst)
    lo_p, hi_p = np.where(swap, dport, sport), np.where(swap, sport, dport)
    k1 = (lo_h.astype(np.uint64) << np.uint64(32)) | hi_h.astype(np.uint64)
    k2 = ((proto.astype(np.uint64) << np.uint64(48)) | ((vlan + 1).astype(np.uint64) << np.uint64(34))
          | ((lo_p + 1).astype(np.uint64) << np.uint64(17)) | (hi_p + 1).astype(np.uint64))
    order, starts = _group(k1, k2)
    g_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))  # group of each sorted row
    gid = np.empty(n, dtype=np.int64)
    gid[order] = g_of

    # which conversations need the engine's sequential rules
    ts = t[order]
    complex_g = np.zeros(len(starts), dtype=bool)
    event = (flags >= 0) & ((flags & 0x07) != 0)  # SYN, FIN or RST
    complex_g[gid[event]] = True
    complex_g[gid[t == NAT]] = True
    if has_frag.any():  # the conversations of a fragmented host pair, ports or not
        pair = k1 ^ ((proto.astype(np.uint64) << np.uint64(48)) | ((vlan + 1).astype(np.uint64) << np.uint64(34)))
        complex_g[gid[np.isin(pair, np.unique(pair[has_frag]))]] = True
    if idle is not None or active is not None:
        same = np.zeros(n, dtype=bool)
        same[1:] = g_of[1:] == g_of[:-1]
        gap = np.zeros(n, dtype=np.int64)
        gap[1:] = ts[1:] - ts[:-1]
        if idle is not None:
            complex_g[g_of[same & (gap >= idle)]] = True
        if active is not None:
            ends = np.append(starts[1:], n) - 1
            complex_g[(ts[ends] - ts[starts]) >= active] = True

    simple = ~complex_g
    parts = []
    if simple.any():
        parts.append(_simple_flows(c, order, starts, simple, g_of, n))
    if complex_g.any():
        rows = np.flatnonzero(complex_g[gid])  # in capture order
        parts.append(_engine_flows(c, rows, idle, active))
    return _frame(parts, c)


def _group(k1: np.ndarray, k2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stable order that puts equal (k1, k2) together, and where each group starts."""
    h = k1 * _MIX1 ^ k2 * _MIX2
    h ^= h >> np.uint64(29)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    new = np.ones(len(h), dtype=bool)
    new[1:] = hs[1:] != hs[:-1]
    a, b = k1[order], k2[order]
    if ((a[1:] != a[:-1]) | (b[1:] != b[:-1]))[~new[1:]].any():  # a collision: sort exactly
        order = np.lexsort((np.arange(len(h)), k2, k1))
        a, b = k1[order], k2[order]
        new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return order, np.flatnonzero(new)


def _simple_flows(c: dict[str, Any], order: np.ndarray, starts: np.ndarray, simple: np.ndarray,
                  g_of: np.ndarray, n: int) -> dict[str, Any]:
    """One flow per simple conversation, summed over its run of the sorted rows."""
    keep = simple[g_of]
    idx = order[keep]  # sorted rows of the simple conversations
    g = g_of[keep]
    new = np.ones(len(idx), dtype=bool)
    new[1:] = g[1:] != g[:-1]
    st = np.flatnonzero(new)
    first, last = idx[st], idx[np.append(st[1:], len(idx)) - 1]
    src, sport = c["src_host"].astype(np.int64), c["src_port"]
    grp = np.repeat(np.arange(len(st)), np.diff(np.append(st, len(idx))))
    fwd = (src[idx] == src[first][grp]) & (sport[idx] == sport[first][grp])
    out: dict[str, Any] = {"first": first, "last": last}
    length, iplen = c["length"][idx].astype(np.int64), np.maximum(c["ip_length"][idx], 0)
    flags = c["tcp_flags"][idx]
    for side, m in (("src", fwd), ("dst", ~fwd)):
        out[f"{side}_packets"] = np.add.reduceat(m.astype(np.int64), st)
        out[f"{side}_bytes"] = np.add.reduceat(np.where(m, length, 0), st)
        out[f"{side}_ip_bytes"] = np.add.reduceat(np.where(m, iplen, 0), st)
        out[f"{side}_tcp_flags"] = np.bitwise_or.reduceat(np.where(m & (flags >= 0), flags, 0), st)
    return out


def _engine_flows(c: dict[str, Any], rows: np.ndarray, idle: int | None, active: int | None) -> list[dict]:
    hosts = c["hosts"]

    def col(name: str) -> list:
        return c[name][rows].tolist()

    def opt(values: list) -> list:
        return [None if v < 0 else v for v in values]

    frag = c["fragment"]
    times = [None if v == NAT else v for v in col("time")]
    packets = zip(  # noqa: B905 - Python 3.9 has no strict=
        col("frame"), times, col("length"), [hosts[h] for h in col("src_host")], opt(col("src_port")),
                  [hosts[h] for h in col("dst_host")], opt(col("dst_port")), col("ip_proto"), opt(col("vlan")),
                  opt(col("ip_length")), opt(col("tcp_flags")), opt(col("tcp_seq")),
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
    cols["conn_state"].extend(("SF" if d else "S0") if x == 17 else "OTH" for x, d in zip(proto, dpk))  # noqa: B905
    cols["end_reason"].extend(["eof"] * len(proto))
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
