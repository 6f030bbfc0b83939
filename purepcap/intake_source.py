# The Intake plugin: `intake.open_pcap(...)` and `driver: pcap` in catalogs, as the
# intake-pcap seed offered them, on intake 2's old-style DataSource.
#
# Strategy: a source is a list of partitions, each a capture file or a byte range of
# one (purepcap.split_capture cuts big uncompressed local files at record
# boundaries, reading only record headers). Every partition is read by
# purepcap.to_pandas on its own, so read_partition(i), read(), read_chunked() and
# to_dask() (one task per partition, each opening the file and reading only its
# byte range) all give the same rows. With urlpath=None and interface=..., each
# read() takes the next `chunksize` packets from a live capture instead. With
# flows=True the rows are flows (purepcap.flows_to_pandas) and every partition is a
# whole file, never a byte range: a flow's packets may be anywhere in its file, so
# cutting a file would cut flows in two.
# intake, pandas and dask are imported only when used (extras `intake`, `dask`).
from __future__ import annotations

import os
import re
from decimal import Decimal
from typing import Any

from . import __version__, _schema
from .errors import errors_policy, missing_extra

try:
    from intake.source.base import DataSource, Schema
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_extra("intake", "intake") from _exc

__all__ = ["PcapSource", "DEFAULT_PARTITION_SIZE"]

DEFAULT_PARTITION_SIZE = 64 * 1024 * 1024  # bytes of capture per partition
DEFAULT_LIVE_CHUNKSIZE = 100  # packets per read() of a live source, as the seed


def _parse_size(value: int | str | None) -> int:
    """Bytes from an int or a string like '128MB', '1 GiB', '500k'."""
    if value is None:
        return DEFAULT_PARTITION_SIZE
    if isinstance(value, bool):
        raise ValueError(f"partition_size must be a number of bytes, not {value!r}")
    if isinstance(value, int):
        size = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*", str(value), re.IGNORECASE)
        if not m:
            raise ValueError(f"partition_size {value!r} is not a size like 64MB or 1GiB")
        unit = (1024 if m.group(3) else 1000) ** "_kmgt".index(m.group(2).lower() or "_")
        size = int(Decimal(m.group(1)) * unit)  # exact: a float of 400 digits is inf
    if size < 1:
        raise ValueError(f"partition_size must be at least one byte, not {value!r}")
    return size


class PcapSource(DataSource):
    """Packet captures as DataFrames: one row per IP packet.

    Columns ``time, src_host, src_port, dst_host, dst_port, protocol`` (+ ``payload``
    with ``payload=True``, + extra fields named in ``columns``), typed as
    :func:`purepcap.to_pandas` types them.

    Parameters
    ----------
    urlpath: a path, a glob, a list of paths, or any fsspec URL; one partition per
        file, in sorted order, and big uncompressed local files are cut into several
        partitions of about ``partition_size`` bytes. None for a live capture.
    interface: the device to capture from when ``urlpath`` is None (e.g. "eth0").
    chunksize: packets per ``read()`` of a live capture (default 100).
    protocol: keep only this protocol, or these ("tcp", ("tcp", "udp"), ...).
    payload: add the payload bytes.
    filter: a pcap-filter expression (tcpdump syntax), e.g. "tcp port 80".
    storage_options: passed to fsspec for remote URLs.
    metadata: passed to intake.
    partition_size: bytes per partition of a big file (int, or "128MB"); default 64 MiB.
    columns: extra fields to add (ttl, vlan, tcp_flags, eth_src, frame, ...).
    flows: True for one row per flow instead of per packet (purepcap.flows_to_pandas;
        one partition per file), or a dict of its options (idle_timeout,
        active_timeout, stats).
    errors: what damage in a capture (cut short, a lying length) does, as in
        purepcap.to_pandas: "warn" (default: keep every good packet's row, one
        PcapWarning naming the file, offset and frame), "ignore" (the same, silently)
        or "raise" (the PcapError instead of the table). Each partition reads on to its
        own damage, so under "warn" the other files (partitions) are read whole.
    reassemble: True to join the TCP segments of split TLS hellos and HTTP request
        headers for the application columns (purepcap.to_pandas(reassemble=True)).
        A message may run on past any byte range, so each file is then one partition;
        a live capture joins the segments within each chunk only.
    """

    name = "pcap"
    version = __version__
    container = "dataframe"
    partition_access = True

    def __init__(self, urlpath: Any, interface: str | None = None, chunksize: int | None = None,
                 protocol: Any = None, payload: bool = False, filter: str | None = None,
                 storage_options: dict | None = None, metadata: dict | None = None,
                 partition_size: int | str | None = None, columns: Any = None, flows: Any = False,
                 errors: str = "warn", reassemble: bool = False) -> None:
        if urlpath is None and interface is None:
            raise ValueError("PcapSource needs a urlpath (file, glob, list, URL) or an interface "
                             "to capture from")
        if chunksize is not None and (isinstance(chunksize, bool) or not isinstance(chunksize, int)
                                      or chunksize < 1):
            raise ValueError(f"chunksize must be a positive number of packets, not {chunksize!r}")
        self.urlpath = urlpath
        self.interface = interface
        self.live = urlpath is None
        self.chunksize = chunksize if chunksize is not None else (DEFAULT_LIVE_CHUNKSIZE if self.live else None)
        self.protocol = protocol
        self.payload = bool(payload)
        self.filter = filter
        self.partition_size = _parse_size(partition_size)
        self.columns = columns
        self.flows = _flow_options(flows, urlpath, payload, columns)
        self.errors = errors_policy(errors)
        # (only application columns are reassembled: without them nothing changes)
        self.reassemble = bool(reassemble) and bool(set(_schema.APPLICATION) & set(
            [columns] if isinstance(columns, str) else columns or ()))
        self._parts: list[tuple[str, Any]] | None = None
        self._capture: Any = None
        super().__init__(storage_options=storage_options, metadata=metadata)
        self.storage_options = storage_options or {}
        # checked now, so a typo fails when the source is made, not when it is read
        from .dataframe import _protocols, columns_for

        self._names = columns_for(columns, self.payload)
        try:
            _protocols(protocol)
        except ImportError:  # pragma: no cover - headers is part of the core
            pass

    # -- what the data is ---------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        if self.flows is not None:
            return {"protocol": self.protocol, "filter": self.filter, "flows": self.flows,
                    "storage_options": self.storage_options or None, "errors": self.errors}
        options = {"protocol": self.protocol, "payload": self.payload, "filter": self.filter,
                   "columns": self.columns, "storage_options": self.storage_options or None,
                   "errors": self.errors}
        if self.reassemble:
            options["reassemble"] = True
        return options

    def _meta(self) -> Any:
        from .dataframe import empty_frame

        if self.flows is not None:
            from ._flowframe import empty_flow_frame

            return empty_flow_frame(bool(self.flows.get("stats")))

        return empty_frame(self.columns, self.payload)

    def _get_schema(self) -> Schema:
        meta = self._meta()
        if self.live:
            self._parts = []
            nparts = 1
        else:
            # flows, reassembly: a whole file per partition (no flow or message is cut at a
            # byte range)
            whole = self.flows is not None or self.reassemble
            self._parts = _partitions(self.urlpath, self.storage_options,
                                      1 << 62 if whole else self.partition_size)
            nparts = len(self._parts)
        return Schema(datashape=None, dtype={c: str(t) for c, t in meta.dtypes.items()},
                      shape=(None, len(meta.columns)), npartitions=nparts,
                      extra_metadata={"partitions": [_describe(p) for p in self._parts]})

    # -- reading ------------------------------------------------------------------------
    def _get_partition(self, i: int) -> Any:
        if self.live:
            return self._read_live()
        return read_partition(self._parts[i], self._options())

    def read(self) -> Any:
        """All the data as one DataFrame (a live source: the next ``chunksize`` packets)."""
        self._load_metadata()
        if self.live:
            return self._read_live()
        from .dataframe import concat_frames

        frames = [self._get_partition(i) for i in range(self.npartitions)]
        return concat_frames(frames) if frames else self._meta()

    def read_chunked(self) -> Any:
        """One DataFrame per partition, in order (a live source: chunk after chunk,
        until the capture ends)."""
        self._load_metadata()
        if self.live:
            while True:
                packets = self._live_packets()
                if not packets:
                    return
                yield self._live_frame(packets)
        for i in range(self.npartitions):
            yield self._get_partition(i)

    def to_dask(self) -> Any:
        """A dask DataFrame with one task per partition; each task opens its file and
        reads only its own byte range, so it runs on any worker that can see the files."""
        if self.live:
            raise ValueError("a live capture has no end, so it cannot be a dask DataFrame; "
                             "use read() or read_chunked()")
        try:
            import dask
            import dask.dataframe as dd
            from dask.dataframe.utils import clear_known_categories
        except ImportError:
            raise missing_extra("dask", "dask[dataframe]") from None
        self._load_metadata()
        meta = clear_known_categories(self._meta())
        # Dask would turn object columns into strings: `fragment`'s and the application
        # fields' tuples, and strings whose None must stay None; keep to_pandas' types
        with dask.config.set({"dataframe.convert-string": False}):
            if not self._parts:  # no files: the empty frame read() gives (from_map needs one)
                return dd.from_pandas(self._meta(), npartitions=1)
            return dd.from_map(_PartitionReader(self._options()), self._parts, meta=meta,
                               label="read-pcap", enforce_metadata=False)

    def _read_live(self) -> Any:
        return self._live_frame(self._live_packets())

    def _live_packets(self) -> list:
        if self._capture is None:
            from .live import capture

            # the kernel runs the filter; protocol= is applied to the decoded rows
            self._capture = capture(self.interface, chunksize=self.chunksize, filter=self.filter)
        return self._capture.next_chunk()

    def _live_frame(self, packets: list) -> Any:
        from .dataframe import to_pandas

        return to_pandas(packets, protocol=self.protocol, payload=self.payload, columns=self.columns,
                         reassemble=self.reassemble)

    def _close(self) -> None:
        # forget everything; the next read opens and discovers again
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        self._parts = None
        self._schema = None
        self.npartitions = 0


# -- partitions -----------------------------------------------------------------------------
def _partitions(urlpath: Any, storage_options: dict | None, partition_size: int) -> list[tuple[str, Any]]:
    """(path or URL, Span or None) for each partition, files sorted, big files split."""
    from .errors import PcapError
    from .format import split_capture

    paths = _expand(urlpath, storage_options)
    parts: list[tuple[str, Any]] = []
    for path in paths:
        if "://" not in path and os.path.isfile(path) and os.path.getsize(path) > partition_size:
            try:
                # an empty span is kept: its leading blocks may hold the damage to report
                spans = split_capture(path, partition_size)
            except (PcapError, OSError):
                spans = []  # compressed or damaged: read whole, and let the reader report it
            if len(spans) > 1:
                parts.extend((path, s) for s in spans)
                continue
        parts.append((path, None))
    return parts


def _expand(urlpath: Any, storage_options: dict | None) -> list[str]:
    """Sorted file list from a path, glob, list or fsspec URL."""
    items = [urlpath] if isinstance(urlpath, (str, os.PathLike)) else list(urlpath)
    out: list[str] = []
    for item in items:
        item = os.fspath(item)
        if "://" in item and not item.startswith("file://"):
            try:
                import fsspec
            except ImportError:
                raise missing_extra("fsspec", "fsspec") from None
            fs, _, found = fsspec.core.get_fs_token_paths(item, storage_options=storage_options or {})
            if not found:
                raise FileNotFoundError(f"no capture files match {item}")
            out.extend(sorted(fs.unstrip_protocol(p) for p in found))
            continue
        if item.startswith("file://"):
            item = item[len("file://"):]
        item = os.path.expanduser(item)
        if any(ch in item for ch in "*?["):
            import glob

            found = sorted(glob.glob(item))
            if not found:
                raise FileNotFoundError(f"no capture files match {item}")
            out.extend(found)
        else:
            if not os.path.exists(item):
                raise FileNotFoundError(f"capture file not found: {item}")
            out.append(item)
    return out if isinstance(urlpath, (str, os.PathLike)) else sorted(out)


def _describe(part: tuple[str, Any]) -> dict[str, Any]:
    path, span = part
    if span is None:
        return {"path": path}
    return {"path": path, "start": span.start, "stop": span.stop, "first_frame": span.first_frame}


def read_partition(part: tuple[str, Any], options: dict[str, Any]) -> Any:
    """One partition as a DataFrame: a whole file, or the byte range of a Span."""
    path, span = part
    if "flows" in options:
        from ._flowframe import flows_to_pandas

        opts = dict(options)
        return flows_to_pandas(path, **opts.pop("flows"), **opts)
    from .dataframe import to_pandas

    return to_pandas(path, span=span, **options)


def _flow_options(flows: Any, urlpath: Any, payload: bool, columns: Any) -> dict[str, Any] | None:
    """flows= as flows_to_pandas' options, or None for packet rows."""
    if flows is False or flows is None:
        return None
    if urlpath is None:
        raise ValueError("flows=True needs capture files: a live capture's flows never end")
    if payload or columns:
        raise ValueError("payload and columns are packet columns; they do not apply with flows=True")
    opts = {} if flows is True else dict(flows)
    unknown = set(opts) - {"idle_timeout", "active_timeout", "stats"}
    if unknown:
        raise ValueError(f"unknown flows option(s) {sorted(unknown)}; use idle_timeout, active_timeout, stats")
    return opts


class _PartitionReader:
    """The function each Dask task calls: picklable, and light to ship to workers."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def __call__(self, part: tuple[str, Any]) -> Any:
        return read_partition(part, self.options)
