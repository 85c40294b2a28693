"""Tokens, api_domain, concurrency and credit budgets against the emulator over real HTTP."""

from __future__ import annotations

import threading

import pytest

from dentrix_zoho.zoho import BudgetExceeded, CreditsExhausted


def _concurrently(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    return results


def test_twenty_concurrent_callers_one_refresh_then_one_after_expiry(kit, emulator):
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        results = _concurrently(20, lambda: len(client.users()))
        assert set(results) == {results[0]} and results[0] > 0
        assert client.transport.auth.refresh_count == 1
        emulator.advance_clock(3_700)  # every token the emulator issued is now expired
        _concurrently(20, lambda: client.count("Contacts"))
        assert client.transport.auth.refresh_count == 2
    refreshes = sink.where(path_template="/oauth/v2/token", outcome="ok")
    assert len(refreshes) == 2
    expired = [e for e in sink.events if e.status == 401]
    assert expired and all(e.error_code == "INVALID_TOKEN" and e.outcome == "retry" for e in expired)


def test_client_follows_api_domain_from_token_response(kit, emulator):
    # The configured API base points nowhere; the token response names the emulator.
    with kit.client_for(emulator, api_base="http://127.0.0.1:9") as client:
        assert client.org()["zgid"]
        assert client.transport.api_base == emulator.base_url


def test_client_concurrency_never_exceeds_its_limit(kit, emulator_factory, schema_ready):
    handle = emulator_factory(latency_ms=20)
    with kit.client_for(handle, max_concurrency=4) as client:
        schema_ready(client)
        out = client.upsert("Contacts", kit.contacts(1_200))
        assert all(o.ok for o in out)
        assert client.transport.gates.peak == 4
    assert handle.usage()["concurrency"]["max_seen"] <= 4
    assert handle.usage()["too_many_requests"]["total"] == 0


def test_credits_exhausted_stops_cleanly_and_resumes(kit, emulator_factory, schema_ready):
    handle = emulator_factory(credits=150)
    records = kit.contacts(3_000)
    sink = kit.Recorder()
    with kit.client_for(handle, sink, on_budget_exhausted="stop") as client:
        schema_ready(client)
        with pytest.raises(CreditsExhausted) as info:
            client.upsert("Contacts", records)
        exc = info.value
        assert "remaining" in str(exc) and "resumable" in str(exc)
        done = {o.index for o in exc.outcomes}
        assert all(o.ok for o in exc.outcomes)
        assert done.isdisjoint(exc.pending_indices)
        assert done | set(exc.pending_indices) == set(range(3_000))
        assert len(kit.stored(handle, "Contacts")) == len(done)  # nothing half-written, nothing unaccounted
        assert handle.usage()["credits"]["used_24h"] <= 150

        # A new process knows nothing of the budget: Zoho's 429 tells it, and it stops too.
        with kit.client_for(handle, sink) as fresh, pytest.raises(CreditsExhausted):
            fresh.upsert("Contacts", [records[i] for i in exc.pending_indices[:100]])
        assert sink.where(status=429, outcome="credits_exhausted")

        # Resume from the exception's state, one 24 h window at a time, as a scheduled rerun would.
        pending = list(exc.pending_indices)
        rounds = 0
        while pending:
            rounds += 1
            assert rounds <= 4
            handle.advance_clock(24 * 3600)
            with kit.client_for(handle) as resumed:
                try:
                    out = resumed.upsert("Contacts", [records[i] for i in pending])
                    assert all(o.ok for o in out)
                    pending = []
                except CreditsExhausted as again:
                    assert all(o.ok for o in again.outcomes)
                    pending = [pending[i] for i in again.pending_indices]
        assert rounds >= 2  # 3,000 records need about 300 credits: more than one 150-credit window
    assert kit.ids_written_once(handle, "Contacts", {r["Source_System_ID"] for r in records})


def test_credits_exhausted_pause_waits_for_the_window(kit, emulator_factory, schema_ready):
    handle = emulator_factory(credits=120)
    records = kit.contacts(2_000)
    # The pause sleeps on the emulator's clock, so a 24 h window passes in milliseconds.
    with kit.client_for(
        handle,
        on_budget_exhausted="pause",
        credit_wait_seconds=6 * 3600,
        credit_sleep=lambda s: handle.advance_clock(s),
    ) as client:
        schema_ready(client)
        out = client.upsert("Contacts", records)
        assert client.budget.waited_seconds >= 6 * 3600
    assert all(o.ok for o in out)
    assert kit.ids_written_once(handle, "Contacts", {r["Source_System_ID"] for r in records})


def test_budget_check_before_a_load_uses_zohos_header(kit, emulator_factory, schema_ready):
    handle = emulator_factory(credits=100)
    sink = kit.Recorder()
    with kit.client_for(handle, sink) as client:
        schema_ready(client)  # 3 credits
        client.upsert("Contacts", kit.contacts(500))  # 50 credits: past half, Zoho starts sending the header
        true_remaining = 100 - handle.usage()["credits"]["used_24h"]
        # Concurrent responses arrive out of order: the estimate may err low by the batches in flight.
        assert true_remaining - 5 * 10 <= client.budget.remaining() <= true_remaining
        calls_before = len(sink.events)
        with pytest.raises(BudgetExceeded) as info:
            client.check_budget({"upsert": 1_000})
        assert f"needs 100 credits, {client.budget.remaining()} remaining" in str(info.value)
        assert len(sink.events) == calls_before  # nothing sent
        assert client.check_budget({"upsert": 100}).needed == 10


def test_budget_check_with_own_accounting(kit, emulator):
    with kit.client_for(emulator, daily_credits_override=500, credit_reserve=100) as client:
        with pytest.raises(BudgetExceeded, match="needs 1000 credits, 500 remaining of 500 per 24 h"):
            client.check_budget({"upsert": 10_000})
        check = client.check_budget({"upsert": 4_000})
        assert (check.needed, check.remaining, check.limit) == (400, 500, 500)


def test_per_minute_ceiling_is_enforced_client_side(kit, emulator):
    """A plan that promises 5 calls a minute: 12 calls take three minute-windows, on a fake clock."""
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    started_at: list[float] = []
    with kit.client_for(
        emulator, lambda e: started_at.append(now[0]), calls_per_minute=5, clock=lambda: now[0], sleep=sleep
    ) as client:
        for _ in range(12):
            client.count("Contacts")
    calls = started_at[1:]  # the first event is the token refresh, which is not an API call
    assert len(calls) == 12
    assert waits == [60.0, 60.0]  # the 6th and the 11th call waited for the window
    for t in calls:
        assert sum(1 for u in calls if t <= u < t + 60) <= 5
    assert emulator.usage()["calls"]["GET /crm/v8/{module}/actions/count"] == 12
