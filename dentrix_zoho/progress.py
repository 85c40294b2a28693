"""Progress of a long step for the person watching it: done/total, rate and time left, at a steady pace.

A step reports each unit of work it finishes (``Progress.advance``); a line goes out when
``every_s`` seconds (default 10, ``$DENTRIX_ZOHO_PROGRESS_SECONDS``) have passed since the
last one, so a step longer than that says where it is at least that often, and a short
step says nothing. Lines hold counts only, never a record's value.

Where the lines go is chosen by whoever runs the step, not by the domain code: a Dagster
asset wraps its call in ``reporting_to(context.log.info)`` so they land in the run's event
log; with no sink set they go to the Python logger ``dentrix_zoho.progress``. The sink is a
context variable: the loader settles its batches on the caller's thread, which sees it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

PROGRESS_SECONDS_ENV = "DENTRIX_ZOHO_PROGRESS_SECONDS"
DEFAULT_EVERY_S = 10.0
PROGRESS_PREFIX = "progress "  # how a reader of the event stream tells a progress line from the rest

ProgressSink = Callable[[str], None]

log = logging.getLogger(__name__)
_sink: ContextVar[ProgressSink | None] = ContextVar("dentrix_zoho_progress_sink", default=None)


@contextmanager
def reporting_to(sink: ProgressSink) -> Iterator[None]:
    """Send the progress lines of every step run inside this block to ``sink``."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def every_seconds_from_env() -> float:
    raw = os.environ.get(PROGRESS_SECONDS_ENV, "").strip()
    if not raw:
        return DEFAULT_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{PROGRESS_SECONDS_ENV} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{PROGRESS_SECONDS_ENV} must be positive, got {raw!r}")
    return value


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Done/total of one step; ``advance`` after each unit of work, ``line`` for the text."""

    def __init__(
        self,
        name: str,
        total: int,
        *,
        unit: str = "records",
        every_s: float | None = None,
        sink: ProgressSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        counted: Callable[[], int] | None = None,
    ) -> None:
        self.name = name
        self.total = max(0, total)
        self.unit = unit
        self.every_s = every_s if every_s is not None else every_seconds_from_env()
        self._sink = sink
        self._clock = clock
        self.started = clock()
        self._last = self.started
        self.done = 0
        self.calls = 0
        self.credits = 0
        self.lines = 0  # progress lines sent so far
        # What is accounted for so far when more than the advances (rows a step found unchanged and
        # never sends): shown as done and taken off what is left; the rate is still of the advances.
        self._counted = counted

    def advance(self, n: int = 1, *, calls: int = 0, credits: int = 0, detail: str = "") -> None:
        """Count ``n`` more units done; report if ``every_s`` has passed since the last line."""
        self.done += n
        self.calls += calls
        self.credits += credits
        self.poke(detail)

    def poke(self, detail: str = "") -> None:
        """Report if due, without counting anything (work under way inside a unit)."""
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            self._emit(self.line(now, detail))

    def line(self, now: float | None = None, detail: str = "") -> str:
        elapsed = (self._clock() if now is None else now) - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        done = max(self.done, self._counted()) if self._counted is not None else self.done
        parts = [f"{done:,}/{self.total:,} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * min(done, self.total) / self.total:.0f}%)"
        parts.append(f"{rate:,.1f} {self.unit}/s")
        if self.calls:
            parts.append(f"{self.calls:,} calls")
        if self.credits:
            parts.append(f"{self.credits:,} credits")
        parts.append(f"{_duration(elapsed)} elapsed")
        if rate > 0 and self.total > done:
            parts.append(f"about {_duration((self.total - done) / rate)} left")
        return f"{PROGRESS_PREFIX}{self.name}: " + ", ".join(parts) + (f"; {detail}" if detail else "")

    def _emit(self, text: str) -> None:
        self.lines += 1
        sink = self._sink or _sink.get()
        if sink is not None:
            sink(text)
        else:
            log.info("%s", text)


_current: ContextVar[Progress | None] = ContextVar("dentrix_zoho_current_progress", default=None)


@contextmanager
def tracking(progress: Progress) -> Iterator[Progress]:
    """Make ``progress`` the step's own, so code deep in the step can ``advance`` it without a handle."""
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)


def advance(n: int = 1, *, calls: int = 0, credits: int = 0, detail: str = "") -> None:
    """Advance the step's progress (see ``tracking``); nothing when no step tracks one."""
    progress = _current.get()
    if progress is not None:
        progress.advance(n, calls=calls, credits=credits, detail=detail)
