"""DuckDB staging store.

Each Dentrix object becomes ``dentrix.<object>``: the catalog's columns, text
trimmed of c-tree's CHAR padding (blank becomes NULL), typed, plus

* ``_office_id``   - which practice the row came from (ids overlap between offices),
* ``_source_key``  - the catalog key joined with ':' (the row's identity),
* ``_row_hash``    - md5 over the typed values, the change detector for deltas,
* ``_snapshot_id`` - which extraction produced the row.

A re-stage loads into a side table and swaps it in, so readers never see half a
table; the keys and hashes of the snapshot it replaces are kept in
``dentrix_prev.<object>`` for change detection. DuckDB allows one writing
process: callers serialise writers (a Dagster pool of limit 1).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dentrix_zoho.source.catalog import CatalogColumn, CatalogObject
from dentrix_zoho.source.connection import DentrixConnection
from dentrix_zoho.source.extract import DEFAULT_CHUNK_ROWS, iter_chunks, plan_columns

log = logging.getLogger(__name__)

STAGING_SCHEMA = "dentrix"
PREVIOUS_SCHEMA = "dentrix_prev"
META_SCHEMA = "staging_meta"
SYSTEM_COLUMNS = ("_office_id", "_source_key", "_row_hash", "_snapshot_id")

DUCK_TYPES = {
    "INTEGER": "INTEGER",
    "SMALLINT": "SMALLINT",
    "VARCHAR": "VARCHAR",
    "DATETIME": "TIMESTAMP",
    "DECIMAL": "DECIMAL(12,2)",
    "BOOL": "BOOLEAN",
}

ProgressFn = Callable[[str, int], None]


@dataclass(frozen=True)
class StageResult:
    object_name: str
    rows: int
    seconds: float
    snapshot_id: str
    missing_optional: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, duckdb type), system columns included


def duck_type(column: CatalogColumn) -> str:
    return DUCK_TYPES[column.type]


def new_snapshot_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _typed_expr(column: CatalogColumn, arrow_type: pa.DataType) -> str:
    ref = _q(column.name)
    if pa.types.is_null(arrow_type):
        return f"CAST(NULL AS {duck_type(column)})"
    if column.type == "VARCHAR":
        return f"NULLIF(TRIM(CAST({ref} AS VARCHAR)), '')"
    if column.type == "DATETIME":
        if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
            return f"CAST({ref} AS TIMESTAMP)"
        return f"CAST(NULLIF(TRIM(CAST({ref} AS VARCHAR)), '') AS TIMESTAMP)"
    if column.type == "BOOL":
        if pa.types.is_string(arrow_type):
            return f"CAST(CAST(NULLIF(TRIM({ref}), '') AS INTEGER) AS BOOLEAN)"
        return f"CAST({ref} AS BOOLEAN)"
    if pa.types.is_string(arrow_type):
        return f"CAST(NULLIF(TRIM({ref}), '') AS {duck_type(column)})"
    return f"CAST({ref} AS {duck_type(column)})"


def _row_hash_expr(columns: Sequence[CatalogColumn]) -> str:
    # chr(30) marks NULL and chr(31) separates values, so ('a', NULL) and (NULL, 'a') differ.
    parts = ", ".join(f"COALESCE(CAST({_q(c.name)} AS VARCHAR), chr(30))" for c in columns)
    return f"md5(concat_ws(chr(31), {parts}))"


def _source_key_expr(obj: CatalogObject) -> str:
    parts = ", ".join(f"COALESCE(CAST({_q(k)} AS VARCHAR), '')" for k in obj.key)
    return f"concat_ws(':', {parts})"


def _to_arrow(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    arrays = []
    for values in zip(*rows, strict=True) if rows else [[] for _ in names]:
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # The SQLite stand-in is dynamically typed; a mixed column goes in as text.
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.Table.from_arrays(arrays, names=list(names))


class StagingStore:
    """The DuckDB file under ``$DENTRIX_ZOHO_HOME/staging.duckdb``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path), read_only=read_only)
        try:
            if not read_only:
                self._ensure_schemas(con)
            yield con
        finally:
            con.close()

    @staticmethod
    def _ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
        for schema in (STAGING_SCHEMA, PREVIOUS_SCHEMA, META_SCHEMA):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(
            f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.snapshots (
                snapshot_id VARCHAR, object_name VARCHAR, office_id VARCHAR, row_count BIGINT,
                started_at TIMESTAMP, finished_at TIMESTAMP, source VARCHAR,
                max_modified TIMESTAMP, missing_optional VARCHAR)"""
        )

    def stage_object(
        self,
        con: duckdb.DuckDBPyConnection,
        source: DentrixConnection,
        obj: CatalogObject,
        *,
        office_id: str,
        snapshot_id: str,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: ProgressFn | None = None,
    ) -> StageResult:
        """Stream ``obj`` from the source into ``dentrix.<obj>``; returns counts only."""
        started = time.perf_counter()
        started_at = datetime.now(timezone.utc).replace(tzinfo=None)
        plan = plan_columns(source, obj)
        names = [c.name for c in obj.columns]
        loading = f"{STAGING_SCHEMA}.{_q(obj.name + '__loading')}"
        column_ddl = ", ".join(f"{_q(c.name)} {duck_type(c)}" for c in obj.columns)
        con.execute(f"DROP TABLE IF EXISTS {loading}")
        con.execute(
            f"CREATE TABLE {loading} ({column_ddl}, _office_id VARCHAR, _source_key VARCHAR, "
            f"_row_hash VARCHAR, _snapshot_id VARCHAR)"
        )
        insert_sql_cache: dict[tuple[str, ...], str] = {}
        rows_done = 0

        def insert_chunk(table: pa.Table) -> None:
            signature = tuple(str(t) for t in table.schema.types)
            sql = insert_sql_cache.get(signature)
            if sql is None:
                typed = ", ".join(
                    f"{_typed_expr(c, t)} AS {_q(c.name)}" for c, t in zip(obj.columns, table.schema.types)
                )
                sql = (
                    f"INSERT INTO {loading} SELECT *, ? AS _office_id, {_source_key_expr(obj)} AS _source_key, "
                    f"{_row_hash_expr(obj.columns)} AS _row_hash, ? AS _snapshot_id "
                    f"FROM (SELECT {typed} FROM chunk_view)"
                )
                insert_sql_cache[signature] = sql
            con.register("chunk_view", table)
            try:
                con.execute(sql, [office_id, snapshot_id])
            finally:
                con.unregister("chunk_view")

        # Fetching (driver, mostly under the GIL) overlaps with DuckDB inserting
        # (which releases the GIL): a bounded queue keeps memory flat.
        handoff: queue.Queue[pa.Table | BaseException | None] = queue.Queue(maxsize=2)

        def produce() -> None:
            try:
                for rows in iter_chunks(source, obj, chunk_rows=chunk_rows, plan=plan):
                    handoff.put(_to_arrow(names, rows))
                handoff.put(None)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                handoff.put(exc)

        producer = threading.Thread(target=produce, name=f"extract-{obj.name}", daemon=True)
        producer.start()
        try:
            while True:
                item = handoff.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                insert_chunk(item)
                rows_done += item.num_rows
                if progress is not None:
                    progress(obj.name, rows_done)
        finally:
            producer.join()

        self._swap_in(con, obj, loading)
        max_modified = None
        if obj.modified_column:
            max_modified = con.execute(
                f"SELECT max({_q(obj.modified_column)}) FROM {STAGING_SCHEMA}.{_q(obj.name)}"
            ).fetchone()[0]
        con.execute(
            f"INSERT INTO {META_SCHEMA}.snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                snapshot_id,
                obj.name,
                office_id,
                rows_done,
                started_at,
                datetime.now(timezone.utc).replace(tzinfo=None),
                source.locator.redacted(),
                max_modified,
                ",".join(plan.missing_optional),
            ],
        )
        columns = tuple((c.name, duck_type(c)) for c in obj.columns) + tuple(
            (name, "VARCHAR") for name in SYSTEM_COLUMNS
        )
        return StageResult(
            object_name=obj.name,
            rows=rows_done,
            seconds=time.perf_counter() - started,
            snapshot_id=snapshot_id,
            missing_optional=plan.missing_optional,
            columns=columns,
        )

    @staticmethod
    def _swap_in(con: duckdb.DuckDBPyConnection, obj: CatalogObject, loading: str) -> None:
        target = f"{STAGING_SCHEMA}.{_q(obj.name)}"
        previous = f"{PREVIOUS_SCHEMA}.{_q(obj.name)}"
        modified = f", {_q(obj.modified_column)} AS _modified" if obj.modified_column else ""
        con.execute("BEGIN TRANSACTION")
        try:
            exists = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [STAGING_SCHEMA, obj.name],
            ).fetchone()[0]
            if exists:
                con.execute(
                    f"CREATE OR REPLACE TABLE {previous} AS SELECT _office_id, _source_key, _row_hash, "
                    f"_snapshot_id{modified} FROM {target}"
                )
                con.execute(f"DROP TABLE {target}")
            con.execute(f"ALTER TABLE {loading} RENAME TO {_q(obj.name)}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    @staticmethod
    def staged_count(con: duckdb.DuckDBPyConnection, object_name: str) -> int:
        return int(con.execute(f"SELECT count(*) FROM {STAGING_SCHEMA}.{_q(object_name)}").fetchone()[0])

    @staticmethod
    def staged_objects(con: duckdb.DuckDBPyConnection) -> list[str]:
        rows = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1",
            [STAGING_SCHEMA],
        ).fetchall()
        return [r[0] for r in rows if not r[0].endswith("__loading")]
