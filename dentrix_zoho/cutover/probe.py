"""A cheap "did anything change in Dentrix?" probe for the cutover sensor.

One aggregate per object, ``SELECT max(<modified>), count(*) FROM admin.<object>``:
an insert or an edit moves the maximum (Dentrix stamps every write), a delete
lowers the count. The fingerprint is JSON-serialisable so the sensor keeps it as
its cursor. It reads no row values, so it carries no patient data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, NamedTuple

from dentrix_zoho.source.catalog import CatalogObject, base_tables, catalog_object
from dentrix_zoho.source.connection import DentrixConnection, SourceError


class ObjectFingerprint(NamedTuple):
    max_modified: str | None
    row_count: int


Fingerprint = dict[str, ObjectFingerprint]

# The base tables: every one carries automodifiedtimestamp, and the views are built on them.
DEFAULT_PROBE_OBJECTS: tuple[str, ...] = tuple(obj.name for obj in base_tables())


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value).strip() or None


def _resolve(objects: Iterable[str | CatalogObject]) -> list[CatalogObject]:
    return [o if isinstance(o, CatalogObject) else catalog_object(o) for o in objects]


def change_fingerprint(
    source_conn: DentrixConnection, objects: Iterable[str | CatalogObject] = DEFAULT_PROBE_OBJECTS
) -> Fingerprint:
    """``{object: (max modified as text, row count)}``, one aggregate query per object."""
    fingerprint: Fingerprint = {}
    cur = source_conn.cursor()
    try:
        for obj in _resolve(objects):
            table = source_conn.qualified(obj.name)
            if obj.modified_column:
                sql = f"SELECT max({obj.modified_column}), count(*) FROM {table}"
            else:
                sql = f"SELECT NULL, count(*) FROM {table}"
            try:
                cur.execute(sql)
                max_modified, count = cur.fetchone()
            except Exception as exc:  # noqa: BLE001 - every driver has its own error class
                first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
                raise SourceError(f"probing {table} on {source_conn.describe()} failed: {first}") from None
            fingerprint[obj.name] = ObjectFingerprint(_as_text(max_modified), int(count))
    finally:
        cur.close()
    return fingerprint


def fingerprint_changed(old: Mapping[str, ObjectFingerprint] | None, new: Mapping[str, ObjectFingerprint]) -> list[str]:
    """Objects whose fingerprint differs (all of ``new`` when there is no previous one), sorted."""
    if not old:
        return sorted(new)
    return sorted(name for name, value in new.items() if tuple(old.get(name) or ()) != tuple(value))


def fingerprint_to_json(fingerprint: Mapping[str, ObjectFingerprint]) -> str:
    return json.dumps({k: list(v) for k, v in sorted(fingerprint.items())}, separators=(",", ":"))


def fingerprint_from_json(text: str | None) -> Fingerprint | None:
    """The fingerprint kept in a sensor cursor; None for an empty or unreadable cursor."""
    if not text:
        return None
    try:
        data = json.loads(text)
        return {str(k): ObjectFingerprint(v[0], int(v[1])) for k, v in data.items()}
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return None
