"""Dates and times of the synthetic practice, all derived from ``as_of`` (never the clock)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

PRACTICE_YEARS = 12


def add_months(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    month += 1
    # Clamp the day for short months (Jan 31 + 1 month -> Feb 28/29).
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(f"cannot add {months} months to {day}")


def years_between(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def weekday_on_or_after(day: date) -> date:
    """Practices see patients Monday to Friday; weekends move to Monday."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@dataclass(frozen=True)
class Timeline:
    as_of: date

    @property
    def opened(self) -> date:
        """The day the practice started using Dentrix (first records)."""
        return self.as_of - timedelta(days=PRACTICE_YEARS * 365)

    @property
    def end_of_day(self) -> datetime:
        return datetime.combine(self.as_of, time(23, 59, 59))

    @property
    def month_start(self) -> date:
        """Month-end has run for everything before this day (fullproclog.history = 1)."""
        return self.as_of.replace(day=1)

    def day_between(self, rng: random.Random, start: date, end: date) -> date:
        if end <= start:
            return start
        return start + timedelta(days=rng.randint(0, (end - start).days))

    def stamp(self, rng: random.Random, day: date, *, not_before: datetime | None = None) -> datetime:
        """A time during office hours on ``day``, never after the snapshot (as_of end of day)."""
        moment = datetime.combine(day, time(rng.randint(7, 18), rng.randint(0, 59), rng.randint(0, 59)))
        if not_before is not None and moment < not_before:
            moment = not_before + timedelta(minutes=rng.randint(1, 90))
        return min(moment, self.end_of_day)
