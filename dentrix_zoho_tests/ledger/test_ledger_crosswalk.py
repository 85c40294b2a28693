from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from dentrix_zoho.ledger import CrosswalkConflict, CrosswalkWrite, Ledger, LedgerError
from dentrix_zoho.ledger import schema as s

T0 = "2026-01-01T10:00:00+00:00"


def test_schema_is_created_once_and_reopening_changes_nothing(tmp_path: Path) -> None:
    first = Ledger.for_home(tmp_path)
    run = first.start_run("full", "o1")
    first.record_write(run, "o1", "patient", "1", "Contacts", "z1", "h1", True, T0)
    first.close()

    again = Ledger.for_home(tmp_path)
    tables = set(inspect(again.engine).get_table_names())
    assert {
        "runs",
        "crosswalk",
        "audit_log",
        "audit_tip",
        "pre_images",
        "quarantine",
        "approvals",
        "api_calls",
    } <= tables
    with again.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.ledger_meta)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(s.audit_tip)).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert again.zoho_id_for("o1", "patient", "1") == "z1"
    assert [r.run_id for r in again.runs()] == [run]


def test_update_by_a_later_run_keeps_the_creator(ledger: Ledger) -> None:
    r1 = ledger.start_run("full", "o1")
    r2 = ledger.start_run("delta", "o1")
    ledger.record_write(r1, "o1", "patient", "7", "Contacts", "z7", "h1", True, T0)
    before = ledger.lookup("o1", "patient", "7")
    ledger.record_write(r2, "o1", "patient", "7", "Contacts", "z7", "h2", False, "2026-01-02T10:00:00+00:00")
    after = ledger.lookup("o1", "patient", "7")
    assert before is not None and after is not None
    assert after.created_by_run == r1
    assert after.last_run_id == r2
    assert after.row_hash == "h2"
    assert after.first_written_at == before.first_written_at
    assert after.zoho_modified_time == "2026-01-02T10:00:00+00:00"


def test_a_pre_existing_record_has_no_creator(ledger: Ledger) -> None:
    r1 = ledger.start_run("full", "o1")
    ledger.record_write(r1, "o1", "patient", "8", "Contacts", "z8", "h", False, T0)
    row = ledger.lookup("o1", "patient", "8")
    assert row is not None and row.created_by_run is None


def test_a_new_zoho_record_after_rollback_starts_a_new_history(ledger: Ledger) -> None:
    r1 = ledger.start_run("full", "o1")
    ledger.record_write(r1, "o1", "patient", "9", "Contacts", "z9", "h", True, T0)
    ledger.mark_deleted("rb", "Contacts", ["z9"])
    assert ledger.zoho_id_for("o1", "patient", "9") is None
    assert ledger.lookup("o1", "patient", "9").deleted  # type: ignore[union-attr]
    r2 = ledger.start_run("full", "o1")
    ledger.record_write(r2, "o1", "patient", "9", "Contacts", "z9b", "h", True, T0)
    row = ledger.lookup("o1", "patient", "9")
    assert row is not None
    assert (row.zoho_id, row.created_by_run, row.deleted) == ("z9b", r2, False)


def test_two_sources_cannot_claim_one_zoho_record(ledger: Ledger) -> None:
    run = ledger.start_run("full", "o1")
    ledger.record_write(run, "o1", "patient", "1", "Contacts", "z1", "h", True, T0)
    with pytest.raises(CrosswalkConflict, match="z1"):
        ledger.record_write(run, "o1", "patient", "2", "Contacts", "z1", "h", False, T0)
    refused = ledger.record_writes(
        run,
        "o1",
        [
            CrosswalkWrite("patient", "3", "Contacts", "z3", "h", True),
            CrosswalkWrite("patient", "4", "Contacts", "z3", "h", True),  # same record in one batch
            CrosswalkWrite("patient", "5", "Contacts", "z1", "h", True),
        ],
    )
    assert len(refused) == 2
    assert ledger.zoho_id_for("o1", "patient", "3") == "z3"
    assert ledger.lookup("o1", "patient", "4") is None
    assert ledger.lookup("o1", "patient", "5") is None


def test_lookup_many_and_counts(ledger: Ledger) -> None:
    run = ledger.start_run("full", "o1")
    ledger.record_writes(
        run, "o1", [CrosswalkWrite("patient", str(i), "Contacts", f"z{i}", "h", True) for i in range(10)]
    )
    ledger.record_write(run, "o2", "patient", "1", "Contacts", "other", "h", True, None)
    ledger.record_write(run, "o1", "appt", "1", "Events", "e1", "h", True, None)
    found = ledger.lookup_many("o1", "patient", ["1", "3", "99"])
    assert {k: v.zoho_id for k, v in found.items()} == {"1": "z1", "3": "z3"}
    ledger.mark_deleted("rb", "Contacts", ["z0"])
    assert ledger.counts("o1") == {"patient": 9, "appt": 1}
    assert [r.zoho_id for r in ledger.crosswalk_rows(module="Events")] == ["e1"]
    assert len(list(ledger.crosswalk_rows(created_by_run=run, deleted=False))) == 11


def test_changed_rows_over_fifty_thousand_rows(ledger: Ledger) -> None:
    run = ledger.start_run("full", "o1")
    n = 50_000
    ledger.record_writes(
        run, "o1", [CrosswalkWrite("patient", str(i), "Contacts", f"z{i}", f"h{i}", True) for i in range(n)]
    )
    ledger.record_writes(run, "o2", [CrosswalkWrite("patient", "5", "Contacts", "o2-5", "h5", True)])
    ledger.mark_deleted("rb", "Contacts", ["z10", "z11"])

    hashes = {str(i): f"h{i}" for i in range(n)}
    for i in range(0, n, 97):
        hashes[str(i)] = f"changed{i}"
    for i in range(n, n + 300):
        hashes[str(i)] = f"h{i}"  # never written
    expected = {str(i) for i in range(0, n, 97)} | {str(i) for i in range(n, n + 300)} | {"10", "11"}

    assert ledger.changed_rows("o1", "patient", hashes) == expected
    # The chunked path (few hashes) must agree with the scan path.
    small = {key: hashes[key] for key in ["0", "1", "10", "97", str(n + 1), "5"]}
    assert ledger.changed_rows("o1", "patient", small) == {"0", "10", "97", str(n + 1)}
    assert ledger.changed_rows("o1", "appt", {"1": "x"}) == {"1"}


def test_runs_start_finish_and_resume(ledger: Ledger) -> None:
    run = ledger.start_run("sample", "o1", spec_hash="abc", run_id="dagster-run-1")
    assert run == "dagster-run-1"
    ledger.finish_run(run, "failed")
    assert ledger.run(run).status == "failed"  # type: ignore[union-attr]
    ledger.start_run("sample", "o1", run_id=run)
    resumed = ledger.run(run)
    assert resumed is not None and resumed.status == "running" and resumed.finished_at is None
    with pytest.raises(LedgerError):
        ledger.start_run("full", "o1", run_id=run)
    with pytest.raises(LedgerError):
        ledger.start_run("everything", "o1")
    with pytest.raises(LedgerError):
        ledger.finish_run(run, "running")
    with pytest.raises(LedgerError):
        ledger.finish_run("nope", "succeeded")
