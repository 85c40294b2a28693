"""The test PostgreSQL server itself: password-checked, and it can go away and come back mid-test."""

from __future__ import annotations

import psycopg
import pytest

from dentrix_zoho_tests.pg_server import PgServer, find_binaries


def test_binaries_are_found_on_path_or_in_debians_folder() -> None:
    found = find_binaries()
    assert found is not None and found.initdb.name == "initdb" and found.pg_ctl.name == "pg_ctl"
    assert "PostgreSQL" in found.version


def test_tcp_connections_need_the_password(pg_server: PgServer) -> None:
    with psycopg.connect(pg_server.url(driver="")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (pg_server.user,)
    wrong = pg_server.url(driver="").replace(pg_server.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong)


def test_the_server_goes_away_and_comes_back_on_the_same_port_with_committed_data(
    private_pg_server: PgServer,
) -> None:
    url = private_pg_server.create_database("away")
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    port = private_pg_server.port
    conn = psycopg.connect(plain, autocommit=True)
    conn.execute("CREATE TABLE t (n int)")
    conn.execute("INSERT INTO t VALUES (1)")

    private_pg_server.stop("immediate")  # a crash: no checkpoint, connections cut
    assert not private_pg_server.running
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(plain, connect_timeout=5)

    private_pg_server.start()
    assert private_pg_server.running and private_pg_server.port == port
    with psycopg.connect(plain) as again:
        assert again.execute("SELECT n FROM t").fetchall() == [(1,)]
