"""The calls-per-minute ceiling held for the whole org: ``OrgMinute`` on a real PostgreSQL (and SQLite).

Several ``OrgLimits`` objects stand for several processes (each its own engine, holder and pool of
reserved calls); the tests with real processes are marked slow. Time is a clock the test owns: a
fake one whose sleeps move it on, or, where calls go to the emulator and their start times come
from the transport's events, real time run 20 times faster, so a minute passes in 3 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from dentrix_zoho.zoho import ZohoConfig
from dentrix_zoho.zoho.events import ApiCallEvent
from dentrix_zoho.zoho.org_limits import (
    MINUTE_SECONDS,
    START_ALLOWANCE_S,
    OrgLimits,
    OrgLimitsUnavailable,
)
from dentrix_zoho.zoho.throttle import MinuteRateLimiter
from dentrix_zoho.zoho.transport import Transport
from dentrix_zoho_tests.zoho_client.conftest import USERS, FakeClock, emulator_settings

pytest.importorskip("psycopg")

CEILING = 30
WORKER = Path(__file__).with_name("org_limits_worker.py")
ROOT = Path(__file__).resolve().parents[2]
WARP = 20.0  # real time x 20: a minute in 3 s


def most_in_any_window(times: list[float], window: float) -> int:
    """The most of ``times`` inside any half-open interval [t, t + window)."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def _start_many(members: list[OrgLimits], threads_each: int, starts_each: int) -> dict[int, list[float]]:
    """Threads of every member start calls under the ceiling; the start times by member."""
    started: dict[int, list[float]] = {i: [] for i in range(len(members))}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        ceiling = members[i].minute(CEILING)
        try:
            for _ in range(starts_each):
                at = ceiling.start()
                with lock:
                    started[i].append(at)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(members)) for _ in range(threads_each)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    return started


def test_members_together_never_start_more_than_the_ceiling_in_any_minute(org_url, make_limits):
    clock = FakeClock()
    members = [make_limits(org_url, rate_clock=clock, rate_sleep=clock.sleep) for _ in range(3)]
    started = _start_many(members, threads_each=4, starts_each=15)
    every = [t for times in started.values() for t in times]
    assert len(every) == 3 * 4 * 15
    # 180 starts wanted at once, 30 allowed a minute for the three together (one member alone would
    # have taken 30 a minute for itself, so 90 in the first minute).
    assert most_in_any_window(every, MINUTE_SECONDS) == CEILING
    assert sum(m.minute(CEILING).waits for m in members) > 0
    # Reserved in blocks for the threads waiting at once, fewer statements than calls.
    assert sum(m.minute(CEILING).reservations for m in members) < len(every)
    assert all(m.minute(CEILING).started == len(started[i]) for i, m in enumerate(members))


def test_another_org_has_a_minute_of_its_own(org_url, make_limits):
    clock = FakeClock()
    mine = make_limits(org_url, "org1", rate_clock=clock).minute(CEILING)
    theirs = make_limits(org_url, "org2", rate_clock=clock).minute(CEILING)
    both = [mine.try_start() for _ in range(CEILING)] + [theirs.try_start() for _ in range(CEILING)]
    assert None not in both and most_in_any_window(both, MINUTE_SECONDS) == 2 * CEILING  # type: ignore[arg-type]
    assert mine.try_start() is None and theirs.try_start() is None


def test_a_minute_after_their_last_possible_start_the_calls_come_back(org_url, make_limits):
    clock = FakeClock()
    t0 = clock.now
    a = make_limits(org_url, rate_clock=clock).minute(CEILING)
    b = make_limits(org_url, rate_clock=clock).minute(CEILING)
    assert [a.try_start() for _ in range(CEILING)] == [t0] * CEILING
    assert b.try_start() is None and a.try_start() is None
    assert b.counted() == CEILING
    # A call may have started as late as its allowance; a minute after that, not before, it no longer counts.
    clock.now = t0 + START_ALLOWANCE_S + MINUTE_SECONDS - 0.001
    assert b.try_start() is None
    clock.now = t0 + START_ALLOWANCE_S + MINUTE_SECONDS
    assert all(b.try_start() is not None for _ in range(CEILING))
    assert a.try_start() is None


def test_reserved_calls_not_started_go_back_at_once(org_url, make_limits):
    clock = FakeClock()
    t0 = clock.now
    a_limits = make_limits(org_url, rate_clock=clock)
    a = a_limits.minute(CEILING)
    b = make_limits(org_url, rate_clock=clock).minute(CEILING)
    assert a.reserve(10) == 10 and a.try_start() is not None  # one of the ten started, nine held
    assert b.counted() == 10 and sum(b.try_start() is not None for _ in range(25)) == 20
    # Not started within the allowance: they may no longer be started, so they go back.
    clock.now = t0 + START_ALLOWANCE_S / 2
    assert a.try_start() is None  # the nine are out of date; no free row either
    assert a.give_back() == 9 and a.given_back == 9
    assert sum(b.try_start() is not None for _ in range(12)) == 9
    # A member closing returns what it holds unstarted.
    clock.now = t0 + START_ALLOWANCE_S / 2 + START_ALLOWANCE_S + MINUTE_SECONDS  # every row free again
    assert a.reserve(5) == 5
    a_limits.close()
    assert sum(b.try_start() is not None for _ in range(CEILING + 1)) == CEILING


_PREVIOUS_SCHEMA = (
    "CREATE TABLE zoho_org_slots (org TEXT NOT NULL, kind TEXT NOT NULL, slot INTEGER NOT NULL,"
    " holder TEXT, expires_at DOUBLE PRECISION, PRIMARY KEY (org, kind, slot))",
    "CREATE TABLE zoho_org_credits (org TEXT NOT NULL, bucket BIGINT NOT NULL, credits BIGINT NOT NULL,"
    " PRIMARY KEY (org, bucket))",
)


def test_an_org_database_of_the_previous_schema_is_upgraded_in_place(org_url, make_limits):
    engine = create_engine(org_url)
    try:
        with engine.begin() as conn:
            for ddl in _PREVIOUS_SCHEMA:
                conn.execute(text(ddl))
            conn.execute(text("INSERT INTO zoho_org_slots VALUES ('org1', 'all', 0, 'old-run#1', 1e12)"))
            conn.execute(text("INSERT INTO zoho_org_slots (org, kind, slot) VALUES ('org1', 'all', 1)"))
            conn.execute(text("INSERT INTO zoho_org_credits VALUES ('org1', :b, 17)"),
                         {"b": int(time.time() // 60)})
        clock = FakeClock()
        limits = make_limits(org_url, concurrency=2, heavy_cap=1, rate_clock=clock)
        ceiling = limits.minute(CEILING)
        assert sum(ceiling.try_start() is not None for _ in range(CEILING + 1)) == CEILING
        # What the older runs wrote is still there and still counts.
        assert limits.slots.occupancy()["all"] == 1
        assert limits.credits.spent(max_age=0) == 17
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM zoho_org_call_starts")).scalar_one() == CEILING
        # A larger ceiling later adds its rows to the same table.
        assert sum(limits.minute(CEILING + 5).try_start() is not None for _ in range(10)) == 5
    finally:
        engine.dispose()


def test_a_stopped_database_fails_the_ceiling_cleanly_and_it_goes_on_once_back(private_pg_server, emulator):
    url = private_pg_server.url()
    limits = OrgLimits(url, "org1", concurrency=4, heavy_cap=2, lease_seconds=5.0, sync_seconds=0.2)
    transport = Transport(ZohoConfig(**emulator_settings(emulator, calls_per_minute=CEILING)), org_limits=limits)
    try:
        assert transport.org_minute is not None and transport.rate_limiter is None
        assert transport.call(USERS).status_code == 200
        ceiling = transport.org_minute
        sent = emulator.usage()["calls_total"]
        private_pg_server.stop("fast")
        with pytest.raises(OrgLimitsUnavailable) as info:
            ceiling.start()
        message = str(info.value)
        assert "did not answer" in message and "per-minute ceiling" in message
        assert "the call was not sent to Zoho" in message
        assert private_pg_server.password not in message and "***" in message
        with pytest.raises(OrgLimitsUnavailable):
            transport.call(USERS)
        assert emulator.usage()["calls_total"] == sent
        private_pg_server.start()
        assert transport.call(USERS).status_code == 200
        assert ceiling.started == 2 and ceiling.counted() == 2
    finally:
        transport.close()
        limits.close()


class WarpedClock:
    """Real time run ``WARP`` times faster from ``base``; the same function in every process."""

    def __init__(self, base: float) -> None:
        self.base = base

    def __call__(self) -> float:
        return self.base + (time.time() - self.base) * WARP

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / WARP)


def _calls_at(events: list[ApiCallEvent]) -> list[float]:
    return [e.time for e in events if e.path_template == USERS.path_template]


def test_two_clients_together_keep_the_ceiling_at_the_emulator(pg_database, emulator, make_limits):
    clock = WarpedClock(time.time())
    # An allowance of 10 s warped (0.5 s real) leaves a thread time to get from its start to the send.
    settings = {"rate_clock": clock, "rate_sleep": clock.sleep, "start_allowance": 10.0}
    events: list[ApiCallEvent] = []
    transports = [
        Transport(ZohoConfig(**emulator_settings(emulator, calls_per_minute=CEILING)), event_sink=events.append,
                  org_limits=make_limits(pg_database, **settings))
        for _ in range(2)
    ]
    try:
        assert all(t.rate_limiter is None and t.org_minute is not None for t in transports)
        errors: list[BaseException] = []

        def work(transport: Transport) -> None:
            try:
                for _ in range(10):
                    assert transport.call(USERS).status_code == 200
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in transports for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:3]
        starts = _calls_at(events)
        assert len(starts) == 60 == emulator.usage()["calls"]["GET /crm/v8/users"]
        assert most_in_any_window(starts, MINUTE_SECONDS / WARP) == CEILING
    finally:
        for t in transports:
            t.close()


def test_without_the_org_database_the_ceiling_stays_this_processs_own(emulator):
    transport = Transport(ZohoConfig(**emulator_settings(emulator, calls_per_minute=CEILING)))
    try:
        assert transport.org_limits is None and transport.org_minute is None
        assert isinstance(transport.rate_limiter, MinuteRateLimiter)
        assert transport.rate_limiter.per_minute == CEILING
    finally:
        transport.close()


# -- real processes ----------------------------------------------------------------------------------


def _spawn(spec: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_processes_together_keep_the_ceiling_at_the_emulator(pg_database, emulator):
    base = time.time()
    config = emulator_settings(emulator, calls_per_minute=CEILING, org_key="dso", org_limits_url=pg_database)
    spec = {"mode": "minute", "config": config, "base": base, "warp": WARP, "allowance": 10.0,
            "threads": 3, "calls": 8}
    workers = [_spawn(spec) for _ in range(3)]
    summaries = []
    for proc in workers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2_000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    assert all(not s["errors"] for s in summaries), [s["errors"][:3] for s in summaries]
    starts = [t for s in summaries for t in s["starts"]]
    assert len(starts) == 3 * 3 * 8 == emulator.usage()["calls"]["GET /crm/v8/users"]
    # Each process alone could have sent its 24 in the first minute; together they waited for the org's.
    assert most_in_any_window(starts, MINUTE_SECONDS / WARP) == CEILING
    assert all(s["started"] == 3 * 8 for s in summaries)
    assert sum(s["waits"] for s in summaries) > 0


@pytest.mark.slow
def test_a_process_killed_holding_a_reservation_leaks_it_one_minute_at_most(org_url, make_limits):
    t0 = 1_800_000_000.0
    holder = _spawn({"mode": "reserve", "url": org_url, "org": "dso", "ceiling": CEILING, "now": t0})
    try:
        assert holder.stdout is not None
        assert json.loads(holder.stdout.readline()) == {"reserved": CEILING}
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        clock = FakeClock(t0)
        ceiling = make_limits(org_url, "dso", rate_clock=clock).minute(CEILING)
        # Nothing says whether the killed process sent those calls: they count until a minute has
        # passed since the last moment it could have, and not longer.
        clock.now = t0 + START_ALLOWANCE_S + MINUTE_SECONDS - 0.001
        assert ceiling.try_start() is None and ceiling.counted() == CEILING
        clock.now = t0 + START_ALLOWANCE_S + MINUTE_SECONDS
        assert sum(ceiling.try_start() is not None for _ in range(CEILING + 1)) == CEILING
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
