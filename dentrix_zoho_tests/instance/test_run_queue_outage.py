"""PostgreSQL goes away under the daemon and two running office runs, and comes back.

The server is stopped the hard way (``pg_ctl -m immediate``: connections cut, no checkpoint) while
two runs hold in their ops and a third, of the same office as one of them, waits in the queue.
Once the server is back: the daemon is still there, the held runs finish, the queued one is
launched, and each requested run happened exactly once (no retry, no duplicate), one per office at
a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from dentrix_zoho_tests.instance.conftest import LOCAL_YAML, dagster_pg_env
from dentrix_zoho_tests.instance.daemon import log_tail, make_gate, release, running_daemon, started, wait_for
from dentrix_zoho_tests.instance.queue_defs import OFFICE_TAG
from dentrix_zoho_tests.pg_server import PgServer

pytestmark = pytest.mark.slow

REQUESTS = [
    {"key": "A-1", "job": "hold_job", "tags": {OFFICE_TAG: "A"}},
    {"key": "A-2", "job": "hold_job", "tags": {OFFICE_TAG: "A"}},
    {"key": "B-1", "job": "hold_partitioned_job", "partition": "B"},
]


@pytest.fixture
def outage_home(private_pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in dagster_pg_env(private_pg_server.create_database("dagster")).items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    return home


def _runs(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [record.dagster_run for record in instance.get_run_records()]


@pytest.fixture
def daemon_log(outage_home: Path, tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "daemon.log"
    gate = make_gate(tmp_path / "gate", REQUESTS)
    with running_daemon(outage_home, gate, log) as proc:
        yield log
        assert proc.poll() is None, f"the daemon exited during the test:\n{log_tail(log)}"


def test_the_queue_survives_postgresql_going_away_and_each_run_happens_once(
    private_pg_server: PgServer, outage_home: Path, daemon_log: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wait_for(lambda: len(started(gate)) == 2, "A-1 and B-1 holding in their ops", daemon_log)
    before = {run.run_id: run for run in _runs(outage_home)}
    assert len(before) == 3
    holding = started(gate)
    assert sorted(before[run_id].tags.get("dagster/run_key") for run_id in holding) == ["A-1", "B-1"]
    (waiting,) = set(before) - holding
    assert before[waiting].status == dg.DagsterRunStatus.QUEUED

    size_before = daemon_log.stat().st_size
    private_pg_server.stop("immediate")
    # Long enough for dagster-postgres to give up its own connection retries: the daemon's loops
    # (sensor ticks, the queue, heartbeats) then fail outright, which its log says.
    wait_for(
        lambda: "too many retries for DB connection" in daemon_log.read_text(errors="replace")[size_before:],
        "the daemon giving up on the stopped server",
        daemon_log,
    )
    private_pg_server.start()

    for run_id in holding:
        release(gate, run_id)
    wait_for(lambda: waiting in started(gate), "the queued run of office A launched after A-1 ended", daemon_log)
    release(gate, waiting)
    wait_for(
        lambda: all(run.status == dg.DagsterRunStatus.SUCCESS for run in _runs(outage_home)),
        "all three runs succeeded",
        daemon_log,
    )

    with dg.DagsterInstance.from_config(str(outage_home)) as instance:
        records = instance.get_run_records()
    assert sorted(r.dagster_run.tags["dagster/run_key"] for r in records) == ["A-1", "A-2", "B-1"]
    assert {r.dagster_run.run_id for r in records} == set(before)  # the same three runs: no retry
    # Pages of connection errors, and never the password in them.
    assert private_pg_server.password not in daemon_log.read_text(errors="replace")
    office_a = sorted((r.start_time, r.end_time) for r in records if r.dagster_run.tags.get(OFFICE_TAG) == "A")
    assert office_a[0][1] is not None and office_a[1][0] is not None and office_a[0][1] <= office_a[1][0]
