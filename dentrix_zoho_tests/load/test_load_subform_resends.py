"""Subform rows are never doubled by a resend: every route by which a write carrying them goes again.

Zoho appends a subform row sent without an ``id`` ("Subforms" in the v8 docs), so a write carrying
insurance plans that Zoho applied but whose answer was lost (a 5xx or a dropped connection after
the write) must not simply be sent again. The routes: the client's own retry of the call, the
loader's resend of the batch in the same step, the next run after a kill (with and without Zoho's
search index lagging the write), an update of a record loaded before, and a rollback's restore.

The faults are deterministic: ``KIND@N`` in the emulator's fault spec applies the N-th write call
(counted from when the spec was set) and then answers it with KIND.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.load import load_module, upserts
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.rollback import plan_rollback
from dentrix_zoho.rollback.service import run_rollback
from dentrix_zoho.zoho_emulator.faults import FaultPlan, FaultSpecError, parse_fault_spec

PLANS = [{"Plan_Type": "Primary", "Carrier": "Delta Dental"}, {"Plan_Type": "Secondary", "Carrier": "MetLife"}]
WANTED = [("Primary", "Delta Dental"), ("Secondary", "MetLife")]
LAG = ["--index-lag-seconds", "3600"]


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs in this process's load."""


def guarantor(kit: Any, plans: list[dict[str, str]]) -> Callable[[dict[str, list[dict[str, Any]]]], None]:
    """The small world with patient 1 (the responsible party, step ``responsible_parties``) insured ``plans``."""
    def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"][0] = kit.module_row(
            "patient", 1, {"Last_Name": "Guarantor", "First_Name": "Gail", "Balance_Due": 120.5,
                           "Insurance_Plans": plans},
            {"Owner": {"provider_id": "DDS1"}}, tier=0)
    return tweak


def make_world(tmp_path: Path, world_factory: Any, kit: Any, plans: list[dict[str, str]] = PLANS,
               **kwargs: Any) -> Any:
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=guarantor(kit, plans))
    return world_factory(duck, load_spec(), **kwargs)


def contacts(world: Any) -> dict[str, dict[str, Any]]:
    records = world.handle.snapshot()["modules"].get("Contacts", [])
    keys = [r["Source_System_ID"] for r in records]
    assert len(keys) == len(set(keys)), "a Contact twice"
    return {r["Source_System_ID"]: r for r in records}


def plans_of(world: Any, kit: Any) -> list[tuple[str, str]]:
    record = contacts(world)[kit.sid("patient", 1)]
    return [(p["Plan_Type"], p["Carrier"]) for p in record.get("Insurance_Plans") or []]


def lost_after_write(world: Any, *calls: int, kind: str = "500") -> None:
    world.faults_before = dict(world.handle.usage()["faults_injected"])
    world.handle.set_faults(",".join(f"{kind}@{n}" for n in calls))


def injected(world: Any) -> dict[str, int]:
    """The faults the emulator injected since :func:`lost_after_write`; no faults from here on."""
    counts: dict[str, int] = world.handle.usage()["faults_injected"]
    world.handle.set_faults(None)
    before = getattr(world, "faults_before", {})
    return {k: n - before.get(k, 0) for k, n in counts.items() if n - before.get(k, 0)}


def upsert_calls(world: Any) -> int:
    return int(world.handle.usage()["calls"].get("POST /crm/v8/{module}/upsert", 0))


@pytest.fixture
def kill_contacts_commit(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Arm: the next ledger commit of a Contacts batch dies, as SIGKILL landing after Zoho's answer."""
    real = upserts.commit

    def arm() -> None:
        def dying(ctx: Any, writer: Any, batch: Any, result: Any, step: Any) -> None:
            if step.module == "Contacts":
                monkeypatch.setattr(upserts, "commit", real)
                raise Killed
            real(ctx, writer, batch, result, step)

        monkeypatch.setattr(upserts, "commit", dying)

    yield arm
    monkeypatch.setattr(upserts, "commit", real)


# -- the fault knob --------------------------------------------------------------------------------


def test_a_scheduled_fault_lands_after_exactly_the_nth_write() -> None:
    plan = FaultPlan("500@2,drop@3", seed=0)
    drawn = [plan.draw(is_write=False), plan.draw(is_write=True), plan.draw(is_write=False),
             plan.draw(is_write=True), plan.draw(is_write=True), plan.draw(is_write=True)]
    assert [(f.kind, f.after_write) if f else None for f in drawn] == [
        None, None, None, ("500", True), ("drop", True), None]
    assert parse_fault_spec("429=0.1,500@1") == {"429": 0.1}  # rates and schedules mix
    for bad in ("429@1", "slow@2", "500@0", "500@x", "500@1,503@1"):
        with pytest.raises(FaultSpecError):
            parse_fault_spec(bad)


# -- the client: a write carrying subform rows is sent once ----------------------------------------


def test_the_client_does_not_resend_subform_rows_but_resends_the_rest(tmp_path: Path, world_factory: Any,
                                                                      kit: Any) -> None:
    world = make_world(tmp_path, world_factory, kit)
    sid = kit.sid("patient", 1)
    lost_after_write(world, 1)
    [outcome] = world.client.upsert("Contacts", [{"Last_Name": "Guarantor", "Source_System_ID": sid,
                                                  "Insurance_Plans": PLANS}])
    assert injected(world) == {"500:after": 1}
    assert outcome.uncertain and not outcome.ok  # applied once, and said so: not sent a second time
    assert plans_of(world, kit) == WANTED
    zoho_id = contacts(world)[sid]["id"]

    lost_after_write(world, 1)  # by id, rows without an id: the same rule
    [outcome] = world.client.update("Contacts", [{"id": zoho_id, "Insurance_Plans": PLANS[:1]}])
    assert injected(world) == {"500:after": 1} and outcome.uncertain
    assert plans_of(world, kit) == [*WANTED, WANTED[0]]

    lost_after_write(world, 1)  # nothing Zoho appends: repeating is harmless, so the client repeats
    [outcome] = world.client.update("Contacts", [{"id": zoho_id, "Insurance_Plans": []}])
    assert outcome.ok and plans_of(world, kit) == []
    lost_after_write(world, 1)
    [outcome] = world.client.upsert("Contacts", [{"Last_Name": "Solo", "Source_System_ID": kit.sid("patient", 3)}])
    assert injected(world) == {"500:after": 1} and outcome.ok
    assert len(contacts(world)) == 2


# -- the loader: resends in the same step ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "drop"])
def test_a_new_contact_whose_answer_is_lost_ends_with_exactly_its_plans(tmp_path: Path, world_factory: Any,
                                                                        kit: Any, kind: str) -> None:
    world = make_world(tmp_path, world_factory, kit)
    ctx = world.context()
    lost_after_write(world, 1, kind=kind)  # the step's first write is the batch's upsert
    result = load_module(ctx, "responsible_parties")
    assert injected(world) == {f"{kind}:after": 1}
    assert plans_of(world, kit) == WANTED
    assert (result.ok, result.created, result.failed, result.quarantined) == (1, 1, 0, 0)
    row = world.ledger.lookup(kit.OFFICE, "patient", kit.sid("patient", 1))
    assert row is not None and row.zoho_id == contacts(world)[kit.sid("patient", 1)]["id"]
    assert row.created_by_run == ctx.run_id


def test_resends_whose_answers_are_lost_too_still_converge(tmp_path: Path, world_factory: Any, kit: Any) -> None:
    world = make_world(tmp_path, world_factory, kit)
    # The upsert, then the resend of round 1 (after its emptying call) are applied and lost.
    lost_after_write(world, 1, 3)
    upserts_before = upsert_calls(world)
    result = load_module(world.context(), "responsible_parties")
    assert injected(world) == {"500:after": 2}
    assert plans_of(world, kit) == WANTED and (result.ok, result.created, result.failed) == (1, 1, 0)
    # Emptied and sent once more in each round: four calls after the first, none repeated blindly.
    assert upsert_calls(world) - upserts_before == 1 + 2 * 2


@pytest.mark.parametrize("lag", [False, True], ids=["indexed", "index_lags"])
def test_a_batch_still_in_doubt_after_every_round_converges_on_the_next_run(
        tmp_path: Path, world_factory: Any, kit: Any, lag: bool) -> None:
    world = make_world(tmp_path, world_factory, kit, **({"extra_args": LAG} if lag else {}))
    lost_after_write(world, *(1 + 2 * n for n in range(upserts.RESEND_ROUNDS + 1)))
    first = load_module(world.context(), "responsible_parties")
    assert injected(world) == {"500:after": upserts.RESEND_ROUNDS + 1}
    assert (first.ok, first.failed) == (0, 1)  # in doubt: counted failed, not taken for done
    assert world.ledger.lookup(kit.OFFICE, "patient", kit.sid("patient", 1)) is None
    assert plans_of(world, kit) == WANTED  # the last resend landed

    ctx = world.context()
    again = load_module(ctx, "responsible_parties")
    assert plans_of(world, kit) == WANTED
    assert (again.ok, again.created, again.failed) == (1, 1, 0)
    row = world.ledger.lookup(kit.OFFICE, "patient", kit.sid("patient", 1))
    assert row is not None and row.created_by_run == ctx.run_id


# -- the next run after a kill ----------------------------------------------------------------------------


@pytest.mark.parametrize("lag", [False, True], ids=["indexed", "index_lags"])
@pytest.mark.parametrize("resume_as", ["same_run", "next_run"])
def test_a_contact_a_killed_run_wrote_ends_with_exactly_its_plans(
        tmp_path: Path, world_factory: Any, kit: Any, kill_contacts_commit: Callable[[], None],
        lag: bool, resume_as: str) -> None:
    world = make_world(tmp_path, world_factory, kit, **({"extra_args": LAG} if lag else {}))
    crashed = world.context()
    kill_contacts_commit()
    with pytest.raises(Killed):
        load_module(crashed, "responsible_parties")
    assert plans_of(world, kit) == WANTED
    assert world.ledger.lookup(kit.OFFICE, "patient", kit.sid("patient", 1)) is None

    resumed = world.context(run_id=crashed.run_id if resume_as == "same_run" else None)
    result = load_module(resumed, "responsible_parties")
    assert plans_of(world, kit) == WANTED
    assert (result.ok, result.created, result.failed) == (1, 1, 0)
    # The resumed run's own write counted: a second run has nothing to send.
    assert load_module(world.context(), "responsible_parties").sent == 0
    assert plans_of(world, kit) == WANTED


# -- an update of a record loaded before ------------------------------------------------------------


def test_an_update_whose_answer_is_lost_replaces_the_plans_once(tmp_path: Path, world_factory: Any,
                                                                kit: Any) -> None:
    world = make_world(tmp_path, world_factory, kit, plans=PLANS[:1])
    assert load_module(world.context(), "responsible_parties").created == 1
    assert plans_of(world, kit) == WANTED[:1]
    kit.build_small_world(world.duckdb_path, tmp_path / "files", tweak=guarantor(kit, PLANS))
    # Write 1 empties the plans (by id), write 2 is the upsert: applied, answer lost.
    lost_after_write(world, 2)
    result = load_module(world.context(kind="delta"), "responsible_parties")
    assert injected(world) == {"500:after": 1}
    assert plans_of(world, kit) == WANTED
    assert (result.ok, result.updated, result.failed, result.human_edited) == (1, 1, 0, 0)


# -- a rollback's restore -----------------------------------------------------------------------------


@pytest.mark.parametrize("ours", [2, 0], ids=["two_plans", "no_plans"])
def test_a_restore_whose_answer_is_lost_is_not_taken_for_done_nor_doubled(tmp_path: Path, world_factory: Any,
                                                                          kit: Any, ours: int) -> None:
    world = make_world(tmp_path, world_factory, kit, plans=PLANS[:ours])
    sid = kit.sid("patient", 1)
    # There before us, with one plan: the migration replaces its plans and keeps the pre-image.
    [before] = world.client.upsert("Contacts", [{"Last_Name": "Guarantor", "Source_System_ID": sid,
                                                 "Insurance_Plans": PLANS[:1]}])
    assert before.ok
    ctx = world.context()
    result = load_module(ctx, "responsible_parties")
    assert (result.ok, result.created, result.pre_images) == (1, 0, 1) and plans_of(world, kit) == WANTED[:ours]

    # The restore re-creates the pre-image's row (its id is gone; ours are deleted): applied, answer lost.
    lost_after_write(world, 1)
    first = run_rollback(plan_rollback(world.ledger, ctx.run_id, False), world.client, world.ledger, "RB1")
    assert injected(world) == {"500:after": 1}
    assert not first.complete and first.restored == 0
    assert plans_of(world, kit) == WANTED[:1]
    again = run_rollback(plan_rollback(world.ledger, ctx.run_id, False), world.client, world.ledger, "RB1")
    assert again.complete, again.summary()
    assert plans_of(world, kit) == WANTED[:1]
