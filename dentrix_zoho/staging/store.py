"""DuckDB staging store.

Each Dentrix object becomes ``dentrix.<object>``: the catalog's columns, text
trimmed of c-tree's CHAR padding (blank becomes NULL), typed, plus

* ``_office_id``   - which practice the row came from (ids overlap between offices),
* ``_source_key``  - the catalog key joined with ':' (the row's identity),
* ``_row_hash``    - DuckDB's 64-bit hash over the typed values, the change detector for deltas,
* ``_snapshot_id`` - which extraction produced the row.

A re-stage loads into a side table and swaps it in, so readers never see half a
table; the keys and hashes of the snapshot it replaces are kept in
``dentrix_prev.<object>`` for change detection. DuckDB allows one writing
process: callers serialise writers (a Dagster pool of limit 1).

Why the pipeline looks the way it does (``bench/bench_extract.py`` measures it
against the bare driver fetch):

* A staging run stages many objects through one writer connection (``stage_many``);
  readers work ahead of it (``staging.readers``), so the source is read while DuckDB
  loads and commits, and the fixed costs of a run (opening the file, starting
  readers, the checkpoint at close) are paid once, not per object.
* Driver rows become Arrow through struct arrays (``ArrowChunker``), each column's
  type learnt from the first chunk, and are conformed in the reader (``conform``):
  text trimmed of CHAR padding and timestamps typed there, by Arrow, two to five
  times faster than DuckDB's TRIM and cast, and off the writer's core.
* DuckDB reads all chunks of an object as one Arrow stream and narrows, keys and
  hashes them in one ``CREATE TABLE ... AS`` while they arrive (``load_chunks``), on
  one DuckDB thread, flushing each row group as it fills (rather than all of them
  at commit), without compression (``_staging_settings``): measured, a second thread
  adds a third to DuckDB's CPU time without making it faster, and compression a
  quarter, for a file about three times smaller (``StagingStore(compress=True)``).
* One transaction per object, from the first row to the snapshot record: readers of
  the file see the old table or the new one, and a failed object leaves its previous
  snapshot while the others go on.
* Memory is bounded by the chunk size, the read-ahead budget and DuckDB's budget
  (``memory_limit``): it does not grow with the table.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dentrix_zoho.source.catalog import CatalogColumn, CatalogObject
from dentrix_zoho.source.connection import DentrixConnection
from dentrix_zoho.source.extract import DEFAULT_CHUNK_ROWS, ColumnPlan
from dentrix_zoho.staging import rejects
from dentrix_zoho.staging.chunks import CONFORMED_MARK, ArrowChunker, chunk_rejects, chunk_schema, conform
from dentrix_zoho.staging.readers import ObjectRead, StagingReads, extract_workers, object_error, plan_read

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

# DuckDB's budget while staging: enough for the row group being written, and a cap on the
# blocks it keeps cached after writing them (with the connection's 512MB they grow with
# the table up to that budget, which a copy that never reads them back has no use for).
STAGING_MEMORY_LIMIT = "128MB"


@dataclass(frozen=True)
class StageFailure:
    """An object that could not be staged this run; its previous snapshot, if any, is untouched."""

    object_name: str
    error: Exception


@dataclass(frozen=True)
class StageResult:
    object_name: str
    rows: int
    seconds: float
    snapshot_id: str
    missing_optional: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, duckdb type), system columns included
    rejected_values: int = 0  # values staged NULL because they did not convert (``staging.rejects``)
    rejected_rows: int = 0  # rows not staged because their key did not convert
    cleaned_values: int = 0  # values staged less control or invisible characters (``rejects.CLEANED_REASONS``)


def duck_type(column: CatalogColumn) -> str:
    return DUCK_TYPES[column.type]


def new_snapshot_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _final_expr(column: CatalogColumn) -> str:
    """Conformed column -> the staged column: numbers narrowed to the catalog's type, money rounded."""
    ref = _q(column.name)
    if column.type in ("VARCHAR", "DATETIME"):
        return ref
    return f"CAST({ref} AS {duck_type(column)})"


def load_chunks(
    con: duckdb.DuckDBPyConnection,
    obj: CatalogObject,
    chunks: Iterable[pa.Table],
    target: str,
    *,
    office_id: str,
    snapshot_id: str,
    progress: ProgressFn | None = None,
    reject_sink: list[rejects.Reject] | None = None,
) -> int:
    """Create ``target`` (a qualified, quoted table name) from Arrow chunks of ``obj``'s catalog columns.

    DuckDB reads the chunks (conformed: trimmed, timestamps typed) as one Arrow
    stream and narrows, keys and hashes them in a single vectorised statement
    while they arrive, so the database work overlaps the fetch instead of
    following it. Full stages and delta stages both come through here, so their
    row hashes agree. Values that did not convert (``conform``) are NULL in the table
    and their ``Reject`` records are added to ``reject_sink``, for the caller to record
    in the same transaction (``rejects.record_rejects``). Returns the rows staged (rows
    whose key did not convert are rejects, not rows).
    """
    schema = chunk_schema(obj)
    rows_done = 0
    found: list[rejects.Reject] = []

    failure: BaseException | None = None

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal rows_done, failure
        try:
            for table in chunks:
                conformed = conform(table, obj, schema)
                if conformed.schema.metadata and rejects.METADATA_KEY in conformed.schema.metadata:
                    found.extend(chunk_rejects(conformed))
                    conformed = conformed.replace_schema_metadata(CONFORMED_MARK)
                yield from conformed.to_batches()
                rows_done += conformed.num_rows
                if progress is not None:
                    progress(obj.name, rows_done)
        except Exception as exc:
            failure = exc  # DuckDB re-raises it wrapped in its own error; the caller gets this one
            raise

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    typed = ", ".join(f"{_final_expr(c)} AS {_q(c.name)}" for c in obj.columns)
    con.execute(f"DROP TABLE IF EXISTS {target}")
    con.register("chunk_stream", reader)
    try:
        con.execute(
            f"CREATE TABLE {target} AS SELECT *, CAST(? AS VARCHAR) AS _office_id, "
            f"{_source_key_expr(obj)} AS _source_key, {_row_hash_expr(obj.columns)} AS _row_hash, "
            f"CAST(? AS VARCHAR) AS _snapshot_id FROM (SELECT {typed} FROM chunk_stream)",
            [office_id, snapshot_id],
        )
    except BaseException:
        # Inside the caller's transaction, now aborted, DuckDB refuses even this; its ROLLBACK
        # drops the view. The error to report is the one that aborted it.
        with contextlib.suppress(duckdb.Error):
            con.unregister("chunk_stream")
        if failure is not None:
            raise failure from None
        raise
    con.unregister("chunk_stream")
    if reject_sink is not None:
        reject_sink.extend(found)
    elif found:
        log.warning("%s: %d value(s) did not convert and are NULL (not recorded here)", obj.name, len(found))
    return rows_done


def iter_arrow_chunks(
    chunks: Iterable[Sequence[Sequence[Any]]], columns: CatalogObject | Sequence[CatalogColumn]
) -> Iterator[pa.Table]:
    """Driver row chunks -> Arrow tables, converted on a producer thread.

    Fetching and converting run under the GIL on a thread of their own while
    the caller's DuckDB inserts (which release the GIL) proceed; a bounded
    queue keeps memory flat whatever the table's size.
    """
    to_arrow = ArrowChunker(columns.columns if isinstance(columns, CatalogObject) else columns)
    schema = chunk_schema(columns)
    handoff: queue.Queue[pa.Table | BaseException | None] = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            for rows in chunks:
                # Conformed here, off the thread that DuckDB calls back on for the next batch.
                handoff.put(conform(to_arrow(rows), columns, schema))
            handoff.put(None)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            handoff.put(exc)

    producer = threading.Thread(target=produce, name="extract", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # Drain so a producer blocked on a full queue can finish, then wait for it.
        while producer.is_alive():
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                pass
        producer.join()


def _row_hash_expr(columns: Sequence[CatalogColumn]) -> str:
    """DuckDB's own 64-bit hash over the typed values, kept as the number (UBIGINT).

    About twice as fast as md5 over the values rendered as text, and rendering it as
    hex would cost a third as much again as the hash itself. It is only ever
    compared with hashes made by the same DuckDB (the previous snapshot, the delta
    stage); a DuckDB upgrade between two stages would make every row look changed,
    which costs a re-shape but never a re-send: the ledger compares the shaped rows'
    own hashes.
    """
    return "hash(" + ", ".join(_q(c.name) for c in columns) + ")"


def _source_key_expr(obj: CatalogObject) -> str:
    parts = [f"COALESCE(CAST({_q(k)} AS VARCHAR), '')" for k in obj.key]
    # One key column needs no concat_ws (the same text, and a tenth of the CTAS's time cheaper).
    return parts[0] if len(parts) == 1 else f"concat_ws(':', {', '.join(parts)})"


@contextlib.contextmanager
def _staging_settings(con: duckdb.DuckDBPyConnection, *, compress: bool, memory_limit: str) -> Iterator[None]:
    """DuckDB settings for the staging statement, the connection's own restored afterwards.

    One thread: DuckDB reads one Arrow stream only as fast as it arrives, and a second
    thread only adds synchronisation (a third of the statement's CPU time, taken from
    the readers). No compression unless asked for: choosing and applying it costs a
    quarter of DuckDB's share of a large table, for a file about three times smaller.
    Each row group is written as soon as it is full (DuckDB buffers five by default,
    which for any of our tables means writing everything at commit, after the last
    row, instead of while the readers still fetch): a 250k-row table's commit drops
    from about 100 ms to 20. A smaller memory budget (``STAGING_MEMORY_LIMIT``, see
    ``memory_budget``) keeps the process flat whatever the table.
    """
    threads, compression, buffered = con.execute(
        "SELECT current_setting('threads'), current_setting('force_compression'), "
        "current_setting('write_buffer_row_group_count')"
    ).fetchone()
    con.execute("SET threads = 1")
    con.execute("SET write_buffer_row_group_count = 1")
    if not compress:
        con.execute("SET force_compression = 'uncompressed'")
    try:
        with memory_budget(con, STAGING_MEMORY_LIMIT, restore=memory_limit):
            yield
    finally:
        con.execute(f"SET threads = {int(threads)}")
        con.execute(f"SET force_compression = '{compression}'")
        con.execute(f"SET write_buffer_row_group_count = {int(buffered)}")


_BYTES = {"": 1, "B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50}


def _size(text: str) -> float:
    """Bytes of a DuckDB memory setting ("256MB", "488.2 MiB"); unknown: unlimited."""
    found = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if found is None or found.group(2).upper() not in _BYTES:
        return math.inf
    return float(found.group(1)) * _BYTES[found.group(2).upper()]


@contextlib.contextmanager
def memory_budget(con: duckdb.DuckDBPyConnection, limit: str, *, restore: str | None = None) -> Iterator[None]:
    """DuckDB's ``memory_limit`` lowered to ``limit`` for the block, never raised, then restored.

    The setting is the database's, not the connection's. It is restored to ``restore``
    (the limit the caller opened the database with) when given, else to what DuckDB
    reported, which DuckDB rounds (512MB reads back as "488.2 MiB").
    """
    (current,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
    if _size(current) <= _size(limit):
        yield
        return
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{restore or current}'")


def _failure(obj: CatalogObject, exc: Exception) -> StageFailure:
    """``exc`` as the operator reads it: a ``SourceError`` as worded, anything else named and without values."""
    error = object_error(obj.name, exc)
    log.warning("%s", error)
    return StageFailure(obj.name, error)


class StagingStore:
    """The DuckDB file under ``$DENTRIX_ZOHO_HOME/staging.duckdb``."""

    def __init__(self, path: Path, *, memory_limit: str = "512MB", compress: bool = False) -> None:
        self.path = Path(path)
        self.memory_limit = memory_limit
        # Staged tables are written uncompressed by default: faster to stage (see _staging_settings).
        self.compress = compress

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # A fixed memory budget: DuckDB spills to disk beyond it, so staging a large table
        # needs no more memory than a small one.
        con = duckdb.connect(str(self.path), read_only=read_only, config={"memory_limit": self.memory_limit})
        try:
            if not read_only:
                self._ensure_schemas(con)
            yield con
        finally:
            con.close()

    @staticmethod
    def _ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
        present = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name IN ('snapshots', 'rejects')",
            [META_SCHEMA],
        ).fetchone()[0]
        if present == 2:
            return  # the usual case: nothing to write, so nothing to commit
        con.execute("BEGIN TRANSACTION")
        for schema in (STAGING_SCHEMA, PREVIOUS_SCHEMA, META_SCHEMA):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(
            f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.snapshots (
                snapshot_id VARCHAR, object_name VARCHAR, office_id VARCHAR, row_count BIGINT,
                started_at TIMESTAMP, finished_at TIMESTAMP, source VARCHAR,
                max_modified TIMESTAMP, missing_optional VARCHAR)"""
        )
        rejects.ensure_rejects_table(con)
        con.execute("COMMIT")

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
        workers: int | None = None,
    ) -> StageResult:
        """Stage one object (see ``stage_many``); raises its error if it fails."""
        (outcome,) = self.stage_many(
            con, source, [obj], office_id=office_id, snapshot_id=snapshot_id,
            chunk_rows=chunk_rows, progress=progress, workers=workers,
        )
        if isinstance(outcome, StageFailure):
            raise outcome.error
        return outcome

    def stage_many(
        self,
        con: duckdb.DuckDBPyConnection,
        source: DentrixConnection,
        objects: Sequence[CatalogObject],
        *,
        office_id: str,
        snapshot_id: str,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: ProgressFn | None = None,
        workers: int | None = None,
    ) -> Iterator[StageResult | StageFailure]:
        """Stream each object from the source into ``dentrix.<obj>``, in order; yields one outcome per object.

        ``workers`` readers (``DENTRIX_EXTRACT_WORKERS`` when None) read ahead of this
        connection, the only writer (``staging.readers``). An object that cannot be read
        or loaded is rolled back (its previous snapshot stays) and reported as a
        ``StageFailure``; the others go on. Outcomes carry counts only.
        """
        workers = extract_workers() if workers is None else workers
        planned: list[ObjectRead | StageFailure] = []
        for obj in objects:
            try:
                planned.append(plan_read(source, obj, workers=workers))
            except Exception as exc:  # noqa: BLE001 - this object fails; the run goes on
                planned.append(_failure(obj, exc))
        reads = [p for p in planned if isinstance(p, ObjectRead)]
        if not reads:
            yield from (p for p in planned if isinstance(p, StageFailure))
            return
        readers = StagingReads(source, reads, workers=workers, chunk_rows=chunk_rows)
        settings = _staging_settings(con, compress=self.compress, memory_limit=self.memory_limit)
        with contextlib.closing(readers), settings:
            index = 0
            for item in planned:
                if isinstance(item, StageFailure):
                    yield item
                    continue
                yield self._stage_read(
                    con, source, item, readers, index, office_id=office_id, snapshot_id=snapshot_id,
                    progress=progress,
                )
                index += 1

    def _stage_read(
        self,
        con: duckdb.DuckDBPyConnection,
        source: DentrixConnection,
        read: ObjectRead,
        readers: StagingReads,
        index: int,
        *,
        office_id: str,
        snapshot_id: str,
        progress: ProgressFn | None,
    ) -> StageResult | StageFailure:
        obj = read.obj
        started = time.perf_counter()
        started_at = datetime.now(timezone.utc).replace(tzinfo=None)
        loading = f"{STAGING_SCHEMA}.{_q(obj.name + '__loading')}"
        try:
            rows_done, found = self._load_and_swap(
                con, source, obj, read.plan, readers.chunks(index), loading,
                office_id=office_id, snapshot_id=snapshot_id, started_at=started_at, progress=progress,
            )
        except Exception as exc:  # noqa: BLE001 - this object fails, rolled back; the run goes on
            readers.discard(index)
            return _failure(obj, exc)
        columns = tuple((c.name, duck_type(c)) for c in obj.columns) + tuple(
            (name, "UBIGINT" if name == "_row_hash" else "VARCHAR") for name in SYSTEM_COLUMNS
        )
        return StageResult(
            object_name=obj.name,
            rows=rows_done,
            seconds=time.perf_counter() - started,
            snapshot_id=snapshot_id,
            missing_optional=read.plan.missing_optional,
            columns=columns,
            rejected_values=sum(1 for r in found if not r.whole_row and not r.cleaned),
            rejected_rows=sum(1 for r in found if r.whole_row),
            cleaned_values=sum(1 for r in found if r.cleaned),
        )

    @classmethod
    def _load_and_swap(
        cls,
        con: duckdb.DuckDBPyConnection,
        source: DentrixConnection,
        obj: CatalogObject,
        plan: ColumnPlan,
        chunks: Iterable[pa.Table],
        loading: str,
        *,
        office_id: str,
        snapshot_id: str,
        started_at: datetime,
        progress: ProgressFn | None,
    ) -> tuple[int, list[rejects.Reject]]:
        # One transaction from the first row to the snapshot record: readers see the old
        # table or the new one, and the file is synced once per object, not per statement.
        con.execute("BEGIN TRANSACTION")
        try:
            found: list[rejects.Reject] = []
            rows_done = load_chunks(
                con, obj, chunks, loading, office_id=office_id, snapshot_id=snapshot_id, progress=progress,
                reject_sink=found,
            )
            cls._swap_in(con, obj, loading)
            rejects.record_rejects(con, found, office_id=office_id, object_name=obj.name, snapshot_id=snapshot_id)
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
            con.execute("COMMIT")
        except BaseException:
            # A failed COMMIT has ended the transaction already: the error to report is the first.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        if found:
            log.warning(
                "staged %s with %d value(s) that did not convert (NULL, listed in %s), %d row(s) whose key "
                "did not and %d value(s) cleaned of control or invisible characters", obj.name,
                sum(1 for r in found if not r.whole_row and not r.cleaned), rejects.REJECTS_TABLE,
                sum(1 for r in found if r.whole_row), sum(1 for r in found if r.cleaned),
            )
        return rows_done, found

    @staticmethod
    def _swap_in(con: duckdb.DuckDBPyConnection, obj: CatalogObject, loading: str) -> None:
        """Keep the current snapshot's keys and hashes in ``dentrix_prev``, put ``loading`` in its place.

        Runs inside the caller's transaction.
        """
        target = f"{STAGING_SCHEMA}.{_q(obj.name)}"
        previous = f"{PREVIOUS_SCHEMA}.{_q(obj.name)}"
        modified = f", {_q(obj.modified_column)} AS _modified" if obj.modified_column else ""
        exists = con.execute(
            # duckdb_tables() answers in half the time of information_schema: this runs once per object.
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [STAGING_SCHEMA, obj.name],
        ).fetchone()[0]
        if exists:
            con.execute(
                f"CREATE OR REPLACE TABLE {previous} AS SELECT _office_id, _source_key, _row_hash, "
                f"_snapshot_id{modified} FROM {target}"
            )
            con.execute(f"DROP TABLE {target}")
        con.execute(f"ALTER TABLE {loading} RENAME TO {_q(obj.name)}")

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
