"""Shape the staged Dentrix tables of one office into Zoho-ready tables.

Every staged row of a primary object ends in exactly one place: shaped (a
module table, or folded into its parent's record), quarantined (with a reason),
or skipped (by a rule the spec names). ``ShapeSummary`` holds the counts and
checks that identity per object; it never holds patient data.

Memory does not grow with the practice: staged rows are fetched ``READ_BATCH_ROWS``
at a time; rows seen per patient or per guarantor come ordered by that key from
DuckDB and are handled one group at a time (merged with another query in the same
order where two meet); output rows go out in batches (``outputs.OfficeRowsWriter``),
and the office's rows are replaced in one transaction at the end. What is kept whole
is per patient and small: its state, its name and phone digits, and the few columns
duplicate detection compares. DuckDB works within ``SHAPING_MEMORY_LIMIT``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from dentrix_zoho.mapping.identity import PHONE_COLUMNS, digits, norm, same_person
from dentrix_zoho.mapping.ids import source_system_id
from dentrix_zoho.mapping.integrity import DUPLICATE_SOURCE_KEY, duplicate_keys
from dentrix_zoho.mapping.ledger_pdf import LedgerLine, render_ledger_pdf
from dentrix_zoho.mapping.metadata import FieldMeta, field_metadata
from dentrix_zoho.mapping.outputs import MODULE_TABLES, OfficeRowsWriter, ensure_tables, row_hash
from dentrix_zoho.mapping.records import Built, Problem, enforce_metadata, split_text, transform_fields
from dentrix_zoho.mapping.routing import Route, route_patient, substitute_query_params
from dentrix_zoho.mapping.spec import MappingSpec, StreamSpec, spec_hash
from dentrix_zoho.mapping.summary import ModuleCounts, ObjectAccount, ShapeSummary
from dentrix_zoho.mapping.transforms import Context, apply
from dentrix_zoho.mapping.validation import value_class
from dentrix_zoho.progress import Progress
from dentrix_zoho.staging.rejects import office_rejects
from dentrix_zoho.staging.store import memory_budget

log = logging.getLogger(__name__)

STAGING_SCHEMA = "dentrix"
ACTIVITY_MODULES = {"Events", "Tasks", "Calls"}
# Staged rows fetched from DuckDB per round trip.
READ_BATCH_ROWS = 10_000
# DuckDB's memory budget while shaping (a larger one is lowered to it, a smaller one kept):
# its sorts and the scratch tables of the output spill to disk beyond it.
SHAPING_MEMORY_LIMIT = "256MB"
# The patient columns ``identity.same_person`` compares: all duplicate detection keeps of a patient.
IDENTITY_COLUMNS = ("gender", "lastname", "firstname", "pager", "emailaddr")
# Route reason of a patient kept in the module an earlier run loaded it into (``_Shaper.route``).
KEPT_ROUTE = "kept_where_loaded"


@dataclass(slots=True)
class _Parent:
    state: str  # Contacts | Leads | quarantined | skipped | out_of_sample
    source_id: str
    provider: str | None = None


class _Shaper:
    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        spec: MappingSpec,
        *,
        office_id: str,
        as_of: dt.date,
        image_root: Path,
        field_metadata_live: dict[str, list[dict[str, Any]]] | None,
        sample_source_ids: set[str] | None,
        ledger_pdf_dir: Path | None,
        loaded_modules: Mapping[str, str] | None = None,
    ) -> None:
        self.conn = conn
        self.loaded_modules: Mapping[str, str] = loaded_modules or {}
        self.spec = spec
        self.office_id = office_id
        self.as_of = as_of
        self.image_root = image_root
        self.ledger_pdf_dir = ledger_pdf_dir
        self.sample = sample_source_ids
        self.ctx = Context.from_spec(spec, as_of)
        self.meta: dict[str, dict[str, FieldMeta]] = field_metadata(spec, field_metadata_live)
        self.summary = ShapeSummary(office_id, spec_hash(spec), as_of.isoformat())
        self.writer = OfficeRowsWriter(conn, office_id)
        self.patients: dict[int, _Parent] = {}
        self.by_name: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.phones: dict[int, tuple[str, ...]] = {}
        self.staged_tables: set[str] = set()
        self.duplicates: dict[str, set[tuple[Any, ...]]] = {}  # stream object -> keys of several rows
        # (object, staged _source_key) -> {column: (reason, value class)}: values staging NULL-ed.
        self.rejected: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
        # A line at least every 10 s of a long shaping: streams done, and rows read of the one under way.
        self.progress = Progress("shaping", 0, unit="streams")
        self.stream_under_way = ""
        self.rows_read = 0
        self.streams_done: set[str] = set()

    # -- plumbing -----------------------------------------------------------

    def sid(self, obj: str, key: Any) -> str:
        return source_system_id(self.office_id, obj, key)

    def account(self, obj: str) -> ObjectAccount:
        return self.summary.objects.setdefault(obj, ObjectAccount())

    def module_counts(self, module: str) -> ModuleCounts:
        return self.summary.modules.setdefault(module, ModuleCounts())

    def find_staged_tables(self) -> None:
        rows = self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [STAGING_SCHEMA]
        ).fetchall()
        self.staged_tables = {name for (name,) in rows}

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own for one query: output batches are written on the shaper's
        connection, and a statement run there would cut off a result still being fetched (two
        queries are read side by side in a merge, too). The spec's queries name staged tables
        bare; on this connection they are views of this office's rows."""
        cur = self.conn.cursor()
        try:
            office = self.office_id.replace("'", "''")
            for name in sorted(self.staged_tables):
                cur.execute(
                    f'CREATE OR REPLACE TEMP VIEW "{name}" AS '
                    f"SELECT * FROM {STAGING_SCHEMA}.\"{name}\" WHERE _office_id = '{office}'"
                )
            yield cur
        finally:
            cur.close()

    def query(self, text: str) -> Iterator[dict[str, Any]]:
        """The rows of ``text``, fetched ``READ_BATCH_ROWS`` at a time."""
        with self.reader() as cur:
            cursor = cur.execute(text)
            names = [d[0] for d in cursor.description]
            while chunk := cursor.fetchmany(READ_BATCH_ROWS):
                self.rows_read += len(chunk)
                self.progress.poke(f"{self.stream_under_way}: {self.rows_read:,} rows read")
                for values in chunk:
                    yield dict(zip(names, values, strict=True))

    def sql(self, text: str) -> str:
        return substitute_query_params(self.spec, text, self.as_of)

    def rows(self, stream: StreamSpec, order_by: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """The stream's rows with their skip rules evaluated; ordered by ``order_by`` when the
        rows are not handled one by one (no sort for DuckDB to do otherwise)."""
        skips = "".join(f', ({self.sql(rule.when)}) AS "__skip_{i}"' for i, rule in enumerate(stream.skip))
        skips += "".join(f', ({self.sql(rule.when)}) AS "__hold_{i}"' for i, rule in enumerate(stream.quarantine))
        order = f" ORDER BY {', '.join(f'q.{_quote(k)}' for k in order_by)}" if order_by else ""
        return self.query(f"SELECT q.*{skips} FROM ({self.sql(stream.query)}) q{order}")

    def load_rejects(self) -> None:
        """The office's staging rejects (few: ids, columns and reasons, no values), by row."""
        for r in office_rejects(self.conn, self.office_id):
            if r["source_key"] is not None:
                columns = self.rejected.setdefault((r["object_name"], r["source_key"]), {})
                columns[r["column_name"]] = (r["reason"], r["value_class"])

    def rejected_columns(self, stream: StreamSpec, row: Mapping[str, Any]) -> dict[str, tuple[str, str]] | None:
        """The columns of this row of the stream's own object that staging rejected (``staging.rejects``)."""
        if not self.rejected:
            return None
        key = ":".join("" if row.get(k) is None else str(row.get(k)) for k in stream.key)
        return self.rejected.get((stream.object, key))

    def key_of(self, stream: StreamSpec, row: Mapping[str, Any]) -> Any:
        values = tuple(row[k] for k in stream.key)
        return values[0] if len(values) == 1 else values

    def duplicate_key(self, stream: StreamSpec, row: Mapping[str, Any]) -> Problem | None:
        """Several staged rows hold this row's key (``integrity``): checked before any rule,
        which could otherwise settle one of the rows and let the other through alone."""
        if stream.object not in self.duplicates:
            self.duplicates[stream.object] = duplicate_keys(self.conn, STAGING_SCHEMA, stream.object, stream.key,
                                                            self.office_id)
        if tuple(row.get(k) for k in stream.key) in self.duplicates[stream.object]:
            return Problem(stream.key[0], "number", DUPLICATE_SOURCE_KEY, "integrity:source_key", "quarantine")
        return None

    def held_back(self, stream: StreamSpec, row: Mapping[str, Any]) -> Problem | None:
        """A quarantine rule of the stream that the row matches."""
        for i, rule in enumerate(stream.quarantine):
            if row.get(f"__hold_{i}"):
                return Problem(stream.key[0], "row", rule.name, f"quarantine_rule:{rule.name}", "quarantine")
        return None

    def skip_rule(self, stream: StreamSpec, row: Mapping[str, Any]) -> tuple[str, str] | None:
        for i, rule in enumerate(stream.skip):
            if row.get(f"__skip_{i}"):
                return rule.name, rule.reason
        return None

    def add_skip(self, obj: str, module: str, source_id: str, rule: str, reason: str) -> None:
        self.account(obj).skipped += 1
        self.module_counts(module).skipped += 1
        self.summary.skip_rules[rule] = self.summary.skip_rules.get(rule, 0) + 1
        self.writer.add(
            "skipped",
            {"office_id": self.office_id, "source_object": obj, "source_id": source_id, "rule": rule, "reason": reason}
        )

    def add_quarantine(self, obj: str, module: str, source_id: str, problems: Iterable[Problem]) -> None:
        self.account(obj).quarantined += 1
        self.module_counts(module).quarantined += 1
        for p in problems:
            self.summary.quarantine_reasons[p.reason] = self.summary.quarantine_reasons.get(p.reason, 0) + 1
            self.writer.add(
                "quarantine",
                {
                    "office_id": self.office_id, "source_object": obj, "source_id": source_id,
                    "target_module": module, "field": p.field, "value_class": p.value_class,
                    "reason": p.reason, "rule": p.rule,
                }
            )

    def add_flags(self, obj: str, module: str, source_id: str, problems: Iterable[Problem]) -> None:
        for p in problems:
            key = f"{p.action}:{p.reason}"
            self.summary.flags[key] = self.summary.flags.get(key, 0) + 1
            self.writer.add(
                "flags",
                {
                    "office_id": self.office_id, "source_object": obj, "source_id": source_id,
                    "target_module": module, "field": p.field, "value_class": p.value_class,
                    "reason": p.reason, "rule": p.rule, "action": p.action,
                }
            )

    def emit(self, module: str, obj: str, source_id: str, record: dict[str, Any], links: dict[str, Any],
             **extra: Any) -> None:
        record = {**record, "Source_System_ID": source_id}
        row = {
            "source_id": source_id, "source_object": obj, "office_id": self.office_id,
            "row_hash": row_hash(record, links), "record": record, "links": links, **extra,
        }
        self.writer.add(MODULE_TABLES[module], row)
        self.module_counts(module).valid += 1

    def policy(self, fields: Iterable[Any]) -> dict[str, str]:
        return {f.target: f.on_invalid for f in fields}

    def owner_link(self, provider: Any) -> dict[str, Any]:
        text = str(provider).strip().upper() if provider is not None else ""
        return {"Owner": {"provider_id": text}} if text else {}

    def parent_state(self, stream: StreamSpec, row: Mapping[str, Any]) -> tuple[_Parent | None, Problem | None, str | None]:
        """(parent, quarantine problem, skip rule) for a child row."""
        patid = row.get(stream.parent_key or "")
        if patid is None or patid == 0:
            return None, Problem(stream.parent_key or "", "null", "orphan_no_patient", "link:parent", "quarantine"), None
        parent = self.patients.get(int(patid))
        if parent is None:
            return None, Problem(stream.parent_key or "", "number", "orphan_patient_not_in_source", "link:parent",
                                 "quarantine"), None
        if parent.state == "skipped":
            return parent, None, "parent_skipped"
        if parent.state == "out_of_sample":
            return parent, None, "out_of_sample"
        if parent.state == "quarantined":
            return parent, Problem(stream.parent_key or "", "number", "parent_quarantined", "link:parent",
                                   "quarantine"), None
        return parent, None, None

    def child_links(self, stream: StreamSpec, parent: _Parent | None) -> dict[str, Any]:
        links: dict[str, Any] = {}
        if parent is None:
            return links
        for link in stream.links:
            name = link.field
            if stream.module in ACTIVITY_MODULES and name == "Who_Id" and parent.state == "Leads":
                name = "What_Id"  # Who_Id takes Contacts only; a Lead is related through What_Id
            links[name] = {"module": parent.state, "source_id": parent.source_id}
        return links

    def admit(self, stream: StreamSpec, row: Mapping[str, Any], module: str, *,
              needs_parent: bool = True) -> tuple[str, _Parent | None, ObjectAccount] | None:
        """Count a row as staged and settle it if a rule says so (skip rule, out of sample,
        parent skipped, parent quarantined or missing); else hand back (source id, parent, account)."""
        obj = stream.object
        acc = self.account(obj)
        acc.staged += 1
        sid = self.sid(obj, self.key_of(stream, row))
        duplicate = self.duplicate_key(stream, row)
        if duplicate is not None:
            self.add_quarantine(obj, module, sid, [duplicate])
            return None
        skip = self.skip_rule(stream, row)
        if skip:
            self.add_skip(obj, module, sid, *skip)
            return None
        if not needs_parent:
            return self.hold_or_admit(stream, row, module, sid, None, acc)
        parent, problem, parent_skip = self.parent_state(stream, row)
        if parent_skip == "out_of_sample":
            acc.out_of_sample += 1
            return None
        if parent_skip:
            self.add_skip(obj, module, sid, parent_skip, "the owning patient was skipped by a rule")
            return None
        if problem is not None:
            self.add_quarantine(obj, module, sid, [problem])
            return None
        return self.hold_or_admit(stream, row, module, sid, parent, acc)

    def hold_or_admit(self, stream: StreamSpec, row: Mapping[str, Any], module: str, sid: str,
                      parent: _Parent | None, acc: ObjectAccount) -> tuple[str, _Parent | None, ObjectAccount] | None:
        held = self.held_back(stream, row)
        if held is not None:
            self.add_quarantine(stream.object, module, sid, [held])
            return None
        return sid, parent, acc

    # -- patients -----------------------------------------------------------

    def shape_patients(self, stream: StreamSpec, practice_stream: StreamSpec | None) -> None:
        """One pass in patid order; a patient whose responsible party comes later in that order
        waits for a second pass (its Related_Party link depends on that party's outcome)."""
        obj = stream.object
        sample_patids = self.sample_patients(stream) if self.sample is not None else None
        by_birth: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        duplicates: set[int] = set()
        waiting: set[int] = set()
        for row, values in self.patients_with_values(stream, practice_stream):
            acc = self.account(obj)
            acc.staged += 1
            patid = int(row["patid"])
            sid = self.sid(obj, patid)
            self.index_patient(patid, row)
            if sample_patids is not None and patid not in sample_patids:
                acc.out_of_sample += 1
                self.patients[patid] = _Parent("out_of_sample", sid)
                continue
            duplicate = self.duplicate_key(stream, row)
            skip = None if duplicate else self.skip_rule(stream, row)
            if skip:
                self.add_skip(obj, "Contacts", sid, *skip)
                self.patients[patid] = _Parent("skipped", sid)
                continue
            held = duplicate or self.held_back(stream, row)
            if held is not None:
                self.add_quarantine(obj, "Contacts", sid, [held])
                self.patients[patid] = _Parent("quarantined", sid)
                continue
            route, built = self.build_patient(stream, row, values)
            if not built.ok:
                self.add_quarantine(obj, route.module, sid, built.quarantine)
                self.add_flags(obj, route.module, sid, built.flags)
                self.patients[patid] = _Parent("quarantined", sid)
                continue
            self.patients[patid] = _Parent(route.module, sid, row.get(stream.owner_provider or ""))
            duplicate = self.possible_duplicate(row, by_birth)
            if route.module == "Contacts" and self.party_comes_later(stream, row):
                waiting.add(patid)
                if duplicate:
                    duplicates.add(patid)
                continue
            self.emit_patient(stream, row, route, built, duplicate)
        if not waiting:
            return
        for row, values in self.patients_with_values(stream, practice_stream):
            patid = int(row["patid"])
            if patid in waiting:
                waiting.discard(patid)
                route, built = self.build_patient(stream, row, values)
                self.emit_patient(stream, row, route, built, patid in duplicates)

    def patients_with_values(
        self, stream: StreamSpec, practice_stream: StreamSpec | None
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each patient row with its practice-defined field values (a merge on patid)."""
        values = _Groups(self.practice_values(practice_stream) if practice_stream is not None else iter(()))
        for row in self.rows(stream, order_by=stream.key):
            yield row, values.take(int(row["patid"]))

    def route(self, stream: StreamSpec, row: Mapping[str, Any]) -> tuple[Route, Problem | None]:
        """The routing rules' module, unless an earlier run loaded the patient into the other one.

        Zoho has no way back from a Contact to a Lead, and a Lead becomes a Contact only by Zoho's
        conversion, so a patient whose route changed since (inactive since the full load, a Lead who
        booked during the delta window) stays where it is: one person, one record, its children
        under it. The flag names it, for a person to convert or retire in Zoho.
        """
        route = route_patient(row, self.spec.routing, self.as_of)
        loaded = self.loaded_modules.get(self.sid(stream.object, int(row["patid"])))
        if loaded is None or loaded == route.module or loaded not in ("Contacts", "Leads"):
            return route, None
        # Reason e.g. ``route_kept_in_contacts``, rule ``routing:leads_now``: where it stays, where the rules send it.
        flag = Problem("Source_System_ID", "patient", f"route_kept_in_{loaded.lower()}",
                       f"routing:{route.module.lower()}_now", "flagged")
        return Route(loaded, KEPT_ROUTE), flag

    def build_patient(self, stream: StreamSpec, row: Mapping[str, Any],
                      values: list[dict[str, Any]]) -> tuple[Route, Built]:
        route, kept = self.route(stream, row)
        built = Built({}, flags=[kept] if kept else [])
        transform_fields(stream.fields, row, self.ctx, built, rejected=self.rejected_columns(stream, row))
        if route.module == "Contacts":
            self.practice_fields(built, values)
            self.insurance(built, row)
        else:
            self.to_lead(built, route)
        enforce_metadata(built, self.meta[route.module], self.policy(stream.fields) | self.policy(
            self.spec.practice_fields.values()) | self.lead_policy(stream))
        return route, built

    def emit_patient(self, stream: StreamSpec, row: Mapping[str, Any], route: Route, built: Built,
                     duplicate: bool) -> None:
        obj = stream.object
        sid = self.sid(obj, int(row["patid"]))
        if duplicate:
            built.flags.append(Problem("Last_Name", "patient", "possible_duplicate",
                                       "dedupe:birth_date_and_name_or_contact", "flagged"))
        links = self.owner_link(row.get(stream.owner_provider or ""))
        if route.module == "Contacts":
            links.update(self.related_party(stream, row, built))
        self.add_flags(obj, route.module, sid, built.flags)
        extra = {"tier": 0 if row.get("is_responsible_party") else 1} if route.module == "Contacts" else {}
        self.emit(route.module, obj, sid, built.record, links, **extra)
        self.account(obj).shaped += 1

    def index_patient(self, patid: int, row: Mapping[str, Any]) -> None:
        """Names and phone digits, to match new-patient appointments (appt.patname / phone)."""
        last, first = norm(row.get("lastname")), norm(row.get("firstname"))
        if last:
            self.by_name[(last, first)].append(patid)
        self.phones[patid] = tuple({d for d in (digits(row.get(c)) for c in PHONE_COLUMNS) if d})

    @staticmethod
    def possible_duplicate(row: Mapping[str, Any], by_birth: dict[Any, list[tuple[Any, ...]]]) -> bool:
        """The same person entered twice (same birth date; similar name, or same mobile or e-mail),
        against the patients shaped before this one. Flagged on the later record for a person to
        merge in Zoho; both are sent."""
        if row.get("birthdate") is None:
            return False
        earlier = by_birth[row["birthdate"]]
        found = any(same_person(dict(zip(IDENTITY_COLUMNS, e, strict=True)), row) for e in earlier)
        earlier.append(tuple(row.get(c) for c in IDENTITY_COLUMNS))
        return found

    def party_comes_later(self, stream: StreamSpec, row: Mapping[str, Any]) -> bool:
        """A responsible party not shaped yet: its outcome (and so the link) is not known."""
        return any(
            (other := row.get(link.key)) and other != row["patid"] and int(other) not in self.patients
            for link in stream.links
        )

    def sample_patients(self, stream: StreamSpec) -> set[int]:
        """Sampled patients plus their responsible parties (the Related_Party targets)."""
        chosen: set[int] = set()
        guarantors: set[int] = set()
        for r in self.rows(stream):
            if self.sid("patient", int(r["patid"])) in (self.sample or set()):
                chosen.add(int(r["patid"]))
                if r.get("guarid"):
                    guarantors.add(int(r["guarid"]))
        return chosen | guarantors

    def related_party(self, stream: StreamSpec, row: Mapping[str, Any], built: Built) -> dict[str, Any]:
        """The responsible party's Contact, by source id (the loader resolves it; tier 0 goes first)."""
        links: dict[str, Any] = {}
        for link in stream.links:
            other = row.get(link.key)
            if not other or other == row["patid"]:
                continue
            target = self.patients.get(int(other))
            if target is not None and target.state == "Contacts":
                links[link.field] = {"module": "Contacts", "source_id": target.source_id}
            else:
                state = "missing" if target is None else target.state
                built.flags.append(Problem(link.field, "number", f"related_party_{state}", "link:related_party",
                                           "dropped"))
        return links

    def to_lead(self, built: Built, route: Route) -> None:
        renames = self.spec.routing.lead_fields
        record: dict[str, Any] = {}
        for api_name, value in built.record.items():
            target = renames.get(api_name, api_name)
            if target is not None:
                record[target] = value
        if route.reason != KEPT_ROUTE:  # a kept Lead's status is left as Zoho has it: no reason applies now
            record["Lead_Status"] = self.spec.routing.lead_status[route.reason or "no_recent_treatment"]
        built.record = record

    def lead_policy(self, stream: StreamSpec) -> dict[str, str]:
        renames = self.spec.routing.lead_fields
        return {renames[f.target]: f.on_invalid for f in stream.fields if renames.get(f.target)}

    def practice_fields(self, built: Built, values: list[dict[str, Any]]) -> None:
        for value_row in values:
            fmap = self.spec.practice_fields.get(value_row.get("label") or "")
            if fmap is None:
                continue
            transform_fields([fmap], value_row, self.ctx, built)

    def insurance(self, built: Built, row: Mapping[str, Any]) -> None:
        ins = self.spec.insurance
        if ins.mode != "subform" or not ins.row_fields:
            return
        plans: list[dict[str, Any]] = []
        for slot, plan_type in ins.slots.items():
            if row.get(ins.slot_present.format(slot=slot)) is None:
                continue
            sub = Built({"Plan_Type": plan_type})
            transform_fields(ins.row_fields, row, self.ctx, sub, slot=slot)
            built.flags.extend(
                Problem(f"{ins.subform_api_name}.{p.field}", p.value_class, p.reason, p.rule, "dropped")
                for p in sub.flags + sub.quarantine
            )
            plans.append(sub.record)
        if plans:
            built.record[ins.subform_api_name] = plans

    # -- folded practice fields ---------------------------------------------

    def practice_values(self, stream: StreamSpec) -> Iterator[tuple[int, dict[str, Any]]]:
        """(patid, value row) in patid order, key order within: the values a patient's record folds."""
        for row in self.rows(stream, order_by=["patid", *stream.key]):
            if row.get("patid") is not None and not self.skip_rule(stream, row):
                yield int(row["patid"]), row

    def account_practice_values(self, stream: StreamSpec) -> None:
        """Each value was folded into its patient's record; here it is accounted for."""
        obj = stream.object
        for row in self.rows(stream):
            admitted = self.admit(stream, row, "Contacts")
            if admitted is None:
                continue
            sid, parent, acc = admitted
            fmap = self.spec.practice_fields.get(row.get("label") or "")
            if fmap is None:
                self.add_skip(obj, "Contacts", sid, "practice_field_not_in_spec",
                              "label not mapped in practice_fields; see `dentrix-zoho map propose`")
                continue
            if parent is not None and parent.state == "Leads":
                self.add_skip(obj, "Leads", sid, "practice_field_on_lead",
                              "practice-defined fields are Contact custom fields; Leads do not carry them")
                continue
            check = Built({})
            transform_fields([fmap], row, self.ctx, check)
            enforce_metadata(check, {fmap.target: self.meta["Contacts"].get(fmap.target, {})}, self.policy([fmap]))
            dropped = [p for p in check.flags + check.quarantine if p.action in {"dropped", "quarantine"}]
            if dropped:
                self.add_quarantine(obj, "Contacts", sid, [_with_action(p, "quarantine") for p in dropped])
            else:
                acc.shaped += 1

    # -- child streams ------------------------------------------------------

    def shape_children(self, stream: StreamSpec) -> None:
        obj = stream.object
        for row in self.rows(stream):
            new_patient = stream.kind == "appointment" and not row.get(stream.parent_key or "")
            admitted = self.admit(stream, row, stream.module, needs_parent=not new_patient)
            if admitted is None:
                continue
            sid, parent, acc = admitted
            extra_flags: list[Problem] = []
            if new_patient:
                if self.sample is not None:
                    acc.out_of_sample += 1  # a new-patient appointment belongs to no sampled patient
                    continue
                parent, extra_flags = self.new_patient_parent(row)
            built = Built({}, flags=extra_flags)
            transform_fields(stream.fields, row, self.ctx, built, rejected=self.rejected_columns(stream, row))
            links = self.child_links(stream, parent) | self.owner_link(row.get(stream.owner_provider or ""))
            if stream.module == "Notes":
                self.emit_note(stream, obj, sid, built, links, acc)
                continue
            enforce_metadata(built, self.meta[stream.module], self.policy(stream.fields))
            if not built.ok:
                self.add_quarantine(obj, stream.module, sid, built.quarantine)
                self.add_flags(obj, stream.module, sid, built.flags)
                continue
            self.add_flags(obj, stream.module, sid, built.flags)
            self.emit(stream.module, obj, sid, built.record, links)
            acc.shaped += 1

    def new_patient_parent(self, row: Mapping[str, Any]) -> tuple[_Parent | None, list[Problem]]:
        """Link a patid-0 appointment to the one patient its name (and phone) matches, or make
        a Lead for it (spec ``new_patient_leads``); a Lead is related to the Event by What_Id."""
        last = apply("split_name", row.get("patname"), {"part": "last"}, self.ctx).value
        first = apply("split_name", row.get("patname"), {"part": "first"}, self.ctx).value
        candidates = self.by_name.get((norm(last), norm(first)), []) if last else []
        if len(candidates) > 1:
            phone = digits(row.get("phone"))
            candidates = [p for p in candidates if phone and phone in self.phones.get(p, ())]
        if len(candidates) == 1:
            parent = self.patients.get(candidates[0])
            if parent is not None and parent.state in {"Contacts", "Leads"}:
                return parent, [Problem("Who_Id", "patient", "new_patient_matched_existing_patient",
                                        "new_patient:match", "linked")]
        spec = self.spec.new_patient_leads
        if spec is None:
            return None, []
        built = Built({})
        transform_fields(spec.fields, row, self.ctx, built)
        built.record["Lead_Status"] = spec.lead_status
        enforce_metadata(built, self.meta["Leads"], self.policy(spec.fields))
        lead_sid = self.sid("appt_new_patient", row["apptid"])
        if not built.ok:
            return None, [_with_action(p, "no_lead") for p in built.quarantine]
        self.add_flags("appt", "Leads", lead_sid, built.flags)
        self.emit("Leads", "appt", lead_sid, built.record, self.owner_link(row.get("provid")))
        return _Parent("Leads", lead_sid), [Problem("Who_Id", "patient", "new_patient_lead_created",
                                                    "new_patient:lead", "linked")]

    def emit_note(self, stream: StreamSpec, obj: str, sid: str, built: Built, links: dict[str, Any],
                  acc: ObjectAccount) -> None:
        """Notes longer than Zoho's Note_Content limit are split into labelled parts (or quarantined)."""
        limit = self.spec.notes.content_limit
        content = built.record.get("Note_Content")
        parts = [content]
        if isinstance(content, str) and len(content) > limit:
            if self.spec.notes.overflow == "quarantine":
                built.quarantine.append(Problem("Note_Content", value_class(content), "note_too_long",
                                                "notes:overflow", "quarantine"))
            else:
                parts = split_text(content, limit)
                built.flags.append(Problem("Note_Content", value_class(content), "note_split",
                                           "notes:overflow", f"split:{len(parts)}"))
        if len(parts) == 1:
            enforce_metadata(built, self.meta["Notes"], self.policy(stream.fields))
        if not built.ok:
            self.add_quarantine(obj, "Notes", sid, built.quarantine)
            self.add_flags(obj, "Notes", sid, built.flags)
            return
        self.add_flags(obj, "Notes", sid, built.flags)
        if len(parts) == 1:
            self.emit("Notes", obj, sid, built.record, links)
        else:
            title = str(built.record.get("Note_Title") or "Note")
            for i, part in enumerate(parts, start=1):
                suffix = f" (part {i} of {len(parts)})"
                record = dict(built.record, Note_Content=part, Note_Title=title[: 255 - len(suffix)] + suffix)
                self.emit("Notes", obj, f"{sid}-p{i}", record, links)
        acc.shaped += 1

    # -- folded procedure history -------------------------------------------

    def shape_procedure_history(self, stream: StreamSpec) -> None:
        """One note per patient: the rows come grouped by patient, each group folded when it ends."""
        obj = stream.object
        parent_key = stream.parent_key or "patid"
        group: tuple[int, _Parent] | None = None
        items: list[tuple[tuple[Any, Any], str]] = []
        for row in self.rows(stream, order_by=[parent_key, *stream.key]):
            admitted = self.admit(stream, row, "Notes")
            if admitted is None:
                continue
            sid, parent, acc = admitted
            assert parent is not None
            patid = int(row[parent_key])
            if group is None or group[0] != patid:
                if group is not None:
                    self.emit_history(stream, *group, items)
                group, items = (patid, parent), []
            line, flags = self.history_line(row)
            self.add_flags(obj, "Notes", sid, flags)
            items.append(((row.get("procdate") or dt.datetime.min, row[stream.key[0]]), line))
            acc.shaped += 1
        if group is not None:
            self.emit_history(stream, *group, items)

    def emit_history(self, stream: StreamSpec, patid: int, parent: _Parent,
                     items: list[tuple[tuple[Any, Any], str]]) -> None:
        lines = [line for _sort, line in sorted(items, key=lambda item: item[0])]
        built = Built({})
        transform_fields(stream.fields, {}, self.ctx, built)
        built.record["Note_Content"] = "Date | CDT | Description | Tooth | Surface | Fee | Provider\n" + "\n".join(lines)
        links = self.child_links(stream, parent) | self.owner_link(parent.provider)
        history_sid = self.sid("procedure_history", patid)
        self.emit_note(stream, stream.object, history_sid, built, links, ObjectAccount())

    def history_line(self, row: Mapping[str, Any]) -> tuple[str, list[Problem]]:
        flags: list[Problem] = []

        def take(transform_name: str, value: Any, fname: str) -> str:
            outcome = apply(transform_name, value, {}, self.ctx)
            if outcome.problem:
                flags.append(Problem(fname, value_class(value), outcome.problem, f"transform:{transform_name}",
                                     "marked_invalid_in_note"))
                return "(invalid)"
            return "" if outcome.value is None else str(outcome.value)

        start, end = row.get("toothrangestart"), row.get("toothrangeend")
        tooth_raw = None if start is None else (str(start) if end in (None, start) else f"{start}-{end}")
        fee = apply("currency", row.get("amt"), {}, self.ctx).value
        day = apply("date", row.get("procdate"), {}, self.ctx).value or ""
        parts = [
            day,
            take("cdt_code", row.get("adacode"), "Last_CDT_Code"),
            str(row.get("proc_descript") or ""),
            take("tooth", tooth_raw, "Last_Procedure_Tooth"),
            take("surfaces", row.get("surfacestring"), "Last_Procedure_Surface"),
            "" if fee is None else f"{fee:.2f}",
            str(row.get("provid") or ""),
        ]
        return " | ".join(parts), flags

    # -- attachments --------------------------------------------------------

    def file_status(self, path: Path) -> tuple[str, int | None]:
        if not path.is_file():
            return "missing", None
        size = path.stat().st_size
        return ("over_limit" if size > self.spec.attachments.max_bytes else "ok"), size

    def shape_documents(self, stream: StreamSpec) -> None:
        obj = stream.object
        for row in self.rows(stream):
            admitted = self.admit(stream, row, "Attachments")
            if admitted is None:
                continue
            sid, parent, acc = admitted
            ref = str(row.get("file_ref") or "").replace("\\", "/").lstrip("/")
            if not ref or ".." in ref.split("/"):
                self.add_quarantine(obj, "Attachments", sid, [Problem("file_ref", value_class(ref or None),
                                                                      "file_path_invalid", "attachments", "quarantine")])
                continue
            self.add_attachment(stream, obj, sid, self.image_root / ref, parent=parent, acc=acc)

    def add_attachment(self, stream: StreamSpec, obj: str, sid: str, path: Path, *,
                       parent: _Parent | None, acc: ObjectAccount) -> None:
        status, size = self.file_status(path)
        links = self.child_links(stream, parent)
        record: dict[str, Any] = {"File_Name": path.name}
        if size is not None:
            record["Size"] = str(size)
        self.emit("Attachments", obj, sid, record, links, file_path=str(path), size_bytes=size,
                  file_status=status, parent=links.get("Parent_Id"))
        if status == "ok":
            acc.shaped += 1
            return
        # Listed in the manifest with its status AND held back: the loader uploads only "ok".
        self.module_counts("Attachments").valid -= 1
        self.add_quarantine(obj, "Attachments", sid, [Problem("file", "file", f"file_{status}", "attachments",
                                                              "quarantine")])

    def shape_ledger_pdfs(self, stream: StreamSpec) -> None:
        """Guarantors in guarid order, merged with their ledger lines in the same order."""
        obj = stream.object
        lines = _Groups(self.ledger_lines() if self.ledger_pdf_dir is not None else iter(()))
        practice = self.practice_name()
        for row in self.rows(stream, order_by=["guarid", *stream.key]):
            admitted = self.admit(stream, row, "Attachments")
            if admitted is None:
                continue
            sid, parent, acc = admitted
            assert parent is not None
            if self.ledger_pdf_dir is None:
                self.add_skip(obj, "Attachments", sid, "ledger_pdf_dir_not_given",
                              "no folder was given for the generated ledger PDFs")
                continue
            guarid = int(row["guarid"])
            balance = sum(
                (row.get(c) or Decimal(0) for c in ("aging0to30", "aging31to60", "aging61to90", "aging91plus")),
                Decimal(0),
            )
            path = self.ledger_pdf_dir / f"ledger_{self.office_id}_{guarid}.pdf"
            render_ledger_pdf(path, account_ref=parent.source_id, practice_name=practice, as_of=self.as_of,
                              lines=lines.take(guarid), balance_due=balance)
            self.add_attachment(stream, obj, sid, path, parent=parent, acc=acc)

    def ledger_lines(self) -> Iterator[tuple[int, LedgerLine]]:
        """(guarid, line) in guarid order, entry order (proclogid) within: the statement sorts
        by day, so lines of one day keep the order they were entered in."""
        if "fullproclog" not in self.staged_tables:
            return
        procedure = self.spec.query_params.get("proclog_procedure", 0)
        for row in self.query(
            "SELECT f.guarid, f.procdate, c.adacode, c.descript, f.amt, f.provid, f.proclogclass "
            "FROM fullproclog f LEFT JOIN proccode c ON c.proccodeid = f.proccodeid "
            "WHERE f.guarid IS NOT NULL ORDER BY f.guarid, f.proclogid"
        ):
            day, amt = row["procdate"], row["amt"]
            is_proc = row["proclogclass"] == procedure
            yield int(row["guarid"]), LedgerLine(
                day.date() if isinstance(day, dt.datetime) else day,
                (row["adacode"] or "") if is_proc else "",
                (row["descript"] or "") if is_proc else ("Payment" if (amt or 0) < 0 else "Adjustment"),
                Decimal(str(amt or 0)),
                str(row["provid"] or ""),
            )

    def practice_name(self) -> str:
        if "rsc" in self.staged_tables:
            with self.reader() as cur:
                row = cur.execute("SELECT practicename FROM rsc WHERE rsctype = 0 LIMIT 1").fetchone()
            if row and row[0]:
                return str(row[0])
        return "Practice"

    # -- run ----------------------------------------------------------------

    def run(self) -> ShapeSummary:
        ensure_tables(self.conn)
        self.find_staged_tables()
        self.load_rejects()
        with memory_budget(self.conn, SHAPING_MEMORY_LIMIT), self.writer:
            self.shape_streams()
            for name, acc in sorted(self.summary.objects.items()):
                self.writer.add("accounting", {"office_id": self.office_id, "source_object": name, **vars(acc)})
        log.info("shaped office %s: balanced=%s, objects=%d", self.office_id, self.summary.balanced,
                 len(self.summary.objects))
        return self.summary

    def shape_streams(self) -> None:
        """Patients first (children look their parent up), folded practice values after them."""
        streams = self.spec.streams
        available = [s for s in streams.values() if s.object in self.staged_tables]
        self.summary.missing_objects = sorted({s.object for s in streams.values()} - self.staged_tables)
        for missing in self.summary.missing_objects:
            log.warning("source object %s is not staged; its stream is not shaped", missing)
        practice_stream = next((s for s in available if s.kind == "practice_field"), None)
        self.progress.total = len(available)
        for stream in available:
            if stream.kind == "patient":
                with self.under_way(stream):
                    self.shape_patients(stream, practice_stream)
        if practice_stream is not None:
            with self.under_way(practice_stream):
                self.account_practice_values(practice_stream)
        for stream in available:
            with self.under_way(stream):
                if stream.kind in {"appointment", "recall", "journal", "note", "prescription", "audit_only"}:
                    self.shape_children(stream)
                elif stream.kind == "procedure_history":
                    self.shape_procedure_history(stream)
                elif stream.kind == "document":
                    self.shape_documents(stream)
                elif stream.kind == "ledger_pdf":
                    self.shape_ledger_pdfs(stream)

    @contextlib.contextmanager
    def under_way(self, stream: StreamSpec) -> Iterator[None]:
        self.stream_under_way, self.rows_read = stream.object, 0
        yield
        # The second pass walks every stream; one shaped in the first counts once.
        if stream.object not in self.streams_done:
            self.streams_done.add(stream.object)
            self.progress.advance(1, detail=f"{stream.object}: {self.rows_read:,} rows read")


class _Groups:
    """Rows of a query ordered by an integer key, handed out one key at a time: a merge join
    with another query in the same order, holding one group in memory."""

    def __init__(self, rows: Iterator[tuple[int, Any]]) -> None:
        self.rows = rows
        self.head = next(self.rows, None)
        self.last: int | None = None

    def take(self, key: int) -> list[Any]:
        if self.last is not None and key < self.last:
            raise RuntimeError(f"merge out of order: key {key} asked after {self.last}")
        self.last = key
        group: list[Any] = []
        while self.head is not None and self.head[0] <= key:
            if self.head[0] == key:
                group.append(self.head[1])
            self.head = next(self.rows, None)
        return group


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _with_action(p: Problem, action: str) -> Problem:
    return Problem(p.field, p.value_class, p.reason, p.rule, action)


def shape_all(
    duckdb_conn: duckdb.DuckDBPyConnection,
    spec: MappingSpec,
    *,
    office_id: str,
    as_of: dt.date,
    image_root: Path,
    field_metadata: dict[str, list[dict[str, Any]]] | None = None,
    sample_source_ids: set[str] | None = None,
    ledger_pdf_dir: Path | None = None,
    loaded_modules: Mapping[str, str] | None = None,
) -> ShapeSummary:
    """Shape one office's staged tables into ``zoho_shaped.*`` (this office's rows replaced).

    ``sample_source_ids``: patient Source_System_IDs of the sample; their responsible parties
    and every child row come along, everything else counts as out of sample.
    ``ledger_pdf_dir``: where the guarantors' ledger PDFs are written (None: not generated,
    skipped by the named rule ``ledger_pdf_dir_not_given``).
    ``loaded_modules``: patient Source_System_ID -> the module its live Zoho record is in (the
    ledger's crosswalk, ``Ledger.live_modules``); such a patient keeps that module.
    """
    shaper = _Shaper(
        duckdb_conn, spec, office_id=office_id, as_of=as_of, image_root=Path(image_root),
        field_metadata_live=field_metadata, sample_source_ids=sample_source_ids, ledger_pdf_dir=ledger_pdf_dir,
        loaded_modules=loaded_modules,
    )
    return shaper.run()

