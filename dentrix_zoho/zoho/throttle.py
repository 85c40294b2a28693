"""Client-side pacing: concurrency gates and an optional calls-per-minute ceiling."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class SharedSlots(Protocol):
    """Slots of one Zoho org shared with other processes (``org_limits.OrgSlots``)."""

    def slot(self, heavy: bool) -> AbstractContextManager[None]: ...


class MinuteRateLimiter:
    """At most ``per_minute`` call starts in any sliding 60 s window, across threads."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        window: float = 60.0,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._window = window
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a call may start; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self._window:
                    self._starts.popleft()
                if len(self._starts) < self.per_minute:
                    self._starts.append(now)
                    return waited
                delay = self._window - (now - self._starts[0])
            self._sleep(delay)
            waited += delay


class ConcurrencyGates:
    """One gate for every call (the edition's limit) and one for heavy calls (Zoho's cap of 10).

    With ``shared`` (the org's slots in a database every run uses), a call also holds one of the
    org's slots: the local gates only keep this process from queueing more threads at the shared
    ones than it could ever use.
    """

    def __init__(self, concurrency: int, heavy_cap: int, shared: SharedSlots | None = None) -> None:
        self.concurrency = concurrency
        self.heavy_cap = min(heavy_cap, concurrency)
        self._all = threading.BoundedSemaphore(concurrency)
        self._heavy = threading.BoundedSemaphore(self.heavy_cap)
        self._lock = threading.Lock()
        self._shared = shared
        self.in_flight = 0
        self.peak = 0

    @contextmanager
    def slot(self, heavy: bool) -> Iterator[None]:
        # Heavy first, so a thread holding a general slot never waits on the heavy gate.
        if heavy:
            self._heavy.acquire()
        try:
            with self._all:
                if self._shared is None:
                    with self._counted():
                        yield
                else:
                    with self._shared.slot(heavy), self._counted():
                        yield
        finally:
            if heavy:
                self._heavy.release()

    @contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
