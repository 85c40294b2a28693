from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dentrix_zoho.rollback import execute_rollback, plan_rollback

MODULE_ORDER = ["Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments"]
WITHIN = {"Contacts": ["guarantor", "patient"]}
HUMAN_ID = "9000000000000000002"


def _plan(world: Any, run_id: str | None = None, all_runs: bool = False) -> Any:
    return plan_rollback(world.ledger, run_id, all_runs, MODULE_ORDER, within_module_order=WITHIN)


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in {"Modified_Time", "Modified_By", "Created_Time", "Created_By"}}


def _pre_migration_state(world: Any) -> dict[str, Any]:
    return {"Contacts": {world.ids[key]: _strip(rec) for key, rec in world.originals.items()}}


def _open_pre_images_of_live_records(world: Any) -> list[Any]:
    # Pre-images of records the rollback deleted stay unrestored: there is nothing to put back.
    refs = world.ledger.pre_image_refs(restored=False)
    return [ref for ref in refs if not world.ledger.by_zoho_ids(ref.module, [ref.zoho_id])[ref.zoho_id].deleted]


def _live(zoho: Any) -> dict[str, Any]:
    return {module: records for module, records in zoho.data().items() if records}


def test_rollback_of_everything_returns_zoho_to_before_the_migration(make_world: Callable[..., Any]) -> None:
    world = make_world()
    plan = _plan(world, all_runs=True)
    result = execute_rollback(plan, world.zoho, world.ledger, "RB1")

    assert _live(world.zoho) == _pre_migration_state(world)
    assert (result.deleted, result.restored, result.already_done) == (210, 12, 0)
    assert result.complete and not result.human_edits
    assert (result.api_calls, result.credits) == (plan.api_calls, plan.credits)
    entries = list(world.ledger.audit_entries("RB1"))
    assert sum(e.credits for e in entries) == plan.credits
    assert {e.code for e in entries if e.operation == "delete"} == {"SUCCESS"}  # nothing vanished early
    # The restore's read asks for the fields it puts back, not only the stamps.
    assert {"Insurance", "Last_Name", "Phone", "Modified_Time"} <= set(world.zoho.fetched_fields[0][1])
    assert world.ledger.verify_chain().ok
    assert world.ledger.run("RB1").kind == "rollback"  # type: ignore[union-attr]
    assert world.ledger.run("RB1").status == "succeeded"  # type: ignore[union-attr]
    assert not list(world.ledger.crosswalk_rows(created=True, deleted=False))
    assert _open_pre_images_of_live_records(world) == []
    assert _plan(world, all_runs=True).is_empty
    # The restored records are sent again by the next run: their hash is forgotten.
    assert world.ledger.changed_rows("o1", "existing", {"0": "h-R1-0"}) == {"0"}


def test_deletes_run_children_first_and_patients_before_their_guarantors(make_world: Callable[..., Any]) -> None:
    world = make_world()
    execute_rollback(_plan(world, all_runs=True), world.zoho, world.ledger, "RB1")
    calls = world.zoho.write_calls()
    assert calls[0][0] == "update"
    deleted_modules = [module if verb == "delete" else "Attachments" for verb, module, _ in calls[1:]]
    assert deleted_modules == ["Attachments"] * 3 + ["Notes", "Tasks", "Events", "Contacts", "Contacts"]
    contact_ids = [zid for verb, module, ids in calls if verb == "delete" and module == "Contacts" for zid in ids]
    guarantors = {world.ids["guarantor:0"], world.ids["guarantor:1"]}
    assert set(contact_ids[-2:]) == guarantors


def test_rolling_back_runs_one_by_one_equals_rolling_back_everything(make_world: Callable[..., Any]) -> None:
    stepwise = make_world("stepwise")
    r2 = execute_rollback(_plan(stepwise, "R2"), stepwise.zoho, stepwise.ledger, "RB-R2")
    assert (r2.deleted, r2.restored) == (5, 2)
    existing_1 = stepwise.ids["existing:1"]
    assert _strip(stepwise.zoho.get("Contacts", existing_1)) == _strip(stepwise.after_r1["existing:1"])
    assert stepwise.zoho.get("Contacts", stepwise.ids["patient:1"])["Last_Name"] == "Patient1"
    r1 = execute_rollback(_plan(stepwise, "R1"), stepwise.zoho, stepwise.ledger, "RB-R1")
    assert r1.complete and not r1.human_edits

    whole = make_world("whole")
    execute_rollback(_plan(whole, all_runs=True), whole.zoho, whole.ledger, "RB")
    assert _live(stepwise.zoho) == _live(whole.zoho) == _pre_migration_state(whole)


@pytest.mark.parametrize("crash_on_write", [1, 4, 7, 9])
@pytest.mark.parametrize("replan", [True, False])
def test_a_crashed_rollback_resumes_to_the_clean_end_state(
    make_world: Callable[..., Any], crash_on_write: int, replan: bool
) -> None:
    world = make_world()
    plan = _plan(world, all_runs=True)
    world.zoho.crash_on_write = crash_on_write  # the call is applied in Zoho, the answer is lost
    with pytest.raises(RuntimeError, match="connection lost"):
        execute_rollback(plan, world.zoho, world.ledger, "RB1")
    assert world.ledger.run("RB1").status == "failed"  # type: ignore[union-attr]
    assert any(e.outcome == "uncertain" for e in world.ledger.audit_entries("RB1"))

    world.zoho.crash_on_write = None
    resumed_plan = _plan(world, all_runs=True) if replan else plan
    if replan:
        assert len(resumed_plan.steps) == len(plan.steps) - (crash_on_write - 1)
    result = execute_rollback(resumed_plan, world.zoho, world.ledger, "RB1")

    assert result.complete and not result.human_edits  # our own half-done writes are not human edits
    assert result.already_done >= 1
    assert _live(world.zoho) == _pre_migration_state(world)
    assert world.ledger.run("RB1").status == "succeeded"  # type: ignore[union-attr]
    assert world.ledger.verify_chain().ok
    assert not list(world.ledger.crosswalk_rows(created=True, deleted=False))
    assert _open_pre_images_of_live_records(world) == []
    # Nothing was deleted or restored twice.
    writes = [zid for verb, _, ids in world.zoho.write_calls() for zid in ids if verb in ("update", "delete")]
    assert len(writes) == len(set(writes))


def _human_edits(world: Any) -> tuple[str, str]:
    patient, existing = world.ids["patient:5"], world.ids["existing:3"]
    human = {"id": HUMAN_ID, "name": "Front Desk"}
    world.zoho.edit("Contacts", patient, {"Phone": "+15551112222"}, by=human)
    world.zoho.edit("Contacts", existing, {"Phone": "+15553334444"}, by=human)
    return patient, existing


def test_human_edits_are_skipped_and_reported_by_default(make_world: Callable[..., Any]) -> None:
    world = make_world()
    patient, existing = _human_edits(world)
    result = execute_rollback(_plan(world, "R1"), world.zoho, world.ledger, "RB1")

    assert {(e.op, e.zoho_id, e.action, e.modified_by_id) for e in result.human_edits} == {
        ("delete", patient, "skipped", HUMAN_ID),
        ("restore", existing, "skipped", HUMAN_ID),
    }
    assert not result.complete and not result.failures
    assert world.zoho.get("Contacts", patient)["Phone"] == "+15551112222"
    assert world.zoho.get("Contacts", existing)["Phone"] == "+15553334444"
    assert world.zoho.get("Contacts", world.ids["patient:6"]) is None
    skipped = [e for e in world.ledger.audit_entries("RB1") if e.outcome == "skipped"]
    assert {(e.zoho_id, e.code) for e in skipped} == {(patient, "HUMAN_EDITED"), (existing, "HUMAN_EDITED")}
    # The edited records stay in the plan until someone decides.
    remaining = _plan(world, "R1")
    assert {item.zoho_id for s in remaining.steps for item in s.items} == {patient, existing}


def test_force_overwrites_human_edits(make_world: Callable[..., Any]) -> None:
    world = make_world()
    patient, existing = _human_edits(world)
    result = execute_rollback(_plan(world, "R1"), world.zoho, world.ledger, "RB1", policy="force")
    assert {(e.zoho_id, e.action) for e in result.human_edits} == {(patient, "forced"), (existing, "forced")}
    assert result.complete
    assert world.zoho.get("Contacts", patient) is None
    assert world.zoho.get("Contacts", existing)["Phone"] == world.originals["existing:3"]["Phone"]
    assert _plan(world, "R1").is_empty


def test_a_failed_delete_is_reported_and_retried_later(make_world: Callable[..., Any]) -> None:
    world = make_world()
    original_delete = world.zoho.delete

    def refusing_delete(module: str, ids: Any) -> Any:
        outcomes = original_delete(module, [i for i in ids if i != world.ids["appt:3"]])
        from dentrix_zoho.rollback import WriteOutcome

        return [*outcomes, *(WriteOutcome(i, False, "INTERNAL_ERROR", 500) for i in ids if i == world.ids["appt:3"])]

    world.zoho.delete = refusing_delete
    result = execute_rollback(_plan(world, "R2"), world.zoho, world.ledger, "RB-R2")
    assert result.complete
    result = execute_rollback(_plan(world, "R1"), world.zoho, world.ledger, "RB-R1")
    assert [(f.op, f.zoho_id, f.code) for f in result.failures] == [("delete", world.ids["appt:3"], "INTERNAL_ERROR")]
    assert world.ledger.run("RB-R1").status == "failed"  # type: ignore[union-attr]

    world.zoho.delete = original_delete
    retry = _plan(world, "R1")
    assert [(s.module, s.zoho_ids) for s in retry.steps] == [("Events", [world.ids["appt:3"]])]
    assert execute_rollback(retry, world.zoho, world.ledger, "RB-R1b").complete
    assert _live(world.zoho) == _pre_migration_state(world)


def test_a_long_rollback_reports_progress_to_the_callers_sink(
    make_world: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dentrix_zoho.progress import PROGRESS_PREFIX, reporting_to

    monkeypatch.setenv("DENTRIX_ZOHO_PROGRESS_SECONDS", "0.000001")  # every step is "10 s later"
    world = make_world()
    plan = _plan(world, all_runs=True)
    total = sum(len(step.items) for step in plan.steps)
    lines: list[str] = []
    with reporting_to(lines.append):
        result = execute_rollback(plan, world.zoho, world.ledger, "RB1")
    assert len(lines) == len(plan.steps)
    assert all(line.startswith(PROGRESS_PREFIX + "rollback all: ") for line in lines)
    assert f"{total:,}/{total:,} records (100%)" in lines[-1]
    assert f"{result.api_calls:,} calls" in lines[-1]
