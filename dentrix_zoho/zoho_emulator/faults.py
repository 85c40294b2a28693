"""Fault injection: ``--faults 429=0.10,500=0.02,502=0.01,503=0.01,drop=0.01,slow=0.01``.

One draw per API call from a generator seeded with ``--seed``, so a sequential test sees the same
faults in the same calls every run. A fault on a write lands before the write is applied or after it
(the record is stored but the client sees the error), chosen by a second draw from the same generator.
429 faults always land before. ``slow`` delays the call by ``slow_seconds`` and then serves it.

``KIND@N`` (``500@1,drop@3``; KIND one of 500, 502, 503, drop) schedules a fault instead of drawing
one: the N-th write call counted from when the plan was set is applied and then answered with KIND.
A test can so fail exactly the call whose answer it wants lost, and mix such faults with rates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAULT_KINDS = ("429", "500", "502", "503", "drop", "slow")
# Faults a write can meet after it was applied: what ``KIND@N`` may schedule.
SCHEDULED_KINDS = ("500", "502", "503", "drop")


class FaultSpecError(ValueError):
    pass


def parse_fault_spec(spec: str | None) -> dict[str, float]:
    """The rates of ``spec``; its scheduled parts (``KIND@N``) are checked too (:func:`parse_scheduled_faults`)."""
    rates: dict[str, float] = {}
    parse_scheduled_faults(spec)
    if not spec:
        return rates
    for part in spec.split(","):
        part = part.strip()
        if not part or "@" in part:
            continue
        kind, sep, rate = part.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in FAULT_KINDS:
            raise FaultSpecError(f"--faults: {part!r}: expected KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}")
        try:
            value = float(rate)
        except ValueError:
            raise FaultSpecError(f"--faults: {part!r}: rate must be a number between 0 and 1") from None
        if not 0 <= value <= 1:
            raise FaultSpecError(f"--faults: {part!r}: rate must be between 0 and 1")
        rates[kind] = value
    if sum(rates.values()) > 1:
        raise FaultSpecError("--faults: the rates add up to more than 1")
    return rates


def parse_scheduled_faults(spec: str | None) -> dict[int, str]:
    """``{N: KIND}`` for the ``KIND@N`` parts of ``spec``."""
    scheduled: dict[int, str] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if "@" not in part:
            continue
        kind, _, nth = part.partition("@")
        kind = kind.strip().lower()
        if kind not in SCHEDULED_KINDS or not nth.strip().isdigit() or int(nth) < 1:
            raise FaultSpecError(f"--faults: {part!r}: expected KIND@N with KIND one of "
                                 f"{', '.join(SCHEDULED_KINDS)} and N a write call from 1")
        if int(nth) in scheduled:
            raise FaultSpecError(f"--faults: {part!r}: write call {int(nth)} already has a fault")
        scheduled[int(nth)] = kind
    return scheduled


@dataclass(frozen=True)
class Fault:
    kind: str
    after_write: bool


class FaultPlan:
    def __init__(self, spec: str | None, seed: int) -> None:
        self.replace(spec, seed)

    def replace(self, spec: str | None, seed: int) -> None:
        self.rates = parse_fault_spec(spec)
        self.scheduled = parse_scheduled_faults(spec)
        self.spec = spec
        self._rng = random.Random(seed)
        self._writes = 0  # write calls drawn for since the plan was set

    def draw(self, is_write: bool) -> Fault | None:
        if is_write:
            self._writes += 1
            scheduled = self.scheduled.get(self._writes)
            if scheduled is not None:
                return Fault(scheduled, after_write=True)
        if not self.rates:
            return None
        roll = self._rng.random()
        after = self._rng.random() < 0.5
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += self.rates.get(kind, 0.0)
            if roll < edge:
                return Fault(kind, after_write=is_write and after and kind not in ("429", "slow"))
        return None
