"""The offices benchmark's CPU floor (``bench/cpu_sampler.py``): CPU-seconds and share of a window."""

from __future__ import annotations

import os
import time

from bench.cpu_sampler import CLOCK_TICKS, CpuSampler, process_cpu_seconds


def test_busy_between_takes_the_samples_around_the_window() -> None:
    sampler = CpuSampler()
    # (wall time, busy jiffies, total jiffies) over all cores: 2 cores, 100 ticks a second each.
    sampler.samples = [(10.0, 0, 0), (11.0, 100, 200), (12.0, 300, 400), (13.0, 300, 600)]
    seconds, share = sampler.busy_between(11.0, 12.0) or (0.0, 0.0)
    assert (seconds, share) == (200 / CLOCK_TICKS, 1.0)
    # A window inside one interval widens to the samples around it.
    assert sampler.busy_between(12.2, 12.8) == (0.0, 0.0)
    assert sampler.busy_between(10.5, 12.5) == (300 / CLOCK_TICKS, 0.5)
    assert sampler.busy_between(12.0, 11.0) is None


def test_a_busy_process_shows_in_its_own_cpu_seconds() -> None:
    before = process_cpu_seconds(os.getpid())
    assert before is not None
    spin_until = time.process_time() + 0.3
    while time.process_time() < spin_until:
        pass
    after = process_cpu_seconds(os.getpid())
    assert after is not None and after - before >= 0.2
    assert process_cpu_seconds(2**22 + 12345) is None  # no such process
