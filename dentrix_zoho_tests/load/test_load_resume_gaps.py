"""The loader's resume gaps: what a kill between Zoho's answer and the ledger write used to leave wrong.

1. Zoho's search index lags a fresh write ("Fresh records may return 204 until indexed"): a resume
   whose pre-scan cannot see what the killed run created must still know the migration created it.
2. A Note or Attachment that reached Zoho in a killed run and is held back on the resume (its file
   is gone, Zoho refused this content before) is looked up among its parent's children and taken
   into the ledger, not left where rollback cannot see it, nor sent twice once it can go.
3. An update of ours that Zoho applied but the ledger never heard of moves ``Modified_Time``; it
   is not a person's edit (the loader, the cutover deletions and the rollback agree), while a
   person's edit after it still is.

The kill is deterministic: the ledger commit of the step's first batch raises, as SIGKILL would
land right after the answer, while what the loader recorded before the call stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from dentrix_zoho.cutover.deletions import apply_deletions
from dentrix_zoho.ledger import QuarantineRow
from dentrix_zoho.load import load_module, upserts
from dentrix_zoho.load.context import LOAD_STEPS
from dentrix_zoho.load.ledger_io import INTENT_OPERATION
from dentrix_zoho.load.shaped import open_duckdb, read_step_rows
from dentrix_zoho.load.zoho_reads import existing_by_key
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.rollback import plan_rollback
from dentrix_zoho.rollback.service import run_rollback
from dentrix_zoho.zoho_emulator.config import FULL_SCOPE

from dentrix_zoho_tests.load.conftest import Killed, load_parents, zoho_by_sid

LAG = ["--index-lag-seconds", "3600"]


def intents(world: Any, module: str) -> set[str]:
    return {e.source_id for e in world.ledger.audit_entries()
            if e.operation == INTENT_OPERATION and e.module == module and e.source_id}


# -- 1. created by this migration, whatever the search index says ------------------------------------


@pytest.fixture
def lagging_world(tmp_path: Path, world_factory: Any, kit: Any) -> Any:
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files")
    return world_factory(duck, load_spec(), extra_args=LAG)


@pytest.mark.parametrize("resume_as", ["same_run", "next_run"])
def test_records_a_killed_batch_created_stay_ours_while_search_cannot_see_them(
        lagging_world: Any, kit: Any, killer: Any, resume_as: str) -> None:
    world = lagging_world
    crashed = world.context()
    load_parents(crashed)
    killer("Events")
    with pytest.raises(Killed):
        load_module(crashed, "events")
    made = zoho_by_sid(world, "Events")
    assert sorted(made) == [kit.sid("appt", 10), kit.sid("appt", 11)]
    assert not list(world.ledger.crosswalk_rows(module="Events"))
    # Not indexed yet: the resume's pre-scan finds nothing and the upsert answers "update".
    assert existing_by_key(world.client, "Events", "Source_System_ID", [], list(made)) == {}

    resumed = world.context(run_id=crashed.run_id if resume_as == "same_run" else None)
    result = load_module(resumed, "events")
    assert (result.ok, result.created, result.updated, result.pre_images) == (2, 2, 0, 0)
    for sid, record in made.items():
        row = world.ledger.lookup(kit.OFFICE, "appt", sid)
        assert row is not None and row.zoho_id == record["id"] and row.created_by_run == resumed.run_id
    # So rolling the run back deletes them (nothing to restore: they were not there before us).
    plan = plan_rollback(world.ledger, resumed.run_id, False)
    deleted = {item.zoho_id for step in plan.steps if step.op == "delete" and step.module == "Events"
               for item in step.items}
    assert deleted == {r["id"] for r in made.values()}
    assert not [s for s in plan.steps if s.op == "restore"]
    # What made it so: the intents, committed before the killed call went out.
    assert intents(world, "Events") == set(made)


def test_a_record_that_existed_before_us_is_still_not_ours_with_intents(
        lagging_world: Any, kit: Any, killer: Any) -> None:
    """The intent rule does not claim what the pre-scan found there before us (indexed: it is old)."""
    world = lagging_world
    sid = kit.sid("appt", 10)
    [theirs] = world.client.upsert("Events", [{"Event_Title": "Booked by hand", "Source_System_ID": sid,
                                               "Start_DateTime": "2026-11-20T09:30:00-06:00",
                                               "End_DateTime": "2026-11-20T10:30:00-06:00"}])
    world.handle.advance_clock(3601)  # indexed now
    crashed = world.context()
    load_parents(crashed)
    killer("Events")
    with pytest.raises(Killed):
        load_module(crashed, "events")
    resumed = world.context(run_id=crashed.run_id)
    result = load_module(resumed, "events")
    assert result.ok == 2
    row = world.ledger.lookup(kit.OFFICE, "appt", sid)
    assert row is not None and row.zoho_id == theirs.zoho_id and row.created_by_run is None
    assert world.ledger.pre_image(crashed.run_id, "Events", str(theirs.zoho_id)) is not None
    other = world.ledger.lookup(kit.OFFICE, "appt", kit.sid("appt", 11))
    assert other is not None and other.created_by_run == crashed.run_id


def test_search_and_coql_do_not_see_a_fresh_record_until_the_index_lag_has_passed(lagging_world: Any) -> None:
    world = lagging_world
    [made] = world.client.upsert("Contacts", [{"Last_Name": "Fresh", "Source_System_ID": "o:patient:1"}])
    assert made.ok and world.client.get("Contacts", str(made.zoho_id)) is not None  # by id: at once
    query = "select id from Contacts where Source_System_ID = 'o:patient:1' limit 5"
    assert list(world.client.coql(query)) == []
    assert world.client.search("Contacts", criteria="(Last_Name:equals:Fresh)") == []
    world.handle.advance_clock(3601)
    assert [r["id"] for r in world.client.coql(query)] == [made.zoho_id]
    assert [r["id"] for r in world.client.search("Contacts", criteria="(Last_Name:equals:Fresh)")] == [made.zoho_id]


# -- 2. held-back Notes and Attachments are looked up in Zoho ---------------------------------------


def test_an_attachment_a_killed_run_uploaded_is_found_while_its_file_is_gone_and_not_sent_twice(
        small_world: Any, kit: Any, killer: Any, tmp_path: Path) -> None:
    crashed = small_world.context()
    load_parents(crashed)
    killer("Attachments")
    with pytest.raises(Killed):
        load_module(crashed, "attachments")
    [uploaded] = small_world.handle.snapshot()["modules"]["Attachments"]
    sid = kit.sid("eattach", 30)
    assert small_world.ledger.lookup(kit.OFFICE, "eattach", sid) is None

    # Before the resume the image went missing from the practice's folder: today it could not be sent.
    xray = tmp_path / "files" / "xray1.jpg"
    kept = xray.read_bytes()
    xray.unlink()
    resumed = small_world.context(run_id=crashed.run_id)
    result = load_module(resumed, "attachments")
    assert result.sent == 0 and result.reconciled == 1
    row = small_world.ledger.lookup(kit.OFFICE, "eattach", sid)
    assert row is not None and not row.deleted and row.zoho_id == uploaded["id"]
    assert row.created_by_run == crashed.run_id  # rollback deletes it
    # Found by name and size: the row is loaded (a file in Zoho needs none on disk), not held back.
    assert row.row_hash is not None
    held = {q.source_id for q in small_world.ledger.quarantine_rows(status="open") if q.source_object == "eattach"}
    assert sid not in held

    # The file is back: nothing to send, nothing doubled.
    xray.write_bytes(kept)
    again = load_module(small_world.context(), "attachments")
    assert again.sent == 0
    files = small_world.handle.snapshot()["modules"]["Attachments"]
    assert [f["id"] for f in files] == [uploaded["id"]]


def test_a_note_a_killed_run_created_is_found_while_zoho_refuses_its_content(
        small_world: Any, kit: Any, killer: Any) -> None:
    crashed = small_world.context()
    load_parents(crashed)
    killer("Notes")
    with pytest.raises(Killed):
        load_module(crashed, "notes")
    made = {n["Note_Title"]: n for n in small_world.handle.snapshot()["modules"]["Notes"]}
    assert sorted(made) == ["Clinical note 1", "Clinical note 2"]
    sid = kit.sid("clinicalnote", 20)
    # Zoho refused this very content since (a later attempt): the row is not sent again until it changes.
    with open_duckdb(small_world.duckdb_path) as con:
        row_hash = {r.source_id: r.row_hash for r in read_step_rows(con, LOAD_STEPS["notes"], kit.OFFICE)}[sid]
    small_world.ledger.quarantine([QuarantineRow(crashed.run_id, kit.OFFICE, "clinicalnote", sid, "text",
                                                 f"zoho_rejected INVALID_DATA {upserts.hash_tag(row_hash)}",
                                                 field="Note_Content")])
    resumed = small_world.context(run_id=crashed.run_id)
    result = load_module(resumed, "notes")
    assert result.sent == 0 and result.reconciled == 2
    for title, key in (("Clinical note 1", 20), ("Clinical note 2", 21)):
        row = small_world.ledger.lookup(kit.OFFICE, "clinicalnote", kit.sid("clinicalnote", key))
        assert row is not None and row.zoho_id == made[title]["id"] and row.created_by_run == crashed.run_id
    assert len(small_world.handle.snapshot()["modules"]["Notes"]) == 2


def test_a_note_held_for_its_parent_is_looked_up_once_the_parent_loads(
        small_world: Any, kit: Any, killer: Any) -> None:
    """Sent in a killed run, then held (its parent left the crosswalk), then sendable: found, not doubled."""
    crashed = small_world.context()
    load_parents(crashed)
    killer("Notes")
    with pytest.raises(Killed):
        load_module(crashed, "notes")
    assert len(small_world.handle.snapshot()["modules"]["Notes"]) == 2
    parent_sid = kit.sid("patient", 2)
    parent = small_world.ledger.lookup(kit.OFFICE, "patient", parent_sid)
    assert parent is not None
    small_world.ledger.mark_deleted(crashed.run_id, "Contacts", [parent.zoho_id])  # as a ledger that lost it
    held = small_world.context()
    result = load_module(held, "notes")
    assert result.quarantined == 1 and result.reconciled == 1  # note 21's parent is known: found
    # The parent is taken back (the pre-scan adopts it), then the note can go: it is found, not sent.
    load_module(small_world.context(), "patients")
    result = load_module(small_world.context(), "notes")
    assert result.sent == 0 and result.reconciled == 1
    assert len(small_world.handle.snapshot()["modules"]["Notes"]) == 2


# -- 3. an update of ours lost to a kill is not a human edit ------------------------------------------


def person_client(world: Any, kit: Any) -> Any:
    """A second OAuth user (the front desk), as a person editing in Zoho would be."""
    users = {u["email"]: u["id"] for u in world.client.users("ActiveUsers")}
    with httpx.Client(base_url=world.handle.base_url, timeout=10) as http:
        code = http.post("/__emulator__/grant-code",
                         params={"scope": FULL_SCOPE, "user_id": users["office@wasatchdental.com"]})
        minted = http.post("/oauth/v2/token", data={
            "grant_type": "authorization_code", "code": code.json()["code"],
            "client_id": world.handle.client_id, "client_secret": world.handle.client_secret})
    return kit.client_for(world.handle, refresh_token=minted.json()["refresh_token"])


def lost_update(world: Any, kit: Any, killer: Any, tmp_path: Path) -> tuple[Any, str]:
    """Load the contacts, change patient 3 in Dentrix, and kill the delta right after Zoho applied it."""
    first = world.context()
    load_parents(first)
    sid = kit.sid("patient", 3)
    before = world.ledger.lookup(kit.OFFICE, "patient", sid)
    assert before is not None and before.zoho_modified_time

    def rename(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"][2] = kit.module_row("patient", 3, {"Last_Name": "Solo-Renamed", "First_Name": "Sam"},
                                               {"Owner": {"provider_id": "DDS3"}}, tier=1)

    kit.build_small_world(world.duckdb_path, tmp_path / "files", tweak=rename)
    world.handle.advance_clock(5)  # Zoho stamps to the second: our update gets a later Modified_Time
    killer("Contacts")
    with pytest.raises(Killed):
        load_module(world.context(kind="delta"), "patients")
    now = zoho_by_sid(world, "Contacts")[sid]
    assert now["Last_Name"] == "Solo-Renamed" and now["Modified_Time"] != before.zoho_modified_time
    after = world.ledger.lookup(kit.OFFICE, "patient", sid)
    assert after is not None and after.zoho_modified_time == before.zoho_modified_time  # the ledger never heard
    return first, before.zoho_id


def test_an_update_of_ours_lost_to_a_kill_is_not_taken_for_a_human_edit(
        small_world: Any, kit: Any, killer: Any, tmp_path: Path) -> None:
    lost_update(small_world, kit, killer, tmp_path)
    resumed = small_world.context(kind="delta")
    result = load_module(resumed, "patients")
    assert (result.human_edited, result.quarantined, result.ok) == (0, 0, 1)
    sid = kit.sid("patient", 3)
    row = small_world.ledger.lookup(kit.OFFICE, "patient", sid)
    assert row is not None and row.zoho_modified_time == zoho_by_sid(small_world, "Contacts")[sid]["Modified_Time"]
    assert not [e for e in small_world.ledger.audit_entries() if e.code and e.code.startswith("HUMAN_EDIT")]
    assert not [q for q in small_world.ledger.quarantine_rows(status="open") if q.value_class == "human_edited"]


def test_a_person_editing_after_our_lost_update_still_wins(
        small_world: Any, kit: Any, killer: Any, tmp_path: Path) -> None:
    _, zoho_id = lost_update(small_world, kit, killer, tmp_path)
    small_world.handle.advance_clock(5)
    [edit] = person_client(small_world, kit).update("Contacts", [{"id": zoho_id, "Description": "front desk"}])
    assert edit.ok
    result = load_module(small_world.context(kind="delta"), "patients")
    assert (result.human_edited, result.quarantined) == (1, 1)
    assert zoho_by_sid(small_world, "Contacts")[kit.sid("patient", 3)]["Description"] == "front desk"


@pytest.mark.parametrize("edited_by", ["nobody", "person"])
def test_cutover_deletion_judges_a_lost_update_as_ours(
        small_world: Any, kit: Any, killer: Any, tmp_path: Path, edited_by: str) -> None:
    _, zoho_id = lost_update(small_world, kit, killer, tmp_path)
    if edited_by == "person":
        small_world.handle.advance_clock(5)
        assert person_client(small_world, kit).update("Contacts", [{"id": zoho_id, "Description": "x"}])[0].ok
    row = small_world.ledger.lookup(kit.OFFICE, "patient", kit.sid("patient", 3))
    assert row is not None
    run = small_world.ledger.start_run("delta", kit.OFFICE)
    result = apply_deletions(small_world.client, small_world.ledger, run, [row], policy="delete")
    if edited_by == "person":
        assert (result.deleted, result.human_edited) == (0, 1)
    else:
        assert (result.deleted, result.human_edited) == (1, 0)


@pytest.mark.parametrize("edited_by", ["nobody", "person"])
def test_rollback_judges_a_lost_update_as_ours(
        small_world: Any, kit: Any, killer: Any, tmp_path: Path, edited_by: str) -> None:
    first, zoho_id = lost_update(small_world, kit, killer, tmp_path)
    if edited_by == "person":
        small_world.handle.advance_clock(5)
        assert person_client(small_world, kit).update("Contacts", [{"id": zoho_id, "Description": "x"}])[0].ok
    plan = plan_rollback(small_world.ledger, first.run_id, False)
    result = run_rollback(plan, small_world.client, small_world.ledger, "RB1")
    edits = [(e.zoho_id, e.action) for e in result.human_edits]
    remaining = {r["id"] for r in small_world.handle.snapshot()["modules"].get("Contacts", [])}
    if edited_by == "person":
        assert edits == [(zoho_id, "skipped")] and remaining == {zoho_id}
    else:
        assert edits == [] and result.deleted == 3 and remaining == set()
