"""Bulk Write jobs that fail or never finish (the emulator's ZOHO_EMULATOR_BULK_JOBS knob)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import Zoho
from .test_emulator_bulk import _job, _upload, _zip_csv


def _poll(zoho: Zoho, job_id: str, until: tuple[str, ...], tries: int = 100) -> dict[str, Any]:
    job: dict[str, Any] = {}
    for _ in range(tries):
        job = zoho.http.get(f"{zoho.handle.base_url}/crm/bulk/v8/write/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.02)
    return job


@pytest.mark.parametrize("knob,final", [("fail:1", "FAILED"), ("stall:1", "IN PROGRESS")])
def test_a_job_that_fails_or_stalls_after_writing_some_rows(knob: str, final: str, own_emulator: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOHO_EMULATOR_BULK_JOBS", knob)
    zoho = Zoho(own_emulator())
    rows = [["Last_Name", "Email"], ["One", "one@example.com"], ["Two", "two@example.com"]]
    file_id = _upload(zoho, _zip_csv(rows)).json()["details"]["file_id"]
    created = _job(zoho, {"operation": "upsert", "ignore_empty": True, "resource": [{
        "type": "data", "module": {"api_name": "Contacts"}, "file_id": file_id, "find_by": "Email"}]})
    assert created.status_code == 201
    job_id = created.json()["details"]["id"]
    job = _poll(zoho, job_id, ("FAILED", "COMPLETED"), tries=25 if final == "IN PROGRESS" else 100)
    assert job["status"] == final and job["result"] is None
    assert job["resource"][0]["file"]["added_count"] == 1  # the row written before it stopped stays written
    names = [r["Last_Name"] for r in zoho.get("/Contacts", params={"fields": "Last_Name"}).json()["data"]]
    assert names == ["One"]
    # no result file to download for a job that did not complete
    url = f"{zoho.handle.base_url}/v8/crm/x/bulk-write/{job_id}/{job_id}.zip"
    assert zoho.http.get(url).status_code == 404
    zoho.http.close()
