# Turns whatever the caller names as a capture (path, file object, "-", bytes,
# fsspec URL) into one readable binary stream, and undoes compression recognised
# by its magic bytes. Pipes cannot seek, so the magic is peeked by reading and
# then replayed in front of the stream instead of seeking back. A decompressor's own
# memory (xz's dictionary, zstd's window) is asked for by the stream's header, so it
# is bounded here: past XZ_MEMLIMIT / ZSTD_MAX_WINDOW the stream is refused.
from __future__ import annotations

import io
import os
import sys
from typing import IO, Any, BinaryIO, Union

from .errors import DamagedError, TruncatedError, UnsupportedFormatError, missing_extra

__all__ = ["Source", "open_source", "source_name", "XZ_MEMLIMIT", "ZSTD_MAX_WINDOW"]

# Union, not X | Y: this alias is evaluated at import, and Python 3.9 has no | on types
Source = Union[str, os.PathLike, BinaryIO, bytes, bytearray, memoryview]

_GZIP = b"\x1f\x8b"
_BZ2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"

# The most memory an xz decoder may use: a 64 MiB dictionary (xz -9, the largest
# preset) needs 65 MiB; the next dictionary size up, 96 MiB, is refused.
XZ_MEMLIMIT = 80 << 20
# The largest zstd window: 64 MiB, every level up to --ultra -21; --ultra -22 and
# --long (128 MiB and more) are refused.
ZSTD_MAX_WINDOW = 1 << 26


class _Replay(io.RawIOBase):
    """A read-only stream that gives ``head`` first and then the rest of ``raw``: the one
    way purepcap puts back bytes it peeked at on a stream that cannot seek. ``name``
    names it in error messages."""

    def __init__(self, head: bytes, raw: IO[bytes], name: str | None = None) -> None:
        self._head = head
        self._raw = raw
        if name is not None:
            self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(b))
        if not data:
            return 0
        n = len(data)
        b[:n] = data
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data = self._head + self._raw.read()
            self._head = b""
            return data
        if self._head:
            data = self._head[:size]
            self._head = self._head[size:]
            if len(data) < size:
                data += self._raw.read(size - len(data)) or b""
            return data
        return self._raw.read(size) or b""


class _Decompressed(io.RawIOBase):
    """A decompressing stream whose damage surfaces as PcapError, not as codec errors."""

    def __init__(self, inner: IO[bytes], compression: str) -> None:
        self._inner = inner
        self._compression = compression
        self._delivered = 0
        self._error: Exception | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        # One big read() that fails throws away everything it decompressed, so read in
        # read1() steps and hold a failure back until what came before it is handed out:
        # the packets before the damage are still delivered.
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        got = 0
        try:
            while size is None or size < 0 or got < size:
                piece = self._inner.read1(1 << 20 if size is None or size < 0 else size - got)
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
        except MemoryError:
            raise
        except _TooMuchMemory as e:
            at = self._delivered + got
            where = f" starting at decompressed offset {at}" if at else ""
            self._error = UnsupportedFormatError(
                f"{self._compression} stream{where} needs {e} to decode, more memory than purepcap "
                f"allows a decompressor", offset=at)
        except EOFError as e:
            at = self._delivered + got
            self._error = TruncatedError(f"{self._compression} stream cut short after {at} "
                                         f"decompressed bytes ({e})", offset=at)
        except Exception as e:  # zlib.error, lzma.LZMAError, OSError, zstandard.ZstdError...
            at = self._delivered + got
            self._error = DamagedError(f"{self._compression} stream damaged after {at} "
                                       f"decompressed bytes ({e})", offset=at)
        if self._error is not None and not parts:
            raise self._error
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._delivered += len(data)
        return data

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


class _TooMuchMemory(Exception):
    """A compressed stream whose header asks for more decoder memory than allowed."""


class _Xz:
    """xz streams decoded with a memory limit (lzma.LZMAFile takes none).

    Like LZMAFile, concatenated streams are read one after another and bytes after the
    last one that do not start a stream are ignored; unlike it, stream padding (zero
    bytes) between streams does not end the reading (xz -d reads on too), and a stream
    that needs more than XZ_MEMLIMIT is refused wherever it starts, not taken for
    trailing garbage.
    """

    _FEED = 64 * 1024

    def __init__(self, raw: IO[bytes], lzma: Any) -> None:
        self._raw = raw
        self._lzma = lzma
        self._d = self._new()
        self._end = False

    def _new(self) -> Any:
        return self._lzma.LZMADecompressor(format=self._lzma.FORMAT_XZ, memlimit=XZ_MEMLIMIT)

    def _decompress(self, data: bytes, size: int) -> bytes:
        try:
            return self._d.decompress(data, size)
        except self._lzma.LZMAError as e:
            # PyPy 3.9's lzma names LZMA_MEMLIMIT_ERROR only by its number, 6
            if "memory" in str(e).lower() or str(e).endswith("from liblzma: 6"):
                raise _TooMuchMemory(f"over {XZ_MEMLIMIT >> 20} MiB (a larger dictionary than xz -9 uses)") from None
            raise

    def read1(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 20
        while not self._end:
            if self._d.eof:  # a stream ended: what follows may be another one
                rest = (self._d.unused_data or self._raw.read(self._FEED)).lstrip(b"\0")
                while not rest:  # stream padding (zero bytes) may come between streams
                    more = self._raw.read(self._FEED)
                    if not more:
                        break
                    rest = more.lstrip(b"\0")
                if not rest:
                    self._end = True
                    break
                self._d = self._new()
                try:
                    out = self._decompress(rest, size)
                except self._lzma.LZMAError:
                    self._end = True  # not an xz stream: trailing bytes, ignored as LZMAFile does
                    break
            else:
                data = self._raw.read(self._FEED) if self._d.needs_input else b""
                if self._d.needs_input and not data:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                out = self._decompress(data, size)
            if out:
                return out
        return b""

    def read(self, size: int = -1) -> bytes:
        return self.read1(size)

    def close(self) -> None:
        pass


class _Zstd:
    """zstd frames decoded so that a cut-short stream is noticed.

    zstandard's stream_reader ends a truncated frame as if it were whole, which would
    make a cut .zst capture read "cleanly" with its tail silently gone. A decompressobj
    says whether its frame ended; it is fed 1 KiB at a time, so that one call's output
    stays bounded (a zstd block of 4 bytes can stand for 128 KiB: 32 MiB at most).
    """

    _FEED = 1024

    def __init__(self, raw: IO[bytes], zstandard: Any) -> None:
        self._raw = raw
        self._new = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj
        self._error = zstandard.ZstdError
        self._d = self._new()
        self._out = b""
        self._at = 0  # how much of _out was handed out already
        self._started = False  # input given to the current frame
        self._end = False

    def read1(self, size: int = -1) -> bytes:
        while len(self._out) == self._at and not self._end:
            if self._d.eof:  # a frame ended: what follows may be another one
                rest = self._d.unused_data
                self._d = self._new()
                self._started = False
                if rest:
                    self._started = True
                    self._out, self._at = self._decompress(rest[:self._FEED]), 0
                    if len(rest) > self._FEED:
                        self._raw = _Replay(rest[self._FEED:], self._raw)
                    continue
            data = self._raw.read(self._FEED)
            if not data:
                self._end = True
                if self._started and not self._d.eof:
                    raise EOFError("zstd frame cut short")
                break
            self._started = True
            self._out, self._at = self._decompress(data), 0
        if size is None or size < 0 or size >= len(self._out) - self._at:
            out = self._out[self._at:] if self._at else self._out
            self._out, self._at = b"", 0
        else:  # hand out a piece without re-copying the rest each time
            out = bytes(memoryview(self._out)[self._at:self._at + size])
            self._at += size
        return out

    def _decompress(self, data: bytes) -> bytes:
        try:
            return self._d.decompress(data)
        except self._error as e:
            if "too much memory" in str(e):
                raise _TooMuchMemory(f"a window over {ZSTD_MAX_WINDOW >> 20} MiB (zstd --long or --ultra -22)") from None
            raise

    def read(self, size: int = -1) -> bytes:
        return self.read1(size)

    def close(self) -> None:
        pass


def is_openable(source: object) -> bool:
    """A capture to open (path, ``"-"``, URL, bytes, binary file object), as opposed to
    an iterable of Packets (an open or a live capture) to take as it is. Captures
    deliberately have no read(), so a read() means a file object."""
    return isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(source, "read")


def is_url(source: object) -> bool:
    return isinstance(source, str) and "://" in source and not source.startswith("file://")


def source_name(source: object) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if source == "-":
        return "<stdin>"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", None) or "<stream>"


def _open_raw(source: Source, storage_options: dict | None) -> tuple[IO[bytes], bool]:
    """The undecoded stream, and whether we opened it (and so must close it)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), True
    if isinstance(source, str) and source == "-":
        return sys.stdin.buffer, False
    if is_url(source):
        try:
            import fsspec
        except ImportError:
            raise missing_extra("fsspec", "fsspec") from None
        return fsspec.open(source, "rb", **(storage_options or {})).open(), True
    if isinstance(source, str) and source.startswith("file://"):
        source = source[len("file://"):]
    if isinstance(source, (str, os.PathLike)):
        # buffering=0: we read in large chunks ourselves, a second buffer only copies
        return open(source, "rb", buffering=0), True
    if hasattr(source, "read"):
        return source, False
    raise TypeError(f"cannot read a capture from {type(source).__name__}")


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _gzip_header_fault(head: bytes) -> tuple[int, str] | None:
    """Where and what is wrong with the fixed part of a gzip header (RFC 1952), or None."""
    if len(head) < 4:
        return None  # too short to tell: the decompressor says it is cut short
    if head[2] != 8:
        return 2, f"compression method {head[2]} is not deflate (8)"
    if head[3] & 0xE0:
        return 3, f"reserved flag bits set (flags 0x{head[3]:02x})"
    return None


def open_source(source: Source, storage_options: dict | None = None) -> tuple[IO[bytes], list[IO[bytes]], str]:
    """Open ``source`` for reading; return (stream, things to close, compression)."""
    raw, owned = _open_raw(source, storage_options)
    closers = [raw] if owned else []
    head = _read_exactly(raw, 6)
    stream: IO[bytes]
    try:
        seekable = raw.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        raw.seek(raw.tell() - len(head))  # a file object handed to us may not start at 0
        stream = raw
    else:
        stream = _Replay(head, raw)
    compression = "none"
    if head.startswith(_GZIP):
        import gzip

        bad = _gzip_header_fault(head)
        if bad:  # gzip would read on, and call the stream "cut short" when it ran out
            for c in closers:
                c.close()
            at, what = bad
            raise DamagedError(f"bad gzip header at offset {at}: {what}", offset=at, frame=0,
                               source=source_name(source))
        stream, compression = gzip.GzipFile(fileobj=stream, mode="rb"), "gzip"
    elif head.startswith(_BZ2):
        import bz2
        stream, compression = bz2.BZ2File(stream, "rb"), "bzip2"
    elif head.startswith(_XZ):
        import lzma
        stream, compression = _Xz(stream, lzma), "xz"  # type: ignore[assignment]
    elif head.startswith(_ZSTD):
        try:
            import zstandard
        except ImportError:
            for c in closers:
                c.close()
            raise missing_extra("zstd", "zstandard") from None
        stream, compression = _Zstd(stream, zstandard), "zstd"  # type: ignore[assignment]
    if compression != "none":
        stream = _Decompressed(stream, compression)
        closers.insert(0, stream)
    return stream, closers, compression
