"""Shape the staged Dentrix tables of one office into Zoho-ready tables.

Every staged row of a primary object ends in exactly one place: shaped (a
module table, or folded into its parent's record), quarantined (with a reason),
or skipped (by a rule the spec names). ``ShapeSummary`` holds the counts and
checks that identity per object; it never holds patient data.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from dentrix_zoho.mapping.identity import PHONE_COLUMNS, digits, norm, same_person
from dentrix_zoho.mapping.ids import source_system_id
from dentrix_zoho.mapping.ledger_pdf import LedgerLine, render_ledger_pdf
from dentrix_zoho.mapping.metadata import FieldMeta, field_metadata
from dentrix_zoho.mapping.outputs import MODULE_TABLES, ensure_tables, replace_office_rows, row_hash
from dentrix_zoho.mapping.records import Built, Problem, enforce_metadata, split_text, transform_fields
from dentrix_zoho.mapping.routing import Route, route_patient, substitute_query_params
from dentrix_zoho.mapping.spec import MappingSpec, StreamSpec, spec_hash
from dentrix_zoho.mapping.summary import ModuleCounts, ObjectAccount, ShapeSummary
from dentrix_zoho.mapping.transforms import Context, apply
from dentrix_zoho.mapping.validation import value_class

log = logging.getLogger(__name__)

STAGING_SCHEMA = "dentrix"
ACTIVITY_MODULES = {"Events", "Tasks", "Calls"}


@dataclass
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
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.office_id = office_id
        self.as_of = as_of
        self.image_root = image_root
        self.ledger_pdf_dir = ledger_pdf_dir
        self.sample = sample_source_ids
        self.ctx = Context.from_spec(spec, as_of)
        self.meta: dict[str, dict[str, FieldMeta]] = field_metadata(spec, field_metadata_live)
        self.summary = ShapeSummary(office_id, spec_hash(spec), as_of.isoformat())
        self.out: dict[str, list[dict[str, Any]]] = {table: [] for table in MODULE_TABLES.values()}
        self.quarantine: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.flags: list[dict[str, Any]] = []
        self.patients: dict[int, _Parent] = {}
        self.by_name: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.phones: dict[int, set[str]] = {}
        self.staged_tables: set[str] = set()

    # -- plumbing -----------------------------------------------------------

    def sid(self, obj: str, key: Any) -> str:
        return source_system_id(self.office_id, obj, key)

    def account(self, obj: str) -> ObjectAccount:
        return self.summary.objects.setdefault(obj, ObjectAccount())

    def module_counts(self, module: str) -> ModuleCounts:
        return self.summary.modules.setdefault(module, ModuleCounts())

    def office_views(self) -> None:
        rows = self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [STAGING_SCHEMA]
        ).fetchall()
        office = self.office_id.replace("'", "''")
        for (name,) in rows:
            self.staged_tables.add(name)
            self.conn.execute(
                f'CREATE OR REPLACE TEMP VIEW "{name}" AS '
                f"SELECT * FROM {STAGING_SCHEMA}.\"{name}\" WHERE _office_id = '{office}'"
            )

    def sql(self, text: str) -> str:
        return substitute_query_params(self.spec, text, self.as_of)

    def rows(self, stream: StreamSpec) -> list[dict[str, Any]]:
        skips = "".join(f', ({self.sql(rule.when)}) AS "__skip_{i}"' for i, rule in enumerate(stream.skip))
        order = ", ".join(f'q."{k}"' for k in stream.key)
        query = f"SELECT q.*{skips} FROM ({self.sql(stream.query)}) q ORDER BY {order}"
        cursor = self.conn.execute(query)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def key_of(self, stream: StreamSpec, row: Mapping[str, Any]) -> Any:
        values = tuple(row[k] for k in stream.key)
        return values[0] if len(values) == 1 else values

    def skip_rule(self, stream: StreamSpec, row: Mapping[str, Any]) -> tuple[str, str] | None:
        for i, rule in enumerate(stream.skip):
            if row.get(f"__skip_{i}"):
                return rule.name, rule.reason
        return None

    def add_skip(self, obj: str, module: str, source_id: str, rule: str, reason: str) -> None:
        self.account(obj).skipped += 1
        self.module_counts(module).skipped += 1
        self.summary.skip_rules[rule] = self.summary.skip_rules.get(rule, 0) + 1
        self.skipped.append(
            {"office_id": self.office_id, "source_object": obj, "source_id": source_id, "rule": rule, "reason": reason}
        )

    def add_quarantine(self, obj: str, module: str, source_id: str, problems: Iterable[Problem]) -> None:
        self.account(obj).quarantined += 1
        self.module_counts(module).quarantined += 1
        for p in problems:
            self.summary.quarantine_reasons[p.reason] = self.summary.quarantine_reasons.get(p.reason, 0) + 1
            self.quarantine.append(
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
            self.flags.append(
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
        self.out[MODULE_TABLES[module]].append(row)
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
        skip = self.skip_rule(stream, row)
        if skip:
            self.add_skip(obj, module, sid, *skip)
            return None
        if not needs_parent:
            return sid, None, acc
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
        return sid, parent, acc

    # -- patients -----------------------------------------------------------

    def shape_patients(self, stream: StreamSpec, practice_values: dict[int, list[dict[str, Any]]]) -> None:
        obj = stream.object
        rows = self.rows(stream)
        sample_patids = self.sample_patients(rows) if self.sample is not None else None
        pending: list[tuple[dict[str, Any], Route, Built]] = []
        for row in rows:
            acc = self.account(obj)
            acc.staged += 1
            patid = int(row["patid"])
            sid = self.sid(obj, patid)
            self.index_patient(patid, row)
            if sample_patids is not None and patid not in sample_patids:
                acc.out_of_sample += 1
                self.patients[patid] = _Parent("out_of_sample", sid)
                continue
            skip = self.skip_rule(stream, row)
            if skip:
                self.add_skip(obj, "Contacts", sid, *skip)
                self.patients[patid] = _Parent("skipped", sid)
                continue
            route = route_patient(row, self.spec.routing, self.as_of)
            built = Built({})
            transform_fields(stream.fields, row, self.ctx, built)
            if route.module == "Contacts":
                self.practice_fields(built, practice_values.get(patid, []))
                self.insurance(built, row)
            else:
                self.to_lead(built, route)
            enforce_metadata(built, self.meta[route.module], self.policy(stream.fields) | self.policy(
                self.spec.practice_fields.values()) | self.lead_policy(stream))
            if not built.ok:
                self.add_quarantine(obj, route.module, sid, built.quarantine)
                self.add_flags(obj, route.module, sid, built.flags)
                self.patients[patid] = _Parent("quarantined", sid)
                continue
            self.patients[patid] = _Parent(route.module, sid, row.get(stream.owner_provider or ""))
            pending.append((row, route, built))
        self.flag_possible_duplicates(pending)
        for row, route, built in pending:
            patid = int(row["patid"])
            sid = self.sid(obj, patid)
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
        self.phones[patid] = {d for d in (digits(row.get(c)) for c in PHONE_COLUMNS) if d}

    def flag_possible_duplicates(self, pending: list[tuple[dict[str, Any], Route, Built]]) -> None:
        """The same person entered twice (same birth date; similar name, or same mobile or e-mail).
        Flagged on the later record for a person to merge in Zoho; both are sent."""
        by_birth: dict[Any, list[tuple[dict[str, Any], Built]]] = defaultdict(list)
        for row, _route, built in pending:
            if row.get("birthdate") is not None:
                by_birth[row["birthdate"]].append((row, built))
        for group in by_birth.values():
            for i, (later, built) in enumerate(group):
                for earlier, _ in group[:i]:
                    if same_person(earlier, later):
                        built.flags.append(Problem("Last_Name", "patient", "possible_duplicate",
                                                   "dedupe:birth_date_and_name_or_contact", "flagged"))
                        break

    def sample_patients(self, rows: list[dict[str, Any]]) -> set[int]:
        """Sampled patients plus their responsible parties (the Related_Party targets)."""
        chosen = {int(r["patid"]) for r in rows if self.sid("patient", int(r["patid"])) in (self.sample or set())}
        guarantors = {int(r["guarid"]) for r in rows if int(r["patid"]) in chosen and r.get("guarid")}
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

    def load_practice_values(self, stream: StreamSpec) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        rows = self.rows(stream)
        by_patient: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            if row.get("patid") is not None and not self.skip_rule(stream, row):
                by_patient[int(row["patid"])].append(row)
        return rows, by_patient

    def account_practice_values(self, stream: StreamSpec, rows: list[dict[str, Any]]) -> None:
        """Each value was folded into its patient's record; here it is accounted for."""
        obj = stream.object
        for row in rows:
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
            transform_fields(stream.fields, row, self.ctx, built)
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
            candidates = [p for p in candidates if phone and phone in self.phones.get(p, set())]
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
        obj = stream.object
        by_patient: dict[int, list[dict[str, Any]]] = defaultdict(list)
        parents: dict[int, _Parent] = {}
        for row in self.rows(stream):
            admitted = self.admit(stream, row, "Notes")
            if admitted is None:
                continue
            sid, parent, acc = admitted
            assert parent is not None
            patid = int(row[stream.parent_key or "patid"])
            parents[patid] = parent
            line, flags = self.history_line(row)
            self.add_flags(obj, "Notes", sid, flags)
            by_patient[patid].append({"sort": (row.get("procdate") or dt.datetime.min, row[stream.key[0]]),
                                      "line": line})
            acc.shaped += 1
        for patid, items in sorted(by_patient.items()):
            parent = parents[patid]
            lines = [item["line"] for item in sorted(items, key=lambda i: i["sort"])]
            built = Built({})
            transform_fields(stream.fields, {}, self.ctx, built)
            built.record["Note_Content"] = "Date | CDT | Description | Tooth | Surface | Fee | Provider\n" + "\n".join(lines)
            links = self.child_links(stream, parent) | self.owner_link(parent.provider)
            history_sid = self.sid("procedure_history", patid)
            self.emit_note(stream, obj, history_sid, built, links, ObjectAccount())

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
        obj = stream.object
        lines_by_guarantor = self.ledger_lines()
        practice = self.practice_name()
        for row in self.rows(stream):
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
                              lines=lines_by_guarantor.get(guarid, []), balance_due=balance)
            self.add_attachment(stream, obj, sid, path, parent=parent, acc=acc)

    def ledger_lines(self) -> dict[int, list[LedgerLine]]:
        if "fullproclog" not in self.staged_tables:
            return {}
        cursor = self.conn.execute(
            "SELECT f.guarid, f.procdate, c.adacode, c.descript, f.amt, f.provid, f.proclogclass "
            "FROM fullproclog f LEFT JOIN proccode c ON c.proccodeid = f.proccodeid"
        )
        procedure = self.spec.query_params.get("proclog_procedure", 0)
        out: dict[int, list[LedgerLine]] = defaultdict(list)
        for guarid, day, code, descript, amt, provid, klass in cursor.fetchall():
            if guarid is None:
                continue
            is_proc = klass == procedure
            out[int(guarid)].append(LedgerLine(
                day.date() if isinstance(day, dt.datetime) else day,
                (code or "") if is_proc else "",
                (descript or "") if is_proc else ("Payment" if (amt or 0) < 0 else "Adjustment"),
                Decimal(str(amt or 0)),
                str(provid or ""),
            ))
        return out

    def practice_name(self) -> str:
        if "rsc" in self.staged_tables:
            row = self.conn.execute("SELECT practicename FROM rsc WHERE rsctype = 0 LIMIT 1").fetchone()
            if row and row[0]:
                return str(row[0])
        return "Practice"

    # -- run ----------------------------------------------------------------

    def run(self) -> ShapeSummary:
        ensure_tables(self.conn)
        self.office_views()
        try:
            self.shape_streams()
            self.write()
        finally:
            for name in self.staged_tables:
                self.conn.execute(f'DROP VIEW IF EXISTS temp.main."{name}"')
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
        practice_rows: list[dict[str, Any]] = []
        practice_values: dict[int, list[dict[str, Any]]] = {}
        if practice_stream is not None:
            practice_rows, practice_values = self.load_practice_values(practice_stream)
        for stream in available:
            if stream.kind == "patient":
                self.shape_patients(stream, practice_values)
        if practice_stream is not None:
            self.account_practice_values(practice_stream, practice_rows)
        for stream in available:
            if stream.kind in {"appointment", "recall", "journal", "note", "prescription", "audit_only"}:
                self.shape_children(stream)
            elif stream.kind == "procedure_history":
                self.shape_procedure_history(stream)
            elif stream.kind == "document":
                self.shape_documents(stream)
            elif stream.kind == "ledger_pdf":
                self.shape_ledger_pdfs(stream)

    def write(self) -> None:
        """Replace this office's rows in one transaction: readers never see half a shaping."""
        self.conn.execute("BEGIN TRANSACTION")
        try:
            for table, rows in self.out.items():
                replace_office_rows(self.conn, table, self.office_id, rows)
            replace_office_rows(self.conn, "quarantine", self.office_id, self.quarantine)
            replace_office_rows(self.conn, "skipped", self.office_id, self.skipped)
            replace_office_rows(self.conn, "flags", self.office_id, self.flags)
            replace_office_rows(self.conn, "accounting", self.office_id, [
                {"office_id": self.office_id, "source_object": name, **vars(acc)}
                for name, acc in sorted(self.summary.objects.items())
            ])
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


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
) -> ShapeSummary:
    """Shape one office's staged tables into ``zoho_shaped.*`` (this office's rows replaced).

    ``sample_source_ids``: patient Source_System_IDs of the sample; their responsible parties
    and every child row come along, everything else counts as out of sample.
    ``ledger_pdf_dir``: where the guarantors' ledger PDFs are written (None: not generated,
    skipped by the named rule ``ledger_pdf_dir_not_given``).
    """
    shaper = _Shaper(
        duckdb_conn, spec, office_id=office_id, as_of=as_of, image_root=Path(image_root),
        field_metadata_live=field_metadata, sample_source_ids=sample_source_ids, ledger_pdf_dir=ledger_pdf_dir,
    )
    return shaper.run()

