"""Retry rule, backoff, 429 classification, rate limiter, concurrency gates and the credit budget."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from dentrix_zoho.zoho.budget import CreditBudget
from dentrix_zoho.zoho.errors import BudgetExceeded, CreditsExhausted
from dentrix_zoho.zoho.retry import Throttle, backoff_seconds, classify_429, retry_after_seconds, should_retry
from dentrix_zoho.zoho.throttle import ConcurrencyGates, MinuteRateLimiter

TOO_MANY = {"code": "TOO_MANY_REQUESTS", "details": {}, "status": "error"}


def test_429_credits_header_decides():
    assert (
        classify_429(TOO_MANY, {"x-api-credits-remaining": "0"}, last_known_remaining=None, cost=10)
        is Throttle.CREDITS
    )
    assert (
        classify_429(TOO_MANY, {"x-api-credits-remaining": "9"}, last_known_remaining=None, cost=10)
        is Throttle.CREDITS
    )
    assert (
        classify_429(TOO_MANY, {"x-api-credits-remaining": "5000"}, last_known_remaining=0, cost=10)
        is Throttle.CONCURRENCY
    )


def test_429_body_words_decide_when_only_one_cause_is_named():
    credits = {**TOO_MANY, "message": "API credits for the 24 hour period exhausted"}
    conc = {**TOO_MANY, "message": "concurrency limit of the user for the app is exceeded"}
    both = {
        **TOO_MANY,
        "message": "Number of API requests for the 24 hour period is exceeded "
        "or the concurrency limit of the user for the app is exceeded",
    }
    assert classify_429(credits, {}, last_known_remaining=None, cost=1) is Throttle.CREDITS
    assert classify_429(conc, {}, last_known_remaining=None, cost=1) is Throttle.CONCURRENCY
    # Zoho's documented message names both: our accounting decides, then "concurrency".
    assert classify_429(both, {}, last_known_remaining=None, cost=1) is Throttle.CONCURRENCY
    assert classify_429(both, {}, last_known_remaining=3, cost=10) is Throttle.CREDITS
    assert classify_429(None, {}, last_known_remaining=None, cost=1) is Throttle.CONCURRENCY


def test_should_retry_matrix():
    req = httpx.Request("POST", "http://127.0.0.1/x")
    assert should_retry(status=429, exc=None, idempotent=False)
    assert should_retry(status=503, exc=None, idempotent=True)
    assert not should_retry(status=503, exc=None, idempotent=False)
    assert not should_retry(status=400, exc=None, idempotent=True)
    # The request never left: safe even for an insert.
    assert should_retry(status=None, exc=httpx.ConnectError("x", request=req), idempotent=False)
    # The connection broke after sending: only when a repeat cannot duplicate.
    assert not should_retry(status=None, exc=httpx.ReadError("x", request=req), idempotent=False)
    assert should_retry(status=None, exc=httpx.RemoteProtocolError("x", request=req), idempotent=True)


def test_backoff_is_full_jitter_and_capped():
    rng = random.Random(7)
    samples = [backoff_seconds(5, base=0.5, cap=30, rng=rng) for _ in range(500)]
    assert all(0 <= s <= 8.0 for s in samples)
    assert max(samples) > 6.0 and min(samples) < 1.0  # spread over the whole range
    assert all(backoff_seconds(30, base=0.5, cap=3, rng=rng) <= 3 for _ in range(100))
    assert retry_after_seconds({"retry-after": "120"}, cap=30) == 30
    assert retry_after_seconds({"retry-after": "soon"}, cap=30) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_minute_rate_limiter_holds_the_ceiling():
    clock = FakeClock()
    limiter = MinuteRateLimiter(3, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(7):
        limiter.acquire()
        starts.append(clock.now)
    for i in range(len(starts)):
        in_window = [s for s in starts if starts[i] <= s < starts[i] + 60]
        assert len(in_window) <= 3
    assert starts[3] - starts[0] == pytest.approx(60)


def test_concurrency_gates_cap_all_and_heavy_calls():
    gates = ConcurrencyGates(15, 10)
    heavy_now = 0
    heavy_peak = 0
    lock = threading.Lock()

    def work(heavy: bool) -> None:
        nonlocal heavy_now, heavy_peak
        with gates.slot(heavy):
            if heavy:
                with lock:
                    heavy_now += 1
                    heavy_peak = max(heavy_peak, heavy_now)
            time.sleep(0.01)
            if heavy:
                with lock:
                    heavy_now -= 1

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gates.peak <= 15
    assert heavy_peak <= 10
    assert gates.in_flight == 0


def test_budget_stop_raises_with_numbers():
    budget = CreditBudget(daily_limit=100, policy="stop", reserve=10)
    budget.spend(85)
    assert budget.remaining() == 15
    budget.before_call(5)  # 15 - 10 reserve >= 5
    with pytest.raises(CreditsExhausted) as info:
        budget.before_call(6)
    assert "needs 6 credits, 15 remaining of 100" in str(info.value)
    with pytest.raises(BudgetExceeded, match="needs 50 credits"):
        budget.check_plan(50)


def test_budget_trusts_zoho_header_then_counts_down():
    budget = CreditBudget(daily_limit=1_000_000, policy="stop")
    budget.spend(10)
    budget.observe_remaining(40)
    budget.spend(15)
    assert budget.remaining() == 25
    budget.observe_remaining(35)  # an older response arriving late: ignored
    assert budget.remaining() == 25
    budget.observe_remaining(20)
    assert budget.remaining() == 20


def test_budget_accepts_a_higher_figure_once_the_window_moved():
    clock = FakeClock()
    budget = CreditBudget(daily_limit=None, policy="stop", clock=clock)
    budget.observe_remaining(5)
    clock.now += 3600
    budget.observe_remaining(900)
    assert budget.remaining() == 900


def test_budget_window_rolls_over():
    clock = FakeClock()
    budget = CreditBudget(daily_limit=100, policy="stop", clock=clock)
    budget.spend(100)
    assert budget.remaining() == 0
    clock.now += 24 * 3600
    assert budget.remaining() == 100


def test_budget_pause_sleeps_then_gives_up_after_max_wait():
    clock = FakeClock()
    budget = CreditBudget(
        daily_limit=None, policy="pause", wait_step=600, max_wait=1800, clock=clock, sleep=clock.sleep
    )
    budget.exhausted(10, 0)
    budget.exhausted(10, 0)
    budget.exhausted(10, 0)
    assert clock.slept == [600, 600, 600]
    with pytest.raises(CreditsExhausted):
        budget.exhausted(10, 0)
