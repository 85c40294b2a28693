"""Connections to a Dentrix database: a SQLAlchemy URL or an ODBC connection string.

Dentrix G-series keeps its data in FairCom c-treeACE SQL (database ``DentrixSQL``,
every object in schema ``admin``), reached through the "c-treeACE ODBC Driver".
Tests and the demo read a SQLite stand-in, through SQLAlchemy or through
unixODBC's SQLite3 driver. Either way the extractor sees a DB-API cursor and
issues plain ANSI SQL.

SQLite has no schemas, so for a SQLite source the connection attaches the
database file to itself under the schema name (``ATTACH DATABASE 'x.db' AS
admin``): ``admin.v_patient`` then resolves exactly as on c-treeACE, and the
views inside the file keep resolving their unqualified tables.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

SourceKind = Literal["sqlalchemy", "odbc"]

_SECRET_KEYS = ("pwd", "password")
_ODBC_PAIR = re.compile(r"\s*([^=;]+?)\s*=\s*(\{[^}]*\}|[^;]*)\s*(?:;|$)")


class SourceError(RuntimeError):
    """A Dentrix source problem, worded for the operator (never carries a password)."""


@dataclass(frozen=True)
class SourceLocator:
    """Which kind of connection string we were given, and how to show it safely."""

    raw: str
    kind: SourceKind

    def redacted(self) -> str:
        if self.kind == "sqlalchemy":
            return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", self.raw)
        parts = []
        for key, value in odbc_pairs(self.raw):
            shown = "***" if key.lower() in _SECRET_KEYS else value
            parts.append(f"{key}={shown}")
        return ";".join(parts)

    def secrets(self) -> list[str]:
        """Secret values to scrub from driver messages."""
        if self.kind == "sqlalchemy":
            match = re.search(r"://[^:/@]*:([^@]*)@", self.raw)
            return [match.group(1)] if match and match.group(1) else []
        return [
            value.strip("{}")
            for key, value in odbc_pairs(self.raw)
            if key.lower() in _SECRET_KEYS and value
        ]


def odbc_pairs(conn_str: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _ODBC_PAIR.finditer(conn_str) if m.group(1)]


def parse_source(source: str) -> SourceLocator:
    """Tell a SQLAlchemy URL (``dialect://...``) from an ODBC string (``KEY=value;...``)."""
    text = (source or "").strip()
    if not text:
        raise SourceError(
            "DENTRIX_SOURCE is empty: give a SQLAlchemy URL such as sqlite:///practice.db "
            "or an ODBC connection string such as DSN=...;UID=...;PWD=..."
        )
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", text):
        return SourceLocator(text, "sqlalchemy")
    if "=" in text:
        return SourceLocator(text, "odbc")
    raise SourceError(
        "DENTRIX_SOURCE is neither a SQLAlchemy URL (dialect://...) nor an ODBC "
        "connection string (KEY=value;...)"
    )


def _scrub(message: str, locator: SourceLocator) -> str:
    for secret in locator.secrets():
        message = message.replace(secret, "***")
    return message


class DentrixConnection:
    """One open DB-API connection plus the facts the extractor needs about it."""

    def __init__(self, dbapi_conn: Any, locator: SourceLocator, schema: str, dbms: str) -> None:
        self.dbapi = dbapi_conn
        self.locator = locator
        self.schema = schema
        self.dbms = dbms

    def qualified(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name

    def cursor(self) -> Any:
        return self.dbapi.cursor()

    def describe(self) -> str:
        return f"{self.dbms} source {self.locator.redacted()}"


def _sqlite3_driver(dbapi_conn: Any) -> Any | None:
    """The ``sqlite3.Connection`` under a DB-API connection (SQLAlchemy wraps it), or None."""
    import sqlite3

    for candidate in (dbapi_conn, getattr(dbapi_conn, "driver_connection", None)):
        if isinstance(candidate, sqlite3.Connection):
            return candidate
    return None


@contextlib.contextmanager
def text_as_bytes(conn: DentrixConnection) -> Iterator[None]:
    """While reading for staging, python's sqlite3 hands TEXT over as bytes, undecoded.

    Its own decoding raises on the first cell that is not UTF-8 ("Could not decode to
    UTF-8"), which would fail the whole object for one mistyped note, and its message
    quotes the text. As bytes, staging checks the UTF-8 of a whole chunk at once and
    rejects only the cells that fail (``staging.chunks.conform``). Bytes are also cheaper
    to fetch than str. Other drivers (pyodbc) decode themselves and are left alone.
    """
    driver = _sqlite3_driver(conn.dbapi)
    if driver is None:
        yield
        return
    previous = driver.text_factory
    driver.text_factory = bytes
    try:
        yield
    finally:
        driver.text_factory = previous


def is_sqlite_over_odbc(conn: DentrixConnection) -> bool:
    """The SQLite stand-in read through unixODBC's SQLite3 driver (tests and the benchmark)."""
    return conn.locator.kind == "odbc" and conn.dbms.lower().startswith("sqlite")


def _sqlite_path_from_odbc(conn_str: str) -> str | None:
    for key, value in odbc_pairs(conn_str):
        if key.lower() == "database":
            return value.strip("{}")
    return None


def _attach_sqlite_schema(dbapi_conn: Any, path: str, schema: str) -> None:
    if not schema or schema.lower() in ("main", "temp"):
        return
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA database_list")
        attached = {str(row[1]).lower() for row in cur.fetchall()}
        if schema.lower() not in attached:
            cur.execute(f"ATTACH DATABASE '{path.replace(chr(39), chr(39) * 2)}' AS {schema}")
    finally:
        cur.close()


def _connect_sqlalchemy(locator: SourceLocator, schema: str) -> tuple[Any, Any, str]:
    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(locator.raw)
    except Exception as exc:  # noqa: BLE001 - reworded for the operator
        raise SourceError(f"DENTRIX_SOURCE is not a valid SQLAlchemy URL: {locator.redacted()}") from exc
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    if url.get_backend_name() == "sqlite":
        db_path = url.database or ""
        if not db_path or db_path == ":memory:":
            raise SourceError("a SQLite Dentrix source needs a database file path")
        import os

        if not os.path.exists(db_path):
            raise SourceError(f"cannot connect to the Dentrix source {locator.redacted()}: no such file")

        @sa.event.listens_for(engine, "connect")
        def _attach(dbapi_conn: Any, _record: Any) -> None:
            _attach_sqlite_schema(dbapi_conn, db_path, schema)

    raw = engine.raw_connection()
    return engine, raw, engine.dialect.name


def _import_pyodbc() -> Any:
    try:
        import pyodbc
    except ImportError as exc:
        raise SourceError(
            "the ODBC path needs unixODBC: install it (Debian: apt-get install unixodbc; "
            "for the SQLite test driver also libsqliteodbc) and the vendor's ODBC driver "
            f"({exc.__class__.__name__}: {exc})"
        ) from exc
    return pyodbc


def _connect_odbc(locator: SourceLocator, schema: str, timeout_s: int) -> tuple[Any, str]:
    pyodbc = _import_pyodbc()
    try:
        conn = pyodbc.connect(locator.raw, autocommit=True, timeout=timeout_s)
    except pyodbc.Error as exc:
        raise SourceError(
            f"cannot connect to the Dentrix source {locator.redacted()}: {_scrub(str(exc), locator)}"
        ) from None
    try:
        dbms = str(conn.getinfo(pyodbc.SQL_DBMS_NAME))
    except pyodbc.Error:
        dbms = "odbc"
    if dbms.lower().startswith("sqlite"):
        path = _sqlite_path_from_odbc(locator.raw)
        if path:
            _attach_sqlite_schema(conn, path, schema)
    return conn, dbms


@contextlib.contextmanager
def open_source(source: str, schema: str = "admin", *, login_timeout_s: int = 15) -> Iterator[DentrixConnection]:
    """Open the Dentrix source read-only in spirit: we only ever SELECT."""
    locator = parse_source(source)
    if locator.kind == "sqlalchemy":
        try:
            engine, raw, dbms = _connect_sqlalchemy(locator, schema)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any driver failure becomes one clear error
            raise SourceError(
                f"cannot connect to the Dentrix source {locator.redacted()}: "
                f"{_scrub(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__, locator)}"
            ) from None
        try:
            yield DentrixConnection(raw, locator, schema, dbms)
        finally:
            raw.close()
            engine.dispose()
    else:
        conn, dbms = _connect_odbc(locator, schema, login_timeout_s)
        try:
            yield DentrixConnection(conn, locator, schema, dbms)
        finally:
            conn.close()
