"""Shaping rows a real Dentrix can hold and Zoho must not get as they are: a key held by two rows,
an impossible appointment time, a whitespace-only note, references that loop or point nowhere."""

from __future__ import annotations

import datetime as dt
import json

import duckdb

from dentrix_zoho.mapping import load_spec, shape_all
from dentrix_zoho.mapping.integrity import duplicate_keys
from dentrix_zoho_tests.mapping.conftest import D, insert, patient


def shaped(practice, tmp_path, extra) -> duckdb.DuckDBPyConnection:  # type: ignore[no-untyped-def]
    conn = practice(extra)
    summary = shape_all(conn, load_spec(), office_id="office-1", as_of=dt.date(2026, 11, 1),
                        image_root=tmp_path / "images")
    assert summary.balanced, summary.markdown()
    return conn


def outcome(conn: duckdb.DuckDBPyConnection, source_id: str) -> tuple[int, set[str], set[str]]:
    """(rows shaped with this source id in any module table, quarantine reasons, skip rules)."""
    emitted = sum(
        conn.execute(f"SELECT count(*) FROM zoho_shaped.{t} WHERE source_id = ?", [source_id]).fetchone()[0]
        for t in ("contacts", "leads", "events", "notes", "tasks", "calls")
    )
    held = {r for (r,) in conn.execute("SELECT reason FROM zoho_shaped.quarantine WHERE source_id = ?",
                                       [source_id]).fetchall()}
    skipped = {r for (r,) in conn.execute("SELECT rule FROM zoho_shaped.skipped WHERE source_id = ?",
                                          [source_id]).fetchall()}
    return emitted, held, skipped


def test_every_row_of_a_duplicated_patid_is_held_back_with_its_children(practice, tmp_path) -> None:
    def twin(conn: duckdb.DuckDBPyConnection) -> None:
        insert(conn, "patient", [patient(3, firstname="Other")])  # patid 3 now has two rows
        insert(conn, "appt", [{"apptid": 300, "apptdate": D(2026, 11, 20), "timehr": 9, "timemin": 0,
                               "apptlen": 30, "patid": 3, "provid": "DDS1", "apptreason": "x", "status": 1,
                               "appttype": 1}])

    conn = shaped(practice, tmp_path, twin)
    assert outcome(conn, "office-1:patient:3") == (0, {"duplicate_source_key"}, set())
    accounting = conn.execute("SELECT staged, quarantined FROM zoho_shaped.accounting "
                              "WHERE source_object = 'patient'").fetchone()
    assert accounting == (11, 3)  # both rows of patid 3, and patient 5 (no last name) as before
    assert outcome(conn, "office-1:appt:300") == (0, {"parent_quarantined"}, set())
    # the other patients are untouched
    assert outcome(conn, "office-1:patient:1")[0] == 1


def test_a_duplicated_appointment_key_is_held_back_not_merged(practice, tmp_path) -> None:
    def twice(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("INSERT INTO dentrix.appt SELECT * FROM dentrix.appt WHERE apptid = 100")

    conn = shaped(practice, tmp_path, twice)
    assert outcome(conn, "office-1:appt:100") == (0, {"duplicate_source_key"}, set())
    assert duplicate_keys(conn, "dentrix", "appt", ["apptid"], "office-1") == {(100,)}
    assert duplicate_keys(conn, "dentrix", "appt", ["apptid"], "office-2") == set()
    assert duplicate_keys(conn, "dentrix", "appt", ["no_such_column"], "office-1") == set()


def test_impossible_appointment_times_are_quarantined_by_the_rule(practice, tmp_path) -> None:
    def impossible(conn: duckdb.DuckDBPyConnection) -> None:
        base = {"apptdate": D(2026, 11, 20), "patid": 1, "provid": "DDS1", "apptreason": "x", "status": 1,
                "appttype": 1}
        insert(conn, "appt", [{"apptid": 200, "timehr": 25, "timemin": 0, "apptlen": 30, **base},
                              {"apptid": 201, "timehr": 9, "timemin": 70, "apptlen": 30, **base},
                              {"apptid": 202, "timehr": 9, "timemin": 0, "apptlen": -30, **base},
                              {"apptid": 203, "timehr": 23, "timemin": 59, "apptlen": 0, **base}])

    conn = shaped(practice, tmp_path, impossible)
    for apptid in (200, 201, 202):
        assert outcome(conn, f"office-1:appt:{apptid}") == (0, {"appointment_time_impossible"}, set()), apptid
    assert outcome(conn, "office-1:appt:203") == (1, set(), set())  # the last minute of a day is possible
    [(field, value_class, rule)] = conn.execute(
        "SELECT field, value_class, rule FROM zoho_shaped.quarantine WHERE source_id = 'office-1:appt:200'"
    ).fetchall()
    assert (field, value_class, rule) == ("apptid", "row", "quarantine_rule:appointment_time_impossible")


def test_a_whitespace_only_note_is_skipped_as_empty(practice, tmp_path) -> None:
    def blank(conn: duckdb.DuckDBPyConnection) -> None:
        insert(conn, "clinicalnote", [{"cnotesid": 50, "patid": 1, "provid": "DDS1",
                                       "createdatetime": D(2026, 6, 1), "notetext": " \n\t \r\n "}])

    conn = shaped(practice, tmp_path, blank)
    assert outcome(conn, "office-1:clinicalnote:50") == (0, set(), {"empty_clinical_note"})


def test_guarantor_loops_and_dangling_references_shape_each_patient_once(practice, tmp_path) -> None:
    def loops(conn: duckdb.DuckDBPyConnection) -> None:
        insert(conn, "patient", [patient(20, guarid=21), patient(21, guarid=20),                 # A -> B -> A
                                 patient(30, guarid=31), patient(31, guarid=32), patient(32, guarid=30),
                                 patient(40, guarid=987654321, famid=987654321), patient(41, guarid=-7)])

    conn = shaped(practice, tmp_path, loops)
    for patid in (20, 21, 30, 31, 32, 40, 41):
        assert outcome(conn, f"office-1:patient:{patid}") == (1, set(), set()), patid
    links = {sid: json.loads(l) for sid, l in conn.execute(
        "SELECT source_id, links FROM zoho_shaped.contacts WHERE source_id IN "
        "('office-1:patient:20', 'office-1:patient:21', 'office-1:patient:40')").fetchall()}
    assert links["office-1:patient:20"]["Related_Party"]["source_id"] == "office-1:patient:21"
    assert links["office-1:patient:21"]["Related_Party"]["source_id"] == "office-1:patient:20"
    assert "Related_Party" not in links["office-1:patient:40"]
    dropped = conn.execute("SELECT reason FROM zoho_shaped.flags WHERE source_id = 'office-1:patient:40'").fetchall()
    assert ("related_party_missing",) in dropped
