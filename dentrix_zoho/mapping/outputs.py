"""The ``zoho_shaped`` tables in DuckDB and how rows are written to them.

One table per Zoho module plus ``quarantine``, ``skipped``, ``flags`` and
``accounting``. Rows are per office: a re-shape of one office replaces only
that office's rows, so several offices can share one staging database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

OUTPUT_SCHEMA = "zoho_shaped"
MODULE_TABLES: dict[str, str] = {
    "Contacts": "contacts",
    "Leads": "leads",
    "Events": "events",
    "Tasks": "tasks",
    "Calls": "calls",
    "Notes": "notes",
    "Attachments": "attachments",
}

_MODULE_COLUMNS = (
    ("source_id", "VARCHAR"),
    ("source_object", "VARCHAR"),
    ("office_id", "VARCHAR"),
    ("row_hash", "VARCHAR"),
    ("record", "JSON"),
    ("links", "JSON"),
)
_EXTRA_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "contacts": (("tier", "INTEGER"),),
    "attachments": (
        ("file_path", "VARCHAR"),
        ("size_bytes", "BIGINT"),
        ("file_status", "VARCHAR"),
        ("parent", "JSON"),
    ),
}
# Rows held per table before they are appended: bounds the shaper's memory.
WRITE_BATCH_ROWS = 10_000

SIDE_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "quarantine": (
        ("office_id", "VARCHAR"), ("source_object", "VARCHAR"), ("source_id", "VARCHAR"),
        ("target_module", "VARCHAR"), ("field", "VARCHAR"), ("value_class", "VARCHAR"),
        ("reason", "VARCHAR"), ("rule", "VARCHAR"),
    ),
    "skipped": (
        ("office_id", "VARCHAR"), ("source_object", "VARCHAR"), ("source_id", "VARCHAR"),
        ("rule", "VARCHAR"), ("reason", "VARCHAR"),
    ),
    "flags": (
        ("office_id", "VARCHAR"), ("source_object", "VARCHAR"), ("source_id", "VARCHAR"),
        ("target_module", "VARCHAR"), ("field", "VARCHAR"), ("value_class", "VARCHAR"),
        ("reason", "VARCHAR"), ("rule", "VARCHAR"), ("action", "VARCHAR"),
    ),
    "accounting": (
        ("office_id", "VARCHAR"), ("source_object", "VARCHAR"), ("staged", "BIGINT"),
        ("shaped", "BIGINT"), ("quarantined", "BIGINT"), ("skipped", "BIGINT"),
        ("out_of_sample", "BIGINT"),
    ),
}


ALL_TABLES: tuple[str, ...] = (*MODULE_TABLES.values(), *SIDE_TABLES)


def table_columns(table: str) -> tuple[tuple[str, str], ...]:
    if table in SIDE_TABLES:
        return SIDE_TABLES[table]
    return _MODULE_COLUMNS + _EXTRA_COLUMNS.get(table, ())


def row_hash(record: dict[str, Any], links: dict[str, Any]) -> str:
    """Hash of what would be sent: a mapping change changes it, so the row is re-sent."""
    payload = json.dumps({"record": record, "links": links}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {OUTPUT_SCHEMA}")
    for table in ALL_TABLES:
        cols = ", ".join(f'"{name}" {dtype}' for name, dtype in table_columns(table))
        conn.execute(f"CREATE TABLE IF NOT EXISTS {OUTPUT_SCHEMA}.{table} ({cols})")


def _arrow_type(dtype: str) -> pa.DataType:
    return {"INTEGER": pa.int32(), "BIGINT": pa.int64()}.get(dtype, pa.string())


def delete_office_rows(conn: duckdb.DuckDBPyConnection, table: str, office_id: str) -> None:
    conn.execute(f"DELETE FROM {OUTPUT_SCHEMA}.{table} WHERE office_id = ?", [office_id])


def append_rows(
    conn: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]], *, into: str | None = None
) -> None:
    """Insert ``rows`` (JSON columns as dict/list, serialised with sorted keys) into ``table``,
    or into ``into``, a table of the same columns."""
    if not rows:
        return
    columns = table_columns(table)
    arrays = {}
    for name, dtype in columns:
        values = [row.get(name) for row in rows]
        if dtype == "JSON":
            values = [None if v is None else json.dumps(v, sort_keys=True, default=str) for v in values]
        arrays[name] = pa.array(values, type=_arrow_type(dtype))
    batch = pa.table(arrays)
    conn.register("_shaped_batch", batch)
    try:
        select = ", ".join(
            f'CAST("{name}" AS JSON)' if dtype == "JSON" else f'"{name}"' for name, dtype in columns
        )
        conn.execute(f"INSERT INTO {into or f'{OUTPUT_SCHEMA}.{table}'} SELECT {select} FROM _shaped_batch")
    finally:
        conn.unregister("_shaped_batch")


def replace_office_rows(
    conn: duckdb.DuckDBPyConnection, table: str, office_id: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Delete this office's rows of ``table`` and insert ``rows`` (JSON columns as dict/list)."""
    delete_office_rows(conn, table, office_id)
    append_rows(conn, table, rows)


class OfficeRowsWriter:
    """This office's rows of every ``zoho_shaped`` table, replaced in one transaction.

    ``add`` buffers a row and appends a table's buffer every ``WRITE_BATCH_ROWS`` rows
    to a scratch table of this connection (TEMP: no other connection sees it, DuckDB
    spills it to disk past its memory budget). Leaving without an error replaces the
    office's rows from the scratch tables in one transaction; leaving with one drops
    them, and the previous rows stay in place. Rows are not appended to ``zoho_shaped``
    directly inside one long transaction: DuckDB holds a transaction's appended rows in
    memory until the commit, so memory would grow with the practice.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, office_id: str) -> None:
        self.conn = conn
        self.office_id = office_id
        self.pending: dict[str, list[dict[str, Any]]] = {table: [] for table in ALL_TABLES}

    @staticmethod
    def scratch(table: str) -> str:
        return f'temp.main."_shaping_{table}"'

    def __enter__(self) -> OfficeRowsWriter:
        for table in ALL_TABLES:
            cols = ", ".join(f'"{name}" {dtype}' for name, dtype in table_columns(table))
            self.conn.execute(f"CREATE OR REPLACE TEMP TABLE \"_shaping_{table}\" ({cols})")
        return self

    def add(self, table: str, row: dict[str, Any]) -> None:
        rows = self.pending[table]
        rows.append(row)
        if len(rows) >= WRITE_BATCH_ROWS:
            self.flush(table)

    def flush(self, table: str) -> None:
        rows, self.pending[table] = self.pending[table], []
        append_rows(self.conn, table, rows, into=self.scratch(table))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc_type is None:
                for table in ALL_TABLES:
                    self.flush(table)
                self.replace()
        finally:
            self.pending = {table: [] for table in ALL_TABLES}
            for table in ALL_TABLES:
                self.conn.execute(f"DROP TABLE IF EXISTS {self.scratch(table)}")

    def replace(self) -> None:
        self.conn.execute("BEGIN TRANSACTION")
        try:
            for table in ALL_TABLES:
                delete_office_rows(self.conn, table, self.office_id)
                cols = ", ".join(f'"{name}"' for name, _dtype in table_columns(table))
                self.conn.execute(
                    f"INSERT INTO {OUTPUT_SCHEMA}.{table} ({cols}) SELECT {cols} FROM {self.scratch(table)}"
                )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
