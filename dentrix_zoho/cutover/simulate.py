"""The practice keeps working during cutover: edits, new rows and deletions in a synthetic (SQLite) practice.

For the delta benchmark, tests and demos only: it writes to the SQLite stand-in,
never to a real Dentrix database (which is read-only to us: writes need the Dentrix
Write API licence and corrupt c-tree data, http://support.tabs3.com/main/R10017.htm). Every write is stamped as Dentrix stamps it (``automodifiedtimestamp``), and a deleted
appointment leaves an ``appthist`` row with ``deletedflag = 1``, as Dentrix does.
The returned ``SimulatedActivity`` lists the source keys touched, spelled like
``_source_key``, so a caller can check that change detection found exactly them.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dentrix_zoho.source.catalog import BASE_MODIFIED, CATALOG, CatalogObject

ChangeKind = str  # "new" | "changed" | "deleted"

DEFAULT_ACTIVE_OBJECTS: tuple[str, ...] = (
    "patient", "address", "appt", "fullproclog", "recallpending", "clinicalnote", "contact", "aging",
)

# A realistic edit per object; objects not listed get +1 on their first numeric non-key column.
_EDITS: dict[str, tuple[str, str]] = {
    "patient": ("emailaddr", "'edited' || rowid || '@example.org'"),
    "address": ("phone", "'(801)555-0' || (rowid % 1000)"),
    "appt": ("apptlen", "coalesce(apptlen, 0) + 10"),
    "fullproclog": ("amt", "coalesce(amt, 0) + 1"),
    "recallpending": ("duedate", "datetime(coalesce(duedate, '2026-01-01 00:00:00'), '+7 days')"),
    "clinicalnote": ("notetext", "coalesce(notetext, '') || ' Addendum.'"),
    "contact": ("title", "'Edited journal entry ' || rowid"),
    "aging": ("aging0to30", "coalesce(aging0to30, 0) + 1"),
}


@dataclass
class SimulatedActivity:
    """Source keys touched, per object and kind of change."""

    keys: dict[str, dict[ChangeKind, set[str]]] = field(default_factory=dict)

    def add(self, object_name: str, change: ChangeKind, key: str) -> None:
        self.keys.setdefault(object_name, {}).setdefault(change, set()).add(key)

    def count(self, object_name: str | None = None, change: ChangeKind | None = None) -> int:
        return sum(
            len(keys)
            for name, kinds in self.keys.items()
            if object_name in (None, name)
            for kind, keys in kinds.items()
            if change in (None, kind)
        )

    def as_rows(self) -> set[tuple[str, str, str]]:
        """``{(object, source_key, change)}``, comparable with ``staging_meta.changes``."""
        return {(name, key, kind) for name, kinds in self.keys.items() for kind, keys in kinds.items() for key in keys}


def _source_key(values: tuple[Any, ...]) -> str:
    parts = []
    for value in values:
        if value is None:
            parts.append("")
        elif isinstance(value, float) and value.is_integer():
            parts.append(str(int(value)))
        else:
            parts.append(str(value).strip())
    return ":".join(parts)


def _present_columns(conn: sqlite3.Connection, obj: CatalogObject) -> list[str]:
    present = {row[1].lower() for row in conn.execute(f"PRAGMA table_info({obj.name})")}
    return [c for c in obj.column_names if c in present]


def _edit_for(obj: CatalogObject) -> tuple[str, str]:
    if obj.name in _EDITS:
        return _EDITS[obj.name]
    for column in obj.columns:
        if column.name not in obj.key and column.type in ("INTEGER", "SMALLINT", "DECIMAL"):
            return column.name, f"coalesce({column.name}, 0) + 1"
    raise ValueError(f"no numeric column to edit in {obj.name}")


def _new_key_column(obj: CatalogObject) -> str:
    for name in obj.key:
        if obj.column(name).type in ("INTEGER", "SMALLINT"):
            return name
    raise ValueError(f"{obj.name} has no integer key column to give new rows")


class _Clock:
    """Distinct, increasing write stamps from ``start`` on (one second apart)."""

    def __init__(self, start: datetime) -> None:
        self._next = start

    def tick(self) -> str:
        stamp, self._next = self._next, self._next + timedelta(seconds=1)
        return stamp.strftime("%Y-%m-%d %H:%M:%S")


def simulate_activity(
    db: Path | str,
    *,
    at: datetime,
    fraction: float = 0.01,
    seed: int = 1,
    objects: tuple[str, ...] = DEFAULT_ACTIVE_OBJECTS,
) -> SimulatedActivity:
    """Touch ``fraction`` of the rows of each object: half edited, three tenths inserted, a fifth deleted.

    Writes are stamped from ``at`` on (one second apart), so ``at`` should be after
    the staged snapshot's newest modified time.
    """
    rng = random.Random(f"cutover-activity:{seed}")
    clock = _Clock(at)
    activity = SimulatedActivity()
    conn = sqlite3.connect(str(db))
    try:
        with conn:
            for name in objects:
                obj = CATALOG[name]
                rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {name} ORDER BY rowid")]
                touched = max(1, round(len(rowids) * fraction))
                edits, inserts = touched // 2, (touched * 3) // 10
                deletes = touched - edits - inserts
                picked = rng.sample(rowids, min(len(rowids), edits + deletes))
                edit_rows, delete_rows = picked[:edits], picked[edits:]
                template = rng.choice(rowids)
                for rowid in edit_rows:
                    activity.add(name, "changed", _edit_row(conn, obj, rowid, clock.tick()))
                for _ in range(inserts):
                    activity.add(name, "new", _copy_row(conn, obj, template, clock.tick()))
                for rowid in delete_rows:
                    key = _delete_row(conn, obj, rowid)
                    activity.add(name, "deleted", key)
                    if name == "appt":
                        activity.add("appthist", "new", record_appointment_deletion(conn, int(key), clock.tick()))
    finally:
        conn.close()
    return activity


def _key_of(conn: sqlite3.Connection, obj: CatalogObject, rowid: int) -> str:
    row = conn.execute(f"SELECT {', '.join(obj.key)} FROM {obj.name} WHERE rowid = ?", [rowid]).fetchone()
    return _source_key(tuple(row))


def _edit_row(conn: sqlite3.Connection, obj: CatalogObject, rowid: int, stamp: str) -> str:
    column, expression = _edit_for(obj)
    conn.execute(
        f"UPDATE {obj.name} SET {column} = {expression}, {BASE_MODIFIED} = ? WHERE rowid = ?", [stamp, rowid]
    )
    return _key_of(conn, obj, rowid)


def _copy_row(conn: sqlite3.Connection, obj: CatalogObject, template_rowid: int, stamp: str) -> str:
    columns = _present_columns(conn, obj)
    key_column = _new_key_column(obj)
    highest = conn.execute(f"SELECT coalesce(max({key_column}), 0) FROM {obj.name}").fetchone()[0]
    values = [
        "?" if c == key_column else ("?" if c == BASE_MODIFIED else c)
        for c in columns
    ]
    params = [int(highest) + 1 if c == key_column else stamp for c in columns if c in (key_column, BASE_MODIFIED)]
    cur = conn.execute(
        f"INSERT INTO {obj.name} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {obj.name} WHERE rowid = ?",
        [*params, template_rowid],
    )
    return _key_of(conn, obj, int(cur.lastrowid))


def _delete_row(conn: sqlite3.Connection, obj: CatalogObject, rowid: int) -> str:
    key = _key_of(conn, obj, rowid)
    conn.execute(f"DELETE FROM {obj.name} WHERE rowid = ?", [rowid])
    return key


def record_appointment_deletion(conn: sqlite3.Connection, apptid: int, stamp: str) -> str:
    """The ``appthist`` row Dentrix writes when an appointment is deleted; returns its key."""
    history_id = int(conn.execute("SELECT coalesce(max(apptid), 0) + 1 FROM appthist").fetchone()[0])
    day, clock_time = stamp.split(" ")
    conn.execute(
        f"""INSERT INTO appthist (apptid, parentapptid, modifieddate, modifiedtime, status, appttype,
                createflag, lastflag, deletedflag, {BASE_MODIFIED})
            VALUES (?, ?, ?, ?, 'FIRM', 'General', 0, 1, 1, ?)""",
        [history_id, apptid, f"{day} 00:00:00", int(clock_time[:2] + clock_time[3:5]), stamp],
    )
    return str(history_id)
