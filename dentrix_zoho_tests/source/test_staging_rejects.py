"""Row-level rejects in staging: a value that does not convert never fails its object."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from dentrix_zoho.source.catalog import CATALOG
from dentrix_zoho.source.connection import SourceError, open_source
from dentrix_zoho.staging import rejects
from dentrix_zoho.staging.stage_all import stage_objects
from dentrix_zoho.staging.chunks import chunk_rejects, chunk_schema, conform
from dentrix_zoho.staging.store import StagingStore

HAS_ODBC = shutil.which("odbcinst") is not None

# (case, column, SQL value expression, the text a leak check looks for, reason, value class)
BAD_VALUES: list[tuple[str, str, str, str, str, str]] = [
    ("date", "birthdate", "'31/02/19x7'", "19x7", "not_a_datetime", "date-like text"),
    ("timestamp", "lastvisitdate", "'Sorrel afternoon'", "Sorrel", "not_a_datetime", "text"),
    ("integer", "empid", "'Zebulon'", "Zebulon", "not_a_number", "text"),
    ("smallint", "missedappt", "'Quillon'", "Quillon", "not_a_number", "text"),
    ("decimal", "primbenefits", "'12,5Wx'", "12,5Wx", "not_a_number", "text"),
    ("boolean", "isguar", "'Perhapsly'", "Perhapsly", "not_a_boolean", "text"),
    ("invalid_utf8", "salutation", "CAST(x'4d7220576f6f64ff6272696467' AS TEXT)", "Woodbridg",
     "invalid_encoding", "text in another encoding"),
    ("control_characters", "firstname", "'Ann' || char(7) || 'abelle'", "abelle", "control_characters",
     "text with control characters"),
    ("over_long", "title", "'Extraordinarilylongtitle'", "Extraordinarily", "too_long",
     "text longer than 11 characters"),
]
# unixODBC's SQLite3 driver drops the bytes that are not UTF-8 itself, before anyone sees them:
# on that path there is nothing left to reject (c-treeACE's driver decodes its own code page).
ODBC_REPAIRS = {"invalid_utf8"}


def odbc_string(db: Path) -> str:
    return f"DRIVER=SQLite3;Database={db}"


def _patids(db: Path, n: int) -> list[int]:
    with sqlite3.connect(db) as con:
        return [r[0] for r in con.execute("SELECT patid FROM patient ORDER BY patid LIMIT ?", [n]).fetchall()]


@pytest.fixture(scope="module")
def hostile_db(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The tiny practice with one bad value per column type, each in its own patient."""
    db = tmp_path_factory.mktemp("rejects") / "practice.db"
    shutil.copy(tiny_practice, db)
    patids = _patids(db, len(BAD_VALUES))
    by_case = {}
    with sqlite3.connect(db) as con:
        for (case, column, expr, *_), patid in zip(BAD_VALUES, patids, strict=True):
            con.execute(f"UPDATE patient SET {column} = {expr} WHERE patid = ?", [patid])
            by_case[case] = patid
    return db, by_case


def _rejects(path: Path) -> list[dict[str, Any]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return rejects.office_rejects(con, "office-1")
    finally:
        con.close()


def _staged(path: Path, patid: int, column: str) -> tuple[int, Any]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(f'SELECT "{column}" FROM dentrix.patient WHERE patid = ?', [patid]).fetchall()
    finally:
        con.close()
    return len(rows), rows[0][0] if rows else None


def _stage_and_check(source: str, db: Path, by_case: dict[str, int], path: Path, skip: set[str],
                     caplog: pytest.LogCaptureFixture, workers: int) -> None:
    caplog.set_level(logging.DEBUG)
    results = stage_objects(source, path, office_id="office-1", objects=["patient"], workers=workers)
    assert results[0].rows == sum(1 for _ in _patids(db, 10_000))
    found = {r["column_name"]: r for r in _rejects(path)}
    expected = [b for b in BAD_VALUES if b[0] not in skip]
    assert set(found) == {b[1] for b in expected}
    assert results[0].rejected_values == len(expected) and results[0].rejected_rows == 0
    for case, column, _expr, needle, reason, klass in expected:
        reject = found[column]
        assert (reject["object_name"], reject["source_key"], reject["reason"], reject["value_class"]) == (
            "patient", str(by_case[case]), reason, klass), case
        assert not reject["whole_row"]
        assert _staged(path, by_case[case], column) == (1, None), case
        text = " ".join(str(v) for r in found.values() for v in r.values())
        assert needle not in text, case
        assert needle not in caplog.text, case


@pytest.mark.parametrize("workers", [1, 2])
def test_one_bad_value_per_type_is_a_reject_through_sqlalchemy(
    hostile_db: tuple[Path, dict[str, int]], tmp_path: Path, caplog: pytest.LogCaptureFixture, workers: int
) -> None:
    db, by_case = hostile_db
    _stage_and_check(f"sqlite:///{db}", db, by_case, tmp_path / "s.duckdb", set(), caplog, workers)


@pytest.mark.odbc
@pytest.mark.skipif(not HAS_ODBC, reason="unixODBC not installed")
def test_one_bad_value_per_type_is_a_reject_through_odbc(
    hostile_db: tuple[Path, dict[str, int]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, by_case = hostile_db
    path = tmp_path / "s.duckdb"
    _stage_and_check(odbc_string(db), db, by_case, path, ODBC_REPAIRS, caplog, workers=1)
    # The driver's repair: the row and the rest of its text are there, the bytes gone.
    count, salutation = _staged(path, by_case["invalid_utf8"], "salutation")
    assert count == 1 and salutation is not None and "\ufffd" not in salutation


def test_good_rows_stage_the_same_hash_beside_bad_ones(
    tiny_practice: Path, hostile_db: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    db, by_case = hostile_db
    stage_objects(f"sqlite:///{tiny_practice}", tmp_path / "clean.duckdb", office_id="office-1", objects=["patient"])
    stage_objects(f"sqlite:///{db}", tmp_path / "bad.duckdb", office_id="office-1", objects=["patient"])
    con = duckdb.connect(str(tmp_path / "bad.duckdb"))
    try:
        con.execute(f"ATTACH '{tmp_path / 'clean.duckdb'}' AS clean (READ_ONLY)")
        differ = {r[0] for r in con.execute(
            "SELECT b._source_key FROM dentrix.patient b JOIN clean.dentrix.patient c USING (_source_key) "
            "WHERE b._row_hash <> c._row_hash").fetchall()}
    finally:
        con.close()
    # Only the damaged rows hash differently (a NULL-ed column that was NULL before hashes the same).
    assert differ <= {str(p) for p in by_case.values()} and len(differ) >= 5
    assert _rejects(tmp_path / "clean.duckdb") == []  # the clean practice has none


def test_a_bad_key_rejects_the_whole_row_and_counts_it(tiny_practice: Path, tmp_path: Path) -> None:
    db = tmp_path / "practice.db"
    shutil.copy(tiny_practice, db)
    patid = _patids(db, 1)[0]
    with sqlite3.connect(db) as con:
        con.execute("UPDATE patient SET patid = 'Xandria' WHERE patid = ?", [patid])
        total = con.execute("SELECT count(*) FROM patient").fetchone()[0]
    path = tmp_path / "s.duckdb"
    (result,) = stage_objects(f"sqlite:///{db}", path, office_id="office-1", objects=["patient"], workers=2)
    assert (result.rows, result.rejected_rows) == (total - 1, 1)
    (reject,) = _rejects(path)
    assert (reject["source_key"], reject["column_name"], reject["reason"], reject["whole_row"]) == (
        None, "patid", "not_a_number", True)
    assert "Xandria" not in str(reject)


def test_rejects_are_replaced_by_the_next_snapshot(hostile_db: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    db, by_case = hostile_db
    fixed = tmp_path / "fixed.db"
    shutil.copy(db, fixed)
    path = tmp_path / "s.duckdb"
    stage_objects(f"sqlite:///{db}", path, office_id="office-1", objects=["patient"], snapshot_id="s1")
    assert len(_rejects(path)) == len(BAD_VALUES)
    with sqlite3.connect(fixed) as con:
        con.execute("UPDATE patient SET birthdate = '1970-01-01 00:00:00' WHERE patid = ?", [by_case["date"]])
    stage_objects(f"sqlite:///{fixed}", path, office_id="office-1", objects=["patient"], snapshot_id="s2")
    after = _rejects(path)
    assert len(after) == len(BAD_VALUES) - 1
    assert "birthdate" not in {r["column_name"] for r in after}


def test_a_failed_object_keeps_its_rejects_and_fails_as_before(
    hostile_db: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    db, _ = hostile_db
    path = tmp_path / "s.duckdb"
    stage_objects(f"sqlite:///{db}", path, office_id="office-1", objects=["patient"])
    gone = tmp_path / "gone.db"
    shutil.copy(db, gone)
    with sqlite3.connect(gone) as con:
        con.execute("DROP TABLE patient")
    with pytest.raises(SourceError, match="admin.patient"):
        stage_objects(f"sqlite:///{gone}", path, office_id="office-1", objects=["patient"])
    assert len(_rejects(path)) == len(BAD_VALUES)  # the previous snapshot's, untouched


def test_a_lost_connection_still_fails_the_object(tiny_practice: Path, tmp_path: Path) -> None:
    store = StagingStore(tmp_path / "s.duckdb")
    with open_source(f"sqlite:///{tiny_practice}") as conn, store.connect() as con:
        conn.dbapi.close()
        with pytest.raises(SourceError):
            store.stage_object(con, conn, CATALOG["patient"], office_id="o", snapshot_id="s", workers=1)


@pytest.mark.parametrize(
    ("column", "values", "reason"),
    [
        ("missedappt", [1, 70_000], "out_of_range"),  # SMALLINT
        ("empid", [1, 2.5], "not_a_whole_number"),
        ("primbenefits", [1.0, 2e12], "out_of_range"),  # DECIMAL(12,2)
        ("isguar", [0, 7], "not_a_boolean"),
        ("lastname", ["Smith", b"\x00\x01\x02binary\xff"], "invalid_encoding"),
    ],
)
def test_conform_rejects_what_the_staged_column_cannot_hold(column: str, values: list[Any], reason: str) -> None:
    obj = CATALOG["patient"]
    names = obj.column_names
    rows = [{n: None for n in names} | {"patid": i + 1, column: v} for i, v in enumerate(values)]
    arrays = []
    for name in names:
        column_values = [r[name] for r in rows]
        try:
            arrays.append(pa.array(column_values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(v).encode() if not isinstance(v, bytes) else v
                                    for v in column_values], pa.binary()))
    conformed = conform(pa.Table.from_arrays(arrays, names=list(names)), obj, chunk_schema(obj))
    assert conformed.column(column).to_pylist()[1] is None and conformed.column(column).to_pylist()[0] is not None
    (reject,) = chunk_rejects(conformed)
    assert (reject.column, reject.reason, reject.key) == (column, reason, ("2",))
    if column == "lastname":
        assert reject.value_class == "binary"


def test_a_delta_records_the_rejects_of_the_rows_it_changes(tiny_practice: Path, tmp_path: Path) -> None:
    from dentrix_zoho.cutover.changes import detect_and_apply_changes

    db = tmp_path / "practice.db"
    shutil.copy(tiny_practice, db)
    first, second = _patids(db, 2)
    store = StagingStore(tmp_path / "s.duckdb")
    source = f"sqlite:///{db}"
    stage_objects(source, store.path, office_id="office-1", objects=["patient"], snapshot_id="full")

    def delta(snapshot: str) -> None:
        with open_source(source) as conn, store.connect() as con:
            detect_and_apply_changes(conn, store, con, ["patient"], office_id="office-1", snapshot_id=snapshot)

    with sqlite3.connect(db) as con:
        con.execute("UPDATE patient SET birthdate = 'Tomorrowish', automodifiedtimestamp = '2030-01-01 00:00:00' "
                    "WHERE patid = ?", [first])
    delta("d1")
    assert [(r["source_key"], r["column_name"], r["reason"]) for r in _rejects(store.path)] == [
        (str(first), "birthdate", "not_a_datetime")]
    with sqlite3.connect(db) as con:
        con.execute("UPDATE patient SET birthdate = '1980-05-05 00:00:00', automodifiedtimestamp = "
                    "'2030-01-02 00:00:00' WHERE patid = ?", [first])
        con.execute("UPDATE patient SET empid = 'Yarrowby', automodifiedtimestamp = '2030-01-02 00:00:00' "
                    "WHERE patid = ?", [second])
    delta("d2")
    assert [(r["source_key"], r["column_name"]) for r in _rejects(store.path)] == [(str(second), "empid")]


def test_the_audit_counts_rejects_per_object_and_column(hostile_db: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    from dentrix_zoho.source.audit import run_audit

    db, by_case = hostile_db
    path = tmp_path / "staging.duckdb"
    stage_objects(f"sqlite:///{db}", path, office_id="office-1")
    result = run_audit(path, tmp_path / "reports", image_root=None, provider_map=None)
    assert result.rejects[("patient", "birthdate", "not_a_datetime")] == 1
    assert result.rejects[("v_patient", "birth_date", "not_a_datetime")] == 1  # the view reads the same value
    assert {k[:2] for k in result.rejects if k[0] == "patient"} == {("patient", b[1]) for b in BAD_VALUES}
    assert result.rejects_by_object()["patient"] == len(BAD_VALUES)
    assert "appt" not in result.rejects_by_object()
    assert result.summary()["staging_rejects"] == sum(result.rejects.values())
    report = result.path.read_text()
    assert f"office-1:patient:{by_case['date']} (birthdate)" in report
    assert "| `patient` | `birthdate` | not_a_datetime | 1 |" in report
    assert all(b[3] not in report for b in BAD_VALUES)


def test_the_remigration_plan_lists_every_reject_with_an_action(tiny_practice: Path, tmp_path: Path) -> None:
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.load.remigration import write_remigration_plan

    db = tmp_path / "practice.db"
    shutil.copy(tiny_practice, db)
    first, second = _patids(db, 2)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE patient SET birthdate = 'Juneteenthish' WHERE patid = ?", [first])
        con.execute("UPDATE patient SET patid = 'Vellichor' WHERE patid = ?", [second])
    path = tmp_path / "staging.duckdb"
    stage_objects(f"sqlite:///{db}", path, office_id="office-1", objects=["patient"])
    plan = write_remigration_plan(path, Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}"), "office-1", tmp_path / "r")
    lines = plan.csv_path.read_text().splitlines()
    assert any(line.startswith(f"patient,office-1:patient:{first},birthdate,text,"
                               "staging_reject:not_a_datetime,staging,") and "fix the value in Dentrix" in line
               for line in lines)
    assert any(line.startswith("patient,office-1:patient:(unidentified row),patid,text,staging_reject:not_a_number,"
                               "staging,") for line in lines)
    markdown = plan.markdown_path.read_text()
    assert "Values staging could not read" in markdown and plan.by_reason["staging_reject"] == 2
    assert "Juneteenthish" not in markdown + "\n".join(lines) and "Vellichor" not in markdown


def test_text_nan_in_money_and_c1_controls_are_rejects_and_a_copyright_sign_is_not() -> None:
    obj = CATALOG["patient"]
    names = list(obj.column_names)
    data: dict[str, list[Any]] = {n: [None, None, None] for n in names}
    data["patid"] = [1, 2, 3]
    data["primbenefits"] = [b"12.50", b"nan", None]
    data["lastname"] = ["Caf\u00e9 \u00a9", None, "Bad\u0085line"]
    arrays = [pa.array(data[n]) if n not in ("primbenefits",) else pa.array(data[n], pa.binary()) for n in names]
    conformed = conform(pa.Table.from_arrays(arrays, names=names), obj, chunk_schema(obj))
    assert conformed.column("primbenefits").to_pylist()[:2] == [12.5, None]
    assert conformed.column("lastname").to_pylist() == ["Caf\u00e9 \u00a9", None, None]
    assert sorted((r.column, r.reason, r.key) for r in chunk_rejects(conformed)) == [
        ("lastname", "control_characters", ("3",)), ("primbenefits", "not_a_number", ("2",))]
