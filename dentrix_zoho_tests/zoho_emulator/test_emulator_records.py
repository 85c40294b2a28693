"""Records API contract: shapes, status codes and per-record codes.

Zoho's documentation: https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html, https://www.zoho.com/crm/developer/docs/api/v8/upsert-records.html
"""

from __future__ import annotations

import re

from .conftest import Zoho

ZOHO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


def test_insert_all_ok_is_201_with_zoho_details(zoho: Zoho) -> None:
    response = zoho.post("/Contacts", json={"data": [{"Last_Name": "Boyle", "Email": "p.boyle@example.com"}],
                                            "trigger": []})
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    (result,) = response.json()["data"]
    assert result["code"] == "SUCCESS" and result["status"] == "success" and result["message"] == "record added"
    details = result["details"]
    assert set(details) == {"Modified_Time", "Modified_By", "Created_Time", "id", "Created_By", "$approval_state"}
    assert re.fullmatch(r"\d{19}", details["id"])
    assert ZOHO_TIME.match(details["Created_Time"]) and ZOHO_TIME.match(details["Modified_Time"])
    assert set(details["Created_By"]) == {"name", "id"}
    assert zoho.handle.usage()["triggers"] == {"none": 1}


def test_mixed_batch_is_207_in_input_order_and_all_failed_is_400(zoho: Zoho) -> None:
    mixed = zoho.post("/Contacts", json={"data": [{"Last_Name": "Ok"}, {"First_Name": "NoLast"}]})
    assert mixed.status_code == 207
    ok, bad = mixed.json()["data"]
    assert ok["status"] == "success"
    assert bad == {"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Last_Name",
                                                              "json_path": "$.data[1].Last_Name"},
                   "message": "required field not found", "status": "error"}
    failed = zoho.post("/Contacts", json={"data": [{"First_Name": "A"}]})
    assert failed.status_code == 400 and failed.json()["data"][0]["code"] == "MANDATORY_NOT_FOUND"


def test_more_than_100_records_is_refused(zoho: Zoho) -> None:
    response = zoho.post("/Contacts", json={"data": [{"Last_Name": f"N{i}"} for i in range(101)]})
    assert response.status_code == 400 and response.json()["code"] == "LIMIT_EXCEEDED"
    assert zoho.get("/Contacts/actions/count").json() == {"count": 0}


def test_invalid_module_is_400(zoho: Zoho) -> None:
    for response in (zoho.get("/Patients", params={"fields": "Name"}), zoho.post("/Patients", json={"data": [{}]})):
        assert response.status_code == 400
        assert response.json() == {"code": "INVALID_MODULE", "details": {"resource_path_index": 0},
                                   "message": "the module name given seems to be invalid", "status": "error"}


def test_get_by_id_returns_every_field_and_204_when_absent(zoho: Zoho) -> None:
    (record_id,) = zoho.insert_ok("Contacts", {"Last_Name": "Boyle", "First_Name": "Pat", "Mobile": "+1 555 0100"})
    (record,) = zoho.get(f"/Contacts/{record_id}").json()["data"]
    assert record["Full_Name"] == "Pat Boyle" and record["Mobile"] == "+1 555 0100"
    assert record["Owner"]["id"] == record["Created_By"]["id"]
    assert zoho.get("/Contacts/6421000000999999999").status_code == 204


def test_list_needs_fields_returns_requested_fields_and_204_when_empty(zoho: Zoho) -> None:
    missing = zoho.get("/Contacts")
    assert missing.status_code == 400
    assert missing.json() == {"code": "REQUIRED_PARAM_MISSING", "details": {"param": "fields"},
                              "message": "One of the expected parameter is missing", "status": "error"}
    assert zoho.get("/Contacts", params={"fields": "Last_Name"}).status_code == 204
    zoho.insert_ok("Contacts", {"Last_Name": "A"}, {"Last_Name": "B", "Email": "b@example.com"})
    body = zoho.get("/Contacts", params={"fields": "Last_Name,Email"}).json()
    assert [r["Last_Name"] for r in body["data"]] == ["B", "A"]  # id desc by default
    assert set(body["data"][1]) == {"Last_Name", "Email", "id"} and body["data"][1]["Email"] is None
    assert {"per_page", "page", "count", "more_records", "sort_by", "sort_order", "next_page_token",
            "previous_page_token", "page_token_expiry", "call", "email"} <= set(body["info"])
    too_many = zoho.get("/Contacts", params={"fields": ",".join(f"F{i}" for i in range(51))})
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"
    assert zoho.get("/Contacts", params={"fields": "Last_Name", "per_page": 201}).status_code == 400


def test_pagination_by_page_then_page_token(zoho: Zoho) -> None:
    for start in range(0, 250, 100):
        zoho.insert_ok("Leads", *({"Last_Name": f"L{i:04d}"} for i in range(start, min(start + 100, 250))))
    first = zoho.get("/Leads", params={"fields": "Last_Name", "per_page": 100, "sort_order": "asc"}).json()
    assert first["info"]["more_records"] is True and first["data"][0]["Last_Name"] == "L0000"
    seen = [r["Last_Name"] for r in first["data"]]
    token = first["info"]["next_page_token"]
    while token:
        page = zoho.get("/Leads", params={"fields": "Last_Name", "per_page": 100, "sort_order": "asc",
                                          "page_token": token}).json()
        seen += [r["Last_Name"] for r in page["data"]]
        token = page["info"]["next_page_token"]
    assert seen == [f"L{i:04d}" for i in range(250)]
    both = zoho.get("/Leads", params={"fields": "Last_Name", "page": 1, "page_token": first["info"]["next_page_token"]})
    assert both.status_code == 400 and both.json()["code"] == "AMBIGUITY_DURING_PROCESSING"


def test_page_beyond_2000_records_needs_page_token(zoho: Zoho) -> None:
    response = zoho.get("/Leads", params={"fields": "Last_Name", "page": 11, "per_page": 200})
    assert response.status_code == 400
    assert response.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"


def test_update_by_body_id_and_by_path(zoho: Zoho) -> None:
    first, second = zoho.insert_ok("Contacts", {"Last_Name": "A"}, {"Last_Name": "B"})
    response = zoho.put("/Contacts", json={"data": [{"id": first, "Phone": "555-0100"}, {"Phone": "1"},
                                                    {"id": "6421000000999999999", "Phone": "2"}]})
    assert response.status_code == 207
    ok, no_id, unknown = response.json()["data"]
    assert ok["message"] == "record updated" and "$approval_state" not in ok["details"]
    assert no_id["code"] == "MANDATORY_NOT_FOUND" and no_id["details"]["api_name"] == "id"
    assert unknown["code"] == "INVALID_DATA"
    single = zoho.put(f"/Contacts/{second}", json={"data": [{"Last_Name": "Bee"}]})
    assert single.status_code == 200
    assert zoho.get(f"/Contacts/{second}").json()["data"][0]["Last_Name"] == "Bee"
    assert zoho.get(f"/Contacts/{first}").json()["data"][0]["Phone"] == "555-0100"


def test_upsert_matches_on_email_and_reports_action(zoho: Zoho) -> None:
    (existing,) = zoho.insert_ok("Contacts", {"Last_Name": "Boyle", "Email": "p@example.com"})
    response = zoho.post("/Contacts/upsert", json={"data": [{"Last_Name": "Boyle2", "Email": "P@example.com"},
                                                            {"Last_Name": "New", "Email": "n@example.com"}],
                                                   "duplicate_check_fields": ["Email"], "trigger": []})
    assert response.status_code == 200
    updated, inserted = response.json()["data"]
    assert (updated["action"], updated["duplicate_field"], updated["details"]["id"]) == ("update", "Email", existing)
    assert updated["message"] == "record updated"
    assert (inserted["action"], inserted["duplicate_field"], inserted["message"]) == ("insert", None, "record added")


def test_upsert_ignores_fields_that_are_not_duplicate_check_or_unique(zoho: Zoho) -> None:
    zoho.insert_ok("Contacts", {"Last_Name": "Same", "Phone": "555"})
    response = zoho.post("/Contacts/upsert", json={"data": [{"Last_Name": "Same", "Phone": "555"}],
                                                   "duplicate_check_fields": ["Last_Name", "Phone"]})
    assert response.json()["data"][0]["action"] == "insert"
    assert zoho.get("/Contacts/actions/count").json()["count"] == 2


def test_upsert_on_a_unique_custom_field(zoho: Zoho) -> None:
    created = zoho.post("/settings/fields", params={"module": "Contacts"},
                        json={"fields": [{"field_label": "Source System ID", "data_type": "text", "length": 50,
                                          "unique": {"case_sensitive": False}}]})
    assert created.status_code == 201
    body = {"data": [{"Last_Name": "P1", "Source_System_ID": "office-1:17"}],
            "duplicate_check_fields": ["Source_System_ID"]}
    first = zoho.post("/Contacts/upsert", json=body).json()["data"][0]
    second = zoho.post("/Contacts/upsert", json=body).json()["data"][0]
    assert first["action"] == "insert" and second["action"] == "update"
    assert second["duplicate_field"] == "Source_System_ID" and second["details"]["id"] == first["details"]["id"]


def test_unique_field_clash_is_duplicate_data_with_the_existing_record(zoho: Zoho) -> None:
    zoho.post("/settings/fields", params={"module": "Contacts"},
              json={"fields": [{"field_label": "Patient ID", "data_type": "text", "unique": {}}]})
    (first,) = zoho.insert_ok("Contacts", {"Last_Name": "A", "Patient_ID": "17"})
    response = zoho.post("/Contacts", json={"data": [{"Last_Name": "B", "Patient_ID": "17"}]})
    assert response.status_code == 400
    (error,) = response.json()["data"]
    assert error["code"] == "DUPLICATE_DATA" and error["message"] == "duplicate data"
    assert error["details"]["api_name"] == "Patient_ID"
    assert error["details"]["json_path"] == "$.data[0].Patient_ID"
    assert error["details"]["duplicate_record"]["id"] == first
    assert error["details"]["duplicate_record"]["module"]["api_name"] == "Contacts"
    assert set(error["details"]["duplicate_record"]["Owner"]) == {"name", "id", "zuid"}


def test_delete_by_ids_and_by_path(zoho: Zoho) -> None:
    a, b, c = zoho.insert_ok("Contacts", {"Last_Name": "A"}, {"Last_Name": "B"}, {"Last_Name": "C"})
    response = zoho.delete("/Contacts", params={"ids": f"{a},{b},6421000000999999999"})
    assert response.status_code == 207
    first, _, unknown = response.json()["data"]
    assert first == {"code": "SUCCESS", "details": {"id": a}, "message": "record deleted", "status": "success"}
    assert unknown["code"] == "INVALID_DATA"
    assert zoho.delete(f"/Contacts/{c}").status_code == 200
    assert zoho.get("/Contacts/actions/count").json() == {"count": 0}
    missing = zoho.delete("/Contacts")
    assert missing.status_code == 400 and missing.json()["details"] == {"param": "ids"}
    too_many = zoho.delete("/Contacts", params={"ids": ",".join(str(i) for i in range(101))})
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"


def test_notes_take_a_v8_parent_id_object(zoho: Zoho) -> None:
    (contact,) = zoho.insert_ok("Contacts", {"Last_Name": "Boyle"})
    parent = {"module": {"api_name": "Contacts"}, "id": contact}
    (note,) = zoho.insert_ok("Notes", {"Note_Title": "Perio", "Note_Content": "text", "Parent_Id": parent})
    v2_shape = zoho.insert("Notes", {"Note_Content": "x", "Parent_Id": contact, "se_module": "Contacts"})[0]
    assert v2_shape["code"] == "INVALID_DATA" and v2_shape["details"]["expected_data_type"] == "jsonobject"
    via_parent = zoho.post(f"/Contacts/{contact}/Notes", json={"data": [{"Note_Content": "second"}]})
    assert via_parent.status_code == 201
    listed = zoho.get(f"/Contacts/{contact}/Notes", params={"fields": "Note_Content,Parent_Id"}).json()["data"]
    assert {n["Note_Content"] for n in listed} == {"text", "second"}
    assert all(n["Parent_Id"]["id"] == contact for n in listed)
    upsert = zoho.post("/Notes/upsert", json={"data": [{"Note_Content": "x"}]})
    assert upsert.status_code == 400
    zoho.delete(f"/Contacts/{contact}")
    assert zoho.get(f"/Notes/{note}").status_code == 204


def test_events_tasks_calls_with_lookups(zoho: Zoho) -> None:
    (contact,) = zoho.insert_ok("Contacts", {"Last_Name": "Boyle"})
    (lead,) = zoho.insert_ok("Leads", {"Last_Name": "Lead"})
    owner = zoho.users()[1]["id"]
    event = zoho.insert("Events", {"Event_Title": "Cleaning", "Start_DateTime": "2026-01-05T09:00:00-05:00",
                                   "End_DateTime": "2026-01-05T10:00:00-05:00", "Who_Id": {"id": contact},
                                   "Owner": {"id": owner},
                                   "Participants": [{"type": "contact", "participant": contact},
                                                    {"type": "email", "Email": "x@example.com"}]})[0]
    assert event["status"] == "success", event
    task = zoho.insert("Tasks", {"Subject": "Recall", "Due_Date": "2026-06-01", "Status": "Not Started",
                                 "What_Id": {"id": lead}, "$se_module": "Leads"})[0]
    assert task["status"] == "success", task
    call = zoho.insert("Calls", {"Subject": "Reminder", "Call_Type": "Outbound",
                                 "Call_Start_Time": "2026-01-02T10:00:00+00:00", "Call_Duration": "05:00",
                                 "Who_Id": {"id": contact}})[0]
    assert call["status"] == "success", call
    dangling = zoho.insert("Tasks", {"Subject": "X", "Who_Id": {"id": "6421000000999999999"}})[0]
    assert dangling["code"] == "INVALID_DATA" and dangling["details"]["api_name"] == "Who_Id"
    bad_owner = zoho.insert("Tasks", {"Subject": "X", "Owner": {"id": contact}})[0]
    assert bad_owner["code"] == "INVALID_DATA" and bad_owner["details"]["api_name"] == "Owner"
    no_module = zoho.insert("Tasks", {"Subject": "X", "What_Id": {"id": lead}})[0]
    assert no_module["code"] == "MANDATORY_NOT_FOUND" and no_module["details"]["api_name"] == "$se_module"


def test_count_and_wrong_method_and_bad_url(zoho: Zoho) -> None:
    zoho.insert_ok("Leads", {"Last_Name": "A"})
    assert zoho.get("/Leads/actions/count").json() == {"count": 1}
    assert zoho.http.patch("/Leads").json()["code"] == "INVALID_REQUEST_METHOD"
    bad = zoho.get("/Leads/1/2/3/4")
    assert bad.status_code == 404 and bad.json()["code"] == "INVALID_URL_PATTERN"


def test_deleted_records_are_listed_from_the_recycle_bin(zoho: Zoho) -> None:
    assert zoho.get("/Contacts/deleted").status_code == 204
    a, _ = zoho.insert_ok("Contacts", {"Last_Name": "Gone", "First_Name": "Al"}, {"Last_Name": "Kept"})
    zoho.delete("/Contacts", params={"ids": a})
    (entry,) = zoho.get("/Contacts/deleted", params={"type": "recycle"}).json()["data"]
    assert (entry["id"], entry["display_name"], entry["type"]) == (a, "Al Gone", "recycle")
    assert set(entry) == {"id", "display_name", "type", "deleted_by", "created_by", "deleted_time"}
    assert zoho.get("/Contacts/deleted", params={"type": "permanent"}).status_code == 204
    assert zoho.handle.usage()["credits"]["used_24h"] >= 2


def test_if_unmodified_since_refuses_a_stale_update(zoho: Zoho) -> None:
    (record_id,) = zoho.insert_ok("Contacts", {"Last_Name": "A"})
    modified = zoho.get(f"/Contacts/{record_id}").json()["data"][0]["Modified_Time"]
    fresh = zoho.put(f"/Contacts/{record_id}", json={"data": [{"Phone": "1"}]},
                     headers={"If-Unmodified-Since": modified})
    assert fresh.status_code == 200
    zoho.handle.advance_clock(5)
    zoho.put(f"/Contacts/{record_id}", json={"data": [{"Phone": "2"}]})
    stale = zoho.put(f"/Contacts/{record_id}", json={"data": [{"Phone": "3"}]},
                     headers={"If-Unmodified-Since": modified})
    assert stale.status_code == 412 and stale.json()["data"][0]["code"] == "ALREADY_MODIFIED"
    assert zoho.get(f"/Contacts/{record_id}").json()["data"][0]["Phone"] == "2"


def test_external_fields_identify_records_and_lookups_with_x_external(zoho: Zoho) -> None:
    created = zoho.post("/settings/fields", params={"module": "Contacts"}, json={"fields": [
        {"field_label": "PMS Patient ID", "data_type": "text", "external": {"show": True, "type": "user"}},
        {"field_label": "Guarantor", "data_type": "lookup", "lookup": {"module": {"api_name": "Contacts"}}}]})
    assert created.status_code == 201
    (parent,) = zoho.insert_ok("Contacts", {"Last_Name": "Parent", "PMS_Patient_ID": "p-1"})
    header = {"X-EXTERNAL": "Contacts.PMS_Patient_ID"}
    child = zoho.post("/Contacts", headers=header, json={"data": [
        {"Last_Name": "Child", "PMS_Patient_ID": "p-2", "Guarantor": {"PMS_Patient_ID": "p-1"}}]})
    assert child.status_code == 201, child.json()
    child_id = child.json()["data"][0]["details"]["id"]
    assert zoho.get(f"/Contacts/{child_id}").json()["data"][0]["Guarantor"]["id"] == parent
    updated = zoho.put("/Contacts", headers=header, json={"data": [{"PMS_Patient_ID": "p-2", "Phone": "555"}]})
    assert updated.status_code == 200 and updated.json()["data"][0]["details"]["id"] == child_id
    unknown = zoho.post("/Contacts", headers=header, json={"data": [
        {"Last_Name": "X", "Guarantor": {"PMS_Patient_ID": "p-404"}}]})
    assert unknown.json()["data"][0]["details"]["api_name"] == "Guarantor"
    without_header = zoho.post("/Contacts", json={"data": [{"Last_Name": "Y", "Guarantor": {"PMS_Patient_ID": "p-1"}}]})
    assert without_header.json()["data"][0]["code"] == "INVALID_DATA"
    upsert = zoho.post("/Contacts/upsert", json={"data": [{"Last_Name": "Parent2", "PMS_Patient_ID": "p-1"}],
                                                 "duplicate_check_fields": ["PMS_Patient_ID"]})
    assert upsert.json()["data"][0]["details"]["id"] == parent


def test_several_unique_clashes_are_multiple_or_multi_errors(zoho: Zoho) -> None:
    zoho.post("/settings/fields", params={"module": "Leads"}, json={"fields": [
        {"field_label": "Chart", "data_type": "text", "unique": {}},
        {"field_label": "SSN Tail", "data_type": "text", "unique": {}}]})
    zoho.insert_ok("Leads", {"Last_Name": "A", "Chart": "c1", "SSN_Tail": "1234"})
    (error,) = zoho.insert("Leads", {"Last_Name": "B", "Chart": "C1", "SSN_Tail": "1234"})
    assert error["code"] == "MULTIPLE_OR_MULTI_ERRORS" and error["message"] == "Multiple errors in the request"
    assert [e["code"] for e in error["details"]["errors"]] == ["DUPLICATE_DATA", "DUPLICATE_DATA"]
    assert {e["details"]["api_name"] for e in error["details"]["errors"]} == {"Chart", "SSN_Tail"}
