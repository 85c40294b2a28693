"""Shaping a staged column that staging rejected: an invalid value of every field mapped from it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest

from dentrix_zoho.mapping import load_spec, shape_all, source_system_id
from dentrix_zoho.mapping.records import Built, transform_fields
from dentrix_zoho.mapping.spec import FieldMap
from dentrix_zoho.mapping.transforms import Context
from dentrix_zoho.staging.stage_all import stage_objects

pytestmark = pytest.mark.slow
OFFICE = "office-1"
AS_OF = dt.date(2026, 11, 1)
LONG_NAME = "Quixotically" * 3  # 36 characters in a CHAR(22) column


def _stage_and_shape(db: Path, folder: Path) -> duckdb.DuckDBPyConnection:
    staging = folder / "staging.duckdb"
    stage_objects(f"sqlite:///{db}", staging, office_id=OFFICE, objects=None)
    conn = duckdb.connect(str(staging))
    shape_all(conn, load_spec(), office_id=OFFICE, as_of=AS_OF, image_root=folder)
    return conn


@pytest.fixture(scope="module")
def shaped(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two Contacts of the clean practice, one given an unparseable birth date, one an over-long last name."""
    clean_dir = tmp_path_factory.mktemp("clean")
    clean = _stage_and_shape(tiny_practice, clean_dir)
    rows = clean.execute(
        "SELECT source_id FROM zoho_shaped.contacts WHERE office_id = ? AND json_extract_string(record, "
        "'$.Date_of_Birth') IS NOT NULL AND source_id LIKE '%:patient:%' ORDER BY source_id LIMIT 2", [OFFICE]
    ).fetchall()
    clean_accounting = dict(clean.execute(
        "SELECT source_object, quarantined FROM zoho_shaped.accounting WHERE office_id = ?", [OFFICE]).fetchall())
    clean.close()
    birth, name = (int(r[0].rsplit(":", 1)[1]) for r in rows)
    bad_dir = tmp_path_factory.mktemp("bad")
    db = bad_dir / "practice.db"
    shutil.copy(tiny_practice, db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE patient SET birthdate = '31/02/19x7' WHERE patid = ?", [birth])
        con.execute("UPDATE patient SET lastname = ? WHERE patid = ?", [LONG_NAME, name])
    conn = _stage_and_shape(db, bad_dir)
    yield conn, birth, name, clean_accounting
    conn.close()


def test_a_rejected_birth_date_is_dropped_by_its_rule_and_flagged(shaped) -> None:
    conn, birth, _name, _ = shaped
    sid = source_system_id(OFFICE, "patient", birth)
    (record,) = conn.execute("SELECT record FROM zoho_shaped.contacts WHERE source_id = ?", [sid]).fetchone()
    assert "Date_of_Birth" not in json.loads(record)  # on_invalid: drop_field
    flags = conn.execute("SELECT field, reason, action, value_class FROM zoho_shaped.flags WHERE source_id = ?",
                         [sid]).fetchall()
    assert ("Date_of_Birth", "staging_reject:not_a_datetime", "dropped", "date-like text") in flags


def test_a_rejected_mandatory_field_quarantines_the_record_and_accounting_balances(shaped) -> None:
    conn, _birth, name, clean_accounting = shaped
    sid = source_system_id(OFFICE, "patient", name)
    quarantine = conn.execute("SELECT field, reason, rule FROM zoho_shaped.quarantine WHERE source_id = ?",
                              [sid]).fetchall()
    assert ("Last_Name", "staging_reject:too_long", "staging:reject") in quarantine
    for table in ("contacts", "leads"):
        assert conn.execute(f"SELECT count(*) FROM zoho_shaped.{table} WHERE source_id = ?", [sid]).fetchone()[0] == 0
    accounting = {r[0]: r[1:] for r in conn.execute(
        "SELECT source_object, staged, shaped, quarantined, skipped, out_of_sample FROM zoho_shaped.accounting "
        "WHERE office_id = ?", [OFFICE]).fetchall()}
    staged, shaped_n, quarantined, skipped, out = accounting["patient"]
    assert staged == shaped_n + quarantined + skipped + out
    assert quarantined == clean_accounting["patient"] + 1
    text = " ".join(str(v) for row in conn.execute("SELECT * FROM zoho_shaped.quarantine").fetchall() for v in row)
    assert "Quixotically" not in text and "19x7" not in text


def test_a_template_field_made_from_a_rejected_column_is_invalid_too() -> None:
    ctx = Context.from_spec(load_spec(), AS_OF)
    fields = [FieldMap.model_validate({"template": "Visit for {apptreason}", "target": "Subject",
                                       "transform": "text", "on_invalid": "truncate"}),
              FieldMap.model_validate({"source": "apptreason", "target": "Description", "transform": "text",
                                       "required": True})]
    built = Built({})
    transform_fields(fields, {"apptreason": None}, ctx, built,
                     rejected={"apptreason": ("control_characters", "text with control characters")})
    assert [(p.field, p.reason, p.action) for p in built.flags] == [
        ("Subject", "staging_reject:control_characters", "dropped")]
    assert [(p.field, p.action) for p in built.quarantine] == [("Description", "quarantine")]
    assert built.record == {}


def test_no_rejected_value_reaches_the_logs(tiny_practice: Path, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "practice.db"
    shutil.copy(tiny_practice, db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE patient SET birthdate = 'Wednesdayish', lastname = ? "
                    "WHERE patid = (SELECT min(patid) FROM patient)", [LONG_NAME])
    stage_objects(f"sqlite:///{db}", tmp_path / "staging.duckdb", office_id=OFFICE, workers=1)
    conn = duckdb.connect(str(tmp_path / "staging.duckdb"))
    try:
        summary = shape_all(conn, load_spec(), office_id=OFFICE, as_of=AS_OF, image_root=tmp_path)
    finally:
        conn.close()
    assert summary.balanced
    assert "Wednesdayish" not in caplog.text and "Quixotically" not in caplog.text
