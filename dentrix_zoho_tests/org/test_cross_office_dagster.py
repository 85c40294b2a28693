"""Policy ``merge`` through Dagster: two synthetic practices that share planted patients, one offices file,
``build_definitions()``, the real jobs for each office's partition (stage_and_audit, the org's
cross_office_audit, full_migration, rollback_migration, delta_migration) against one emulator.

One Contact per shared person, both offices' children under it, every row accounted for; rolling back
the creating office keeps the shared Contacts and the other office's records byte for byte; a
patient deleted in Dentrix at the creating office keeps the Contact the other office still holds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load.context import LOAD_STEPS
from dentrix_zoho.load.shaped import open_duckdb, read_step_rows
from dentrix_zoho_tests.org.dso_kit import OFFICES, PLANTED, Dso, dagster_org

pytestmark = pytest.mark.slow

CHILD_LINKS = {"events": "Who_Id", "notes": "Parent_Id", "attachments": "Parent_Id"}


def _sid(record: dict[str, Any]) -> str:
    return str(next((v for k, v in record.items() if k.startswith("Source_System_ID") and v), ""))


def _parent(record: dict[str, Any]) -> str | None:
    for name in ("Who_Id", "What_Id", "Parent_Id"):
        value = record.get(name)
        if isinstance(value, dict) and value.get("id"):
            return str(value["id"])
    return None


@pytest.fixture(scope="module")
def dso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dso]:
    with dagster_org(tmp_path_factory.mktemp("dso_merge")) as made:
        assert made.run("cross_office_audit").success
        for office in OFFICES:  # north first: it creates the shared Contacts, south joins them
            made.runs[office] = made.run("full_migration", office)
        yield made


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, list[bool]]:
    found: dict[str, list[bool]] = {}
    for e in result.get_asset_check_evaluations():
        found.setdefault(e.check_name, []).append(e.passed)
    return found


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, Any]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _joined(dso: Dso) -> dict[str, str]:
    """South source id -> north source id, for the audit's groups whose two records both became Contacts."""
    with dso.ledger as ledger:
        groups = [{m.office_id: m.source_id for m in members} for members in ledger.merge_groups().values()]
    contacts = {}
    for office in OFFICES:
        with open_duckdb(dso.staging(office)) as con:
            contacts[office] = {r.source_id for name in ("responsible_parties", "patients")
                                for r in read_step_rows(con, LOAD_STEPS[name], office)}
    return {g["south"]: g["north"] for g in groups
            if set(g) == set(OFFICES) and g["north"] in contacts["north"] and g["south"] in contacts["south"]}


def test_one_contact_per_shared_person_with_both_offices_children_and_every_row_accounted_for(dso: Dso) -> None:
    joined = _joined(dso)
    assert len(joined) >= PLANTED // 2, joined  # most planted people are Contacts at both offices
    for office, result in dso.runs.items():
        checks = _checks(result)
        assert all(checks["accounted_for"]) and len(checks["accounted_for"]) == len(LOAD_STEPS), (office, checks)
        assert checks["load_accounting"] == [True] and checks["mapping_approved"] == [True], (office, checks)
        steps = {name: _metadata(result, f"zoho_load/{name}") for name in ("responsible_parties", "patients")}
        assert sum(m["cross_office_joined"] for m in steps.values()) == (len(joined) if office == "south" else 0)
    south_patients = _metadata(dso.runs["south"], "zoho_load/patients")
    assert south_patients["cross_office_joined"] > 0

    records = dso.records()
    by_sid = {_sid(r): key for key, r in records.items() if _sid(r)}
    with dso.ledger as ledger:
        for south_sid, north_sid in joined.items():
            assert south_sid not in by_sid  # no Contact of south's own for her
            shared = records[by_sid[north_sid]]
            view = ledger.lookup("south", "patient", south_sid)
            assert view is not None and view.zoho_id == str(shared["id"]) and not view.deleted
        contacts = [k for k in records if k.startswith("Contacts/")]
        live = {office: [r for r in ledger.crosswalk_rows(module="Contacts", office_id=office, deleted=False)]
                for office in OFFICES}
        assert len(contacts) == sum(len(rows) for rows in live.values())  # one Contact per crosswalk row, no more

        # South's children of a joined patient hang under the shared Contact, beside north's.
        shared_ids = {str(records[by_sid[n]]["id"]) for n in joined.values()}
        owners = _owners(ledger)
        under = {k: owners.get(k) for k, r in records.items() if _parent(r) in shared_ids
                 and not k.startswith(("Contacts/", "Leads/"))}
        assert None not in under.values()  # every child of a shared Contact is a record of ours
        assert {"north", "south"} <= set(under.values())
        for table, link in CHILD_LINKS.items():
            with open_duckdb(dso.staging("south")) as con:
                rows = [r for step in LOAD_STEPS.values() if step.table == table for r in read_step_rows(con, step, "south")]
            for row in rows:
                x = ledger.lookup("south", row.source_object, row.source_id)
                if (row.links.get(link) or {}).get("source_id") in joined and x is not None and not x.deleted:
                    assert under.get(f"{x.zoho_module}/{x.zoho_id}") == "south", (table, row.source_id)


def _owners(ledger: Ledger) -> dict[str, str]:
    """module/id -> the office whose crosswalk holds the record (the creator's, for a shared Contact)."""
    return {f"{r.zoho_module}/{r.zoho_id}": r.office_id for r in ledger.crosswalk_rows(deleted=False)}


def test_every_check_of_both_offices_passes(dso: Dso) -> None:
    for office, result in dso.runs.items():
        failed = sorted({name for name, passed in _checks(result).items() if not all(passed)})
        assert result.success and not failed, (office, failed)


def test_rolling_back_the_creating_office_keeps_the_shared_contacts_and_the_other_office_byte_for_byte(dso: Dso) -> None:
    joined = _joined(dso)
    before = dso.records()
    by_sid = {_sid(r): key for key, r in before.items() if _sid(r)}
    shared = {by_sid[n]: json.dumps(before[by_sid[n]], sort_keys=True) for n in joined.values()}
    with dso.ledger as ledger:
        owners = _owners(ledger)
    south = {k: json.dumps(r, sort_keys=True) for k, r in before.items() if owners.get(k) == "south"}
    assert any(k.startswith(("Notes/", "Attachments/")) for k in south)  # not only what carries an id

    rollback = dso.run("rollback_migration", "north", run_config={"ops": {"rollback": {"config": {"all_runs": True}}}})
    assert rollback.success
    [output] = [e for e in rollback.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert output.event_specific_data.metadata["result.released"].value == len(joined)  # type: ignore[union-attr]
    after = dso.records()
    assert {k: json.dumps(after[k], sort_keys=True) for k in shared if k in after} == shared  # kept, untouched
    assert {k: json.dumps(after[k], sort_keys=True) for k in south if k in after} == south  # south, byte for byte
    with dso.ledger as ledger:
        left = {k: office for k, office in _owners(ledger).items() if office == "north"}
        assert set(left) == set(shared)  # north's rows that live on: the Contacts south still holds
        assert {k for k in after if k not in south} == set(shared)  # nothing else of north's in Zoho
        holds = ledger.shared_owners(module="Contacts", released=False)
        assert {h.office_id for h in holds} == {"south"} and len(holds) == len(joined)

    # North loads again: it is the writer of the same Contacts again, and makes no second one.
    again = dso.run("full_migration", "north")
    assert all(_checks(again)["accounted_for"])
    records = dso.records()
    contacts_by_sid = {_sid(r) for k, r in records.items() if k.startswith("Contacts/")}
    assert set(joined.values()) <= contacts_by_sid and not set(joined) & contacts_by_sid
    with dso.ledger as ledger:
        assert {(h.office_id, h.role) for h in ledger.shared_owners(module="Contacts", released=False)} == {
            ("north", "created"), ("south", "joined")}
    dso.runs["north"] = again


def test_a_patient_deleted_in_dentrix_at_the_creating_office_keeps_the_contact_the_other_office_holds(dso: Dso) -> None:
    joined = _joined(dso)
    south_sid, north_sid = sorted(joined.items())[0]
    patid = int(north_sid.rsplit(":", 1)[1])
    before = dso.records()
    [key] = [k for k, r in before.items() if _sid(r) == north_sid]
    with sqlite3.connect(dso.dbs["north"]) as db:
        db.execute("DELETE FROM patient WHERE patid = ?", [patid])

    delta = dso.run("delta_migration", "north")
    checks = _checks(delta)
    assert checks["no_failed_deletions"] == [True], checks
    deletions = _metadata(delta, "zoho_load/deletions")
    assert deletions["released"] == 1 and deletions["failed"] == 0, deletions
    after = dso.records()
    assert json.dumps(after[key], sort_keys=True) == json.dumps(before[key], sort_keys=True)  # kept, untouched
    with dso.ledger as ledger:
        holds = {(h.office_id, h.released) for h in ledger.shared_owners(zoho_ids=[key.split("/")[1]])}
        assert holds == {("north", True), ("south", False)}
        assert ledger.lookup("south", "patient", south_sid).zoho_id == key.split("/")[1]  # type: ignore[union-attr]
        releases = [e for e in ledger.audit_entries(delta.run_id) if e.operation == "cross_office_release"]
        assert [(e.source_id, e.code) for e in releases] == [(north_sid, "SOURCE_DELETED")]
