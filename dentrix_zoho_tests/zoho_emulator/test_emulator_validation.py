"""Validation errors for every field type, from field metadata.

Zoho's documentation: https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html, https://www.zoho.com/crm/developer/docs/api/v8/status-codes.html
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Zoho

CUSTOM_FIELDS = [
    {"field_label": "Visits", "data_type": "integer"},
    {"field_label": "Balance Due", "data_type": "currency"},
    {"field_label": "Insurance Plan", "data_type": "picklist",
     "pick_list_values": [{"display_value": "PPO", "actual_value": "PPO"}, {"display_value": "HMO"}]},
    {"field_label": "Conditions", "data_type": "multiselectpicklist",
     "pick_list_values": [{"display_value": "Diabetes"}, {"display_value": "Asthma"}]},
    {"field_label": "Last Visit", "data_type": "datetime"},
]


@pytest.fixture
def typed(zoho: Zoho) -> Zoho:
    response = zoho.post("/settings/fields", params={"module": "Contacts"}, json={"fields": CUSTOM_FIELDS})
    assert response.status_code == 201, response.json()
    return zoho


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("Last_Name", 42, {"expected_data_type": "text"}),
    ("Last_Name", "x" * 81, {"maximum_length": 80}),
    ("First_Name", "x" * 41, {"maximum_length": 40}),
    ("Mailing_Street", "x" * 251, {"maximum_length": 250}),
    ("Mailing_Zip", "1" * 31, {"maximum_length": 30}),
    ("Email", "not-an-email", {"expected_data_type": "email"}),
    ("Email", "a" * 95 + "@ex.com", {"maximum_length": 100}),
    ("Phone", "call me maybe", {"expected_data_type": "phone"}),
    ("Mobile", "1" * 31, {"maximum_length": 30}),
    ("Date_of_Birth", "03/04/1990", {"expected_data_type": "date"}),
    ("Date_of_Birth", "1990-02-30", {"expected_data_type": "date"}),
    ("Last_Visit", "2024-01-01 10:00:00", {"expected_data_type": "datetime"}),
    ("Last_Visit", "2024-01-01T10:00:00Z", {"expected_data_type": "datetime"}),
    ("Visits", "3", {"expected_data_type": "integer"}),
    ("Visits", 1_234_567_890, {"maximum_length": 9}),
    ("Visits", True, {"expected_data_type": "integer"}),
    ("Balance_Due", "12.50", {"expected_data_type": "currency"}),
    ("Email_Opt_Out", "yes", {"expected_data_type": "boolean"}),
    ("Insurance_Plan", "Dental Plus", {}),
    ("Insurance_Plan", ["PPO"], {"expected_data_type": "picklist"}),
    ("Lead_Source", "Billboard", {}),
    ("Conditions", "Diabetes", {"expected_data_type": "multiselectpicklist"}),
    ("Conditions", ["Diabetes", "Gout"], {}),
    ("Reports_To", "6421000000000000001", {"expected_data_type": "jsonobject"}),
    ("Description", "x" * 32001, {"maximum_length": 32000}),
])
def test_invalid_values_are_invalid_data_naming_the_field(typed: Zoho, field: str, value: Any,
                                                          expected: dict[str, Any]) -> None:
    response = typed.post("/Contacts", json={"data": [{"Last_Name": "Valid", field: value}]})
    assert response.status_code == 400
    (error,) = response.json()["data"]
    assert error["code"] == "INVALID_DATA" and error["status"] == "error" and error["message"] == "invalid data"
    assert error["details"] == {"api_name": field, "json_path": f"$.data[0].{field}", **expected}


def test_valid_values_of_every_type_are_stored_as_sent(typed: Zoho) -> None:
    (contact,) = typed.insert_ok("Contacts", {"Last_Name": "Ref"})
    record = {"Last_Name": "Boyle", "Email": "p.boyle@example.com", "Phone": "+1 (555) 010-0100",
              "Date_of_Birth": "1990-03-04", "Last_Visit": "2024-01-01T10:00:00-05:00", "Visits": 12,
              "Balance_Due": 125.5, "Email_Opt_Out": True, "Insurance_Plan": "PPO",
              "Conditions": ["Asthma", "Diabetes"], "Lead_Source": "Web Download", "Reports_To": {"id": contact}}
    (record_id,) = typed.insert_ok("Contacts", record)
    stored = typed.get(f"/Contacts/{record_id}").json()["data"][0]
    for key, value in record.items():
        if key == "Reports_To":
            assert stored[key] == {"name": "Ref", "id": contact}
        else:
            assert stored[key] == value


def test_lookup_to_a_missing_record_names_the_field(typed: Zoho) -> None:
    (error,) = typed.insert("Contacts", {"Last_Name": "A", "Reports_To": {"id": "6421000000999999999"}})
    assert error["code"] == "INVALID_DATA"
    assert error["details"]["api_name"] == "Reports_To"


def test_mandatory_on_update_cannot_be_blanked(typed: Zoho) -> None:
    (record_id,) = typed.insert_ok("Contacts", {"Last_Name": "A"})
    (error,) = typed.put("/Contacts", json={"data": [{"id": record_id, "Last_Name": None}]}).json()["data"]
    assert error["code"] == "MANDATORY_NOT_FOUND" and error["details"]["api_name"] == "Last_Name"


def test_unknown_fields_are_ignored_and_read_only_fields_kept(typed: Zoho) -> None:
    (record_id,) = typed.insert_ok("Contacts", {"Last_Name": "A", "Not_A_Field": "x",
                                                "Created_Time": "2000-01-01T00:00:00+00:00"})
    stored = typed.get(f"/Contacts/{record_id}").json()["data"][0]
    assert "Not_A_Field" not in stored and stored["Created_Time"] != "2000-01-01T00:00:00+00:00"


def test_subform_rows_validated_appended_and_deleted(typed: Zoho) -> None:
    created = typed.post("/settings/fields", params={"module": "Contacts"}, json={"fields": [
        {"field_label": "Insurance Plans", "data_type": "subform", "subform": {"fields": [
            {"field_label": "Carrier", "data_type": "text", "length": 100},
            {"field_label": "Coverage", "data_type": "percent"}]}}]})
    assert created.status_code == 201, created.json()
    (record_id,) = typed.insert_ok("Contacts", {"Last_Name": "A",
                                                "Insurance_Plans": [{"Carrier": "Delta", "Coverage": 80}]})
    bad = typed.put(f"/Contacts/{record_id}", json={"data": [{"Insurance_Plans": [{"Coverage": "most"}]}]})
    assert bad.json()["data"][0]["details"]["json_path"] == "$.data[0].Insurance_Plans[0].Coverage"
    typed.put(f"/Contacts/{record_id}", json={"data": [{"Insurance_Plans": [{"Carrier": "Aetna", "Coverage": 50}]}]})
    rows = typed.get(f"/Contacts/{record_id}").json()["data"][0]["Insurance_Plans"]
    assert [r["Carrier"] for r in rows] == ["Delta", "Aetna"]
    typed.put(f"/Contacts/{record_id}", json={"data": [{"Insurance_Plans": [{"id": rows[0]["id"], "_delete": None}]}]})
    rows = typed.get(f"/Contacts/{record_id}").json()["data"][0]["Insurance_Plans"]
    assert [r["Carrier"] for r in rows] == ["Aetna"]
    listed = typed.get("/Contacts", params={"fields": "Last_Name,Insurance_Plans"}).json()["data"]
    assert all("Insurance_Plans" not in r for r in listed)
    too_many = typed.put(f"/Contacts/{record_id}", json={"data": [{"Insurance_Plans": [{"Carrier": "x"}] * 100}]})
    assert too_many.json()["data"][0]["code"] == "LIMIT_EXCEEDED"


@pytest.mark.parametrize(("module", "record", "field", "expected"), [
    ("Leads", {"Last_Name": "A", "Website": "not a site"}, "Website", {"expected_data_type": "website"}),
    ("Leads", {"Last_Name": "A", "Company": "x" * 201}, "Company", {"maximum_length": 200}),
    ("Leads", {"Last_Name": "A", "Lead_Status": "Hot"}, "Lead_Status", {}),
    ("Tasks", {"Subject": "S", "Due_Date": "tomorrow"}, "Due_Date", {"expected_data_type": "date"}),
    ("Tasks", {"Subject": "S", "Priority": "Urgent"}, "Priority", {}),
    ("Calls", {"Subject": "S", "Call_Type": "Inbound", "Call_Start_Time": "2026-01-01T10:00:00+00:00",
               "Call_Duration": "ten mins"}, "Call_Duration", {"expected_data_type": "text"}),
    ("Calls", {"Subject": "S", "Call_Type": "Sideways", "Call_Start_Time": "2026-01-01T10:00:00+00:00",
               "Call_Duration": "10:00"}, "Call_Type", {}),
    ("Events", {"Event_Title": "E", "Start_DateTime": "2026-01-01", "End_DateTime": "2026-01-01T10:00:00+00:00"},
     "Start_DateTime", {"expected_data_type": "datetime"}),
    ("Events", {"Event_Title": "E", "Start_DateTime": "2026-01-01T09:00:00+00:00",
                "End_DateTime": "2026-01-01T10:00:00+00:00", "Participants": {"type": "email"}},
     "Participants", {"expected_data_type": "jsonarray"}),
])
def test_standard_fields_of_every_module_are_validated(zoho: Zoho, module: str, record: dict[str, Any],
                                                        field: str, expected: dict[str, Any]) -> None:
    (error,) = zoho.insert(module, record)
    assert error["code"] == "INVALID_DATA"
    assert error["details"] == {"api_name": field, "json_path": f"$.data[0].{field}", **expected}


def test_custom_bigint_percent_double_and_user_lookup(zoho: Zoho) -> None:
    zoho.post("/settings/fields", params={"module": "Leads"}, json={"fields": [
        {"field_label": "Chart", "data_type": "bigint"}, {"field_label": "Coverage", "data_type": "percent"},
        {"field_label": "Ratio", "data_type": "double"}, {"field_label": "Hygienist", "data_type": "userlookup"}]})
    user = zoho.users()[0]["id"]
    ok = zoho.insert("Leads", {"Last_Name": "A", "Chart": "123456789012345678", "Coverage": 80, "Ratio": 0.5,
                               "Hygienist": {"id": user}})[0]
    assert ok["status"] == "success", ok
    for field, value, expected in (("Chart", "1" * 19, {"maximum_length": 18}),
                                   ("Coverage", 123456, {"maximum_length": 5}),
                                   ("Ratio", "half", {"expected_data_type": "double"}),
                                   ("Hygienist", {"id": "6421000000999999999"}, {})):
        (error,) = zoho.insert("Leads", {"Last_Name": "A", field: value})
        assert error["code"] == "INVALID_DATA" and error["details"]["api_name"] == field, error
        assert expected.items() <= error["details"].items()


def test_too_many_participants_is_limit_exceeded(zoho: Zoho) -> None:
    people = [{"type": "email", "Email": f"p{i}@example.com"} for i in range(51)]
    (error,) = zoho.insert("Events", {"Event_Title": "E", "Start_DateTime": "2026-01-01T09:00:00+00:00",
                                      "End_DateTime": "2026-01-01T10:00:00+00:00", "Participants": people})
    assert error["code"] == "LIMIT_EXCEEDED" and error["details"]["limit"] == 50
