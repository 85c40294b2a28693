"""Change detection against the staged snapshot: exactly the new, changed and deleted rows, no more."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dentrix_zoho.cutover.changes import ChangeDetectionError
from dentrix_zoho.cutover.simulate import record_appointment_deletion, simulate_activity
from dentrix_zoho.source.catalog import CATALOG
from dentrix_zoho.staging.stage_all import stage_objects


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def insert_patient_copy(practice, template_patid: int, new_patid: int, modified: str) -> None:  # noqa: ANN001
    columns = [r[1] for r in practice.read("PRAGMA table_info(patient)")]
    select = ", ".join("?" if c in ("patid", "automodifiedtimestamp") else c for c in columns)
    params = [new_patid if c == "patid" else modified for c in columns if c in ("patid", "automodifiedtimestamp")]
    practice.write(
        f"INSERT INTO patient ({', '.join(columns)}) SELECT {select} FROM patient WHERE patid = ?",
        [*params, template_patid],
    )


def test_an_unchanged_practice_yields_no_changes(practice) -> None:  # noqa: ANN001
    before = practice.staged("SELECT _source_key, _row_hash FROM dentrix.fullproclog")
    summary = practice.delta()
    assert summary.total == 0
    assert practice.recorded_changes() == set()
    # Re-read rows hash exactly as the full stage hashed them, so nothing was rewritten.
    assert set(practice.staged("SELECT _source_key, _row_hash FROM dentrix.fullproclog")) == set(before)
    assert {o.mode for o in summary.objects} == {"cursor"}


def test_inserted_changed_and_deleted_rows_are_found_exactly(practice, tmp_path) -> None:  # noqa: ANN001
    activity = simulate_activity(practice.db, at=datetime(2026, 11, 2, 9, 0), fraction=0.05, seed=3)
    assert activity.count("patient", "new") and activity.count("appt", "deleted") and activity.count("fullproclog", "changed")

    summary = practice.delta()

    assert practice.recorded_changes() == activity.as_rows()
    for name in activity.keys:
        counts = summary.by_object()[name]
        assert (counts.new, counts.changed, counts.deleted) == (
            activity.count(name, "new"), activity.count(name, "changed"), activity.count(name, "deleted"),
        ), name
    untouched = [o for o in summary.objects if o.object_name not in activity.keys]
    assert untouched and all(o.total == 0 for o in untouched)

    # The staged tables now hold what a full re-stage of the changed practice holds.
    fresh = tmp_path / "fresh.duckdb"
    stage_objects(practice.source, fresh, office_id="office-1", objects=list(activity.keys))
    import duckdb

    con = duckdb.connect(str(fresh), read_only=True)
    try:
        for name in activity.keys:
            expected = set(con.execute(f'SELECT _source_key, _row_hash FROM dentrix."{name}"').fetchall())
            assert set(practice.staged(f'SELECT _source_key, _row_hash FROM dentrix."{name}"')) == expected, name
    finally:
        con.close()

    # A second delta finds nothing: the first one brought staging up to date.
    assert practice.delta(snapshot_id="delta-2").total == 0


def test_a_row_modified_at_the_cursor_and_a_late_commit_inside_the_look_back_are_found(practice) -> None:  # noqa: ANN001
    cursor = practice.cursor("patient")
    (at_cursor_patid,) = practice.read("SELECT patid FROM patient WHERE automodifiedtimestamp = ?", [stamp(cursor)])[0]
    (old_patid, old_modified) = practice.read(
        "SELECT patid, automodifiedtimestamp FROM patient WHERE automodifiedtimestamp < ? "
        "ORDER BY automodifiedtimestamp DESC LIMIT 1",
        [stamp(cursor - timedelta(minutes=30))],
    )[0]
    highest = practice.read("SELECT max(patid) FROM patient")[0][0]
    # A second write in the very second of the cursor: same stamp, new value.
    practice.write("UPDATE patient SET emailaddr = 'second.write@example.org' WHERE patid = ?", [at_cursor_patid])
    # Stamped five minutes before the cursor, but committed only now.
    insert_patient_copy(practice, old_patid, highest + 1, stamp(cursor - timedelta(minutes=5)))
    # Outside the look-back: edited in place without a new stamp, so a cursor read never sees it.
    practice.write("UPDATE patient SET emailaddr = 'unseen@example.org' WHERE patid = ?", [old_patid])

    summary = practice.delta(objects=("patient",), lookback=timedelta(minutes=10))

    patient = summary.by_object()["patient"]
    assert patient.mode == "cursor" and patient.cursor == cursor
    assert patient.since == cursor - timedelta(minutes=10)
    window_rows = practice.read(
        "SELECT count(*) FROM patient WHERE automodifiedtimestamp >= ?", [stamp(cursor - timedelta(minutes=10))]
    )[0][0]
    assert patient.rows_read == window_rows == 2  # the cursor row and the late commit, nothing older
    assert practice.recorded_changes() == {
        ("patient", str(at_cursor_patid), "changed"),
        ("patient", str(highest + 1), "new"),
    }
    assert old_modified < stamp(cursor - timedelta(minutes=10))


def test_a_new_row_older_than_the_look_back_makes_the_object_read_whole(practice) -> None:  # noqa: ANN001
    cursor = practice.cursor("patient")
    highest = practice.read("SELECT max(patid) FROM patient")[0][0]
    insert_patient_copy(practice, highest, highest + 1, stamp(cursor - timedelta(minutes=5)))

    summary = practice.delta(objects=("patient",), lookback=timedelta(0))

    patient = summary.by_object()["patient"]
    assert patient.mode == "full" and "1 new key" in (patient.full_read_reason or "")
    assert patient.rows_read == practice.read("SELECT count(*) FROM patient")[0][0]
    assert practice.recorded_changes() == {("patient", str(highest + 1), "new")}


def test_deleted_appointments_are_read_from_appthist(practice) -> None:  # noqa: ANN001
    import sqlite3

    ids = [r[0] for r in practice.read("SELECT apptid FROM appt ORDER BY apptid LIMIT 4")]
    deleted_with_history, hard_deleted, still_there = ids[:2], ids[2], ids[3]
    at = practice.cursor("appt") + timedelta(hours=1)
    with sqlite3.connect(practice.db) as conn:
        for n, apptid in enumerate(deleted_with_history):
            conn.execute("DELETE FROM appt WHERE apptid = ?", [apptid])
            record_appointment_deletion(conn, apptid, stamp(at + timedelta(seconds=n)))
        conn.execute("DELETE FROM appt WHERE apptid = ?", [hard_deleted])
        # The history says deleted, but the appointment is still booked: the table wins.
        record_appointment_deletion(conn, still_there, stamp(at + timedelta(seconds=5)))

    summary = practice.delta(objects=("appt", "appthist"))

    appt = summary.by_object()["appt"]
    assert (appt.new, appt.changed, appt.deleted, appt.deleted_in_history) == (0, 0, 3, 2)
    assert summary.by_object()["appthist"].new == 3
    deleted = {key for name, key, change in practice.recorded_changes() if name == "appt" and change == "deleted"}
    assert deleted == {str(i) for i in (*deleted_with_history, hard_deleted)}
    remaining = {r[0] for r in practice.staged("SELECT apptid FROM dentrix.appt")}
    assert remaining.isdisjoint(deleted_with_history) and hard_deleted not in remaining and still_there in remaining


def test_an_object_without_a_modified_column_is_compared_whole(practice) -> None:  # noqa: ANN001
    assert CATALOG["v_appt_status_codes"].modified_column is None
    statuses = practice.read("SELECT defid FROM fulldef WHERE deftype = 11 AND defid > 0 ORDER BY defid")
    renamed, removed = statuses[0][0], statuses[1][0]
    practice.write("UPDATE fulldef SET descript = 'CONFIRMED' WHERE deftype = 11 AND defid = ?", [renamed])
    practice.write("DELETE FROM fulldef WHERE deftype = 11 AND defid = ?", [removed])
    practice.write("INSERT INTO fulldef (deftype, defid, descript, automodifiedtimestamp) VALUES (11, 900, 'TEXTED', NULL)")

    summary = practice.delta(objects=("v_appt_status_codes",))

    view = summary.by_object()["v_appt_status_codes"]
    assert view.mode == "full" and view.full_read_reason == "no modified-time column"
    assert practice.recorded_changes() == {
        ("v_appt_status_codes", str(renamed), "changed"),
        ("v_appt_status_codes", str(removed), "deleted"),
        ("v_appt_status_codes", "900", "new"),
    }


def test_a_delta_needs_a_full_stage_first(practice) -> None:  # noqa: ANN001
    import duckdb

    con = duckdb.connect(str(practice.staging))
    con.execute("DROP TABLE dentrix.aging")
    con.close()
    with pytest.raises(ChangeDetectionError, match="not staged yet: aging"):
        practice.delta(objects=("patient", "aging"))
