from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dentrix_zoho.ledger import LedgerError
from dentrix_zoho.rollback import plan_rollback

MODULE_ORDER = ["Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments"]
WITHIN = {"Contacts": ["guarantor", "patient"]}


def _plan(world: Any, run_id: str | None = None, all_runs: bool = False, **kwargs: Any) -> Any:
    return plan_rollback(world.ledger, run_id, all_runs, MODULE_ORDER, within_module_order=WITHIN, **kwargs)


def test_plan_of_one_run_orders_children_before_parents(make_world: Callable[..., Any]) -> None:
    world = make_world()
    plan = _plan(world, "R1")
    assert [(s.op, s.module, len(s.items)) for s in plan.steps] == [
        ("restore", "Contacts", 12),
        ("delete", "Attachments", 1),
        ("delete", "Attachments", 1),
        ("delete", "Attachments", 1),
        ("delete", "Notes", 20),
        ("delete", "Events", 30),
        ("delete", "Contacts", 100),
        ("delete", "Contacts", 52),
    ]
    contact_deletes = [item for s in plan.steps if s.op == "delete" and s.module == "Contacts" for item in s.items]
    kinds = [item.source_object for item in contact_deletes]
    assert kinds == ["patient"] * 150 + ["guarantor"] * 2
    attachment = plan.steps[1].items[0]
    assert (attachment.parent_module, attachment.parent_zoho_id) == ("Contacts", world.ids["patient:0"])
    assert plan.counts() == {
        ("Contacts", "restore"): 12,
        ("Attachments", "delete"): 3,
        ("Notes", "delete"): 20,
        ("Events", "delete"): 30,
        ("Contacts", "delete"): 152,
    }
    # 8 write calls + 5 Modified_Time reads (attachments are not read);
    # credits: restore 12 records = 2, every delete call 1, every read 1.
    assert (plan.write_calls, plan.check_calls, plan.api_calls) == (8, 5, 13)
    assert plan.credits == 2 + 3 + 1 + 1 + 2 + 5
    assert any("2 record(s) were written again by a later run" in note for note in plan.notes)


def test_plan_cost_without_checks_and_for_all_runs(make_world: Callable[..., Any]) -> None:
    world = make_world()
    unchecked = _plan(world, "R1", check_human_edits=False)
    assert (unchecked.api_calls, unchecked.credits) == (8, 9)

    everything = _plan(world, all_runs=True)
    assert [(s.op, s.module) for s in everything.steps if not s.per_record] == [
        ("restore", "Contacts"),
        ("delete", "Notes"),
        ("delete", "Tasks"),
        ("delete", "Events"),
        ("delete", "Contacts"),
        ("delete", "Contacts"),
    ]
    assert sum(len(s.items) for s in everything.steps if s.op == "delete") == 152 + 30 + 20 + 3 + 5
    assert (everything.write_calls, everything.check_calls, everything.credits) == (9, 6, 16)
    assert everything.run_ids == ("R1", "R2")


def test_restore_uses_this_runs_pre_image_or_the_earliest_for_all(make_world: Callable[..., Any]) -> None:
    world = make_world()
    existing_1 = world.ids["existing:1"]
    patient_1 = world.ids["patient:1"]

    def restore_items(plan: Any) -> dict[str, Any]:
        return {item.zoho_id: item for s in plan.steps if s.op == "restore" for item in s.items}

    r2 = restore_items(_plan(world, "R2"))
    assert set(r2) == {existing_1, patient_1}
    assert r2[existing_1].pre_image_run_id == "R2"
    assert world.ledger.pre_image("R2", "Contacts", existing_1)["Phone"] == "+15559999999"

    r1 = restore_items(_plan(world, "R1"))
    assert len(r1) == 12 and patient_1 not in r1  # R1 created patient 1: deleted, not restored
    assert r1[existing_1].pre_image_run_id == "R1"
    assert len(r1[existing_1].pre_image_ids) == 1

    every = restore_items(_plan(world, all_runs=True))
    assert patient_1 not in every
    assert every[existing_1].pre_image_run_id == "R1"
    assert len(every[existing_1].pre_image_ids) == 2  # settles R1's and R2's pre-images
    assert world.ledger.pre_image("R1", "Contacts", existing_1)["Phone"] == world.originals["existing:1"]["Phone"]


def test_render_shows_counts_calls_and_credits(make_world: Callable[..., Any]) -> None:
    world = make_world()
    text = _plan(world, "R2").render()
    assert "Rollback of run R2 (office o1)" in text
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in text.splitlines()[1:]}
    assert rows[("restore", "Contacts")] == ["2", "1", "1"]
    assert rows[("delete", "Tasks")] == ["5", "1", "1"]
    assert rows[("total", "7")] == ["4", "4"]
    assert "Patient" not in text and "+1555" not in text


def test_plan_arguments_are_checked(make_world: Callable[..., Any]) -> None:
    world = make_world()
    with pytest.raises(ValueError):
        _plan(world, "R1", all_runs=True)
    with pytest.raises(ValueError):
        _plan(world, None, all_runs=False)
    with pytest.raises(LedgerError):
        _plan(world, "nope")
    world.ledger.start_run("rollback", "o1", run_id="RB")
    with pytest.raises(LedgerError):
        _plan(world, "RB")


def test_other_offices_are_left_out(make_world: Callable[..., Any]) -> None:
    world = make_world()
    run = world.ledger.start_run("full", "o2", run_id="O2")
    world.ledger.record_write(run, "o2", "patient", "1", "Contacts", "o2-contact", "h", True, None)
    only_o1 = _plan(world, all_runs=True, office_id="o1")
    ids = {item.zoho_id for s in only_o1.steps for item in s.items}
    assert "o2-contact" not in ids
    assert only_o1.run_ids == ("R1", "R2")
    assert "o2-contact" in {item.zoho_id for s in _plan(world, all_runs=True).steps for item in s.items}


def test_dry_run_prints_the_plan_and_its_cost(make_world: Callable[..., Any]) -> None:
    from click.testing import CliRunner

    from dentrix_zoho.rollback.cli import rollback

    world = make_world()
    runner = CliRunner()
    shown = runner.invoke(
        rollback, ["--run", "R1", "--dry-run", "--url", world.ledger.url, "--within", "Contacts=guarantor,patient"]
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0] == "Rollback of run R1 (office o1)"
    total = next(line for line in shown.output.splitlines() if line.startswith("total"))
    # As the Zoho adapter carries it out: the 12 restores are checked by one GET per record
    # (only that read returns subforms), so 8 writes + 4 list reads + 12 record reads.
    assert total.split() == ["total", "217", "24", "25"]
    unknown = runner.invoke(rollback, ["--run", "nope", "--dry-run", "--url", world.ledger.url])
    assert unknown.exit_code == 1 and "no run nope" in unknown.output
    assert runner.invoke(rollback, ["--dry-run", "--url", world.ledger.url]).exit_code == 2
    assert runner.invoke(rollback, ["--run", "R1", "--all", "--url", world.ledger.url]).exit_code == 2
