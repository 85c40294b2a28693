"""Bulk Write refused (403 NO_PERMISSION: the integration user's profile may not use it): the rows it
would have carried go by the record API in the same step, none lost, none written twice, and Zoho ends
as a record-API load leaves it (issue 12, "Bad input")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.load import load_all
from dentrix_zoho.load.bulk_write import JOB_OPERATION, REFUSED_OPERATION
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.zoho import ZohoError, bulk

CONTACT_STEPS = ("responsible_parties", "patients")
FAST_POLL = {"bulk_poll_initial": 0.05, "bulk_poll_max": 0.2}
KNOB = "ZOHO_EMULATOR_BULK_JOBS"


def _with_rows_bulk_can_carry(tables: dict[str, list[dict[str, Any]]]) -> None:
    from dentrix_zoho_tests.load.conftest import module_row

    tables["contacts"] += [
        module_row("patient", 4, {"First_Name": "No", "Date_of_Birth": "1990-02-03"},
                   {"Owner": {"provider_id": "DDS1"}}, tier=1),  # no Last_Name: Zoho refuses the row
        module_row("patient", 5, {"Last_Name": "Good", "Date_of_Birth": "1985-07-09", "Do_Not_Call": True},
                   {"Owner": {"provider_id": "DDS2"}}, tier=1),
    ]


def _keyed(world: Any) -> Counter[str]:
    return Counter(str(r.get("Source_System_ID")) for r in world.handle.snapshot()["modules"].get("Contacts", []))


def test_the_emulator_refuses_a_job_with_403_before_spending(world_factory: Any, kit: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KNOB, "refuse")
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files")
    world = world_factory(duck, load_spec(), client=FAST_POLL)
    file = bulk.build_files("Contacts", [{"Source_System_ID": kit.sid("patient", 9), "Last_Name": "Nine"}])[0]
    file_id = world.client.bulk_upload("Contacts", file)  # the upload is still taken
    spent = world.handle.usage()["credits"]["used_total"]
    with pytest.raises(ZohoError) as refused:
        world.client.bulk_create_job("Contacts", file_id, 1, "upsert", "Source_System_ID")
    assert (refused.value.status, refused.value.code) == (403, "NO_PERMISSION")
    assert world.handle.usage()["credits"]["used_total"] == spent  # refused before the job's 500 credits
    assert not world.handle.snapshot()["modules"].get("Contacts")


def test_a_refused_bulk_write_falls_back_to_the_record_api(world_factory: Any, kit: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files", tweak=_with_rows_bulk_can_carry)
    monkeypatch.delenv(KNOB, raising=False)
    by_records = world_factory(duck, load_spec())
    want = {r.step: r for r in load_all(by_records.context(write_path="records"), CONTACT_STEPS)}
    monkeypatch.setenv(KNOB, "refuse")  # read by the emulator started next
    refused = world_factory(duck, load_spec(), client=FAST_POLL)
    got = {r.step: r for r in load_all(refused.context(write_path="bulk"), CONTACT_STEPS)}

    for step in CONTACT_STEPS:
        assert (got[step].ok, got[step].created, got[step].quarantined, got[step].failed) == (
            want[step].ok, want[step].created, want[step].quarantined, want[step].failed), step
    assert got["patients"].failed == 0 and got["patients"].quarantined == 1
    keyed = _keyed(refused)
    assert set(keyed) == {kit.sid("patient", n) for n in (1, 2, 3, 5)} and max(keyed.values()) == 1
    assert kit.canonical(refused.handle.snapshot())["Contacts"] == kit.canonical(by_records.handle.snapshot())["Contacts"]
    assert not [e for e in refused.ledger.audit_entries() if e.operation == JOB_OPERATION]  # no job was made
    # The refusal is on record, once: the second step of the run did not ask Zoho again.
    refusals = [e for e in refused.ledger.audit_entries() if e.operation == REFUSED_OPERATION]
    assert [(e.module, e.code) for e in refusals] == [("Contacts", "NO_PERMISSION")]
    assert got["responsible_parties"].bulk_fallback + got["patients"].bulk_fallback > 0
    rows = list(refused.ledger.crosswalk_rows(module="Contacts"))
    assert len(rows) == 4 and all(r.created_by_run for r in rows)
    # nothing left to send, nothing sent twice
    assert sum(r.sent for r in load_all(refused.context(write_path="bulk"), CONTACT_STEPS)) == 0
    assert max(_keyed(refused).values()) == 1
