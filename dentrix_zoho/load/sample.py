"""Choosing the sample: a stratified slice of patients and everything that hangs off them.

Deterministic (the order within a stratum is a hash of the seed and the patient id), so the
same staging and the same settings always give the same sample.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import duckdb

from dentrix_zoho.mapping.ids import source_system_id
from dentrix_zoho.mapping.routing import substitute_query_params
from dentrix_zoho.mapping.spec import MappingSpec, load_spec

log = logging.getLogger(__name__)

STAGING = "dentrix"
# Name -> boolean SQL over the candidate columns: patid, guarid, status, birthdate, lastvisitdate,
# priminsuredid, has_recall, has_clinical_note, balance, age_years, months_since_visit.
DEFAULT_STRATA: dict[str, str] = {
    "active": "status = 1 AND months_since_visit <= 18",
    "recall": "has_recall",
    "insured": "coalesce(priminsuredid, 0) > 0",
    "clinical_notes": "has_clinical_note",
    "balance": "coalesce(balance, 0) > 0",
    "minor_with_responsible_party": "age_years < 18 AND coalesce(guarid, 0) > 0 AND guarid <> patid",
}
_SAFE_SQL = re.compile(r"^[A-Za-z0-9_ <>=!().,'+\-*/]*$")


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [STAGING, table]).fetchone()[0])


def _candidates(con: duckdb.DuckDBPyConnection, office_id: str, as_of: dt.date,
                strata: Mapping[str, str], seed: int) -> list[dict[str, Any]]:
    office = office_id.replace("'", "''")

    def patids(table: str) -> str:
        return (f"(SELECT DISTINCT patid FROM {STAGING}.{table} WHERE _office_id = '{office}')" if _exists(con, table)
                else "(SELECT NULL::INTEGER AS patid WHERE FALSE)")

    buckets = "coalesce(aging0to30,0) + coalesce(aging31to60,0) + coalesce(aging61to90,0) + coalesce(aging91plus,0)"
    balance = (f"(SELECT guarid, sum({buckets}) AS balance FROM {STAGING}.aging WHERE _office_id = '{office}' "
               "GROUP BY guarid)" if _exists(con, "aging") else "(SELECT NULL::INTEGER AS guarid, 0 AS balance WHERE FALSE)")
    flags = ", ".join(f'({expr}) AS "s_{i}"' for i, expr in enumerate(strata.values()))
    query = f"""
        WITH c AS (
          SELECT p.patid, p.guarid, p.status, p.birthdate, p.lastvisitdate, p.priminsuredid,
                 r.patid IS NOT NULL AS has_recall, n.patid IS NOT NULL AS has_clinical_note, b.balance,
                 date_diff('year', CAST(p.birthdate AS DATE), DATE '{as_of.isoformat()}') AS age_years,
                 date_diff('month', CAST(p.lastvisitdate AS DATE), DATE '{as_of.isoformat()}') AS months_since_visit
          FROM {STAGING}.patient p
          LEFT JOIN {patids('recallpending')} r ON r.patid = p.patid
          LEFT JOIN {patids('clinicalnote')} n ON n.patid = p.patid
          LEFT JOIN {balance} b ON b.guarid = p.patid
          WHERE p._office_id = '{office}' AND p.patid IS NOT NULL
        )
        SELECT patid, guarid, {flags} FROM c ORDER BY md5('{int(seed)}:' || CAST(patid AS VARCHAR))
    """
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def choose_patients(con: duckdb.DuckDBPyConnection, office_id: str, *, size: int, strata: Mapping[str, str],
                    as_of: dt.date, seed: int) -> tuple[list[int], dict[str, int]]:
    """Patient ids: an equal share per stratum, topped up in hash order; plus per-stratum counts."""
    for name, expr in strata.items():
        if not _SAFE_SQL.match(expr) or ";" in expr:
            raise ValueError(f"sample stratum {name!r}: not a plain boolean expression")
    rows = _candidates(con, office_id, as_of, strata, seed)
    quota = math.ceil(size / max(len(strata), 1))
    chosen: list[int] = []
    taken: set[int] = set()
    per_stratum: dict[str, int] = {}
    for i, name in enumerate(strata):
        members = [int(r["patid"]) for r in rows if r[f"s_{i}"]]
        picked = 0
        for patid in members:
            if picked >= quota or len(chosen) >= size:
                break
            if patid not in taken:
                taken.add(patid)
                chosen.append(patid)
                picked += 1
        per_stratum[name] = picked
    in_any = [int(r["patid"]) for r in rows if any(r[f"s_{i}"] for i in range(len(strata)))]
    for patid in in_any + [int(r["patid"]) for r in rows]:
        if len(chosen) >= size:
            break
        if patid not in taken:
            taken.add(patid)
            chosen.append(patid)
    return chosen, per_stratum


def _children(con: duckdb.DuckDBPyConnection, spec: MappingSpec, office_id: str, patids: set[int],
              as_of: dt.date) -> set[str]:
    """Source ids of every stream row owned by a chosen patient, through the spec's own queries."""
    staged = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [STAGING]).fetchall()}
    office = office_id.replace("'", "''")
    for name in staged:  # the spec's queries name tables bare and see one office
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM {STAGING}."{name}" WHERE _office_id = \'{office}\'')
    out: set[str] = set()
    ids = ", ".join(str(p) for p in sorted(patids)) or "NULL"
    try:
        for stream in spec.streams.values():
            if stream.kind == "patient" or not stream.parent_key or stream.object not in staged:
                continue
            keys = ", ".join(f'q."{k}"' for k in stream.key)
            query = (f"SELECT {keys} FROM ({substitute_query_params(spec, stream.query, as_of)}) q "
                     f'WHERE q."{stream.parent_key}" IN ({ids})')
            try:
                rows = con.execute(query).fetchall()
            except duckdb.Error as exc:
                log.warning("sample: stream %s not followed (%s)", stream.object, type(exc).__name__)
                continue
            for row in rows:
                key: Any = row[0] if len(row) == 1 else tuple(row)
                if key is not None:
                    out.add(source_system_id(office_id, stream.object, key))
            if stream.kind == "procedure_history":
                out |= {source_system_id(office_id, "procedure_history", p) for p in patids}
    finally:
        for name in staged:
            con.execute(f'DROP VIEW IF EXISTS temp.main."{name}"')
    return out


def select_sample(
    duckdb_con: duckdb.DuckDBPyConnection,
    size: int = 75,
    strata: Mapping[str, str] | None = None,
    *,
    office_id: str,
    as_of: dt.date | None = None,
    spec: MappingSpec | None = None,
    seed: int = 0,
) -> set[str]:
    """Source_System_IDs of ``size`` stratified patients, their responsible parties and all their children.

    Give the patient ids (``office:patient:N``) to ``shape_all(sample_source_ids=...)`` and the
    whole set to ``LoadOptions(sample_source_ids=...)``.
    """
    if size < 1:
        raise ValueError("sample size must be at least 1")
    strata = dict(DEFAULT_STRATA if strata is None else strata)
    as_of = as_of or dt.date.today()
    chosen, per_stratum = choose_patients(duckdb_con, office_id, size=size, strata=strata, as_of=as_of, seed=seed)
    patids = set(chosen)
    office = office_id.replace("'", "''")
    if patids:
        guarantors = duckdb_con.execute(
            f"SELECT DISTINCT guarid FROM {STAGING}.patient WHERE _office_id = '{office}' AND patid IN "
            f"({', '.join(str(p) for p in sorted(patids))}) AND coalesce(guarid, 0) > 0").fetchall()
        patids |= {int(g[0]) for g in guarantors}
    sids = {source_system_id(office_id, "patient", p) for p in patids}
    sids |= _children(duckdb_con, spec or load_spec(), office_id, patids, as_of)
    log.info("sample: %d patients chosen (%d with responsible parties), %d source ids; per stratum %s",
             len(chosen), len(patids), len(sids), per_stratum)
    return sids
