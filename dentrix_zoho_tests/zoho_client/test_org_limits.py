"""One org, one budget: the shared slots and credit account on a real PostgreSQL (and SQLite).

Two ``OrgLimits`` objects in one test stand for two processes: separate pools, holders, caches and
keeper threads, one database. The multi-process tests are in ``test_org_limits_processes.py``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from dentrix_zoho.zoho import ConfigError, CreditsExhausted, ZohoConfig
from dentrix_zoho.zoho.budget import CreditBudget
from dentrix_zoho.zoho.org_limits import (
    OrgCreditBudget,
    OrgLimits,
    OrgLimitsUnavailable,
    close_shared_org_limits,
)
from dentrix_zoho_tests.zoho_client.conftest import USERS, FakeClock, emulator_settings
from dentrix_zoho.zoho.transport import Transport

pytest.importorskip("psycopg")



def _hammer(members: list[OrgLimits], threads_each: int, calls_each: int, hold_s: float) -> tuple[int, int]:
    """Many threads per member take slots (every third call heavy); the peaks of all and heavy holders."""
    lock = threading.Lock()
    now = {"all": 0, "heavy": 0}
    peak = {"all": 0, "heavy": 0}
    errors: list[BaseException] = []

    def work(member: OrgLimits, n: int) -> None:
        try:
            for i in range(calls_each):
                heavy = (n + i) % 3 == 0
                with member.slots.slot(heavy):
                    with lock:
                        for kind in ("all", "heavy") if heavy else ("all",):
                            now[kind] += 1
                            peak[kind] = max(peak[kind], now[kind])
                    time.sleep(hold_s)
                    with lock:
                        for kind in ("all", "heavy") if heavy else ("all",):
                            now[kind] -= 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(m, n)) for m in members for n in range(threads_each)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    return peak["all"], peak["heavy"]


def test_two_members_share_the_orgs_slots(org_url, make_limits):
    a, b = make_limits(org_url), make_limits(org_url)
    peak, heavy_peak = _hammer([a, b], threads_each=8, calls_each=15, hold_s=0.005)
    assert peak <= 6 and heavy_peak <= 3
    # 16 threads wanted 6 slots: they did wait, and the limit was reached, not merely respected.
    assert a.slots.waits + b.slots.waits > 0
    assert peak == 6
    assert a.snapshot()["held"] == {"all": 0, "heavy": 0}


def test_another_org_has_slots_of_its_own(org_url, make_limits):
    mine, theirs = make_limits(org_url, "org1"), make_limits(org_url, "org2")
    tokens = [mine.slots.acquire("all") for _ in range(6)]
    other = theirs.slots.acquire("all")  # would block if org2 counted org1's slots
    assert mine.slots.occupancy()["all"] == 6 and theirs.slots.occupancy()["all"] == 1
    theirs.slots.release(other)
    for token in tokens:
        mine.slots.release(token)


def test_live_leases_are_renewed_and_a_waiter_gets_a_freed_slot(org_url, make_limits):
    holder = make_limits(org_url, lease_seconds=1.0)
    waiter = make_limits(org_url, lease_seconds=1.0)
    tokens = [holder.slots.acquire("all") for _ in range(6)]
    got: list[str] = []
    thread = threading.Thread(target=lambda: got.append(waiter.slots.acquire("all")))
    thread.start()
    # Three leases later the holder's slots are still its own: the keeper renewed them.
    time.sleep(3.0)
    assert waiter.slots.occupancy()["all"] == 6 and not got and thread.is_alive()
    holder.slots.release(tokens.pop())
    thread.join(timeout=30)
    assert len(got) == 1
    waiter.slots.release(got[0])
    for token in tokens:
        holder.slots.release(token)


def test_spends_of_two_members_add_up_and_leave_the_window(org_url, make_limits):
    clock = FakeClock()
    window = 3_600.0
    a = make_limits(org_url, window_seconds=window, clock=clock)
    b = make_limits(org_url, window_seconds=window, clock=clock)
    for _ in range(40):
        a.credits.add(3)
        b.credits.add(2)
    assert a.credits.flush() and b.credits.flush()
    assert a.credits.spent(max_age=0) == b.credits.spent(max_age=0) == 200
    clock.now += window / 2
    a.credits.add(7)
    assert a.credits.spent() == 207  # our unwritten spend counts at once
    assert b.credits.spent(max_age=0) == 200  # theirs once written
    a.credits.flush()
    assert b.credits.spent(max_age=0) == 207
    clock.now += window / 2 + a.credits.bucket_seconds  # the first 200 have left the window
    assert b.credits.spent(max_age=0) == 7


def _transport(handle: Any, limits: OrgLimits | None, clock: FakeClock | None = None, **overrides: Any) -> Transport:
    settings = emulator_settings(handle, **overrides)
    extra: dict[str, Any] = {}
    if clock is not None:
        extra = {"credit_sleep": clock.sleep, "credit_clock": clock}
    return Transport(ZohoConfig(**settings), org_limits=limits, **extra)


def test_budget_counts_the_orgs_spends_with_a_reserve_then_pauses_and_resumes(
    pg_database, make_limits, emulator, kit
):
    clock = FakeClock()
    window = 600.0
    a = make_limits(pg_database, window_seconds=window, clock=clock)
    b = make_limits(pg_database, window_seconds=window, clock=clock)
    # 100 credits a window, 20 % kept for the org's other integrations: 80 for the runs together.
    common = {"daily_credits_override": 100, "credit_wait_seconds": window / 4}
    first = _transport(emulator, a, clock, on_budget_exhausted="stop", **common)
    second = _transport(emulator, b, clock, on_budget_exhausted="pause", **common)
    assert isinstance(second.budget, OrgCreditBudget) and second.budget.reserve == 20
    for _ in range(60):
        assert first.call(USERS).status_code == 200
    first.close()  # writes its spends to the org account
    assert second.budget.remaining(fresh=True) == 40
    calls = 0
    while clock.slept == []:
        assert second.call(USERS).status_code == 200
        calls += 1
    # The second run stopped where the org's 80 ran out, not at 80 of its own, and waited ...
    assert calls == 21  # the 21st call waited before it went
    assert second.budget.spent == 21 and first.budget.spent == 60
    # ... until the window let every earlier credit go: it resumed, and sent the waiting call once.
    assert sum(clock.slept) >= window
    assert emulator.usage()["calls"]["GET /crm/v8/users"] == 60 + 21
    assert second.budget.remaining(fresh=True) == 100 - 1
    second.close()
    # The stop policy: a run refuses at the edge the org reached together, not at its own 80.
    first = _transport(emulator, a, clock, on_budget_exhausted="stop", **common)
    for _ in range(79):
        assert first.call(USERS).status_code == 200
    with pytest.raises(CreditsExhausted) as info:
        first.call(USERS)
    message = str(info.value)
    assert "org accounting" in message and "spent by the org 80, by this client 79" in message
    assert emulator.usage()["calls"]["GET /crm/v8/users"] == 60 + 21 + 79
    first.close()


def test_a_stopped_database_fails_calls_cleanly_and_they_go_on_once_it_is_back(private_pg_server, emulator):
    url = private_pg_server.url()
    limits = OrgLimits(url, "org1", concurrency=4, heavy_cap=2, lease_seconds=5.0, sync_seconds=0.2)
    transport = _transport(emulator, limits)
    try:
        for _ in range(5):
            assert transport.call(USERS).status_code == 200
        sent = emulator.usage()["calls_total"]
        private_pg_server.stop("fast")
        with pytest.raises(OrgLimitsUnavailable) as info:
            transport.call(USERS)
        message = str(info.value)
        assert "did not answer" in message and "the call was not sent to Zoho" in message
        assert private_pg_server.password not in message and "***" in message
        assert emulator.usage()["calls_total"] == sent  # not run unlimited: Zoho never saw it

        # Many threads at once, one of them waiting at the door: each fails, none hangs.
        results: list[BaseException | None] = []

        def call() -> None:
            try:
                transport.call(USERS)
                results.append(None)
            except BaseException as exc:  # noqa: BLE001 - kept for the assertion
                results.append(exc)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(results) == 8 and all(isinstance(r, OrgLimitsUnavailable) for r in results)
        assert emulator.usage()["calls_total"] == sent

        private_pg_server.start()
        assert transport.call(USERS).status_code == 200  # the pool's dead connections are replaced
        assert limits.credits.flush()
        assert limits.credits.spent(max_age=0) == 6  # the five before, the one after; none of the failed
        assert limits.snapshot()["held"] == {"all": 0, "heavy": 0}
    finally:
        transport.close()
        limits.close()


def test_a_crashed_database_mid_call_leaves_no_slot_taken_for_good(private_pg_server, emulator_factory):
    handle = emulator_factory(latency_ms=1_500)
    url = private_pg_server.url()
    limits = OrgLimits(url, "org1", concurrency=4, heavy_cap=2, lease_seconds=2.0, sync_seconds=0.2)
    transport = _transport(handle, limits)
    try:
        transport.call(USERS)  # token and tables ready
        done: list[int] = []
        thread = threading.Thread(target=lambda: done.append(transport.call(USERS).status_code))
        thread.start()
        while limits.slots.held == 0:
            time.sleep(0.01)
        private_pg_server.stop("immediate")  # a crash while the call is at Zoho
        thread.join(timeout=60)
        assert done == [200]  # the call in flight finishes; only its release could not be written
        private_pg_server.start()
        deadline = time.monotonic() + 60
        while limits.slots.occupancy()["all"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert limits.slots.occupancy()["all"] == 0  # the missed release made good, or the lease ran out
        assert transport.call(USERS).status_code == 200
    finally:
        transport.close()
        limits.close()


def test_config_reads_the_org_settings_and_hides_the_url():
    base = {"ZOHO_API_BASE": "http://127.0.0.1:9", "ZOHO_ACCOUNTS_URL": "http://127.0.0.1:9",
            "ZOHO_CLIENT_ID": "id", "ZOHO_CLIENT_SECRET": "secret", "ZOHO_REFRESH_TOKEN": "refresh"}
    plain = ZohoConfig.from_env(base)
    assert plain.org_limits_url is None
    config = ZohoConfig.from_env(
        base | {"ZOHO_ORG_LIMITS_URL": "postgresql+psycopg://u:pw-xyz@db/zoho", "ZOHO_ORG_CREDIT_RESERVE": "25%",
                "ZOHO_ORG_LEASE_SECONDS": "10", "ZOHO_USERS": "50"}
    )
    assert config.org_limits_url is not None and config.org_credit_reserve == 0.25
    assert config.org_credit_reserve_credits == int(config.daily_credits * 0.25)  # type: ignore[operator]
    assert config.org_lease_seconds == 10.0 and "pw-xyz" not in repr(config)
    with pytest.raises(ConfigError) as info:
        ZohoConfig.from_env(base | {"ZOHO_ORG_LIMITS_URL": "mysql://u:pw-xyz@db/zoho"})
    assert "ZOHO_ORG_LIMITS_URL" in str(info.value) and "pw-xyz" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        ZohoConfig.from_env(base | {"ZOHO_ORG_CREDIT_RESERVE": "120%"})
    assert "ZOHO_ORG_CREDIT_RESERVE" in str(info.value)


def test_unset_url_keeps_the_in_process_gates_and_budget(emulator):
    transport = _transport(emulator, None)
    try:
        assert transport.org_limits is None
        assert type(transport.budget) is CreditBudget and transport.budget.reserve == 0
        assert transport.call(USERS).status_code == 200
    finally:
        transport.close()


def test_every_client_of_a_process_shares_one_org_instance(org_url, emulator, kit):
    first = kit.client_for(emulator, org_limits_url=org_url, org_key="Org 1")
    second = kit.client_for(emulator, org_limits_url=org_url, org_key="Org 1")
    try:
        assert first.transport.org_limits is second.transport.org_limits is not None
        assert first.transport.org_limits.org == "org_1"
        first.users()
        second.users()
        first.close()
        second.close()
        assert first.transport.org_limits.credits.spent(max_age=0) == 2
    finally:
        close_shared_org_limits()


def test_an_upsert_cut_by_the_outage_resumes_with_each_record_written_once(
    private_pg_server, emulator_factory, kit, schema_ready
):
    handle = emulator_factory(latency_ms=60)
    records = kit.contacts(3_000)
    # A lease of an hour: the slots the outage kept from being freed can only come back by the
    # release being made good once the database answers, which is what this test is about.
    client = kit.client_for(handle, org_limits_url=private_pg_server.url(), org_key="dso", max_concurrency=2,
                            org_lease_seconds=3_600)
    try:
        schema_ready(client)
        outcome: list[BaseException] = []

        def load() -> None:
            try:
                client.upsert("Contacts", records)
            except BaseException as exc:  # noqa: BLE001 - inspected below
                outcome.append(exc)

        thread = threading.Thread(target=load)
        thread.start()
        while handle.usage()["calls"].get("POST /crm/v8/{module}/upsert", 0) < 4:
            time.sleep(0.01)
        private_pg_server.stop("fast")
        thread.join(timeout=120)
        assert len(outcome) == 1 and isinstance(outcome[0], OrgLimitsUnavailable)
        cut = outcome[0]
        done = {o.index for o in cut.outcomes}
        assert done and all(o.ok for o in cut.outcomes) and cut.pending_indices
        assert done.isdisjoint(cut.pending_indices) and done | set(cut.pending_indices) == set(range(3_000))
        assert len(kit.stored(handle, "Contacts")) == len(done)  # what was not sent is not there

        private_pg_server.start()
        again = client.upsert("Contacts", [records[i] for i in cut.pending_indices])
        assert all(o.ok for o in again)
        assert kit.ids_written_once(handle, "Contacts", {r["Source_System_ID"] for r in records})
        # The slots whose release the outage swallowed were freed once it was back, not leaked.
        assert client.transport.org_limits is not None
        assert client.transport.org_limits.slots.occupancy() == {"all": 0, "heavy": 0}
    finally:
        client.close()
        close_shared_org_limits()
