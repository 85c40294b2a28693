"""The loader on a hand-built shaped world, against the emulator over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.ledger import AuditEntry
from dentrix_zoho.load import LoadOverBudget, estimate_load, load_all, load_module
from dentrix_zoho.load.ledger_io import INTENT_OPERATION
from dentrix_zoho.mapping import load_spec

CREDITS_FOR_A_FEW_WRITES = 4  # after schema set-up and owners (measured): the Contacts steps, not the rest


def by_sid(handle: Any, module: str) -> dict[str, dict[str, Any]]:
    return {r["Source_System_ID"]: r for r in handle.snapshot()["modules"].get(module, []) if r.get("Source_System_ID")}


def test_load_links_owners_and_holds_back_missing_files(small_world: Any, kit: Any) -> None:
    ctx = small_world.context()
    results = {r.step: r for r in load_all(ctx)}
    contacts = by_sid(small_world.handle, "Contacts")
    assert set(contacts) == {kit.sid("patient", n) for n in (1, 2, 3)}
    gail, max_ = contacts[kit.sid("patient", 1)], contacts[kit.sid("patient", 2)]
    assert max_["Related_Party"]["id"] == gail["id"]
    assert all(c["Migration_Run_ID"] == ctx.run_id for c in contacts.values())
    users = {u["email"].lower(): u["id"] for u in small_world.client.users()}
    assert gail["Owner"]["id"] == users["dds1@wasatchdental.com"]
    assert max_["Owner"]["id"] == users["dds2@wasatchdental.com"]  # e-mail matched case-insensitively
    # DDS3 has no e-mail: the configured default owner takes the record
    assert contacts[kit.sid("patient", 3)]["Owner"]["id"] == users["office@wasatchdental.com"]

    events = by_sid(small_world.handle, "Events")
    assert events[kit.sid("appt", 10)]["Who_Id"]["id"] == max_["id"]
    notes = small_world.handle.snapshot()["modules"]["Notes"]
    assert sorted((n["Parent_Id"]["id"], n["Note_Title"]) for n in notes) == sorted(
        [(max_["id"], "Clinical note 1"), (contacts[kit.sid("patient", 3)]["id"], "Clinical note 2")])
    files = small_world.handle.snapshot()["modules"]["Attachments"]
    assert [(f["File_Name"], f["Parent_Id"]["id"]) for f in files] == [("xray1.jpg", max_["id"])]

    assert results["attachments"].ok == 1 and results["attachments"].quarantined == 2
    held = {(q.source_id, q.field, q.reason.split(":")[0]) for q in small_world.ledger.quarantine_rows()}
    assert held == {(kit.sid("eattach", 31), "file", "file_missing"), (kit.sid("eattach", 32), "file", "file_over_limit")}
    # every write is in the crosswalk as created by this run, and in the hash-chained audit log
    rows = list(small_world.ledger.crosswalk_rows(created_by_run=ctx.run_id))
    assert len(rows) == 3 + 2 + 2 + 1
    assert small_world.ledger.verify_chain().ok
    ops = {e.operation for e in small_world.ledger.audit_entries(ctx.run_id)}
    assert {"upsert", "create_note", "upload_attachment", INTENT_OPERATION} <= ops


def test_second_run_sends_nothing_and_a_changed_row_is_sent_alone(small_world: Any, kit: Any, tmp_path: Path) -> None:
    load_all(small_world.context())
    before = small_world.handle.snapshot()
    again = load_all(small_world.context(kind="delta"))
    assert sum(r.sent for r in again) == 0
    assert small_world.handle.snapshot() == before

    def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"][2] = kit.module_row("patient", 3, {"Last_Name": "Solo", "First_Name": "Samuel"},
                                               {"Owner": {"provider_id": "DDS3"}}, tier=1)

    kit.build_small_world(small_world.duckdb_path, tmp_path / "files", tweak=tweak)
    delta = {r.step: r for r in load_all(small_world.context(kind="delta"))}
    assert delta["patients"].sent == 1 and delta["patients"].updated == 1
    assert sum(r.sent for r in delta.values()) == 1
    assert by_sid(small_world.handle, "Contacts")[kit.sid("patient", 3)]["First_Name"] == "Samuel"


def test_pre_existing_record_gets_a_pre_image_and_is_not_ours(small_world: Any, kit: Any, tmp_path: Path) -> None:
    sid = kit.sid("patient", 3)
    [made] = small_world.client.upsert("Contacts", [{"Last_Name": "Before", "Source_System_ID": sid}])
    ctx = small_world.context()
    result = load_module(ctx, "patients")
    assert result.pre_images == 1 and result.updated == 1
    image = small_world.ledger.pre_image(ctx.run_id, "Contacts", made.zoho_id)
    assert image is not None and image["Last_Name"] == "Before"
    row = small_world.ledger.lookup(kit.OFFICE, "patient", sid)
    assert row is not None and row.zoho_id == made.zoho_id and row.created_by_run is None

    def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"][2] = kit.module_row("patient", 3, {"Last_Name": "Solo", "First_Name": "Samuel"},
                                               {"Owner": {"provider_id": "DDS3"}}, tier=1)

    kit.build_small_world(small_world.duckdb_path, tmp_path / "files", tweak=tweak)
    later = small_world.context(kind="delta")
    # Patient 3 is still not ours: this run keeps its own pre-image; patient 2 (the first run made it, its
    # Related_Party link waiting for patient 1) is sent again, and a later run keeps a pre-image of that too.
    assert load_module(later, "patients").pre_images == 2
    image = small_world.ledger.pre_image(later.run_id, "Contacts", made.zoho_id)
    assert image is not None and (image["Last_Name"], image["First_Name"]) == ("Solo", "Sam")


def test_record_left_by_an_interrupted_run_counts_as_created_without_pre_image(small_world: Any, kit: Any) -> None:
    crashed = small_world.context()
    sid = kit.sid("patient", 3)
    # What a kill between the upsert and the ledger write leaves: the record, stamped with our run.
    [made] = small_world.client.upsert("Contacts", [{"Last_Name": "Solo", "Source_System_ID": sid,
                                                     "Migration_Run_ID": crashed.run_id}])
    resumed = small_world.context(run_id=crashed.run_id)
    result = load_module(resumed, "patients")
    assert result.pre_images == 0
    row = small_world.ledger.lookup(kit.OFFICE, "patient", sid)
    assert row is not None and row.zoho_id == made.zoho_id and row.created_by_run == crashed.run_id


def test_interrupted_note_create_is_reconciled_not_duplicated(small_world: Any, kit: Any) -> None:
    ctx = small_world.context()
    for step in ("responsible_parties", "patients"):
        load_module(ctx, step)
    parent = small_world.ledger.zoho_id_for(kit.OFFICE, "patient", kit.sid("patient", 2))
    # The note reached Zoho, then the process died before the ledger heard of it.
    small_world.ledger.append_audit(AuditEntry(ctx.run_id, INTENT_OPERATION, "Notes", "uncertain",
                                               source_id=kit.sid("clinicalnote", 20)))
    [made] = small_world.client.create_notes([{"Note_Title": "Clinical note 1", "Note_Content": "Perio charting done.",
                                               "Parent_Id": {"module": {"api_name": "Contacts"}, "id": parent}}])
    assert made.ok
    result = load_module(ctx, "notes")
    assert result.reconciled == 1 and result.sent == 1  # only the other note was sent
    notes = small_world.handle.snapshot()["modules"]["Notes"]
    assert sorted(n["Note_Title"] for n in notes) == ["Clinical note 1", "Clinical note 2"]


def test_rejected_record_is_quarantined_with_code_and_field_and_not_resent(
    tmp_path: Path, world_factory: Any, kit: Any
) -> None:
    def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"][2] = kit.module_row("patient", 3, {"Last_Name": "Solo", "Date_of_Birth": "not a date"},
                                               {}, tier=1)

    duck = kit.build_small_world(tmp_path / "w.duckdb", tmp_path / "files", tweak=tweak)
    world = world_factory(duck, load_spec())
    first = {r.step: r for r in load_all(world.context())}
    assert first["patients"].quarantined == 1 and first["patients"].ok == 1
    [q] = [q for q in world.ledger.quarantine_rows() if q.source_object == "patient"]
    assert (q.source_id, q.field) == (kit.sid("patient", 3), "Date_of_Birth")
    assert q.reason.startswith("zoho_rejected INVALID_DATA") and q.value_class != "record"
    assert "not a date" not in q.reason
    # its children cannot go without it, and say why
    children = {(x.source_object, x.reason.split(":")[0]) for x in world.ledger.quarantine_rows()
                if x.source_object in ("appt", "clinicalnote")}
    assert children == {("appt", "parent_not_loaded"), ("clinicalnote", "parent_not_loaded")}
    second = load_all(world.context(kind="delta"))
    assert sum(r.sent for r in second) == 0
    assert len([q for q in world.ledger.quarantine_rows() if q.source_object == "patient"]) == 1


def test_estimate_counts_changed_rows_and_refuses_over_budget(tmp_path: Path, world_factory: Any, kit: Any) -> None:
    duck = kit.build_small_world(tmp_path / "w.duckdb", tmp_path / "files")
    world = world_factory(duck, load_spec(), client={"daily_credits_override": 60})
    ctx = world.context()
    estimate = estimate_load(ctx)
    by_step = {s.step: s for s in estimate.steps}
    assert by_step["patients"].records == 2 and by_step["attachments"].records == 1
    assert estimate.credits == sum(s.credits for s in estimate.steps) > 0
    spent = world.client.budget.spent
    world.client.budget.spend(60 - spent - estimate.credits + 1)  # leave one credit too few
    with pytest.raises(LoadOverBudget) as refused:
        load_all(ctx)
    assert refused.value.needed == estimate.credits and refused.value.remaining is not None
    assert str(estimate.credits) in str(refused.value)
    assert not world.handle.snapshot()["modules"].get("Contacts")


def test_dry_run_sends_nothing_and_writes_nothing(small_world: Any) -> None:
    results = load_all(small_world.context(dry_run=True))
    assert sum(r.sent for r in results) == 3 + 2 + 2 + 1
    assert not small_world.handle.snapshot()["modules"]
    assert not list(small_world.ledger.crosswalk_rows())


def test_sample_option_limits_the_load(small_world: Any, kit: Any) -> None:
    chosen = frozenset({kit.sid("patient", 3), kit.sid("patient", 1)})
    results = {r.step: r for r in load_all(small_world.context(sample_source_ids=chosen))}
    assert results["patients"].ok == 1 and results["responsible_parties"].ok == 1
    assert results["events"].ok == 1 and results["notes"].ok == 1  # the sampled patient's children
    # patient 2 links to the sampled guarantor as its Related_Party: that does not bring it in
    assert set(by_sid(small_world.handle, "Contacts")) == {kit.sid("patient", 3), kit.sid("patient", 1)}


def test_file_deleted_after_shaping_is_held_back(small_world: Any, kit: Any, tmp_path: Path) -> None:
    (tmp_path / "files" / "xray1.jpg").unlink()
    load_all(small_world.context())
    assert not small_world.handle.snapshot()["modules"].get("Attachments")
    reasons = {q.source_id: q.reason for q in small_world.ledger.quarantine_rows()}
    assert reasons[kit.sid("eattach", 30)].startswith("file_missing")


def test_upsert_key_and_run_stamp_follow_the_api_names_zoho_assigned(
    tmp_path: Path, emulator_factory: Any, kit: Any
) -> None:
    handle = emulator_factory()
    client = kit.client_for(handle)
    client.ensure_schema("Events", [{"field_label": "Source-System-ID", "data_type": "text", "length": 20}])
    duck = kit.build_small_world(tmp_path / "w.duckdb", tmp_path / "files")
    world = kit.World(handle, duck, tmp_path / "ledger.sqlite", load_spec())
    key = world.schema.source_id_field("Events")
    assert key != "Source_System_ID"
    load_all(world.context())
    load_all(world.context(kind="delta"))
    events = handle.snapshot()["modules"]["Events"]
    assert sorted(e[key] for e in events) == [kit.sid("appt", 10), kit.sid("appt", 11)]
    assert all(not e.get("Source_System_ID") for e in events)


def test_an_update_replaces_subform_rows_instead_of_appending(small_world: Any, kit: Any, tmp_path: Path) -> None:
    load_all(small_world.context())

    def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"][0] = kit.module_row(
            "patient", 1, {"Last_Name": "Guarantor", "First_Name": "Gayle", "Balance_Due": 120.5,
                           "Insurance_Plans": [{"Plan_Type": "Primary", "Carrier": "Delta Dental"},
                                               {"Plan_Type": "Secondary", "Carrier": "MetLife"}]},
            {"Owner": {"provider_id": "DDS1"}}, tier=0)

    kit.build_small_world(small_world.duckdb_path, tmp_path / "files", tweak=tweak)
    result = load_module(small_world.context(kind="delta"), "responsible_parties")
    assert result.updated == 1
    gail = by_sid(small_world.handle, "Contacts")[kit.sid("patient", 1)]
    assert [(p["Plan_Type"], p["Carrier"]) for p in gail["Insurance_Plans"]] == [
        ("Primary", "Delta Dental"), ("Secondary", "MetLife")]


def test_note_create_answered_with_500_after_the_write_is_found_not_resent(small_world: Any, kit: Any) -> None:
    ctx = small_world.context()
    for step in ("responsible_parties", "patients"):
        load_module(ctx, step)
    # seed 32: the first call (the notes create) is applied and then answered 500
    small_world.handle.set_faults("500=0.3", seed=32)
    result = load_module(ctx, "notes")
    injected = small_world.handle.usage()["faults_injected"]
    small_world.handle.set_faults(None)
    assert injected.get("500:after", 0) >= 1, injected
    assert result.reconciled == 2 and result.ok == 2 and result.failed == 0
    notes = small_world.handle.snapshot()["modules"]["Notes"]
    assert sorted(n["Note_Title"] for n in notes) == ["Clinical note 1", "Clinical note 2"]


def test_accounting_fails_while_shaped_rows_are_neither_loaded_nor_quarantined(small_world: Any) -> None:
    from dentrix_zoho.load import reconcile_accounting

    load_module(small_world.context(), "Contacts")
    partial = reconcile_accounting(small_world.duckdb_path, small_world.ledger, "office-1")
    assert not partial.passed
    assert partial.counts["modules"]["Events"] == {"shaped": 2, "loaded": 0, "quarantined_at_load": 0, "pending": 2,
                                                   "quarantined_at_shape": 0}
    load_all(small_world.context())
    done = reconcile_accounting(small_world.duckdb_path, small_world.ledger, "office-1")
    assert done.passed and done.counts["modules"]["Attachments"]["quarantined_at_load"] == 2


def test_credits_running_out_mid_load_stop_it_resumably(tmp_path: Path, world_factory: Any, kit: Any) -> None:
    from dentrix_zoho.zoho import CreditsExhausted

    duck = kit.build_small_world(tmp_path / "w.duckdb", tmp_path / "files")
    setup_cost = world_factory(duck, load_spec()).handle.usage()["credits"]["used_total"]
    world = world_factory(duck, load_spec(), credits=setup_cost + CREDITS_FOR_A_FEW_WRITES)
    ctx = world.context()
    with pytest.raises(LoadOverBudget):  # Zoho's X-API-CREDITS-REMAINING told the client what is left
        load_all(ctx)
    assert not world.handle.snapshot()["modules"]
    with pytest.raises(CreditsExhausted):  # sent anyway: it stops where the credits end
        load_all(ctx, check_budget=False)
    written = {r.source_id for r in world.ledger.crosswalk_rows()}
    assert written  # what went before the stop is in the ledger
    world.handle.advance_clock(24 * 3600 + 1)  # a new day of credits; the resume is a new process
    world.client = kit.client_for(world.handle)
    load_all(world.context(run_id=ctx.run_id))
    snapshot = world.handle.snapshot()["modules"]
    assert sorted(r["Source_System_ID"] for r in snapshot["Contacts"]) == [kit.sid("patient", n) for n in (1, 2, 3)]
    assert len(snapshot["Notes"]) == 2 and len(snapshot["Attachments"]) == 1


def test_a_link_to_a_held_back_record_is_set_once_that_record_loads(
    tmp_path: Path, world_factory: Any, kit: Any
) -> None:
    gail = {"Last_Name": "Guarantor", "First_Name": "Gail"}

    def broken(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"][0] = kit.module_row("patient", 1, {**gail, "Date_of_Birth": "31/02/1970"}, {}, tier=0)

    duck = kit.build_small_world(tmp_path / "w.duckdb", tmp_path / "files", tweak=broken)
    world = world_factory(duck, load_spec())
    load_all(world.context())
    max_ = by_sid(world.handle, "Contacts")[kit.sid("patient", 2)]
    assert kit.sid("patient", 1) not in by_sid(world.handle, "Contacts") and not max_.get("Related_Party")
    # nothing changes while the guarantor stays held back
    assert sum(r.sent for r in load_all(world.context(kind="delta"))) == 0

    def fixed(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"][0] = kit.module_row("patient", 1, gail, {}, tier=0)

    kit.build_small_world(duck, tmp_path / "files", tweak=fixed)
    # one context per step, as the Dagster assets run them
    sent = {step: load_module(world.context(run_id="delta-2", kind="delta"), step).sent
            for step in ("responsible_parties", "patients")}
    assert sent == {"responsible_parties": 1, "patients": 1}
    contacts = by_sid(world.handle, "Contacts")
    assert contacts[kit.sid("patient", 2)]["Related_Party"]["id"] == contacts[kit.sid("patient", 1)]["id"]
    assert not [q for q in world.ledger.quarantine_rows(status="open") if q.source_object == "patient"]
    assert sum(r.sent for r in load_all(world.context(kind="delta"))) == 0


def test_a_changed_file_replaces_the_old_attachment(small_world: Any, kit: Any, tmp_path: Path) -> None:
    load_all(small_world.context())
    [old] = small_world.handle.snapshot()["modules"]["Attachments"]
    files = tmp_path / "files"

    def newer_scan(tables: dict[str, list[dict[str, Any]]]) -> None:
        (files / "xray1.jpg").write_bytes(b"\xff\xd8" + b"y" * 3000)
        tables["attachments"][0] = kit.module_row(
            "eattach", 30, {"File_Name": "xray1.jpg", "Size": "3002"}, {"Parent_Id": kit.contact_link(2)},
            file_path=str(files / "xray1.jpg"), size_bytes=3002, file_status="ok", parent=kit.contact_link(2))

    kit.build_small_world(small_world.duckdb_path, files, tweak=newer_scan)
    result = load_module(small_world.context(kind="delta"), "attachments")
    assert result.ok == 1
    [new] = small_world.handle.snapshot()["modules"]["Attachments"]
    assert new["id"] != old["id"] and new["Size"] == "3002"
    row = small_world.ledger.lookup(kit.OFFICE, "eattach", kit.sid("eattach", 30))
    assert row is not None and row.zoho_id == new["id"] and not row.deleted
    assert sum(r.sent for r in load_all(small_world.context(kind="delta"))) == 0
