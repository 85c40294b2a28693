"""Shaping the hand-built practice: accounting identity, every dirty value caught, links and routing."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb

import pytest

from dentrix_zoho.mapping import load_spec, shape_all, write_workflow_reference
from dentrix_zoho.mapping.outputs import MODULE_TABLES

DIRTY_VALUES = ("not-an-email", "Drive by", "02/30/2020", "X" * 30, "DOE, JANE", "spanish ")


@pytest.fixture(scope="module")
def shaped(practice_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """Shaped once for the read-only tests of this module."""
    folder = tmp_path_factory.mktemp("shaped")
    shutil.copy(practice_template / "staging.duckdb", folder / "staging.duckdb")
    conn = duckdb.connect(str(folder / "staging.duckdb"))
    summary = shape_all(conn, load_spec(), office_id="office-1", as_of=dt.date(2026, 11, 1),
                        image_root=practice_template / "images", ledger_pdf_dir=folder / "ledger_pdfs")
    yield conn, summary
    conn.close()


def rows(conn, table: str, where: str = "TRUE") -> list[dict]:
    cursor = conn.execute(f"SELECT * FROM zoho_shaped.{table} WHERE {where} ORDER BY ALL")
    names = [d[0] for d in cursor.description]
    out = []
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        for key in ("record", "links", "parent"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
        out.append(row)
    return out


def by_source(conn, table: str) -> dict[str, dict]:
    return {r["source_id"]: r for r in rows(conn, table)}


def problems(conn, table: str, source_id: str) -> set[tuple[str, str]]:
    return {(r["field"], r["reason"]) for r in rows(conn, table, f"source_id = '{source_id}'")}


def test_every_staged_row_is_accounted_for(shaped) -> None:
    conn, summary = shaped
    assert summary.balanced, summary.markdown()
    patient = summary.objects["patient"]
    assert (patient.staged, patient.shaped, patient.quarantined, patient.skipped) == (10, 7, 1, 2)
    # identity per module table: shaped patients are exactly the Contacts + Leads rows
    shaped_patients = rows(conn, "contacts") + rows(conn, "leads", "source_object = 'patient'")
    assert len(shaped_patients) == patient.shaped
    for obj, acc in summary.objects.items():
        counted = conn.execute(
            "SELECT (SELECT count(DISTINCT source_id) FROM zoho_shaped.quarantine WHERE source_object = ?),"
            "       (SELECT count(*) FROM zoho_shaped.skipped WHERE source_object = ?)", [obj, obj]).fetchone()
        assert counted == (acc.quarantined, acc.skipped), obj
    table = {r["source_object"]: r for r in rows(conn, "accounting")}
    assert table["appt"]["staged"] == 6 and table["appt"]["shaped"] == 4


def test_source_ids_are_unique_and_carried_in_the_record(shaped) -> None:
    conn, _ = shaped
    for table in MODULE_TABLES.values():
        found = rows(conn, table)
        assert len({r["source_id"] for r in found}) == len(found), table
        assert all(r["record"]["Source_System_ID"] == r["source_id"] for r in found)
        assert all(len(r["row_hash"]) == 64 for r in found)


def test_seeded_dirty_values_are_caught(shaped) -> None:
    conn, _ = shaped
    contacts = by_source(conn, "contacts")
    assert "Email" not in contacts["office-1:patient:3"]["record"]
    assert ("Email", "email_invalid") in problems(conn, "flags", "office-1:patient:3")
    assert "Date_of_Birth" not in contacts["office-1:patient:4"]["record"]
    assert ("Date_of_Birth", "date_in_future") in problems(conn, "flags", "office-1:patient:4")
    assert ("Last_Name", "mandatory_missing") in problems(conn, "quarantine", "office-1:patient:5")
    assert problems(conn, "quarantine", "office-1:recallpending:5-1") == {("patid", "parent_quarantined")}
    assert problems(conn, "quarantine", "office-1:appt:102") == {("patid", "orphan_patient_not_in_source")}
    chart = contacts["office-1:patient:10"]["record"]
    assert chart["Chart_Number"] == "X" * 21
    assert ("Chart_Number", "too_long") in problems(conn, "flags", "office-1:patient:10")
    assert (chart["Lead_Source"], chart["Referral_Unmapped"]) == ("Other", True)
    assert ("Lead_Source", "unmapped_value_defaulted") in problems(conn, "flags", "office-1:patient:10")
    assert problems(conn, "quarantine", "office-1:custvalue:1-2") == {("HIPAA_Form_Signed", "date_unparseable")}
    assert ("Last_CDT_Code", "cdt_code_invalid") in problems(conn, "flags", "office-1:fullproclog:2")
    assert problems(conn, "quarantine", "office-1:document:2") == {("file", "file_missing")}


def test_no_patient_value_leaves_in_quarantine_flags_or_summary(shaped) -> None:
    conn, summary = shaped
    text = json.dumps([rows(conn, "quarantine"), rows(conn, "flags"), rows(conn, "skipped"),
                       summary.to_dict(), summary.markdown()], default=str)
    for value in DIRTY_VALUES:
        assert value not in text
    assert "Last" not in json.dumps(summary.to_dict())


def test_routing_and_skip_rules(shaped) -> None:
    conn, _ = shaped
    leads = by_source(conn, "leads")
    assert leads["office-1:patient:6"]["record"]["Lead_Status"] == "Inactive patient"
    assert leads["office-1:patient:8"]["record"]["Lead_Status"] == "No treatment in window"
    assert leads["office-1:patient:6"]["record"]["Street"] == "1450 N 300 E"   # Mailing_Street renamed
    assert "Mailing_Street" not in leads["office-1:patient:6"]["record"]
    skipped = {r["source_id"]: r["rule"] for r in rows(conn, "skipped")}
    assert skipped["office-1:patient:7"] == "archived_no_activity"
    assert skipped["office-1:patient:9"] == "unreferenced_non_patient"
    assert skipped["office-1:appt:103"] == "parent_skipped"
    assert skipped["office-1:rxrec:2"] == "template_prescription"
    assert skipped["office-1:clinicalnote:3"] == "empty_clinical_note"
    assert skipped["office-1:fullproclog:3"] == "ledger_transaction"
    assert skipped["office-1:appthist:1"] == "appointment_history_row"
    assert skipped["office-1:custvalue:1-3"] == "practice_field_not_in_spec"


def test_contacts_links_tiers_and_ledger_fields(shaped) -> None:
    conn, _ = shaped
    contacts = by_source(conn, "contacts")
    guarantor, minor = contacts["office-1:patient:1"], contacts["office-1:patient:2"]
    assert (guarantor["tier"], minor["tier"]) == (0, 1)
    assert minor["links"]["Related_Party"] == {"module": "Contacts", "source_id": "office-1:patient:1"}
    assert "Related_Party" not in guarantor["links"]
    assert guarantor["links"]["Owner"] == {"provider_id": "DDS1"}
    record = guarantor["record"]
    assert (record["Balance_Due"], record["Last_Payment_Date"]) == (130.0, "2026-06-05")
    assert (record["Last_CDT_Code"], record["Last_Procedure_Tooth"], record["Last_Procedure_Surface"],
            record["Last_Procedure_Fee"]) == ("D1110", "3", "MO", 105.0)
    assert record["Preferred_Language"] == "Spanish"
    assert record["Home_Phone"] == "+18015550100" and record["Mailing_City"] == "Orem"
    assert minor["record"]["HIPAA_Form_Signed"] == "2021-03-15"


def test_insurance_subform_rows(practice, tmp_path, office_id, as_of) -> None:
    def add_insurance(conn):
        conn.execute("UPDATE dentrix.patient SET priminsuredid = 7, primbenefits = 250 WHERE patid = 1")
        conn.execute("INSERT INTO dentrix.inscarrier (insid, insconame, groupnum, payerid, maxcovperson, "
                     "stddedperperson, prevcovpct, _office_id) VALUES (3, 'Delta Dental of Utah', 'G-1', "
                     "'94276', 1500, 50, 100, 'office-1')")
        conn.execute("INSERT INTO dentrix.insured (insuredid, insplanid, inspartyid, idnum, _office_id) "
                     "VALUES (7, 3, 1, 'M123', 'office-1')")

    conn = practice(add_insurance)
    shape_all(conn, load_spec(), office_id=office_id, as_of=as_of, image_root=tmp_path / "images")
    record = by_source(conn, "contacts")["office-1:patient:1"]["record"]
    assert record["Insurance_Carrier"] == "Delta Dental of Utah" and record["Policy_Number"] == "M123"
    assert record["Insurance_Plans"] == [{
        "Plan_Type": "Primary", "Carrier": "Delta Dental of Utah", "Subscriber_ID": "M123", "Group_Number": "G-1",
        "Payer_ID": "94276", "Annual_Maximum": 1500.0, "Deductible": 50.0, "Preventive_Coverage": 100,
        "Benefits_Used": 250.0, "Remaining_Benefits": 1250.0}]


def test_activities_and_notes(shaped) -> None:
    conn, _ = shaped
    events = by_source(conn, "events")
    event = events["office-1:appt:100"]
    assert (event["record"]["Start_DateTime"], event["record"]["End_DateTime"]) == (
        "2026-11-20T09:30:00-06:00", "2026-11-20T10:30:00-06:00")
    assert event["record"]["Appointment_Status"] == "Confirmed"
    assert event["links"]["Who_Id"] == {"module": "Contacts", "source_id": "office-1:patient:1"}
    new_patient = events["office-1:appt:101"]
    assert new_patient["record"]["New_Patient"] is True and "Who_Id" not in new_patient["links"]
    assert new_patient["links"]["What_Id"] == {"module": "Leads", "source_id": "office-1:appt_new_patient:101"}
    lead = by_source(conn, "leads")["office-1:appt_new_patient:101"]["record"]
    assert (lead["Last_Name"], lead["First_Name"], lead["Phone"], lead["City"], lead["Lead_Status"]) == (
        "Doe", "Jane", "+18015550177", "Lehi", "New patient appointment")
    matched = events["office-1:appt:105"]
    assert matched["links"]["Who_Id"] == {"module": "Contacts", "source_id": "office-1:patient:1"}
    assert "office-1:appt_new_patient:105" not in by_source(conn, "leads")
    assert events["office-1:appt:104"]["links"]["What_Id"] == {"module": "Leads", "source_id": "office-1:patient:6"}
    task = by_source(conn, "tasks")["office-1:recallpending:1-1"]
    assert task["record"]["Subject"] == "Recall: Prophy - 6 Month Cleaning Due"
    assert task["record"]["Due_Date"] == "2027-01-01"
    call = by_source(conn, "calls")["office-1:contact:1"]
    assert call["record"]["Call_Start_Time"] == "2026-05-01T14:30:00-05:00"  # Chicago, daylight time
    assert call["record"]["Journal_Type"] == "Phone call"
    notes = by_source(conn, "notes")
    assert notes["office-1:clinicalnote:1"]["record"]["Note_Title"] == "Clinical note 2026-06-01 10:00 (DDS1)"
    parts = [notes[f"office-1:clinicalnote:2-p{i}"]["record"] for i in (1, 2)]
    assert "".join(p["Note_Content"] for p in parts) == ("word " * 8000).strip()
    assert parts[1]["Note_Title"].endswith("(part 2 of 2)")
    assert notes["office-1:rxrec:1"]["record"]["Note_Title"] == "Prescription: Amoxicillin"
    history = notes["office-1:procedure_history:1"]["record"]["Note_Content"]
    assert "D1110" in history and "Payment" not in history


def test_attachments_manifest_and_ledger_pdf(practice, tmp_path, office_id, as_of) -> None:
    conn = practice()
    spec = load_spec()
    spec.attachments.max_bytes = 1024
    summary = shape_all(conn, spec, office_id=office_id, as_of=as_of, image_root=tmp_path / "images",
                        ledger_pdf_dir=tmp_path / "pdf")
    manifest = by_source(conn, "attachments")
    assert {k: v["file_status"] for k, v in manifest.items()} == {
        "office-1:aging:1": "over_limit" if manifest["office-1:aging:1"]["size_bytes"] > 1024 else "ok",
        "office-1:document:1": "ok", "office-1:document:2": "missing", "office-1:eattach:1": "over_limit"}
    assert manifest["office-1:eattach:1"]["size_bytes"] == 2048
    assert manifest["office-1:document:1"]["parent"] == {"module": "Contacts", "source_id": "office-1:patient:1"}
    pdf = Path(manifest["office-1:aging:1"]["file_path"])
    assert pdf.read_bytes().startswith(b"%PDF")
    assert summary.balanced
    assert summary.modules["Attachments"].valid == sum(v["file_status"] == "ok" for v in manifest.values())


def test_rerun_replaces_only_this_offices_rows(practice, tmp_path, office_id, as_of) -> None:
    conn = practice()
    spec = load_spec()
    kwargs = dict(office_id=office_id, as_of=as_of, image_root=tmp_path / "images")
    shape_all(conn, spec, **kwargs)
    conn.execute("INSERT INTO zoho_shaped.contacts (source_id, office_id) VALUES ('office-2:patient:1', 'office-2')")
    before = rows(conn, "contacts", "office_id = 'office-1'")
    shape_all(conn, spec, **kwargs)
    assert rows(conn, "contacts", "office_id = 'office-1'") == before
    assert len(rows(conn, "contacts", "office_id = 'office-2'")) == 1
    spec.value_maps["gender"].values["2"] = "Male"   # a mapping change re-sends the rows it touches
    shape_all(conn, spec, **kwargs)
    after = {r["source_id"]: r["row_hash"] for r in rows(conn, "contacts", "office_id = 'office-1'")}
    assert after["office-1:patient:1"] != {r["source_id"]: r["row_hash"] for r in before}["office-1:patient:1"]


def test_sample_brings_responsible_parties_and_children(practice, tmp_path, office_id, as_of) -> None:
    conn = practice()
    summary = shape_all(conn, load_spec(), office_id=office_id, as_of=as_of, image_root=tmp_path / "images",
                        sample_source_ids={"office-1:patient:2"})
    assert summary.balanced
    assert set(by_source(conn, "contacts")) == {"office-1:patient:1", "office-1:patient:2"}
    assert summary.objects["patient"].out_of_sample == 8
    assert set(by_source(conn, "notes")) >= {"office-1:clinicalnote:2-p1", "office-1:clinicalnote:1"}
    assert "office-1:appt:101" not in by_source(conn, "events")   # new-patient appts are not in a sample


def test_a_missing_source_object_is_reported(practice, tmp_path, office_id, as_of) -> None:
    conn = practice(lambda c: c.execute("DROP TABLE dentrix.rxrec"))
    summary = shape_all(conn, load_spec(), office_id=office_id, as_of=as_of, image_root=tmp_path / "images")
    assert summary.missing_objects == ["rxrec"]
    assert summary.balanced


def test_workflow_reference(shaped, tmp_path: Path) -> None:
    conn, _ = shaped
    out = write_workflow_reference(conn, load_spec(), tmp_path / "ref" / "workflow_rebuild.md")
    text = out.read_text(encoding="utf-8")
    assert "Prophy - 6 Month Cleaning" in text and "6 months" in text
    assert "| office-1 | 1 | FIRM | Confirmed |" in text
    assert "| office-1 | 2 | WEIRD | Other |" in text
    assert "Blueprint" in text and "Zoho Flow" in text
    assert "LastA" not in text and "p1@example.com" not in text


def test_shaping_with_the_api_names_zoho_assigned(practice, tmp_path, office_id, as_of) -> None:
    from dentrix_zoho.mapping import apply_api_names

    conn = practice()
    spec = apply_api_names(load_spec(), {"Contacts": {"Gender": "Gender1", "Source System ID": "Source_System_ID"},
                                         "Leads": {"Gender": "Gender2"}})
    summary = shape_all(conn, spec, office_id=office_id, as_of=as_of, image_root=tmp_path / "images")
    assert summary.balanced
    assert by_source(conn, "contacts")["office-1:patient:1"]["record"]["Gender1"] == "Female"
    assert by_source(conn, "leads")["office-1:patient:6"]["record"]["Gender2"] == "Female"
    assert "unknown_field" not in summary.quarantine_reasons


def test_offices_with_overlapping_ids_stay_apart(practice, tmp_path, as_of) -> None:
    def second_office(conn):
        conn.execute("INSERT INTO dentrix.patient (patid, guarid, lastname, firstname, status, gender, "
                     "lastvisitdate, _office_id) VALUES (1, 1, 'Other', 'Office', 1, 1, TIMESTAMP '2026-09-01', "
                     "'office-2')")

    conn = practice(second_office)
    first = shape_all(conn, load_spec(), office_id="office-1", as_of=as_of, image_root=tmp_path / "images")
    second = shape_all(conn, load_spec(), office_id="office-2", as_of=as_of, image_root=tmp_path / "images")
    assert first.objects["patient"].staged == 10 and second.objects["patient"].staged == 1
    contacts = by_source(conn, "contacts")
    assert contacts["office-2:patient:1"]["record"]["Last_Name"] == "Other"
    assert contacts["office-1:patient:1"]["record"]["Last_Name"] == "LastA"
    assert {r["office_id"] for r in rows(conn, "accounting")} == {"office-1", "office-2"}


def test_shaping_reports_progress_in_counts_only(practice, tmp_path, office_id, as_of, monkeypatch) -> None:
    from dentrix_zoho.progress import PROGRESS_PREFIX, reporting_to

    # Every fetched chunk is "10 s later": the lines a long shaping would send, from a small practice.
    monkeypatch.setenv("DENTRIX_ZOHO_PROGRESS_SECONDS", "0.000001")
    conn = practice()
    lines: list[str] = []
    with reporting_to(lines.append):
        shape_all(conn, load_spec(), office_id=office_id, as_of=as_of, image_root=tmp_path / "images")
    assert lines and all(line.startswith(PROGRESS_PREFIX + "shaping: ") for line in lines)
    streams = len(load_spec().streams)
    assert any(f"/{streams} streams" in line and "rows read" in line for line in lines)
    finals = [line for line in lines if f"{streams}/{streams} streams (100%)" in line]
    assert len(finals) == 1, "each stream counts once, though the second pass walks them all"
    patient_names = {str(r[0]) for r in conn.execute("SELECT lastname FROM dentrix.patient").fetchall()}
    assert not any(name in line for line in lines for name in patient_names)
