"""Metadata, users, Bulk Write, attachments and notes against the emulator over real HTTP."""

from __future__ import annotations

import logging

import pytest

from dentrix_zoho.zoho import SchemaLimitExceeded

INSURANCE_SUBFORM = {
    "field_label": "Insurance Plans",
    "data_type": "subform",
    "subform": {
        "fields": [
            {"field_label": "Plan Type", "data_type": "text", "length": 50},
            {"field_label": "Coverage Percent", "data_type": "percent"},
            {"field_label": "Annual Maximum", "data_type": "currency"},
        ]
    },
}


def _contact_fields(kit) -> list[dict]:
    return [
        kit.SOURCE_ID_FIELD,
        {"field_label": "Migration Run ID", "data_type": "text", "length": 64},
        {"field_label": "Insurance Carrier", "data_type": "text", "length": 120},
        {"field_label": "Policy Number", "data_type": "text", "length": 60},
        {"field_label": "Group Number", "data_type": "text", "length": 60},
        {"field_label": "Balance Due", "data_type": "currency"},
        {"field_label": "Last Payment Date", "data_type": "date"},
        {
            "field_label": "Preferred Clinic",
            "data_type": "picklist",
            "pick_list_values": [{"display_value": "Downtown", "actual_value": "Downtown"}],
        },
        INSURANCE_SUBFORM,
    ]


def test_ensure_schema_creates_in_fives_reads_back_and_twice_changes_nothing(kit, emulator):
    sink = kit.Recorder()
    wanted = _contact_fields(kit)
    with kit.client_for(emulator, sink) as client:
        first = client.ensure_schema("Contacts", wanted)
        posts = sink.where(path_template="/crm/v8/settings/fields", method="POST")
        assert [e.record_count for e in posts] == [5, 4]
        assert first["Source System ID"] == "Source_System_ID"
        assert first["Balance Due"] == "Balance_Due"
        assert first["Insurance Plans"] == "Insurance_Plans"
        assert set(first) == {f["field_label"] for f in wanted}
        before = emulator.snapshot()
        n_events = len(sink.events)
        second = client.ensure_schema("Contacts", wanted)
        assert second == first
        assert emulator.snapshot() == before
        assert not [e for e in sink.events[n_events:] if e.method == "POST"]
        # The cache now knows the fields without another call.
        calls = len(sink.events)
        assert any(f["api_name"] == "Policy_Number" for f in client.fields("Contacts"))
        assert len(sink.events) == calls


def test_ensure_schema_fails_before_writing_when_the_edition_is_too_small(kit, emulator_factory):
    handle = emulator_factory(edition="standard")
    sink = kit.Recorder()
    wanted = [{"field_label": f"Practice Field {i}", "data_type": "text", "length": 20} for i in range(11)]
    with kit.client_for(handle, sink, edition="standard") as client:
        with pytest.raises(SchemaLimitExceeded) as info:
            client.ensure_schema("Contacts", wanted)
        assert "Practice Field 10" in str(info.value) and "allows 10" in str(info.value)
        with pytest.raises(SchemaLimitExceeded, match="Insurance Plans"):
            client.ensure_schema("Contacts", [INSURANCE_SUBFORM])
    assert not sink.where(method="POST", path_template="/crm/v8/settings/fields")
    assert handle.snapshot()["custom_fields"] == {}


def test_users_resolve_by_email_case_insensitively(kit, emulator):
    with kit.client_for(emulator) as client:
        users = client.users()
        assert users and all(u["status"] == "active" for u in users)
        one = users[0]["email"]
        found = client.resolve_users_by_email(
            [one.upper(), "  " + one.title() + " ", "nobody@example.invalid"]
        )
        assert list(found) == [one.lower()]
        assert found[one.lower()]["id"] == users[0]["id"]


def test_bulk_write_upsert_outcomes_match_the_record_api(kit, emulator, schema_ready):
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        schema_ready(client)
        records = kit.contacts(1_200, prefix="B")
        records[7]["Last_Name"] = ""  # mandatory, so this row fails
        out = client.bulk_write("Contacts", records, operation="upsert", find_by="Source_System_ID")
        assert [o.index for o in out] == list(range(1_200))
        assert not out[7].ok and out[7].api_name == "Last_Name" and out[7].code
        assert all(o.ok and o.zoho_id and o.action == "insert" for i, o in enumerate(out) if i != 7)
        # A second run updates in place.
        again = client.bulk_write("Contacts", records[:10], operation="upsert")
        assert [o.action for i, o in enumerate(again) if i != 7] == ["update"] * 9
        assert [o.zoho_id for o in again[:3]] == [o.zoho_id for o in out[:3]]
    expected = {r["Source_System_ID"] for i, r in enumerate(records) if i != 7}
    assert kit.ids_written_once(emulator, "Contacts", expected)
    jobs = sink.where(path_template="/crm/bulk/v8/write", method="POST")
    assert [e.credits for e in jobs] == [500, 500]
    assert sink.where(path_template="/crm/v8/upload")


def test_choose_write_path_by_credits_and_time(kit, emulator):
    with kit.client_for(emulator) as client:
        small = client.choose_write_path("Contacts", 800)
        assert small.path == "records" and small.credits == 80
        large = client.choose_write_path("Contacts", 40_000)
        assert large.path == "bulk" and large.records_credits == 4_000 and large.bulk_credits < 4_000
        assert "Bulk Write is cheaper" in large.reason and "4000 credits" in large.reason
        notes = client.choose_write_path("Notes", 40_000)
        assert notes.path == "records" and "does not support" in notes.reason


def test_attachments_upload_list_delete_and_size_limit(kit, emulator, schema_ready, tmp_path):
    small = tmp_path / "xray.png"
    small.write_bytes(b"\x89PNG" + b"0" * 2048)
    big = tmp_path / "scan.tif"
    with big.open("wb") as fh:
        fh.truncate(20 * 1024 * 1024 + 1)
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        schema_ready(client)
        (contact,) = client.upsert("Contacts", kit.contacts(1))
        up = client.upload_attachment("Contacts", contact.zoho_id, small, filename="bitewing.png")
        assert up.ok and up.zoho_id
        listed = client.list_attachments("Contacts", contact.zoho_id)
        assert [a["File_Name"] for a in listed] == ["bitewing.png"]
        too_big = client.upload_attachment("Contacts", contact.zoho_id, big)
        assert not too_big.ok and too_big.code == "FILE_SIZE_MORE_THAN_ALLOWED_SIZE"
        gone = client.delete_attachment("Contacts", contact.zoho_id, up.zoho_id)
        assert gone.ok
        assert client.list_attachments("Contacts", contact.zoho_id) == []
    assert (
        len(
            sink.where(
                module="Contacts", path_template="/crm/v8/{module}/{record_id}/Attachments", method="POST"
            )
        )
        == 1
    )


def test_notes_insert_semantics(kit, emulator, schema_ready):
    with kit.client_for(emulator) as client:
        schema_ready(client)
        (contact,) = client.upsert("Contacts", kit.contacts(1))
        notes = [
            {
                "Note_Title": f"Visit {i}",
                "Note_Content": "Prophylaxis.",
                "Parent_Id": {"module": {"api_name": "Contacts"}, "id": contact.zoho_id},
            }
            for i in range(3)
        ] + [{"Note_Title": "orphan", "Note_Content": "x"}]
        out = client.create_notes(notes)
    assert [o.ok for o in out] == [True, True, True, False]
    assert all(o.action == "insert" and o.zoho_id for o in out[:3])
    assert len(kit.stored(emulator, "Notes")) == 3


def test_search_by_email_leaves_no_email_or_token_in_logs_or_events(kit, emulator, schema_ready, caplog):
    caplog.set_level(logging.DEBUG)
    sink = kit.Recorder()
    email = "jane.patient@example.org"
    with kit.client_for(emulator, sink) as client:
        schema_ready(client)
        client.upsert("Contacts", [{"Last_Name": "Patient", "Email": email, "Source_System_ID": "E1"}])
        found = client.search("Contacts", email=email)
        assert [r["Source_System_ID"] for r in found] == ["E1"]
        token = client.transport.auth.token()
    assert "HTTP Request" in caplog.text  # httpx did log the calls
    text = caplog.text + repr(sink.events)
    for secret in (
        email,
        email.replace("@", "%40"),
        token,
        emulator.client_secret,
        emulator.refresh_token,
        "Patient",
    ):
        assert secret not in text


def test_uncertain_attachment_upload_is_looked_up_before_any_retry(kit, emulator, schema_ready, tmp_path):
    image = tmp_path / "pano.jpg"
    image.write_bytes(b"\xff\xd8" + b"1" * 4096)
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        schema_ready(client)
        (contact,) = client.upsert("Contacts", kit.contacts(1))
        emulator.set_faults("500=0.5", seed=21)
        outcomes = [
            client.upload_attachment("Contacts", contact.zoho_id, image, f"img{i}.jpg") for i in range(8)
        ]
        emulator.set_faults(None)
        names = [a["File_Name"] for a in client.list_attachments("Contacts", contact.zoho_id)]
    uploads = sink.where(path_template="/crm/v8/{module}/{record_id}/Attachments", method="POST")
    assert any(e.outcome == "uncertain" for e in uploads)
    assert any(o.details.get("resolved_by") == "File_Name" for o in outcomes)  # landed despite the 500
    resolved_or_ok = [o for o in outcomes if o.ok]
    assert len(resolved_or_ok) + sum(o.uncertain for o in outcomes) == 8
    assert sorted(names) == sorted(set(names))  # never two copies of one file
    assert {f"img{i}.jpg" for i, o in enumerate(outcomes) if o.ok} <= set(names)
