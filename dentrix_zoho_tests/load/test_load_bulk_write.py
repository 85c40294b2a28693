"""The loader's Bulk Write path: chosen where it costs fewer credits, the same Zoho state as the record
API, per-row errors quarantined, and a job that is killed, fails or never finishes loses nothing and
writes nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dentrix_zoho.load import LoadOptions, load_all, shaped_provider_ids
from dentrix_zoho.load.bulk_write import DECISION_OPERATION, JOB_OPERATION, SETTLED_OPERATION
from dentrix_zoho.load.context import ModuleLoadResult
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.zoho import limits
from dentrix_zoho.zoho.planning import choose_write_path

KEYED_STEPS = ("responsible_parties", "patients", "leads", "tasks")
CONTACT_STEPS = ("responsible_parties", "patients")
FAST_POLL = {"bulk_poll_initial": 0.05, "bulk_poll_max": 0.2}
RUNNER = Path(__file__).with_name("crash_runner.py")
KNOB = "ZOHO_EMULATOR_BULK_JOBS"


def _by_step(results: list[ModuleLoadResult]) -> dict[str, ModuleLoadResult]:
    return {r.step: r for r in results}


def _keyed(snapshot: dict[str, Any], module: str) -> Counter[str]:
    return Counter(str(r.get("Source_System_ID")) for r in snapshot["modules"].get(module, []))


def _ops(world: Any, operation: str) -> list[Any]:
    return [e for e in world.ledger.audit_entries() if e.operation == operation]


# -- the planner -----------------------------------------------------------------------------------


def test_planner_picks_bulk_write_above_the_threshold_and_the_record_api_below() -> None:
    def plan(module: str, n: int) -> Any:
        return choose_write_path(module, n, concurrency=10, latency_s=0.3, remaining_credits=None,
                                 poll_interval_s=30.0)

    small, large = plan("Contacts", 1_000), plan("Contacts", 60_000)
    assert small.path == "records" and small.records_credits == limits.write_credits(1_000) == 100
    assert small.bulk_credits is not None and small.bulk_credits > small.records_credits
    assert large.path == "bulk" and large.records_credits == limits.write_credits(60_000) == 6_000
    assert large.bulk_credits is not None and large.bulk_credits < large.records_credits
    assert large.bulk_credits >= limits.bulk_jobs(60_000) * limits.CREDITS_BULK_WRITE == 1_500
    # Bulk Write does not take Events, however many
    assert plan("Events", 60_000).path == "records" and plan("Events", 60_000).bulk_credits is None


def test_write_path_option_and_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZOHO_WRITE_PATH", raising=False)
    assert LoadOptions().write_path == "auto"
    monkeypatch.setenv("ZOHO_WRITE_PATH", "Bulk")
    assert LoadOptions().write_path == "bulk"
    monkeypatch.setenv("ZOHO_WRITE_PATH", "sometimes")
    with pytest.raises(ValueError, match="ZOHO_WRITE_PATH"):
        LoadOptions()


# -- the same Zoho state by either path -------------------------------------------------------------


@pytest.mark.slow
def test_bulk_write_leaves_the_state_the_record_api_leaves(shaped_practice: Any, world_factory: Any,
                                                           kit: Any) -> None:
    by_bulk = world_factory(shaped_practice.duckdb_path, shaped_practice.spec, client=FAST_POLL)
    by_records = world_factory(shaped_practice.duckdb_path, shaped_practice.spec)
    auto = _by_step(load_all(by_records.context(), KEYED_STEPS))  # "auto" on a tiny practice: the record API
    bulk = _by_step(load_all(by_bulk.context(write_path="bulk"), KEYED_STEPS))

    for step in KEYED_STEPS:
        assert auto[step].write_path == "records" and auto[step].bulk_rows == 0
        assert auto[step].planned_bulk_credits > auto[step].planned_records_credits > 0
        assert bulk[step].write_path == "bulk" and bulk[step].bulk_rows > 0 and bulk[step].bulk_jobs >= 1
        assert (bulk[step].ok, bulk[step].created, bulk[step].quarantined, bulk[step].failed) == (
            auto[step].ok, auto[step].created, auto[step].quarantined, auto[step].failed)
    # Rows with subform rows (insurance) or a What_Id went by the record API, the rest in jobs.
    assert bulk["patients"].bulk_rows < bulk["patients"].ok

    got, want = kit.canonical(by_bulk.handle.snapshot()), kit.canonical(by_records.handle.snapshot())
    for module in ("Contacts", "Leads", "Tasks"):
        assert len(got[module]) == len(want[module]) > 0
        assert got[module] == want[module], module
    # the decision and each job are in the ledger; every job's result was recorded
    decisions = _ops(by_bulk, DECISION_OPERATION)
    assert decisions and all(e.code and e.code.startswith("bulk.r") for e in decisions)
    jobs = {e.zoho_id for e in _ops(by_bulk, JOB_OPERATION)}
    settled = {e.zoho_id: e.code for e in _ops(by_bulk, SETTLED_OPERATION)}
    assert jobs and settled == {j: "COMPLETED" for j in jobs}
    assert all(e.code and e.code.startswith("records.r") for e in _ops(by_records, DECISION_OPERATION))
    # crosswalk: the same records, all created by us
    for world in (by_bulk, by_records):
        rows = [r for m in ("Contacts", "Leads", "Tasks") for r in world.ledger.crosswalk_rows(module=m)]
        assert len(rows) == sum(len(got[m]) for m in ("Contacts", "Leads", "Tasks"))
        assert all(r.created_by_run for r in rows)
    # a second bulk run finds nothing changed
    again = load_all(by_bulk.context(write_path="bulk"), KEYED_STEPS)
    assert sum(r.sent for r in again) == 0


# -- per-row errors ----------------------------------------------------------------------------------


def _with_bad_rows(tables: dict[str, list[dict[str, Any]]]) -> None:
    from dentrix_zoho_tests.load.conftest import module_row

    tables["contacts"] += [
        module_row("patient", 4, {"First_Name": "No", "Date_of_Birth": "1990-02-03"},
                   {"Owner": {"provider_id": "DDS1"}}, tier=1),  # no Last_Name
        module_row("patient", 5, {"Last_Name": "Bad", "Balance_Due": "lots"},
                   {"Owner": {"provider_id": "DDS1"}}, tier=1),
        module_row("patient", 6, {"Last_Name": "Good", "Date_of_Birth": "1985-07-09", "Do_Not_Call": True},
                   {"Owner": {"provider_id": "DDS2"}}, tier=1),
    ]


@pytest.mark.parametrize("path", ["bulk", "records"])
def test_rows_zoho_refuses_in_a_job_are_quarantined_like_the_record_apis(path: str, world_factory: Any,
                                                                         kit: Any, tmp_path: Path) -> None:
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=_with_bad_rows)
    world = world_factory(duck, load_spec(), client=FAST_POLL)
    results = _by_step(load_all(world.context(write_path=path), CONTACT_STEPS))
    assert results["patients"].write_path == path
    # the code and the column Zoho named, with the class of the value (never the value)
    held = {q.source_id: (q.field, q.value_class, q.reason.split(" [")[0].split(" (")[0])
            for q in world.ledger.quarantine_rows()}
    assert held == {kit.sid("patient", 4): ("Last_Name", "null", "zoho_rejected MANDATORY_NOT_FOUND"),
                    kit.sid("patient", 5): ("Balance_Due", "text_len_1_16", "zoho_rejected INVALID_DATA")}
    contacts = {r["Source_System_ID"]: r for r in world.handle.snapshot()["modules"]["Contacts"]}
    assert set(contacts) == {kit.sid("patient", n) for n in (1, 2, 3, 6)}
    assert contacts[kit.sid("patient", 6)]["Date_of_Birth"] == "1985-07-09"
    assert contacts[kit.sid("patient", 6)]["Do_Not_Call"] is True
    assert results["patients"].quarantined == 2 and results["patients"].failed == 0


# -- a job that fails or never finishes --------------------------------------------------------------


@pytest.mark.parametrize("knob,timeout", [("fail:1", None), ("stall:1", 0.5)])
def test_a_failed_or_unfinished_job_falls_back_to_the_record_api(knob: str, timeout: float | None,
                                                                  world_factory: Any, kit: Any, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KNOB, knob)  # the emulator reads it when a job starts: one row written, then stop
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=_with_bad_rows)
    world = world_factory(duck, load_spec(), client=FAST_POLL)
    results = _by_step(load_all(world.context(write_path="bulk", bulk_timeout_s=timeout), CONTACT_STEPS))
    patients = results["patients"]
    assert patients.bulk_rows > 0 and patients.bulk_fallback == patients.bulk_rows
    assert patients.failed == 0 and patients.quarantined == 2
    keyed = _keyed(world.handle.snapshot(), "Contacts")
    assert set(keyed) == {kit.sid("patient", n) for n in (1, 2, 3, 6)} and max(keyed.values()) == 1
    # the row the job wrote before it stopped came back as "update" from the record API: still ours
    rows = list(world.ledger.crosswalk_rows(module="Contacts"))
    assert len(rows) == 4 and all(r.created_by_run for r in rows)
    settled = {e.code for e in _ops(world, SETTLED_OPERATION)}
    assert settled == {"FAILED" if knob.startswith("fail") else "TIMEOUT"}


# -- a run killed while its job runs ------------------------------------------------------------------


@pytest.mark.slow
def test_killed_while_a_job_runs_then_resumed_no_duplicate_and_rollback_removes_all(
        shaped_practice: Any, world_factory: Any, tmp_path: Path) -> None:
    world = world_factory(shaped_practice.duckdb_path, shaped_practice.spec, client=FAST_POLL)
    handle = world.handle
    cfg = {
        "duckdb_path": str(shaped_practice.duckdb_path), "ledger_url": world.ledger_url, "base_url": handle.base_url,
        "client_id": handle.client_id, "client_secret": handle.client_secret, "refresh_token": handle.refresh_token,
        "run_id": "killed-bulk", "office_id": "office-1", "users_domain": "wasatchdental.com",
        "providers": shaped_provider_ids(shaped_practice.duckdb_path, "office-1"), "steps": list(KEYED_STEPS),
        # the first poll of the first job answers, and the loader dies before it hears the job finished
        "kill_after": 1, "kill_match": "GET /crm/bulk/v8/write/{job_id}", "client": FAST_POLL,
    }
    config = tmp_path / "runner.json"
    config.write_text(json.dumps(cfg), encoding="utf-8")
    killed = subprocess.run([sys.executable, str(RUNNER), str(config)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "ZOHO_WRITE_PATH": "bulk",
                                 "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert killed.returncode == -9, killed.stderr[-2000:]
    [job] = [e.zoho_id for e in _ops(world, JOB_OPERATION)]
    assert not _ops(world, SETTLED_OPERATION)

    ctx = world.context(write_path="bulk")
    resumed = _by_step(load_all(ctx, KEYED_STEPS))
    assert resumed["responsible_parties"].reconciled > 0  # the killed run's job, taken in from its result
    assert {e.zoho_id: e.code for e in _ops(world, SETTLED_OPERATION)}[job] == "COMPLETED"
    assert sum(r.failed for r in resumed.values()) == 0
    snapshot = handle.snapshot()
    total = 0
    for module in ("Contacts", "Leads", "Tasks"):
        keyed = _keyed(snapshot, module)
        assert keyed and max(keyed.values()) == 1, f"{module}: duplicates"
        rows = list(world.ledger.crosswalk_rows(module=module, deleted=False))
        assert {r.source_id for r in rows} == set(keyed)
        assert all(r.created_by_run in ("killed-bulk", ctx.run_id) for r in rows), module
        total += len(rows)
    by_killed = [r for m in ("Contacts",) for r in world.ledger.crosswalk_rows(module=m)
                 if r.created_by_run == "killed-bulk"]
    assert by_killed, "the job's added rows are recorded as created by the run that created the job"

    from dentrix_zoho.rollback.cli import rollback

    env = {"ZOHO_API_BASE": handle.base_url, "ZOHO_ACCOUNTS_URL": handle.base_url, "ZOHO_CLIENT_ID": handle.client_id,
           "ZOHO_CLIENT_SECRET": handle.client_secret, "ZOHO_REFRESH_TOKEN": handle.refresh_token,
           "ZOHO_EDITION": "enterprise", "ZOHO_USERS": "5", "DENTRIX_ZOHO_LEDGER_URL": world.ledger_url}
    done = CliRunner().invoke(rollback, ["--all", "--yes"], env=env)
    assert done.exit_code == 0, done.output[-2000:]
    after = handle.snapshot()["modules"]
    assert total > 100
    assert not any(after.get(m) for m in ("Contacts", "Leads", "Tasks")), "rollback left records"
