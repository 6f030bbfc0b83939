# purepcap.to_pandas: a capture as a pandas DataFrame, one row per IP packet.
#
# Strategy: the columns are built batch by batch in purepcap._columns (numpy over
# whole buffers for the common case, purepcap.headers.decode for the rest), then
# wrapped in pandas types without copying: category codes, nullable integer arrays
# over (values, mask), datetime64[ns] as a view of int64 nanoseconds, and payloads
# as one Arrow binary array per batch. pandas, numpy and pyarrow are imported only
# when a DataFrame is asked for (extra `pandas`).
#
# Column types, and why:
#   time                      datetime64[ns], naive UTC, as intake-pcap gave it (NaT for a pcapng
#                               simple packet block, which has no time, and for a pcapng time
#                               datetime64[ns] cannot hold: before 1677 or after 2262)
#   src_host, dst_host,       category. Measured on 1M rows of 2,000 hosts (pandas 3, CPU time):
#   protocol, eth_src/dst       category builds in 0.3 ms from our codes, holds 2 MB, value_counts
#                               3.7 ms, == "a.b.c.d" 0.8 ms; pandas' default str (pyarrow) takes
#                               11 ms, 19 MB, 14 ms, 5.3 ms; object strings 12 ms, 8 MB of
#                               pointers, 36 ms, 37 ms; an Arrow dictionary 1 ms, 2 MB, 9.6 ms,
#                               9.4 ms. Categories are the used values, sorted, so the partitions
#                               of a capture concatenate (sorted union) to the same frame.
#   ports and small ints      nullable UInt8/UInt16/UInt32 (<NA> where the field does not apply)
#   frame, length, caplen,
#   interface                 int64 (never missing)
#   fragment                  object: None or the (more_fragments, offset_bytes) tuple of records()
#   payload                   pd.ArrowDtype(pa.binary()): one contiguous buffer per batch, no
#                               Python bytes object per row, and it pickles for Dask workers.
from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import _schema
from ._sources import _Replay, is_openable
from .errors import missing_extra

if TYPE_CHECKING:
    import pandas as pd

    from .format import Span

__all__ = ["to_pandas", "columns_for", "empty_frame", "concat_frames", "build_columns", "DEFAULT_COLUMNS",
           "EXTRA_COLUMNS"]

# The columns and their pandas types, from the one field table.
DEFAULT_COLUMNS = _schema.FRAME_DEFAULT
EXTRA_COLUMNS = _schema.FRAME_EXTRA
_PANDAS_DTYPES = {f.name: f.pandas for f in _schema.FIELDS}


def _require_pandas() -> Any:
    try:
        import numpy  # noqa: F401
        import pandas as pd
    except ImportError:
        raise missing_extra("pandas", "pandas") from None
    return pd


def _require_pyarrow() -> Any:
    """pyarrow, which the payload column is built on (part of the pandas extra)."""
    try:
        import pyarrow as pa
    except ImportError:
        raise missing_extra("pandas", "pyarrow") from None
    return pa


def columns_for(columns: Iterable[str] | None = None, payload: bool = False) -> list[str]:
    """The column names to_pandas gives for ``columns=`` and ``payload=``, in order.

    The seed's six columns always come first, then ``payload`` when asked, then each
    extra field named in ``columns`` (names of the six are accepted and not repeated).
    """
    names = list(DEFAULT_COLUMNS) + (["payload"] if payload else [])
    if columns is None:
        return names
    if isinstance(columns, str):
        columns = [columns]
    for c in columns:
        if c in names:
            continue
        if c not in EXTRA_COLUMNS:
            if c == "payload":
                raise ValueError("ask for the payload column with payload=True")
            raise ValueError(f"unknown column {c!r}; the extra columns are: {', '.join(EXTRA_COLUMNS)}")
        names.append(c)
    return names


def _protocols(protocol: str | Iterable[str] | None) -> set[str] | None:
    """The protocol names to keep, checked exactly as records() checks them."""
    if protocol is None:
        return None
    from ._protocols import NAMES
    from ._records import protocol_numbers

    return {NAMES[n] for n in protocol_numbers(protocol)}


def to_pandas(source: Any, *, protocol: str | Iterable[str] | None = None, payload: bool = False,
              filter: str | None = None, columns: Iterable[str] | None = None,
              storage_options: dict | None = None, span: Span | None = None,
              progress: bool = False) -> pd.DataFrame:
    """A capture as a DataFrame with one row per IP packet, built column by column.

    ``source`` is anything ``purepcap.open`` accepts (path, file object, ``"-"``, bytes,
    fsspec URL) or an iterable of Packets (an open or live capture). Columns are
    ``time, src_host, src_port, dst_host, dst_port, protocol`` (as intake-pcap), plus
    ``payload`` with ``payload=True``, plus the extra fields named in ``columns``
    (EXTRA_COLUMNS: frame, length, caplen, ip_version, ttl, ip_id, tcp_flags, tcp_seq,
    tcp_ack, tcp_window, icmp_type, icmp_code, vlan, eth_src, eth_dst, interface,
    fragment, ip_proto, ip_length; see ``purepcap.headers`` for their meanings).
    ``protocol`` keeps only the named protocol(s); ``filter`` is a pcap-filter
    expression. ``span`` (from ``purepcap.split_capture``) reads one byte range.
    Rows equal ``purepcap.records()`` with the same arguments, row for row.
    ``progress=True`` shows packets, bytes, rate and ETA on stderr (tqdm when installed).
    """
    _require_pandas()
    if payload:
        _require_pyarrow()
    (builder,) = build_columns(source, columns_for(columns, payload), protocol=protocol, filter=filter,
                               storage_options=storage_options, span=span, progress=progress)
    return _frame(builder)


def build_columns(source: Any, names: list[str], *, protocol: str | Iterable[str] | None = None,
                  filter: str | None = None, storage_options: dict | None = None, span: Span | None = None,
                  progress: Any = False, part_rows: int | None = None) -> Iterator[Any]:
    """The numpy columns of a capture's table (purepcap._columns.ColumnBuilder): one
    builder for the whole capture, or with ``part_rows`` one per part of at least that
    many rows (the last may be smaller), so that a caller can write each part and drop
    it (bounded memory). Needs numpy only: to_pandas and to_arrow wrap the columns."""
    from . import _columns
    from ._progress import progress_for

    protocols = _protocols(protocol)
    builder = _columns.ColumnBuilder(names, protocols)
    total = _size_of(source, span)
    given = 0
    with progress_for(progress, total) as show:
        for i, batch in enumerate(_source_batches(source, filter=filter, storage_options=storage_options,
                                                  span=span)):
            builder.add(batch)
            show.add(len(batch), int(batch.caplen.sum()) + 16 * len(batch))  # as pcap stores them
            if i == 0 and total and len(batch) and part_rows is None:
                # rows per byte of the first batch, times the capture's size: columns then
                # grow once instead of by steps (unused room costs no memory)
                used = int(batch.off[-1] + batch.caplen[-1])
                builder.reserve(int(builder.rows * total / max(used, 1) * 1.05) + 1024)
            if part_rows is not None and builder.rows >= part_rows:
                given += 1
                yield builder
                builder = _columns.ColumnBuilder(names, protocols)
        if builder.rows or not given:
            yield builder


def _size_of(source: Any, span: Span | None) -> int | None:
    """Bytes of an uncompressed local capture (or of its span), for estimating rows."""
    if span is not None:
        return span.stop - span.start
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and "://" in source):
        # Only a regular file may be looked into: a FIFO, /dev/stdin or <(...) path
        # would give its first bytes to us and nothing to the reader that opens it next.
        try:
            st = os.stat(source)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        with open(source, "rb", buffering=0) as f:  # compressed files hold more than their size says
            head = f.read(2)
        return None if head in (b"\x1f\x8b", b"BZ", b"\xfd7", b"\x28\xb5") else st.st_size
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    return None


def _source_batches(source: Any, *, filter: str | None, storage_options: dict | None, span: Span | None):
    from . import _batches
    from ._open import open as open_capture

    if not is_openable(source):  # an iterable of Packets (or of lists of them, live)
        packets = source
        if filter is not None:
            from .filter import offline_matcher

            match = offline_matcher(filter)
            packets = (p for p in _flatten(source) if match(p))
        yield from _batches.packet_batches(packets)
        return
    if filter is not None:
        with open_capture(source, filter=filter, storage_options=storage_options, span=span) as cap:
            yield from _batches.packet_batches(cap)
        return
    try:
        batches = _batches.pcap_batches(source, storage_options=storage_options, span=span)
    except _batches.NotFastPcap as e:  # pcapng, an old pcap version, or not a capture at all
        try:
            if span is not None or not hasattr(source, "read"):
                for c in e.closers:
                    c.close()
                cap = open_capture(source, storage_options=storage_options, span=span)
            else:  # a pipe cannot be opened again: replay what was read
                cap = open_capture(_Replay(e.head, e.stream, getattr(source, "name", "<stream>")))
            with cap:
                yield from _batches.packet_batches(cap)
        finally:
            for c in e.closers:
                c.close()
        return
    yield from batches


def _flatten(source: Iterable) -> Iterable:
    for p in source:
        if isinstance(p, list):
            yield from p
        else:
            yield p


def _frame(builder: Any) -> pd.DataFrame:
    """Wrap the builder's columns in pandas types. Each column's parts are released
    as soon as the column is joined, so memory peaks near parts + one column, not
    parts + whole frame."""
    import numpy as np
    import pandas as pd


    cols: dict[str, Any] = {}
    for name in builder.columns:
        parts = builder.parts.pop(name)
        field = _schema.BY_NAME[name]
        if field.pandas == "binary[pyarrow]":
            import pyarrow as pa

            cols[name] = pd.arrays.ArrowExtensionArray(pa.chunked_array(parts, type=pa.binary()))
        elif field.source in _schema.APP_SOURCES:  # sparse: (frame rows, values) per batch
            arr = np.empty(builder.rows, dtype=object)  # numpy fills object arrays with None
            for at, values in parts:
                arr[at] = values
            cols[name] = pd.Series(arr, dtype=object, copy=False)
        elif field.pandas == "object":
            arr = np.concatenate(parts) if parts else np.empty(0, dtype=object)
            # a Series keeps object: pandas 3 makes an object array of strings "str", None NaN
            cols[name] = pd.Series(arr, dtype=object, copy=False)
        elif field.pandas == "datetime64[ns]":
            cols[name] = _concat(parts, np.int64).view("M8[ns]")
        elif field.category is not None:
            table = builder.tables[field.category]
            cols[name] = _categorical(parts.finish(), table.names)
        elif field.nullable:
            values = _concat(parts, np.dtype(field.numpy))
            cols[name] = pd.arrays.IntegerArray(values, _concat(builder.masks.pop(name), bool))
        else:
            cols[name] = _concat(parts, np.dtype(field.numpy))
        del parts
    return pd.DataFrame(cols, columns=builder.columns, copy=False)


def _concat(parts: Any, dtype: Any) -> Any:
    """One array from a builder Column (taken over, not copied)."""
    arr = parts.finish()
    return arr if arr.dtype == dtype else arr.astype(dtype)


def _categorical(codes: Any, names: list[str]) -> Any:
    """A Categorical of only the used names, sorted, so that any split of a capture
    concatenates (with sorted unions) to the same column as reading it whole."""
    import pandas as pd

    codes, categories = used_sorted(codes, names)
    try:
        return pd.Categorical.from_codes(codes, categories=_string_index(categories), validate=False)
    except TypeError:  # pandas 2.0 has no validate= (it checks the codes: one more pass)
        return pd.Categorical.from_codes(codes, categories=_string_index(categories))


def used_sorted(codes: Any, names: list[str]) -> tuple[Any, list[str]]:
    """(codes, categories): the codes renumbered against only the used names, sorted
    (-1 stays missing), in the smallest code type pandas keeps. Renumbered in place, a
    slice at a time, so no second copy is made. numpy only (to_arrow uses it too)."""
    import numpy as np

    from ._categories import _code_type

    step = 1 << 16
    used = np.zeros(len(names) + 1, dtype=bool)  # index 0 is "missing"
    for i in range(0, len(codes), step):
        used[codes[i:i + step].astype(np.intp) + 1] = True
    used_at = np.flatnonzero(used[1:])
    kept = [names[i] for i in used_at.tolist()]
    order = sorted(range(len(kept)), key=kept.__getitem__)
    ctype = _code_type(len(kept))
    remap = np.full(len(names) + 1, -1, dtype=codes.dtype)
    remap[used_at[order] + 1] = np.arange(len(kept), dtype=codes.dtype)
    for i in range(0, len(codes), step):
        codes[i:i + step] = remap[codes[i:i + step].astype(np.intp) + 1]
    if codes.dtype != ctype:
        codes = codes.astype(ctype)
    return codes, [kept[i] for i in order]


def _string_index(names: list[str]) -> Any:
    """Categories as pandas' default string type (str in pandas 3, object before),
    the type pandas itself gives when it unites categories."""
    import pandas as pd

    return pd.Index(names) if names else pd.Index(["-"])[:0]


def empty_frame(columns: Iterable[str] | None = None, payload: bool = False) -> pd.DataFrame:
    """A DataFrame with no rows and exactly the column types to_pandas gives."""
    pd = _require_pandas()
    import numpy as np

    if payload:
        _require_pyarrow()
    cols: dict[str, Any] = {}
    names = columns_for(columns, payload)
    for name in names:
        dtype = _PANDAS_DTYPES[name]
        if dtype == "datetime64[ns]":
            cols[name] = np.zeros(0, dtype="M8[ns]")
        elif dtype == "binary[pyarrow]":
            import pyarrow as pa

            cols[name] = pd.array([], dtype=pd.ArrowDtype(pa.binary()))
        elif dtype == "category":
            cols[name] = pd.Categorical.from_codes([], categories=_string_index([]))
        elif dtype == "object":
            cols[name] = pd.Series(np.zeros(0, dtype=object), dtype=object)
        else:
            cols[name] = pd.array([], dtype=dtype)
    return pd.DataFrame(cols, columns=names)


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate to_pandas frames, uniting category columns (sorted) instead of
    letting pandas fall back to object columns; the index runs 0..n-1."""
    pd = _require_pandas()
    from pandas.api.types import union_categoricals

    # empty partitions add no rows, and pandas 2.1-2.x warns (FutureWarning) when an
    # empty frame's categories differ from the others'
    frames = [f for f in frames if len(f)] or frames[:1]
    if len(frames) == 1:
        return frames[0]
    out = pd.concat(frames, ignore_index=True)
    for name in frames[0].columns:
        if isinstance(frames[0][name].dtype, pd.CategoricalDtype):
            out[name] = union_categoricals([f[name] for f in frames], sort_categories=True, ignore_order=True)
    return out
