# Progress on stderr for long jobs: packets, bytes, rate and ETA. The command line
# shows it on a terminal; library calls (to_pandas(progress=True), ...) when asked.
#
# Strategy: the command line shows it only when the stream is a terminal, so pipes and
# logs stay clean; every display waits half a second before its first draw (short work
# shows nothing) and clears itself at the end. tqdm or rich draw it when installed;
# otherwise a minimal one-line display redrawn with "\r" at most five times a second.
# The per-packet cost is one call that adds two integers; the clock is read only every
# 1024 packets; table builds add a whole batch at once.
from __future__ import annotations

import os
import sys
import time
from typing import IO

__all__ = ["Progress", "make_progress", "progress_for", "human_bytes"]

_EVERY = 1024  # packets between clock reads
_REDRAW = 0.2  # seconds between redraws
_DELAY = 0.5  # no display at all for work shorter than this (PUREPCAP_PROGRESS_DELAY overrides)


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("PUREPCAP_PROGRESS_DELAY", _DELAY)))
    except ValueError:
        return _DELAY


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - loop always returns


class Progress:
    """The do-nothing display; subclasses draw. ``tick(nbytes)`` once per packet."""

    def __init__(self, total_bytes: int | None = None, stream: IO[str] | None = None) -> None:
        self.total = total_bytes
        self.stream = stream if stream is not None else sys.stderr
        self.packets = 0
        self.bytes = 0
        self.start = time.monotonic()

    def tick(self, nbytes: int) -> None:
        self.packets += 1
        self.bytes += nbytes
        if not self.packets % _EVERY:
            self.refresh()

    def add(self, packets: int, nbytes: int) -> None:
        """Many packets at once (a batch of a table build): redrawn each time, within the
        display's own rate limit."""
        self.packets += packets
        self.bytes += nbytes
        self.refresh()

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def text(self, now: float | None = None) -> str:
        """``12,345 packets  3.4 MB  45,678 packets/s  ETA 0:12``."""
        elapsed = max((now if now is not None else time.monotonic()) - self.start, 1e-9)
        rate = self.packets / elapsed
        parts = [f"{self.packets:,} packets", human_bytes(self.bytes), f"{rate:,.0f} packets/s"]
        if self.total and self.bytes:
            left = max(self.total - self.bytes, 0) * elapsed / self.bytes
            parts.append(f"{min(100.0, 100.0 * self.bytes / self.total):.0f}%")
            parts.append(f"ETA {int(left) // 60}:{int(left) % 60:02d}")
        return "  ".join(parts)


class LineProgress(Progress):
    """The built-in display: one line on the terminal, redrawn in place."""

    def __init__(self, total_bytes: int | None = None, stream: IO[str] | None = None,
                 delay: float | None = None) -> None:
        super().__init__(total_bytes, stream)
        self._last = self.start + (_delay() if delay is None else delay) - _REDRAW
        self._width = 0

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < _REDRAW:
            return
        self._last = now
        line = self.text(now)
        pad = " " * max(self._width - len(line), 0)
        self._width = len(line)
        self.stream.write("\r" + line + pad)
        self.stream.flush()

    def close(self) -> None:
        if self._width:  # something was drawn: wipe it, leaving the terminal as it was
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


class TqdmProgress(Progress):
    def __init__(self, total_bytes: int | None = None, stream: IO[str] | None = None) -> None:
        super().__init__(total_bytes, stream)
        from tqdm import tqdm

        options = {"total": total_bytes, "unit": "B", "unit_scale": True, "file": self.stream, "leave": False}
        try:
            self._bar = tqdm(delay=_delay(), **options)
        except TypeError:  # tqdm before 4.56 has no delay
            self._bar = tqdm(**options)
        self._shown = 0

    def refresh(self) -> None:
        self._bar.update(self.bytes - self._shown)
        self._shown = self.bytes
        self._bar.set_postfix_str(f"{self.packets:,} packets", refresh=False)

    def close(self) -> None:
        self.refresh()
        if time.monotonic() - self.start >= _delay():  # the last counts are drawn before it clears
            self._bar.refresh()
        self._bar.close()


class RichProgress(Progress):
    def __init__(self, total_bytes: int | None = None, stream: IO[str] | None = None) -> None:
        super().__init__(total_bytes, stream)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RProgress

        self._p = RProgress(TextColumn("{task.fields[packets]} packets"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeRemainingColumn(),
                            console=Console(file=self.stream), transient=True)
        self._task = self._p.add_task("read", total=total_bytes, packets=0)
        self._p.start()

    def refresh(self) -> None:
        self._p.update(self._task, completed=self.bytes, packets=f"{self.packets:,}")

    def close(self) -> None:
        self.refresh()
        self._p.stop()


def make_progress(total_bytes: int | None = None, *, stream: IO[str] | None = None,
                  enabled: bool | None = None) -> Progress:
    """The best available display, or a silent one when ``stream`` is not a terminal."""
    stream = stream if stream is not None else sys.stderr
    if enabled is None:
        try:
            enabled = stream.isatty()
        except (AttributeError, ValueError):
            enabled = False
    if not enabled:
        return Progress(total_bytes, stream)
    for kind in (TqdmProgress, RichProgress):
        try:
            return kind(total_bytes, stream)
        except ImportError:
            continue
    return LineProgress(total_bytes, stream)


def progress_for(progress: bool | Progress, total_bytes: int | None = None) -> Progress:
    """The display a library call's ``progress=`` asks for: True draws the best one
    installed (tqdm, else rich, else the built-in line) on stderr, terminal or not,
    since it was asked for; False draws nothing; a Progress is used as it is."""
    if isinstance(progress, Progress):
        return progress
    if not isinstance(progress, (bool, int)):
        raise TypeError(f"progress must be True or False, not {progress!r}")
    return make_progress(total_bytes, enabled=bool(progress))
