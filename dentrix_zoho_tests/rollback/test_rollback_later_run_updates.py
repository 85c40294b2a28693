"""Rolling back a later run (the cutover delta) undoes its updates to records an earlier run created.

The full run creates Contacts, Events, Tasks and Notes; the delta changes some of them (an appointment
moved and re-pointed, a task's status, a phone, a guarantor's insurance plans, a note's text). Before
the delta writes, it keeps their pre-images (read many a call; Contacts one by one, for their
subform), so its rollback puts the full run's values back, Migration_Run_ID included, and a rollback
of the full run afterwards deletes the records. Against the emulator, through the load test kit.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dentrix_zoho.load import load_all, load_module
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.rollback.service import make_plan, new_rollback_run_id, run_rollback
from dentrix_zoho.zoho import ZohoClient, limits
from dentrix_zoho.zoho_emulator.config import FULL_SCOPE

from dentrix_zoho_tests.load import conftest as KIT
from dentrix_zoho_tests.load import test_load_estimate


emulator_factory = KIT.emulator_factory
world_factory = KIT.world_factory
killer = KIT.killer
kit = KIT.kit
zoho_by_sid = KIT.zoho_by_sid
load_parents = KIT.load_parents
Killed = KIT.Killed

STAMPED_BY_ZOHO = frozenset({"Modified_Time", "Modified_By"})
MODULES = ("Contacts", "Events", "Tasks", "Notes")


# -- the practice, before and after the delta -----------------------------------------------------------


def _task(key: int, subject: str, status: str, patid: int) -> dict[str, Any]:
    return KIT.module_row("task", key, {"Subject": subject, "Status": status, "Due_Date": "2026-11-25"},
                          {"Who_Id": KIT.contact_link(patid), "Owner": {"provider_id": "DDS1"}})


def _with_tasks(tables: dict[str, list[dict[str, Any]]]) -> None:
    tables["tasks"] = [_task(40, "Call about the crown", "Not Started", 2),
                       _task(41, "Send the x-rays", "Not Started", 3)]


def _delta_changes(tables: dict[str, list[dict[str, Any]]]) -> None:
    """What changed in Dentrix during the cutover window."""
    _with_tasks(tables)
    tables["contacts"][0] = KIT.module_row(  # the guarantor's insurance: a second plan, a new carrier
        "patient", 1, {"Last_Name": "Guarantor", "First_Name": "Gail", "Balance_Due": 120.5,
                       "Insurance_Plans": [{"Plan_Type": "Primary", "Carrier": "MetLife"},
                                           {"Plan_Type": "Secondary", "Carrier": "Cigna"}]},
        {"Owner": {"provider_id": "DDS1"}}, tier=0)
    tables["contacts"][1] = KIT.module_row(  # Max got a phone
        "patient", 2, {"Last_Name": "Minor", "First_Name": "Max", "Balance_Due": 0, "Phone": "+18015550123"},
        {"Owner": {"provider_id": "DDS2"}, "Related_Party": KIT.contact_link(1)}, tier=1)
    tables["events"][0] = KIT.module_row(  # the appointment moved, and is now Sam's
        "appt", 10, {"Event_Title": "Prophy", "Start_DateTime": "2026-11-27T14:00:00-06:00",
                     "End_DateTime": "2026-11-27T15:00:00-06:00"},
        {"Who_Id": KIT.contact_link(3), "Owner": {"provider_id": "HYG1"}})
    tables["tasks"][0] = _task(40, "Call about the crown", "Completed", 2)
    tables["notes"][0] = KIT.module_row(
        "clinicalnote", 20, {"Note_Title": "Clinical note 1", "Note_Content": "Perio charting done. Recall 3 months."},
        {"Parent_Id": KIT.contact_link(2), "Owner": {"provider_id": "DDS1"}})


CHANGED = {
    "Contacts": (("patient", 1), ("patient", 2)),
    "Events": (("appt", 10),),
    "Tasks": (("task", 40),),
    "Notes": (("clinicalnote", 20),),
}


def _content(value: Any) -> Any:
    """Record values with empty fields dropped and subform rows compared without their ids.

    Empty: the emulator keeps only the keys it was sent, while a restore sends every field a list read
    named (null where the record had none). Subform rows: the delta emptied the plans before sending
    its own, so a restore re-creates the full run's rows, and Zoho gives re-created rows new ids.
    """
    if isinstance(value, dict):
        return {k: _content(v) for k, v in value.items() if v not in (None, [], "")}
    if isinstance(value, list):
        rows = [_content(v) for v in value]
        if rows and all(isinstance(r, dict) for r in rows):
            return sorted(json.dumps({k: v for k, v in r.items() if k != "id"}, sort_keys=True) for r in rows)
        return rows
    return value


def _state(world: Any) -> dict[str, dict[str, Any]]:
    """Our records by Zoho id, as compared: everything but Zoho's stamps of the last write."""
    snapshot = world.handle.snapshot()["modules"]
    return {module: {str(r["id"]): _content({k: v for k, v in r.items() if k not in STAMPED_BY_ZOHO})
                     for r in snapshot.get(module, [])} for module in MODULES}


def _zoho_id(world: Any, obj: str, key: int) -> str:
    row = world.ledger.lookup(KIT.OFFICE, obj, KIT.sid(obj, key))
    assert row is not None and not row.deleted
    return str(row.zoho_id)


def _changed_ids(world: Any) -> dict[str, list[str]]:
    return {module: [_zoho_id(world, obj, key) for obj, key in keys] for module, keys in CHANGED.items()}


def _person(world: Any) -> ZohoClient:
    """A second OAuth user (the front desk), as a person editing in Zoho would be."""
    handle = world.handle
    users = {u["email"]: u["id"] for u in world.client.users("ActiveUsers")}
    with httpx.Client(base_url=handle.base_url, timeout=10) as http:
        code = http.post("/__emulator__/grant-code",
                         params={"scope": FULL_SCOPE, "user_id": users["office@wasatchdental.com"]})
        minted = http.post("/oauth/v2/token", data={
            "grant_type": "authorization_code", "code": code.json()["code"],
            "client_id": handle.client_id, "client_secret": handle.client_secret})
    return KIT.client_for(handle, refresh_token=minted.json()["refresh_token"])


def _load(world: Any, run_id: str, kind: str) -> None:
    ctx = world.context(run_id=run_id, kind=kind)
    results = load_all(ctx, check_budget=False)
    assert sum(r.failed for r in results) == 0
    world.ledger.finish_run(run_id, "succeeded")


def _rollback(world: Any, run_id: str | None) -> Any:
    plan = make_plan(world.ledger, run_id, run_id is None)
    return plan, run_rollback(plan, world.client, world.ledger, new_rollback_run_id())


@pytest.fixture
def migrated(tmp_path: Path, world_factory: Callable[..., Any]) -> Any:
    """The full run loaded (with two tasks), its Zoho state kept, then the delta's changes shaped."""
    duck = KIT.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=_with_tasks)
    world = world_factory(duck, load_spec())
    _load(world, "full", "full")
    world.after_full = _state(world)
    KIT.build_small_world(duck, tmp_path / "files", tweak=_delta_changes)
    return world


# -- the tests ----------------------------------------------------------------------------------------


def test_the_delta_rollback_puts_the_full_runs_values_back_and_the_full_rollback_then_deletes(migrated: Any) -> None:
    world = migrated
    full = world.after_full
    _load(world, "delta", "delta")
    changed = _changed_ids(world)
    after_delta = _state(world)
    # The delta's values are in Zoho (else nothing here would test a restore).
    for module, ids in changed.items():
        for zoho_id in ids:
            assert after_delta[module][zoho_id] != full[module][zoho_id], (module, zoho_id)
    event = after_delta["Events"][changed["Events"][0]]
    assert event["Start_DateTime"].startswith("2026-11-27") and event["Migration_Run_ID"] == "delta"
    imaged = {(ref.module, ref.zoho_id) for ref in world.ledger.pre_image_refs("delta")}
    assert imaged == {(module, zoho_id) for module, ids in changed.items() for zoho_id in ids}

    plan, result = _rollback(world, "delta")
    restores = {(step.module, item.zoho_id) for step in plan.steps if step.op == "restore" for item in step.items}
    assert restores == imaged
    assert f"{len(imaged)} record(s) an earlier run created are put back as that run left them" in plan.notes
    assert not [step for step in plan.steps if step.op == "delete"]  # the delta created nothing
    assert result.complete and result.restored == len(imaged), result.summary()
    assert _state(world) == full  # every field, Migration_Run_ID and the insurance plans included
    assert make_plan(world.ledger, "delta", False).is_empty

    plan, result = _rollback(world, "full")
    assert not [step for step in plan.steps if step.op == "restore"]  # the delta's pre-images are not the full run's
    assert result.complete and result.human_edits == [], result.summary()
    for module in MODULES:
        assert _state(world)[module] == {}, module
    assert world.ledger.verify_chain().ok


def test_a_persons_edit_after_the_delta_wins_under_skip(migrated: Any) -> None:
    world = migrated
    full = world.after_full
    _load(world, "delta", "delta")
    changed = _changed_ids(world)
    appointment, task = changed["Events"][0], changed["Tasks"][0]
    person = _person(world)
    try:
        [edit] = person.update("Events", [{"id": appointment, "Venue": "Room 2 (moved by the front desk)"}])
        assert edit.ok
    finally:
        person.close()
    edited = _state(world)["Events"][appointment]

    _, result = _rollback(world, "delta")
    assert [(e.module, e.zoho_id, e.action) for e in result.human_edits] == [("Events", appointment, "skipped")]
    assert not result.complete
    now = _state(world)
    assert now["Events"][appointment] == edited  # the person's edit, and the delta's values under it, stay
    assert now["Tasks"][task] == full["Tasks"][task]  # the rest is put back
    assert now["Contacts"] == full["Contacts"]
    left = make_plan(world.ledger, "delta", False)
    assert [(s.op, s.module, s.zoho_ids) for s in left.steps] == [("restore", "Events", [appointment])]


def test_pre_images_are_read_many_a_call_and_contacts_one_by_one(tmp_path: Path,
                                                                 world_factory: Callable[..., Any]) -> None:
    n = 2 * limits.IDS_PER_GET + 17  # three multi-id GETs, not 217 GETs

    def appointments(start: str, phone: str | None = None) -> Callable[[dict[str, list[dict[str, Any]]]], None]:
        def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
            tables["events"] = [
                KIT.module_row("appt", 100 + i, {"Event_Title": "Recall", "Start_DateTime": f"{start}T09:00:00-06:00",
                                                 "End_DateTime": f"{start}T09:30:00-06:00"},
                               {"Who_Id": KIT.contact_link(2), "Owner": {"provider_id": "HYG1"}})
                for i in range(n)
            ]
            if phone is not None:  # every patient's phone changes too
                tables["contacts"] = [
                    KIT.module_row("patient", int(r["source_id"].rsplit(":", 1)[1]),
                                   {**{k: v for k, v in r["record"].items() if k != "Source_System_ID"},
                                    "Phone": phone},
                                   r["links"], tier=r["tier"])
                    for r in tables["contacts"]
                ]
        return tweak

    duck = KIT.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=appointments("2026-11-20"))
    world = world_factory(duck, load_spec())
    _load(world, "full", "full")
    KIT.build_small_world(duck, tmp_path / "files", tweak=appointments("2026-11-24", "+18015550100"))

    ctx = world.context(run_id="delta", kind="delta")
    load_parents(ctx)
    contacts = {(ref.module, ref.zoho_id) for ref in world.ledger.pre_image_refs("delta")}
    assert len(contacts) == 3  # every updated Contact read by id: only that read returns the insurance plans
    calls_before = _api_calls(world)
    result = load_module(ctx, "events")
    calls = _api_calls(world) - calls_before
    assert result.updated == n and result.pre_images == n
    # Multi-id GETs of n ids: the human-edit check's stamps, then the pre-images; no GET by id.
    assert calls["GET /crm/v8/{module}"] == 2 * math.ceil(n / limits.IDS_PER_GET)
    assert calls["GET /crm/v8/{module}/{record_id}"] == 0
    world.ledger.finish_run("delta", "succeeded")

    calls_before = _api_calls(world)
    plan, rolled = _rollback(world, "delta")
    calls = _api_calls(world) - calls_before
    assert rolled.complete and rolled.restored == n + 3, rolled.summary()
    # The restores' checks read as the pre-images were read: Events many a call, only Contacts by id;
    # and the plan said so before (its bill is the rollback's, and the emulator's).
    assert calls["GET /crm/v8/{module}/{record_id}"] == 3
    events_reads = math.ceil(n / limits.IDS_PER_GET)
    assert calls["GET /crm/v8/{module}"] == events_reads  # was n + 3 GETs by id before
    assert rolled.api_calls == plan.api_calls == sum(v for k, v in calls.items() if "/settings/" not in k
                                                     and "/users" not in k)
    starts = {r["Start_DateTime"][:10] for r in zoho_by_sid(world, "Events").values()}
    assert starts == {"2026-11-20"}
    assert {r.get("Phone") for r in zoho_by_sid(world, "Contacts").values()} == {None}


def _api_calls(world: Any) -> Counter[str]:
    usage = world.handle.usage()["calls"]
    return Counter({k: v for k, v in usage.items() if "oauth" not in k and "__emulator__" not in k})


def test_a_delta_killed_after_its_update_keeps_the_pre_image_and_rolls_back(migrated: Any, killer: Any) -> None:
    world = migrated
    full = world.after_full
    ctx = world.context(run_id="delta", kind="delta")
    load_parents(ctx)
    killer("Events")  # Zoho applied the Events batch; the process dies before the ledger hears of it
    with pytest.raises(Killed):
        load_module(ctx, "events")
    appointment = _zoho_id(world, "appt", 10)
    assert _state(world)["Events"][appointment]["Migration_Run_ID"] == "delta"
    assert world.ledger.pre_image("delta", "Events", appointment) is not None

    plan, result = _rollback(world, "delta")
    assert any("still marked running" in note for note in plan.notes)
    assert result.complete and result.human_edits == [], result.summary()  # our unrecorded write, not a person's
    assert _state(world) == full


def test_the_estimate_counts_the_pre_image_reads_a_delta_makes(tmp_path: Path,
                                                               world_factory: Callable[..., Any]) -> None:
    """Before the delta, the estimate's load phases (pre-images included) are what the emulator then counts,
    every load step on its own client as the Dagster assets have."""
    from dentrix_zoho.plan.counts import count_migration
    from dentrix_zoho.plan.estimate import EstimateInputs, estimate_phases

    est = test_load_estimate
    duck = KIT.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=_with_tasks)
    world = world_factory(duck, load_spec(), extra_args=["--token-mint-limit", "0"])

    def predicted() -> tuple[tuple[int, int], dict[str, int]]:
        phases, _ = estimate_phases(count_migration(duck, KIT.OFFICE, ledger=world.ledger),
                                    EstimateInputs.build(edition="enterprise", users=5))
        load = [p for p in phases if p.phase in est.LOAD_PHASES | {"pre-images"}]
        images: Counter[str] = Counter()
        for p in phases:
            if p.phase == "pre-images":
                images[p.module or ""] += p.calls
        return (sum(p.calls for p in load), sum(p.credits for p in load)), dict(images)

    first, images = predicted()
    assert images == {}  # a first run updates nothing
    assert est._run(world, KIT.Kit, "full")["load"] == first
    KIT.build_small_world(duck, tmp_path / "files", tweak=_delta_changes)
    again, images = predicted()
    # Contacts: the two changed, one GET by id each (insurance subform); Events and Tasks: one multi-id GET
    # (field types from set-up's hand-off); Notes: one multi-id GET and its field metadata (no hand-off).
    assert images == {"Contacts": 2, "Events": 1, "Tasks": 1, "Notes": 2}
    assert est._run(world, KIT.Kit, "delta")["load"] == again
