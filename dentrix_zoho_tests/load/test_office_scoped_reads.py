"""Reads an office makes of Zoho do not grow with the other offices of the org (issue 13).

Two offices load into one emulator through the real loader. The pre-scan of more than COQL_LOOKUP_MAX
Events without a crosswalk row costs office south the same calls whether or not office north's
records are in Zoho (before: a listing of the org's whole module, 200 a page), and still finds south's
records of an interrupted run and records that were there before us. Reconciliation counts south's
notes by the cheaper of the org's notes listing and a listing per parent, and either way finds a
note Zoho holds twice. The estimate counts what each read then costs at the emulator.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load import LoadContext, LoadOptions, load_all, resolve_owners, setup_schema
from dentrix_zoho.load.reconcile import reconcile_zoho_counts
from dentrix_zoho.load.zoho_reads import COQL_LOOKUP_MAX, choose_notes_read, office_scan_calls, scan_office
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.mapping.outputs import row_hash
from dentrix_zoho.plan.counts import count_migration
from dentrix_zoho.plan.estimate import EstimateInputs, estimate_phases
from dentrix_zoho_tests.load.conftest import client_for, provider_map, write_shaped_tables

NORTH, SOUTH = "north", "south"
COQL = "POST /crm/v8/coql"
MODULE_LIST = "GET /crm/v8/{module}"
PARENT_NOTES = "GET /crm/v8/{module}/{record_id}/Notes"
SOUTH_EVENTS = COQL_LOOKUP_MAX + 100  # above it the pre-scan is never `in` lookups
NORTH_EVENTS = 1_500  # the org's module listed whole would be 8 more pages of 200 with north in it


def _row(office: str, obj: str, key: int, record: dict[str, Any], links: dict[str, Any]) -> dict[str, Any]:
    sid = f"{office}:{obj}:{key}"
    record = {**record, "Source_System_ID": sid}
    return {"source_id": sid, "source_object": obj, "office_id": office, "row_hash": row_hash(record, links),
            "record": record, "links": links}


def _who(office: str, patid: int) -> dict[str, Any]:
    return {"module": "Contacts", "source_id": f"{office}:patient:{patid}"}


def _event(office: str, key: int, patid: int) -> dict[str, Any]:
    return _row(office, "appt", key, {"Event_Title": f"Visit {key}", "Start_DateTime": "2026-11-20T09:30:00-06:00",
                                      "End_DateTime": "2026-11-20T10:00:00-06:00"},
                {"Who_Id": _who(office, patid), "Owner": {"provider_id": "DDS1"}})


def _note(office: str, key: int, patid: int) -> dict[str, Any]:
    return _row(office, "clinicalnote", key, {"Note_Title": f"Note {key}", "Note_Content": "Seen."},
                {"Parent_Id": _who(office, patid)})


def _write_shaped(path: Path, office: str, *, patients: int, events: int, notes: dict[int, int]) -> Path:
    """``patients`` Contacts, ``events`` Events spread over them, ``notes``: patient -> how many notes."""
    tables = {
        "contacts": [_row(office, "patient", p, {"Last_Name": f"Patient{p}", "First_Name": office},
                          {"Owner": {"provider_id": "DDS1"}}) | {"tier": 1} for p in range(1, patients + 1)],
        "events": [_event(office, 1_000 + n, 1 + n % patients) for n in range(events)],
        "notes": [_note(office, 100_000 * patid + n, patid) for patid, k in notes.items() for n in range(k)],
    }
    return write_shaped_tables(path, office, tables)


class Org:
    """One emulator, one ledger, one client: the offices load as the Dagster steps do, a step at a time."""

    def __init__(self, handle: Any, root: Path) -> None:
        self.handle = handle
        self.ledger = Ledger(f"sqlite:///{root / 'ledger.sqlite'}")
        self.client = client_for(handle)
        self.spec = load_spec()
        self.schema = setup_schema(self.client, self.spec)
        self.owners = resolve_owners(self.client, provider_map(), ["DDS1"])
        self.root = root
        self.ducks: dict[str, Path] = {}

    def shape(self, office: str, **kwargs: Any) -> None:
        self.ducks[office] = _write_shaped(self.root / f"{office}.duckdb", office, **kwargs)

    def context(self, office: str, run_id: str | None = None) -> LoadContext:
        run = self.ledger.start_run("full", office, run_id=run_id)
        return LoadContext(self.ducks[office], self.client, self.ledger, office, run, self.spec, self.owners,
                           self.schema, LoadOptions())

    def load(self, office: str, steps: tuple[str, ...], run_id: str | None = None) -> dict[str, Any]:
        ctx = self.context(office, run_id)
        return {r.step: r for r in load_all(ctx, steps, check_budget=False)} | {"run_id": ctx.run_id}

    def calls(self) -> Counter[str]:
        usage = self.handle.usage()["calls"]
        return Counter({k: v for k, v in usage.items() if "oauth" not in k and "__emulator__" not in k})

    def records(self, module: str, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.handle.snapshot()["modules"].get(module, [])
                if str(r.get("Source_System_ID") or "").startswith(prefix)]

    def close(self) -> None:
        self.client.close()
        self.ledger.close()


@pytest.fixture
def org_factory(emulator_factory: Callable[..., Any], tmp_path: Path) -> Any:
    made: list[Org] = []

    def make(name: str) -> Org:
        root = tmp_path / name
        root.mkdir()
        org = Org(emulator_factory(), root)
        made.append(org)
        return org

    yield make
    for org in made:
        org.close()


def _plant(org: Org, office: str, run_id: str, keys: list[int], patid: int) -> list[str]:
    """Events in Zoho that the crosswalk lacks: a batch of run ``run_id`` whose answer was lost (a run of
    ours), or records there before us (any other run stamp)."""
    contact = org.ledger.zoho_id_for(office, "patient", f"{office}:patient:{patid}")
    assert contact
    sid_field, run_field = org.schema.source_id_field("Events"), org.schema.run_id_field("Events")
    rows = [{**{k: v for k, v in _event(office, key, patid)["record"].items() if k != "Source_System_ID"},
             sid_field: f"{office}:appt:{key}", run_field: run_id, "Who_Id": {"id": contact}} for key in keys]
    made = org.client.upsert("Events", rows)
    assert all(m.ok and m.action == "insert" for m in made)
    return [str(m.zoho_id) for m in made]


def _south_events_step(org: Org, *, with_north: bool) -> tuple[Counter[str], Any, list[Any], str]:
    """North loaded (or not); south's patients by one run, then its Events step by another, after
    records of its own were left in Zoho: 3 by the first run's lost batch, 2 there before us. Returns the
    step's calls at the emulator, its result, the estimate's phases for it (taken just before) and its run."""
    if with_north:
        org.shape(NORTH, patients=2, events=NORTH_EVENTS, notes={})
        north = org.load(NORTH, ("patients", "events"))
        assert north["events"].created == NORTH_EVENTS
    org.shape(SOUTH, patients=2, events=SOUTH_EVENTS, notes={})
    first = org.load(SOUTH, ("patients",))
    interrupted = _plant(org, SOUTH, first["run_id"], [1_000, 1_001, 1_002], 1)
    foreign = _plant(org, SOUTH, "an-import-before-us", [1_003, 1_004], 2)
    assert len(interrupted) == 3 and len(foreign) == 2
    estimate, _ = estimate_phases(count_migration(org.ducks[SOUTH], SOUTH, ledger=org.ledger, steps=("events",)),
                                  EstimateInputs.build(edition="enterprise", users=5), load_only=True)
    before = org.calls()
    result = org.load(SOUTH, ("events",))
    used = org.calls() - before
    return used, result["events"], estimate, result["run_id"]


def test_the_pre_scan_costs_south_the_same_with_or_without_north_and_finds_what_south_left(
        org_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    runs: dict[bool, Counter[str]] = {}
    for with_north in (False, True):
        org = org_factory("crowded" if with_north else "alone")
        with caplog.at_level(logging.INFO, logger="dentrix_zoho.load.upserts"):
            used, result, estimate, run_id = _south_events_step(org, with_north=with_north)
        runs[with_north] = used
        assert len(org.records("Events", f"{NORTH}:")) == (NORTH_EVENTS if with_north else 0)
        # south's own records found: adopted (3 as this migration's, 2 as there before us), not made again
        assert result.reconciled == 5 and result.pre_images == 2 and result.failed == 0
        adopted = Counter(e.code for e in org.ledger.audit_entries(run_id) if e.operation == "adopt")
        assert adopted == Counter({"INTERRUPTED": 3, "PRE_EXISTING": 2})
        south = org.records("Events", f"{SOUTH}:")
        assert len(south) == len({r["Source_System_ID"] for r in south}) == SOUTH_EVENTS
        # the pre-scan: one COQL read of south's records (5 in Zoho), never the org's module listed
        assert used[COQL] == 1 and used[MODULE_LIST] == 0, used
        prescan = [p for p in estimate if p.phase == "pre-scan"]
        assert [(p.calls, p.credits) for p in prescan] == [(used[COQL], 3)]
        assert any("pre-scan read this office's records by COQL" in r.getMessage() for r in caplog.records)
        caplog.clear()
    assert runs[True] == runs[False]  # every call of the step, route by route


def test_the_office_read_pages_past_the_offset_reach_and_keeps_only_the_office(org_factory: Any) -> None:
    """LIMIT/OFFSET up to the reach, then `id > last`; records of an office whose id differs only in case
    (the emulator's like ignores case) are read but not kept."""
    org = org_factory("paging")
    sid_field = org.schema.source_id_field("Leads")
    # Keys apart per office: the emulator's unique check on Source_System_ID ignores case too, so
    # b_1:patient:1 and B_1:patient:1 would be one record.
    by_office = {"b_1": (0, 450), "B_1": (1_000, 30), "bx1": (2_000, 20)}
    for office, (first, n) in by_office.items():
        rows = [{"Last_Name": f"Lead{i}", "Company": "Co", sid_field: f"{office}:patient:{i}"}
                for i in range(first, first + n)]
        for start in range(0, n, 100):
            assert all(m.ok for m in org.client.upsert("Leads", rows[start:start + 100]))
    for page, reach in ((200, 400), (200, 100_000), (2_000, 100_000)):
        before = org.calls()
        found = scan_office(org.client, "Leads", sid_field, ["Modified_Time"], "b_1", page=page, offset_reach=reach)
        used = org.calls() - before
        assert sorted(found) == sorted(f"b_1:patient:{i}" for i in range(450))
        # 480 rows match the pattern (b_1 and B_1): pages until one comes back short
        assert used == Counter({COQL: office_scan_calls(480, page)}), (page, reach, used)
    assert office_scan_calls(480, 200) == 3


def _notes_org(org: Org, *, north_notes: int) -> dict[str, Any]:
    """North: one patient with ``north_notes`` notes (none: north not loaded); south: two patients with a
    note each. The estimate of south's run is taken before it, from the shaped rows and the ledger."""
    if north_notes:
        org.shape(NORTH, patients=1, events=0, notes={1: north_notes})
        assert org.load(NORTH, ("patients", "notes"))["notes"].created == north_notes
    org.shape(SOUTH, patients=2, events=0, notes={1: 1, 2: 1})
    phases, _ = estimate_phases(count_migration(org.ducks[SOUTH], SOUTH, ledger=org.ledger),
                                EstimateInputs.build(edition="enterprise", users=5))
    assert org.load(SOUTH, ("patients", "notes"))["notes"].created == 2
    return {"phases": phases}


@pytest.mark.parametrize("north_notes,path", [(450, "per_parent"), (0, "org_listing")])
def test_south_notes_are_counted_the_cheaper_way_and_a_doubled_note_shows(
        org_factory: Any, caplog: pytest.LogCaptureFixture, north_notes: int, path: str) -> None:
    org = org_factory(path)
    estimate = _notes_org(org, north_notes=north_notes)
    choice = choose_notes_read(org_notes=north_notes + 2, children_per_parent=[1, 1])
    assert choice.path == path

    def count() -> tuple[Any, Counter[str]]:
        before = org.calls()
        with caplog.at_level(logging.INFO, logger="dentrix_zoho.load.reconcile"):
            result = reconcile_zoho_counts(org.client, org.ledger, SOUTH, org.schema, modules=("Notes",),
                                           attempts=1, recheck_seconds=0)
        return result, org.calls() - before

    result, used = count()
    assert result.passed and result.counts["modules"]["Notes"] == {"ledger": 2, "zoho": 2}
    if path == "per_parent":  # two listings, not 3 pages of the org's 452 notes
        assert used == Counter({PARENT_NOTES: 2}), used
    else:  # one page of the org's 2 notes, not two listings
        assert used == Counter({MODULE_LIST: 1}), used
    assert any(f"zoho counts Notes: {path}" in r.getMessage() for r in caplog.records)
    # The estimate counted the same read before south's run: the first Notes phase of reconciliation
    recon = [p for p in estimate["phases"] if p.phase == "reconciliation" and p.module == "Notes"]
    assert recon[0].calls == sum(used.values()) == choice.calls

    # An uncertain retry left south's first note twice in Zoho: counted from what Zoho lists, it shows.
    parent = org.ledger.zoho_id_for(SOUTH, "patient", f"{SOUTH}:patient:1")
    [made] = org.client.create_notes([{"Note_Title": f"Note {100_000}", "Note_Content": "Seen.",
                                       "Parent_Id": {"module": {"api_name": "Contacts"}, "id": parent}}])
    assert made.ok
    doubled, _ = count()
    assert not doubled.passed and doubled.counts["modules"]["Notes"] == {"ledger": 2, "zoho": 3}
