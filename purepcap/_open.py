# purepcap.open: a capture file as an iterator of Packets, optionally filtered by a
# pcap-filter expression. It sits downstream of both the container readers and the
# filter compiler and only joins them; neither knows about the other: the compiled
# filter's per-link-type test is handed to the Capture (Capture.keep_only), which
# runs it on a packet's bytes before it makes a Packet of them.
from __future__ import annotations

from ._sources import Source
from .format import Capture, Span

__all__ = ["open", "filtered"]


def filtered(capture: Capture, expression: str) -> Capture:
    """``capture``, delivering only the packets the pcap-filter ``expression`` accepts
    (frame numbers stay those of the whole capture); call it before iterating."""
    from .filter import offline_matcher  # the compiler is only loaded when a filter is used

    capture.keep_only(offline_matcher(expression).test_for)
    capture.filter = expression
    return capture


def open(source: Source, *, filter: str | None = None, errors: str | None = None, strict: bool = True,
         storage_options: dict | None = None, span: Span | None = None) -> Capture:
    """Open a capture for reading: a context manager and an iterator of Packets.

    ``source`` is a path, a PathLike, a binary file object (a pipe will do), ``"-"``
    for standard input, bytes or a memoryview, or an fsspec URL. gzip, bzip2, xz and
    zstd (with the ``zstd`` extra) are undone by their magic bytes. ``filter`` is a
    pcap-filter expression (tcpdump syntax).

    ``errors`` says what damage in the capture (cut short, a lying length) does, after
    every good packet before it was delivered: "raise" (the default) raises the
    PcapError, "warn" issues a PcapWarning naming the file, offset and frame and ends the
    iteration (a damaged pcapng block that can be stepped over is skipped instead),
    "ignore" does the same silently. ``strict=False`` is the older spelling of "warn".
    """
    capture = Capture(source, strict=strict, errors=errors, storage_options=storage_options, span=span)
    if filter is None:
        return capture
    try:
        return filtered(capture, filter)
    except BaseException:
        capture.close()
        raise
