"""SQLite tables derived from the catalog, and a chunked writer that stores values the way c-treeACE does.

Type mapping: VARCHAR(n) -> CHAR(n) holding space-padded text, long VARCHAR -> VARCHAR,
DATETIME -> ISO text 'YYYY-MM-DD HH:MM:SS', DECIMAL -> NUMERIC(12,2), BOOL and the
integer types -> integers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from functools import lru_cache
from datetime import date, datetime
from typing import Any, Literal

from dentrix_zoho.source.catalog import CatalogColumn, CatalogObject

DentrixVersion = Literal["G6.2", "G7.4"]
DENTRIX_VERSIONS: tuple[DentrixVersion, ...] = ("G6.2", "G7.4")

_SQL_TYPES = {
    "INTEGER": "INTEGER",
    "SMALLINT": "SMALLINT",
    "DATETIME": "DATETIME",
    "DECIMAL": "NUMERIC(12,2)",
    "BOOL": "INTEGER",
}

# Rows whose text is stored CHAR-padded: most, not all, so consumers must trim every value.
_PADDED_ROWS_PER_TEN = 7


def present_columns(obj: CatalogObject, version: DentrixVersion) -> tuple[CatalogColumn, ...]:
    """The columns this Dentrix version has: the newest has all, older ones lack the optional ones."""
    if version == DENTRIX_VERSIONS[-1]:
        return obj.columns
    return tuple(c for c in obj.columns if not c.optional)


def sql_type(column: CatalogColumn) -> str:
    if column.type == "VARCHAR":
        return f"CHAR({column.length})" if column.length else "VARCHAR"
    return _SQL_TYPES[column.type]


def create_table_sql(obj: CatalogObject, version: DentrixVersion) -> str:
    cols = ",\n  ".join(f"{c.name} {sql_type(c)}" for c in present_columns(obj, version))
    return f"CREATE TABLE {obj.name} (\n  {cols}\n)"


def create_key_index_sql(obj: CatalogObject) -> str:
    # A unique index proves the catalog key really identifies a row in what we generated.
    return f"CREATE UNIQUE INDEX ix_{obj.name}_key ON {obj.name} ({', '.join(obj.key)})"


def format_datetime(value: date | datetime) -> str:
    if isinstance(value, datetime):
        # str() of a datetime without microseconds is 'YYYY-MM-DD HH:MM:SS' (faster than strftime).
        return str(value.replace(microsecond=0)) if value.microsecond else str(value)
    return _format_day(value)


@lru_cache(maxsize=16_384)
def _format_day(value: date) -> str:
    return f"{value.isoformat()} 00:00:00"


class TableWriter:
    """Buffers rows (dicts keyed by catalog column) and inserts them with executemany in chunks.

    Text longer than its column is cut, as a fixed-width field would; on most rows text is
    padded with spaces to the full width. Dates become ISO text, money is rounded to cents.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        obj: CatalogObject,
        version: DentrixVersion,
        *,
        chunk_rows: int = 5_000,
    ) -> None:
        self.obj = obj
        self.rows_written = 0
        self._conn = conn
        self._chunk_rows = chunk_rows
        self._buffer: list[tuple[Any, ...]] = []
        self._names = frozenset(obj.column_names)
        columns = present_columns(obj, version)
        self._order = tuple(c.name for c in columns)
        self._fixed_text = tuple((i, c.length) for i, c in enumerate(columns) if c.type == "VARCHAR" and c.length)
        self._datetimes = tuple(i for i, c in enumerate(columns) if c.type == "DATETIME")
        self._money = tuple(i for i, c in enumerate(columns) if c.type == "DECIMAL")
        self._bools = tuple(i for i, c in enumerate(columns) if c.type == "BOOL")
        placeholders = ", ".join("?" for _ in columns)
        self._insert = f"INSERT INTO {obj.name} ({', '.join(self._order)}) VALUES ({placeholders})"

    def add(self, row: Mapping[str, Any]) -> None:
        unknown = row.keys() - self._names
        if unknown:
            raise KeyError(f"{self.obj.name} has no column(s) {sorted(unknown)}")
        values = [row.get(name) for name in self._order]
        pad = (self.rows_written + len(self._buffer)) * 7 % 10 < _PADDED_ROWS_PER_TEN
        for i, width in self._fixed_text:
            text = values[i]
            if text is None:
                continue
            if len(text) > width:
                text = text[:width]
            values[i] = text.ljust(width) if pad else text
        for i in self._datetimes:
            if values[i] is not None and not isinstance(values[i], str):
                values[i] = format_datetime(values[i])
        for i in self._money:
            if values[i] is not None:
                values[i] = round(float(values[i]), 2)
        for i in self._bools:
            if values[i] is not None:
                values[i] = 1 if values[i] else 0
        self._buffer.append(tuple(values))
        if len(self._buffer) >= self._chunk_rows:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._conn.executemany(self._insert, self._buffer)
            self.rows_written += len(self._buffer)
            self._buffer.clear()


class TableSink:
    """One TableWriter per catalog table, addressed by table name."""

    def __init__(self, conn: sqlite3.Connection, tables: list[CatalogObject], version: DentrixVersion) -> None:
        self._writers = {obj.name: TableWriter(conn, obj, version) for obj in tables}

    def add(self, table: str, row: Mapping[str, Any]) -> None:
        self._writers[table].add(row)

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def counts(self) -> dict[str, int]:
        return {name: w.rows_written for name, w in self._writers.items()}
