"""Hand-built staged offices: a ``dentrix.patient`` table per office's DuckDB file, as staging leaves it; a
ledger holding one cross-office group of two offices' patients; and the merge kit's org under ``merge``,
audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dentrix_zoho.ledger import Ledger, MergeMember
from dentrix_zoho.source.catalog import CATALOG

DUCK = {"INTEGER": "INTEGER", "SMALLINT": "SMALLINT", "VARCHAR": "VARCHAR", "DATETIME": "TIMESTAMP",
        "DECIMAL": "DECIMAL(12,2)", "BOOL": "BOOLEAN"}
D = dt.datetime


def person(patid: int, last: str, first: str, born: dt.datetime | None, *, gender: int = 2,
           mobile: str | None = None, email: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"patid": patid, "guarid": patid, "famid": patid, "lastname": last, "firstname": first,
            "birthdate": born, "gender": gender, "pager": mobile, "emailaddr": email, "status": 1, **kw}


def stage_patients(path: Path, offices: dict[str, list[dict[str, Any]]]) -> Path:
    """One staging file holding ``offices``' patients (one office each, or several in the single-file layout)."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS dentrix")
        obj = CATALOG["patient"]
        cols = ", ".join(f'"{c.name}" {DUCK[c.type]}' for c in obj.columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS dentrix.patient ({cols}, _office_id VARCHAR, _source_key VARCHAR, "
                    "_row_hash VARCHAR, _snapshot_id VARCHAR)")
        for office, rows in offices.items():
            for row in rows:
                data = {**row, "_office_id": office, "_source_key": str(row["patid"])}
                names = ", ".join(f'"{k}"' for k in data)
                marks = ", ".join("?" for _ in data)
                con.execute(f"INSERT INTO dentrix.patient ({names}) VALUES ({marks})", list(data.values()))
    finally:
        con.close()
    return path


# -- one group of two offices' patients (north:patient:1, south:patient:7) in a ledger -------------

NORTH_SOUTH = ("north", "south")
GROUP_PATIENTS = ("north:patient:1", "south:patient:7")
GROUP_KEY = "g-1"


@pytest.fixture(params=["sqlite", "postgresql"])
def grouped_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = (f"sqlite:///{tmp_path / 'ledger.sqlite'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_database"))
    with Ledger(url) as opened:
        opened.replace_merge_groups([MergeMember(GROUP_KEY, office, "patient", sid, "name")
                                     for office, sid in zip(NORTH_SOUTH, GROUP_PATIENTS, strict=True)],
                                    offices=NORTH_SOUTH)
        yield opened


@pytest.fixture
def audited_merge_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The merge kit's two offices and emulator under policy ``merge``, the org-level audit taken."""
    from dentrix_zoho.org import POLICY_ENV
    from dentrix_zoho_tests.org.merge_kit import running_org

    monkeypatch.setenv(POLICY_ENV, "merge")
    with running_org(tmp_path) as made:
        made.audit()
        yield made
