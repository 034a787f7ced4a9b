"""A one-line progress display (points done, failed, rate, ETA) for terminals only.

It redraws at most every `interval_s` on stderr when stderr is a TTY; in a pipe, a log file
or with `quiet`, it prints nothing (the command's summary line is the caller's job).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(
        self,
        total: int,
        quiet: bool = False,
        stream: TextIO | None = None,
        interval_s: float = 0.1,
    ):
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.total, self.done, self.failed = total, 0, 0
        self.interval_s = interval_s
        self.start = time.monotonic()
        self._last_draw = 0.0

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.start

    @property
    def rate(self) -> float:
        """Points per second since the start."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.rate
        settled = self.elapsed_s >= 3 or self.done >= 0.05 * self.total  # start-up skews it
        eta = _clock((self.total - self.done) / rate) if rate > 0 and settled else "?"
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"{self.done:,}/{self.total:,} points ({pct:.0f}%{failed})  "
            f"{rate:,.0f} points/s  elapsed {_clock(self.elapsed_s)}  ETA {eta}"
        )

    def update(self, done: int = 1, failed: int = 0) -> None:
        self.done += done
        self.failed += failed
        now = time.monotonic()
        if self.enabled and (now - self._last_draw >= self.interval_s or self.done == self.total):
            self._last_draw = now
            self.stream.write("\r\033[K" + self.line())
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


class StageLine:
    """`progress(stage, done, total)` for the steps before a run (planning, matching stored
    points): one redrawn line on a terminal, nothing elsewhere; `close` clears it."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, interval_s: float = 0.1):
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.interval_s = interval_s
        self.start = time.monotonic()
        self._last_draw = 0.0
        self.drawn = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if self.enabled and (now - self._last_draw >= self.interval_s or done == total):
            self._last_draw = now
            self.stream.write(f"\r\033[K{stage}: {done:,}/{total:,} ({_clock(now - self.start)})")
            self.stream.flush()
            self.drawn += 1

    def close(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
