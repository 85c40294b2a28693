"""The workflow-rebuild reference: what the practice automated in Dentrix, and how to
rebuild it natively in Zoho (Blueprint, Workflow Rules, Zoho Flow). Nothing is migrated;
this is a document for the practice's Zoho admin. Counts and practice settings only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from dentrix_zoho.mapping.spec import MappingSpec, spec_hash

UNIT_NAMES = {1: "day", 2: "week", 3: "month", 4: "year"}
PROVIDER_TYPES = {0: "hygienist", 1: "dentist"}


def _tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dentrix'").fetchall()}


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return conn.execute(sql, list(params)).fetchall()


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join("" if c is None else str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return out


def build_workflow_reference(conn: duckdb.DuckDBPyConnection, spec: MappingSpec) -> str:
    tables = _tables(conn)
    params = spec.query_params
    lines = [
        "# Workflow-rebuild reference",
        "",
        "Dentrix automations are not migrated. This page lists what the practice had and how to",
        f"rebuild each natively in Zoho CRM. Mapping spec `{spec_hash(spec)[:12]}`; counts only, no patient data.",
        "",
        "## 1. Recall (continuing care) types",
        "",
        "Each pending recall became a Task `Recall: <description> Due` with its due date, owned by",
        "the patient's owner. The interval below is what Dentrix used to set the next due date.",
        "",
    ]
    if {"recalltype", "recallpending"} <= tables:
        rows = _rows(conn, """
            SELECT t._office_id, t.name, t.descript, t.qty, t.unit, t.provtype,
                   (SELECT count(*) FROM dentrix.recallpending r
                    WHERE r.recallid = t.recallid AND r._office_id = t._office_id) AS pending
            FROM dentrix.recalltype t WHERE coalesce(t.patid, 0) = 0 ORDER BY 1, 2""")
        lines += _table(
            ["office", "type", "description", "interval", "provider type", "pending recalls"],
            [(o, n, d, f"{q} {UNIT_NAMES.get(u, 'unit')}{'s' if (q or 0) != 1 else ''}", PROVIDER_TYPES.get(p, p), c)
             for o, n, d, q, u, p, c in rows],
        )
    else:
        lines.append("_recall tables not staged_")
    lines += [
        "",
        "**Rebuild in Zoho.** (a) Workflow Rule on Tasks, *on create/edit* where Subject starts with",
        "`Recall:` and Status = Completed: a Deluge function (or Zoho Flow) creates the next recall",
        "Task with Due_Date = completion date + the interval above. (b) Date-based Workflow Rule on",
        "Tasks: N days before Due_Date, send the recall e-mail template (or SMS through Zoho Flow).",
        "(c) Optionally a Blueprint on Contacts `Recall due -> Scheduled -> Seen` to make the office",
        "record each contact attempt.",
        "",
        "## 2. Appointment statuses",
        "",
    ]
    if "fulldef" in tables:
        lines += _definitions(conn, params.get("deftype_appt_status", 11), "status",
                              spec.value_maps.get("appointment_status"), "Appointment_Status")
    lines += [
        "",
        "**Rebuild in Zoho.** `Appointment_Status` is a picklist on Events (Meetings). A Blueprint on",
        "Events with states Unconfirmed -> Confirmed -> Arrived -> Completed (and Broken / Left",
        "Message side states) reproduces the front-desk flow; each transition can require a note.",
        "",
        "## 3. Appointment types",
        "",
    ]
    if "fulldef" in tables:
        lines += _definitions(conn, params.get("deftype_appt_type", 12), "type",
                              spec.value_maps.get("appointment_type"), "Appointment_Type")
    lines += [
        "",
        "**Rebuild in Zoho.** Use `Appointment_Type` in Workflow Rule criteria (for example a",
        "different confirmation template for New Patient appointments) and in calendar views.",
        "",
        "## 4. Reminder-relevant settings",
        "",
    ]
    if "patient" in tables:
        rows = _rows(conn, """
            SELECT _office_id,
                   count(*) FILTER (WHERE (coalesce(privacyflags, 0) & 1) <> 0),
                   count(*) FILTER (WHERE (coalesce(privacyflags, 0) & 2) <> 0),
                   count(*) FILTER (WHERE emailaddr IS NOT NULL),
                   count(*) FILTER (WHERE pager IS NOT NULL)
            FROM dentrix.patient GROUP BY 1 ORDER BY 1""")
        lines += _table(["office", "no voice calls", "no text / e-mail", "with e-mail", "with mobile"], rows)
        lines += [
            "",
            "The privacy flags became `Do_Not_Call` and `Email_Opt_Out` on Contacts: every reminder",
            "Workflow Rule and Zoho Flow must exclude records where they are true.",
        ]
    if "contact" in tables:
        journal = spec.value_maps.get("journal_type")
        rows = _rows(conn, "SELECT _office_id, contacttype, count(*) FROM dentrix.contact GROUP BY 1, 2 ORDER BY 1, 2")
        lines += ["", "Office-journal entries by channel (migrated as Calls with `Journal_Type`):", ""]
        lines += _table(["office", "contacttype", "channel", "entries"],
                        [(o, t, _mapped(journal, t), n) for o, t, n in rows])
    lines += [
        "",
        "**Rebuild in Zoho.** Appointment reminders: a date-based Workflow Rule on Events,",
        "N hours before `Start_DateTime`, sending an e-mail template; SMS through Zoho Flow (Twilio",
        "or the SMS extension) with the Contact's `Mobile`. Confirmation replies can set",
        "`Appointment_Status` = Confirmed through a Flow webhook.",
        "",
    ]
    if spec.workflow_notes:
        lines += ["## 5. Notes from the mapping spec", ""]
        lines += [f"- **{key}**: {text}" for key, text in sorted(spec.workflow_notes.items())]
        lines.append("")
    return "\n".join(lines)


def _definitions(conn: duckdb.DuckDBPyConnection, deftype: Any, what: str, vmap: Any, field: str) -> list[str]:
    rows = _rows(conn, "SELECT _office_id, defid, descript FROM dentrix.fulldef WHERE deftype = ? ORDER BY 1, 2",
                 [deftype])
    return _table(["office", "Dentrix id", f"Dentrix {what}", f"Zoho {field}"],
                  [(o, i, d, _mapped(vmap, d)) for o, i, d in rows])


def _mapped(vmap: Any, key: Any) -> str:
    if vmap is None or key is None:
        return ""
    text = str(key).strip()
    return str(vmap.values.get(text, vmap.default if vmap.default is not None else "(unmapped)"))


def write_workflow_reference(duckdb_conn: duckdb.DuckDBPyConnection, spec: MappingSpec, out_path: Path) -> Path:
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_workflow_reference(duckdb_conn, spec), encoding="utf-8")
    return out
