"""Two offices: overlapping patient ids, the same definitions under different ids."""

from __future__ import annotations

import sqlite3

from dentrix_zoho.source.catalog import APPT_STATUS_COMPLETE, DefType
from dentrix_zoho.source.synthetic import GenerationResult


def _rows(result: GenerationResult, sql: str) -> list[tuple]:
    conn = sqlite3.connect(result.db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_patient_ids_overlap_between_offices(tiny_practice: GenerationResult, tiny_office2: GenerationResult) -> None:
    first = {r[0] for r in _rows(tiny_practice, "SELECT patid FROM patient")}
    second = {r[0] for r in _rows(tiny_office2, "SELECT patid FROM patient")}
    assert len(first & second) > 150
    names = dict(_rows(tiny_practice, "SELECT patid, lastname || firstname FROM patient"))
    other = dict(_rows(tiny_office2, "SELECT patid, lastname || firstname FROM patient"))
    assert sum(names[i] != other[i] for i in first & second) > 100  # same id, another person


def test_definitions_keep_descriptions_but_change_ids(tiny_practice: GenerationResult, tiny_office2: GenerationResult) -> None:
    for deftype in DefType:
        sql = f"SELECT TRIM(descript), defid FROM fulldef WHERE deftype = {int(deftype)}"
        first, second = dict(_rows(tiny_practice, sql)), dict(_rows(tiny_office2, sql))
        assert first.keys() == second.keys(), deftype
        assert first != second, deftype
    status = "SELECT TRIM(descript), defid FROM v_appt_status_codes"
    first, second = dict(_rows(tiny_practice, status)), dict(_rows(tiny_office2, status))
    assert first["Complete"] == second["Complete"] == APPT_STATUS_COMPLETE
    assert first["FIRM"] != second["FIRM"] or first["??????"] != second["??????"]
    assert tiny_office2.manifest.definition_ids["APPOINTMENT_STATUS"] == second


def test_other_practice_defined_ids_differ_too(tiny_practice: GenerationResult, tiny_office2: GenerationResult) -> None:
    for sql in (
        "SELECT TRIM(name), recallid FROM recalltype",
        "SELECT TRIM(label), custfieldid FROM custfield",
        "SELECT TRIM(name), dcdoctypeid FROM doccat",
        "SELECT TRIM(adacode), proccodeid FROM proccode",
    ):
        first, second = dict(_rows(tiny_practice, sql)), dict(_rows(tiny_office2, sql))
        assert first.keys() == second.keys() and first != second, sql


def test_appointments_use_their_own_office_ids(tiny_office2: GenerationResult) -> None:
    statuses = {r[0] for r in _rows(tiny_office2, "SELECT DISTINCT status FROM appt")}
    defined = {r[0] for r in _rows(tiny_office2, "SELECT defid FROM v_appt_status_codes")}
    assert statuses <= defined
    types = {r[0] for r in _rows(tiny_office2, "SELECT DISTINCT appttype FROM appt WHERE appttype <> 0")}
    assert types <= {r[0] for r in _rows(tiny_office2, "SELECT def_id FROM v_appointment_types")}
    assert tiny_office2.manifest.office == 2 and tiny_office2.manifest.practice_name != "Wasatch Family Dental"
