"""Attachments: multipart upload, list, download, delete, and the per-file size limit."""

from __future__ import annotations

from .conftest import Zoho


def test_upload_list_download_delete(zoho: Zoho) -> None:
    (contact,) = zoho.insert_ok("Contacts", {"Last_Name": "Boyle"})
    payload = b"%PDF-1.4 ledger" * 100
    response = zoho.post(f"/Contacts/{contact}/Attachments", files={"file": ("ledger.pdf", payload)})
    assert response.status_code == 200
    (result,) = response.json()["data"]
    assert result["code"] == "SUCCESS" and result["message"] == "attachment uploaded successfully"
    attachment = result["details"]["id"]
    listed = zoho.get(f"/Contacts/{contact}/Attachments", params={"fields": "File_Name,Size"}).json()["data"]
    assert listed == [{"File_Name": "ledger.pdf", "Size": str(len(payload)), "id": attachment}]
    download = zoho.get(f"/Contacts/{contact}/Attachments/{attachment}")
    assert download.status_code == 200 and download.content == payload
    snapshot = zoho.handle.snapshot()["modules"]["Attachments"]
    assert snapshot[0]["Parent_Id"]["id"] == contact and len(snapshot[0]["$sha256"]) == 64
    deleted = zoho.delete(f"/Contacts/{contact}/Attachments/{attachment}")
    assert deleted.json()["data"][0]["code"] == "SUCCESS"
    assert zoho.get(f"/Contacts/{contact}/Attachments").status_code == 204


def test_upload_to_a_missing_parent_or_without_a_file(zoho: Zoho) -> None:
    missing = zoho.post("/Contacts/6421000000999999999/Attachments", files={"file": ("a.txt", b"x")})
    assert missing.status_code == 400 and missing.json()["code"] == "INVALID_DATA"
    (contact,) = zoho.insert_ok("Contacts", {"Last_Name": "Boyle"})
    no_file = zoho.post(f"/Contacts/{contact}/Attachments", data={"other": "x"})
    assert no_file.status_code == 400 and no_file.json()["code"] == "REQUIRED_PARAM_MISSING"


def test_files_over_the_limit_are_refused(own_emulator) -> None:  # type: ignore[no-untyped-def]
    zoho = Zoho(own_emulator(max_attachment_mb=1))
    (contact,) = zoho.insert_ok("Contacts", {"Last_Name": "Boyle"})
    just_under = zoho.post(f"/Contacts/{contact}/Attachments", files={"file": ("a.bin", b"x" * (1024 * 1024))})
    assert just_under.status_code == 200
    over = zoho.post(f"/Contacts/{contact}/Attachments", files={"file": ("b.bin", b"x" * (1024 * 1024 + 1))})
    assert over.status_code == 400
    assert over.json()["code"] == "FILE_SIZE_MORE_THAN_ALLOWED_SIZE"
    assert over.json()["details"]["allowed_size_in_mb"] == 1
    assert len(zoho.handle.snapshot()["modules"]["Attachments"]) == 1
