"""The re-migration plan: every quarantined record, why, and what to do about it (CSV + Markdown).

Rows come from staging (``staging_meta.rejects``: values that did not convert to their
column's type, listed whether the record was then held back or loaded without the field),
from shaping (``zoho_shaped.quarantine``) and from the load (the ledger's open quarantine). The files name source ids and reasons, never values, but they sit in the
owner-only reports folder with everything else that points at patients.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load.reports_io import private_dir, write_private
from dentrix_zoho.load.shaped import open_duckdb, table_exists
from dentrix_zoho.mapping.ids import source_system_id
from dentrix_zoho.mapping.integrity import DUPLICATE_SOURCE_KEY
from dentrix_zoho.mapping.outputs import OUTPUT_SCHEMA
from dentrix_zoho.mapping.records import STAGING_REJECT
from dentrix_zoho.mapping.spec import MappingSpec, load_spec
from dentrix_zoho.source.catalog import CATALOG
from dentrix_zoho.staging.rejects import CLEANED_REASONS, STAGING_CLEANED, office_rejects

COLUMNS = ("object", "source_id", "field", "value_class", "reason", "stage", "action")

# Most specific first: the first prefix that matches gives the advice.
_ACTIONS: tuple[tuple[str, str], ...] = (
    ("zoho_rejected INVALID_DATA", "Zoho refused the value of this field: add the value to the Zoho picklist or fix "
                                   "the value (or its value map) in Dentrix, then run the delta load"),
    ("zoho_rejected MANDATORY_NOT_FOUND", "a required Zoho field is empty: fill it in Dentrix, then run the delta load"),
    ("zoho_rejected DUPLICATE_DATA", "another Zoho record holds this unique value: merge the records, then run the delta load"),
    ("zoho_rejected", "Zoho refused the record: read the code, correct the source or the map, then run the delta load"),
    ("module_changed", "the patient is in Zoho in the other module (a Contact now routed as a Lead, or the other way): "
                       "shape again (shaping keeps a loaded patient where it is), or convert or retire the record in "
                       "Zoho by hand, then run the delta load"),
    ("crosswalk_conflict", "two source records matched one Zoho record: de-duplicate them in Dentrix, then run the delta load"),
    ("parent_not_loaded", "the parent patient is not in Zoho: fix the parent's quarantine first; this record follows on the next run"),
    ("parent_quarantined", "the parent patient is quarantined: fix the parent first; this record follows on the next run"),
    ("orphan", "no patient owns this record in Dentrix: attach it to a patient or accept that it is not migrated"),
    ("file_missing", "the file is not in the image folder: restore it there, then run the attachments step again"),
    ("file_over_limit", "the file is larger than Zoho's 20 MB: compress or split it (or keep it outside Zoho), then run again"),
    ("file_path_invalid", "the document's path is unusable: correct it in Dentrix, then run the attachments step again"),
    ("human_edited", "a person changed this record in Zoho after the migration wrote it, so the Dentrix change was "
                     "not applied: compare the two and keep one (re-run with human edits set to overwrite to apply Dentrix's)"),
    (STAGING_REJECT, "Dentrix holds a value its column's type cannot hold: fix the value in Dentrix, re-stage, "
                     "then run the delta load"),
    (STAGING_CLEANED, "nothing to do: staging removed characters that are never text (control or invisible "
                      "formatting characters) and migrated the rest of the value; listed so the change is on record"),
    ("note_too_long", "the note is longer than Zoho allows: shorten it, or set notes.overflow to split in the map"),
    (DUPLICATE_SOURCE_KEY, "several Dentrix rows hold this one key (a conversion or a copied table left them): keep "
                           "one in Dentrix (delete or renumber the others), re-stage, then run the delta load; none "
                           "of them is sent until then, so that no record is written twice"),
    ("mandatory_missing", "a field Zoho requires is empty: fill it in Dentrix (or give the map a default), re-stage, "
                          "then run the delta load"),
    ("required_value_missing", "a field the map requires is empty: fill it in Dentrix (or relax the field's rule in "
                               "the map), re-stage, then run the delta load"),
    ("bad_format", "the value is not in the form the Zoho field takes (e-mail, phone, date): correct it in Dentrix, "
                   "re-stage, then run the delta load"),
    ("wrong_type", "the value is not of the Zoho field's type: correct it in Dentrix or the field's transform in "
                   "the map, re-stage, then run the delta load"),
    ("not_in_picklist", "the value is not one of the Zoho picklist's values: add it to the picklist or to the "
                        "field's value map, then run the delta load"),
    ("too_long", "the value is longer than the Zoho field allows: shorten it in Dentrix, or set the field's "
                 "on_invalid to truncate in the map, then run the delta load"),
    ("unknown_field", "the map names a field Zoho does not have: create it (schema setup) or correct the map"),
)
DEFAULT_ACTION = "review the value in Dentrix, correct it or the map, re-stage and run the delta load"


def action_for(reason: str, rule_actions: Mapping[str, str] | None = None) -> str:
    """What a person should do about ``reason``; ``rule_actions`` (``quarantine_rule_actions``) first."""
    if rule_actions and _reason_key(reason) in rule_actions:
        return rule_actions[_reason_key(reason)]
    for prefix, action in _ACTIONS:
        if reason.startswith(prefix):
            return action
    return DEFAULT_ACTION


def quarantine_rule_actions(spec: MappingSpec) -> dict[str, str]:
    """Advice for the map's own quarantine rules, in the words the map gives each rule."""
    return {
        rule.name: f"{rule.reason}: correct the {stream.object} row in Dentrix, re-stage, then run the delta load"
        for stream in spec.streams.values() for rule in stream.quarantine
    }


@dataclass
class RemigrationPlan:
    """Counts only (the paths are where the details are)."""

    csv_path: Path
    markdown_path: Path
    records: int = 0
    rows: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_object: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"records": self.records, "rows": self.rows, "by_reason": dict(self.by_reason),
                "by_object": dict(self.by_object), "csv": str(self.csv_path), "markdown": str(self.markdown_path)}


def _reason_key(reason: str) -> str:
    """The reason without its detail (`zoho_rejected INVALID_DATA (x) [hash]` -> `zoho_rejected INVALID_DATA`)."""
    head = reason.split(":", 1)[0].split(" (", 1)[0].split(" [", 1)[0]
    return head.strip()


_REJECT_WORDS = {
    "not_a_datetime": "is not a date and time",
    "not_a_number": "is not a number",
    "not_a_whole_number": "is not a whole number",
    "not_a_boolean": "is not yes/no (0 or 1)",
    "out_of_range": "is a number the column cannot hold",
    "invalid_encoding": "is not readable text (another encoding, or binary)",
    "control_characters": "holds control characters",
    "too_long": "is longer than the column allows",
    "control_characters_removed": "held control characters",
    "invisible_characters_removed": "held invisible formatting characters (zero-width or bidi)",
}


def staging_reject_rows(con: Any, office_id: str) -> list[dict[str, str]]:
    """Plan rows for the values staging could not convert, each with what a person should do, and
    for the values it cleaned (``staging_cleaned:<reason>``: staged less control or invisible
    characters, nothing to do; listed so the change is on record)."""
    out = []
    for r in office_rejects(con, office_id, cleaned=True):
        obj, column, reason = r["object_name"], r["column_name"], r["reason"]
        what = _REJECT_WORDS.get(reason, "could not be read")
        if reason in CLEANED_REASONS:
            out.append({"object": obj, "source_id": _reject_source_id(office_id, obj, r["source_key"]),
                        "field": column, "value_class": r["value_class"] or "",
                        "reason": f"{STAGING_CLEANED}:{reason}", "stage": "staging",
                        "action": f"nothing to do: the value of {obj}.{column} {what}, which staging removed; "
                                  "the rest of the value was migrated"})
            continue
        if r["whole_row"]:
            sid = f"{office_id}:{obj}:(unidentified row)"
            action = (f"a row whose key column {column} {what} could not be identified and was not staged: "
                      f"find it in Dentrix ({obj}.{column}), fix the key, then re-stage and run the delta load")
        else:
            sid = _reject_source_id(office_id, obj, r["source_key"])
            action = (f"the value of {obj}.{column} {what}: fix the value in Dentrix (column {column}), then "
                      "re-stage and run the delta load (until then the record is held back or sent without "
                      "the field, as its shaping rule says)")
        out.append({"object": obj, "source_id": sid, "field": column, "value_class": r["value_class"] or "",
                    "reason": f"{STAGING_REJECT}:{reason}", "stage": "staging", "action": action})
    return out


def _reject_source_id(office_id: str, obj: str, source_key: str) -> str:
    parts = tuple(source_key.split(":"))
    if obj in CATALOG and len(CATALOG[obj].key) != len(parts):
        parts = (source_key,)
    try:
        return source_system_id(office_id, obj, parts if len(parts) > 1 else parts[0])
    except ValueError:
        return f"{office_id}:{obj}:{source_key or '(empty key)'}"


def plan_rows(duckdb_path: Path, ledger: Ledger, office_id: str,
              rule_actions: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Every plan row, with its action; ``rule_actions`` as ``quarantine_rule_actions`` gives them."""
    rows: dict[tuple[str, str, str, str], dict[str, str]] = {}
    staged: list[dict[str, str]] = []
    with open_duckdb(duckdb_path) as con:
        staged = staging_reject_rows(con, office_id)
        if table_exists(con, "quarantine"):
            for obj, sid, fld, klass, reason in con.execute(
                f"SELECT source_object, source_id, field, value_class, reason FROM {OUTPUT_SCHEMA}.quarantine "
                "WHERE office_id = ? ORDER BY source_object, source_id", [office_id]).fetchall():
                key = (obj, sid, fld or "", _reason_key(reason or ""))
                rows.setdefault(key, {"object": obj, "source_id": sid, "field": fld or "", "value_class": klass or "",
                                      "reason": reason or "", "stage": "shape"})
    for q in ledger.quarantine_rows(status="open"):
        if q.office_id != office_id:
            continue
        key = (q.source_object, q.source_id, q.field or "", _reason_key(q.reason))
        if key in rows:
            continue
        rows[key] = {"object": q.source_object, "source_id": q.source_id, "field": q.field or "",
                     "value_class": q.value_class, "reason": q.reason, "stage": "load"}
    out = []
    if rule_actions is None:
        rule_actions = quarantine_rule_actions(load_spec())
    for row in sorted(rows.values(), key=lambda r: (r["object"], r["source_id"], r["field"], r["reason"])):
        row["action"] = action_for(row["reason"], rule_actions)
        out.append(row)
    return staged + out


def write_remigration_plan(duckdb_path: Path, ledger: Ledger, office_id: str, reports_dir: Path) -> RemigrationPlan:
    folder = private_dir(Path(reports_dir))
    rule_actions = quarantine_rule_actions(load_spec())  # read once, for the rows and the reasons table
    rows = plan_rows(duckdb_path, ledger, office_id, rule_actions)
    plan = RemigrationPlan(folder / f"remigration_plan_{office_id}.csv", folder / f"remigration_plan_{office_id}.md")
    plan.rows = len(rows)
    plan.records = len({(r["object"], r["source_id"]) for r in rows})
    plan.by_reason = dict(sorted(Counter(_reason_key(r["reason"]) for r in rows).items()))
    plan.by_object = dict(sorted(Counter(r["object"] for r in rows).items()))

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_private(plan.csv_path, buffer.getvalue())

    md = [f"# Re-migration plan: office {office_id}", "",
          f"{plan.records} quarantined records ({plan.rows} reasons). Fix the cause, then run the delta load: "
          "fixed records go in, the rest stay listed here.", "",
          "## By reason", "", "| reason | rows | what to do |", "|---|---:|---|"]
    for reason, n in plan.by_reason.items():
        md.append(f"| {_cell(reason)} | {n} | {_cell(action_for(reason, rule_actions))} |")
    md += ["", "## Records", "", "| object | source id | field | value class | reason | stage |",
           "|---|---|---|---|---|---|"]
    md += [f"| {_cell(r['object'])} | {_cell(r['source_id'])} | {_cell(r['field'])} | {_cell(r['value_class'])} | "
           f"{_cell(r['reason'])} | {r['stage']} |" for r in rows]
    staging = [r for r in rows if r["stage"] == "staging"]
    cleaned = [r for r in staging if r["reason"].startswith(f"{STAGING_CLEANED}:")]
    staged = [r for r in staging if not r["reason"].startswith(f"{STAGING_CLEANED}:")]
    if staged:
        md += ["", "## Values staging could not read", "",
               "Each was staged as empty; the record was held back or sent without the field, as its "
               "shaping rule says.", "", "| object | source id | column | value class | what to do |",
               "|---|---|---|---|---|"]
        md += [f"| {_cell(r['object'])} | {_cell(r['source_id'])} | {_cell(r['field'])} | {_cell(r['value_class'])} "
               f"| {_cell(r['action'])} |" for r in staged]
    if cleaned:
        md += ["", "## Values staging cleaned", "",
               "Each was staged and migrated less its control or invisible characters; nothing to do.", "",
               "| object | source id | column | value class | reason |", "|---|---|---|---|---|"]
        md += [f"| {_cell(r['object'])} | {_cell(r['source_id'])} | {_cell(r['field'])} | {_cell(r['value_class'])} "
               f"| {_cell(r['reason'])} |" for r in cleaned]
    write_private(plan.markdown_path, "\n".join(md) + "\n")
    return plan


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
