"""dentrix_zoho/defs/pg_pool.py: Dagster's PostgreSQL storages keeping one connection per process.

The instance file under test is the shipped deploy/local/dagster.yaml with its ``storage: postgres``
block given to the three pooled storage classes (``pooled_instance_file``): everything else as shipped.
Measured with PostgreSQL's own count of sessions opened (``pg_stat_database.sessions``).
"""

# No "from __future__ import annotations": Dagster reads the asset's context annotation at definition time.

from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import yaml

from dentrix_zoho.defs.pg_pool import (
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresScheduleStorage,
)
from dentrix_zoho_tests.instance.conftest import LOCAL_YAML, dagster_pg_env
from dentrix_zoho_tests.pg_server import PgServer

POOLED = {"run_storage": "PooledPostgresRunStorage", "event_log_storage": "PooledPostgresEventLogStorage",
          "schedule_storage": "PooledPostgresScheduleStorage"}


def _shipped() -> tuple[dict[str, Any], dict[str, Any]]:
    """The shipped file's PostgreSQL block, and the rest of it, whichever form the file has."""
    config = yaml.safe_load(LOCAL_YAML.read_text(encoding="utf-8"))
    if "storage" in config:
        return config.pop("storage")["postgres"], config
    postgres = config["event_log_storage"]["config"]
    for key in POOLED:
        config.pop(key)
    return postgres, config


def pooled_instance_file(home: Path) -> Path:
    """The shipped instance file, its PostgreSQL storage block given to the pooled classes."""
    postgres, rest = _shipped()
    pooled = {key: {"module": "dentrix_zoho.defs.pg_pool", "class": name, "config": postgres}
              for key, name in POOLED.items()}
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(yaml.safe_dump({**pooled, **rest}, sort_keys=False), encoding="utf-8")
    return path


def plain_instance_file(home: Path) -> Path:
    """The same with dagster-postgres' own storages (``storage: postgres``)."""
    postgres, rest = _shipped()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(yaml.safe_dump({"storage": {"postgres": postgres}, **rest}, sort_keys=False), encoding="utf-8")
    return path


@dg.asset
def chatty(context: dg.AssetExecutionContext) -> None:
    for n in range(20):  # each log line is an event Dagster writes to its event log
        context.log.info(f"line {n}")


def _libpq(env: dict[str, str]) -> str:
    return (f"postgresql://{env['DAGSTER_PG_USERNAME']}:{env['DAGSTER_PG_PASSWORD']}"
            f"@{env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}/{env['DAGSTER_PG_DB']}")


def _sessions(env: dict[str, str]) -> int:
    """Sessions PostgreSQL has opened on Dagster's database so far (this one included)."""
    with psycopg.connect(_libpq(env)) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s",
                           (env["DAGSTER_PG_DB"],)).fetchone()
    assert row is not None
    return int(row[0])


def _opened_by_materializing(home: Path, env: dict[str, str]) -> tuple[int, Any]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        dg.materialize([chatty], instance=instance)  # creates the tables first: not counted
        before = _sessions(env)
        result = dg.materialize([chatty], instance=instance)
        # The statistics collector reports a session when it ends; the pool's kept one has not.
        opened = _sessions(env) - before - 1  # less our own counting session
        return opened, result


def test_the_pooled_storages_open_a_few_sessions_where_dagster_opens_one_per_query(
    tmp_path: Path, pg_env: dict[str, str]
) -> None:
    plain, result = _opened_by_materializing(plain_instance_file(tmp_path / "plain").parent, pg_env)
    assert result.success
    pooled, result = _opened_by_materializing(pooled_instance_file(tmp_path / "pooled").parent, pg_env)
    assert result.success
    # A run of one asset with 20 log lines: Dagster's NullPool opens a session per query.
    assert plain > 30, plain
    assert pooled <= 3, (pooled, plain)


def test_the_pooled_instance_keeps_what_dagster_keeps(tmp_path: Path, pg_env: dict[str, str]) -> None:
    home = tmp_path / "home"
    pooled_instance_file(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PooledPostgresRunStorage)
        assert isinstance(instance.event_log_storage, PooledPostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PooledPostgresScheduleStorage)
        result = dg.materialize([chatty], instance=instance)
        assert result.success
        # A run process gets the instance by reference: the same pooled classes.
        ref = instance.get_ref()
    with dg.DagsterInstance.from_ref(ref) as again:
        assert isinstance(again.event_log_storage, PooledPostgresEventLogStorage)
        record = again.get_run_record_by_id(result.run_id)
        assert record is not None and record.dagster_run.is_success
        assert again.get_latest_materialization_event(dg.AssetKey("chatty")) is not None
    config = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))
    for key in POOLED:  # still no password in the file
        assert config[key]["config"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}


def test_a_kept_connection_lost_to_a_restart_is_replaced(
    tmp_path: Path, private_pg_server: PgServer, monkeypatch: Any
) -> None:
    env = dagster_pg_env(private_pg_server.create_database("dagster"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    pooled_instance_file(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert dg.materialize([chatty], instance=instance).success
        private_pg_server.restart("immediate")  # the kept connections are gone with the server
        result = dg.materialize([chatty], instance=instance)
        assert result.success
        assert instance.get_run_record_by_id(result.run_id) is not None
