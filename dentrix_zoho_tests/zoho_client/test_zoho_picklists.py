"""``ZohoClient.add_picklist_values``: the plan, and the PATCH against the emulator."""

from __future__ import annotations

import logging

import pytest

from dentrix_zoho.zoho import ZohoError
from dentrix_zoho.zoho.metadata import plan_picklist_additions

PATCH_TEMPLATE = "/crm/v8/settings/fields/{field_id}"


def _values(client, module: str, api_name: str, refresh: bool = False) -> list[str]:
    field = next(f for f in client.fields(module, refresh=refresh) if f["api_name"] == api_name)
    return [v["actual_value"] for v in field["pick_list_values"]]


def test_the_plan_keeps_order_drops_repeats_and_sets_case_clashes_aside():
    field = {
        "api_name": "Lead_Source", "data_type": "picklist", "id": "9",
        "pick_list_values": [{"id": "1", "display_value": "Chat", "actual_value": "Chat"}],
    }
    plan = plan_picklist_additions("Leads", field, ["Other", "Chat", "chat", "Web", "Other", "WEB"])
    assert plan.to_add == ["Other", "Web"] and plan.case_clashes == ["chat", "WEB"]
    body = plan.body(field)["fields"][0]
    assert body["id"] == "9"
    assert body["pick_list_values"] == [
        {"id": "1", "display_value": "Chat", "actual_value": "Chat"},
        {"display_value": "Other", "actual_value": "Other"},
        {"display_value": "Web", "actual_value": "Web"},
    ]
    with pytest.raises(ValueError, match="not a picklist"):
        plan_picklist_additions("Leads", {"api_name": "Last_Name", "data_type": "text"}, ["x"])


def test_values_are_added_once_and_records_can_use_them(kit, emulator):
    sink = kit.Recorder()
    wanted = ["Inactive patient", "Archived patient", "Contacted"]  # the last one is standard already
    with kit.client_for(emulator, sink) as client:
        before = _values(client, "Leads", "Lead_Status")
        assert client.add_picklist_values("Leads", "Lead_Status", wanted) == ["Inactive patient", "Archived patient"]
        patches = sink.where(path_template=PATCH_TEMPLATE, method="PATCH")
        assert len(patches) == 1 and patches[0].status == 200 and patches[0].module == "Leads"
        calls = len(sink.events)
        # The cache was refreshed: no call needed to see the new values.
        assert _values(client, "Leads", "Lead_Status") == before + ["Inactive patient", "Archived patient"]
        assert len(sink.events) == calls
        assert client.add_picklist_values("Leads", "Lead_Status", wanted) == []
        assert len(sink.where(path_template=PATCH_TEMPLATE, method="PATCH")) == 1
        (lead,) = client.insert("Leads", [{"Last_Name": "Routed", "Lead_Status": "Archived patient"}])
        assert lead.ok
        # Another module's field of the same name is a different field.
        assert "Other" not in _values(client, "Contacts", "Lead_Source", refresh=True)
        assert client.add_picklist_values("Contacts", "Lead_Source", ["Other"]) == ["Other"]
    assert _values(kit.client_for(emulator), "Contacts", "Lead_Source").count("Other") == 1


def test_a_value_differing_only_in_case_is_left_out_with_a_warning(kit, emulator, caplog):
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client, caplog.at_level(logging.WARNING, "dentrix_zoho.zoho.client"):
        assert client.add_picklist_values("Leads", "Lead_Source", ["chat"]) == []
    assert not sink.where(path_template=PATCH_TEMPLATE, method="PATCH")
    assert "letter case" in caplog.text and "chat" not in caplog.text


def test_unknown_fields_and_non_picklists_raise(kit, emulator):
    with kit.client_for(emulator) as client:
        with pytest.raises(ZohoError) as unknown:
            client.add_picklist_values("Leads", "No_Such_Field", ["x"])
        assert unknown.value.code == "FIELD_NOT_FOUND"
        with pytest.raises(ZohoError) as text:
            client.add_picklist_values("Leads", "Last_Name", ["x"])
        assert text.value.code == "NOT_A_PICKLIST"


def test_server_errors_during_updates_never_add_a_value_twice(kit, emulator):
    sink = kit.Recorder()
    with kit.client_for(emulator, sink) as client:
        client.fields("Leads")
        emulator.set_faults("500=0.5", seed=21)
        added = [client.add_picklist_values("Leads", "Lead_Status", [f"Route {i}"]) for i in range(6)]
        emulator.set_faults(None)
        values = _values(client, "Leads", "Lead_Status", refresh=True)
    assert added == [[f"Route {i}"] for i in range(6)]
    assert [v for v in values if v.startswith("Route")] == [f"Route {i}" for i in range(6)]
    assert any(e.status == 500 for e in sink.where(path_template=PATCH_TEMPLATE, method="PATCH"))
    assert emulator.usage()["faults_injected"].get("500:after", 0) >= 1  # some PATCH landed before its 500
