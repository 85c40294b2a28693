"""Two hand-built offices sharing one patient, loaded into the Zoho emulator through the real loader.

Each office has a shared patient (north's patid 1 and south's patid 7 are one person, same name, birth
date and mobile), a patient of its own, an appointment of each, a note and a file under the shared
patient. ``Org`` keeps one emulator, one ledger and a client per office, and loads with
``load_all`` exactly as the Dagster steps do, so the cross-office split runs inside the upsert step.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load import LoadContext, LoadOptions, ModuleLoadResult, load_all, resolve_owners, setup_schema
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.mapping.outputs import ensure_tables, replace_office_rows, row_hash
from dentrix_zoho.org import CrossOfficePolicy, run_cross_office_audit
from dentrix_zoho.rollback.service import make_plan, new_rollback_run_id, run_rollback
from dentrix_zoho_tests.org.conftest import D, person, stage_patients

MERGE = CrossOfficePolicy.of("merge")
NORTH, SOUTH = "north", "south"
SHARED = {NORTH: f"{NORTH}:patient:1", SOUTH: f"{SOUTH}:patient:7"}
OWN = {NORTH: f"{NORTH}:patient:2", SOUTH: f"{SOUTH}:patient:8"}


def _load_kit() -> Any:
    # dentrix_zoho_tests/load/conftest.py: the emulator's users, the provider map, a client for a handle.
    spec = importlib.util.spec_from_file_location("merge_kit_load_conftest", Path(__file__).parents[1] / "load" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KIT = _load_kit()


def _row(office: str, obj: str, key: int, record: dict[str, Any], links: dict[str, Any], **extra: Any) -> dict[str, Any]:
    sid = f"{office}:{obj}:{key}"
    record = {**record, "Source_System_ID": sid}
    return {"source_id": sid, "source_object": obj, "office_id": office, "row_hash": row_hash(record, links),
            "record": record, "links": links, **extra}


def _who(office: str, patid: int) -> dict[str, Any]:
    return {"module": "Contacts", "source_id": f"{office}:patient:{patid}"}


def shaped_tables(office: str, files: Path, *, without: frozenset[str] = frozenset()) -> dict[str, list[dict[str, Any]]]:
    """The office's shaped rows (what it loads); ``without`` leaves those source ids out (deleted in Dentrix)."""
    shared_key, own_key = (1, 2) if office == NORTH else (7, 8)
    owner = {"Owner": {"provider_id": "DDS1"}}
    tables = {
        "contacts": [
            _row(office, "patient", shared_key, {"Last_Name": "Garcia", "First_Name": "Maria",
                                                 "Description": f"as {office} knows her"}, owner, tier=1),
            _row(office, "patient", own_key, {"Last_Name": "Own", "First_Name": office}, owner, tier=1),
        ],
        "events": [
            _row(office, "appt", shared_key * 10, {"Event_Title": f"{office} prophy",
                                                   "Start_DateTime": "2026-11-20T09:30:00-06:00",
                                                   "End_DateTime": "2026-11-20T10:30:00-06:00"},
                 {"Who_Id": _who(office, shared_key), **owner}),
            _row(office, "appt", own_key * 10, {"Event_Title": f"{office} exam",
                                                "Start_DateTime": "2026-11-21T09:30:00-06:00",
                                                "End_DateTime": "2026-11-21T10:00:00-06:00"},
                 {"Who_Id": _who(office, own_key), **owner}),
        ],
        "notes": [
            _row(office, "clinicalnote", shared_key * 100, {"Note_Title": f"{office} note", "Note_Content": "Seen."},
                 {"Parent_Id": _who(office, shared_key)}),
        ],
        "attachments": [
            _row(office, "eattach", shared_key * 1000, {"File_Name": f"{office}.jpg"},
                 {"Parent_Id": _who(office, shared_key)}, file_path=str(files / f"{office}.jpg"),
                 size_bytes=602 + 2, file_status="ok", parent=_who(office, shared_key)),
        ],
    }
    return {table: [r for r in rows if r["source_id"] not in without] for table, rows in tables.items()}


def write_shaped(path: Path, office: str, files: Path, *, without: frozenset[str] = frozenset()) -> None:
    con = duckdb.connect(str(path))
    try:
        ensure_tables(con)
        for table, rows in shaped_tables(office, files, without=without).items():
            replace_office_rows(con, table, office, rows)
        # What a full shaping leaves: the deletions step refuses a sample (out_of_sample > 0).
        con.execute("DELETE FROM zoho_shaped.accounting WHERE office_id = ?", [office])
    finally:
        con.close()


def build_office(path: Path, office: str, files: Path) -> Path:
    """A staged patient table (what the org-level audit reads) and the office's shaped rows (what it loads)."""
    shared_key, own_key = (1, 2) if office == NORTH else (7, 8)
    stage_patients(path, {office: [
        person(shared_key, "Garcia", "Maria", D(1980, 3, 14), mobile="801-555-0101"),
        person(own_key, "Lindqvist" if office == NORTH else "Okonkwo", "Sam", D(1972, 8, 1)),
    ]})
    files.mkdir(parents=True, exist_ok=True)
    (files / f"{office}.jpg").write_bytes(b"\xff\xd8" + office.encode() * 300)
    write_shaped(path, office, files)
    return path


class Org:
    """Two offices' DuckDB files, one emulator, one ledger (SQLite or PostgreSQL by URL)."""

    def __init__(self, handle: Any, root: Path, ledger_url: str | None = None) -> None:
        self.handle = handle
        self.root = root
        self.ledger_url = ledger_url or f"sqlite:///{root / 'ledger.sqlite'}"
        self.ledger = Ledger(self.ledger_url)
        self.client = KIT.client_for(handle)
        self.spec = load_spec()
        self.schema = setup_schema(self.client, self.spec)
        self.owners = resolve_owners(self.client, KIT.provider_map(), ["DDS1"])
        self.files = {office: root / f"files_{office}" for office in (NORTH, SOUTH)}
        self.ducks = {office: build_office(root / f"{office}.duckdb", office, self.files[office])
                      for office in (NORTH, SOUTH)}
        self.reports = root / "org" / "reports"

    def audit(self) -> None:
        audit = run_cross_office_audit(self.ducks, self.reports, ledger=self.ledger, policy=MERGE)
        assert [g.members for g in audit.result.groups] == [(SHARED[NORTH], SHARED[SOUTH])]

    def context(self, office: str, run_id: str | None = None, kind: str = "full", *, ledger: Ledger | None = None,
                client: Any = None, **options: Any) -> LoadContext:
        ledger = ledger or self.ledger
        run = ledger.start_run(kind, office, run_id=run_id)
        return LoadContext(self.ducks[office], client or self.client, ledger, office, run, self.spec, self.owners,
                           self.schema, LoadOptions(**options))

    def load_office(self, office: str, kind: str = "full", *, finish: bool = True, **options: Any) -> dict[str, ModuleLoadResult]:
        """Every load step through ``load_all``, as the Dagster steps run them; the run succeeded after it."""
        ctx = self.context(office, kind=kind, **options)
        results = {r.step: r for r in load_all(ctx, check_budget=False)}
        for name, result in results.items():
            assert result.failed == 0, (office, name, result.codes)
            accounted = result.ok + result.unchanged + result.quarantined + result.cross_office_joined
            assert accounted >= result.shaped, (office, name, result.as_dict())  # the step's accounted_for check
        if finish:
            self.ledger.finish_run(ctx.run_id, "succeeded")
        return results

    def rollback(self, office: str | None) -> Any:
        plan = make_plan(self.ledger, None, True, office_id=office)
        result = run_rollback(plan, self.client, self.ledger, new_rollback_run_id())
        assert result.complete, result.summary()
        assert make_plan(self.ledger, None, True, office_id=office).is_empty
        return plan, result

    def records(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {module: {str(r["id"]): r for r in records} for module, records in self.handle.snapshot()["modules"].items()}

    def close(self) -> None:
        self.client.close()
        self.ledger.close()


@contextmanager
def running_org(root: Path, ledger_url: str | None = None) -> Iterator[Org]:
    """An :class:`Org` on an emulator of its own (with the kit's users), closed after."""
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    users = KIT.write_users_file(root / "users.yaml")
    with running_emulator(root / "emu", extra_args=["--users-file", str(users)]) as handle:
        made = Org(handle, root, ledger_url)
        try:
            yield made
        finally:
            made.close()


def office_records(records: dict[str, dict[str, dict[str, Any]]], office: str) -> dict[str, str]:
    """An office's keyed records, byte for byte (JSON): every record carrying its Source_System_ID prefix."""
    out: dict[str, str] = {}
    for module, by_id in records.items():
        for zoho_id, record in by_id.items():
            if str(record.get("Source_System_ID") or "").startswith(f"{office}:"):
                out[f"{module}/{zoho_id}"] = json.dumps(record, sort_keys=True)
    return out


def children_of(records: dict[str, dict[str, dict[str, Any]]], zoho_id: str) -> dict[str, list[str]]:
    """The Events, Notes and Attachments hanging under one Contact, by what names them."""

    def parent(record: dict[str, Any]) -> str | None:
        for name in ("Who_Id", "What_Id", "Parent_Id"):
            value = record.get(name)
            if isinstance(value, dict) and value.get("id"):
                return str(value["id"])
        return None

    return {module: sorted(str(r.get("Source_System_ID") or r.get("File_Name") or r.get("Note_Title"))
                           for r in by_id.values() if parent(r) == zoho_id)
            for module, by_id in records.items() if module in ("Events", "Notes", "Attachments")}
