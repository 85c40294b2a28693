"""Fault injection: ``--faults 429=0.10,500=0.02,502=0.01,503=0.01,drop=0.01,slow=0.01``.

One draw per API call from a generator seeded with ``--seed``, so a sequential test sees the same
faults in the same calls every run. A fault on a write lands before the write is applied or after it
(the record is stored but the client sees the error), chosen by a second draw from the same generator.
429 faults always land before. ``slow`` delays the call by ``slow_seconds`` and then serves it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAULT_KINDS = ("429", "500", "502", "503", "drop", "slow")


class FaultSpecError(ValueError):
    pass


def parse_fault_spec(spec: str | None) -> dict[str, float]:
    rates: dict[str, float] = {}
    if not spec:
        return rates
    for part in spec.split(","):
        part = part.strip()
        if not part:
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


@dataclass(frozen=True)
class Fault:
    kind: str
    after_write: bool


class FaultPlan:
    def __init__(self, spec: str | None, seed: int) -> None:
        self.rates = parse_fault_spec(spec)
        self.spec = spec
        self._rng = random.Random(seed)

    def replace(self, spec: str | None, seed: int) -> None:
        self.rates = parse_fault_spec(spec)
        self.spec = spec
        self._rng = random.Random(seed)

    def draw(self, is_write: bool) -> Fault | None:
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
