"""What a migration would send, per load step, counted from ``zoho_shaped`` (and the ledger on a re-run).

Counts only: no value of a record leaves this module. The rules are the loader's own (the same
step slices, the same sample filter, the same "changed since the last load" test, the same
wave order for links inside a step, the same Bulk Write row test), so the estimate and the run
agree on what goes.

What the read-back after the load touches is counted here too, with the read-back's own rules
(``load.readback``): the records of this office per module once the run is done (reconciliation
reads them by id and counts them), each parent's attachments (listed per parent), and the diff
report's reads of the rows in scope, batched by a :class:`~dentrix_zoho.load.readback.ReadTally`
fed in the order the report feeds its stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load.bulk_write import csv_record
from dentrix_zoho.load.context import LOAD_ORDER, LoadStep, steps_for
from dentrix_zoho.load.links import REQUIRED_LINKS
from dentrix_zoho.load.readback import ReadStats, ReadTally, whole_read_reason
from dentrix_zoho.load.shaped import ShapedRow, open_duckdb, read_step_rows, table_exists
from dentrix_zoho.load.upserts import _waves
from dentrix_zoho.mapping.outputs import OUTPUT_SCHEMA
from dentrix_zoho.zoho import limits

PARENT_TABLES = ("contacts", "leads")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class NothingShaped(LookupError):
    """No shaped rows for the office: the message says which command to run first."""


@dataclass
class StepCounts:
    """One load step: how many rows go, and how (counts only)."""

    step: str
    module: str
    kind: str  # upsert | notes | attachments
    shaped: int = 0  # rows in scope
    unchanged: int = 0  # same hash as the last load: not sent
    held_back: int = 0  # a required parent not loaded, or a file missing / over the limit: not sent
    creates: int = 0  # to send, no live crosswalk row
    updates: int = 0  # to send, a live crosswalk row (a re-run)
    stamped_updates: int = 0  # updates the human-edit check reads first (our last write's Modified_Time known)
    subform_updates: int = 0  # updates whose subform rows must be emptied first (Zoho appends subform rows)
    lacking: int = 0  # rows the pre-scan looks for in Zoho (no live crosswalk row)
    # Rows to send per wave (links inside the step go after their targets), and of those the rows one
    # flat Bulk Write CSV could carry (bulk_write.csv_record's rule).
    waves: list[int] = field(default_factory=list)
    bulk_carriable: list[int] = field(default_factory=list)

    @property
    def to_send(self) -> int:
        return self.creates + self.updates


@dataclass
class MigrationCounts:
    office_id: str
    scope: str
    steps: list[StepCounts]
    # Live crosswalk rows per Zoho module before this run, every office's (the org's notes listing reads them all).
    in_zoho: dict[str, int] = field(default_factory=dict)
    # This office's live crosswalk rows per Zoho module before this run (the pre-scan's office read).
    in_office: dict[str, int] = field(default_factory=dict)
    # After the run: for each parent of this office holding attachments, how many (listed per parent).
    attachment_children: list[int] = field(default_factory=list)
    # After the run: for each parent of this office holding notes, how many (reconciliation may list them).
    note_children: list[int] = field(default_factory=list)
    balances_staged: bool = True  # dentrix.aging is staged: the balance check reads the Contacts
    # The diff report's reads of the rows in scope once they are loaded, and each parent's attachments.
    diff_reads: ReadStats = field(default_factory=ReadStats)
    diff_attachment_children: list[int] = field(default_factory=list)

    def office_after(self, module: str) -> int:
        """This office's live records of ``module`` once the run has written what it sends."""
        return self.in_office.get(module, 0) + sum(s.creates for s in self.steps if s.module == module)

    def zoho_after(self, module: str) -> int:
        """Every office's records of ``module`` in Zoho once the run is done (as far as the ledger knows)."""
        return self.in_zoho.get(module, 0) + sum(s.creates for s in self.steps if s.module == module)

    def step(self, name: str) -> StepCounts:
        return next(s for s in self.steps if s.step == name)


def _payload_for_bulk(row: ShapedRow, sid_field: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The payload the loader would build (links resolved to ids), and value-derived Zoho types."""
    payload: dict[str, Any] = {k: v for k, v in row.record.items() if k not in ("Source_System_ID", "Migration_Run_ID")}
    payload[sid_field] = row.source_id
    payload["Migration_Run_ID"] = "run"
    for name, link in row.links.items():
        if not isinstance(link, dict):
            continue
        payload[name] = {"id": "0"}
        if name == "What_Id":
            payload["$se_module"] = str(link.get("module") or "")
    types: dict[str, str] = {}
    for key, value in payload.items():
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            types[key] = "subform"
        elif isinstance(value, str) and _DATETIME.match(value):
            types[key] = "datetime"
        elif isinstance(value, str) and _DATE.match(value):
            types[key] = "date"
        else:
            types[key] = "text"
    return payload, types


def bulk_carriable(row: ShapedRow) -> bool:
    payload, types = _payload_for_bulk(row, "Source_System_ID")
    return csv_record(payload, "Source_System_ID", types) is not None


def _file_sendable(row: ShapedRow) -> bool:
    if (row.file_status or "missing") != "ok" or not row.file_path:
        return False
    path = Path(row.file_path)
    return path.is_file() and path.stat().st_size <= limits.ATTACHMENT_MAX_BYTES


class _KnownParents:
    """``get`` as the loader's ParentIndex answers it before a step: targets already in Zoho."""

    def __init__(self, live: set[str]) -> None:
        self.live = live

    def get(self, source_id: str) -> str | None:
        return "known" if source_id in self.live else None


def _parent_ids(con: Any, office_id: str) -> set[str]:
    ids: set[str] = set()
    for table in PARENT_TABLES:
        if table_exists(con, table):
            ids |= {r[0] for r in con.execute(
                f"SELECT source_id FROM {OUTPUT_SCHEMA}.{table} WHERE office_id = ?", [office_id]).fetchall()}
    return ids


def _changed(ledger: Ledger | None, office_id: str, rows: Sequence[ShapedRow]) -> set[str]:
    if ledger is None:
        return {r.source_id for r in rows}
    by_object: dict[str, dict[str, str]] = {}
    for row in rows:
        by_object.setdefault(row.source_object, {})[row.source_id] = row.row_hash
    out: set[str] = set()
    for obj, hashes in by_object.items():
        out |= ledger.changed_rows(office_id, obj, hashes)
    return out


def _crosswalk(ledger: Ledger | None, office_id: str, rows: Sequence[ShapedRow]) -> dict[str, Any]:
    if ledger is None:
        return {}
    by_object: dict[str, list[str]] = {}
    for row in rows:
        by_object.setdefault(row.source_object, []).append(row.source_id)
    found: dict[str, Any] = {}
    for obj, sids in by_object.items():
        found.update({k: v for k, v in ledger.lookup_many(office_id, obj, sids).items() if not v.deleted})
    return found


def _is_subform(value: Any) -> bool:
    """Subform rows (or a multi-select lookup): a list of objects, which only GET by id returns."""
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def _expected(step: LoadStep, row: ShapedRow, loadable_parents: set[str]) -> dict[str, Any]:
    """What the diff report compares for this row once it is loaded (``diff_report._expected``), as far
    as the shaped row tells: the payload's fields (Source_System_ID under any API name: one field), the
    links whose target will be in Zoho, the owner. Values only where they decide how it is read."""
    if step.kind == "notes":
        out: dict[str, Any] = {"Note_Title": None, "Note_Content": row.record.get("Note_Content")}
    else:
        out = {k: v for k, v in row.record.items() if k != "Migration_Run_ID"}
        out["Source_System_ID"] = row.source_id
    for name, link in row.links.items():
        if not isinstance(link, dict):
            continue
        if name == "Owner" or str(link.get("source_id")) in loadable_parents:
            if step.kind != "notes" or name == "Parent_Id":
                out[name] = {"id": "0"}
            if name == "What_Id":
                out["$se_module"] = str(link.get("module") or "")
    return out


def _parent_key(row: ShapedRow) -> tuple[str, str] | None:
    link = row.links.get("Parent_Id")
    if not isinstance(link, dict) or not link.get("source_id"):
        return None
    return str(link.get("module") or ""), str(link["source_id"])


def _tally_reads(step: LoadStep, rows: Sequence[ShapedRow], read: set[str], loadable_parents: set[str],
                 tally: ReadTally, children: dict[tuple[str, str], int]) -> None:
    """The diff report's reads of this step's rows that Zoho will hold, in the report's order."""
    for row in rows:
        if row.source_id not in read:
            continue
        if step.kind == "attachments":
            parent = _parent_key(row)
            if parent is not None:
                tally.add_parent(parent)
                children[parent] = children.get(parent, 0) + 1
            continue
        expected = _expected(step, row, loadable_parents)
        by_id_only = {k for k, v in expected.items() if _is_subform(v)}
        # Rich text is known only from Zoho's field metadata: nothing the shaped row says is read as such.
        tally.add(step.module, row.source_id, expected, whole_read_reason(expected, by_id_only, ()))


def count_step(step: LoadStep, rows: list[ShapedRow], *, office_id: str, ledger: Ledger | None,
               loadable_parents: set[str], live_parents: set[str] = frozenset(),  # type: ignore[assignment]
               reads: ReadTally | None = None, read_children: dict[tuple[str, str], int] | None = None,
               new_children: dict[str, int] | None = None) -> StepCounts:
    """``loadable_parents``: Contacts/Leads this run loads or Zoho holds; ``live_parents``: those Zoho holds.
    ``reads``: the diff report's reads of the rows Zoho will hold are counted into it (attachments
    per parent, also counted into ``read_children``). ``new_children``: attachments (or notes) this run
    creates, counted per parent source id."""
    counts = StepCounts(step.name, step.module, step.kind, shaped=len(rows))
    changed_ids = _changed(ledger, office_id, rows)
    to_send = [r for r in rows if r.source_id in changed_ids]
    counts.unchanged = len(rows) - len(to_send)
    crosswalk = _crosswalk(ledger, office_id, to_send)
    counts.lacking = sum(1 for r in to_send if r.source_id not in crosswalk)
    going: list[ShapedRow] = []
    for row in to_send:
        # The loader reads the stamps of every changed row it wrote before, held back or not.
        x = crosswalk.get(row.source_id)
        if step.kind == "upsert" and x is not None and x.zoho_modified_time:
            counts.stamped_updates += 1
        missing_parent = any(
            isinstance(link, dict) and name in REQUIRED_LINKS and str(link.get("source_id")) not in loadable_parents
            for name, link in row.links.items()
        )
        if missing_parent or (step.kind == "attachments" and not _file_sendable(row)):
            counts.held_back += 1
            continue
        going.append(row)
    for row in going:
        x = crosswalk.get(row.source_id)
        if x is None:
            counts.creates += 1
            parent = _parent_key(row) if step.kind in ("attachments", "notes") else None
            if parent is not None and new_children is not None:
                new_children[parent[1]] = new_children.get(parent[1], 0) + 1
            continue
        counts.updates += 1
        if step.kind == "upsert" and any(_is_subform(v) for v in row.record.values()):
            counts.subform_updates += 1
    if reads is not None:
        # Zoho holds the unchanged rows, the rows sent now, and the held-back rows it held before.
        read = {r.source_id for r in rows if r.source_id not in changed_ids}
        read |= {r.source_id for r in going} | set(crosswalk)
        _tally_reads(step, rows, read, loadable_parents, reads,
                     read_children if read_children is not None else {})
    if step.kind == "upsert":
        waves = _waves(going, _KnownParents(set(live_parents)))  # type: ignore[arg-type]
        supported = step.module not in limits.BULK_WRITE_UNSUPPORTED_MODULES
        counts.waves = [len(w) for w in waves]
        counts.bulk_carriable = [sum(1 for r in w if bulk_carriable(r)) if supported else 0 for w in waves]
    elif going:
        counts.waves = [len(going)]
        counts.bulk_carriable = [0]
    return counts


def count_migration(
    duckdb_path: Path,
    office_id: str,
    *,
    scope: str = "full",
    sample: Iterable[str] | None = None,
    ledger: Ledger | None = None,
    steps: Sequence[str] = LOAD_ORDER,
    require_shaped: bool = True,
) -> MigrationCounts:
    """Per load step (or Zoho module) in ``steps``, what goes. ``sample``: the sample's source ids (a
    sample run); ``ledger``: count only rows changed since the last load, and see what Zoho holds.
    ``NothingShaped`` when the office has no shaped rows at all (unless not ``require_shaped``)."""
    sample_ids = frozenset(sample) if sample is not None else None
    out = MigrationCounts(office_id, scope, [])
    with open_duckdb(Path(duckdb_path)) as con:
        if not table_exists(con, "contacts") and not require_shaped:
            return out
        if not table_exists(con, "contacts"):
            staged = table_exists(con, "patient", schema="dentrix")
            raise NothingShaped(_first_command(office_id, staged))
        if scope == "sample" and sample_ids is None:
            if not table_exists(con, "sample_patients"):
                raise NothingShaped(f"no sample selected for office {office_id}: materialize "
                                    "zoho_shaped/migration_sample (the sample_migration job) first")
            sample_ids = frozenset(r[0] for r in con.execute(
                f"SELECT source_id FROM {OUTPUT_SCHEMA}.sample_patients").fetchall())
        parents = _parent_ids(con, office_id)
        balances_staged = table_exists(con, "aging", schema="dentrix")
        per_step = {step.name: (step, read_step_rows(con, step, office_id, sample=sample_ids))
                    for name in steps for step in steps_for(name)}
    if require_shaped and not any(rows for _, rows in per_step.values()):
        raise NothingShaped(_first_command(office_id, True))
    if sample_ids is not None:  # only the sample's parents are loaded in a sample run
        parents = {r.source_id for name in ("responsible_parties", "patients", "leads") if name in per_step
                   for r in per_step[name][1]}
    live_parents: set[str] = set()
    # parent source id -> children after the run, per child module (reconciliation lists live parents of ours)
    children: dict[str, dict[str, int]] = {"Attachments": {}, "Notes": {}}
    if ledger is not None:
        parent_sid: dict[str, str] = {}
        for module in ("Contacts", "Leads"):
            for r in ledger.crosswalk_rows(module=module, office_id=office_id, deleted=False):
                live_parents.add(r.source_id)
                parent_sid[r.zoho_id] = r.source_id
        for module in {steps_for(name)[0].module for name in steps}:
            out.in_zoho[module] = sum(1 for _ in ledger.crosswalk_rows(module=module, deleted=False))
            office_rows = list(ledger.crosswalk_rows(module=module, office_id=office_id, deleted=False))
            out.in_office[module] = len(office_rows)
            if module in children:
                for r in office_rows:
                    sid = parent_sid.get(r.parent_zoho_id or "")
                    if sid is not None:
                        children[module][sid] = children[module].get(sid, 0) + 1
    reads = ReadTally()
    read_children: dict[tuple[str, str], int] = {}
    for step, rows in per_step.values():
        out.steps.append(count_step(step, rows, office_id=office_id, ledger=ledger,
                                    loadable_parents=parents | live_parents, live_parents=live_parents,
                                    reads=reads, read_children=read_children,
                                    new_children=children.get(step.module)))
    out.attachment_children = sorted(children["Attachments"].values())
    out.note_children = sorted(children["Notes"].values())
    out.diff_reads = reads.finish()
    out.diff_attachment_children = sorted(read_children.values())
    out.balances_staged = balances_staged
    return out



def _first_command(office_id: str, staged: bool) -> str:
    if not staged:
        return (f"nothing is staged or shaped for office {office_id}: run `dentrix-zoho stage` first, then shape "
                "(materialize the zoho_shaped assets in Dagster, e.g. by the sample_migration job)")
    return (f"nothing is shaped for office {office_id}: shape the staged tables first (materialize the "
            "zoho_shaped assets in Dagster, e.g. by the sample_migration job)")
