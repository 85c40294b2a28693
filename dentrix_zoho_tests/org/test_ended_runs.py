"""A migration run that ended without finishing, in the ledger (SQLite and PostgreSQL): its ledger run closed,
its merge claims released, except one a retry holds again or one whose write is in doubt; and the org-level
audit's record of the offices it covered, which a merge load asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from dentrix_zoho.ledger import AuditEntry, Ledger, LedgerError, MergeCandidate, MergeMember, QuarantineRow
from dentrix_zoho.ledger.ledger import INTENT_OPERATION
from dentrix_zoho.org.ended_runs import close_ended_run

A, B = "north", "south"
PA, PB = "north:patient:1", "south:patient:7"
GROUP = "g-1"


def candidate(sid: str) -> MergeCandidate:
    office = sid.split(":")[0]
    other = (B, "patient", PB) if office == A else (A, "patient", PA)
    return MergeCandidate("patient", sid, "h", GROUP, (other,))


def decide(ledger: Ledger, run: str, sid: str, *, dry_run: bool = False) -> tuple[str, str]:
    [decision] = ledger.settle_merge(run, sid.split(":")[0], "Contacts", [candidate(sid)], dry_run=dry_run)
    return decision.action, decision.code


def claims(ledger: Ledger) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from dentrix_zoho.ledger import schema as s

    with ledger.engine.connect() as conn:
        return [(r.source_id, r.run_id) for r in conn.execute(select(s.merge_claims).order_by(s.merge_claims.c.group_key))]


@pytest.fixture
def ledger(grouped_ledger: Ledger) -> Ledger:
    return grouped_ledger


def test_a_failed_run_is_closed_and_its_claim_released_so_the_other_office_claims_the_person(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="dagster-run-a")
    assert decide(ledger, ra, PA) == ("send", "CLAIMED")  # then the run fails before sending her
    rb = ledger.start_run("full", B, run_id="dagster-run-b")
    assert decide(ledger, rb, PB, dry_run=True) == ("wait", "WAITING")  # what a running claim does to the others

    ended = close_ended_run(ledger, ra, office_id=A)
    assert (ended.status, ended.closed, ended.released, ended.kept_in_doubt) == ("failed", True, 1, 0)
    run = ledger.run(ra)
    assert run is not None and run.status == "failed" and run.finished_at is not None
    assert claims(ledger) == []
    [release] = [e for e in ledger.audit_entries(ra) if e.operation == "cross_office_release"]
    assert (release.source_id, release.code, release.outcome) == (PA, "RUN_FAILED", "ok")
    assert decide(ledger, rb, PB) == ("send", "CLAIMED")  # a fresh claim, not a take-over of a live one
    assert claims(ledger) == [(PB, rb)]

    again = close_ended_run(ledger, ra, office_id=A)  # the sensor's tick taken twice: nothing more happens
    assert (again.status, again.closed, again.released, again.kept_in_doubt) == ("failed", False, 0, 0)
    assert claims(ledger) == [(PB, rb)] and ledger.run(rb).status == "running"  # type: ignore[union-attr]
    assert ledger.verify_chain().ok


def test_a_retry_that_claimed_the_person_again_keeps_the_claim_however_late_the_failed_run_is_closed(
        ledger: Ledger) -> None:
    r1 = ledger.start_run("full", A, run_id="dagster-run-1")
    decide(ledger, r1, PA)
    r2 = ledger.start_run("full", A, run_id="dagster-run-2")  # Dagster's retry of run 1: a run id of its own
    assert decide(ledger, r2, PA) == ("send", "CLAIMED")
    assert claims(ledger) == [(PA, r2)]

    ended = close_ended_run(ledger, r1, office_id=A)  # the sensor reaches run 1 while the retry is loading
    assert (ended.closed, ended.released) == (True, 0)
    assert claims(ledger) == [(PA, r2)] and ledger.run(r2).status == "running"  # type: ignore[union-attr]
    rb = ledger.start_run("full", B, run_id="dagster-run-b")
    assert decide(ledger, rb, PB) == ("wait", "WAITING")  # the retry writes her Contact; south does not


def test_a_claim_whose_write_is_in_doubt_is_kept_and_no_other_office_takes_it_over(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="dagster-run-a")
    decide(ledger, ra, PA)
    # The upsert was announced and its answer never came (killed, or the call timed out): it may have landed.
    ledger.append_audit(AuditEntry(ra, INTENT_OPERATION, "Contacts", "uncertain", source_id=PA))
    ended = close_ended_run(ledger, ra, office_id=A)
    assert (ended.closed, ended.released, ended.kept_in_doubt) == (True, 0, 1)
    assert claims(ledger) == [(PA, ra)]
    rb = ledger.start_run("full", B, run_id="dagster-run-b")
    [decision] = ledger.settle_merge(rb, B, "Contacts", [candidate(PB)])
    assert (decision.action, decision.code, decision.claimed_by_office) == ("wait", "IN_DOUBT", A)

    # North's next run adopts the Contact its killed run made: south then joins it.
    ra2 = ledger.start_run("full", A, run_id="dagster-run-a2")
    assert decide(ledger, ra2, PA) == ("send", "CLAIMED")
    ledger.record_write(ra2, A, "patient", PA, "Contacts", "z1", "h", True, None)
    ledger.finish_run(ra2, "succeeded")
    assert ledger.settle_merge(rb, B, "Contacts", [candidate(PB)])[0].zoho_id == "z1"


def test_an_error_the_loader_sends_again_leaves_the_write_in_doubt(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="dagster-run-a")
    decide(ledger, ra, PA)
    # What the loader records when every answer to an upsert is lost: an error it retries on the next run.
    ledger.append_audit(AuditEntry(ra, INTENT_OPERATION, "Contacts", "uncertain", source_id=PA))
    ledger.append_audit(AuditEntry(ra, "upsert", "Contacts", "error", source_id=PA, code="ZOHO_UNAVAILABLE"))
    assert close_ended_run(ledger, ra, office_id=A).kept_in_doubt == 1
    rb = ledger.start_run("full", B, run_id="dagster-run-b")
    assert decide(ledger, rb, PB) == ("wait", "IN_DOUBT")


def test_a_refused_write_leaves_no_doubt_and_its_claim_is_released(ledger: Ledger) -> None:
    ra = ledger.start_run("delta", A, run_id="dagster-run-a")
    decide(ledger, ra, PA)
    ledger.append_audit(AuditEntry(ra, INTENT_OPERATION, "Contacts", "uncertain", source_id=PA))
    # Zoho refused the record: the loader quarantines it beside the error.
    ledger.append_audit(AuditEntry(ra, "upsert", "Contacts", "error", source_id=PA, code="INVALID_DATA"))
    ledger.quarantine([QuarantineRow(ra, A, "patient", PA, "invalid_data", "INVALID_DATA: refused by Zoho")])
    ended = close_ended_run(ledger, ra, office_id=A, status="stopped")  # a canceled run
    assert (ended.status, ended.released, ended.kept_in_doubt) == ("stopped", 1, 0)
    assert [e.code for e in ledger.audit_entries(ra) if e.operation == "cross_office_release"] == ["RUN_STOPPED"]
    rb = ledger.start_run("full", B, run_id="dagster-run-b")
    assert decide(ledger, rb, PB) == ("send", "CLAIMED")


def test_what_is_not_an_ended_migration_run_is_left_alone(ledger: Ledger) -> None:
    assert close_ended_run(ledger, "never-reached-a-load-step").status is None
    ra = ledger.start_run("full", A, run_id="dagster-run-a")
    decide(ledger, ra, PA)
    with pytest.raises(LedgerError, match=f"office {A}'s, not office {B}'s"):
        close_ended_run(ledger, ra, office_id=B)
    done = ledger.start_run("full", A, run_id="dagster-run-done")
    ledger.finish_run(done, "succeeded")  # reconciliation finished it; a later step of its Dagster run failed
    assert close_ended_run(ledger, done, office_id=A).status == "succeeded"
    rollback = ledger.start_run("rollback", A, run_id="rollback-1")
    assert (close_ended_run(ledger, rollback).status, ledger.run(rollback).status) == ("running", "running")  # type: ignore[union-attr]
    assert ledger.run(ra).status == "running" and claims(ledger) == [(PA, ra)]  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="failed, stopped"):
        close_ended_run(ledger, ra, status="succeeded")


def test_each_audit_records_the_offices_it_covered_and_the_latest_is_the_one_a_load_asks_for(ledger: Ledger) -> None:
    first = ledger.latest_org_audit()
    assert first is not None and first.offices == (A, B) and first.covers(A) and not first.covers("east")
    # An audit that left south out (not staged yet): its groups and its coverage replace the last audit's.
    ledger.replace_merge_groups([], offices=(A, "east"))
    latest = ledger.latest_org_audit()
    assert latest is not None and latest.audit_id != first.audit_id
    assert latest.offices == ("east", A) and not latest.covers(B) and ledger.merge_groups() == {}
    coverage = [e for e in ledger.audit_entries(latest.audit_id)]
    assert [(e.operation, e.code, e.source_id) for e in coverage] == [
        ("cross_office_audit", "east", None), ("cross_office_audit", A, None)]
    with pytest.raises(LedgerError, match="office.s. south not among the audited offices"):
        ledger.replace_merge_groups([MergeMember("g", B, "patient", PB, "name")], offices=(A,))
    assert ledger.latest_org_audit() == latest  # the refused replacement changed nothing
    assert ledger.verify_chain().ok


def test_a_ledger_without_an_audit_says_so(tmp_path: Path) -> None:
    with Ledger.for_home(tmp_path) as fresh:
        assert fresh.latest_org_audit() is None
