"""API credits over a rolling 24 h window, concurrency per edition, and the usage counters (https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html)."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from .config import CONCURRENCY, HEAVY_CONCURRENCY, EmulatorConfig
from .errors import (
    CONCURRENCY_EXCEEDED_MESSAGE,
    CREDITS_EXCEEDED_MESSAGE,
    HEAVY_CONCURRENCY_EXCEEDED_MESSAGE,
    too_many_requests,
)
from .store import Clock

WINDOW_SECONDS = 24 * 3600


def write_cost(records: int) -> int:
    """Insert / update / upsert: 1 credit per 10 records, at least 1."""
    return max(1, -(-records // 10))


def coql_cost(limit: int) -> int:
    return 1 if limit <= 200 else 2 if limit <= 1000 else 3


class Limits:
    """Kept in memory: a restart starts a fresh window (documented in the package docstring)."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.concurrency_limit = CONCURRENCY[config.edition]
        self._spent: deque[tuple[float, int]] = deque()
        self._spent_total = 0
        self.active = 0
        self.heavy_active = 0
        self.max_active = 0
        self.max_heavy_active = 0
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.rejected: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.credits_total = 0

    # ---- concurrency --------------------------------------------------------------------------

    def enter(self) -> None:
        if self.active >= self.concurrency_limit:
            self.rejected["concurrency"] += 1
            raise too_many_requests(CONCURRENCY_EXCEEDED_MESSAGE)
        self.active += 1
        self.max_active = max(self.max_active, self.active)

    def leave(self) -> None:
        self.active -= 1

    def enter_heavy(self) -> None:
        if self.heavy_active >= HEAVY_CONCURRENCY:
            self.rejected["heavy_concurrency"] += 1
            raise too_many_requests(HEAVY_CONCURRENCY_EXCEEDED_MESSAGE)
        self.heavy_active += 1
        self.max_heavy_active = max(self.max_heavy_active, self.heavy_active)

    def leave_heavy(self) -> None:
        self.heavy_active -= 1

    # ---- credits -------------------------------------------------------------------------------

    def used(self) -> int:
        horizon = self.clock.now() - WINDOW_SECONDS
        while self._spent and self._spent[0][0] <= horizon:
            self._spent_total -= self._spent.popleft()[1]
        return self._spent_total

    def charge(self, credits: int) -> None:
        """Refuse a call that would take the window past the limit; otherwise spend its credits."""
        limit = self.config.credit_limit
        if limit is not None and self.used() + credits > limit:
            self.rejected["credits"] += 1
            raise too_many_requests(CREDITS_EXCEEDED_MESSAGE)
        self._spent.append((self.clock.now(), credits))
        self._spent_total += credits
        self.credits_total += credits

    def remaining_header(self) -> str | None:
        """``X-API-CREDITS-REMAINING`` appears only once half the daily credits are used."""
        limit = self.config.credit_limit
        if limit is None:
            return None
        used = self.used()
        return str(max(0, limit - used)) if used * 2 >= limit else None

    def snapshot(self) -> dict[str, Any]:
        limit = self.config.credit_limit
        used = self.used()
        return {
            "edition": self.config.edition,
            "credits": {"limit": limit, "used_24h": used, "remaining": None if limit is None else limit - used,
                        "used_total": self.credits_total},
            "calls": dict(sorted(self.calls.items())),
            "calls_total": sum(self.calls.values()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "concurrency": {"limit": self.concurrency_limit, "active": self.active,
                            "max_seen": self.max_active, "heavy_limit": HEAVY_CONCURRENCY,
                            "heavy_max_seen": self.max_heavy_active},
            "too_many_requests": {"total": self.statuses.get(429, 0), **dict(self.rejected),
                                  "injected": self.faults.get("429", 0)},
            "faults_injected": dict(self.faults),
        }

    def reset_counters(self) -> None:
        self.calls.clear()
        self.statuses.clear()
        self.rejected.clear()
        self.faults.clear()
        self.max_active = self.active
        self.max_heavy_active = self.heavy_active
