"""Fixtures shared across test areas."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from dentrix_zoho_tests.pg_server import PgServer

AS_OF = date(2026, 11, 1)
TINY_SEED = 7
_PG_DATABASE_NUMBERS = itertools.count(1)


@pytest.fixture(scope="session")
def tiny_practice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic Dentrix practice (about 200 patients), generated once per test session."""
    from dentrix_zoho.source.synthetic import generate_practice

    out = tmp_path_factory.mktemp("practice") / "practice.db"
    generate_practice(out, scale="tiny", seed=TINY_SEED, as_of=AS_OF)
    return out


# --- PostgreSQL: a real throw-away server (dentrix_zoho_tests/pg_server.py) -------------------------


def _pg_server_or_skip() -> PgServer:
    from dentrix_zoho_tests.pg_server import PgServer, PgUnavailable

    try:
        return PgServer.create()
    except PgUnavailable as absent:
        # The Makefile installs the server; in CI its absence is a broken install step, not a reason to skip.
        if os.environ.get("CI"):
            pytest.fail(str(absent))
        pytest.skip(str(absent))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server per test session (per xdist worker). Tests share it: take a fresh
    database with ``pg_database``; a test that stops the server uses ``private_pg_server``."""
    server = _pg_server_or_skip()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_database(pg_server: PgServer, request: pytest.FixtureRequest) -> str:
    """A new, empty database on the shared server; its SQLAlchemy URL (``postgresql+psycopg://``)."""
    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())[:40]
    name = f"{name}_{next(_PG_DATABASE_NUMBERS)}"
    return pg_server.create_database(name)


@pytest.fixture
def private_pg_server() -> Iterator[PgServer]:
    """A server of this test's own, to stop (``stop("immediate")`` is a crash) and ``start`` again mid-test."""
    server = _pg_server_or_skip()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


# --- Dagster's process-wide "current" state storage -----------------------------------------------


@pytest.fixture(autouse=True)
def _dagster_state_storage_per_test() -> Iterator[None]:
    """Each test starts and ends with no current Dagster defs-state storage.

    Dagster keeps it in a context variable, set when an instance is entered (``with instance``, and a
    schedule or sensor context that opens its instance from a ref) and restored on exit. One left set,
    or restored out of order, hands the next test in the same xdist worker a storage whose instance is
    gone: loading definitions then fails with 'Attempted to resolve undefined DagsterInstance weakref'
    (CI, test_dagster_migration after the office cutover and sensor tests). The reset on teardown puts
    back the value from before the test, whatever the test did in between."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield
