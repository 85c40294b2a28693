"""Fixtures for rollback tests: FakeZoho, an in-memory stand-in for the Zoho
records API implementing RollbackWriter, and a migrated practice built with it.

Good enough for ordering and resumability logic; the end-to-end rollback test
against the Zoho emulator lives elsewhere.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.rollback import WriteOutcome

INTEGRATION_USER = {"id": "9000000000000000001", "name": "Migration"}
HUMAN_USER = {"id": "9000000000000000002", "name": "Front Desk"}
SYSTEM = {"Modified_Time", "Modified_By", "Created_Time", "Created_By"}


class Crash(RuntimeError):
    """The process died (or the connection dropped) in the middle of a call."""


class FakeZoho:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []  # (verb, module, ids)
        self.fetched_fields: list[tuple[str, tuple[str, ...]]] = []
        self.fetch_calls = 0
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)
        self._next_id = 5_725_767_000_000_524_000
        self.crash_on_write: int | None = None  # crash on the n-th write call, after applying it
        self._writes = 0

    # -- used by the test's "migration" ------------------------------------------
    def stamp(self) -> str:
        self._clock += timedelta(seconds=1)
        return self._clock.astimezone(UTC).isoformat()

    def create(self, module: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        record = {"id": str(self._next_id), **fields, "Modified_Time": self.stamp(), "Modified_By": INTEGRATION_USER}
        self.records.setdefault(module, {})[record["id"]] = record
        return copy.deepcopy(record)

    def edit(
        self, module: str, zoho_id: str, fields: Mapping[str, Any], by: Mapping[str, str] = INTEGRATION_USER
    ) -> dict[str, Any]:
        record = self.records[module][zoho_id]
        record.update(fields)
        record["Modified_Time"] = self.stamp()
        record["Modified_By"] = dict(by)
        return copy.deepcopy(record)

    def get(self, module: str, zoho_id: str) -> dict[str, Any] | None:
        record = self.records.get(module, {}).get(zoho_id)
        return copy.deepcopy(record) if record else None

    def data(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Everything but the stamps, for comparing end states."""
        return {
            module: {zid: {k: v for k, v in rec.items() if k not in SYSTEM} for zid, rec in recs.items()}
            for module, recs in self.records.items()
        }

    # -- RollbackWriter ------------------------------------------------------------
    def fetch(self, module: str, ids: Sequence[str], fields: Sequence[str], *,
              expected: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
        assert len(ids) <= 100
        assert {"Modified_Time", "Modified_By"} <= set(fields)
        self.fetch_calls += 1  # one list call of whole records, as the fake reads them
        self.fetched_fields.append((module, tuple(fields)))
        self.calls.append(("fetch", module, tuple(ids)))
        found = self.records.get(module, {})
        return {zid: copy.deepcopy(found[zid]) for zid in ids if zid in found}

    def delete(self, module: str, ids: Sequence[str]) -> list[WriteOutcome]:
        assert 0 < len(ids) <= 100
        self.calls.append(("delete", module, tuple(ids)))
        outcomes = []
        for zid in ids:
            if self.records.get(module, {}).pop(zid, None) is None:
                outcomes.append(WriteOutcome(zid, False, "INVALID_DATA", 400))
            else:
                self._cascade(zid)
                outcomes.append(WriteOutcome(zid, True, "SUCCESS", 200))
        self._maybe_crash()
        return outcomes

    def update(self, module: str, records: Sequence[Mapping[str, Any]]) -> list[WriteOutcome]:
        assert 0 < len(records) <= 100
        self.calls.append(("update", module, tuple(str(r["id"]) for r in records)))
        outcomes = []
        for fields in records:
            zid = str(fields["id"])
            if zid not in self.records.get(module, {}):
                outcomes.append(WriteOutcome(zid, False, "INVALID_DATA", 400))
                continue
            assert not SYSTEM & set(fields), "system fields must not be sent"
            changes = {}
            for name, value in fields.items():
                if name == "id":
                    continue
                if isinstance(value, list) and any(isinstance(r, dict) and "_delete" in r for r in value):
                    gone = {r["id"] for r in value if "_delete" in r}
                    value = [r for r in self.records[module][zid].get(name, []) if r["id"] not in gone] + [
                        r
                        for r in value
                        if "_delete" not in r
                        and r.get("id") not in {x["id"] for x in self.records[module][zid].get(name, [])}
                    ]
                changes[name] = value
            after = self.edit(module, zid, changes)
            outcomes.append(WriteOutcome(zid, True, "SUCCESS", 200, after["Modified_Time"]))
        self._maybe_crash()
        return outcomes

    def delete_attachment(self, parent_module: str, parent_id: str, attachment_id: str) -> WriteOutcome:
        self.calls.append(("delete_attachment", parent_module, (parent_id, attachment_id)))
        attachment = self.records.get("Attachments", {}).get(attachment_id)
        if attachment is None or attachment["Parent_Id"]["id"] != parent_id:
            outcome = WriteOutcome(attachment_id, False, "INVALID_DATA", 400)
        else:
            del self.records["Attachments"][attachment_id]
            outcome = WriteOutcome(attachment_id, True, "SUCCESS", 200)
        self._maybe_crash()
        return outcome

    def _cascade(self, parent_id: str) -> None:
        # Zoho deletes a record's notes and attachments with it.
        for module in ("Notes", "Attachments"):
            children = self.records.get(module, {})
            for zid in [z for z, rec in children.items() if rec.get("Parent_Id", {}).get("id") == parent_id]:
                del children[zid]

    def _maybe_crash(self) -> None:
        self._writes += 1
        if self.crash_on_write is not None and self._writes == self.crash_on_write:
            raise Crash(f"connection lost after write call {self._writes}")

    def write_calls(self) -> list[tuple[str, str, tuple[str, ...]]]:
        return [call for call in self.calls if call[0] != "fetch"]


# -- a migrated practice: two runs recorded in a ledger, mirrored in FakeZoho ----------


OFFICE = "o1"
MODULE_ORDER = ["Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments"]
WITHIN = {"Contacts": ["guarantor", "patient"]}


@dataclasses.dataclass
class World:
    ledger: Ledger
    zoho: FakeZoho
    ids: dict[str, str]  # source key ("patient:3") -> zoho id
    originals: dict[str, dict[str, Any]]  # pre-existing records before any run, by source key
    after_r1: dict[str, dict[str, Any]]  # pre-existing records after run R1, by source key


def _create(
    world: World,
    run: str,
    source_object: str,
    source_id: str,
    module: str,
    fields: dict[str, Any],
    parent: tuple[str, str] | None = None,
) -> str:
    record = world.zoho.create(module, fields)
    world.ledger.record_write(
        run,
        OFFICE,
        source_object,
        source_id,
        module,
        record["id"],
        f"h-{run}-{source_id}",
        True,
        record["Modified_Time"],
        parent_module=parent[0] if parent else None,
        parent_zoho_id=parent[1] if parent else None,
    )
    world.ids[f"{source_object}:{source_id}"] = record["id"]
    return record["id"]


def _update(world: World, run: str, source_object: str, source_id: str, module: str, fields: dict[str, Any]) -> None:
    zid = world.ids[f"{source_object}:{source_id}"]
    world.ledger.save_pre_image(run, module, zid, world.zoho.get(module, zid) or {})
    after = world.zoho.edit(module, zid, fields)
    world.ledger.record_write(
        run, OFFICE, source_object, source_id, module, zid, f"h-{run}-{source_id}", False, after["Modified_Time"]
    )


def build_world(home: Path) -> World:
    zoho = FakeZoho()
    world = World(Ledger.for_home(home), zoho, {}, {}, {})
    for i in range(12):  # contacts the practice already had in Zoho
        record = zoho.create(
            "Contacts",
            {
                "Last_Name": f"Existing{i}",
                "Phone": f"+1555000{i:04d}",
                "Insurance": [{"id": f"row-{i}", "Carrier": "Old"}],
            },
        )
        zoho.records["Contacts"][record["id"]]["Modified_By"] = HUMAN_USER
        world.ids[f"existing:{i}"] = record["id"]
        world.originals[f"existing:{i}"] = zoho.get("Contacts", record["id"]) or {}

    r1 = world.ledger.start_run("full", OFFICE, run_id="R1")
    for g in range(2):
        _create(world, r1, "guarantor", str(g), "Contacts", {"Last_Name": f"Guarantor{g}"})
    for p in range(150):
        fields: dict[str, Any] = {"Last_Name": f"Patient{p}"}
        if p < 10:
            fields["Related_Party"] = {"id": world.ids[f"guarantor:{p % 2}"]}
        _create(world, r1, "patient", str(p), "Contacts", fields)
    for e in range(30):
        _create(
            world,
            r1,
            "appt",
            str(e),
            "Events",
            {"Event_Title": "Cleaning", "What_Id": {"id": world.ids[f"patient:{e}"]}},
        )
    for n in range(20):
        _create(
            world,
            r1,
            "clinical_note",
            str(n),
            "Notes",
            {"Note_Content": "x", "Parent_Id": {"id": world.ids[f"patient:{n}"]}},
        )
    for a in range(3):
        parent = world.ids[f"patient:{a}"]
        _create(
            world,
            r1,
            "image",
            str(a),
            "Attachments",
            {"File_Name": f"{a}.jpg", "Parent_Id": {"id": parent}},
            parent=("Contacts", parent),
        )
    for i in range(12):
        _update(
            world,
            r1,
            "existing",
            str(i),
            "Contacts",
            {
                "Phone": "+15559999999",
                "Insurance": [{"id": f"row-{i}", "Carrier": "Old"}, {"id": f"new-{i}", "Carrier": "Delta Dental"}],
            },
        )
        world.after_r1[f"existing:{i}"] = zoho.get("Contacts", world.ids[f"existing:{i}"]) or {}
    world.ledger.finish_run(r1, "succeeded")

    r2 = world.ledger.start_run("delta", OFFICE, run_id="R2")
    _update(world, r2, "patient", "1", "Contacts", {"Last_Name": "Patient1-renamed"})
    _update(world, r2, "existing", "1", "Contacts", {"Phone": "+15558888888"})
    for t in range(5):
        _create(
            world, r2, "recall", str(t), "Tasks", {"Subject": "Recall", "Who_Id": {"id": world.ids[f"patient:{t}"]}}
        )
    world.ledger.finish_run(r2, "succeeded")
    zoho.calls.clear()
    return world


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[[str], World]]:
    opened: list[World] = []

    def make(name: str = "w") -> World:
        world = build_world(tmp_path / name)
        opened.append(world)
        return world

    yield make
    for world in opened:
        world.ledger.close()
