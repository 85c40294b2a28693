"""A hand-built staged practice: every catalog table, a few rows each, every dirty case named."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dentrix_zoho.source.catalog import CATALOG

DUCK = {"INTEGER": "INTEGER", "SMALLINT": "SMALLINT", "VARCHAR": "VARCHAR", "DATETIME": "TIMESTAMP",
        "DECIMAL": "DECIMAL(12,2)", "BOOL": "BOOLEAN"}
OFFICE = "office-1"
AS_OF = dt.date(2026, 11, 1)
D = dt.datetime


def create_staging(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS dentrix")
    for obj in CATALOG.values():
        cols = ", ".join(f'"{c.name}" {DUCK[c.type]}' for c in obj.columns)
        conn.execute(
            f'CREATE TABLE dentrix."{obj.name}" ({cols}, _office_id VARCHAR, _source_key VARCHAR, '
            "_row_hash VARCHAR, _snapshot_id VARCHAR)"
        )


def insert(conn: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], office: str = OFFICE) -> None:
    for row in rows:
        data = {**row, "_office_id": office}
        names = ", ".join(f'"{k}"' for k in data)
        marks = ", ".join("?" for _ in data)
        conn.execute(f'INSERT INTO dentrix."{table}" ({names}) VALUES ({marks})', list(data.values()))


def patient(patid: int, **kw: Any) -> dict[str, Any]:
    base = {"patid": patid, "guarid": patid, "famid": patid, "addrid": 1, "lastname": f"Last{chr(64 + patid % 26)}",
            "firstname": "Ann", "status": 1, "gender": 2, "birthdate": D(1980, 1, 1), "provid1": "DDS1",
            "lastvisitdate": D(2026, 6, 1), "firstvisitdate": D(2015, 3, 2), "privacyflags": 0,
            "emailaddr": f"p{patid}@example.com", "pager": "801-555-01%02d" % (patid % 100)}
    base.update(kw)
    return base


@pytest.fixture(scope="session")
def practice_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once; each test gets a copy (building takes longer than copying)."""
    folder = tmp_path_factory.mktemp("practice_template")
    conn = duckdb.connect(str(folder / "staging.duckdb"))
    try:
        fill_practice(conn, folder)
    finally:
        conn.close()
    return folder


@pytest.fixture
def practice(practice_template: Path, tmp_path: Path) -> Callable[..., duckdb.DuckDBPyConnection]:
    """A staged practice with known rows (a fresh copy per test); returns an open connection.
    ``practice(extra)`` runs ``extra(conn)`` first to add or change rows."""

    def build(extra: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> duckdb.DuckDBPyConnection:
        shutil.copy(practice_template / "staging.duckdb", tmp_path / "staging.duckdb")
        shutil.copytree(practice_template / "images", tmp_path / "images", dirs_exist_ok=True)
        conn = duckdb.connect(str(tmp_path / "staging.duckdb"))
        if extra is not None:
            extra(conn)
        return conn

    return build


def fill_practice(conn: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    create_staging(conn)
    insert(conn, "address", [{"addrid": 1, "street1": "1450 N 300 E", "city": "OREM", "state": "ut",
                              "zipcode": "84057", "phone": "(801) 555-0100"},
                             {"addrid": 2, "street1": "12 Canyon Rd", "city": "LEHI", "state": "UT",
                              "zipcode": "84043"}])
    insert(conn, "rsc", [{"rsctype": 0, "rscid": "PRAC", "practicename": "Timp Family Dental"}])
    insert(conn, "fulldef", [
        {"deftype": 11, "defid": 1, "descript": "FIRM"}, {"deftype": 11, "defid": 2, "descript": "WEIRD"},
        {"deftype": 12, "defid": 1, "descript": "Hygiene Recare"},
    ])
    insert(conn, "patient", [
        patient(1, isguar=True),                                   # adult, guarantor of 2
        patient(2, guarid=1, birthdate=D(2015, 5, 5)),             # minor -> Related_Party 1
        patient(3, emailaddr="not-an-email"),                      # invalid e-mail: dropped, flagged
        patient(4, birthdate=D(2030, 1, 1)),                       # future birth date: dropped, flagged
        patient(5, lastname=None),                                 # missing last name: quarantined
        patient(6, status=3),                                      # inactive -> Lead
        patient(7, status=4, lastvisitdate=D(2010, 1, 1)),          # archived, no activity -> skipped
        patient(8, lastvisitdate=D(2020, 1, 1)),                    # no treatment in 18 months -> Lead
        patient(9, status=2, lastvisitdate=None),                   # non-patient, referenced nowhere -> skipped
        patient(10, refid=501, chartnum="X" * 30),                  # unmapped referral; overlong chart no.
    ])
    insert(conn, "referral", [{"refid": 501, "lastname": "Drive by", "nonpersonflag": True}])
    insert(conn, "appt", [
        {"apptid": 100, "apptdate": D(2026, 11, 20), "timehr": 9, "timemin": 30, "apptlen": 60, "patid": 1,
         "provid": "DDS1", "opid": "OP1", "apptreason": "Prophy", "status": 1, "appttype": 1},
        {"apptid": 101, "apptdate": D(2026, 11, 21), "timehr": 8, "timemin": 0, "apptlen": 30, "patid": 0,
         "patname": "DOE, JANE", "phone": "801.555.0177", "newpataddrid": 2, "provid": "DDS1",
         "apptreason": "NP exam", "status": 2, "appttype": 0},
        {"apptid": 102, "apptdate": D(2026, 11, 22), "timehr": 8, "timemin": 0, "apptlen": 30, "patid": 999,
         "provid": "DDS1", "apptreason": "Orphan", "status": 1, "appttype": 1},       # orphan -> quarantine
        {"apptid": 103, "apptdate": D(2026, 11, 23), "timehr": 8, "timemin": 0, "apptlen": 30, "patid": 9,
         "provid": "DDS1", "apptreason": "Skipped parent", "status": 1, "appttype": 1},
        {"apptid": 104, "apptdate": D(2026, 11, 24), "timehr": 8, "timemin": 0, "apptlen": 30, "patid": 6,
         "provid": "HYG1", "apptreason": "Lead appt", "status": 1, "appttype": 1},
        {"apptid": 105, "apptdate": D(2026, 11, 25), "timehr": 8, "timemin": 0, "apptlen": 30, "patid": 0,
         "patname": "LASTA, ANN", "provid": "DDS1", "apptreason": "NP exam", "status": 1, "appttype": 1},
    ])
    insert(conn, "appthist", [{"apptid": 1, "parentapptid": 100, "deletedflag": False}])
    insert(conn, "recalltype", [{"recallid": 1, "patid": 0, "name": "PROPHY",
                                 "descript": "Prophy - 6 Month Cleaning", "unit": 3, "qty": 6, "provtype": 0}])
    insert(conn, "recallpending", [{"recallid": 1, "patid": 1, "duedate": D(2027, 1, 1), "status": 0},
                                   {"recallid": 1, "patid": 5, "duedate": D(2027, 1, 1)}])
    insert(conn, "clinicalnote", [
        {"cnotesid": 1, "patid": 1, "provid": "DDS1", "createdatetime": D(2026, 6, 1, 10, 0), "notetext": "Pt ok."},
        {"cnotesid": 2, "patid": 2, "provid": "DDS1", "createdatetime": D(2026, 6, 2, 10, 0),
         "notetext": "word " * 8000},                                                      # 40 000 chars: split
        {"cnotesid": 3, "patid": 1, "provid": "DDS1", "createdatetime": D(2026, 6, 3), "notetext": None},
    ])
    insert(conn, "rxrec", [
        {"rxid": 1, "patid": 1, "provid": "DDS1", "drugname": "Amoxicillin", "sigtext": "1 tid",
         "rxdate": D(2026, 6, 1), "refills": 0},
        {"rxid": 2, "patid": 0, "drugname": "Template", "istemplate": True},
    ])
    insert(conn, "proccode", [{"proccodeid": 1, "adacode": "D1110", "descript": "prophylaxis - adult"},
                              {"proccodeid": 2, "adacode": "X99", "descript": "bad code"}])
    insert(conn, "fullproclog", [
        {"proclogid": 1, "patid": 1, "guarid": 1, "proclogclass": 0, "procdate": D(2026, 6, 1), "proccodeid": 1,
         "amt": 105, "toothrangestart": 3, "surfacestring": "om", "provid": "DDS1"},
        {"proclogid": 2, "patid": 2, "guarid": 1, "proclogclass": 0, "procdate": D(2026, 6, 2), "proccodeid": 2,
         "amt": 75, "provid": "DDS1"},
        {"proclogid": 3, "patid": 1, "guarid": 1, "proclogclass": 1, "procdate": D(2026, 6, 5), "amt": -50},
    ])
    insert(conn, "aging", [{"guarid": 1, "aging0to30": 100, "aging31to60": 30, "aging61to90": 0,
                            "aging91plus": 0, "lastpaydate": D(2026, 6, 5)}])
    insert(conn, "contact", [{"contactid": 1, "contactdate": D(2026, 5, 1), "contacttime": 1430, "patid": 1,
                              "title": "Left message re: recall", "contacttype": 5, "provid": "DDS1"}])
    insert(conn, "custfield", [{"custfieldid": 1, "label": "Preferred Language", "fieldtype": "list",
                                "listvalues": "English|Spanish"},
                               {"custfieldid": 2, "label": "HIPAA Form Signed", "fieldtype": "date"},
                               {"custfieldid": 3, "label": "Favourite Colour", "fieldtype": "text"}])
    insert(conn, "custvalue", [
        {"patid": 1, "custfieldid": 1, "fieldvalue": "spanish "},
        {"patid": 1, "custfieldid": 2, "fieldvalue": "02/30/2020"},             # impossible date
        {"patid": 2, "custfieldid": 2, "fieldvalue": "03/15/2021"},
        {"patid": 1, "custfieldid": 3, "fieldvalue": "blue"},                   # not in the spec
    ])
    insert(conn, "document", [{"docid": 1, "descript": "Consent", "path_cnum": "docs/consent1.pdf"},
                              {"docid": 2, "descript": "Missing", "path_cnum": "docs/missing.pdf"}])
    insert(conn, "docattach", [{"attachid": 1, "docid": 1, "attachtotype": 1, "attachtoentityid": 1},
                               {"attachid": 2, "docid": 2, "attachtotype": 1, "attachtoentityid": 2}])
    insert(conn, "eattach", [{"eattachid": 1, "patid": 1, "path_cnum": "xray/big.jpg"}])
    images = tmp_path / "images"
    (images / "docs").mkdir(parents=True)
    (images / "xray").mkdir(parents=True)
    (images / "docs" / "consent1.pdf").write_bytes(b"%PDF-1.4 test")
    (images / "xray" / "big.jpg").write_bytes(b"\0" * 2048)


@pytest.fixture
def office_id() -> str:
    return OFFICE


@pytest.fixture
def as_of() -> dt.date:
    return AS_OF


# --- the approval tests: a copy of the repository's spec to change ----------------------------------


@pytest.fixture
def spec_copy(tmp_path: Path) -> Path:
    from dentrix_zoho.mapping.spec import repo_spec_dir

    path = tmp_path / "spec.yaml"
    path.write_bytes((repo_spec_dir() / "dentrix_to_zoho.yaml").read_bytes())
    return path


def edit_leads_window(path: Path, months: int) -> None:
    """A change to what the map does (its content hash changes): the Leads window of the routing."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["routing"]["leads_window_months"] = months
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
