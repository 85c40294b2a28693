"""The run queue of deploy/local/dagster.yaml, drained by a real `dagster-daemon run` on a real PostgreSQL.

Seven runs for five offices go into the queue at once (through a sensor, as the project's own office
sensors will submit them). The shipped limits say: at most 4 runs in progress, at most one per
office. Each run holds until the test releases it, so the test, not the machine's speed, decides
when runs end; it releases a run only when the queue can launch nothing more. At every look it
checks the limits on what the instance says is in progress, and at the end again on the start and
end times the runs recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from dentrix_zoho_tests.instance.conftest import LOCAL_YAML
from dentrix_zoho_tests.instance.daemon import log_tail, make_gate, release, running_daemon, started
from dentrix_zoho_tests.instance.queue_defs import OFFICE_TAG

pytestmark = pytest.mark.slow

PARTITION_TAG = "dagster/partition"
MAX_RUNS = yaml.safe_load(LOCAL_YAML.read_text())["concurrency"]["runs"]["max_concurrent_runs"]
IN_PROGRESS = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}
ENDED_BADLY = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.CANCELING}
BOUND_SECONDS = 420  # a bound on a broken queue, never a measurement

# Office A and C by the project's office tag, B and D as office partitions (what a backfill
# launches: only Dagster's partition tag); A and B twice each. Five offices, seven runs, limit 4.
REQUESTS = [
    {"key": "A-1", "job": "hold_job", "tags": {OFFICE_TAG: "A"}},
    {"key": "A-2", "job": "hold_job", "tags": {OFFICE_TAG: "A"}},
    {"key": "B-1", "job": "hold_partitioned_job", "partition": "B"},
    {"key": "B-2", "job": "hold_partitioned_job", "partition": "B"},
    {"key": "C-1", "job": "hold_job", "tags": {OFFICE_TAG: "C"}},
    {"key": "D-1", "job": "hold_partitioned_job", "partition": "D"},
    {"key": "E-1", "job": "hold_job", "tags": {OFFICE_TAG: "E"}},
]


def _office(run: dg.DagsterRun) -> str:
    return run.tags.get(OFFICE_TAG) or run.tags[PARTITION_TAG]


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return make_gate(tmp_path / "gate", REQUESTS)


@pytest.fixture
def daemon(local_home: Path, gate: Path, tmp_path: Path) -> Iterator[Path]:
    """`dagster-daemon run` on the shipped instance; its log file."""
    log = tmp_path / "daemon.log"
    with running_daemon(local_home, gate, log):
        yield log


def test_the_daemon_runs_at_most_one_run_per_office_and_at_most_the_limit(
    local_home: Path, gate: Path, daemon: Path, pg_env: dict[str, str]
) -> None:
    assert MAX_RUNS == 4  # the numbers below are chosen for this limit
    released: set[str] = set()
    peak = 0
    deadline = time.monotonic() + BOUND_SECONDS
    with dg.DagsterInstance.from_config(str(local_home)) as instance:
        while True:
            assert time.monotonic() < deadline, f"the queue stalled; daemon log:\n{log_tail(daemon)}"
            runs = [record.dagster_run for record in instance.get_run_records()]
            assert not [r for r in runs if r.status in ENDED_BADLY], f"a run failed:\n{log_tail(daemon)}"
            if len(runs) == len(REQUESTS) and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
                break

            active = [r for r in runs if r.status in IN_PROGRESS]
            offices = [_office(r) for r in active]
            assert len(active) <= MAX_RUNS, f"{len(active)} runs in progress: {offices}"
            assert len(set(offices)) == len(offices), f"two runs of one office in progress: {offices}"
            peak = max(peak, len(active))

            if any(r.run_id in released for r in active):
                time.sleep(0.25)  # a released run is finishing; let it end before judging the queue
                continue
            queued = [r for r in runs if r.status == dg.DagsterRunStatus.QUEUED]
            launchable = len(runs) < len(REQUESTS) or any(_office(r) not in offices for r in queued)
            if active and (len(active) == MAX_RUNS or not launchable):
                # The queue can launch nothing more until a run ends: end one, preferring one whose op
                # has started (any choice is valid; this one keeps the order stable).
                chosen = min(active, key=lambda r: (r.run_id not in started(gate), r.run_id))
                release(gate, chosen.run_id)
                released.add(chosen.run_id)
            time.sleep(0.25)

        records = instance.get_run_records()

    assert peak == MAX_RUNS  # the queue did run offices in parallel, up to the limit
    assert {r.dagster_run.tags.get("dagster/run_key") for r in records} == {q["key"] for q in REQUESTS}
    assert started(gate) == {r.dagster_run.run_id for r in records}

    # The same limits on the recorded start and end times of the runs themselves.
    spans = [(r.start_time, r.end_time, _office(r.dagster_run)) for r in records]
    assert all(start is not None and end is not None and start < end for start, end, _ in spans)
    by_office: dict[str, list[tuple[float, float]]] = {}
    for start, end, office in spans:
        by_office.setdefault(office, []).append((start, end))
    for office, times in by_office.items():
        times.sort()
        assert all(earlier[1] <= later[0] for earlier, later in zip(times, times[1:])), f"office {office} overlapped"
    assert sorted(len(times) for times in by_office.values()) == [1, 1, 1, 2, 2]
    edges = sorted([(start, 1) for start, _, _ in spans] + [(end, -1) for _, end, _ in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most <= MAX_RUNS
    assert pg_env["DAGSTER_PG_PASSWORD"] not in daemon.read_text(errors="replace")

