"""Change detection for the cutover window: what is new, changed or deleted in Dentrix since staging.

Per object, against the rows staged in ``dentrix.<object>`` (this office's rows only):

1. **Keys.** ``SELECT <key columns>`` of the whole object: cheap, and the only way to
   see hard deletions (Dentrix keeps no tombstones: a hard-deleted
   patient "can only be recovered from a backup",
   https://dentrixtiptuesdays.blogspot.com/2016/07/archiving-patient-records.html). Read first, so a
   row inserted while the delta runs shows up as new rather than as a phantom gap.
2. **Rows.** Objects with a modified column are read from ``cursor - lookback`` on,
   the cursor being the newest modified time staged; the look-back catches rows
   stamped just before the cursor but committed after the previous read. Objects
   without one are read whole (they are small lookup lists).
3. **Compare.** By ``_source_key``: absent from staging = new, different ``_row_hash`` =
   changed; staged but absent from the keys = deleted. For appointments,
   ``appthist`` rows with ``deletedflag = 1`` since the cursor name deletions too.
4. **Safety net.** A key the source has that neither staging nor the cursor read
   holds is a row the cursor missed (committed later than the look-back, or with no
   modified time): the object is then read whole, so a new row is never lost.
5. **Apply.** In one transaction per object: changed and deleted rows leave
   ``dentrix.<object>``, new and changed rows go in (typed and hashed exactly as a full
   stage would), and every changed key is recorded in ``staging_meta.changes`` so the
   delta load sends only those.

What a cursor read cannot see is a row edited *in place* without its modified time
moving (outside the look-back): Dentrix stamps every write, so we accept that.
By default the delta covers the base tables, which is what the mapping reads; the
staged ``v_*`` views keep their full-stage state unless they are named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from dentrix_zoho.cutover.staged_rows import SCRATCH, attach_scratch, load_keys, load_rows, quote, scratch_table
from dentrix_zoho.cutover.summary import DeltaSummary, ObjectDelta
from dentrix_zoho.source.catalog import CATALOG, CatalogObject, base_tables, catalog_object
from dentrix_zoho.source.connection import DentrixConnection
from dentrix_zoho.source.extract import DEFAULT_CHUNK_ROWS, iter_chunks, plan_columns
from dentrix_zoho.staging.rejects import Reject, record_rejects
from dentrix_zoho.staging.store import META_SCHEMA, STAGING_SCHEMA, StagingStore

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK = timedelta(minutes=10)
# Keys are narrow: bigger chunks mean fewer round trips through Arrow and DuckDB.
KEY_CHUNK_ROWS = 50_000
CHANGES_TABLE = f"{META_SCHEMA}.changes"
DELTAS_TABLE = f"{META_SCHEMA}.deltas"
APPOINTMENTS = "appt"
APPOINTMENT_HISTORY = "appthist"

# The base tables: what the mapping reads. Views are accepted too when asked for.
DEFAULT_DELTA_OBJECTS: tuple[str, ...] = tuple(obj.name for obj in base_tables())

# Working tables of one object's delta, in the attached in-memory scratch database.
_ROWS = scratch_table("rows")
_KEYS = scratch_table("source_keys")
_CHANGES = scratch_table("changes")
_HISTORY = scratch_table("appointment_history")


class ChangeDetectionError(RuntimeError):
    """A delta cannot run (e.g. the object was never fully staged)."""


def ensure_change_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} (
            snapshot_id VARCHAR, object_name VARCHAR, source_key VARCHAR, change VARCHAR,
            detected_at TIMESTAMP, office_id VARCHAR)"""
    )
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {DELTAS_TABLE} (
            snapshot_id VARCHAR, object_name VARCHAR, office_id VARCHAR, mode VARCHAR,
            cursor_at TIMESTAMP, since TIMESTAMP, rows_read BIGINT, source_rows BIGINT,
            new BIGINT, changed BIGINT, deleted BIGINT, deleted_in_history BIGINT,
            full_read_reason VARCHAR, max_modified TIMESTAMP, detected_at TIMESTAMP, seconds DOUBLE)"""
    )


def detect_and_apply_changes(
    source_conn: DentrixConnection,
    staging_store: StagingStore | None,
    duckdb_con: duckdb.DuckDBPyConnection,
    objects: Iterable[str | CatalogObject] = DEFAULT_DELTA_OBJECTS,
    *,
    lookback: timedelta = DEFAULT_LOOKBACK,
    office_id: str,
    snapshot_id: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> DeltaSummary:
    """Detect new, changed and deleted rows per object, bring ``dentrix.*`` up to date, record the keys.

    ``staging_store`` is accepted for symmetry with the full stage (and future use);
    all work goes through ``duckdb_con``, which must be a writable connection to it.
    """
    del staging_store  # the connection is the store; kept in the signature for callers' clarity
    if lookback < timedelta(0):
        raise ValueError("lookback must not be negative")
    chosen = [o if isinstance(o, CatalogObject) else catalog_object(o) for o in objects]
    ensure_change_tables(duckdb_con)
    _require_staged(duckdb_con, chosen)
    detected_at = datetime.now(timezone.utc).replace(tzinfo=None)
    started = time.perf_counter()
    # Cursors first, for every object: applying one object must not move another's cursor.
    cursors = {obj.name: _cursor(duckdb_con, obj, office_id) for obj in chosen}
    results: list[ObjectDelta] = []
    unchanged: list[list[Any]] = []
    ids = {"snapshot_id": snapshot_id, "office_id": office_id, "detected_at": detected_at}
    attach_scratch(duckdb_con)
    try:
        for obj in chosen:
            result = _detect_and_apply_one(
                source_conn, duckdb_con, obj, cursor=cursors[obj.name], lookback=lookback, chunk_rows=chunk_rows, **ids
            )
            if result.total:
                log.info(
                    "delta %s: %d new, %d changed, %d deleted (%s read, %d rows, %.2fs)",
                    obj.name, result.new, result.changed, result.deleted, result.mode, result.rows_read, result.seconds,
                )
            else:
                unchanged.append(_delta_row(result, result.cursor, **ids))
            results.append(result)
    finally:
        duckdb_con.execute(f"DETACH {SCRATCH}")
        _record_unchanged(duckdb_con, unchanged)
    summary = DeltaSummary(
        snapshot_id=snapshot_id,
        office_id=office_id,
        detected_at=detected_at,
        objects=tuple(results),
        seconds=time.perf_counter() - started,
    )
    log.info("%s", summary.describe())
    return summary


def _require_staged(con: duckdb.DuckDBPyConnection, objects: Sequence[CatalogObject]) -> None:
    staged = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [STAGING_SCHEMA]
        ).fetchall()
    }
    missing = [o.name for o in objects if o.name not in staged]
    if missing:
        raise ChangeDetectionError(
            f"not staged yet: {', '.join(missing)}. A delta compares against a full stage; "
            "stage these objects first (the stage_and_audit job)"
        )


def _cursor(con: duckdb.DuckDBPyConnection, obj: CatalogObject, office_id: str) -> datetime | None:
    if not obj.modified_column:
        return None
    value = con.execute(
        f"SELECT max({quote(obj.modified_column)}) FROM {STAGING_SCHEMA}.{quote(obj.name)} WHERE _office_id = ?",
        [office_id],
    ).fetchone()[0]
    return value


def _staged(obj: CatalogObject) -> str:
    return f"{STAGING_SCHEMA}.{quote(obj.name)}"


def _detect_and_apply_one(
    source: DentrixConnection,
    con: duckdb.DuckDBPyConnection,
    obj: CatalogObject,
    *,
    cursor: datetime | None,
    lookback: timedelta,
    office_id: str,
    snapshot_id: str,
    detected_at: datetime,
    chunk_rows: int,
) -> ObjectDelta:
    started = time.perf_counter()
    staged = _staged(obj)
    plan = plan_columns(source, obj)
    since = cursor - lookback if cursor is not None else None
    full_reason: str | None = None
    if not obj.modified_column:
        full_reason = "no modified-time column"
    elif cursor is None:
        full_reason = "nothing staged with a modified time"

    source_rows = load_keys(con, _KEYS, obj, source, chunk_rows=max(chunk_rows, KEY_CHUNK_ROWS))

    found: list[Reject] = []

    def read_rows(read_since: datetime | None) -> int:
        found.clear()  # a re-read replaces what the first read found
        chunks = iter_chunks(source, obj, chunk_rows=chunk_rows, since=read_since, plan=plan)
        return load_rows(con, _ROWS, obj, chunks, office_id=office_id, snapshot_id=snapshot_id, reject_sink=found)

    rows_read = read_rows(None if full_reason else since)
    if full_reason is None:
        missed = con.execute(
            f"""SELECT count(*) FROM {_KEYS} k
                WHERE NOT EXISTS (SELECT 1 FROM {staged} s WHERE s._office_id = ? AND s._source_key = k._source_key)
                  AND NOT EXISTS (SELECT 1 FROM {_ROWS} r WHERE r._source_key = k._source_key)""",
            [office_id],
        ).fetchone()[0]
        if missed:
            full_reason = f"{missed} new key(s) outside the look-back or without a modified time"
            log.warning("delta %s: %s; reading the object whole", obj.name, full_reason)
            rows_read = read_rows(None)

    con.execute(
        f"""CREATE OR REPLACE TABLE {_CHANGES} AS
            SELECT r._source_key, CASE WHEN s._source_key IS NULL THEN 'new' ELSE 'changed' END AS change
            FROM {_ROWS} r
            LEFT JOIN (SELECT _source_key, _row_hash FROM {staged} WHERE _office_id = ?) s
              ON s._source_key = r._source_key
            WHERE s._source_key IS NULL OR s._row_hash IS DISTINCT FROM r._row_hash""",
        [office_id],
    )
    # Staged, but neither in the source's keys nor re-read: gone from Dentrix.
    con.execute(
        f"""INSERT INTO {_CHANGES}
            SELECT s._source_key, 'deleted' FROM {staged} s
            WHERE s._office_id = ?
              AND NOT EXISTS (SELECT 1 FROM {_KEYS} k WHERE k._source_key = s._source_key)
              AND NOT EXISTS (SELECT 1 FROM {_ROWS} r WHERE r._source_key = s._source_key)""",
        [office_id],
    )
    deleted_in_history = 0
    if obj.name == APPOINTMENTS and APPOINTMENT_HISTORY in CATALOG:
        deleted_in_history = _appointment_history_deletions(
            source, con, cursor, lookback, office_id, snapshot_id=snapshot_id, chunk_rows=chunk_rows
        )

    counts = dict(con.execute(f"SELECT change, count(*) FROM {_CHANGES} GROUP BY change").fetchall())
    result = ObjectDelta(
        object_name=obj.name,
        mode="full" if full_reason else "cursor",
        cursor=cursor,
        since=None if full_reason else since,
        rows_read=rows_read,
        source_rows=source_rows,
        new=int(counts.get("new", 0)),
        changed=int(counts.get("changed", 0)),
        deleted=int(counts.get("deleted", 0)),
        deleted_in_history=deleted_in_history,
        full_read_reason=full_reason,
        seconds=time.perf_counter() - started,
    )
    if result.total:
        _apply(con, obj, result, office_id=office_id, snapshot_id=snapshot_id, detected_at=detected_at,
               rejects=found)
    con.execute("; ".join(f"DROP TABLE IF EXISTS {table}" for table in (_ROWS, _KEYS, _CHANGES, _HISTORY)))
    return result


def _appointment_history_deletions(
    source: DentrixConnection,
    con: duckdb.DuckDBPyConnection,
    appointment_cursor: datetime | None,
    lookback: timedelta,
    office_id: str,
    *,
    snapshot_id: str,
    chunk_rows: int,
) -> int:
    """Add appthist's ``deletedflag = 1`` appointments (since the cursor) to the deletions.

    The key diff already sees an appointment that left ``appt``; the history is the
    record integrators read deletions from
    (``appthist.deletedflag``, in the Pozative/Adit sync code) and is counted as such. An appointment the
    history calls deleted but ``appt`` still holds is left alone: the table wins.
    """
    history = CATALOG[APPOINTMENT_HISTORY]
    since = appointment_cursor - lookback if appointment_cursor is not None else None
    chunks = iter_chunks(source, history, chunk_rows=chunk_rows, since=since)
    if not load_rows(con, _HISTORY, history, chunks, office_id=office_id, snapshot_id=snapshot_id):
        return 0
    parents = f"""(SELECT DISTINCT CAST(parentapptid AS VARCHAR) AS _source_key FROM {_HISTORY}
                   WHERE coalesce(deletedflag, false) AND parentapptid IS NOT NULL)"""
    staged = _staged(CATALOG[APPOINTMENTS])
    con.execute(
        f"""INSERT INTO {_CHANGES}
            SELECT h._source_key, 'deleted' FROM {parents} h
            WHERE EXISTS (SELECT 1 FROM {staged} s WHERE s._office_id = ? AND s._source_key = h._source_key)
              AND NOT EXISTS (SELECT 1 FROM {_KEYS} k WHERE k._source_key = h._source_key)
              AND NOT EXISTS (SELECT 1 FROM {_ROWS} r WHERE r._source_key = h._source_key)
              AND NOT EXISTS (SELECT 1 FROM {_CHANGES} c WHERE c._source_key = h._source_key)""",
        [office_id],
    )
    in_history = con.execute(
        f"SELECT count(*) FROM {_CHANGES} c JOIN {parents} h USING (_source_key) WHERE c.change = 'deleted'"
    ).fetchone()[0]
    return int(in_history)


def _delta_row(result: ObjectDelta, max_modified: datetime | None, **ids: Any) -> list[Any]:
    return [
        ids["snapshot_id"], result.object_name, ids["office_id"], result.mode, result.cursor, result.since,
        result.rows_read, result.source_rows, result.new, result.changed, result.deleted, result.deleted_in_history,
        result.full_read_reason, max_modified, ids["detected_at"], result.seconds,
    ]


def _record_unchanged(con: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    if rows:
        con.executemany(f"INSERT INTO {DELTAS_TABLE} VALUES ({', '.join('?' * 16)})", rows)


def _apply(
    con: duckdb.DuckDBPyConnection,
    obj: CatalogObject,
    result: ObjectDelta,
    *,
    office_id: str,
    snapshot_id: str,
    detected_at: datetime,
    rejects: Sequence[Reject] = (),
) -> None:
    """Bring ``dentrix.<obj>`` to the source's state and record the changed keys and counts, atomically.

    The staging rejects of the changed rows are replaced by this read's; whole-row rejects
    (no key to match) only when the object was read whole (``staging.rejects``).
    """
    staged = _staged(obj)
    columns = ", ".join(quote(c) for c in (*obj.column_names, "_office_id", "_source_key", "_row_hash", "_snapshot_id"))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""DELETE FROM {staged} WHERE _office_id = ?
                AND _source_key IN (SELECT _source_key FROM {_CHANGES} WHERE change <> 'new')""",
            [office_id],
        )
        con.execute(
            f"""INSERT INTO {staged} ({columns})
                SELECT {columns} FROM {_ROWS}
                WHERE _source_key IN (SELECT _source_key FROM {_CHANGES} WHERE change <> 'deleted')"""
        )
        con.execute(
            f"""INSERT INTO {CHANGES_TABLE} (snapshot_id, object_name, source_key, change, detected_at, office_id)
                SELECT ?, ?, _source_key, change, ?, ? FROM {_CHANGES} ORDER BY change, _source_key""",
            [snapshot_id, obj.name, detected_at, office_id],
        )
        record_rejects(
            con, rejects, office_id=office_id, object_name=obj.name, snapshot_id=snapshot_id,
            only_keys=f"SELECT _source_key FROM {_CHANGES}", whole_rows=result.mode == "full",
        )
        row = _delta_row(
            result, _cursor(con, obj, office_id), snapshot_id=snapshot_id, office_id=office_id, detected_at=detected_at
        )
        con.execute(f"INSERT INTO {DELTAS_TABLE} VALUES ({', '.join('?' * 16)})", row)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
