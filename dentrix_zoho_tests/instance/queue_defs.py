"""A tiny code location for the run-queue tests: ops that hold until the test releases them.

Loaded by ``dagster-daemon run -f`` (the daemon, its code server and every run process import it), so
it imports only dagster and the standard library. The test talks to the runs through files in the
folder named by ``QUEUE_TEST_DIR``:

- ``requests.json``: the runs the sensor submits (run key, job, office tag or partition);
- ``started-<run id>``: written by a run when its op starts;
- ``release-<run id>``: written by the test; the op finishes when it appears.

A gate instead of a sleep: the test decides when each run ends, so what it checks (which runs were
in progress together) never depends on how fast this machine is.
"""

# No "from __future__ import annotations": Dagster reads the op's context annotation at definition time.

import json
import os
import time
from pathlib import Path

import dagster as dg

GATE_ENV = "QUEUE_TEST_DIR"
OFFICE_TAG = "dentrix_zoho/office"
OFFICES = dg.StaticPartitionsDefinition(["A", "B", "C", "D", "E"])
HOLD_LIMIT_SECONDS = 300  # a bound so that a broken test cannot leave run processes behind forever


def _gate() -> Path:
    return Path(os.environ[GATE_ENV])


@dg.op
def hold(context: dg.OpExecutionContext) -> None:
    gate = _gate()
    (gate / f"started-{context.run_id}").touch()
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while not (gate / f"release-{context.run_id}").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {context.run_id} was never released")
        time.sleep(0.2)


@dg.job
def hold_job() -> None:
    hold()


@dg.job(partitions_def=OFFICES)
def hold_partitioned_job() -> None:
    hold()


@dg.sensor(jobs=[hold_job, hold_partitioned_job], default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=1)
def requested_runs(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Submits each run of requests.json once (the run key dedupes across ticks)."""
    path = _gate() / "requests.json"
    requests = json.loads(path.read_text()) if path.exists() else []
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=request["key"],
                job_name=request["job"],
                partition_key=request.get("partition"),
                tags=request.get("tags", {}),
            )
            for request in requests
        ]
    )


@dg.asset(pool="duckdb_writer")
def pooled_asset() -> int:
    """Declares the pool the project's DuckDB writers share, so a run of it takes a slot of that pool."""
    return 1


defs = dg.Definitions(jobs=[hold_job, hold_partitioned_job], sensors=[requested_runs], assets=[pooled_asset])
