"""deploy/local/dagster.yaml, loaded as shipped against a real PostgreSQL: storage, queue, pools."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.run_coordinator import QueuedRunCoordinator
from dentrix_zoho.defs.pg_pool import (
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresScheduleStorage,
)
from dentrix_zoho_tests.instance.conftest import LOCAL_YAML
from dentrix_zoho_tests.instance.queue_defs import OFFICE_TAG, pooled_asset

ONE_PER_OFFICE = {"applyLimitPerUniqueValue": True}
POOLED = {
    "run_storage": PooledPostgresRunStorage,
    "event_log_storage": PooledPostgresEventLogStorage,
    "schedule_storage": PooledPostgresScheduleStorage,
}


def _libpq(env: dict[str, str]) -> str:
    return (
        f"postgresql://{env['DAGSTER_PG_USERNAME']}:{env['DAGSTER_PG_PASSWORD']}"
        f"@{env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}/{env['DAGSTER_PG_DB']}"
    )


def test_the_shipped_file_keeps_no_password() -> None:
    config = yaml.safe_load(LOCAL_YAML.read_text())
    assert "storage" not in config  # it would stand beside the three storages below
    for key, cls in POOLED.items():
        assert (config[key]["module"], config[key]["class"]) == (cls.__module__, cls.__name__)
        storage = config[key]["config"]["postgres_db"]
        assert storage["password"] == {"env": "DAGSTER_PG_PASSWORD"}
        assert storage["scheme"] == "postgresql+psycopg2"
        assert all(isinstance(value, dict) and set(value) == {"env"} for k, value in storage.items() if k != "scheme")


def test_runs_events_and_pool_slots_are_stored_in_postgresql(local_home: Path, pg_env: dict[str, str]) -> None:
    with dg.DagsterInstance.from_config(str(local_home)) as instance:
        # The shipped file builds the pooled storages (dentrix_zoho/defs/pg_pool.py), not plain dagster-postgres.
        for key, cls in POOLED.items():
            assert type(getattr(instance, key)) is cls, (key, type(getattr(instance, key)))
        result = dg.materialize([pooled_asset], instance=instance, tags={OFFICE_TAG: "A"})
        assert result.success
        # The asset's pool took a slot in PostgreSQL, under the file's default limit.
        pool = instance.event_log_storage.get_concurrency_info("duckdb_writer")
        assert (pool.slot_count, pool.using_default_limit, pool.claimed_slots) == (1, True, [])
        ref = instance.get_ref()

    # What another process (the daemon, the UI) sees: the rows themselves, read with plain SQL.
    with psycopg.connect(_libpq(pg_env)) as conn:
        run = conn.execute("SELECT status, run_body FROM runs WHERE run_id = %s", (result.run_id,)).fetchone()
        events = dict(
            conn.execute(
                "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s GROUP BY 1", (result.run_id,)
            ).fetchall()
        )
    assert run is not None and run[0] == "SUCCESS" and OFFICE_TAG in run[1]
    # Dagster stores run start/success under their legacy names in the event log table.
    assert events["PIPELINE_START"] == events["PIPELINE_SUCCESS"] == events["ASSET_MATERIALIZATION"] == 1

    # A run process gets the instance by reference: the same pooled storages.
    with dg.DagsterInstance.from_ref(ref) as by_ref:
        for key, cls in POOLED.items():
            assert type(getattr(by_ref, key)) is cls, (key, type(getattr(by_ref, key)))

    # A new instance from the same file reads the same run back.
    with dg.DagsterInstance.from_config(str(local_home)) as again:
        record = again.get_run_record_by_id(result.run_id)
        assert record is not None and record.dagster_run.tags[OFFICE_TAG] == "A"
        assert again.get_latest_materialization_event(dg.AssetKey("pooled_asset")) is not None


def test_runs_are_queued_one_per_office_and_launched_as_local_processes(local_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(local_home)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        config = instance.get_concurrency_config()
        queue = config.run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 4
        limits = {(limit["key"], str(limit.get("value")), limit["limit"]) for limit in queue.tag_concurrency_limits}
        assert limits == {
            (OFFICE_TAG, str(ONE_PER_OFFICE), 1),
            ("dagster/partition", str(ONE_PER_OFFICE), 1),
        }
        assert config.pool_config.default_pool_limit == 1
        assert config.pool_config.pool_granularity is not None and config.pool_config.pool_granularity.value == "op"
        assert instance.run_monitoring_enabled and instance.run_retries_enabled


def test_a_missing_password_variable_is_named_and_no_secret_is_shown(
    local_home: Path, pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    with pytest.raises(dg.DagsterInvalidConfigError) as raised:
        dg.DagsterInstance.from_config(str(local_home)).get_runs()
    assert "DAGSTER_PG_PASSWORD" in str(raised.value)
    assert pg_env["DAGSTER_PG_PASSWORD"] not in str(raised.value)
