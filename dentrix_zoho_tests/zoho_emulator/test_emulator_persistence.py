"""State survives restarts (graceful or SIGKILL); the snapshot and reset admin endpoints."""

from __future__ import annotations

import orjson

from .conftest import Zoho


def test_records_fields_and_tokens_survive_restart_and_sigkill(own_emulator) -> None:  # type: ignore[no-untyped-def]
    handle = own_emulator()
    zoho = Zoho(handle)
    zoho.post("/settings/fields", params={"module": "Contacts"},
              json={"fields": [{"field_label": "Chart Number", "data_type": "text", "unique": {}}]})
    ids = zoho.insert_ok("Contacts", *({"Last_Name": f"P{i}", "Chart_Number": f"C{i}"} for i in range(50)))
    zoho.delete("/Contacts", params={"ids": ids[0]})
    before = handle.snapshot()
    handle.restart()
    assert handle.snapshot() == before
    assert zoho.get(f"/Contacts/{ids[1]}").status_code == 200  # the access token survived too
    zoho.insert_ok("Contacts", {"Last_Name": "After", "Chart_Number": "C99"})
    after_write = handle.snapshot()
    handle.restart(kill=True)
    assert handle.snapshot() == after_write
    clash = zoho.insert("Contacts", {"Last_Name": "Dup", "Chart_Number": "C5"})[0]
    assert clash["code"] == "DUPLICATE_DATA"  # the unique index was rebuilt
    new_id = zoho.insert_ok("Contacts", {"Last_Name": "Fresh"})[0]
    assert new_id not in {r["id"] for r in after_write["modules"]["Contacts"]}


def test_a_torn_journal_tail_is_discarded(own_emulator) -> None:  # type: ignore[no-untyped-def]
    handle = own_emulator()
    zoho = Zoho(handle)
    zoho.insert_ok("Leads", {"Last_Name": "Kept"})
    handle.stop(kill=True)
    journal = handle.data_dir / "journal.log"
    entry = {"s": 10**6, "ops": [["put", "Leads", {"id": "6421000000999999999", "Last_Name": "Torn"}]]}
    with open(journal, "ab") as out:
        out.write(orjson.dumps(entry)[:-7])  # a write cut short: no closing bytes, no newline
    handle.start()
    names = [r["Last_Name"] for r in handle.snapshot()["modules"]["Leads"]]
    assert names == ["Kept"]


def test_snapshot_is_canonical_and_reset_clears_records(zoho: Zoho) -> None:
    zoho.insert_ok("Leads", {"Last_Name": "B"}, {"Last_Name": "A"})
    zoho.insert_ok("Contacts", {"Last_Name": "C"})
    snapshot = zoho.handle.snapshot()
    assert list(snapshot["modules"]) == ["Contacts", "Leads"]
    leads = snapshot["modules"]["Leads"]
    assert [r["id"] for r in leads] == sorted(r["id"] for r in leads)
    assert list(leads[0]) == sorted(leads[0])
    zoho.handle.reset()
    assert zoho.handle.snapshot()["modules"] == {}
    assert zoho.get("/org").status_code == 200  # tokens and users survive a reset


def test_a_bulk_job_cut_off_by_a_stop_is_failed_at_the_next_start(own_emulator) -> None:  # type: ignore[no-untyped-def]
    handle = own_emulator()
    handle.stop(kill=True)
    job = {"id": "6421000000888888888", "operation": "insert", "status": "IN PROGRESS", "user_id": "x",
           "file_id": "y", "ignore_empty": False, "created_by": {"id": "x", "name": "n"},
           "resource": [{"status": "IN PROGRESS", "type": "data", "module": {"api_name": "Leads"},
                         "file": {"status": "IN PROGRESS", "added_count": 3, "skipped_count": 0,
                                  "updated_count": 0, "total_count": 9}}]}
    with open(handle.data_dir / "journal.log", "ab") as out:
        out.write(orjson.dumps({"s": 0, "ops": [["bjob", job["id"], job]]}) + b"\n")
    handle.start()
    zoho = Zoho(handle)
    polled = zoho.http.get(f"{handle.base_url}/crm/bulk/v8/write/{job['id']}").json()
    assert polled["status"] == "FAILED" and polled["resource"][0]["file"]["added_count"] == 3
    assert "user_id" not in polled and "file_id" not in polled
