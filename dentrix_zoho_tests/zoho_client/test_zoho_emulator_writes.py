"""Writes against the emulator over real HTTP: batches, 207s, 429 storms, uncertain inserts."""

from __future__ import annotations


def test_upsert_any_length_batches_concurrently_and_is_idempotent(kit, emulator, schema_ready):
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        schema_ready(client)
        records = kit.contacts(450)
        first = client.upsert("Contacts", records)
        assert [o.index for o in first] == list(range(450))
        assert all(o.ok and o.action == "insert" and o.zoho_id for o in first)
        again = client.upsert("Contacts", records)
        assert all(o.ok and o.action == "update" for o in again)
        assert [o.zoho_id for o in again] == [o.zoho_id for o in first]
    assert kit.ids_written_once(emulator, "Contacts", {r["Source_System_ID"] for r in records})
    writes = sink.where(path_template="/crm/v8/{module}/upsert", outcome="ok")
    assert sorted(e.record_count for e in writes) == sorted([100, 100, 100, 100, 50] * 2)
    assert sum(e.credits for e in writes) == 2 * 45
    for event in writes:
        assert event.method == "POST" and event.module == "Contacts" and event.status == 200
        assert event.time > 0 and event.latency_ms > 0 and event.error_code is None
    assert emulator.usage()["triggers"] == {"none": 10}  # migrations send trigger: []


def test_207_partial_batch_reports_each_failure(kit, emulator, schema_ready):
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        schema_ready(client)
        records = kit.contacts(6)
        del records[1]["Last_Name"]  # mandatory
        records[3]["Email"] = "not-an-email"
        records[4]["Last_Name"] = "x" * 300  # over 80
        out = client.upsert("Contacts", records)
    assert [o.ok for o in out] == [True, False, True, False, False, True]
    assert (out[1].code, out[1].api_name) == ("MANDATORY_NOT_FOUND", "Last_Name")
    assert (out[3].code, out[3].api_name) == ("INVALID_DATA", "Email")
    assert (out[4].code, out[4].api_name) == ("INVALID_DATA", "Last_Name")
    assert "not-an-email" not in repr(out) and "xxxx" not in repr(out)
    assert [e.status for e in sink.where(path_template="/crm/v8/{module}/upsert")] == [207]
    assert sink.where(path_template="/crm/v8/{module}/upsert")[0].outcome == "partial"
    assert len(kit.stored(emulator, "Contacts")) == 3


def test_all_failed_batch_is_parsed_per_record_not_split(kit, emulator, schema_ready):
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        schema_ready(client)
        out = client.insert("Contacts", [{"First_Name": "A"}, {"First_Name": "B"}])
    assert [o.code for o in out] == ["MANDATORY_NOT_FOUND", "MANDATORY_NOT_FOUND"]
    assert [e.status for e in sink.where(path_template="/crm/v8/{module}")] == [400]


def test_429_storm_and_5xx_end_with_every_record_written_once(kit, emulator_factory, schema_ready):
    # Faults from the command line (--faults), so the schema setup runs through the storm too.
    handle = emulator_factory(seed=7, faults="429=0.25,500=0.05,503=0.05,drop=0.08")
    sink = kit.Recorder()
    records = kit.contacts(3_000)
    with kit.client_for(handle, sink) as client:
        schema_ready(client)
        out = client.upsert("Contacts", records)
        again = client.upsert("Contacts", records[:300])  # a rerun through the storm changes nothing
    handle.set_faults(None)
    assert all(o.ok for o in out), [o for o in out if not o.ok][:3]
    assert all(o.ok and o.action == "update" for o in again)
    assert kit.ids_written_once(handle, "Contacts", {r["Source_System_ID"] for r in records})
    usage = handle.usage()
    assert usage["too_many_requests"]["injected"] > 0
    assert sink.where(status=429, outcome="retry") and sink.where(outcome="retry", status=None)
    assert usage["concurrency"]["max_seen"] <= 20 and usage["concurrency"]["heavy_max_seen"] <= 10


def test_insert_never_duplicates_under_faults_with_lookup(kit, emulator_factory, schema_ready):
    handle = emulator_factory(seed=5)
    sink = kit.Recorder()
    with kit.client_for(handle, sink) as client:
        schema_ready(client)
        handle.set_faults("429=0.1,500=0.25,drop=0.2", seed=5)
        records = kit.contacts(1_500, prefix="I")
        out = client.insert("Contacts", records, lookup_field="Source_System_ID")
        handle.set_faults(None)
    assert all(o.ok and o.zoho_id for o in out), [o for o in out if not o.ok][:3]
    assert any(
        o.details.get("resolved_by") == "Source_System_ID" for o in out
    )  # some writes landed before the error
    assert sink.where(outcome="uncertain")
    assert kit.ids_written_once(handle, "Contacts", {r["Source_System_ID"] for r in records})


def test_insert_without_lookup_returns_uncertain_instead_of_retrying(kit, emulator_factory, schema_ready):
    handle = emulator_factory(seed=3)
    sink = kit.Recorder()
    with kit.client_for(handle, sink) as client:
        schema_ready(client)
        handle.set_faults("500=1.0", seed=3)
        out = client.create_notes(
            [
                {
                    "Note_Title": "t",
                    "Note_Content": "c",
                    "Parent_Id": {"module": {"api_name": "Contacts"}, "id": "1"},
                }
            ]
        )
        handle.set_faults(None)
    assert out[0].uncertain and not out[0].ok and out[0].code == "UNCERTAIN_OUTCOME"
    note_calls = sink.where(module="Notes")
    assert [(e.method, e.status, e.outcome) for e in note_calls] == [("POST", 500, "uncertain")]


def test_update_get_delete_and_search(kit, emulator, schema_ready):
    with kit.client_for(emulator) as client:
        schema_ready(client)
        out = client.upsert("Contacts", kit.contacts(3))
        ids = [o.zoho_id for o in out]
        upd = client.update("Contacts", [{"id": ids[0], "First_Name": "Ann"}])
        assert upd[0].ok and upd[0].action == "update"
        assert client.get("Contacts", ids[0])["First_Name"] == "Ann"
        found = client.search("Contacts", "(Source_System_ID:equals:P000002)")
        assert [r["id"] for r in found] == [ids[2]]
        deleted = client.delete("Contacts", ids[:2])
        assert all(o.ok for o in deleted) and [o.zoho_id for o in deleted] == ids[:2]
        assert client.get("Contacts", ids[0]) is None
        assert client.search("Contacts", "(Source_System_ID:equals:P000000)") == []
    assert len(kit.stored(emulator, "Contacts")) == 1


def test_iter_records_pages_then_page_token_beyond_2000(kit, emulator, schema_ready):
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        schema_ready(client)
        client.upsert("Contacts", kit.contacts(2_150))
        rows = list(client.iter_records("Contacts", ["Last_Name", "Source_System_ID"]))
    assert len(rows) == 2_150 and len({r["id"] for r in rows}) == 2_150
    assert len(sink.where(path_template="/crm/v8/{module}", method="GET")) == 11
