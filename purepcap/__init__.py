# purepcap: packet captures as data, in pure Python with no runtime dependency.
#
# The public surface is small and lives here; the work is done in one module per
# concern, and data flows one way through them:
#   _sources (bytes in) -> format (pcap/pcapng containers) -> headers (decoding)
#   -> filter (pcap-filter expressions) -> records / dataframe / cli (sinks).
# Optional extras (pandas, intake, dask) are imported only when first used.
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import linktypes

# records() lives in the private module _records, so the name purepcap.records is
# only ever the function (a public module of that name used to shadow it); flows()
# lives in _flows for the same reason (resolved on first use, below).
from ._open import open
from ._records import records
from .errors import (
    CaptureError,
    DamagedError,
    FilterError,
    NotACaptureError,
    PcapError,
    PcapWarning,
    TruncatedError,
    UnsupportedFormatError,
)
from .format import Capture, Interface, Packet, PcapngWriter, PcapWriter, Span, open_writer, split_capture

__version__ = "0.1.0"

__all__ = [
    "open", "records", "to_pandas", "to_arrow", "to_polars", "flows", "flows_to_pandas",
    "flows_to_arrow", "flows_to_polars", "Packet", "Interface",
    "Capture", "Span", "split_capture",
    "PcapWriter", "PcapngWriter", "open_writer", "linktypes",
    "PcapError", "NotACaptureError", "UnsupportedFormatError", "TruncatedError", "DamagedError",
    "FilterError", "CaptureError", "PcapWarning",
]

# Names resolved on first use, so that `import purepcap` stays cheap and never pulls
# in an optional dependency.
_LAZY = {
    "to_pandas": ("purepcap.dataframe", "to_pandas"),
    "flows": ("purepcap._flows", "flows"),
    "flows_to_pandas": ("purepcap._flowframe", "flows_to_pandas"),
    "to_arrow": ("purepcap.arrow", "to_arrow"),
    "to_polars": ("purepcap.arrow", "to_polars"),
    "flows_to_arrow": ("purepcap.arrow", "flows_to_arrow"),
    "flows_to_polars": ("purepcap.arrow", "flows_to_polars"),
}

if TYPE_CHECKING:
    from ._flowframe import flows_to_pandas
    from ._flows import flows
    from .arrow import flows_to_arrow, flows_to_polars, to_arrow, to_polars
    from .dataframe import to_pandas


# Submodules reachable as attributes (purepcap.live.capture, purepcap.build.ipv4, ...)
# without an import of their own; `strategies` needs the hypothesis extra.
_SUBMODULES = frozenset(("build", "filter", "headers", "live", "strategies", "format", "dataframe",
                         "arrow", "intake"))


# what the module's own imports put in its namespace, and no user wants to see
_PLUMBING = frozenset(("Any", "TYPE_CHECKING", "annotations"))


def __dir__() -> list[str]:
    """The public surface (lazy names and submodules included), without the plumbing."""
    return sorted((set(globals()) - _PLUMBING) | set(_LAZY) | _SUBMODULES)


def __getattr__(name: str) -> Any:
    import importlib
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"purepcap.{name}")
    raise AttributeError(f"module 'purepcap' has no attribute {name!r}")
