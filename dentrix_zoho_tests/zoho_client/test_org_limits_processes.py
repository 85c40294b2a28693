"""One org, one budget across real processes: several workers, each with many threads, against one
emulator and one PostgreSQL; a SIGKILLed worker's slots come back after their lease."""

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

from dentrix_zoho_tests.zoho_client.conftest import emulator_settings

from dentrix_zoho.zoho.limits import HEAVY_CALL_CAP
from dentrix_zoho.zoho.org_limits import OrgLimits

pytest.importorskip("psycopg")

WORKER = Path(__file__).with_name("org_limits_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _spawn(spec: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _config(handle: Any, url: str, **overrides: Any) -> dict[str, Any]:
    return emulator_settings(handle, **{"org_key": "dso", "org_limits_url": url, "max_retries": 12, **overrides})


@pytest.mark.slow
def test_workers_together_never_exceed_the_orgs_limits_at_the_emulator(
    kit, emulator_factory, schema_ready, pg_database
):
    # The emulator is Ultimate (25 slots) so that going past the org's 16 would show in its peak,
    # not only as 429s; the heavy cap (10) is Zoho's own and the emulator's.
    handle = emulator_factory(edition="ultimate", latency_ms=40)
    with kit.client_for(handle) as setup:
        schema_ready(setup)
    limit = 16
    workers = [
        _spawn({"mode": "calls", "tag": f"w{w}", "threads": 12, "rounds": 12,
                "config": _config(handle, pg_database, max_concurrency=limit)})
        for w in range(3)
    ]
    summaries = []
    for proc in workers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2_000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    assert all(not s["errors"] for s in summaries), [s["errors"][:3] for s in summaries]
    usage = handle.usage()
    concurrency = usage["concurrency"]
    # 36 threads in three processes wanted 16 slots, 10 of them for heavy calls.
    assert concurrency["max_seen"] <= limit
    assert concurrency["heavy_max_seen"] <= HEAVY_CALL_CAP
    assert usage["too_many_requests"]["total"] == 0
    assert sum(s["waits"] for s in summaries) > 0  # the processes did queue for the org's slots
    # Without the shared slots each process would go to 16 alone; together they reached the limit.
    assert concurrency["max_seen"] >= limit - 2
    # Every record once; the org account is the sum of the workers' own counts, and Zoho's.
    assert sum(s["written"] for s in summaries) == 3 * 12 * 12 * 11
    assert len(kit.stored(handle, "Contacts")) == 3 * 12 * 12 * 11
    org = OrgLimits(pg_database, "dso", concurrency=limit, heavy_cap=HEAVY_CALL_CAP)
    try:
        org_credits = org.credits.spent(max_age=0)
        assert org.slots.occupancy() == {"all": 0, "heavy": 0}
    finally:
        org.close()
    own = sum(s["own_credits"] for s in summaries)
    assert own == 3 * 12 * 12 * (2 + 1)
    assert org_credits == own
    assert usage["credits"]["used_24h"] >= own  # plus the set-up's schema calls


@pytest.mark.slow
def test_a_killed_workers_slots_come_back_after_their_lease(pg_database):
    lease = 3.0
    spec = {"mode": "hold", "url": pg_database, "org": "dso", "concurrency": 6, "heavy_cap": 3,
            "lease_seconds": lease, "hold": 6}
    holder = _spawn(spec)
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert json.loads(line)["held"] == 6
        org = OrgLimits(pg_database, "dso", concurrency=6, heavy_cap=3, lease_seconds=lease)
        try:
            # Alive, the holder keeps its slots past a lease: its keeper renews them.
            time.sleep(lease * 1.5)
            assert org.slots.occupancy()["all"] == 6
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            # A kill frees nothing by itself (these are leases, not session locks) ...
            assert org.slots.occupancy()["all"] == 6
            # ... but nobody renews them now: each comes back once its lease has run out.
            got: list[str] = []
            takers = [threading.Thread(target=lambda: got.append(org.slots.acquire("all"))) for _ in range(6)]
            for t in takers:
                t.start()
            for t in takers:
                t.join(timeout=120)
            assert len(got) == 6 and org.slots.waits > 0
            assert org.slots.occupancy()["all"] == 6
            for token in got:
                org.slots.release(token)
        finally:
            org.close()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
