# purepcap.open: a capture file as an iterator of Packets, optionally filtered by a
# pcap-filter expression. It sits downstream of both the container readers and the
# filter compiler and only joins them; neither knows about the other.
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._sources import Source
from .format import Capture, Packet, Span

__all__ = ["open", "FilteredCapture"]


class FilteredCapture:
    """A Capture whose iteration yields only the packets a filter accepts.

    Frame numbers stay those of the whole capture. Every attribute of the underlying
    Capture (format, interfaces, ...) is available here too.
    """

    def __init__(self, capture: Capture, expression: str) -> None:
        from .filter import offline_matcher  # the compiler is only loaded when a filter is used

        self._capture = capture
        self.filter = expression
        self._matcher = offline_matcher(expression)
        self._gen = self._iter()

    def _iter(self) -> Iterator[Packet]:
        # the reader tests each packet's bytes before it makes a Packet of them, and its
        # own generator is handed out: no second loop, no Packet for a rejection
        self._capture.keep_only(self._matcher.test_for)
        return iter(self._capture)

    def __iter__(self) -> Iterator[Packet]:
        return self._gen

    def __next__(self) -> Packet:
        return next(self._gen)

    def __repr__(self) -> str:
        return f"{repr(self._capture)[:-1]}, filter {self.filter!r}>"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._capture, name)

    def __enter__(self) -> FilteredCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._gen.close()
        self._capture.close()


def open(source: Source, *, filter: str | None = None, strict: bool = True,
         storage_options: dict | None = None, span: Span | None = None) -> Capture | FilteredCapture:
    """Open a capture for reading: a context manager and an iterator of Packets.

    ``source`` is a path, a PathLike, a binary file object (a pipe will do), ``"-"``
    for standard input, bytes or a memoryview, or an fsspec URL. gzip, bzip2, xz and
    zstd (with the ``zstd`` extra) are undone by their magic bytes. ``filter`` is a
    pcap-filter expression (tcpdump syntax). With ``strict=False`` damage ends the
    iteration with a PcapWarning instead of a PcapError.
    """
    capture = Capture(source, strict=strict, storage_options=storage_options, span=span)
    if filter is None:
        return capture
    try:
        return FilteredCapture(capture, filter)
    except BaseException:
        capture.close()
        raise
