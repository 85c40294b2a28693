"""Metadata contract: modules, fields, layouts, custom-field creation and its limits.

Zoho's documentation: https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html, https://www.zoho.com/crm/developer/docs/api/v8/modules-api.html
"""

from __future__ import annotations

from typing import Any

from .conftest import Zoho


def _fields(zoho: Zoho, module: str) -> dict[str, dict[str, Any]]:
    return {f["api_name"]: f for f in zoho.get("/settings/fields", params={"module": module}).json()["fields"]}


def test_modules_list_has_the_emulated_modules(zoho: Zoho) -> None:
    modules = {m["api_name"]: m for m in zoho.get("/settings/modules").json()["modules"]}
    assert {"Leads", "Contacts", "Events", "Tasks", "Calls", "Notes", "Attachments"} <= set(modules)
    assert modules["Events"]["plural_label"] == "Meetings"
    assert {"api_name", "module_name", "singular_label", "plural_label", "id", "generated_type", "api_supported",
            "creatable", "editable", "deletable", "viewable", "status", "profiles"} <= set(modules["Contacts"])
    one = zoho.get("/settings/modules/Contacts").json()["modules"]
    assert one[0]["api_name"] == "Contacts"


def test_standard_field_metadata_matches_the_reference(zoho: Zoho) -> None:
    contacts = _fields(zoho, "Contacts")
    assert (contacts["Last_Name"]["length"], contacts["Last_Name"]["system_mandatory"]) == (80, True)
    assert contacts["First_Name"]["length"] == 40
    assert (contacts["Email"]["data_type"], contacts["Email"]["length"]) == ("email", 100)
    assert contacts["Mobile"]["data_type"] == "phone" and contacts["Mobile"]["length"] == 30
    assert contacts["Date_of_Birth"]["data_type"] == "date"
    sources = [v["display_value"] for v in contacts["Lead_Source"]["pick_list_values"]]
    assert sources[:3] == ["-None-", "Advertisement", "Chat"] and "Web Research" in sources
    assert contacts["Reports_To"]["lookup"]["module"]["api_name"] == "Contacts"
    calls = _fields(zoho, "Calls")
    assert [v["actual_value"] for v in calls["Call_Type"]["pick_list_values"]] == ["Inbound", "Outbound", "Missed"]
    assert all(calls[n]["system_mandatory"] for n in ("Subject", "Call_Type", "Call_Start_Time", "Call_Duration"))
    notes = _fields(zoho, "Notes")
    assert notes["Parent_Id"]["json_type"] == "jsonobject" and notes["Note_Content"]["system_mandatory"]
    layout = zoho.get("/settings/layouts", params={"module": "Leads"}).json()["layouts"][0]
    assert layout["api_name"] == "Standard__s"
    assert "Lead_Status" in {f["api_name"] for f in layout["sections"][0]["fields"]}
    missing = zoho.get("/settings/fields")
    assert missing.status_code == 400 and missing.json()["details"] == {"param": "module"}


def test_custom_field_api_names_follow_zoho_rules(zoho: Zoho) -> None:
    response = zoho.post("/settings/fields", params={"module": "Contacts"}, json={"fields": [
        {"field_label": "Product Interest", "data_type": "text"},
        {"field_label": "checking multi picklist", "data_type": "multiselectpicklist",
         "pick_list_values": [{"display_value": "A"}]},
        {"field_label": "Patient ID#", "data_type": "text", "length": 50},
        {"field_label": "Email  Alt__", "data_type": "email"},
    ]})
    assert response.status_code == 201
    results = response.json()["fields"]
    assert all(r == {"code": "SUCCESS", "details": {"id": r["details"]["id"]}, "message": "field created",
                     "status": "success"} for r in results)
    fields = _fields(zoho, "Contacts")
    assert {"Product_Interest", "checking_multi_picklist", "Patient_ID", "Email_Alt"} <= set(fields)
    assert not any("__c" in name or name.endswith("_") or "__" in name.replace("__s", "")
                   for name in fields)
    assert fields["Patient_ID"]["custom_field"] is True and fields["Patient_ID"]["length"] == 50


def test_clashing_api_names_are_numbered(zoho: Zoho) -> None:
    zoho.post("/settings/fields", params={"module": "Leads"},
              json={"fields": [{"field_label": "Phone!", "data_type": "text"},
                               {"field_label": "Phone?", "data_type": "text"}]})
    fields = _fields(zoho, "Leads")
    assert {"Phone1", "Phone2"} <= set(fields)
    duplicate_label = zoho.post("/settings/fields", params={"module": "Leads"},
                                json={"fields": [{"field_label": "phone!", "data_type": "text"}]})
    assert duplicate_label.status_code == 400
    assert duplicate_label.json()["fields"][0]["code"] == "DUPLICATE_DATA"


def test_field_creation_errors(zoho: Zoho) -> None:
    six = zoho.post("/settings/fields", params={"module": "Contacts"},
                    json={"fields": [{"field_label": f"F{i}", "data_type": "text"} for i in range(6)]})
    assert six.status_code == 400 and six.json()["code"] == "LIMIT_EXCEEDED"
    bad_length = zoho.post("/settings/fields", params={"module": "Contacts"},
                           json={"fields": [{"field_label": "Long", "data_type": "text", "length": 256},
                                            {"field_label": "Ok", "data_type": "text"}]})
    assert bad_length.status_code == 207
    assert bad_length.json()["fields"][0]["code"] == "DEPENDENT_MISMATCH"
    bad_type = zoho.post("/settings/fields", params={"module": "Contacts"},
                         json={"fields": [{"field_label": "Blob", "data_type": "blob"}]})
    assert bad_type.json()["fields"][0]["code"] == "INVALID_DATA"
    notes = zoho.post("/settings/fields", params={"module": "Notes"},
                      json={"fields": [{"field_label": "X", "data_type": "text"}]})
    assert notes.status_code == 400 and notes.json()["code"] == "NOT_ALLOWED"
    unique = zoho.post("/settings/fields", params={"module": "Contacts"}, json={"fields": [
        {"field_label": f"U{i}", "data_type": "text", "unique": {"case_sensitive": False}} for i in range(3)]})
    assert [r["code"] for r in unique.json()["fields"]] == ["SUCCESS", "SUCCESS", "LIMIT_EXCEEDED"]


def test_edition_limits_custom_fields_and_subforms(own_emulator) -> None:  # type: ignore[no-untyped-def]
    zoho = Zoho(own_emulator(edition="standard", users=2))
    for batch in range(2):
        response = zoho.post("/settings/fields", params={"module": "Contacts"}, json={"fields": [
            {"field_label": f"Field {batch} {i}", "data_type": "text"} for i in range(5)]})
        assert response.status_code == 201
    over = zoho.post("/settings/fields", params={"module": "Contacts"},
                     json={"fields": [{"field_label": "Eleventh", "data_type": "text"}]})
    assert over.json()["fields"][0]["code"] == "LIMIT_EXCEEDED"
    subform = zoho.post("/settings/fields", params={"module": "Leads"}, json={"fields": [
        {"field_label": "Plans", "data_type": "subform", "subform": {"fields": [
            {"field_label": "Carrier", "data_type": "text"}]}}]})
    assert subform.json()["fields"][0]["code"] == "NOT_ALLOWED"


def test_users_and_org(zoho: Zoho) -> None:
    users = zoho.get("/users", params={"type": "ActiveUsers"}).json()
    assert len(users["users"]) == 3 and users["info"]["count"] == 3
    assert {"id", "email", "full_name", "first_name", "last_name", "status", "role", "profile", "zuid",
            "time_zone"} <= set(users["users"][0])
    assert len({u["email"] for u in users["users"]}) == 3
    assert zoho.get("/users", params={"type": "DeactiveUsers"}).status_code == 204
    org = zoho.get("/org").json()["org"][0]
    assert org["zgid"].isdigit() and org["license_details"]["paid_type"] == "enterprise"
    me = zoho.get("/users", params={"type": "CurrentUser"}).json()["users"][0]
    assert zoho.get(f"/users/{me['id']}").json()["users"][0]["email"] == me["email"]


def test_users_file_seeds_named_users(own_emulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    users_file = tmp_path / "users.yaml"
    users_file.write_text("users:\n  - {first_name: Ada, last_name: Smile, email: ada@clinic.example, "
                          "profile: Administrator}\n  - {first_name: Bo, last_name: Root, email: bo@clinic.example,"
                          " status: disabled}\n")
    zoho = Zoho(own_emulator(users=2, extra_args=["--users-file", str(users_file)]))
    emails = [u["email"] for u in zoho.users()]
    assert emails == ["ada@clinic.example"]
    assert [u["email"] for u in zoho.get("/users", params={"type": "AllUsers"}).json()["users"]] == [
        "ada@clinic.example", "bo@clinic.example"]


def test_users_page_and_filter_by_ids(zoho: Zoho) -> None:
    page = zoho.get("/users", params={"type": "AllUsers", "per_page": 1, "page": 2}).json()
    assert len(page["users"]) == 1 and page["info"] == {"per_page": 1, "count": 1, "page": 2, "more_records": True}
    first = zoho.users()[0]["id"]
    assert [u["id"] for u in zoho.get("/users", params={"ids": first}).json()["users"]] == [first]
    assert zoho.get("/users", params={"type": "Everyone"}).status_code == 400


def test_reserved_words_cannot_be_field_names(zoho: Zoho) -> None:
    response = zoho.post("/settings/fields", params={"module": "Leads"},
                         json={"fields": [{"field_label": "Select", "data_type": "text"}]})
    assert response.json()["fields"][0]["code"] == "RESERVED_KEYWORD_NOT_ALLOWED"
