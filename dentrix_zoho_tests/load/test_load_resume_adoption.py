"""A kill between Zoho's answer and the ledger write leaves records in Zoho that the ledger lacks.

The invariant these tests hold the loader to: once a run has resumed, every record Zoho holds
with one of our Source_System_IDs is in the ledger's crosswalk (else rollback and the audit trail
miss it), whether or not that run sends the row again. The kill is built deterministically: the
records are put into Zoho as the lost batch left them, or the ledger commit of the k-th batch of a
sliding window raises while the other batches of the window are still in flight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.ledger import QuarantineRow
from dentrix_zoho.load import load_module, upserts, zoho_reads
from dentrix_zoho.load.context import LOAD_STEPS
from dentrix_zoho.load.shaped import open_duckdb, read_step_rows

KEYED = ("Contacts", "Leads", "Events", "Tasks", "Calls")


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs in this process's load."""


def missing_from_ledger(world: Any) -> dict[str, list[str]]:
    """Per keyed module, the Source_System_IDs Zoho holds on records the ledger has no live row for."""
    snapshot = world.handle.snapshot()["modules"]
    out: dict[str, list[str]] = {}
    for module in KEYED:
        live = {r.zoho_id for r in world.ledger.crosswalk_rows(module=module, deleted=False)}
        gaps = sorted(str(r["Source_System_ID"]) for r in snapshot.get(module, [])
                      if r.get("Source_System_ID") and str(r["id"]) not in live)
        if gaps:
            out[module] = gaps
    return out


def zoho_by_sid(world: Any, module: str) -> dict[str, dict[str, Any]]:
    records = world.handle.snapshot()["modules"].get(module, [])
    keys = [r["Source_System_ID"] for r in records if r.get("Source_System_ID")]
    assert len(keys) == len(set(keys)), f"{module}: a Source_System_ID twice"
    return {r["Source_System_ID"]: r for r in records if r.get("Source_System_ID")}


def shaped_events(world: Any, kit: Any) -> dict[str, Any]:
    with open_duckdb(world.duckdb_path) as con:
        return {r.source_id: r for r in read_step_rows(con, LOAD_STEPS["events"], kit.OFFICE)}


def lost_event(world: Any, kit: Any, run_id: str, appt: int, patient: int) -> str:
    """Put an event into Zoho as an upsert whose answer never reached the ledger leaves it."""
    sid = kit.sid("appt", appt)
    row = shaped_events(world, kit)[sid]
    contact = zoho_by_sid(world, "Contacts")[kit.sid("patient", patient)]
    [made] = world.client.upsert("Events", [{**row.record, "Who_Id": {"id": contact["id"]},
                                             "Migration_Run_ID": run_id}])
    assert made.ok and made.action == "insert"
    return str(made.zoho_id)


@pytest.mark.parametrize("pre_scan", ["coql_lookup", "office_scan"])
def test_records_of_a_lost_batch_are_adopted_as_ours(small_world: Any, kit: Any, pre_scan: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if pre_scan == "office_scan":
        monkeypatch.setattr(zoho_reads, "COQL_LOOKUP_MAX", 0)
    crashed = small_world.context()
    for step in ("responsible_parties", "patients"):
        load_module(crashed, step)
    # appt:10's batch answered and was recorded; appt:11's answered and was not (the kill).
    load_module(crashed, "events", source_ids={kit.sid("appt", 10)})
    lost = lost_event(small_world, kit, crashed.run_id, 11, 3)
    assert missing_from_ledger(small_world) == {"Events": [kit.sid("appt", 11)]}

    resumed = small_world.context(run_id=crashed.run_id)
    result = load_module(resumed, "events")
    assert result.sent == 1 and result.ok == 1 and result.pre_images == 0 and result.reconciled == 1
    assert missing_from_ledger(small_world) == {}
    adopted = [(e.source_id, e.code) for e in small_world.ledger.audit_entries(crashed.run_id) if e.operation == "adopt"]
    assert adopted == [(kit.sid("appt", 11), "INTERRUPTED")]
    row = small_world.ledger.lookup(kit.OFFICE, "appt", kit.sid("appt", 11))
    assert row is not None and row.zoho_id == lost and row.created_by_run == crashed.run_id  # rollback deletes it
    assert len(zoho_by_sid(small_world, "Events")) == 2


def test_a_found_record_is_adopted_even_when_its_row_is_held_back(small_world: Any, kit: Any,
                                                                  tmp_path: Path) -> None:
    crashed = small_world.context()
    for step in ("responsible_parties", "patients"):
        load_module(crashed, step)
    lost = lost_event(small_world, kit, crashed.run_id, 11, 3)

    # Before the resume, patient 3 left the practice (deleted in Dentrix, gone from the shaped rows):
    # appt:11 cannot be sent again (its Who_Id has no target), yet Zoho still holds what the killed run wrote.
    def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["contacts"] = [r for r in tables["contacts"] if r["source_id"] != kit.sid("patient", 3)]

    kit.build_small_world(small_world.duckdb_path, tmp_path / "files", tweak=tweak)
    gone = small_world.ledger.zoho_id_for(kit.OFFICE, "patient", kit.sid("patient", 3))
    assert gone is not None and small_world.client.delete("Contacts", [gone])[0].ok  # as the cutover deletes it
    small_world.ledger.mark_deleted(crashed.run_id, "Contacts", [gone])
    resumed = small_world.context(run_id=crashed.run_id)
    result = load_module(resumed, "events")
    assert result.sent == 1 and result.quarantined == 1  # appt:10 goes; appt:11 is held
    held = {q.source_id: q.reason.split(":")[0] for q in small_world.ledger.quarantine_rows(status="open")}
    assert held == {kit.sid("appt", 11): "parent_not_loaded"}
    row = small_world.ledger.lookup(kit.OFFICE, "appt", kit.sid("appt", 11))
    assert row is not None and not row.deleted and row.zoho_id == lost and row.created_by_run == crashed.run_id
    assert missing_from_ledger(small_world) == {}


def test_a_found_record_is_adopted_even_when_zoho_refused_this_content_since(small_world: Any, kit: Any) -> None:
    crashed = small_world.context()
    for step in ("responsible_parties", "patients"):
        load_module(crashed, step)
    lost = lost_event(small_world, kit, crashed.run_id, 11, 3)
    # A later attempt at the same content was refused (say the contact was merged away in Zoho for a
    # while): the row is not sent again until it changes, but the record the lost batch made is there.
    row_hash = shaped_events(small_world, kit)[kit.sid("appt", 11)].row_hash
    small_world.ledger.quarantine([QuarantineRow(
        crashed.run_id, kit.OFFICE, "appt", kit.sid("appt", 11), "lookup",
        f"zoho_rejected INVALID_DATA {upserts.hash_tag(row_hash)}", field="Who_Id")])

    resumed = small_world.context(run_id=crashed.run_id)
    result = load_module(resumed, "events")
    assert result.sent == 1 and result.quarantined == 1  # only appt:10 goes
    row = small_world.ledger.lookup(kit.OFFICE, "appt", kit.sid("appt", 11))
    assert row is not None and row.zoho_id == lost and row.created_by_run == crashed.run_id
    assert missing_from_ledger(small_world) == {}
    # Adopted, not loaded: the row still counts as held back, and goes again once its content changes.
    assert row.row_hash is None


def _many_events(kit: Any, n: int) -> Any:
    def tweak(tables: dict[str, list[dict[str, Any]]]) -> None:
        tables["events"] = [
            kit.module_row("appt", 100 + i, {"Event_Title": f"Visit {i}", "Start_DateTime": "2026-11-20T09:30:00-06:00",
                                             "End_DateTime": "2026-11-20T10:00:00-06:00"},
                           {"Who_Id": kit.contact_link(2 + i % 2), "Owner": {"provider_id": "HYG1"}})
            for i in range(n)
        ]
    return tweak


@pytest.mark.parametrize("kill_at", [1, 2, 4, 6])
def test_killed_in_a_sliding_window_then_resumed_leaves_nothing_outside_the_ledger(
        small_world: Any, kit: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_at: int) -> None:
    """Six batches of two, three in flight: the ledger commit of the k-th batch to come back never
    happens, nor anything after it, while the batches still in flight land in Zoho."""
    kit.build_small_world(small_world.duckdb_path, tmp_path / "files", tweak=_many_events(kit, 12))
    crashed = small_world.context(batch_size=2, parallel_batches=3)
    for step in ("responsible_parties", "patients"):
        load_module(crashed, step)
    real_commit = upserts.commit
    commits = {"n": 0}

    def dying_commit(ctx: Any, writer: Any, batch: Any, result: Any, step: Any) -> None:
        if step.module == "Events":
            commits["n"] += 1
            if commits["n"] == kill_at:
                raise Killed
        real_commit(ctx, writer, batch, result, step)

    monkeypatch.setattr(upserts, "commit", dying_commit)
    with pytest.raises(Killed):
        load_module(crashed, "events")
    monkeypatch.setattr(upserts, "commit", real_commit)
    in_zoho = zoho_by_sid(small_world, "Events")
    assert len(missing_from_ledger(small_world).get("Events", [])) >= 2  # at least the batch that died

    resumed = small_world.context(run_id=crashed.run_id, batch_size=2, parallel_batches=3)
    result = load_module(resumed, "events")
    assert result.failed == 0 and result.quarantined == 0
    assert missing_from_ledger(small_world) == {}
    after = zoho_by_sid(small_world, "Events")
    assert len(after) == 12
    for sid, record in in_zoho.items():  # the lost batches were adopted, not made again
        assert after[sid]["id"] == record["id"]
        row = small_world.ledger.lookup(kit.OFFICE, "appt", sid)
        assert row is not None and row.created_by_run == crashed.run_id
