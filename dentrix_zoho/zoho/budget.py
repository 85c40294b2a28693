"""Credit accounting and the pause-or-stop policy when the day's credits run out."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from dentrix_zoho.zoho.errors import BudgetExceeded, CreditsExhausted

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 24 * 3600.0


class CreditBudget:
    """What we have spent in the rolling 24 h, what Zoho says is left, and what to do when it is gone.

    Zoho sends ``X-API-CREDITS-REMAINING`` only once half the day's credits are
    used, so until then our own accounting (``limit - spent``) is the estimate.
    ``reserve`` credits are never spent, leaving the practice's own integrations room.
    """

    def __init__(
        self,
        *,
        daily_limit: int | None,
        policy: Literal["pause", "stop"],
        reserve: int = 0,
        wait_step: float = 900.0,
        max_wait: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.daily_limit = daily_limit
        self.policy = policy
        self.reserve = reserve
        self.wait_step = wait_step
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._spends: deque[tuple[float, int]] = deque()
        self._spent_window = 0
        self._spent_total = 0
        self._header_remaining: int | None = None
        self._spent_at_header = 0
        self._header_at = float("-inf")
        self.waited_seconds = 0.0
        self._pause_until = float("-inf")

    # -- accounting ----------------------------------------------------------
    def _expire(self, now: float) -> None:
        while self._spends and now - self._spends[0][0] >= WINDOW_SECONDS:
            self._spent_window -= self._spends.popleft()[1]

    def spend(self, credits: int) -> None:
        if credits <= 0:
            return
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._spends.append((now, credits))
            self._spent_window += credits
            self._spent_total += credits

    def observe_remaining(self, remaining: int) -> None:
        """Zoho's own number wins over ours; later spends are counted against it.

        Concurrent responses arrive out of order, so within a minute a figure
        higher than our running estimate is an older one and is ignored: the
        estimate errs low by at most the credits in flight, never high.
        """
        with self._lock:
            now = self._clock()
            if self._header_remaining is not None and now - self._header_at < 60.0:
                current = self._header_remaining - (self._spent_total - self._spent_at_header)
                if remaining > current:
                    return
            self._header_remaining = remaining
            self._spent_at_header = self._spent_total
            self._header_at = now

    @property
    def spent(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return self._spent_window

    def remaining(self) -> int | None:
        """Best estimate of credits left, ``None`` when unlimited and Zoho has said nothing."""
        with self._lock:
            self._expire(self._clock())
            return self._estimate(self._spent_window)

    def _estimate(self, spent_window: int) -> int | None:
        """The lower of ``limit - spent_window`` and Zoho's last figure less our spends since; under the lock.

        A subclass that accounts for the whole org passes the org's window here instead of ours.
        """
        estimates = []
        if self.daily_limit is not None:
            estimates.append(self.daily_limit - spent_window)
        if self._header_remaining is not None:
            estimates.append(self._header_remaining - (self._spent_total - self._spent_at_header))
        return min(estimates) if estimates else None

    def _spent_note(self) -> str:
        return f"spent by this client {self.spent}"

    def _describe(self, needed: int, remaining: int | None) -> str:
        left = "unknown" if remaining is None else str(remaining)
        limit = "unlimited" if self.daily_limit is None else str(self.daily_limit)
        return (
            f"needs {needed} credits, {left} remaining of {limit} per 24 h "
            f"(reserve {self.reserve}, {self._spent_note()})"
        )

    # -- policy --------------------------------------------------------------
    def check_plan(self, needed: int) -> int | None:
        """Before a load: raise ``BudgetExceeded`` (stop) or warn (pause) when it will not fit."""
        remaining = self.remaining()
        if remaining is None or needed <= remaining - self.reserve:
            return remaining
        message = f"load does not fit the Zoho credit budget: {self._describe(needed, remaining)}"
        if self.policy == "stop":
            raise BudgetExceeded(message, needed=needed, remaining=remaining, limit=self.daily_limit)
        logger.warning("%s; will pause when the credits run out", message)
        return remaining

    def before_call(self, cost: int) -> None:
        """Pause or stop when our estimate says this call would dip into the reserve."""
        remaining = self.remaining()
        if remaining is None or remaining - self.reserve >= cost:
            return
        self.exhausted(cost, remaining, source="client accounting")

    def exhausted(self, needed: int, remaining: int | None = None, *, source: str = "Zoho 429") -> None:
        """Credits are gone: sleep one step (``pause``) or raise ``CreditsExhausted`` (``stop``)."""
        if remaining is None:
            remaining = self.remaining()
        message = f"Zoho API credits exhausted ({source}): {self._describe(needed, remaining)}"
        if self.policy == "stop" or self.waited_seconds >= self.max_wait:
            raise CreditsExhausted(message, remaining=remaining, limit=self.daily_limit, needed=needed)
        # Threads that hit the wall together share one pause instead of stacking theirs.
        with self._lock:
            now = self._clock()
            if self._pause_until > now:
                delay = self._pause_until - now
            else:
                delay = self.wait_step
                self._pause_until = now + delay
                self.waited_seconds += delay
                logger.warning("%s; pausing %.0f s", message, delay)
            # Zoho's figure is stale after a wait; the next response tells us again.
            self._header_remaining = None
        self._sleep(delay)
