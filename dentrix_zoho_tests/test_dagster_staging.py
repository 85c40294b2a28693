"""The staging multi-asset: a subset of objects in one run, one materialization each; a bad object fails alone."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dentrix_zoho.defs.source.assets import dentrix_staging, staged_asset_key
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import WorkspaceResource

CHOSEN = ["patient", "v_patient", "appt"]


def _materialize(source: Path, home: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [dentrix_staging],
        selection=[staged_asset_key(name) for name in CHOSEN],
        resources={
            "dentrix": DentrixSourceResource(source=f"sqlite:///{source}"),
            "workspace": WorkspaceResource(home=str(home)),
        },
        raise_on_error=False,
    )


def _materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    return {
        event.asset_key.path[-1]: {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def test_a_subset_is_staged_in_one_run_with_one_materialization_per_object(
    tiny_practice: Path, tmp_path: Path
) -> None:
    result = _materialize(tiny_practice, tmp_path / "home")
    assert result.success
    staged = _materialized(result)
    assert sorted(staged) == sorted(CHOSEN)  # the other 45 objects are not touched
    with sqlite3.connect(tiny_practice) as raw:
        for name in CHOSEN:
            assert staged[name]["dagster/row_count"] == raw.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            columns = staged[name]["dagster/column_schema"].columns
            assert {"_row_hash", "_source_key"} <= {c.name for c in columns}
    con = duckdb.connect(str(tmp_path / "home" / "staging.duckdb"), read_only=True)
    try:
        snapshots = con.execute("SELECT count(DISTINCT snapshot_id), count(*) FROM staging_meta.snapshots").fetchone()
    finally:
        con.close()
    assert snapshots == (1, len(CHOSEN))


def test_an_object_that_cannot_be_read_fails_the_step_after_the_others_are_staged(
    tiny_practice: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "practice.db"
    shutil.copy(tiny_practice, broken)
    with sqlite3.connect(broken) as con:
        con.execute("DROP VIEW v_patient")
    result = _materialize(broken, tmp_path / "home")
    assert not result.success
    assert sorted(_materialized(result)) == ["appt", "patient"]
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    error = failure.step_failure_data.user_failure_data
    assert error is not None and "admin.v_patient" in (error.description or "")
    assert error.metadata["failed_objects"].value == "v_patient"
