"""Progress lines of a long step: at the pace asked, with done/total, rate and time left; none on a short one."""

from __future__ import annotations

from dentrix_zoho.progress import PROGRESS_PREFIX, Progress, advance, reporting_to, tracking


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_with_rate_and_time_left() -> None:
    clock, lines = Clock(), []
    progress = Progress("load notes", 1_000, every_s=10, sink=lines.append, clock=clock)
    for _ in range(10):
        clock.now += 4
        progress.advance(50, calls=1, credits=5)
    assert len(lines) == 3  # at 12, 24 and 36 s: every third batch, never two within 10 s
    assert lines[0].startswith(PROGRESS_PREFIX + "load notes: 150/1,000 records (15%)")
    assert "12.5 records/s" in lines[0] and "3 calls" in lines[0] and "15 credits" in lines[0]
    assert "about 1m08s left" in lines[0]


def test_a_short_step_says_nothing_and_the_sink_follows_the_context() -> None:
    clock, lines = Clock(), []
    with reporting_to(lines.append), tracking(Progress("load leads", 10, every_s=10, clock=clock)):
        clock.now += 1
        advance(10)
    assert lines == []
    with reporting_to(lines.append), tracking(Progress("load leads", 10, every_s=10, clock=clock)):
        clock.now += 11
        advance(5)
    assert len(lines) == 1 and "5/10 records" in lines[0]
    advance(5)  # no step tracking: nothing, no error


def test_counted_rows_show_as_done_and_shorten_the_time_left() -> None:
    clock, lines, unchanged = Clock(), [], [900]
    progress = Progress("load patients", 1_000, every_s=10, sink=lines.append, clock=clock,
                        counted=lambda: unchanged[0] + progress.done)
    clock.now += 10
    progress.advance(50)
    assert "950/1,000 records (95%)" in lines[0] and "about 10s left" in lines[0]
