"""Extraction and staging: both connection paths, counts, typing, errors."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest

from dentrix_zoho.source.catalog import CATALOG
from dentrix_zoho.source.connection import SourceError, open_source
from dentrix_zoho.source.extract import plan_columns
from dentrix_zoho.staging.stage_all import stage_objects
from dentrix_zoho.staging.store import STAGING_SCHEMA, StagingStore

HAS_ODBC = shutil.which("odbcinst") is not None


def odbc_string(db: Path) -> str:
    return f"DRIVER=SQLite3;Database={db}"


@pytest.fixture(scope="module")
def staged_sqlalchemy(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stage_sa") / "staging.duckdb"
    stage_objects(f"sqlite:///{tiny_practice}", path, office_id="office-1")
    return path


def source_count(db: Path, name: str) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0])


def test_every_catalog_object_is_staged_with_the_source_count(tiny_practice: Path, staged_sqlalchemy: Path) -> None:
    con = duckdb.connect(str(staged_sqlalchemy), read_only=True)
    try:
        for name in CATALOG:
            staged = con.execute(f'SELECT count(*) FROM {STAGING_SCHEMA}."{name}"').fetchone()[0]
            assert staged == source_count(tiny_practice, name), name
    finally:
        con.close()


def test_padding_is_trimmed_and_types_are_real(staged_sqlalchemy: Path, tiny_practice: Path) -> None:
    with sqlite3.connect(tiny_practice) as raw:
        padded = raw.execute("SELECT count(*) FROM rsc WHERE rscid LIKE '% '").fetchone()[0]
    assert padded > 0, "the synthetic practice pads provider ids like c-tree's CHAR(5)"
    con = duckdb.connect(str(staged_sqlalchemy), read_only=True)
    try:
        assert con.execute(f"SELECT count(*) FROM {STAGING_SCHEMA}.rsc WHERE rscid LIKE '% '").fetchone()[0] == 0
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = 'appt'",
                [STAGING_SCHEMA],
            ).fetchall()
        )
        assert types["apptdate"] == "TIMESTAMP"
        assert types["timehr"] == "SMALLINT"
        assert types["amt"].startswith("DECIMAL")
        assert types["_row_hash"] == "UBIGINT"
        office, snapshots = con.execute(
            f"SELECT min(_office_id), count(DISTINCT _snapshot_id) FROM {STAGING_SCHEMA}.patient"
        ).fetchone()
        assert office == "office-1" and snapshots == 1
        dup_keys = con.execute(
            f"SELECT count(*) - count(DISTINCT _source_key) FROM {STAGING_SCHEMA}.patient"
        ).fetchone()[0]
        assert dup_keys == 0
    finally:
        con.close()


@pytest.mark.odbc
@pytest.mark.skipif(not HAS_ODBC, reason="unixODBC not installed")
def test_odbc_and_sqlalchemy_read_identical_rows(
    tiny_practice: Path, staged_sqlalchemy: Path, tmp_path: Path
) -> None:
    odbc_path = tmp_path / "staging_odbc.duckdb"
    stage_objects(odbc_string(tiny_practice), odbc_path, office_id="office-1")
    con = duckdb.connect(str(odbc_path), read_only=True)
    try:
        con.execute(f"ATTACH '{staged_sqlalchemy}' AS sa (READ_ONLY)")
        for name in CATALOG:
            diff = con.execute(
                f'SELECT count(*) FROM (SELECT _source_key, _row_hash FROM {STAGING_SCHEMA}."{name}" '
                f'EXCEPT SELECT _source_key, _row_hash FROM sa.{STAGING_SCHEMA}."{name}")'
            ).fetchone()[0]
            n_odbc = con.execute(f'SELECT count(*) FROM {STAGING_SCHEMA}."{name}"').fetchone()[0]
            n_sa = con.execute(f'SELECT count(*) FROM sa.{STAGING_SCHEMA}."{name}"').fetchone()[0]
            assert (diff, n_odbc) == (0, n_sa), name
    finally:
        con.close()


def test_restaging_keeps_the_previous_keys_and_hashes(tiny_practice: Path, tmp_path: Path) -> None:
    path = tmp_path / "staging.duckdb"
    stage_objects(f"sqlite:///{tiny_practice}", path, office_id="office-1", objects=["patient"], snapshot_id="s1")
    stage_objects(f"sqlite:///{tiny_practice}", path, office_id="office-1", objects=["patient"], snapshot_id="s2")
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT DISTINCT _snapshot_id FROM dentrix.patient").fetchall() == [("s2",)]
        assert con.execute("SELECT DISTINCT _snapshot_id FROM dentrix_prev.patient").fetchall() == [("s1",)]
        same = con.execute(
            "SELECT count(*) FROM dentrix.patient p JOIN dentrix_prev.patient q USING (_source_key, _row_hash)"
        ).fetchone()[0]
        assert same == con.execute("SELECT count(*) FROM dentrix.patient").fetchone()[0]
    finally:
        con.close()


def _copy_without(db: Path, tmp_path: Path, sql: str) -> Path:
    target = tmp_path / "altered.db"
    shutil.copy(db, target)
    with sqlite3.connect(target) as con:
        con.executescript(sql)
    return target


def test_missing_view_names_the_object_and_the_connection(tiny_practice: Path, tmp_path: Path) -> None:
    altered = _copy_without(tiny_practice, tmp_path, "DROP VIEW v_patient;")
    with pytest.raises(SourceError) as info:
        stage_objects(f"sqlite:///{altered}", tmp_path / "s.duckdb", office_id="o", objects=["v_patient"])
    assert "admin.v_patient" in str(info.value)
    assert "altered.db" in str(info.value)


def test_missing_required_columns_are_listed(tiny_practice: Path, tmp_path: Path) -> None:
    altered = _copy_without(
        tiny_practice, tmp_path, "ALTER TABLE refacts DROP COLUMN refactdate; ALTER TABLE refacts DROP COLUMN refbytype;"
    )
    with pytest.raises(SourceError, match="refactdate, refbytype"):
        stage_objects(f"sqlite:///{altered}", tmp_path / "s.duckdb", office_id="o", objects=["refacts"])


def test_optional_column_absent_in_this_version_reads_as_null(tiny_practice: Path, tmp_path: Path) -> None:
    from dentrix_zoho.source.catalog import CatalogColumn, CatalogObject

    base = CATALOG["refacts"]
    with_optional = CatalogObject(
        base.name,
        base.kind,
        base.columns + (CatalogColumn("g8_only_column", "VARCHAR", 10, optional=True),),
        base.key,
        base.modified_column,
        base.description,
    )
    with open_source(f"sqlite:///{tiny_practice}") as conn:
        plan = plan_columns(conn, with_optional)
        assert plan.missing_optional == ("g8_only_column",)
        store = StagingStore(tmp_path / "s.duckdb")
        with store.connect() as con:
            result = store.stage_object(con, conn, with_optional, office_id="o", snapshot_id="x")
            nulls = con.execute("SELECT count(*) FROM dentrix.refacts WHERE g8_only_column IS NULL").fetchone()[0]
    assert result.missing_optional == ("g8_only_column",)
    assert nulls == result.rows > 0


# --- key-range slices, reader processes, read-ahead --------------------------------------------

import threading  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402

from dentrix_zoho.source.extract import KeySlice, split_key_range  # noqa: E402
from dentrix_zoho.staging import readers as readers_module  # noqa: E402
from dentrix_zoho.staging.readers import StagingReads, extract_workers, plan_read  # noqa: E402
from dentrix_zoho.staging.store import StageFailure  # noqa: E402


def _keys_in(key_slice: KeySlice, keys: list[int | None]) -> list[int | None]:
    if key_slice.nulls:
        return [k for k in keys if k is None]
    return [
        k for k in keys
        if k is not None
        and (key_slice.low is None or k >= key_slice.low)
        and (key_slice.high is None or k < key_slice.high)
    ]


@pytest.mark.parametrize(("low", "high", "parts"), [(1, 254_531, 8), (5, 5, 4), (-3, 10, 20), (0, 99, 3)])
def test_key_slices_cover_every_key_exactly_once(low: int, high: int, parts: int) -> None:
    slices = split_key_range(low, high, parts)
    # Keys outside the bounds read when slicing (rows added since) and NULL keys are covered too.
    keys: list[int | None] = [*range(low - 5, high + 6), None]
    covered = [k for s in slices for k in _keys_in(s, keys)]
    assert sorted(covered, key=lambda k: (k is None, k or 0)) == sorted(keys, key=lambda k: (k is None, k or 0))
    assert len(slices) == min(parts, high - low + 1) + 1


def test_slice_predicates_are_plain_sql() -> None:
    assert KeySlice(10, 20).where("patid") == ("patid >= ? AND patid < ?", (10, 20))
    assert KeySlice(None, 20).where("patid") == ("patid < ?", (20,))
    assert KeySlice(10, None).where("patid") == ("patid >= ?", (10,))
    assert KeySlice(nulls=True).where("patid") == ("patid IS NULL", ())


def test_extract_workers_setting() -> None:
    assert extract_workers({}) == 2
    assert extract_workers({"DENTRIX_EXTRACT_WORKERS": "1"}) == 1
    for bad in ("two", "0", "99"):
        with pytest.raises(SourceError, match="DENTRIX_EXTRACT_WORKERS"):
            extract_workers({"DENTRIX_EXTRACT_WORKERS": bad})


def _assert_same_staged_rows(path: Path, other: Path, objects: list[str]) -> None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute(f"ATTACH '{other}' AS other (READ_ONLY)")
        for name in objects:
            cols = ", ".join(f'"{c}"' for c in CATALOG[name].column_names)
            mine = f'SELECT {cols}, _source_key, _row_hash FROM {STAGING_SCHEMA}."{name}"'
            theirs = f'SELECT {cols}, _source_key, _row_hash FROM other.{STAGING_SCHEMA}."{name}"'
            diff = con.execute(
                f"SELECT count(*) FROM (({mine} EXCEPT ALL {theirs}) UNION ALL ({theirs} EXCEPT ALL {mine}))"
            ).fetchone()[0]
            assert diff == 0, name
            assert con.execute(f"SELECT count(*) FROM ({mine})").fetchone()[0] > 0, name
    finally:
        con.close()


SLICED = ["fullproclog", "appt", "patient", "address"]
MIXED = [*SLICED, "v_patient", "recallpending", "rsc"]  # views and composite keys are read whole


@pytest.mark.parametrize("kind", ["sqlalchemy", pytest.param("odbc", marks=[
    pytest.mark.odbc, pytest.mark.skipif(not HAS_ODBC, reason="unixODBC not installed")])])
def test_reader_processes_stage_the_same_rows_and_hashes_as_one_connection(
    tiny_practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    source = f"sqlite:///{tiny_practice}" if kind == "sqlalchemy" else odbc_string(tiny_practice)
    stage_objects(source, tmp_path / "one.duckdb", office_id="office-1", objects=MIXED, workers=1)
    # The tiny practice's tables are far below the size worth slicing: slice them anyway.
    monkeypatch.setattr(readers_module, "PARALLEL_MIN_ROWS", 1)
    with open_source(source) as conn:
        parts = {name: plan_read(conn, CATALOG[name], workers=2).parts for name in MIXED}
    assert all(parts[name] > 1 for name in SLICED), parts
    assert all(parts[name] == 1 for name in MIXED if name not in SLICED), parts
    stage_objects(source, tmp_path / "two.duckdb", office_id="office-1", objects=MIXED, workers=2)
    _assert_same_staged_rows(tmp_path / "two.duckdb", tmp_path / "one.duckdb", MIXED)


def test_a_reader_process_that_cannot_connect_fails_the_stage_and_keeps_the_old_table(
    tiny_practice: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "practice.db"
    shutil.copy(tiny_practice, copy)
    store = StagingStore(tmp_path / "staging.duckdb")
    with open_source(f"sqlite:///{copy}") as conn, store.connect() as con:
        first = store.stage_object(con, conn, CATALOG["appt"], office_id="o", snapshot_id="s1", workers=2)
        copy.unlink()  # this connection keeps reading the open file; a reader cannot open it any more
        with pytest.raises(SourceError, match="practice.db"):
            store.stage_object(con, conn, CATALOG["appt"], office_id="o", snapshot_id="s2", workers=2)
        assert con.execute("SELECT DISTINCT _snapshot_id FROM dentrix.appt").fetchall() == [("s1",)]
        assert store.staged_count(con, "appt") == first.rows
        assert con.execute("SELECT count(*) FROM staging_meta.snapshots").fetchone()[0] == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_one_bad_object_fails_alone_and_a_bad_value_fails_none(
    tiny_practice: Path, tmp_path: Path, workers: int
) -> None:
    # A patient's name where a number belongs, and a view that is gone.
    altered = _copy_without(
        tiny_practice, tmp_path,
        "UPDATE appt SET timehr = 'Zebulon' WHERE apptid = (SELECT min(apptid) FROM appt); DROP VIEW v_patient;",
    )
    store = StagingStore(tmp_path / "staging.duckdb")
    names = ["patient", "appt", "v_patient", "address"]
    with open_source(f"sqlite:///{altered}") as conn, store.connect() as con:
        outcomes = list(store.stage_many(
            con, conn, [CATALOG[n] for n in names], office_id="o", snapshot_id="s", workers=workers
        ))
        assert [o.object_name for o in outcomes] == names
        failed = {o.object_name: str(o.error) for o in outcomes if isinstance(o, StageFailure)}
        # The unconvertible value is a row-level reject (staging.rejects), not a failed object.
        assert set(failed) == {"v_patient"}
        assert "admin.v_patient" in failed["v_patient"]
        assert store.staged_objects(con) == ["address", "appt", "patient"]
        for name in ("patient", "address", "appt"):
            assert store.staged_count(con, name) == source_count(altered, name)
        assert con.execute(
            "SELECT object_name, column_name, reason FROM staging_meta.rejects"
        ).fetchall() == [("appt", "timehr", "not_a_number")]
    with pytest.raises(SourceError, match="v_patient"):
        stage_objects(f"sqlite:///{altered}", tmp_path / "again.duckdb", office_id="o", objects=names)


def test_timestamp_text_arrow_cannot_parse_is_typed_as_duckdb_types_it(tiny_practice: Path, tmp_path: Path) -> None:
    altered = _copy_without(
        tiny_practice, tmp_path,
        "UPDATE appt SET apptdate = '2026-11-01 9:30  ' WHERE apptid = (SELECT min(apptid) FROM appt);"
        "UPDATE appt SET brokendate = '   ' WHERE apptid = (SELECT max(apptid) FROM appt);",
    )
    path = tmp_path / "staging.duckdb"
    stage_objects(f"sqlite:///{altered}", path, office_id="o", objects=["appt"])
    con = duckdb.connect(str(path), read_only=True)
    try:
        first = con.execute("SELECT apptdate FROM dentrix.appt ORDER BY apptid LIMIT 1").fetchone()[0]
        last = con.execute("SELECT brokendate FROM dentrix.appt ORDER BY apptid DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()
    assert first == datetime(2026, 11, 1, 9, 30)
    assert last is None


def test_read_ahead_is_bounded_and_objects_arrive_whole_in_order(
    tiny_practice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = 200_000
    monkeypatch.setattr(readers_module, "READ_AHEAD_BYTES", budget)
    monkeypatch.setattr(readers_module, "PARALLEL_MIN_ROWS", 1)
    names = ["fullproclog", "appt", "clinicalnote", "patient", "v_patient", "rsc"]
    peak = 0
    with open_source(f"sqlite:///{tiny_practice}") as conn:
        reads = [plan_read(conn, CATALOG[n], workers=2) for n in names]
        staging_reads = StagingReads(conn, reads, workers=2, chunk_rows=500)
        try:
            largest_chunk = 0
            for index, name in enumerate(names):
                rows = 0
                for chunk in staging_reads.chunks(index):
                    time.sleep(0.02)  # a slow writer: the readers run ahead as far as they may
                    peak = max(peak, staging_reads.buffered_bytes)
                    largest_chunk = max(largest_chunk, chunk.nbytes)
                    rows += chunk.num_rows
                assert rows == source_count(tiny_practice, name), name
        finally:
            staging_reads.close()
    # Everything waiting, whatever the tables' sizes: the budget, plus the chunk of the
    # object being loaded that is always let in, plus the one in hand.
    assert 0 < peak <= budget + 2 * largest_chunk
    assert not any(p.is_alive() for p in staging_reads.processes)


@pytest.mark.parametrize("workers", [1, 2])
def test_closing_a_run_midway_stops_its_readers(tiny_practice: Path, workers: int) -> None:
    with open_source(f"sqlite:///{tiny_practice}") as conn:
        reads = [plan_read(conn, CATALOG[n], workers=workers) for n in ("fullproclog", "appt", "patient")]
        staging_reads = StagingReads(conn, reads, workers=workers, chunk_rows=100)
        next(iter(staging_reads.chunks(0)))
        closer = threading.Thread(target=staging_reads.close)
        closer.start()
        closer.join(timeout=20)
        assert not closer.is_alive()
    assert not any(p.is_alive() for p in staging_reads.processes)
    assert not any(t.is_alive() for t in staging_reads.threads)


def test_staging_settings_last_only_as_long_as_the_run(tiny_practice: Path, tmp_path: Path) -> None:
    settings = ("threads", "memory_limit", "force_compression", "write_buffer_row_group_count")
    query = "SELECT " + ", ".join(f"current_setting('{name}')" for name in settings)
    store = StagingStore(tmp_path / "staging.duckdb")
    seen_during: list[tuple] = []
    with open_source(f"sqlite:///{tiny_practice}") as conn, store.connect() as con:
        before = con.execute(query).fetchone()
        for _ in store.stage_many(con, conn, [CATALOG["patient"], CATALOG["rsc"]], office_id="o", snapshot_id="s"):
            seen_during.append(con.execute(query).fetchone())
        after = con.execute(query).fetchone()
    assert after == before
    assert seen_during and all(s != before for s in seen_during)
    threads, memory, compression, buffered = seen_during[0]
    assert (int(threads), compression, int(buffered)) == (1, "uncompressed", 1)


def test_stage_command_stages_and_exits_2_naming_what_failed(
    tiny_practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from dentrix_zoho.cli import main

    monkeypatch.setenv("DENTRIX_ZOHO_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    ok = runner.invoke(main, ["stage", "--source", f"sqlite:///{tiny_practice}", "--object", "patient",
                              "--object", "rsc", "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    assert f"staged 2 objects, {source_count(tiny_practice, 'patient') + source_count(tiny_practice, 'rsc'):,} rows" in ok.output
    broken = _copy_without(tiny_practice, tmp_path, "DROP VIEW v_staff;")
    failed = runner.invoke(main, ["stage", "--source", f"sqlite:///{broken}", "--object", "v_staff"])
    assert failed.exit_code == 2
    assert "admin.v_staff" in failed.output
