"""Hand-built staged offices: a ``dentrix.patient`` table per office's DuckDB file, as staging leaves it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

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
