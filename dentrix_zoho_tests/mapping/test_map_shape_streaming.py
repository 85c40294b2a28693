"""Shaping streams: batch sizes change nothing, a failure leaves the previous rows, merges hold."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dentrix_zoho.mapping import load_spec, shape_all
from dentrix_zoho.mapping import outputs
from dentrix_zoho.mapping import shape as shape_module
from dentrix_zoho.mapping.outputs import ALL_TABLES, OUTPUT_SCHEMA
from dentrix_zoho.source.synthetic.generator import generate_practice
from dentrix_zoho.staging.stage_all import stage_objects

OFFICE = "office-1"
AS_OF = dt.date(2026, 11, 1)
D = dt.datetime


def insert(conn: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        data = {**row, "_office_id": OFFICE}
        names = ", ".join(f'"{k}"' for k in data)
        conn.execute(f'INSERT INTO dentrix."{table}" ({names}) VALUES ({", ".join("?" for _ in data)})',
                     list(data.values()))


def patient(patid: int, **kw: Any) -> dict[str, Any]:
    """An active adult Contact of the hand-built practice (see conftest)."""
    return {"patid": patid, "guarid": patid, "famid": patid, "addrid": 1, "lastname": "Family" + chr(64 + patid),
            "firstname": "Ann", "status": 1, "gender": 2, "birthdate": D(1980, 1, 1), "provid1": "DDS1",
            "lastvisitdate": D(2026, 6, 1), "firstvisitdate": D(2015, 3, 2), "privacyflags": 0,
            "emailaddr": f"p{patid}@example.com", "pager": f"801-555-02{patid:02d}", **kw}


def tables(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every shaped table, all columns as text (JSON byte for byte), sorted: row order is free."""
    out = {}
    for table in ALL_TABLES:
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
            "ORDER BY column_index", [OUTPUT_SCHEMA, table]).fetchall()]
        select = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
        out[table] = sorted(conn.execute(f"SELECT {select} FROM {OUTPUT_SCHEMA}.{table}").fetchall(), key=repr)
    return out


def run_shaping(conn: duckdb.DuckDBPyConnection, images: Path, pdfs: Path | None = None, office: str = OFFICE,
          as_of: dt.date = AS_OF):
    return shape_all(conn, load_spec(), office_id=office, as_of=as_of, image_root=images, ledger_pdf_dir=pdfs)


def unrooted(rows: list[tuple], root: Path) -> list[tuple]:
    return sorted((tuple(v.replace(str(root), "<run>") if isinstance(v, str) else v for v in row) for row in rows),
                  key=repr)


def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shape_module, "READ_BATCH_ROWS", 7)
    monkeypatch.setattr(outputs, "WRITE_BATCH_ROWS", 7)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated tiny practice, staged (copied per test)."""
    folder = tmp_path_factory.mktemp("tiny_streaming")
    generated = generate_practice(folder / "tiny.db", "tiny", 5, AS_OF, 1)
    stage_objects(f"sqlite:///{generated.db_path}", folder / "staging.duckdb", office_id=OFFICE, schema="admin")
    shutil.copytree(generated.images_dir, folder / "images")
    return folder


@pytest.mark.slow
def test_batch_sizes_change_no_row_and_no_count(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    results = {}
    for name in ("default", "small"):
        if name == "small":
            small_batches(monkeypatch)
        shutil.copy(tiny / "staging.duckdb", tmp_path / f"{name}.duckdb")
        conn = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        try:
            summary = run_shaping(conn, tiny / "images", tmp_path / name / "ledger_pdfs")
            results[name] = (tables(conn), summary.to_dict())
        finally:
            conn.close()
    (default, default_summary), (small, small_summary) = results["default"], results["small"]
    assert small_summary == default_summary
    assert default_summary["objects"]["patient"]["shaped"] > 7
    assert default_summary["objects"]["fullproclog"]["shaped"] > 7
    assert sum(len(rows) for rows in default.values()) > 1000  # many batches of 7 read and written
    for table in ALL_TABLES:
        # each run has its own folder of ledger PDFs: compare what lies under it
        assert unrooted(small[table], tmp_path / "small") == unrooted(default[table], tmp_path / "default"), table
    pdfs = {p.name: p.read_bytes() for p in (tmp_path / "default" / "ledger_pdfs").iterdir()}
    assert pdfs and pdfs == {p.name: p.read_bytes() for p in (tmp_path / "small" / "ledger_pdfs").iterdir()}


def test_a_failure_midway_leaves_the_previous_rows(practice, tmp_path, monkeypatch) -> None:
    conn = practice()
    run_shaping(conn, tmp_path / "images")
    before = tables(conn)
    assert "office-1:patient:10" in {row[0] for row in before["contacts"]}
    conn.execute("DELETE FROM dentrix.patient WHERE patid = 10")  # the next shaping differs
    small_batches(monkeypatch)  # rows of several tables are appended before the failure

    def broken(self, stream):
        raise RuntimeError("disk full")

    monkeypatch.setattr(shape_module._Shaper, "shape_documents", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_shaping(conn, tmp_path / "images")
    assert tables(conn) == before
    # nothing is left behind, the connection is usable and the next shaping goes through
    assert not conn.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '_shaping%'").fetchall()
    monkeypatch.undo()
    run_shaping(conn, tmp_path / "images")
    after = tables(conn)
    assert "office-1:patient:10" not in {row[0] for row in after["contacts"]}
    assert after["attachments"] == before["attachments"]


def test_a_responsible_party_later_in_patid_order_is_linked(practice, tmp_path, monkeypatch) -> None:
    """The link (and a flag when the party is not a Contact) does not depend on patid order."""

    def extra(conn: duckdb.DuckDBPyConnection) -> None:
        insert(conn, "patient", [
            patient(11, guarid=20, birthdate=D(2014, 2, 2)),            # party comes later, is a Contact
            patient(12, guarid=21, birthdate=D(2014, 3, 3)),            # party comes later, is quarantined
            patient(13, guarid=40, birthdate=D(2014, 4, 4)),            # party not in the source
            patient(20, isguar=True),
            patient(21, isguar=True, lastname=None),
        ])
        insert(conn, "custvalue", [{"patid": 11, "custfieldid": 2, "fieldvalue": "04/01/2022"}])

    small_batches(monkeypatch)
    conn = practice(extra)
    summary = run_shaping(conn, tmp_path / "images")
    assert summary.balanced
    links = dict(conn.execute(f"SELECT source_id, links->>'Related_Party' FROM {OUTPUT_SCHEMA}.contacts").fetchall())
    assert links["office-1:patient:11"] is not None and "office-1:patient:20" in links["office-1:patient:11"]
    assert links["office-1:patient:12"] is None and links["office-1:patient:13"] is None
    flags = set(conn.execute(f"SELECT source_id, reason FROM {OUTPUT_SCHEMA}.flags").fetchall())
    assert ("office-1:patient:12", "related_party_quarantined") in flags
    assert ("office-1:patient:13", "related_party_missing") in flags
    record = conn.execute(f"SELECT record->>'HIPAA_Form_Signed' FROM {OUTPUT_SCHEMA}.contacts "
                          "WHERE source_id = 'office-1:patient:11'").fetchone()[0]
    assert record == "2022-04-01"  # its practice value was folded in the second pass too
    assert conn.execute(f"SELECT count(*) FROM {OUTPUT_SCHEMA}.contacts WHERE source_id = 'office-1:patient:11'"
                        ).fetchone()[0] == 1


def test_ledger_lines_of_one_day_keep_entry_order_whatever_the_storage_order(practice, tmp_path) -> None:
    """Same-day lines are printed in proclogid order, so the PDF bytes (and the attachment's
    size and row hash) do not depend on the order the rows were staged in."""

    def lines(order: list[int]):
        def extra(conn: duckdb.DuckDBPyConnection) -> None:
            conn.execute("DELETE FROM dentrix.fullproclog")
            rows = {i: {"proclogid": i, "patid": 1, "guarid": 1, "proclogclass": 1, "procdate": D(2026, 6, 5),
                        "amt": -10 * i} for i in (1, 2, 3)}
            insert(conn, "fullproclog", [rows[i] for i in order])
        return extra

    out = []
    for n, order in enumerate(([1, 2, 3], [3, 1, 2])):
        conn = practice(lines(order))
        run_shaping(conn, tmp_path / "images", tmp_path / f"pdfs{n}")
        conn.close()
        out.append((tmp_path / f"pdfs{n}" / "ledger_office-1_1.pdf").read_bytes())
    assert out[0] == out[1]


def test_merge_refuses_keys_out_of_order() -> None:
    groups = shape_module._Groups(iter([(1, "a"), (1, "b"), (3, "c"), (5, "d")]))
    assert groups.take(1) == ["a", "b"]
    assert groups.take(2) == []
    assert groups.take(5) == ["d"]     # 3 had no taker: passed over
    with pytest.raises(RuntimeError, match="out of order"):
        groups.take(4)
