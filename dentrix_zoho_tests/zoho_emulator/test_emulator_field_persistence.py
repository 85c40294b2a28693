"""Custom fields survive a restart on the same data dir: a subform with picklist rows and the text fields
created in the same call (as schema set-up sends them, five a call), their values in list and by-id GETs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dentrix_zoho.zoho_emulator.store import Store

from .conftest import Zoho

# One call, as schema set-up sends the last Contacts fields: text fields and the insurance subform.
FIELDS = [
    {"field_label": "Source System ID", "data_type": "text", "length": 100, "unique": {}},
    {"field_label": "Secondary Subscriber Name", "data_type": "text", "length": 80},
    {"field_label": "Insurance Plans", "data_type": "subform", "subform": {"fields": [
        {"field_label": "Plan Type", "data_type": "picklist",
         "pick_list_values": [{"display_value": "Primary", "actual_value": "Primary"},
                              {"display_value": "Secondary", "actual_value": "Secondary"}]},
        {"field_label": "Carrier", "data_type": "text", "length": 40},
        {"field_label": "Annual Maximum", "data_type": "currency", "length": 16},
    ]}},
]
LISTED = "Last_Name,Source_System_ID,Secondary_Subscriber_Name"


def _custom(zoho: Zoho) -> dict[str, dict[str, Any]]:
    fields = zoho.get("/settings/fields", params={"module": "Contacts"}).json()["fields"]
    return {f["api_name"]: f for f in fields if f["custom_field"]}


def test_a_subform_and_its_batch_survive_restarts_and_a_sigkill(own_emulator) -> None:  # type: ignore[no-untyped-def]
    handle = own_emulator(extra_args=["--token-mint-limit", "0"])
    zoho = Zoho(handle)
    created = zoho.post("/settings/fields", params={"module": "Contacts"}, json={"fields": FIELDS})
    assert created.status_code == 201, created.text  # journaled: the call no longer fails half-way
    assert [r["status"] for r in created.json()["fields"]] == ["success"] * 3
    [record_id] = zoho.insert_ok("Contacts", {
        "Last_Name": "Two", "Source_System_ID": "office-1:patient:2", "Secondary_Subscriber_Name": "Pat Two",
        "Insurance_Plans": [{"Plan_Type": "Primary", "Carrier": "Delta", "Annual_Maximum": 1500}]})
    defined = _custom(zoho)
    assert {"Source_System_ID", "Secondary_Subscriber_Name", "Insurance_Plans"} <= set(defined)

    for kill in (False, True, False):  # graceful, SIGKILL (journal replay), then from the compacted snapshot
        handle.restart(kill=kill)
        zoho = Zoho(handle)
        assert _custom(zoho) == defined, f"fields changed across a restart (kill={kill})"
        listed = zoho.get("/Contacts", params={"fields": LISTED}).json()["data"]
        assert [(r["Source_System_ID"], r["Secondary_Subscriber_Name"]) for r in listed] == [
            ("office-1:patient:2", "Pat Two")]
        whole = zoho.get(f"/Contacts/{record_id}").json()["data"][0]
        assert [(p["Plan_Type"], p["Carrier"], p["Annual_Maximum"]) for p in whole["Insurance_Plans"]] == [
            ("Primary", "Delta", 1500)]
        # the subform's picklist is still enforced, and the unique key still indexed
        bad = zoho.insert("Contacts", {"Last_Name": "Three", "Source_System_ID": "office-1:patient:3",
                                       "Insurance_Plans": [{"Plan_Type": "Tertiary"}]})[0]
        assert bad["status"] == "error" and bad["code"] == "INVALID_DATA", bad
        clash = zoho.insert("Contacts", {"Last_Name": "Again", "Source_System_ID": "office-1:patient:2"})[0]
        assert clash["code"] == "DUPLICATE_DATA", clash


def test_the_snapshot_keeps_a_field_the_engine_has_cached(tmp_path: Path) -> None:
    """Compaction writes the whole state after the engine has hung its own caches (a picklist as a
    frozenset) on the stored definition: written as defined, read back the same."""
    field = {"api_name": "Insurance_Plans", "data_type": "subform", "custom_field": True,
             "subform_fields": [{"api_name": "Plan_Type", "data_type": "picklist",
                                 "pick_list_values": ["Primary", "Secondary"]}]}
    store = Store(tmp_path)
    store.commit([["field", "Contacts", field]])
    kept = store.state.custom_fields["Contacts"]["Insurance_Plans"]
    kept["subform_fields"][0]["_values"] = frozenset({"Primary", "Secondary"})  # as Org.fields caches it
    kept["_values"] = frozenset()
    assert "_values" not in field["subform_fields"][0]  # the journaled operation is not the cached copy
    store.compact()
    store.commit([["field", "Contacts", {**field, "api_name": "Later_Plans"}]])
    store.close()
    again = Store(tmp_path)
    try:
        assert again.state.custom_fields["Contacts"] == {"Insurance_Plans": field,
                                                         "Later_Plans": {**field, "api_name": "Later_Plans"}}
    finally:
        again.close()
