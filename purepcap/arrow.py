# purepcap.to_arrow and purepcap.to_polars: a capture as an Arrow table (or a Polars
# DataFrame), one row per IP packet, the rows of to_pandas().
#
# Strategy: the numpy columns the DataFrame is built from (purepcap.dataframe's
# build_columns) are handed to Arrow as buffers, without pandas: int64 nanoseconds
# viewed as timestamp[ns, UTC] (null where pandas has NaT), category codes as the
# indices of a dictionary of strings (the used names, sorted, as pandas' categories),
# nullable integers as values plus a validity mask, payloads as the Arrow binary
# arrays the builder already made. Every column's Arrow type is fixed by its field
# (arrow_schema), never by the data or by what is installed, so that files converted
# anywhere read back as one Parquet dataset. pyarrow and numpy are the only needs
# (extra `arrow`; `polars` for to_polars). Fixed-width columns and the dictionaries'
# names are wrapped with Array.from_buffers, not pa.array: pyarrow's first pa.array()
# imports pandas when it is installed (to test for pandas objects), which would cost
# to_arrow() half a second of pandas import it never uses.
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import errors_policy, missing_extra

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from .format import Span

__all__ = ["to_arrow", "to_polars", "flows_to_arrow", "flows_to_polars", "arrow_schema", "flow_arrow_schema",
           "arrow_tables", "ROW_GROUP_ROWS"]

# Rows per part when a capture is converted in parts (purepcap convert's Parquet row
# groups): about 30 MB of the default columns, so memory stays bounded by a part;
# with payloads an eighth of that many rows.
ROW_GROUP_ROWS = 1 << 20

# Columns of Python objects (pandas "object") take their Arrow type from what the schema
# says each value is (Field.value): tuples become structs or lists, keeping their shape.
_FRAGMENT = ("more_fragments", "offset")  # records()' (more_fragments, offset_bytes) tuple


def _require_pyarrow() -> Any:
    try:
        import numpy  # noqa: F401
        import pyarrow as pa
    except ImportError:
        raise missing_extra("arrow", "pyarrow") from None
    return pa


def _require_polars() -> Any:
    try:
        import polars as pl
    except ImportError:
        raise missing_extra("polars", "polars") from None
    return pl


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of column ``name``, from its field in the schema table: the same
    for every capture, and whatever else is installed."""
    pa = _require_pyarrow()
    from . import _schema

    field = _schema.BY_NAME[name]
    if field.pandas == "datetime64[ns]":
        return pa.timestamp("ns", tz="UTC")
    if field.pandas == "binary[pyarrow]":
        return pa.binary()
    if field.category is not None:
        # int32 indices whatever the number of names, so every file has one schema
        return pa.dictionary(pa.int32(), pa.string())
    if field.pandas == "object":
        if field.value == "fragment":
            return pa.struct([pa.field(_FRAGMENT[0], pa.bool_()), pa.field(_FRAGMENT[1], pa.uint32())])
        if field.value == "list<str>":
            return pa.list_(pa.string())
        return pa.string() if field.value == "str" else pa.from_numpy_dtype(field.value)
    return pa.from_numpy_dtype(field.numpy)


def arrow_schema(columns: Iterable[str] | None = None, payload: bool = False) -> pa.Schema:
    """The schema to_arrow gives for ``columns=`` and ``payload=`` (the same whatever
    the capture holds): the columns of to_pandas, in its order."""
    pa = _require_pyarrow()
    from .dataframe import columns_for

    return pa.schema([pa.field(name, arrow_type(name)) for name in columns_for(columns, payload)])


def to_arrow(source: Any, *, protocol: str | Iterable[str] | None = None, payload: bool = False,
             filter: str | None = None, columns: Iterable[str] | None = None,
             storage_options: dict | None = None, span: Span | None = None,
             progress: bool = False, errors: str = "warn", reassemble: bool = False) -> pa.Table:
    """A capture as a pyarrow Table with one row per IP packet: to_pandas' rows and
    columns (same arguments), typed for Arrow: ``time`` timestamp[ns, UTC], hosts,
    protocol and MACs dictionary<int32, string>, ports and small integers unsigned with
    nulls, ``payload`` binary, ``fragment`` struct<more_fragments, offset>. ``errors``
    ("warn", the default, "ignore" or "raise") as in to_pandas. ``reassemble=True``: the
    application columns of split messages, as to_pandas.
    """
    (table,) = arrow_tables(source, protocol=protocol, payload=payload, filter=filter, columns=columns,
                            storage_options=storage_options, span=span, progress=progress,
                            errors=errors_policy(errors), reassemble=reassemble)
    return table


def arrow_tables(source: Any, *, protocol: str | Iterable[str] | None = None, payload: bool = False,
                 filter: str | None = None, columns: Iterable[str] | None = None,
                 storage_options: dict | None = None, span: Span | None = None, progress: Any = False,
                 part_rows: int | None = None, errors: str = "raise", reassemble: bool = False) -> Iterator[pa.Table]:
    """to_arrow's table, or with ``part_rows`` the same rows as a series of tables of
    about that many rows each (one schema), built one at a time: memory holds one part."""
    _require_pyarrow()
    from .dataframe import build_columns, columns_for

    names = columns_for(columns, payload)
    schema = arrow_schema(columns, payload)
    for builder in build_columns(source, names, protocol=protocol, filter=filter,
                                 storage_options=storage_options, span=span, progress=progress,
                                 part_rows=part_rows, errors=errors, reassemble=reassemble):
        yield _table(builder, schema)


def _table(builder: Any, schema: pa.Schema) -> pa.Table:
    """Wrap the builder's columns in Arrow arrays; each column's parts are released as
    soon as it is made, as the DataFrame's are."""
    import numpy as np
    import pyarrow as pa

    from . import _schema
    from ._batches import NAT
    from .dataframe import used_sorted

    arrays: list[Any] = []
    for column in schema:
        name, kind = column.name, column.type
        field = _schema.BY_NAME[name]
        parts = builder.parts.pop(name)
        if field.pandas == "binary[pyarrow]":
            arrays.append(pa.chunked_array(parts, type=kind))
        elif field.source in _schema.APP_SOURCES:  # sparse: (frame rows, values) per batch
            column = np.empty(builder.rows, dtype=object)  # numpy fills object arrays with None
            for at, found in parts:
                column[at] = found
            arrays.append(pa.array(column.tolist(), kind))
        elif field.pandas == "object":
            values = [v for part in parts for v in part]
            if name == "fragment":
                more, offset = _FRAGMENT
                values = [None if f is None else {more: f[0], offset: f[1]} for f in values]
            arrays.append(pa.array(values, kind))
        elif field.pandas == "datetime64[ns]":
            ns = parts.finish().astype(np.int64, copy=False)
            arrays.append(_fixed_width(ns, kind, ns == NAT))
        elif field.category is not None:
            codes, names = used_sorted(parts.finish(), builder.tables[field.category].names)
            indices = codes.astype(np.int32)
            arrays.append(pa.DictionaryArray.from_arrays(_fixed_width(indices, pa.int32(), indices < 0),
                                                         _strings(names)))
        elif field.nullable:
            values = parts.finish()
            missing = builder.masks.pop(name).finish().astype(bool, copy=False)
            arrays.append(_fixed_width(values, kind, missing))
        else:
            arrays.append(_fixed_width(parts.finish(), kind))
        del parts
    return pa.Table.from_arrays(arrays, schema=schema)


def _fixed_width(values: Any, kind: pa.DataType, missing: Any = None) -> pa.Array:
    """A numpy integer column as an Arrow array of ``kind``, an integer or timestamp
    type of the same width (the schema's numpy type), null where ``missing``; its
    buffer is shared, not copied."""
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if values.dtype.itemsize * 8 != kind.bit_width:
        raise TypeError(f"a {values.dtype} column is not Arrow {kind}")
    validity = None
    nulls = 0
    if missing is not None and missing.any():
        nulls = int(missing.sum())
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(kind, len(values), [validity, pa.py_buffer(values)], null_count=nulls)


def _strings(names: list[str | None]) -> pa.Array:
    """A list of str (or None: null) as an Arrow string array (int32 offsets into their
    UTF-8 bytes)."""
    import numpy as np
    import pyarrow as pa

    encoded = [b"" if name is None else name.encode() for name in names]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    missing = np.fromiter((name is None for name in names), dtype=bool, count=len(names))
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if missing.any() else None
    return pa.Array.from_buffers(pa.string(), len(encoded), [validity, pa.py_buffer(offsets),
                                                             pa.py_buffer(b"".join(encoded))],
                                 null_count=int(missing.sum()))


def to_polars(source: Any, *, protocol: str | Iterable[str] | None = None, payload: bool = False,
              filter: str | None = None, columns: Iterable[str] | None = None,
              storage_options: dict | None = None, span: Span | None = None,
              progress: bool = False, errors: str = "warn", reassemble: bool = False) -> pl.DataFrame:
    """A capture as a Polars DataFrame: to_arrow's table (same arguments) handed to
    Polars without a copy where the types allow (extra `polars`). Hosts, protocol and
    MACs are Categorical, ``time`` Datetime("ns", "UTC"), ports UInt16 with nulls."""
    errors = errors_policy(errors)
    pl = _require_polars()
    return pl.from_arrow(to_arrow(source, protocol=protocol, payload=payload, filter=filter, columns=columns,
                                  storage_options=storage_options, span=span, progress=progress,
                                  errors=errors, reassemble=reassemble))


# -- flows ------------------------------------------------------------------------------------
def flow_arrow_schema(stats: bool = False, fields: Iterable[str] = ()) -> pa.Schema:
    """The schema flows_to_arrow gives for ``stats=`` and ``fields=`` (the same whatever
    the capture holds): flows_to_pandas' columns, in its order. Hosts, protocol,
    conn_state and end_reason dictionary<int32, string>; ``start``/``end``
    timestamp[ns, UTC], ``duration`` duration[ns]; ports, VLAN, TCP flags and frames
    typed as the packet fields they come from (uint16 with nulls, int64); counts int64;
    statistics float64 or int64; ``fields=`` values as to_arrow types them
    (``server_name`` string)."""
    pa = _require_pyarrow()
    from . import _flows, _schema
    from ._flowframe import CATEGORIES, FIELD_OF
    from ._flows import flow_keys

    out = []
    for k in flow_keys(stats, tuple(fields or ())):
        if k in ("start", "end"):
            out.append(pa.field(k, pa.timestamp("ns", tz="UTC")))
            if k == "end":
                out.append(pa.field("duration", pa.duration("ns")))
        elif k in CATEGORIES:
            out.append(pa.field(k, pa.dictionary(pa.int32(), pa.string())))
        elif k in FIELD_OF:
            out.append(pa.field(k, arrow_type(FIELD_OF[k])))
        elif k in _flows.STATS_KEYS:
            out.append(pa.field(k, pa.float64() if "mean" in k or "stddev" in k else pa.int64()))
        elif k in _flows.FLOW_KEYS:  # the counts, and community_id
            out.append(pa.field(k, pa.string() if k == "community_id" else pa.int64()))
        else:
            out.append(pa.field(k, arrow_type(k) if k in _schema.BY_NAME else pa.string()))
    return pa.schema(out)


def flows_to_arrow(source: Any, **kwargs: Any) -> pa.Table:
    """The flows of ``source`` as a pyarrow Table: flows_to_pandas' rows and columns
    (same arguments, purepcap._flowframe.flow_columns'), typed by
    :func:`flow_arrow_schema`, built from the same numpy columns without pandas."""
    _require_pyarrow()
    from . import _flows
    from ._flowframe import flow_columns

    cols = flow_columns(source, **kwargs)
    stats = _flows.STATS_KEYS[0] in cols
    fields = [k for k in cols if k not in _flows.FLOW_KEYS and k not in _flows.STATS_KEYS]
    return _flow_table(cols, flow_arrow_schema(stats, fields))


def _flow_table(cols: dict[str, Any], schema: pa.Schema) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    from ._flowframe import NAT, NULLABLE

    arrays: list[Any] = []
    for column in schema:
        name, kind = column.name, column.type
        if name == "duration":
            start, end = cols["start"], cols["end"]
            arrays.append(_fixed_width(end - start, kind, (start == NAT) | (end == NAT)))
            continue
        values = cols[name]
        if pa.types.is_timestamp(kind):
            arrays.append(_fixed_width(values, kind, values == NAT))
        elif pa.types.is_dictionary(kind):
            names, codes = np.unique(values.astype(str), return_inverse=True) if len(values) else ([], values)
            arrays.append(pa.DictionaryArray.from_arrays(
                _fixed_width(np.asarray(codes, dtype=np.int32).reshape(-1), pa.int32()), _strings(list(names))))
        elif name in NULLABLE:  # -1 is None
            arrays.append(_fixed_width(values.astype(kind.to_pandas_dtype()), kind, values < 0))
        elif values.dtype != object:
            arrays.append(_fixed_width(values.astype(kind.to_pandas_dtype(), copy=False), kind))
        elif name == "community_id":  # from buffers: pa.array() would import pandas
            arrays.append(_strings(values.tolist()))
        else:
            arrays.append(pa.array(values.tolist(), kind))
    return pa.Table.from_arrays(arrays, schema=schema)


def flows_to_polars(source: Any, **kwargs: Any) -> pl.DataFrame:
    """The flows of ``source`` as a Polars DataFrame: flows_to_arrow's table (same
    arguments) handed to Polars (extra `polars`): hosts, protocol, conn_state and
    end_reason Categorical, ``start``/``end`` Datetime("ns", "UTC"), ``duration``
    Duration("ns"), ports UInt16 with nulls."""
    pl = _require_polars()
    return pl.from_arrow(flows_to_arrow(source, **kwargs))
