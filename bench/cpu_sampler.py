"""How busy the machine's CPUs were over a stretch of a benchmark, from ``/proc/stat`` (Linux).

The offices benchmark's lower bound (calls x latency / concurrency) assumes the calls are all that
takes time. On a small machine the runs' own work (staging, shaping, Dagster's step processes,
the emulator) can fill every core first; then no scheduling gets the wall down to that bound. The
sampler measures the CPU-seconds spent in a window so that the report can show that second floor
(CPU-seconds / cores) next to the call bound, from the same run.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path

STAT = Path("/proc/stat")
INTERVAL_S = 0.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_and_total() -> tuple[int, int] | None:
    """Jiffies spent busy and in all, over every core (``cpu`` line: idle and iowait are not busy)."""
    try:
        fields = STAT.read_text().splitlines()[0].split()
    except OSError:
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest times are already inside user/nice.
    total = sum(values[:8])
    return total - idle, total


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process so far (``/proc/<pid>/stat``), or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    after_name = raw.rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / CLOCK_TICKS


@dataclass
class CpuSampler:
    """Samples ``/proc/stat`` every ``interval_s`` on a daemon thread between ``start`` and ``stop``."""

    interval_s: float = INTERVAL_S
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (wall time, busy, total)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return _busy_and_total() is not None

    def start(self) -> CpuSampler:
        if self.available:
            self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            reading = _busy_and_total()
            if reading is not None:
                self.samples.append((time.time(), *reading))
            if self._stop.wait(self.interval_s):
                return

    def busy_between(self, start: float, end: float) -> tuple[float, float] | None:
        """(CPU-seconds busy, busy share of all cores) between two wall times, from the samples around them."""
        if len(self.samples) < 2 or end <= start:
            return None
        times = [s[0] for s in self.samples]
        first = max(0, bisect_right(times, start) - 1)
        last = min(len(self.samples) - 1, bisect_left(times, end))
        if last <= first:
            return None
        _, busy0, total0 = self.samples[first]
        _, busy1, total1 = self.samples[last]
        if total1 <= total0:
            return None
        share = (busy1 - busy0) / (total1 - total0)
        seconds = (busy1 - busy0) / CLOCK_TICKS
        return seconds, share
