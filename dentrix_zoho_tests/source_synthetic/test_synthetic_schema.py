"""The synthetic database matches the catalog: tables, views, types, keys, versions."""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from dentrix_zoho.source.catalog import CATALOG, base_tables, views
from dentrix_zoho.source.synthetic import GenerationResult, generate_practice
from dentrix_zoho.source.synthetic.schema import present_columns, sql_type
from dentrix_zoho.source.synthetic.views import VIEW_DEFINITIONS


def _columns(conn: sqlite3.Connection, name: str) -> list[tuple[str, str]]:
    return [(row[1], row[2]) for row in conn.execute(f"PRAGMA table_info({name})")]


def test_every_catalog_object_exists_with_its_kind(db: sqlite3.Connection) -> None:
    found = dict(db.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"))
    for obj in CATALOG.values():
        assert found.get(obj.name) == obj.kind, obj.name


def test_table_columns_and_types_equal_the_catalog(db: sqlite3.Connection) -> None:
    for obj in base_tables():
        assert _columns(db, obj.name) == [(c.name, sql_type(c)) for c in obj.columns], obj.name


def test_view_columns_equal_the_catalog(db: sqlite3.Connection) -> None:
    for obj in views():
        assert [name for name, _ in _columns(db, obj.name)] == list(obj.column_names), obj.name


def test_view_definitions_cover_exactly_the_catalog_views() -> None:
    assert set(VIEW_DEFINITIONS) == {o.name for o in views()}
    for obj in views():
        assert VIEW_DEFINITIONS[obj.name].column_names == obj.column_names, obj.name


def test_every_view_returns_rows(db: sqlite3.Connection) -> None:
    for obj in views():
        (count,) = db.execute(f"SELECT COUNT(*) FROM {obj.name}").fetchone()
        assert count > 0, obj.name


def test_catalog_keys_are_unique(db: sqlite3.Connection) -> None:
    for obj in CATALOG.values():
        (total,) = db.execute(f"SELECT COUNT(*) FROM {obj.name}").fetchone()
        (distinct,) = db.execute(f"SELECT COUNT(*) FROM (SELECT DISTINCT {', '.join(obj.key)} FROM {obj.name})").fetchone()
        assert total == distinct, obj.name


def test_views_resolve_when_the_file_is_attached_as_admin(tiny_practice: GenerationResult) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("ATTACH DATABASE ? AS admin", (str(tiny_practice.db_path),))
        for obj in views():
            conn.execute(f"SELECT {', '.join(obj.column_names)} FROM admin.{obj.name} LIMIT 1").fetchall()
        sql = " ".join(s for (s,) in conn.execute("SELECT sql FROM admin.sqlite_master WHERE type = 'view'"))
        assert "admin." not in sql
    finally:
        conn.close()


def test_text_is_stored_as_iso_datetimes_and_numbers(db: sqlite3.Connection) -> None:
    iso = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
    for obj in base_tables():
        for col in obj.columns:
            values = [v for (v,) in db.execute(f"SELECT {col.name} FROM {obj.name} WHERE {col.name} IS NOT NULL LIMIT 200")]
            if col.type == "DATETIME":
                assert all(isinstance(v, str) and iso.fullmatch(v) for v in values), (obj.name, col.name)
            elif col.type in ("INTEGER", "SMALLINT"):
                assert all(isinstance(v, int) for v in values), (obj.name, col.name)
            elif col.type == "BOOL":
                assert set(values) <= {0, 1}, (obj.name, col.name)
            elif col.type == "DECIMAL":
                assert all(isinstance(v, (int, float)) and round(v, 2) == v for v in values), (obj.name, col.name)
            elif col.length:
                assert all(isinstance(v, str) and len(v) <= col.length for v in values), (obj.name, col.name)


def test_version_probe_rows(db: sqlite3.Connection) -> None:
    (version,) = db.execute("SELECT optionvalue FROM options WHERE optionkey LIKE 'Data_Version%'").fetchone()
    assert version.strip().startswith("G7.4")
    (xml,) = db.execute("SELECT optionvalue FROM options WHERE optionsection LIKE 'SysReqWkstnData%'").fetchone()
    assert "<InstalledVersion>G7.4" in xml


def test_practice_identity_query(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT id1, practicename FROM rsc WHERE rsctype = 0").fetchall()
    assert len(rows) == 1 and rows[0][1].strip()


def test_older_version_lacks_the_optional_columns(tmp_path: Path) -> None:
    result = generate_practice(tmp_path / "g62.db", "tiny", 3, date(2024, 11, 1), dentrix_version="G6.2")
    conn = sqlite3.connect(result.db_path)
    try:
        for obj in CATALOG.values():
            names = [row[1] for row in conn.execute(f"PRAGMA table_info({obj.name})")]
            assert names == [c.name for c in present_columns(obj, "G6.2")], obj.name
        v_appt = [row[1] for row in conn.execute("PRAGMA table_info(v_appt)")]
        assert "broken" not in v_appt and "addtnl_provider_id" not in v_appt
        (version,) = conn.execute("SELECT optionvalue FROM options WHERE optionkey LIKE 'Data_Version%'").fetchone()
        assert version.startswith("G6.2")
    finally:
        conn.close()
    assert result.manifest.dentrix_version == "G6.2"


def test_rejects_unknown_scale_and_office(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_practice(tmp_path / "x.db", "huge", 1, date(2025, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="office"):
        generate_practice(tmp_path / "x.db", "tiny", 1, date(2025, 1, 1), office=0)


def test_refuses_to_empty_a_foreign_image_folder(tmp_path: Path) -> None:
    (tmp_path / "p_images").mkdir()
    (tmp_path / "p_images" / "precious.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        generate_practice(tmp_path / "p.db", "tiny", 1, date(2025, 1, 1))
    assert (tmp_path / "p_images" / "precious.jpg").exists()
