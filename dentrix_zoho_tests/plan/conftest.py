"""A hand-built shaped office (counts known by hand) and the tiny synthetic practice, staged and shaped."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dentrix_zoho.mapping.outputs import row_hash
from dentrix_zoho_tests.load.conftest import write_shaped_tables

OFFICE = "office-1"
AS_OF = dt.date(2026, 11, 1)


def sid(obj: str, key: object) -> str:
    return f"{OFFICE}:{obj}:{key}"


def row(obj: str, key: object, record: dict[str, Any], links: dict[str, Any], **extra: Any) -> dict[str, Any]:
    source_id = sid(obj, key)
    record = {**record, "Source_System_ID": source_id}
    return {"source_id": source_id, "source_object": obj, "office_id": OFFICE, "row_hash": row_hash(record, links),
            "record": record, "links": links, **extra}


def parent(patid: int) -> dict[str, Any]:
    return {"module": "Contacts", "source_id": sid("patient", patid)}


def build_office(path: Path, files: Path, *, extra_notes: int = 0) -> Path:
    """A guarantor with an insurance subform, two patients, two events, two notes (plus
    ``extra_notes``), three files of which one is sendable (one missing, one over Zoho's limit)."""
    files.mkdir(parents=True, exist_ok=True)
    (files / "xray1.jpg").write_bytes(b"\xff\xd8" + b"x" * 2000)
    tables: dict[str, list[dict[str, Any]]] = {
        "contacts": [
            row("patient", 1, {"Last_Name": "Guarantorsen", "First_Name": "Gailvira", "Balance_Due": 120.5,
                               "Insurance_Plans": [{"Plan_Type": "Primary", "Carrier": "Delta Dental"}]},
                {"Owner": {"provider_id": "DDS1"}}, tier=0),
            row("patient", 2, {"Last_Name": "Minorsky", "First_Name": "Maximilio", "Balance_Due": 0},
                {"Owner": {"provider_id": "DDS2"}, "Related_Party": parent(1)}, tier=1),
            row("patient", 3, {"Last_Name": "Solowitz", "First_Name": "Samwisel"}, {"Owner": {"provider_id": "DDS3"}},
                tier=1),
        ],
        "events": [
            row("appt", 10, {"Event_Title": "Prophy", "Start_DateTime": "2026-11-20T09:30:00-06:00",
                             "End_DateTime": "2026-11-20T10:30:00-06:00"}, {"Who_Id": parent(2)}),
            row("appt", 11, {"Event_Title": "Exam", "Start_DateTime": "2026-11-21T09:30:00-06:00",
                             "End_DateTime": "2026-11-21T10:00:00-06:00"}, {"Who_Id": parent(3)}),
        ],
        "notes": [
            row("clinicalnote", 20 + i, {"Note_Title": f"Clinical note {i}", "Note_Content": "Perio charting done."},
                {"Parent_Id": parent(2)})
            for i in range(2 + extra_notes)
        ],
        "attachments": [
            row("eattach", 30, {"File_Name": "xray1.jpg", "Size": "2002"}, {"Parent_Id": parent(2)},
                file_path=str(files / "xray1.jpg"), size_bytes=2002, file_status="ok", parent=parent(2)),
            row("eattach", 31, {"File_Name": "gone.jpg"}, {"Parent_Id": parent(3)},
                file_path=str(files / "gone.jpg"), size_bytes=None, file_status="missing", parent=parent(3)),
            row("eattach", 32, {"File_Name": "big.tif"}, {"Parent_Id": parent(1)},
                file_path=str(files / "big.tif"), size_bytes=25_000_000, file_status="over_limit", parent=parent(1)),
        ],
    }
    return write_shaped_tables(path, OFFICE, tables)


PATIENT_WORDS = ("Guarantorsen", "Gailvira", "Minorsky", "Maximilio", "Solowitz", "Samwisel", "Perio charting",
                 "xray1.jpg", "Delta Dental")


@pytest.fixture
def office_home(tmp_path: Path) -> Callable[..., Path]:
    """A DENTRIX_ZOHO_HOME whose staging.duckdb holds the hand-built office."""

    def make(extra_notes: int = 0) -> Path:
        home = tmp_path / f"home{extra_notes}"
        home.mkdir()
        build_office(home / "staging.duckdb", home / "files", extra_notes=extra_notes)
        return home

    return make


@pytest.fixture(scope="session")
def tiny_shaped(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic practice staged and shaped (API names from the labels: no Zoho needed)."""
    from dentrix_zoho.mapping import load_spec, shape_all
    from dentrix_zoho.source.synthetic import PracticeFiles
    from dentrix_zoho.staging.stage_all import stage_objects

    root = tmp_path_factory.mktemp("plan_tiny")
    duck = root / "staging.duckdb"
    stage_objects(f"sqlite:///{tiny_practice}", duck, office_id=OFFICE)
    con = duckdb.connect(str(duck))
    try:
        shape_all(con, load_spec(), office_id=OFFICE, as_of=AS_OF, image_root=PracticeFiles(tiny_practice).images_dir,
                  ledger_pdf_dir=root / "pdfs")
    finally:
        con.close()
    return root


@pytest.fixture
def tiny_home(tiny_shaped: Path, tmp_path: Path) -> Path:
    home = tmp_path / "tiny_home"
    home.mkdir()
    shutil.copy(tiny_shaped / "staging.duckdb", home / "staging.duckdb")
    return home
