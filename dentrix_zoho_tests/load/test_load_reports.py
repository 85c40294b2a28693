"""Sample selection on the staged tiny practice; the diff comparison rules; report files' permissions."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dentrix_zoho.ledger import Ledger, QuarantineRow
from dentrix_zoho.load.diff_report import same
from dentrix_zoho.load.remigration import action_for, write_remigration_plan
from dentrix_zoho.load.reports_io import write_private
from dentrix_zoho.load.sample import DEFAULT_STRATA, choose_patients, select_sample

AS_OF = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def staged(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dentrix_zoho.staging.stage_all import stage_objects

    path = tmp_path_factory.mktemp("sample") / "staging.duckdb"
    stage_objects(f"sqlite:///{tiny_practice}", path, office_id="office-1")
    return path


def test_sample_is_stratified_deterministic_and_brings_the_family(staged: Path) -> None:
    con = duckdb.connect(str(staged), read_only=True)
    try:
        chosen, per_stratum = choose_patients(con, "office-1", size=60, strata=DEFAULT_STRATA, as_of=AS_OF, seed=3)
        sample = select_sample(con, 60, office_id="office-1", as_of=AS_OF, seed=3)
        again = select_sample(con, 60, office_id="office-1", as_of=AS_OF, seed=3)
        other = select_sample(con, 60, office_id="office-1", as_of=AS_OF, seed=4)
        minors = con.execute(
            "SELECT patid, guarid FROM dentrix.patient WHERE date_diff('year', CAST(birthdate AS DATE), DATE '2026-11-01') < 18 "
            "AND guarid <> patid AND guarid > 0").fetchall()
        appts = {r[0] for r in con.execute("SELECT apptid FROM dentrix.appt WHERE patid IN "
                                           f"({', '.join(str(p) for p in chosen)})").fetchall()}
    finally:
        con.close()
    assert len(chosen) == 60 and len(set(chosen)) == 60
    assert all(n > 0 for n in per_stratum.values()), per_stratum
    assert sample == again and sample != other
    patients = {s for s in sample if s.split(":")[1] == "patient"}
    assert {f"office-1:patient:{p}" for p in chosen} <= patients
    for patid, guarid in minors:  # a sampled minor brings its responsible party
        if patid in chosen:
            assert f"office-1:patient:{guarid}" in patients
    assert {f"office-1:appt:{a}" for a in appts} <= sample
    assert any(s.split(":")[1] == "clinicalnote" for s in sample)


def test_custom_strata_and_size(staged: Path) -> None:
    con = duckdb.connect(str(staged), read_only=True)
    try:
        chosen, per = choose_patients(con, "office-1", size=5, strata={"insured": "coalesce(priminsuredid, 0) > 0"},
                                      as_of=AS_OF, seed=0)
        insured = {r[0] for r in con.execute("SELECT patid FROM dentrix.patient WHERE priminsuredid > 0").fetchall()}
        with pytest.raises(ValueError, match="stratum"):
            choose_patients(con, "office-1", size=5, strata={"bad": "1; DROP TABLE x"}, as_of=AS_OF, seed=0)
    finally:
        con.close()
    assert len(chosen) == 5 and set(chosen) <= insured and per == {"insured": 5}


@pytest.mark.parametrize(
    ("expected", "actual", "equal"),
    [
        ({"id": "1"}, {"id": "1", "name": "Ann"}, True),
        ({"id": "1"}, {"id": "2", "name": "Ann"}, False),
        (120.5, 120.50, True),
        (120.5, "120.5", True),
        (120.5, 121, False),
        ("2026-11-20T09:30:00-06:00", "2026-11-20T15:30:00+00:00", True),
        ("2026-11-20T09:30:00-06:00", "2026-11-20T09:30:00+00:00", False),
        ("Ann", "ann", False),
        (False, False, True),
        (False, None, False),
        (None, None, True),
        ([{"Plan_Type": "Primary"}], [{"Plan_Type": "Primary", "id": "9"}], True),
        ([{"Plan_Type": "Primary"}], [], False),
        ("00123", "123", False),
    ],
)
def test_diff_compares_as_zoho_means_it(expected: Any, actual: Any, equal: bool) -> None:
    assert same(expected, actual) is equal


def test_private_files_are_owner_only(tmp_path: Path) -> None:
    path = write_private(tmp_path / "reports" / "x.csv", "a,b\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert path.read_text() == "a,b\n" and not list(path.parent.glob(".*.tmp"))


def test_remigration_plan_merges_shape_and_load_quarantine(tmp_path: Path) -> None:
    from dentrix_zoho.mapping.outputs import ensure_tables, replace_office_rows

    duck = tmp_path / "s.duckdb"
    con = duckdb.connect(str(duck))
    ensure_tables(con)
    replace_office_rows(con, "quarantine", "office-1", [
        {"office_id": "office-1", "source_object": "patient", "source_id": "office-1:patient:5", "target_module": "Contacts",
         "field": "Last_Name", "value_class": "null", "reason": "required_missing", "rule": "required"}])
    con.close()
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    ledger.quarantine([
        QuarantineRow("r", "office-1", "eattach", "office-1:eattach:9", "file_missing", "file_missing: gone", field="file"),
        QuarantineRow("r", "office-2", "eattach", "office-2:eattach:9", "file_missing", "file_missing: gone", field="file"),
    ])
    plan = write_remigration_plan(duck, ledger, "office-1", tmp_path / "reports")
    lines = plan.csv_path.read_text().splitlines()
    assert len(lines) == 3 and plan.records == 2
    assert any(line.startswith("eattach,office-1:eattach:9,file,file_missing,") and ",load," in line for line in lines)
    assert any(line.startswith("patient,office-1:patient:5,Last_Name,null,required_missing,shape,") for line in lines)
    assert "office-2" not in plan.markdown_path.read_text()
    assert action_for("file_missing: gone").startswith("the file is not in the image folder")


def test_shaped_rows_can_be_read_while_this_process_holds_the_writer(tmp_path: Path) -> None:
    from dentrix_zoho.load.context import LOAD_STEPS
    from dentrix_zoho.load.shaped import open_duckdb, read_step_rows
    from dentrix_zoho.mapping.outputs import ensure_tables

    path = tmp_path / "s.duckdb"
    writer = duckdb.connect(str(path))
    try:
        ensure_tables(writer)
        with open_duckdb(path) as con:
            assert read_step_rows(con, LOAD_STEPS["patients"], "office-1") == []
    finally:
        writer.close()


def test_every_reason_the_shaping_gives_has_its_own_advice() -> None:
    from dentrix_zoho.load.remigration import DEFAULT_ACTION, quarantine_rule_actions
    from dentrix_zoho.mapping import load_spec
    from dentrix_zoho.mapping.integrity import DUPLICATE_SOURCE_KEY

    rules = quarantine_rule_actions(load_spec())
    assert "appointment_time_impossible" in rules
    # The map's own rule is advised in the map's words, with the object to correct.
    assert rules["appointment_time_impossible"].startswith("start hour or minute out of range")
    assert "appt row in Dentrix" in action_for("appointment_time_impossible", rules)
    for reason in (DUPLICATE_SOURCE_KEY, "mandatory_missing", "required_value_missing", "bad_format", "wrong_type",
                   "not_in_picklist", "too_long", "unknown_field", "orphan_no_patient", "staging_reject:too_long"):
        assert action_for(reason, rules) != DEFAULT_ACTION, reason
    assert action_for("something_new", rules) == DEFAULT_ACTION


def test_a_column_only_a_quarantine_rule_reads_is_not_called_unmapped(tmp_path: Path) -> None:
    from dentrix_zoho.load.diff_report import unmapped_source_fields
    from dentrix_zoho.mapping import load_spec
    from dentrix_zoho.mapping.spec import MappingSpec

    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    con.execute("CREATE SCHEMA dentrix")
    con.execute("CREATE TABLE dentrix.appt (appointmentid INTEGER, patid INTEGER, brokenflag INTEGER)")
    spec = load_spec()
    stream = next(s for s in spec.streams.values() if s.object == "appt")
    assert "brokenflag" in unmapped_source_fields(con, spec).get("appt", [])
    held = stream.model_copy(update={"quarantine": [*stream.quarantine, stream.quarantine[0].model_copy(
        update={"name": "broken_flag_unknown", "when": "brokenflag NOT IN (0, 1)"})]})
    spec = MappingSpec.model_validate({**spec.model_dump(), "streams": {
        **{k: v.model_dump() for k, v in spec.streams.items()},
        next(k for k, v in spec.streams.items() if v is stream): held.model_dump()}})
    assert "brokenflag" not in unmapped_source_fields(con, spec).get("appt", [])
