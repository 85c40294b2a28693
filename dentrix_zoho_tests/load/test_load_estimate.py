"""The migration estimate against what a load and its reconciliation then cost, counted by the emulator:
a first run and a re-run of changed rows (human-edit check, subform emptying, note update), every load
step with its own client as the Dagster assets have."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.load import LoadContext, LoadOptions, LoadOverBudget, estimate_load, load_all, refuse_if_over_budget
from dentrix_zoho.load.context import LOAD_ORDER
from dentrix_zoho.load.reconcile import reconcile_balances, reconcile_parents, reconcile_zoho_counts
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.plan.counts import count_migration
from dentrix_zoho.plan.estimate import EstimateInputs, estimate_phases

OFFICE = "office-1"
LOAD_PHASES = frozenset({"pre-scan", "human-edit check", "pre-images", "metadata", "subform emptying",
                         "record writes", "Bulk Write", "uploads", "file replacement"})


def _used(handle: Any) -> tuple[int, int]:
    usage = handle.usage()
    calls = sum(v for k, v in usage["calls"].items() if "oauth" not in k and "__emulator__" not in k)
    return calls, int(usage["credits"]["used_total"])


def _by_source_id(canonical_rows: list[str]) -> dict[str, Any]:
    rows = [json.loads(r) for r in canonical_rows]
    return {r["Source_System_ID"]: r for r in rows}


def _predicted(world: Any) -> dict[str, tuple[int, int]]:
    counts = count_migration(world.duckdb_path, OFFICE, ledger=world.ledger)
    phases, _ = estimate_phases(counts, EstimateInputs.build(edition="enterprise", users=5))
    out: Counter[str] = Counter()
    credits: Counter[str] = Counter()
    for p in phases:
        group = "load" if p.phase in LOAD_PHASES else p.phase
        out[group] += p.calls
        credits[group] += p.credits
    return {g: (out[g], credits[g]) for g in ("load", "reconciliation")}


def _run(world: Any, kit: Any, kind: str) -> dict[str, tuple[int, int]]:
    """Every load step on a fresh client, then the reconciliation reads on another: calls and credits."""
    run_id = world.ledger.start_run(kind, OFFICE)
    before = _used(world.handle)
    for name in LOAD_ORDER:
        client = kit.client_for(world.handle)
        try:
            load_all(LoadContext(world.duckdb_path, client, world.ledger, OFFICE, run_id, world.spec, world.owners,
                                 world.schema, LoadOptions()), (name,), check_budget=False)
        finally:
            client.close()
    after_load = _used(world.handle)
    client = kit.client_for(world.handle)
    try:
        reconcile_zoho_counts(client, world.ledger, OFFICE, world.schema, attempts=1, recheck_seconds=0)
        reconcile_parents(client, world.ledger, OFFICE, world.schema)
        reconcile_balances(world.duckdb_path, client, world.ledger, OFFICE, world.schema)
    finally:
        client.close()
    after = _used(world.handle)
    return {"load": (after_load[0] - before[0], after_load[1] - before[1]),
            "reconciliation": (after[0] - after_load[0], after[1] - after_load[1])}


def test_first_run_and_a_rerun_cost_what_the_estimate_says(tmp_path: Path, world_factory: Any, kit: Any) -> None:
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files")
    world = world_factory(duck, load_spec(), extra_args=["--token-mint-limit", "0"])  # a client per step

    predicted = _predicted(world)
    assert _run(world, kit, "full") == predicted

    def changed(tables: dict[str, list[dict[str, Any]]]) -> None:
        # the guarantor (subform rows: emptied first), an event and a note change; the rest does not
        tables["contacts"][0]["record"]["First_Name"] = "Gabriela"
        tables["events"][0]["record"]["Event_Title"] = "Prophy and fluoride"
        tables["notes"][0]["record"]["Note_Content"] = "Perio charting redone."
        for table in ("contacts", "events", "notes"):
            for row in tables[table]:
                row["row_hash"] = kit.module_row(row["source_object"], row["source_id"].rsplit(":", 1)[1],
                                                 row["record"], row["links"])["row_hash"]

    kit.build_small_world(duck, tmp_path / "files", tweak=changed)
    again = _predicted(world)
    phases, _ = estimate_phases(count_migration(duck, OFFICE, ledger=world.ledger),
                                EstimateInputs.build(edition="enterprise", users=5))
    kinds = {p.phase for p in phases}
    assert {"human-edit check", "subform emptying"} <= kinds  # the re-run's own calls are in the model
    assert _run(world, kit, "delta") == again


def test_a_load_over_budget_is_refused_under_stop_and_goes_on_under_pause(
        tmp_path: Path, world_factory: Any, kit: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The loader's own check before its first write: the estimate's credits against what is left."""
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files")
    for policy in ("stop", "pause"):
        world = world_factory(duck, load_spec(), client={"daily_credits_override": 60, "on_budget_exhausted": policy})
        ctx = world.context()
        estimate = estimate_load(ctx)
        assert estimate.credits == _predicted(world)["load"][1] > 0  # the same numbers as the estimate's
        world.client.budget.spend(60 - world.client.budget.spent - estimate.credits + 1)  # one credit too few
        assert not estimate_load(ctx).fits
        before = _used(world.handle)
        if policy == "stop":
            with pytest.raises(LoadOverBudget) as refused:
                load_all(ctx)
            assert refused.value.needed == estimate.credits
            assert _used(world.handle) == before  # refused before any call: nothing written
            assert not world.handle.snapshot()["modules"].get("Contacts")
        else:
            with caplog.at_level(logging.WARNING, logger="dentrix_zoho.load.loader"):
                refuse_if_over_budget(ctx, estimate_load(ctx))
            assert any("will pause when the credits run out" in r.getMessage() for r in caplog.records)


PATIENTS = 6_000  # Bulk Write's 500 credits a job pay beyond about 5,000 rows (record API: 1 credit per 10)


def _many_patients(tables: dict[str, list[dict[str, Any]]]) -> None:
    from dentrix_zoho_tests.load.conftest import module_row

    tables["contacts"] += [module_row("patient", 100 + n, {"Last_Name": f"Patient{n}", "First_Name": "Bulk",
                                                           "Date_of_Birth": "1980-01-02"},
                                      {"Owner": {"provider_id": "DDS1"}}, tier=1) for n in range(PATIENTS)]
    for table in ("events", "notes", "attachments"):
        tables[table] = []


@pytest.mark.slow
def test_bulk_write_is_chosen_where_cheaper_by_the_estimate_and_the_loader(
        tmp_path: Path, world_factory: Any, kit: Any) -> None:
    """On ``auto``: the estimate and the loader both take Bulk Write for the patients, it costs fewer credits
    than the record API did for the same rows, and Zoho ends the same."""
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=_many_patients)
    # Default polling: the planner counts a poll per bulk_poll_max of processing, so a fast poll would make
    # Bulk Write look dearer than it is.
    by_bulk = world_factory(duck, load_spec())
    by_records = world_factory(duck, load_spec())

    counts = count_migration(duck, OFFICE, ledger=by_bulk.ledger)
    phases, modules = estimate_phases(counts, EstimateInputs.build(edition="enterprise", users=5))
    assert modules["Contacts"].path == "mixed"  # the guarantor's subform rows go by the record API
    assert modules["Contacts"].bulk_credits is not None
    assert modules["Contacts"].bulk_credits < modules["Contacts"].records_credits
    assert any(p.phase == "Bulk Write" and p.step == "patients" for p in phases)

    spent: dict[str, int] = {}
    for name, world, path in (("bulk", by_bulk, "auto"), ("records", by_records, "records")):
        before = _used(world.handle)[1]
        results = {r.step: r for r in load_all(world.context(write_path=path), ("responsible_parties", "patients"))}
        spent[name] = _used(world.handle)[1] - before
        assert results["patients"].ok == PATIENTS + 2 and results["patients"].failed == 0
        assert results["patients"].write_path == ("bulk" if name == "bulk" else "records")
    assert spent["bulk"] < spent["records"]
    # Compared as values (0 from the record API's JSON and 0.0 from Bulk Write's CSV are the same amount).
    got, want = (_by_source_id(kit.canonical(w.handle.snapshot())["Contacts"]) for w in (by_bulk, by_records))
    assert len(got) == PATIENTS + 3 and got == want
