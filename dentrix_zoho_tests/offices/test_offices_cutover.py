"""With an offices file, the cutover sensor and schedule work per office: its own window, its own fingerprint, its partition."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from dentrix_zoho.defs.cutover.schedules import build_office_cutover_schedule
from dentrix_zoho.defs.cutover.sensors import build_office_cutover_sensor
from dentrix_zoho.defs.offices import OFFICES_PARTITIONS, OFFICES_PARTITIONS_NAME, offices_of
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import WorkspaceResource

START = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
PROBED = ("patient", "appt")


@dg.op
def _noop() -> None:
    pass


@dg.job(name="delta_migration", partitions_def=OFFICES_PARTITIONS)
def delta_migration() -> None:
    _noop()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def dso(tiny_practice: Path, tmp_path: Path) -> tuple[WorkspaceResource, dict[str, Path], dg.DagsterInstance]:
    dbs = {name: tmp_path / f"{name}.db" for name in ("north", "south")}
    for db in dbs.values():
        shutil.copy(tiny_practice, db)
    window = "    cutover: {start: '2026-11-02T01:00:00+00:00', length_hours: 36, deletion_policy: %s}\n"
    text = (
        "offices:\n"
        f"  north:\n    dentrix: {{url: 'sqlite:///{dbs['north']}'}}\n    time_zone: UTC\n" + window % "mark"
        + f"  south:\n    dentrix: {{url: 'sqlite:///{dbs['south']}'}}\n    time_zone: UTC\n" + window % "delete"
        # An office whose window is not open yet, and one whose server is down: neither stops the others.
        + f"  later:\n    dentrix: {{url: 'sqlite:///{tmp_path / 'absent.db'}'}}\n    time_zone: UTC\n"
        "    cutover: {start: '2026-12-01T01:00:00+00:00'}\n"
        + f"  down:\n    dentrix: {{url: 'sqlite:///{tmp_path / 'absent.db'}'}}\n    time_zone: UTC\n"
        + window % "delete"
        + f"  quiet:\n    dentrix: {{url: 'sqlite:///{dbs['north']}'}}\n    time_zone: UTC\n"
    )
    (tmp_path / "offices.yaml").write_text(text, encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(OFFICES_PARTITIONS_NAME, ["north", "south", "later", "down", "quiet"])
    workspace = WorkspaceResource(home=str(tmp_path / "home"), offices_file=str(tmp_path / "offices.yaml"))
    return workspace, dbs, instance


def _tick(sensor: dg.SensorDefinition, workspace: WorkspaceResource, instance: dg.DagsterInstance,
          cursor: str | None):  # noqa: ANN202
    resources = {"dentrix": DentrixSourceResource(), "workspace": workspace}
    # Partitioned run requests are checked against the job's partitions: the sensor needs its repository.
    repository = dg.Definitions(jobs=[delta_migration], sensors=[sensor], resources=resources).get_repository_def()
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources,
                                      repository_def=repository)
    # The daemon loads partitions from its instance; a test says which instance that is.
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return sensor.evaluate_tick(context)


def test_each_office_gets_a_delta_run_of_its_own_partition_when_its_dentrix_changes(dso) -> None:  # type: ignore[no-untyped-def]
    workspace, dbs, instance = dso
    clock = Clock(START + timedelta(hours=1))
    sensor = build_office_cutover_sensor(delta_migration, offices_of, objects=PROBED, clock=clock)

    first = _tick(sensor, workspace, instance, None)
    assert sorted((r.partition_key, r.tags["dentrix_zoho/deletion_policy"]) for r in first.run_requests) == [
        ("north", "mark"), ("south", "delete")]
    assert len({r.run_key for r in first.run_requests}) == 2

    quiet = _tick(sensor, workspace, instance, first.cursor)
    assert not quiet.run_requests
    for part in ("north: no Dentrix changes", "later: the cutover window opens at", "down: Dentrix not reachable",
                 "quiet: no cutover window"):
        assert part in (quiet.skip_message or ""), part

    with sqlite3.connect(dbs["south"]) as db:
        db.execute("UPDATE appt SET apptlen = 90, automodifiedtimestamp = '2026-11-02 02:00:00' "
                   "WHERE apptid = (SELECT max(apptid) FROM appt)")
    changed = _tick(sensor, workspace, instance, first.cursor)
    assert [(r.partition_key, r.tags["dentrix_zoho/changed_objects"]) for r in changed.run_requests] == [
        ("south", "appt")]
    assert not _tick(sensor, workspace, instance, changed.cursor).run_requests


def test_an_office_without_a_partition_yet_is_left_to_the_offices_sensor(dso) -> None:  # type: ignore[no-untyped-def]
    workspace, _, instance = dso
    instance.delete_dynamic_partition(OFFICES_PARTITIONS_NAME, "south")
    sensor = build_office_cutover_sensor(delta_migration, offices_of, objects=PROBED,
                                         clock=Clock(START + timedelta(hours=1)))
    result = _tick(sensor, workspace, instance, None)
    assert [r.partition_key for r in result.run_requests] == ["north"]


def test_the_schedule_requests_a_run_per_office_whose_window_is_open(dso, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workspace, _, _ = dso
    schedule = build_office_cutover_schedule(delta_migration, offices_of, "*/10 * * * *")
    # A schedule's test context reaches its instance by reference: an ephemeral instance has none. Not
    # entered (`with` / instance_for_test): entering sets Dagster's process-wide current state storage,
    # which outlived the test and broke the next file's materializations in the same worker.
    (tmp_path / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    try:
        _schedule_ticks(schedule, workspace, instance)
    finally:
        instance.dispose()


def _schedule_ticks(schedule: dg.ScheduleDefinition, workspace: WorkspaceResource, instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions(OFFICES_PARTITIONS_NAME, ["north", "south", "later", "down", "quiet"])

    resources = {"workspace": workspace}
    repository = dg.Definitions(jobs=[delta_migration], schedules=[schedule], resources=resources).get_repository_def()

    def tick(at: datetime):  # noqa: ANN202
        # Entered: the context opens its instance from the ref and closes it (and Dagster's current state
        # storage with it) on exit.
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=at, resources=resources,
                                       repository_def=repository) as context, \
                dg.partition_loading_context(dynamic_partitions_store=instance):
            return schedule.evaluate_tick(context)

    inside = tick(START + timedelta(hours=3))
    assert sorted((r.partition_key, r.run_key) for r in inside.run_requests) == [
        ("down", "cutover-down-20261102T040000Z"), ("north", "cutover-north-20261102T040000Z"),
        ("south", "cutover-south-20261102T040000Z")]
    outside = tick(START - timedelta(hours=1))
    assert not outside.run_requests and "north: the cutover window opens at" in (outside.skip_message or "")
