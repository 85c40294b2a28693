"""Policy ``merge`` through the real loader (``load_all``: the split runs inside the upsert step), the
Zoho emulator and the ledger: one Contact for the shared patient, both offices' children under it, every
row accounted for, rollback and cutover deletions that keep the Contact while another office holds it;
two offices loading the person at once on PostgreSQL; and ``separate`` left as it was, at its old cost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from dentrix_zoho.cutover.deletions import apply_deletions, find_deletions
from dentrix_zoho.ledger import Ledger, MergeCandidate
from dentrix_zoho.load.reconcile import reconcile_accounting
from dentrix_zoho.load.shaped import open_duckdb
from dentrix_zoho.org import POLICY_ENV, CrossOfficePolicy, run_cross_office_audit
from dentrix_zoho.rollback.service import result_counts
from dentrix_zoho_tests.org.merge_kit import (
    KIT,
    NORTH,
    OWN,
    SHARED,
    SOUTH,
    Org,
    children_of,
    office_records,
    running_org,
    write_shaped,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def merge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLICY_ENV, "merge")


@pytest.fixture
def org(tmp_path: Path, merge: None) -> Iterator[Org]:
    with running_org(tmp_path) as made:
        yield made


def _shared(org: Org) -> str:
    row = org.ledger.lookup(NORTH, "patient", SHARED[NORTH])
    assert row is not None and not row.deleted
    return row.zoho_id


def _contacts(org: Org) -> dict[str, str]:
    return {r["Source_System_ID"]: zid for zid, r in org.records().get("Contacts", {}).items()}


def _open_quarantine(org: Org, office: str) -> list[str]:
    return sorted(f"{q.source_id} {q.reason.split(':')[0]}" for q in org.ledger.quarantine_rows(status="open")
                  if q.office_id == office)


def test_merge_through_the_loader_makes_one_contact_and_rolling_back_its_creator_keeps_it(org: Org) -> None:
    org.audit()
    north = org.load_office(NORTH)
    assert north["patients"].created == 2 and north["patients"].cross_office_joined == 0
    south = org.load_office(SOUTH)
    # The shared patient joined north's Contact: not sent, counted, its children attached to that Contact.
    assert south["patients"].cross_office_joined == 1 and south["patients"].created == 1
    assert south["patients"].sent == 1 and south["patients"].shaped == 2
    assert south["responsible_parties"].cross_office_joined == 0

    contacts = _contacts(org)
    assert sorted(contacts) == [SHARED[NORTH], OWN[NORTH], OWN[SOUTH]]  # 3 Contacts, not 4
    shared = _shared(org)
    assert contacts[SHARED[NORTH]] == shared
    records = org.records()
    assert children_of(records, shared) == {
        "Events": [f"{NORTH}:appt:10", f"{SOUTH}:appt:70"],
        "Notes": [f"{NORTH} note", f"{SOUTH} note"],
        "Attachments": [f"{NORTH}.jpg", f"{SOUTH}.jpg"],
    }
    for office in (NORTH, SOUTH):
        accounting = reconcile_accounting(org.ducks[office], org.ledger, office)
        assert accounting.passed, (office, accounting.counts)
        assert accounting.counts["modules"]["Contacts"] == {"shaped": 2, "loaded": 2, "quarantined_at_load": 0,
                                                            "pending": 0, "quarantined_at_shape": 0}
    join = [e for e in org.ledger.audit_entries() if e.operation == "cross_office_join"]
    assert [(e.source_id, e.zoho_id, e.code) for e in join] == [(SHARED[SOUTH], shared, "JOINED")]

    # Another run of the joining office sends nothing and changes nothing; the joined row still counts.
    before = org.records()
    again = org.load_office(SOUTH, "delta")
    assert sum(r.sent for r in again.values()) == 0
    assert again["patients"].cross_office_joined == 1 and again["patients"].unchanged == 1
    assert org.records() == before

    south_before = office_records(before, SOUTH)
    plan, result = org.rollback(NORTH)
    assert plan.counts()[("Contacts", "release")] == 1 and plan.counts()[("Contacts", "delete")] == 1
    assert result.released == 1 and result.deleted == 1 + 2 + 1 + 1  # its own patient, events, note, file
    assert result_counts(result)["released"] == 1  # what the rollback job shows
    after = org.records()
    assert after["Contacts"][shared] == before["Contacts"][shared]  # kept, untouched
    assert office_records(after, SOUTH) == south_before  # the other office's records, byte for byte
    assert children_of(after, shared) == {"Events": [f"{SOUTH}:appt:70"], "Notes": [f"{SOUTH} note"],
                                          "Attachments": [f"{SOUTH}.jpg"]}
    assert {(h.office_id, h.released) for h in org.ledger.shared_owners(zoho_ids=[shared])} == {
        (NORTH, True), (SOUTH, False)}
    assert reconcile_accounting(org.ducks[SOUTH], org.ledger, SOUTH).passed
    assert org.ledger.verify_chain().ok


def _gone_from_dentrix(org: Org, office: str, *source_ids: str) -> None:
    """The office's shaping as it is once these records were deleted in Dentrix."""
    write_shaped(org.ducks[office], office, org.files[office], without=frozenset(source_ids))


def _deletions(org: Org, office: str, policy: str = "delete") -> tuple[list[str], Any]:
    run = org.ledger.start_run("delta", office)
    with open_duckdb(org.ducks[office]) as con:
        found = find_deletions(con, org.ledger, office)
    result = apply_deletions(org.client, org.ledger, run, found, policy=policy)  # type: ignore[arg-type]
    org.ledger.finish_run(run, "succeeded")
    return [f"{r.zoho_module}:{r.source_id}" for r in found], result


def test_a_cutover_deletion_at_the_creating_office_keeps_the_contact_while_the_other_holds_it(org: Org) -> None:
    org.audit()
    org.load_office(NORTH)
    org.load_office(SOUTH)
    shared = _shared(org)
    before = org.records()

    # North's patient (and with it her appointment, note and file there) is deleted in Dentrix.
    _gone_from_dentrix(org, NORTH, SHARED[NORTH], f"{NORTH}:appt:10", f"{NORTH}:clinicalnote:100",
                       f"{NORTH}:eattach:1000")
    found, result = _deletions(org, NORTH)
    assert found == [f"Attachments:{NORTH}:eattach:1000", f"Notes:{NORTH}:clinicalnote:100",
                     f"Events:{NORTH}:appt:10", f"Contacts:{SHARED[NORTH]}"]
    assert (result.deleted, result.released, result.failed, result.human_edited) == (3, 1, 0, 0)
    after = org.records()
    assert after["Contacts"][shared] == before["Contacts"][shared]  # south still holds her: kept, untouched
    assert office_records(after, SOUTH) == office_records(before, SOUTH)
    assert children_of(after, shared) == {"Events": [f"{SOUTH}:appt:70"], "Notes": [f"{SOUTH} note"],
                                          "Attachments": [f"{SOUTH}.jpg"]}
    assert {(h.office_id, h.released) for h in org.ledger.shared_owners(zoho_ids=[shared])} == {
        (NORTH, True), (SOUTH, False)}
    releases = [e for e in org.ledger.audit_entries() if e.operation == "cross_office_release"]
    assert [(e.source_id, e.zoho_id, e.code) for e in releases] == [(SHARED[NORTH], shared, "SOURCE_DELETED")]
    # Released once: the next delta finds nothing more to do at north, and north's load sends nothing for her.
    assert _deletions(org, NORTH)[0] == []
    assert sum(r.sent for r in org.load_office(NORTH, "delta").values()) == 0
    assert org.records() == after

    # Then she is deleted at south too, the last office holding her: now the Contact goes.
    _gone_from_dentrix(org, SOUTH, SHARED[SOUTH], f"{SOUTH}:appt:70", f"{SOUTH}:clinicalnote:700",
                       f"{SOUTH}:eattach:7000")
    found, result = _deletions(org, SOUTH)
    assert found[-1] == f"Contacts:{SHARED[SOUTH]}"
    assert (result.deleted, result.released, result.failed) == (4, 0, 0)
    final = org.records()
    assert shared not in final["Contacts"] and not any(children_of(final, shared).values())
    assert sorted(_contacts(org)) == [OWN[NORTH], OWN[SOUTH]]
    assert org.ledger.shared_owners(released=False) == []
    assert org.ledger.lookup(NORTH, "patient", SHARED[NORTH]).deleted  # type: ignore[union-attr]
    for office in (NORTH, SOUTH):
        assert reconcile_accounting(org.ducks[office], org.ledger, office).passed
    assert org.ledger.verify_chain().ok


@pytest.mark.parametrize("policy", ["delete", "mark"])
def test_a_joined_record_deleted_in_dentrix_releases_its_hold_and_the_creator_keeps_the_contact(
        org: Org, policy: str) -> None:
    org.audit()
    org.load_office(NORTH)
    org.load_office(SOUTH)
    shared = _shared(org)
    before = org.records()

    _gone_from_dentrix(org, SOUTH, SHARED[SOUTH])  # the patient only: her history at south stays
    found, result = _deletions(org, SOUTH, policy)
    assert found == [f"Contacts:{SHARED[SOUTH]}"]
    assert (result.released, result.deleted, result.marked, result.failed) == (1, 0, 0, 0)
    assert org.records() == before  # nothing deleted, nothing marked: north's Contact
    assert {(h.office_id, h.released) for h in org.ledger.shared_owners(zoho_ids=[shared])} == {
        (NORTH, False), (SOUTH, True)}
    assert org.ledger.lookup(SOUTH, "patient", SHARED[SOUTH]) is None
    assert _deletions(org, SOUTH, policy)[0] == []
    # North, the Contact's last holder now, rolls back: the Contact goes with it.
    plan, _ = org.rollback(NORTH)
    assert ("Contacts", "release") not in plan.counts()
    assert shared not in org.records()["Contacts"]


def test_a_patient_waits_while_another_office_s_load_creates_her_contact_then_joins_it(org: Org) -> None:
    org.audit()
    # North's load has claimed her (inside its patients step) and not written the Contact yet.
    north_ctx = org.context(NORTH)
    [claim] = org.ledger.settle_merge(north_ctx.run_id, NORTH, "Contacts", [MergeCandidate(
        "patient", SHARED[NORTH], "h", org.ledger.merge_groups(NORTH).popitem()[0], ((SOUTH, "patient", SHARED[SOUTH]),))])
    assert claim.code == "CLAIMED"

    south = org.load_office(SOUTH)
    assert south["patients"].cross_office_joined == 0 and south["patients"].created == 1
    assert south["patients"].quarantined == 1  # held with a reason: accounted for, not failed
    # Her children wait with her (parent not loaded): held, not sent to a Contact that is not there yet.
    assert _open_quarantine(org, SOUTH) == [f"{SOUTH}:appt:70 parent_not_loaded",
                                            f"{SOUTH}:clinicalnote:700 parent_not_loaded",
                                            f"{SOUTH}:eattach:7000 parent_not_loaded",
                                            f"{SHARED[SOUTH]} cross_office_waiting"]
    assert south["events"].created == 1 and south["notes"].ok == 0
    assert sorted(_contacts(org)) == [OWN[SOUTH]]
    accounting = reconcile_accounting(org.ducks[SOUTH], org.ledger, SOUTH)
    assert accounting.passed and accounting.counts["modules"]["Contacts"]["quarantined_at_load"] == 1

    # North's load goes on (the same run) and creates her Contact; south's next run joins it.
    from dentrix_zoho.load import load_all

    assert {r.step: r.created for r in load_all(north_ctx, check_budget=False)}["patients"] == 2
    org.ledger.finish_run(north_ctx.run_id, "succeeded")
    again = org.load_office(SOUTH, "delta")
    assert again["patients"].cross_office_joined == 1 and again["patients"].sent == 0
    assert _open_quarantine(org, SOUTH) == []
    shared = _shared(org)
    assert sorted(_contacts(org)) == [SHARED[NORTH], OWN[NORTH], OWN[SOUTH]]
    assert children_of(org.records(), shared)["Events"] == [f"{NORTH}:appt:10", f"{SOUTH}:appt:70"]
    assert reconcile_accounting(org.ducks[SOUTH], org.ledger, SOUTH).passed


def test_a_joined_patient_the_next_audit_no_longer_groups_stays_joined(org: Org) -> None:
    org.audit()
    org.load_office(NORTH)
    org.load_office(SOUTH)
    before = org.records()
    # Say her record was edited at south and no longer matches: the next audit of both offices finds no group.
    org.ledger.replace_merge_groups([], offices=(NORTH, SOUTH))
    again = org.load_office(SOUTH, "delta")
    assert again["patients"].cross_office_joined == 1 and again["patients"].sent == 0
    assert org.records() == before  # no second Contact while her hold still counts her
    assert org.ledger.lookup(SOUTH, "patient", SHARED[SOUTH]).zoho_id == _shared(org)  # type: ignore[union-attr]


def test_two_offices_loading_the_same_person_at_once_make_one_contact_on_postgresql(
        tmp_path: Path, merge: None, pg_database: str) -> None:
    with running_org(tmp_path, pg_database) as org:
        org.audit()
        failures: list[BaseException] = []
        start = threading.Barrier(2)

        def load(office: str) -> None:
            # Each office as its own process would be: its own ledger connections and locks, its own client.
            ledger, client = Ledger(org.ledger_url), KIT.client_for(org.handle)
            try:
                from dentrix_zoho.load import load_all

                ctx = org.context(office, ledger=ledger, client=client)
                start.wait()
                results = load_all(ctx, check_budget=False)
                assert all(r.failed == 0 for r in results), [r.codes for r in results]
                ledger.finish_run(ctx.run_id, "succeeded")
            except BaseException as exc:  # noqa: BLE001 - reported on the test's thread
                failures.append(exc)
            finally:
                client.close()
                ledger.close()

        threads = [threading.Thread(target=load, args=(office,)) for office in (NORTH, SOUTH)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
        # Whoever settled first created her Contact; the other joined it, or waited and joins now.
        for office in (NORTH, SOUTH):
            org.load_office(office, "delta")
        contacts = _contacts(org)
        assert len(contacts) == 3 and {OWN[NORTH], OWN[SOUTH]} <= set(contacts), sorted(contacts)
        [creator_sid] = set(contacts) - {OWN[NORTH], OWN[SOUTH]}
        creator = creator_sid.split(":", 1)[0]
        joiner = SOUTH if creator == NORTH else NORTH
        shared = contacts[creator_sid]
        holds = {(h.office_id, h.role, h.released) for h in org.ledger.shared_owners(zoho_ids=[shared])}
        assert holds == {(creator, "created", False), (joiner, "joined", False)}
        assert org.ledger.lookup(joiner, "patient", SHARED[joiner]).zoho_id == shared  # type: ignore[union-attr]
        assert children_of(org.records(), shared)["Events"] == sorted([f"{NORTH}:appt:10", f"{SOUTH}:appt:70"])
        for office in (NORTH, SOUTH):
            assert reconcile_accounting(org.ducks[office], org.ledger, office).passed, office
            assert _open_quarantine(org, office) == []
        assert org.ledger.verify_chain().ok


def test_separate_sends_every_record_at_the_old_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POLICY_ENV, raising=False)
    with running_org(tmp_path) as org:
        audit = run_cross_office_audit(org.ducks, org.reports, ledger=org.ledger, policy=CrossOfficePolicy.of(None))
        assert len(audit.result.groups) == 1 and audit.recorded == 0  # reported, not recorded for the load
        statements: list[str] = []
        event.listen(org.ledger.engine, "before_cursor_execute",
                     lambda conn, cursor, sql, *rest: statements.append(" ".join(sql.lower().split())))
        results = {office: org.load_office(office) for office in (NORTH, SOUTH)}
        loaded = list(statements)
        assert all(r.cross_office_joined == 0 for by_step in results.values() for r in by_step.values())
        assert sorted(_contacts(org)) == sorted([SHARED[NORTH], SHARED[SOUTH], OWN[NORTH], OWN[SOUTH]])
        assert org.ledger.shared_owners() == [] and org.ledger.merge_groups() == {}
        # The policy's whole cost: one COUNT of the office's joined holds per Contacts step with rows (the
        # refusal to send joined records under `separate`), never a read of the groups or claims.
        counts = [s for s in loaded if "count(" in s and "from shared_owners" in s]
        assert len(counts) == 2  # patients step of each office (no responsible parties here): not per row
        assert not [s for s in loaded if "merge_groups" in s or "merge_claims" in s]


def test_every_reconciliation_check_passes_for_both_offices_under_merge(org: Org) -> None:
    from dentrix_zoho.load.reconcile import reconcile_parents, reconcile_zoho_counts, zero_loss_gate

    org.audit()
    org.load_office(NORTH)
    org.load_office(SOUTH)
    for office in (NORTH, SOUTH):
        results = [reconcile_accounting(org.ducks[office], org.ledger, office),
                   reconcile_zoho_counts(org.client, org.ledger, office, org.schema, attempts=1),
                   reconcile_parents(org.client, org.ledger, office, org.schema)]
        gate = zero_loss_gate(results)
        assert gate.passed, (office, [r.as_dict() for r in results if not r.passed])
