"""Picklist updates: ``PATCH /settings/fields/{id}?module=`` appends values (our reading of Zoho's
"Update Custom Field" API) to standard and custom picklists; records may then use them."""

from __future__ import annotations

from typing import Any

from .conftest import Zoho, mint_token


def _field(zoho: Zoho, module: str, api_name: str) -> dict[str, Any]:
    fields = zoho.get("/settings/fields", params={"module": module}).json()["fields"]
    return next(f for f in fields if f["api_name"] == api_name)


def _patch(zoho: Zoho, module: str, field_id: str, values: list[dict[str, Any]], **extra: Any) -> Any:
    body = {"fields": [{"id": field_id, "pick_list_values": values, **extra}]}
    return zoho.patch(f"/settings/fields/{field_id}", params={"module": module}, json=body)


def test_values_are_appended_to_a_standard_picklist_and_records_accept_them(zoho: Zoho) -> None:
    status = _field(zoho, "Leads", "Lead_Status")
    refused = zoho.insert("Leads", {"Last_Name": "Before", "Lead_Status": "Inactive patient"})[0]
    assert refused["code"] == "INVALID_DATA" and refused["details"]["api_name"] == "Lead_Status"
    kept = [{"id": v["id"], "display_value": v["display_value"], "actual_value": v["actual_value"]}
            for v in status["pick_list_values"]]
    response = _patch(zoho, "Leads", status["id"], kept + [
        {"display_value": "Inactive patient", "actual_value": "Inactive patient"},
        {"display_value": "Archived patient"}])
    assert response.status_code == 200
    assert response.json() == {"fields": [{"code": "SUCCESS", "details": {"id": status["id"]},
                                           "message": "field updated", "status": "success"}]}
    after = _field(zoho, "Leads", "Lead_Status")
    assert after["pick_list_values"][:len(kept)] == status["pick_list_values"]  # old values and ids intact
    assert [v["actual_value"] for v in after["pick_list_values"][len(kept):]] == ["Inactive patient",
                                                                                  "Archived patient"]
    zoho.insert_ok("Leads", {"Last_Name": "After", "Lead_Status": "Inactive patient"})
    layout = zoho.get("/settings/layouts", params={"module": "Leads"}).json()["layouts"][0]
    in_layout = next(f for f in layout["sections"][0]["fields"] if f["api_name"] == "Lead_Status")
    assert "Archived patient" in {v["actual_value"] for v in in_layout["pick_list_values"]}
    one = zoho.get(f"/settings/fields/{status['id']}", params={"module": "Leads"}).json()["fields"][0]
    assert one["pick_list_values"] == after["pick_list_values"]


def test_values_left_out_of_the_body_are_kept(zoho: Zoho) -> None:
    source = _field(zoho, "Contacts", "Lead_Source")
    assert _patch(zoho, "Contacts", source["id"], [{"display_value": "Other"}]).status_code == 200
    values = [v["actual_value"] for v in _field(zoho, "Contacts", "Lead_Source")["pick_list_values"]]
    assert values == [v["actual_value"] for v in source["pick_list_values"]] + ["Other"]
    # Leads has its own Lead_Source: untouched
    assert "Other" not in {v["actual_value"] for v in _field(zoho, "Leads", "Lead_Source")["pick_list_values"]}


def test_a_custom_multiselect_picklist_takes_new_values(zoho: Zoho) -> None:
    created = zoho.post("/settings/fields", params={"module": "Contacts"}, json={"fields": [
        {"field_label": "Languages", "data_type": "multiselectpicklist",
         "pick_list_values": [{"display_value": "English"}]}]})
    field_id = created.json()["fields"][0]["details"]["id"]
    assert _patch(zoho, "Contacts", field_id, [{"display_value": "Spanish"}]).status_code == 200
    assert [v["actual_value"] for v in _field(zoho, "Contacts", "Languages")["pick_list_values"]] == [
        "English", "Spanish"]
    zoho.insert_ok("Contacts", {"Last_Name": "Multi", "Languages": ["English", "Spanish"]})


def test_a_repeated_display_value_is_duplicate_data_and_nothing_is_added(zoho: Zoho) -> None:
    source = _field(zoho, "Leads", "Lead_Source")
    for values in ([{"display_value": "chat"}], [{"display_value": "Other"}, {"display_value": "OTHER"}]):
        response = _patch(zoho, "Leads", source["id"], values)
        assert response.status_code == 400
        error = response.json()["fields"][0]
        assert (error["code"], error["status"]) == ("DUPLICATE_DATA", "error")
        assert error["details"]["api_name"] == "pick_list_values"
    assert _field(zoho, "Leads", "Lead_Source")["pick_list_values"] == source["pick_list_values"]


def test_unknown_ids_non_picklists_and_other_properties_are_invalid_data(zoho: Zoho) -> None:
    unknown = _patch(zoho, "Leads", "6421000999999999999", [{"display_value": "X"}])
    assert unknown.status_code == 400
    error = unknown.json()["fields"][0]
    assert error["code"] == "INVALID_DATA"
    assert (error["details"]["api_name"], error["details"]["id"]) == ("id", "6421000999999999999")
    last_name = _field(zoho, "Leads", "Last_Name")
    not_picklist = _patch(zoho, "Leads", last_name["id"], [{"display_value": "X"}]).json()["fields"][0]
    assert (not_picklist["code"], not_picklist["details"]["api_name"]) == ("INVALID_DATA", "Last_Name")
    status = _field(zoho, "Leads", "Lead_Status")
    relabel = _patch(zoho, "Leads", status["id"], [{"display_value": "X"}], field_label="State").json()
    assert relabel["fields"][0]["code"] == "INVALID_DATA"
    bad_value_id = _patch(zoho, "Leads", status["id"], [{"id": "1", "display_value": "Y"}]).json()
    assert bad_value_id["fields"][0]["code"] == "INVALID_DATA"
    no_body = zoho.patch(f"/settings/fields/{status['id']}", params={"module": "Leads"}, json={})
    assert no_body.status_code == 400 and no_body.json()["code"] == "REQUIRED_PARAM_MISSING"
    no_module = zoho.patch(f"/settings/fields/{status['id']}", json={"fields": [{"pick_list_values": []}]})
    assert no_module.json()["details"] == {"param": "module"}
    assert _field(zoho, "Leads", "Lead_Status")["pick_list_values"] == status["pick_list_values"]


def test_an_update_costs_one_credit_and_needs_the_fields_scope(zoho: Zoho) -> None:
    status = _field(zoho, "Leads", "Lead_Status")
    used = zoho.handle.usage()["credits"]["used_24h"]
    assert _patch(zoho, "Leads", status["id"], [{"display_value": "New"}]).status_code == 200
    assert zoho.handle.usage()["credits"]["used_24h"] == used + 1
    code = zoho.handle.grant_code("ZohoCRM.settings.fields.READ")
    reader = Zoho(zoho.handle, mint_token(zoho.handle, grant_type="authorization_code", code=code)["access_token"])
    refused = _patch(reader, "Leads", status["id"], [{"display_value": "Newer"}])
    assert refused.status_code == 401 and refused.json()["code"] == "OAUTH_SCOPE_MISMATCH"


def test_added_values_survive_a_restart_and_go_with_a_reset(own_emulator) -> None:  # type: ignore[no-untyped-def]
    handle = own_emulator()
    zoho = Zoho(handle)
    source = _field(zoho, "Leads", "Lead_Source")
    assert _patch(zoho, "Leads", source["id"], [{"display_value": "Other"}]).status_code == 200
    handle.restart(kill=True)
    zoho.insert_ok("Leads", {"Last_Name": "Kept", "Lead_Source": "Other"})
    handle.restart()
    assert "Other" in {v["actual_value"] for v in _field(zoho, "Leads", "Lead_Source")["pick_list_values"]}
    handle.reset()
    assert _field(zoho, "Leads", "Lead_Source")["pick_list_values"] == source["pick_list_values"]
