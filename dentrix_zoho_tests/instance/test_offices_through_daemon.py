"""Offices migrated in parallel through the real run queue, into one Zoho org, with one shared budget.

Everything as deploy/README.md sets it up for one machine: the shipped ``deploy/local/dagster.yaml``,
Dagster's storage, the ledger and the org's limits (``ZOHO_ORG_LIMITS_URL``) on one real PostgreSQL,
``dagster-daemon run`` on the project's own definitions with an offices file of four tiny synthetic
practices (different seeds and office numbers), one emulator (Enterprise: 20 concurrent calls) with a
little latency so that calls pile up. The map is approved once in the ledger (the full job's blocking
gate); each backfill of ``full_migration`` queues one run per office partition for the daemon.

* Two offices at once: every office record in Zoho exactly once and matching its crosswalk, the
  emulator's peak concurrency within the edition's limit with no 429, and the org's shared credit
  count equal to the sum of the runs' own counts (ledger api_calls) and to what the emulator charged;
  then ``dentrix-zoho rollback --office X --all --yes`` leaves every other record byte-identical.
* Two more offices at once, one run SIGKILLed mid-load: its code server fails it, the daemon's run
  retries queue it again, and the retry resumes (records created by both runs, none twice) while the
  other office's run finishes.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from sqlalchemy import create_engine, text

from dentrix_zoho_tests.instance import dso
from dentrix_zoho_tests.instance.conftest import LOCAL_YAML
from dentrix_zoho_tests.instance.daemon import process_tree
from dentrix_zoho_tests.pg_server import PgServer
from dentrix_zoho.zoho_emulator.testing import running_emulator

pytestmark = pytest.mark.slow

OFFICES = dso.office_specs(4)
FIRST, SECOND = [o.office_id for o in OFFICES[:2]], [o.office_id for o in OFFICES[2:]]
LATENCY_MS = 40.0  # enough for two runs' calls to pile up against the org's 20
EDITION_LIMIT = 20  # Enterprise (dentrix_zoho/zoho/limits.py; the emulator says the same in usage())
KILL_AFTER_WRITES = 300  # records a run has written (by its ledger) before it is killed: inside its load
MAX_RUNS = yaml.safe_load(LOCAL_YAML.read_text())["concurrency"]["runs"]["max_concurrent_runs"]
IN_PROGRESS = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}


@dataclass
class Dso:
    env: dict[str, str]
    databases: dso.DsoDatabases
    emulator: Any
    log: Path
    daemon: Any

    def instance(self) -> Any:
        with dso.environment(self.env):
            return dg.DagsterInstance.get()


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer) -> Iterator[Dso]:
    base = tmp_path_factory.mktemp("dso_daemon")
    offices_file, users = dso.write_offices(base / "practices", OFFICES)
    databases = dso.DsoDatabases.create(pg_server)
    home = base / "home"
    home.mkdir()
    with running_emulator(base / "zoho", users=1, latency_ms=LATENCY_MS,
                          extra_args=["--users-file", str(users), "--token-mint-limit", "0"]) as emu:
        env = dso.dso_env(home=home, dagster_home=dso.make_dagster_home(base / "dagster_home"),
                          offices_file=offices_file, emulator=emu, databases=databases)
        dso.approve_map(databases.ledger)
        log = base / "daemon.log"
        with dso.project_daemon(env, log) as daemon:
            dso.prepare_instance(env, [o.office_id for o in OFFICES], pool_slots=MAX_RUNS)
            yield Dso(env, databases, emu, log, daemon)
            assert daemon.poll() is None, f"the daemon exited:\n{dso.log_tail(log)}"
        # No secret in what the daemon, its code server and the runs printed.
        printed = log.read_text(errors="replace")
        assert pg_server.password not in printed and emu.client_secret not in printed


def _finished(instance: Any, backfill: str, expected: int) -> bool:
    runs = dso.runs_of(instance, backfill)
    return len(runs) >= expected and all(r.is_finished for r in runs)


def _report(instance: Any, runs: list[Any]) -> str:
    return "\n".join(f"{r.tags.get(dso.PARTITION_TAG)} {r.run_id} {r.status.value} {dso.failed_steps(instance, r.run_id)}"
                     for r in runs)


def _assert_each_record_once(group: Dso, offices: list[str]) -> dict[str, Any]:
    """Each office's records in Zoho once, and exactly those its ledger says are its own."""
    snapshot = group.emulator.snapshot()
    assert dso.duplicates(snapshot) == {}
    crosswalk = dso.live_crosswalk(group.databases.ledger)
    for office in offices:
        in_zoho = Counter(module for key, held in dso.records_by_source_id(snapshot).items()
                          if key.startswith(f"{office}:") for module, _ in held)
        ours = Counter({m: n for m, n in crosswalk.get(office, Counter()).items() if m in dso.KEYED_MODULES})
        assert in_zoho and in_zoho == ours, (office, in_zoho, ours)
    # Notes and Attachments carry no Source_System_ID: a record sent twice would be one more in Zoho
    # than the ledger owns (all offices together; nothing else writes to this org).
    owned = sum((c for c in crosswalk.values()), Counter())
    assert dso.module_counts(snapshot) == +owned
    return snapshot


def test_two_offices_load_once_within_the_org_limits_and_one_rolls_back_alone(group: Dso) -> None:
    usage_before = group.emulator.usage()
    org_before = _org_credits(group)
    backfill = dso.request_backfill(group.env, FIRST)
    with group.instance() as instance:
        seen_together = 0
        def done() -> bool:
            nonlocal seen_together
            runs = dso.runs_of(instance, backfill)
            seen_together = max(seen_together, sum(r.status in IN_PROGRESS for r in runs))
            return len(runs) >= len(FIRST) and all(r.is_finished for r in runs)
        dso.wait_for(done, "both office runs finished", group.log)
        runs = dso.runs_of(instance, backfill)
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(FIRST), _report(instance, runs)
        assert sorted(r.tags[dso.PARTITION_TAG] for r in runs) == sorted(FIRST)
        assert seen_together == len(FIRST)  # the queue ran the offices in parallel
        for run in runs:
            checks = dso.check_results(instance, run.run_id)
            assert {"zero_loss", "mapping_approved", "fits_budget"} <= set(checks), checks
            assert all(checks.values()), (run.tags[dso.PARTITION_TAG], checks)

    _assert_each_record_once(group, FIRST)
    usage = group.emulator.usage()
    assert usage["concurrency"]["max_seen"] <= EDITION_LIMIT, usage["concurrency"]
    assert usage["too_many_requests"].get("concurrency", 0) == usage_before["too_many_requests"].get("concurrency", 0)

    # One budget: what the org's shared account counted is what the runs' clients counted, call by
    # call, and what Zoho charged.
    by_run = dso.ledger_credits_by_run(group.databases.ledger)
    runs_credits = sum(by_run.get(r.run_id, 0) for r in runs)
    charged = usage["credits"]["used_total"] - usage_before["credits"]["used_total"]
    assert runs_credits > 0 and all(by_run.get(r.run_id) for r in runs)
    assert _org_credits(group) - org_before == runs_credits == charged

    # Roll one office back from the command line: every other record in the org stays byte for byte.
    gone, kept = FIRST
    before = group.emulator.snapshot()
    theirs = _zoho_ids(group, gone)
    others = {r["id"]: json.dumps(r, sort_keys=True) for records in before["modules"].values() for r in records
              if r["id"] not in theirs}
    assert theirs and any(k.startswith(f"{kept}:") for k in dso.records_by_source_id(before))
    done_cli = dso.cli(group.env, "dentrix-zoho", "rollback", "--office", gone, "--all", "--yes")
    assert group.databases.server.password not in done_cli.stdout + done_cli.stderr
    after = group.emulator.snapshot()
    remaining = {r["id"]: json.dumps(r, sort_keys=True) for records in after["modules"].values() for r in records}
    assert not theirs & set(remaining)
    assert remaining == others
    assert not dso.office_records(after, gone) and dso.office_records(after, kept)
    assert gone not in dso.live_crosswalk(group.databases.ledger)


def test_a_run_killed_mid_load_resumes_without_duplicates_while_the_other_office_finishes(group: Dso) -> None:
    backfill = dso.request_backfill(group.env, SECOND)
    ledger = group.databases.ledger
    with group.instance() as instance:
        victim: Any = None

        def one_run_mid_load() -> bool:
            nonlocal victim
            runs = [r for r in dso.runs_of(instance, backfill) if r.status == dg.DagsterRunStatus.STARTED]
            victim = next((r for r in runs if dso.writes_of_run(ledger, r.run_id) >= KILL_AFTER_WRITES), None)
            return victim is not None

        dso.wait_for(one_run_mid_load, f"a run with {KILL_AFTER_WRITES} records written", group.log, every=0.2)
        other = next(r for r in dso.runs_of(instance, backfill) if r.run_id != victim.run_id)
        assert instance.get_run_by_id(other.run_id).status in IN_PROGRESS  # the other office is loading too
        pid = dso.run_pid(instance, victim.run_id)
        assert pid is not None and pid in {p for p, _ in process_tree(group.daemon.pid)}  # a run of our daemon
        os.kill(pid, signal.SIGKILL)
        written_when_killed = dso.writes_of_run(ledger, victim.run_id)

        # The code server sees its run process gone and fails the run; run_retries queues it again.
        dso.wait_for(lambda: _finished(instance, backfill, len(SECOND) + 1), "the retry and the other run finished",
                     group.log)
        runs = dso.runs_of(instance, backfill)
        report = _report(instance, runs)
        assert instance.get_run_by_id(victim.run_id).status == dg.DagsterRunStatus.FAILURE, report
        assert instance.get_run_by_id(other.run_id).status == dg.DagsterRunStatus.SUCCESS, report
        (retry,) = [r for r in runs if r.root_run_id == victim.run_id]
        assert retry.status == dg.DagsterRunStatus.SUCCESS and retry.tags[dso.PARTITION_TAG] == \
            victim.tags[dso.PARTITION_TAG], report
        for run in (retry, other):
            checks = dso.check_results(instance, run.run_id)
            assert "zero_loss" in checks and all(checks.values()), (run.tags[dso.PARTITION_TAG], checks)

    _assert_each_record_once(group, SECOND)
    # Resumed, not redone: the killed run's records stay the killed run's, the retry created the rest.
    created = _created_by(group, victim.tags[dso.PARTITION_TAG])
    assert created.get(victim.run_id, 0) >= KILL_AFTER_WRITES // 2 and created.get(retry.run_id, 0) > 0, created
    assert written_when_killed < sum(created.values())
    usage = group.emulator.usage()
    assert usage["concurrency"]["max_seen"] <= EDITION_LIMIT, usage["concurrency"]
    assert usage["too_many_requests"].get("concurrency", 0) == 0, usage["too_many_requests"]


def _org_credits(group: Dso) -> int:
    try:
        return dso.org_credits(group.databases.limits)
    except Exception as exc:  # the table appears with the first client that uses the limiter
        if "zoho_org_credits" in str(exc):
            return 0
        raise


def _zoho_ids(group: Dso, office: str) -> set[str]:
    engine = create_engine(group.databases.ledger)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT zoho_id FROM crosswalk WHERE office_id = :o AND NOT deleted"),
                                {"o": office}).all()
    finally:
        engine.dispose()
    return {str(r[0]) for r in rows}


def _created_by(group: Dso, office: str) -> dict[str, int]:
    engine = create_engine(group.databases.ledger)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT created_by_run, count(*) FROM crosswalk WHERE office_id = :o "
                                     "AND NOT deleted GROUP BY created_by_run"), {"o": office}).all()
    finally:
        engine.dispose()
    return {str(run): int(n) for run, n in rows}
