"""Bulk Write end to end: upload a zipped CSV, create a job, poll it, download the result."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from typing import Any

import httpx

from .conftest import Zoho


def _zip_csv(rows: list[list[str]], name: str = "Contacts.csv") -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text.getvalue())
    return buffer.getvalue()


def _upload(zoho: Zoho, content: bytes, **headers: str) -> httpx.Response:
    zgid = zoho.get("/org").json()["org"][0]["zgid"]
    sent = {"feature": "bulk-write", "X-CRM-ORG": zgid, **headers}
    return zoho.post("/upload", files={"file": ("data.zip", content)}, headers=sent)


def _job(zoho: Zoho, body: dict[str, Any]) -> httpx.Response:
    return zoho.http.post(f"{zoho.handle.base_url}/crm/bulk/v8/write", json=body)


def _wait(zoho: Zoho, job_id: str) -> tuple[dict[str, Any], list[str]]:
    statuses = []
    for _ in range(200):
        job = zoho.http.get(f"{zoho.handle.base_url}/crm/bulk/v8/write/{job_id}").json()
        statuses.append(job["status"])
        if job["status"] in ("COMPLETED", "FAILED"):
            return job, statuses
        time.sleep(0.02)
    raise AssertionError(f"job did not finish: {statuses[-3:]}")


def test_upsert_job_end_to_end(zoho: Zoho) -> None:
    (existing,) = zoho.insert_ok("Contacts", {"Last_Name": "Old", "Email": "old@example.com"})
    rows = [["Last_Name", "Email", "Date_of_Birth"],
            ["Boyle", "p@example.com", "03/04/1990"],
            ["Renamed", "old@example.com", ""],
            ["", "nolast@example.com", ""],
            ["Bad Date", "d@example.com", "1990-31-31"]]
    upload = _upload(zoho, _zip_csv(rows))
    assert upload.status_code == 200
    assert upload.json()["code"] == "FILE_UPLOAD_SUCCESS" and upload.json()["status"] == "success"
    file_id = upload.json()["details"]["file_id"]
    created = _job(zoho, {"operation": "upsert", "ignore_empty": True, "resource": [{
        "type": "data", "module": {"api_name": "Contacts"}, "file_id": file_id, "find_by": "Email",
        "field_mappings": [{"api_name": "Last_Name", "index": 0}, {"api_name": "Email", "index": 1},
                           {"api_name": "Date_of_Birth", "index": 2}]}]})
    assert created.status_code == 201
    assert created.json()["code"] == "SUCCESS" and created.json()["details"]["id"].isdigit()
    job, statuses = _wait(zoho, created.json()["details"]["id"])
    assert statuses[-1] == "COMPLETED" and set(statuses) <= {"ADDED", "IN PROGRESS", "COMPLETED"}
    counts = job["resource"][0]["file"]
    assert (counts["added_count"], counts["updated_count"], counts["skipped_count"], counts["total_count"]) == (
        1, 1, 2, 4)
    download = zoho.http.get(f"{zoho.handle.base_url}{job['result']['download_url']}")
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        (name,) = archive.namelist()
        result = list(csv.reader(io.StringIO(archive.read(name).decode())))
    assert result[0] == ["Last_Name", "Email", "Date_of_Birth", "ID", "STATUS", "ERRORS"]
    assert [r[4] for r in result[1:]] == ["added", "updated", "skipped", "skipped"]
    assert result[2][3] == existing
    assert result[3][5] == "MANDATORY_NOT_FOUND-Last_Name" and result[4][5] == "INVALID_DATA-Date_of_Birth"
    stored = zoho.get(f"/Contacts/{existing}").json()["data"][0]
    assert stored["Last_Name"] == "Renamed"
    assert zoho.handle.usage()["credits"]["used_24h"] >= 500


def test_upload_refusals(zoho: Zoho) -> None:
    not_zip = _upload(zoho, b"Last_Name\nBoyle\n")
    assert not_zip.status_code == 400 and not_zip.json()["code"] == "INVALID_FILE_FORMAT"
    no_headers = zoho.post("/upload", files={"file": ("data.zip", _zip_csv([["Last_Name"]]))})
    assert no_headers.status_code == 400
    assert no_headers.json()["x-error"] == "check if headers [feature, X-CRM-ORG] are present and valid"
    wrong_org = _upload(zoho, _zip_csv([["Last_Name"]]), **{"X-CRM-ORG": "1"})
    assert wrong_org.status_code == 400


def test_job_refusals(zoho: Zoho) -> None:
    file_id = _upload(zoho, _zip_csv([["Subject"], ["Call"]])).json()["details"]["file_id"]

    def job(**resource: Any) -> httpx.Response:
        base = {"type": "data", "module": {"api_name": "Contacts"}, "file_id": file_id}
        return _job(zoho, {"operation": resource.pop("operation", "insert"), "resource": [{**base, **resource}]})

    for module in ("Notes", "Events", "Calls"):
        refused = job(module={"api_name": module})
        assert refused.status_code == 400 and refused.json()["code"] == "MODULE_NOT_AVAILABLE"
    assert job(file_id="1").json()["code"] == "INVALID_FILE_ID"
    assert job(operation="upsert").json()["code"] == "MANDATORY_NOT_FOUND"
    assert job(field_mappings=[{"api_name": "Last_Name", "index": 5}]).json()["code"] == "COLUMN_INDEX_NOT_FOUND"
    assert job(field_mappings=[{"api_name": "Nope", "index": 0}]).json()["code"] == "INVALID_FIELD"
    assert job(field_mappings=[{"api_name": "Email", "index": 0}]).json()["code"] == "MANDATORY_FIELDS_NOT_MAPPED"
    missing = zoho.http.get(f"{zoho.handle.base_url}/crm/bulk/v8/write/6421000000999999999")
    assert missing.status_code == 404 and missing.json()["code"] == "RESOURCE_NOT_FOUND"


def test_more_than_25000_rows_is_refused(zoho: Zoho) -> None:
    rows = [["Last_Name"]] + [[f"N{i}"] for i in range(25_001)]
    file_id = _upload(zoho, _zip_csv(rows)).json()["details"]["file_id"]
    refused = _job(zoho, {"operation": "insert", "resource": [
        {"type": "data", "module": {"api_name": "Leads"}, "file_id": file_id}]})
    assert refused.status_code == 400 and refused.json()["code"] == "LIMIT_EXCEEDED"


def test_insert_job_with_header_api_names_and_lookup_by_field(zoho: Zoho) -> None:
    (guarantor,) = zoho.insert_ok("Contacts", {"Last_Name": "Parent", "Email": "parent@example.com"})
    owner = zoho.users()[1]
    rows = [["Last_Name", "Email", "Reports_To.Email", "Owner.email", "Lead_Source"],
            ["Kid", "kid@example.com", "parent@example.com", owner["email"], "Web Download"],
            ["Twin", "parent@example.com", "", "", ""]]
    file_id = _upload(zoho, _zip_csv(rows)).json()["details"]["file_id"]
    created = _job(zoho, {"operation": "insert", "ignore_empty": True, "resource": [
        {"type": "data", "module": {"api_name": "Contacts"}, "file_id": file_id, "find_by": "Email"}]})
    assert created.status_code == 201, created.json()
    job, _ = _wait(zoho, created.json()["details"]["id"])
    assert job["resource"][0]["file"]["added_count"] == 1 and job["resource"][0]["file"]["skipped_count"] == 1
    kid = zoho.post("/coql", json={"select_query": "select Reports_To, Owner from Contacts "
                                                   "where Last_Name = 'Kid'"}).json()["data"][0]
    assert kid["Reports_To"] == {"id": guarantor} and kid["Owner"] == {"id": owner["id"]}


def test_oversized_files_and_wide_csvs_are_refused(zoho: Zoho) -> None:
    too_big = _upload(zoho, b"PK" + b"\0" * (25 * 1024 * 1024 + 100 * 1024))
    assert too_big.status_code == 413 and too_big.json()["code"] == "FILE_TOO_LARGE"
    wide = _upload(zoho, _zip_csv([[f"C{i}" for i in range(201)], ["x"] * 201])).json()["details"]["file_id"]
    refused = _job(zoho, {"operation": "insert", "resource": [
        {"type": "data", "module": {"api_name": "Leads"}, "file_id": wide}]})
    assert refused.status_code == 400 and refused.json()["code"] == "HEADER_LIMIT_EXCEEDED"
