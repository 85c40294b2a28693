from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.rollback import execute_rollback
from dentrix_zoho.rollback.service import close_finished, describe, make_plan, plan_counts, unfinished_rollback

from .conftest import HUMAN_USER, INTEGRATION_USER, FakeZoho


def test_an_interrupted_rollback_is_found_again_for_its_own_target_only(make_world: Callable[..., Any]) -> None:
    world = make_world()
    plan_r2 = make_plan(world.ledger, "R2", False)
    assert unfinished_rollback(world.ledger, plan_r2) is None
    world.zoho.crash_on_write = 2
    with pytest.raises(RuntimeError):
        execute_rollback(plan_r2, world.zoho, world.ledger, "RB-R2")
    world.zoho.crash_on_write = None

    assert unfinished_rollback(world.ledger, make_plan(world.ledger, "R2", False)) == "RB-R2"
    assert unfinished_rollback(world.ledger, make_plan(world.ledger, "R1", False)) is None
    assert unfinished_rollback(world.ledger, make_plan(world.ledger, None, True)) is None

    execute_rollback(make_plan(world.ledger, "R2", False), world.zoho, world.ledger, "RB-R2")
    assert world.ledger.run("RB-R2").status == "succeeded"  # type: ignore[union-attr]
    assert unfinished_rollback(world.ledger, make_plan(world.ledger, "R2", False)) is None


def test_a_run_killed_after_its_last_step_is_closed_when_nothing_is_left(make_world: Callable[..., Any]) -> None:
    world = make_world()
    execute_rollback(make_plan(world.ledger, "R2", False), world.zoho, world.ledger, "RB-R2")
    world.ledger.start_run("rollback", "o1", run_id="RB-R2")  # what a kill before finish_run leaves: "running"
    empty = make_plan(world.ledger, "R2", False)
    assert empty.is_empty
    assert close_finished(world.ledger, empty) == "RB-R2"
    assert world.ledger.run("RB-R2").status == "succeeded"  # type: ignore[union-attr]
    assert close_finished(world.ledger, empty) is None


def test_counts_for_logs_and_metadata_hold_numbers_only(make_world: Callable[..., Any]) -> None:
    world = make_world()
    world.zoho.edit("Contacts", world.ids["patient:7"], {"Phone": "+15550000000"}, by={"id": "42", "name": "x"})
    plan = make_plan(world.ledger, "R1", False)
    counts = plan_counts(plan)
    assert counts["delete.Contacts"] == 152 and counts["restore.Contacts"] == 12
    assert counts["check_calls"] == 12 + 4 and counts["api_calls"] == plan.api_calls
    result = execute_rollback(plan, world.zoho, world.ledger, "RB1")
    described = describe(result)
    assert described["complete"] is False and described["human_edits_skipped"] == 1
    assert described["breakdown"] == [("human edit, skipped", "delete", "Contacts", 1)]
    assert all(isinstance(v, int) for k, v in described.items() if k not in ("complete", "breakdown"))


def _unstamped_world(tmp_path: Path) -> tuple[Ledger, FakeZoho, list[str]]:
    """What the loader leaves today: crosswalk rows without a recorded Modified_Time."""
    ledger, zoho = Ledger.for_home(tmp_path), FakeZoho()
    run = ledger.start_run("full", "o1", run_id="R1")
    ids = []
    for n in range(2):
        record = zoho.create("Contacts", {"Last_Name": f"P{n}"})
        ledger.record_write(run, "o1", "patient", str(n), "Contacts", record["id"], "h", True, None)
        ids.append(record["id"])
    ledger.finish_run(run, "succeeded")
    zoho.edit("Contacts", ids[0], {"Phone": "+15550000001"}, by=HUMAN_USER)
    return ledger, zoho, ids


def test_without_a_recorded_modified_time_the_last_writer_tells_a_human_edit(tmp_path: Path) -> None:
    ledger, zoho, ids = _unstamped_world(tmp_path / "a")
    result = execute_rollback(
        make_plan(ledger, "R1", False), zoho, ledger, "RB", our_user_ids=[INTEGRATION_USER["id"]]
    )
    assert [(e.zoho_id, e.action, e.modified_by_id) for e in result.human_edits] == [
        (ids[0], "skipped", HUMAN_USER["id"])
    ]
    assert (result.deleted, result.unverified) == (1, 0)
    assert zoho.get("Contacts", ids[0]) is not None and zoho.get("Contacts", ids[1]) is None
    ledger.close()

    # Not knowing who we are, nothing can be told apart: both go, counted as unverified.
    ledger, zoho, ids = _unstamped_world(tmp_path / "b")
    blind = execute_rollback(make_plan(ledger, "R1", False), zoho, ledger, "RB")
    assert (blind.deleted, blind.unverified, blind.human_edits) == (2, 2, [])
    ledger.close()
