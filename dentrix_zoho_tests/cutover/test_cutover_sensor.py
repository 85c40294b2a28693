"""The probe, the cutover sensor (skips outside the window, fires once per Dentrix state) and the schedule."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from dentrix_zoho.cutover.probe import (
    change_fingerprint,
    fingerprint_changed,
    fingerprint_from_json,
    fingerprint_to_json,
)
from dentrix_zoho.cutover.window import CutoverWindow
from dentrix_zoho.defs.cutover import build_cutover_schedule, build_cutover_sensor
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.source.connection import open_source

START = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
WINDOW = CutoverWindow(start=START, length_hours=36, poll_interval_seconds=90, deletion_policy="mark")
PROBED = ("patient", "appt", "fullproclog", "v_appt_status_codes")


@dg.op
def _noop() -> None:
    pass


@dg.job(name="delta_migration")
def delta_migration() -> None:
    _noop()


@pytest.fixture()
def db(tiny_practice: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "practice.db"
    shutil.copy(tiny_practice, copy)
    return copy


def write(db: Path, sql: str, params: tuple = ()) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def tick(sensor: dg.SensorDefinition, db: Path, cursor: str | None):  # noqa: ANN201
    context = dg.build_sensor_context(
        cursor=cursor, resources={"dentrix": DentrixSourceResource(source=f"sqlite:///{db}")}
    )
    return sensor.evaluate_tick(context)


def fingerprint(db: Path) -> dict:
    with open_source(f"sqlite:///{db}") as conn:
        return change_fingerprint(conn, PROBED)


def test_the_fingerprint_moves_with_an_edit_an_insert_and_a_delete(db: Path) -> None:
    base = fingerprint(db)
    assert fingerprint(db) == base and fingerprint_changed(base, fingerprint(db)) == []
    assert base["v_appt_status_codes"].max_modified is None and base["patient"].row_count > 0

    write(db, "UPDATE patient SET emailaddr = 'x@example.org', automodifiedtimestamp = '2026-11-02 09:00:00' WHERE patid = 1")
    edited = fingerprint(db)
    assert fingerprint_changed(base, edited) == ["patient"]

    write(db, "DELETE FROM appt WHERE apptid = (SELECT min(apptid) FROM appt)")
    write(db, "DELETE FROM fulldef WHERE deftype = 11 AND defid = (SELECT max(defid) FROM fulldef WHERE deftype = 11)")
    assert fingerprint_changed(edited, fingerprint(db)) == ["appt", "v_appt_status_codes"]
    assert fingerprint_changed(None, base) == sorted(PROBED)


def test_the_fingerprint_survives_its_json_cursor(db: Path) -> None:
    base = fingerprint(db)
    assert fingerprint_from_json(fingerprint_to_json(base)) == base
    assert fingerprint_from_json("not json") is None and fingerprint_from_json(None) is None


def test_the_sensor_skips_outside_the_window_without_touching_dentrix(tmp_path: Path) -> None:
    probes: list[int] = []

    def counting_probe(conn, objects):  # noqa: ANN001, ANN202
        probes.append(1)
        return {}

    clock = Clock(START - timedelta(hours=2))
    sensor = build_cutover_sensor(delta_migration, lambda: WINDOW, counting_probe, objects=PROBED, clock=clock)
    missing = tmp_path / "absent.db"  # opening it would fail: proof the sensor did not try
    before = tick(sensor, missing, None)
    assert not before.run_requests and before.skip_message.startswith("outside the cutover window: ")
    assert "opens at" in before.skip_message
    clock.now = START + timedelta(hours=36, minutes=1)
    after = tick(sensor, missing, None)
    assert not after.run_requests and "closed at" in after.skip_message
    assert probes == []

    no_window = build_cutover_sensor(delta_migration, lambda: None, counting_probe, clock=clock)
    assert "DENTRIX_CUTOVER_START" in tick(no_window, missing, None).skip_message


def test_the_sensor_fires_inside_the_window_once_per_dentrix_state(db: Path) -> None:
    clock = Clock(START + timedelta(hours=1))
    sensor = build_cutover_sensor(delta_migration, lambda: WINDOW, objects=PROBED, clock=clock)
    assert sensor.minimum_interval_seconds == 90

    first = tick(sensor, db, None)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key and request.tags["dentrix_zoho/deletion_policy"] == "mark"
    assert fingerprint_from_json(first.cursor) == fingerprint(db)

    quiet = tick(sensor, db, first.cursor)
    assert not quiet.run_requests and quiet.skip_message.startswith("no Dentrix changes since ")

    write(db, "UPDATE appt SET apptlen = 90, automodifiedtimestamp = '2026-11-02 02:00:00' WHERE apptid = (SELECT max(apptid) FROM appt)")
    clock.now += timedelta(minutes=5)
    changed = tick(sensor, db, first.cursor)
    assert len(changed.run_requests) == 1
    assert changed.run_requests[0].run_key != request.run_key
    assert changed.run_requests[0].tags["dentrix_zoho/changed_objects"] == "appt"

    # Evaluated again from the older cursor (a lost cursor update): same state, same run key,
    # so Dagster launches it once.
    again = tick(sensor, db, first.cursor)
    assert again.run_requests[0].run_key == changed.run_requests[0].run_key
    assert not tick(sensor, db, changed.cursor).run_requests


def test_the_sensor_loads_with_the_definitions_resources(db: Path) -> None:
    sensor = build_cutover_sensor(delta_migration, lambda: WINDOW, objects=PROBED)
    defs = dg.Definitions(
        jobs=[delta_migration],
        sensors=[sensor],
        resources={"dentrix": DentrixSourceResource(source=f"sqlite:///{db}")},
    )
    assert defs.get_sensor_def("cutover_delta_sensor").job_name == "delta_migration"


def test_a_broken_window_does_not_stop_the_definitions_from_loading() -> None:
    from dentrix_zoho.cutover.window import load_cutover_window

    def broken() -> CutoverWindow | None:
        return load_cutover_window({"DENTRIX_CUTOVER_START": "2026-11-02T01:00:00+00:00", "DENTRIX_CUTOVER_HOURS": "12"})

    sensor = build_cutover_sensor(delta_migration, broken)
    assert sensor.minimum_interval_seconds == 300


def test_the_schedule_skips_outside_the_window_and_runs_inside() -> None:
    schedule = build_cutover_schedule(delta_migration, "*/10 * * * *", lambda: WINDOW)
    outside = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=START - timedelta(minutes=10)))
    assert not outside.run_requests and outside.skip_message.startswith("outside the cutover window: ")
    inside = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=START + timedelta(hours=3)))
    assert len(inside.run_requests) == 1
    assert inside.run_requests[0].run_key == "cutover-20261102T040000Z"
    assert inside.run_requests[0].tags["dentrix_zoho/deletion_policy"] == "mark"
