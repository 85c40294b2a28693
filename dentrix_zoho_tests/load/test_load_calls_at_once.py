"""Calls of one step that do not depend on each other go out together (within the org's limits).

Pre-images of records that were in Zoho before us, the listings of parents whose children a killed
run may have created, and the emptying of subforms before rows are re-sent were one call after the
other. Each is asserted by what the client saw (calls whose time in flight overlaps, from its own
events) and by the result being the one the sequential code gave.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dentrix_zoho.load import load_module
from dentrix_zoho.load.ledger_io import LedgerWriter
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.zoho import ZohoClient
from dentrix_zoho.zoho.events import ApiCallEvent

LATENCY_MS = 50  # each call is in flight at least this long, so calls sent together overlap
EXTRA = range(100, 130)  # patients added to the small world


def listening(world: Any) -> list[ApiCallEvent]:
    """The world's client replaced by one that records its calls."""
    events: list[ApiCallEvent] = []
    world.client = ZohoClient(world.client.config, event_sink=events.append)
    return events


def most_at_once(events: list[ApiCallEvent], method: str, path: str) -> int:
    spans = sorted((e.time, e.time + e.latency_ms / 1000) for e in events
                   if e.method == method and e.path_template == path)
    most = 0
    for i, (start, _) in enumerate(spans):
        most = max(most, sum(1 for a, b in spans[: i + 1] if a <= start < b))
    return most


def with_patients(kit: Any, plans: bool = False) -> Any:
    def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
        for n in EXTRA:
            record: dict[str, Any] = {"Last_Name": f"Extra{n}", "First_Name": "Pat"}
            if plans:
                record["Insurance_Plans"] = [{"Plan_Type": "Primary", "Carrier": f"Carrier {n}"}]
            tables["contacts"].append(kit.module_row("patient", n, record, {"Owner": {"provider_id": "DDS1"}}, tier=1))
    return tweak


def contacts(world: Any) -> dict[str, dict[str, Any]]:
    records = world.handle.snapshot()["modules"].get("Contacts", [])
    return {r["Source_System_ID"]: r for r in records if r.get("Source_System_ID")}


def test_pre_images_are_read_together_and_all_saved_before_the_writes(tmp_path: Path, world_factory: Any,
                                                                       kit: Any) -> None:
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=with_patients(kit))
    world = world_factory(duck, load_spec(), latency_ms=LATENCY_MS)
    made = world.client.upsert("Contacts", [{"Last_Name": "Before", "Source_System_ID": kit.sid("patient", n)}
                                            for n in EXTRA])
    events = listening(world)
    ctx = world.context()
    result = load_module(ctx, "patients")
    assert result.pre_images == len(EXTRA) and result.updated == len(EXTRA)
    for outcome in made:
        image = world.ledger.pre_image(ctx.run_id, "Contacts", str(outcome.zoho_id))
        assert image is not None and image["Last_Name"] == "Before"
    assert most_at_once(events, "GET", "/crm/v8/{module}/{record_id}") > 1
    # Every pre-image read came back before the first write of the step.
    reads = [e.time + e.latency_ms / 1000 for e in events if e.path_template == "/crm/v8/{module}/{record_id}"]
    writes = [e.time for e in events if e.path_template == "/crm/v8/{module}/upsert"]
    assert max(reads) <= min(writes)
    assert all(r["Last_Name"] == f"Extra{n}" for n in EXTRA
               for r in [contacts(world)[kit.sid("patient", n)]])


def test_parents_of_announced_notes_are_listed_together(tmp_path: Path, world_factory: Any, kit: Any) -> None:
    def notes_everywhere(tables: dict[str, list[dict[str, Any]]]) -> None:
        with_patients(kit)(tables)
        for n in EXTRA:
            tables["notes"].append(kit.module_row("clinicalnote", n, {"Note_Title": f"Note {n}",
                                                                      "Note_Content": "Seen."},
                                                  {"Parent_Id": kit.contact_link(n)}))
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=notes_everywhere)
    world = world_factory(duck, load_spec(), latency_ms=LATENCY_MS)
    load_module(world.context(), "patients")
    # A killed run: it announced the notes and Zoho created them, but no answer reached the ledger.
    killed = world.context()
    LedgerWriter(world.ledger, killed.run_id, kit.OFFICE).record_intent(
        "Notes", [kit.sid("clinicalnote", n) for n in EXTRA])
    parent = {n: world.ledger.zoho_id_for(kit.OFFICE, "patient", kit.sid("patient", n)) for n in EXTRA}
    world.client.create_notes([{"Note_Title": f"Note {n}", "Note_Content": "Seen.",
                                "Parent_Id": {"module": {"api_name": "Contacts"}, "id": parent[n]}} for n in EXTRA])
    world.ledger.finish_run(killed.run_id, "failed")
    events = listening(world)
    result = load_module(world.context(), "notes")
    assert result.reconciled == len(EXTRA) and result.failed == 0
    notes = world.handle.snapshot()["modules"]["Notes"]
    assert sorted(n["Note_Title"] for n in notes if n["Note_Title"].startswith("Note ")) == sorted(
        f"Note {n}" for n in EXTRA)  # found, not created again
    found = {r.source_id: r.parent_zoho_id for r in world.ledger.crosswalk_rows(module="Notes")}
    assert all(found[kit.sid("clinicalnote", n)] == parent[n] for n in EXTRA)
    assert most_at_once(events, "GET", "/crm/v8/{module}/{record_id}/Notes") > 1


def test_subforms_are_emptied_together_and_the_plans_replaced_once(tmp_path: Path, world_factory: Any,
                                                                   kit: Any) -> None:
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=with_patients(kit, True))
    world = world_factory(duck, load_spec(), latency_ms=LATENCY_MS)
    load_module(world.context(), "responsible_parties")  # Max's Related_Party: no link left to retry
    assert load_module(world.context(), "patients").created == 2 + len(EXTRA)

    def new_plans(tables: dict[str, list[dict[str, Any]]]) -> None:
        with_patients(kit, True)(tables)
        for row in tables["contacts"]:
            if row["record"].get("Insurance_Plans"):
                row["record"]["Insurance_Plans"] = [{"Plan_Type": "Secondary", "Carrier": "MetLife"}]
                row["row_hash"] = "changed-" + row["source_id"]

    kit.build_small_world(world.duckdb_path, tmp_path / "files", tweak=new_plans)
    events = listening(world)
    result = load_module(world.context(kind="delta", batch_size=5, write_path="records"), "patients")
    assert result.updated == len(EXTRA) and result.failed == 0
    for n in EXTRA:
        plans = contacts(world)[kit.sid("patient", n)]["Insurance_Plans"]
        assert [(p["Plan_Type"], p["Carrier"]) for p in plans] == [("Secondary", "MetLife")]
    assert most_at_once(events, "PUT", "/crm/v8/{module}") > 1
