# One exception hierarchy for everything that is wrong with *input*: files, bytes,
# filter expressions, interfaces. Every error says what is wrong and where (byte
# offset, last good frame), so a caller can report it in one line.
from __future__ import annotations

__all__ = [
    "PcapError",
    "NotACaptureError",
    "UnsupportedFormatError",
    "TruncatedError",
    "DamagedError",
    "FilterError",
    "CaptureError",
    "NoPrivilegeError",
    "NoSuchInterfaceError",
    "InterfaceDownError",
    "PcapWarning",
    "ERRORS",
    "errors_policy",
    "damage_text",
    "missing_extra",
]


class PcapError(ValueError):
    """Base of every purepcap input error.

    ``offset`` is the byte offset in the (decompressed) capture where the problem
    was found, ``frame`` the number of the last packet delivered before it (0 when
    none was), both None where they do not apply.
    """

    def __init__(self, message: str, *, offset: int | None = None, frame: int | None = None,
                 source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.frame = frame
        self.source = source

    def __str__(self) -> str:
        if self.source:
            return f"{self.source}: {self.message}"
        return self.message


class NotACaptureError(PcapError):
    """The bytes do not start like any capture format purepcap knows."""


class UnsupportedFormatError(PcapError):
    """A capture format, version or feature purepcap recognises but does not read."""


class TruncatedError(PcapError):
    """The capture ends in the middle of a header, record or block."""


class DamagedError(PcapError):
    """A length or field in the capture is impossible (a lying length, a bad block)."""


class FilterError(PcapError):
    """A pcap-filter expression that cannot be parsed or compiled.

    ``column`` is the 1-based column of the offending token where known.
    """

    def __init__(self, message: str, *, expression: str | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.expression = expression
        self.column = column

    def __str__(self) -> str:
        if self.expression is not None and self.column is not None:
            caret = " " * (self.column - 1) + "^"
            return f"{self.message}\n  {self.expression}\n  {caret}"
        return self.message


class CaptureError(PcapError):
    """A live capture cannot start or continue (privilege, interface, kernel)."""


# The live capture errors live here, not in purepcap.live, so that its platform back
# ends (_live_linux, _live_bsd) raise them without importing the module above them.
class NoPrivilegeError(CaptureError):
    """The process may not open a capture (no CAP_NET_RAW, or no access to /dev/bpf)."""


class NoSuchInterfaceError(CaptureError):
    """The interface does not exist; the message lists those that do."""


class InterfaceDownError(CaptureError):
    """The interface exists but is administratively down (or went down during a capture)."""


class PcapWarning(UserWarning):
    """Damage that ``errors="warn"`` reading stepped over or stopped at. ``error`` is the
    PcapError it would have raised (with its ``source``, ``offset`` and ``frame``)."""

    def __init__(self, message: str, error: PcapError | None = None) -> None:
        super().__init__(message)
        self.error = error


# What reading does on damage, by pandas' names: raise the PcapError (after the good
# packets, for an iterator), warn (one PcapWarning per damage; keep every good packet)
# or ignore (the same, silently).
ERRORS = ("raise", "warn", "ignore")


def errors_policy(errors: str | None, strict: bool = True) -> str:
    """``errors`` checked (one of ERRORS), or where it is None the older ``strict`` flag's
    equivalent (True: "raise", False: "warn")."""
    if errors is None:
        return "raise" if strict else "warn"
    if errors not in ERRORS:
        raise ValueError(f"errors={errors!r}: must be 'raise', 'warn' or 'ignore'")
    return errors


def damage_text(exc: PcapError) -> str:
    """``exc`` as one text naming the file, the offset and the last good frame, as the
    warnings and the command line tell damage (most messages name the frame already)."""
    text = str(exc)
    if exc.frame is not None and f"after frame {exc.frame})" not in text:
        text += f" (after frame {exc.frame})"
    return text


def missing_extra(extra: str, module: str) -> ImportError:
    """The ImportError raised when an optional extra is not installed."""
    return ImportError(
        f"this needs the optional dependency {module!r}: pip install 'purepcap[{extra}]'"
    )
