"""Row-level integrity rules the shaper applies before building a record.

Two kinds, both ending in a quarantine row (never a silent merge or a made-up value):

* a **duplicated source key**: c-treeACE does not enforce a table's key, so two staged rows
  can carry one ``patid`` (or ``apptid`` ...). Both would get the same Source_System_ID and
  the second upsert would silently overwrite the first; which row is right is for a person
  to decide, so every row of such a key is held back (``duplicate_source_key``).
* a stream's **quarantine rules** (spec ``quarantine:``, a DuckDB boolean per rule, like the
  skip rules): a row that is present but impossible, e.g. an appointment at hour 25.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

DUPLICATE_SOURCE_KEY = "duplicate_source_key"


def duplicate_keys(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str, key: Sequence[str], office_id: str
) -> set[tuple[Any, ...]]:
    """Key values held by more than one staged row of ``schema.table`` for this office.

    Empty when the staged table lacks a key column (a stream keyed on a derived column):
    such keys come from the stream's query, not from a source row."""
    columns = {
        name for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()
    }
    if not key or not set(key) <= columns:
        return set()
    cols = ", ".join(_quote(k) for k in key)
    rows = conn.execute(
        f"SELECT {cols} FROM {_quote(schema)}.{_quote(table)} WHERE _office_id = ? "
        f"GROUP BY {cols} HAVING count(*) > 1",
        [office_id],
    ).fetchall()
    return {tuple(r) for r in rows}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
