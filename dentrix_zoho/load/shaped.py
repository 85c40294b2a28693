"""Reading ``zoho_shaped`` rows of one office for a load step."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from dentrix_zoho.load.steps import LoadStep
from dentrix_zoho.mapping.outputs import OUTPUT_SCHEMA

_PART = "-p"
PARENT_LINKS = frozenset({"Who_Id", "What_Id", "Parent_Id"})


@dataclass
class ShapedRow:
    source_id: str
    source_object: str
    row_hash: str
    record: dict[str, Any]
    links: dict[str, Any]
    file_path: str | None = None
    size_bytes: int | None = None
    file_status: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def link_source_ids(self) -> set[str]:
        return {str(v["source_id"]) for v in self.links.values() if isinstance(v, dict) and v.get("source_id")}


@contextmanager
def open_duckdb(path: Path, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only, unless this process already holds the file open for writing (DuckDB then refuses a
    second connection with another configuration; the writer's own configuration is allowed)."""
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.ConnectionException:
        if not read_only:
            raise
        con = duckdb.connect(str(path))
    try:
        yield con
    finally:
        con.close()


def base_source_id(source_id: str) -> str:
    """A split note's parts (``...:55-p2``) belong to the source row ``...:55``."""
    head, sep, tail = source_id.rpartition(_PART)
    return head if sep and tail.isdigit() else source_id


def in_sample(row: ShapedRow, sample: Iterable[str] | None) -> bool:
    if sample is None:
        return True
    chosen = sample if isinstance(sample, (set, frozenset)) else set(sample)
    if row.source_id in chosen or base_source_id(row.source_id) in chosen:
        return True
    # A child comes with its sampled parent; a Related_Party link does not pull a patient in.
    return any(isinstance(link, dict) and str(link.get("source_id")) in chosen
               for name, link in row.links.items() if name in PARENT_LINKS)


def table_exists(con: duckdb.DuckDBPyConnection, table: str, schema: str = OUTPUT_SCHEMA) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchone()[0])


def read_step_rows(
    con: duckdb.DuckDBPyConnection,
    step: LoadStep,
    office_id: str,
    *,
    sample: Iterable[str] | None = None,
    source_ids: Iterable[str] | None = None,
) -> list[ShapedRow]:
    if not table_exists(con, step.table):
        return []
    files = ", file_path, size_bytes, file_status" if step.table == "attachments" else ""
    cursor = con.execute(
        f"SELECT source_id, source_object, row_hash, CAST(record AS VARCHAR), CAST(links AS VARCHAR){files} "
        f"FROM {OUTPUT_SCHEMA}.{step.table} WHERE office_id = ? AND ({step.where}) ORDER BY source_id",
        [office_id],
    )
    only = set(source_ids) if source_ids is not None else None
    rows: list[ShapedRow] = []
    for values in cursor.fetchall():
        row = ShapedRow(
            source_id=values[0], source_object=values[1], row_hash=values[2],
            record=json.loads(values[3]) if values[3] else {}, links=json.loads(values[4]) if values[4] else {},
        )
        if files:
            row.file_path, row.size_bytes, row.file_status = values[5], values[6], values[7]
        if only is not None and row.source_id not in only and base_source_id(row.source_id) not in only:
            continue
        if not in_sample(row, sample):
            continue
        rows.append(row)
    return rows
