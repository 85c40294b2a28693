"""A staged tiny practice per test: the Dentrix file and its DuckDB staging, both copies safe to change."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dentrix_zoho.cutover.changes import detect_and_apply_changes
from dentrix_zoho.cutover.summary import DeltaSummary
from dentrix_zoho.source.connection import open_source
from dentrix_zoho.staging.stage_all import stage_objects
from dentrix_zoho.staging.store import StagingStore

OFFICE = "office-1"


@dataclass
class StagedPractice:
    db: Path
    staging: Path

    @property
    def source(self) -> str:
        return f"sqlite:///{self.db}"

    def write(self, sql: str, params: Any = ()) -> None:
        """Change the Dentrix stand-in as the practice would (a committed write)."""
        with sqlite3.connect(self.db) as conn:
            conn.execute(sql, params)

    def read(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()

    def staged(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.staging), read_only=True)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def cursor(self, object_name: str) -> datetime:
        """The newest modified time staged for the object (the delta's cursor)."""
        return self.staged(f'SELECT max(automodifiedtimestamp) FROM dentrix."{object_name}"')[0][0]

    def delta(self, objects: tuple[str, ...] | None = None, snapshot_id: str = "delta-1", **kwargs: Any) -> DeltaSummary:
        store = StagingStore(self.staging)
        extra = {"objects": objects} if objects is not None else {}
        with open_source(self.source) as src, store.connect() as con:
            return detect_and_apply_changes(src, store, con, office_id=OFFICE, snapshot_id=snapshot_id, **extra, **kwargs)

    def recorded_changes(self, snapshot_id: str = "delta-1") -> set[tuple[str, str, str]]:
        rows = self.staged(
            "SELECT object_name, source_key, change FROM staging_meta.changes WHERE snapshot_id = ?", [snapshot_id]
        )
        return {tuple(r) for r in rows}  # type: ignore[misc]


@pytest.fixture(scope="session")
def staged_baseline(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> StagedPractice:
    folder = tmp_path_factory.mktemp("cutover_baseline")
    db = folder / "practice.db"
    shutil.copy(tiny_practice, db)
    staging = folder / "staging.duckdb"
    stage_objects(f"sqlite:///{db}", staging, office_id=OFFICE)
    return StagedPractice(db, staging)


@pytest.fixture()
def practice(staged_baseline: StagedPractice, tmp_path: Path) -> Iterator[StagedPractice]:
    db, staging = tmp_path / "practice.db", tmp_path / "staging.duckdb"
    shutil.copy(staged_baseline.db, db)
    shutil.copy(staged_baseline.staging, staging)
    yield StagedPractice(db, staging)

