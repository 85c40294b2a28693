"""Stream one Dentrix object out of the source with plain ANSI SQL.

No vendor functions: the appointment start is assembled after extraction, text
is trimmed in the staging store, and the only statement shapes used are
``SELECT <columns> FROM <schema>.<object> [WHERE <modified> >= ?]``,
``SELECT min(<key>), max(<key>) FROM <schema>.<object>`` and, for a table read in
key-range slices by several connections at once, ``SELECT <columns> FROM
<schema>.<object> WHERE <key> >= ? AND <key> < ?`` (or ``<key> IS NULL``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dentrix_zoho.source.catalog import CatalogObject
from dentrix_zoho.source.connection import DentrixConnection, SourceError, is_sqlite_over_odbc, text_as_bytes

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 10_000
FIRST_CHUNK_ROWS = 1_000


@dataclass(frozen=True)
class ColumnPlan:
    """What the SELECT list will be for one object on this particular database."""

    select_list: tuple[str, ...]
    missing_optional: tuple[str, ...] = field(default=())


def probe_columns(conn: DentrixConnection, obj: CatalogObject) -> set[str]:
    """Column names (lower case) the database really has for ``obj``."""
    cur = conn.cursor()
    try:
        cur.execute(f"SELECT * FROM {conn.qualified(obj.name)} WHERE 1 = 0")
        return {str(d[0]).lower() for d in cur.description or ()}
    except Exception as exc:  # noqa: BLE001 - every driver has its own error class
        raise SourceError(
            f"the Dentrix {obj.kind} {conn.qualified(obj.name)} cannot be read from "
            f"{conn.describe()}: {_first_line(exc)}"
        ) from None
    finally:
        cur.close()


def plan_columns(conn: DentrixConnection, obj: CatalogObject) -> ColumnPlan:
    present = probe_columns(conn, obj)
    missing_required = [c.name for c in obj.columns if c.name not in present and not c.optional]
    if missing_required:
        raise SourceError(
            f"{conn.qualified(obj.name)} on {conn.describe()} lacks the column(s) "
            f"{', '.join(missing_required)} that the catalog expects"
        )
    select: list[str] = []
    missing_optional: list[str] = []
    # unixODBC's SQLite3 driver converts by the declared type itself and hides what it could not
    # (junk in an INTEGER column arrives as NULL, 'yes' in a BOOL as true, '31/02/19x7' as the
    # year 31): the SQLite stand-in's typed columns are read as the text SQLite holds, for
    # staging to convert or reject as on every other path. c-treeACE columns are typed.
    as_text = is_sqlite_over_odbc(conn)
    for column in obj.columns:
        if column.name in present and as_text and column.type != "VARCHAR":
            select.append(f"CAST({column.name} AS VARCHAR) AS {column.name}")
        elif column.name in present:
            select.append(column.name)
        else:
            # Documented fallback: a column that differs between Dentrix versions
            # is read as NULL so that the staged table keeps one shape.
            select.append(f"NULL AS {column.name}")
            missing_optional.append(column.name)
    return ColumnPlan(tuple(select), tuple(missing_optional))


def select_statement(conn: DentrixConnection, obj: CatalogObject, plan: ColumnPlan, *, since: bool) -> str:
    sql = f"SELECT {', '.join(plan.select_list)} FROM {conn.qualified(obj.name)}"
    if since:
        if not obj.modified_column:
            raise SourceError(f"{obj.name} has no modified-time column to read changes by")
        sql += f" WHERE {obj.modified_column} >= ?"
    return sql


@dataclass(frozen=True)
class KeySlice:
    """One slice of an integer key's range: ``low <= key < high`` (an open end is None), or the NULL keys."""

    low: int | None = None
    high: int | None = None
    nulls: bool = False

    def where(self, key: str) -> tuple[str, tuple[int, ...]]:
        if self.nulls:
            return f"{key} IS NULL", ()
        terms: list[str] = []
        params: list[int] = []
        if self.low is not None:
            terms.append(f"{key} >= ?")
            params.append(self.low)
        if self.high is not None:
            terms.append(f"{key} < ?")
            params.append(self.high)
        return " AND ".join(terms) or "1 = 1", tuple(params)


def integer_key(obj: CatalogObject) -> str | None:
    """The key column when ``obj`` is a table keyed by one integer column (it can be read in slices)."""
    if obj.kind != "table" or len(obj.key) != 1:
        return None
    return obj.key[0] if obj.column(obj.key[0]).type in ("INTEGER", "SMALLINT") else None


def key_bounds(conn: DentrixConnection, obj: CatalogObject, key: str) -> tuple[int, int] | None:
    """``(min, max)`` of the key, or None for an empty table."""
    sql = f"SELECT min({key}), max({key}) FROM {conn.qualified(obj.name)}"
    chunks = iter_query(conn, sql, what=f"reading the key range of {conn.qualified(obj.name)}")
    rows = [row for chunk in chunks for row in chunk]
    low, high = rows[0] if rows else (None, None)
    if low is None or high is None:
        return None
    try:
        return int(low), int(high)
    except (TypeError, ValueError):
        return None  # a key that is not a number somewhere (the SQLite stand-in): read it whole


def split_key_range(low: int, high: int, parts: int) -> list[KeySlice]:
    """``parts`` slices of equal key span covering every key, open-ended at both ends, plus the NULL keys.

    Open ends catch rows added beyond the bounds while the slices are read; the
    NULL slice keeps "every row exactly once" true even for a key that allows NULL.
    """
    parts = max(1, min(parts, high - low + 1))
    cuts = [low + (high - low + 1) * i // parts for i in range(1, parts)]
    edges: list[int | None] = [None, *cuts, None]
    return [KeySlice(edges[i], edges[i + 1]) for i in range(parts)] + [KeySlice(nulls=True)]


def slice_statement(
    conn: DentrixConnection, obj: CatalogObject, plan: ColumnPlan, key: str, key_slice: KeySlice
) -> tuple[str, tuple[int, ...]]:
    where, params = key_slice.where(key)
    return f"{select_statement(conn, obj, plan, since=False)} WHERE {where}", params


def iter_chunks(
    conn: DentrixConnection,
    obj: CatalogObject,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    since: datetime | None = None,
    plan: ColumnPlan | None = None,
) -> Iterator[Sequence[Sequence[Any]]]:
    """Yield lists of row tuples, at most ``chunk_rows`` at a time (memory stays flat)."""
    plan = plan or plan_columns(conn, obj)
    sql = select_statement(conn, obj, plan, since=since is not None)
    params = (_bind_datetime(conn, since),) if since is not None else ()
    yield from iter_query(conn, sql, params, chunk_rows=chunk_rows, what=f"reading {conn.qualified(obj.name)}")


def iter_query(
    conn: DentrixConnection,
    sql: str,
    params: Sequence[Any] = (),
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    what: str,
) -> Iterator[Sequence[Sequence[Any]]]:
    """Run one plain SELECT and yield its rows at most ``chunk_rows`` at a time; errors say ``what`` failed, and where.

    The first chunks are smaller (``FIRST_CHUNK_ROWS``, doubling up to ``chunk_rows``) so
    that whoever consumes them starts while the rest is fetched: a table of a few thousand
    rows would otherwise arrive as one chunk, fetched entirely before anything else runs.
    """
    with text_as_bytes(conn):
        yield from _fetch(conn, sql, params, chunk_rows=chunk_rows, what=what)


def _fetch(
    conn: DentrixConnection, sql: str, params: Sequence[Any], *, chunk_rows: int, what: str
) -> Iterator[Sequence[Sequence[Any]]]:
    cur = conn.cursor()
    try:
        try:
            cur.execute(sql, tuple(params)) if params else cur.execute(sql)
        except Exception as exc:  # noqa: BLE001 - every driver has its own error class
            raise SourceError(f"{what} from {conn.describe()} failed: {_first_line(exc)}") from None
        size = min(chunk_rows, FIRST_CHUNK_ROWS)
        while True:
            try:
                rows = cur.fetchmany(size)
            except Exception as exc:  # noqa: BLE001 - the object fails; its message may quote a value
                raise SourceError(f"{what} from {conn.describe()} failed: {exc.__class__.__name__}") from None
            if not rows:
                break
            yield rows
            size = min(chunk_rows, size * 2)
    finally:
        cur.close()


def _bind_datetime(conn: DentrixConnection, value: datetime) -> Any:
    # The SQLite stand-in stores DATETIME as ISO text; c-treeACE binds a real timestamp.
    if conn.dbms.lower().startswith("sqlite"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
