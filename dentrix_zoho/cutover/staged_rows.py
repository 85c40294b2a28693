"""Rows a delta reads, typed and hashed by the very code that stages a full snapshot.

A row staged by a delta must carry the same ``_source_key`` and ``_row_hash`` as the
same row staged by ``StagingStore.stage_object``, or every delta would see phantom
changes; so rows go through the store's ``iter_arrow_chunks`` and ``load_chunks``.
The delta's working tables live in an in-memory database attached to the staging
connection (``cutover_scratch``): nothing of them reaches the staging file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import duckdb

from dentrix_zoho.source.catalog import CatalogObject
from dentrix_zoho.source.connection import DentrixConnection
from dentrix_zoho.source.extract import iter_query
from dentrix_zoho.staging.rejects import Reject
from dentrix_zoho.staging.store import iter_arrow_chunks, load_chunks

SCRATCH = "cutover_scratch"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def attach_scratch(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {SCRATCH}")


def scratch_table(name: str) -> str:
    return f"{SCRATCH}.main.{quote(name)}"


def load_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    obj: CatalogObject,
    row_chunks: Iterable[Sequence[Sequence[Any]]],
    *,
    office_id: str,
    snapshot_id: str,
    reject_sink: list[Reject] | None = None,
) -> int:
    """(Re)create ``table`` shaped like ``dentrix.<obj>`` from source rows in catalog column order.

    Values that did not convert are NULL there and added to ``reject_sink`` (``staging.rejects``).
    """
    arrow = iter_arrow_chunks(row_chunks, obj)  # the object, not its columns: rejects name the row's key
    return load_chunks(con, obj, arrow, table, office_id=office_id, snapshot_id=snapshot_id, reject_sink=reject_sink)


def keys_only(obj: CatalogObject) -> CatalogObject:
    """``obj`` reduced to its key columns: its ``_source_key`` is spelled exactly as the full object's."""
    return CatalogObject(
        name=obj.name,
        kind=obj.kind,
        columns=tuple(obj.column(k) for k in obj.key),
        key=obj.key,
        modified_column=None,
        description=f"key columns of {obj.name}",
    )


def iter_key_chunks(source: DentrixConnection, obj: CatalogObject, *, chunk_rows: int) -> Iterator[Sequence[Sequence[Any]]]:
    """``SELECT <key columns> FROM admin.<obj>``: the cheap read that finds deleted rows."""
    sql = f"SELECT {', '.join(obj.key)} FROM {source.qualified(obj.name)}"
    yield from iter_query(source, sql, chunk_rows=chunk_rows, what=f"reading the keys of {source.qualified(obj.name)}")


def load_keys(
    con: duckdb.DuckDBPyConnection, table: str, obj: CatalogObject, source: DentrixConnection, *, chunk_rows: int
) -> int:
    """(Re)create ``table`` holding ``_source_key`` for every row the source has now."""
    return load_rows(
        con, table, keys_only(obj), iter_key_chunks(source, obj, chunk_rows=chunk_rows), office_id="", snapshot_id=""
    )
