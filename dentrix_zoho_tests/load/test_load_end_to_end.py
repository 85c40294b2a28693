"""End to end on the tiny practice: stage -> shape -> schema -> owners -> load -> reconcile,
a second run, crash-and-resume in a killed subprocess, and a load under injected faults."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.load import load_all, shaped_provider_ids
from dentrix_zoho.load.diff_report import write_diff_report
from dentrix_zoho.load.reconcile import (
    reconcile_accounting,
    reconcile_balances,
    reconcile_parents,
    reconcile_zoho_counts,
    zero_loss_gate,
)
from dentrix_zoho.load.remigration import write_remigration_plan
from dentrix_zoho.load.sample import select_sample

pytestmark = pytest.mark.slow
RUNNER = Path(__file__).with_name("crash_runner.py")


def assert_same_records(got: dict[str, list[str]], want: dict[str, list[str]]) -> None:
    """Equal record by record; on failure name the module and a few differing records."""
    for module in sorted(set(got) | set(want)):
        extra = sorted(set(got.get(module, [])) - set(want.get(module, [])))
        missing = sorted(set(want.get(module, [])) - set(got.get(module, [])))
        assert not extra and not missing, f"{module}: {len(extra)} unexpected, {len(missing)} missing: " \
                                          f"{(extra + missing)[:2]}"
        assert got.get(module) == want.get(module), f"{module}: duplicates"


def checks(world: Any) -> list[Any]:
    office = "office-1"
    return [
        reconcile_accounting(world.duckdb_path, world.ledger, office),
        reconcile_zoho_counts(world.client, world.ledger, office, world.schema, recheck_seconds=0, attempts=1),
        reconcile_parents(world.client, world.ledger, office, world.schema),
        reconcile_balances(world.duckdb_path, world.client, world.ledger, office, world.schema),
    ]


@pytest.fixture(scope="module")
def clean_run(shaped_practice: Any, tmp_path_factory: pytest.TempPathFactory, kit: Any) -> Iterator[dict[str, Any]]:
    """One uninterrupted load of the tiny practice: the reference the other runs must equal."""
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    root = tmp_path_factory.mktemp("clean")
    users = kit.write_users_file(root / "users.yaml")
    with running_emulator(root / "emu", extra_args=["--users-file", str(users)]) as handle:
        world = kit.World(handle, shaped_practice.duckdb_path, root / "ledger.sqlite", shaped_practice.spec)
        ctx = world.context()
        results = load_all(ctx)
        yield {"world": world, "results": results, "canonical": kit.canonical(handle.snapshot()),
               "snapshot": handle.snapshot(), "run_id": ctx.run_id}
        world.client.close()


def test_full_load_reconciles_and_a_second_run_changes_nothing(clean_run: dict[str, Any]) -> None:
    world = clean_run["world"]
    results = {r.step: r for r in clean_run["results"]}
    assert results["patients"].ok > 50 and results["events"].ok > 500 and results["notes"].ok > 500
    assert results["attachments"].ok > 50 and results["ledger_pdfs"].ok > 20
    assert sum(r.failed for r in results.values()) == 0
    done = checks(world)
    gate = zero_loss_gate(done)
    assert gate.passed, [c.as_dict() for c in done if not c.passed]
    assert int(done[1].counts["modules"]["Notes"]["zoho"]) == results["notes"].ok

    second = load_all(world.context(kind="delta"))
    assert sum(r.sent for r in second) == 0
    assert world.handle.snapshot() == clean_run["snapshot"]


def test_reconciliation_notices_a_record_deleted_in_zoho(clean_run: dict[str, Any], shaped_practice: Any,
                                                       tmp_path: Path, kit: Any) -> None:
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    users = kit.write_users_file(tmp_path / "users.yaml")
    with running_emulator(tmp_path / "emu", extra_args=["--users-file", str(users)]) as handle:
        world = kit.World(handle, shaped_practice.duckdb_path, tmp_path / "ledger.sqlite", shaped_practice.spec)
        load_all(world.context(), ("responsible_parties", "patients", "events"))
        [event] = list(world.ledger.crosswalk_rows(module="Events"))[:1]
        assert world.client.delete("Events", [event.zoho_id])[0].ok
        counts = reconcile_zoho_counts(world.client, world.ledger, "office-1", world.schema, recheck_seconds=0,
                                       modules=("Events",), attempts=2)
        parents = reconcile_parents(world.client, world.ledger, "office-1", world.schema)
        assert not counts.passed and counts.counts["modules"]["Events"] == {
            "ledger": counts.counts["modules"]["Events"]["zoho"] + 1, "zoho": counts.counts["modules"]["Events"]["zoho"]}
        assert not parents.passed and not zero_loss_gate([counts, parents]).passed
        # a Balance_Due changed in Zoho no longer adds up to the source's aging buckets
        assert reconcile_balances(world.duckdb_path, world.client, world.ledger, "office-1", world.schema).passed
        owing = [r for r in handle.snapshot()["modules"]["Contacts"] if r.get("Balance_Due")]
        assert world.client.update("Contacts", [{"id": owing[0]["id"], "Balance_Due": owing[0]["Balance_Due"] + 1}])[0].ok
        balances = reconcile_balances(world.duckdb_path, world.client, world.ledger, "office-1", world.schema)
        assert not balances.passed and balances.counts["guarantors_mismatched"] == 1
        world.client.close()


def _runner_config(tmp_path: Path, handle: Any, shaped: Any, ledger: Path, kill_after: int, kill_match: str = "") -> Path:
    cfg = {
        "duckdb_path": str(shaped.duckdb_path), "ledger_url": f"sqlite:///{ledger}", "base_url": handle.base_url,
        "client_id": handle.client_id, "client_secret": handle.client_secret, "refresh_token": handle.refresh_token,
        "run_id": "crash-run", "office_id": "office-1", "kill_after": kill_after, "kill_match": kill_match, "users_domain": "wasatchdental.com",
        "providers": shaped_provider_ids(shaped.duckdb_path, "office-1"),
    }
    path = tmp_path / f"runner_{kill_after}_{len(kill_match)}.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNNER), str(config)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})


def test_killed_mid_load_and_resumed_equals_one_clean_run(clean_run: dict[str, Any], shaped_practice: Any,
                                                          tmp_path: Path, kit: Any) -> None:
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    users = kit.write_users_file(tmp_path / "users.yaml")
    ledger = tmp_path / "ledger.sqlite"
    with running_emulator(tmp_path / "emu", extra_args=["--users-file", str(users)]) as handle:
        # A kill right after a response, before the ledger heard of it: in Contacts, Events, Notes, files.
        kills = (("POST /crm/v8/{module}/upsert Contacts", 1), ("POST /crm/v8/{module}/upsert Events", 3),
                 ("POST /crm/v8/{module} Notes", 2), ("POST /crm/v8/{module}/{record_id}/Attachments", 30))
        for kill_match, kill_after in kills:
            killed = _run(_runner_config(tmp_path, handle, shaped_practice, ledger, kill_after, kill_match))
            assert killed.returncode == -9, killed.stderr[-2000:]
        finished = _run(_runner_config(tmp_path, handle, shaped_practice, ledger, 0))
        assert finished.returncode == 0, finished.stderr[-2000:]
        assert_same_records(kit.canonical(handle.snapshot()), clean_run["canonical"])
        for module, records in handle.snapshot()["modules"].items():
            keys = [r["Source_System_ID"] for r in records if r.get("Source_System_ID")]
            assert len(keys) == len(set(keys)), module
        world = kit.World(handle, shaped_practice.duckdb_path, ledger, shaped_practice.spec)
        done = checks(world)
        assert zero_loss_gate(done).passed, [c.as_dict() for c in done if not c.passed]
        # The kills landed after a note batch and after a file upload: both were found, not re-sent.
        found = {e.module for e in world.ledger.audit_entries() if e.operation == "reconcile"}
        assert found == {"Notes", "Attachments"}
        again = load_all(world.context(run_id="crash-run"))
        assert sum(r.sent for r in again) == 0
        world.client.close()


def test_faults_injected_still_zero_loss_and_no_duplicates(clean_run: dict[str, Any], shaped_practice: Any,
                                                           tmp_path: Path, kit: Any) -> None:
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    users = kit.write_users_file(tmp_path / "users.yaml")
    with running_emulator(tmp_path / "emu", extra_args=["--users-file", str(users)]) as handle:
        world = kit.World(handle, shaped_practice.duckdb_path, tmp_path / "ledger.sqlite", shaped_practice.spec)
        handle.set_faults("429=0.1,500=0.03,503=0.02,drop=0.02", seed=11)
        ctx = world.context()
        first = load_all(ctx)
        # What retries could not settle (uncertain twice, retries out) goes again, reconciled first.
        for _ in range(3):
            if sum(r.failed for r in first) == 0:
                break
            first = load_all(world.context(run_id=ctx.run_id))
        faults = handle.usage()["faults_injected"]
        handle.set_faults(None)
        assert sum(r.failed for r in first) == 0
        assert_same_records(kit.canonical(handle.snapshot()), clean_run["canonical"])
        gate = zero_loss_gate(checks(world))
        assert gate.passed, gate.as_dict()
        assert any(kind.endswith(":after") for kind in faults), faults  # writes applied, answer lost
        world.client.close()


def test_sample_diff_report_catches_an_altered_record(clean_run: dict[str, Any], shaped_practice: Any,
                                                       tmp_path: Path) -> None:
    import duckdb

    world = clean_run["world"]
    con = duckdb.connect(str(shaped_practice.duckdb_path), read_only=True)
    try:
        sample = select_sample(con, 8, office_id="office-1", as_of=shaped_practice_as_of(), spec=shaped_practice.spec)
    finally:
        con.close()
    ctx = world.context(kind="sample", sample_source_ids=frozenset(sample))
    reports = tmp_path / "reports"
    before = write_diff_report(ctx, reports)
    assert before.records > 8 and before.fields_compared > 100
    assert before.mismatches == 0 and before.missing_in_zoho == 0, before.summary()
    assert before.unmapped_source_fields > 0 and before.failed_links > 0  # HYG3 has no e-mail, among others

    loaded = [sid for sid in sample if sid.split(":")[1] == "patient"
              and world.ledger.zoho_id_for("office-1", "patient", sid)]
    target = world.ledger.zoho_id_for("office-1", "patient", sorted(loaded)[0])
    assert world.client.update("Contacts", [{"id": target, "First_Name": "Tampered"}])[0].ok
    after = write_diff_report(ctx, reports)
    assert after.mismatches == 1
    rows = after.csv_path.read_text(encoding="utf-8").splitlines()
    [bad] = [r for r in rows if r.endswith(",mismatch")]
    assert ",First_Name," in bad and "Tampered" in bad
    assert "Tampered" in after.html_path.read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(reports).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(after.csv_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(after.html_path).st_mode) == 0o600
    world.client.update("Contacts", [{"id": target, "First_Name": _first_name(world, clean_run, target)}])


def test_remigration_plan_lists_every_quarantined_record(clean_run: dict[str, Any], shaped_practice: Any,
                                                         tmp_path: Path) -> None:
    world = clean_run["world"]
    plan = write_remigration_plan(shaped_practice.duckdb_path, world.ledger, "office-1", tmp_path / "reports")
    csv_rows = plan.csv_path.read_text(encoding="utf-8").splitlines()
    assert csv_rows[0] == "object,source_id,field,value_class,reason,stage,action"
    load_held = {(q.source_object, q.source_id) for q in world.ledger.quarantine_rows(status="open")}
    listed = {tuple(r.split(",")[:2]) for r in csv_rows[1:]}
    assert load_held <= listed and plan.records == len(listed)
    assert {r.split(",")[5] for r in csv_rows[1:]} <= {"shape", "load"}
    assert all(r.rsplit(",", 1)[-1] for r in csv_rows[1:])  # every row says what to do
    assert "file_missing" in plan.by_reason or "file_over_limit" in plan.by_reason
    assert stat.S_IMODE(os.stat(plan.markdown_path).st_mode) == 0o600


def shaped_practice_as_of() -> Any:
    import datetime as dt

    return dt.date(2026, 11, 1)


def _first_name(world: Any, clean_run: dict[str, Any], zoho_id: str) -> str:
    [record] = [r for r in clean_run["snapshot"]["modules"]["Contacts"] if r["id"] == zoho_id]
    return str(record.get("First_Name") or "")
