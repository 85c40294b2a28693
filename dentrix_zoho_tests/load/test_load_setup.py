"""Schema setup and owner resolution against the emulator; the API-call sink."""

from __future__ import annotations

from typing import Any

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load import api_call_sink, resolve_owners, setup_schema
from dentrix_zoho.load.schema_setup import KEYED_MODULES
from dentrix_zoho.mapping import load_spec


def test_schema_setup_creates_the_fields_once_and_reads_back_api_names(emulator: Any, kit: Any) -> None:
    client = kit.client_for(emulator)
    spec = load_spec()
    first = setup_schema(client, spec)
    for module in KEYED_MODULES:
        assert first.source_id_field(module) == "Source_System_ID"
        assert first.run_id_field(module) == "Migration_Run_ID"
        unique = [f for f in client.fields(module, refresh=True) if f["api_name"] == "Source_System_ID"]
        assert unique and unique[0].get("unique")
    # the insurance subform's children come back under the subform's own API name
    assert first.api_names["Insurance_Plans"]["Plan Type"] == "Plan_Type"
    fields_before = emulator.snapshot()["custom_fields"]
    again = setup_schema(client, spec)
    assert again.api_names == first.api_names
    assert emulator.snapshot()["custom_fields"] == fields_before
    # the map's extra standard-picklist values are added once, then found
    assert "Other" in first.picklist_added["Leads"]["Lead_Source"]
    assert "Other" in first.picklist_added["Contacts"]["Lead_Source"]
    assert first.picklist_added["Leads"]["Lead_Status"]
    assert first.picklist_missing == {} and again.picklist_added == {} and again.picklist_missing == {}
    lead_status = {f["api_name"]: f for f in client.fields("Leads", refresh=True)}["Lead_Status"]
    values = [v["actual_value"] for v in lead_status["pick_list_values"]]
    assert len(values) == len(set(values)) and set(first.picklist_added["Leads"]["Lead_Status"]) <= set(values)


def test_picklist_values_that_cannot_be_added_are_still_reported(emulator: Any, kit: Any) -> None:
    # A token allowed to create fields but not to update them: the PATCH is refused.
    import httpx

    code = emulator.grant_code("ZohoCRM.modules.ALL,ZohoCRM.users.READ,ZohoCRM.org.READ,"
                               "ZohoCRM.settings.fields.READ,ZohoCRM.settings.fields.CREATE")
    minted = httpx.post(f"{emulator.base_url}/oauth/v2/token", data={
        "grant_type": "authorization_code", "client_id": emulator.client_id,
        "client_secret": emulator.client_secret, "code": code}).json()
    client = kit.client_for(emulator, refresh_token=minted["refresh_token"])
    result = setup_schema(client, load_spec())
    assert result.picklist_added == {}
    assert "Other" in result.picklist_missing["Leads"]["Lead_Source"]
    assert "Other" in result.picklist_missing["Contacts"]["Lead_Source"]
    assert result.summary()["picklist_values_missing"] >= 3


def test_schema_setup_reads_back_a_name_zoho_chose(emulator: Any, kit: Any) -> None:
    client = kit.client_for(emulator)
    # Another field already holds the API name Zoho would derive from our label.
    client.ensure_schema("Tasks", [{"field_label": "Migration-Run-ID", "data_type": "text", "length": 10}])
    taken = {f["field_label"]: f["api_name"] for f in client.fields("Tasks", refresh=True)}["Migration-Run-ID"]
    result = setup_schema(client, load_spec())
    chosen = result.run_id_field("Tasks")
    assert chosen != taken and chosen.startswith("Migration_Run_ID")
    assert chosen in {f["api_name"] for f in client.fields("Tasks", refresh=True)}


def test_owners_match_case_insensitively_and_list_the_unmatched(emulator: Any, kit: Any) -> None:
    client = kit.client_for(emulator)
    users = {u["email"].lower(): u["id"] for u in client.users()}
    owners = resolve_owners(client, kit.provider_map(), [" dds1 ", "DDS2", "HYG1", "HYG2", "DDS3", "HYG3"])
    assert owners.user_ids == {"DDS1": users["dds1@wasatchdental.com"], "DDS2": users["dds2@wasatchdental.com"],
                               "HYG1": users["hyg1@wasatchdental.com"]}
    assert owners.unmatched == ["DDS3", "HYG2", "HYG3"]  # no e-mail / unknown e-mail / not in the map
    assert owners.default_owner_id == users["office@wasatchdental.com"]
    assert not owners.blocking
    assert owners.owner_for("hyg3") == owners.default_owner_id
    assert owners.summary()["unmatched"] == 3


def test_unmatched_providers_block_without_a_default_owner(emulator: Any, kit: Any) -> None:
    client = kit.client_for(emulator)
    owners = resolve_owners(client, kit.provider_map(default=False), ["DDS1", "HYG3"])
    assert owners.blocking and owners.unmatched == ["HYG3"]
    assert owners.owner_for("HYG3") is None
    assert not resolve_owners(client, kit.provider_map(default=False), ["DDS1"]).blocking


def test_a_default_owner_that_does_not_resolve_still_blocks(emulator: Any, kit: Any) -> None:
    from dentrix_zoho.source.provider_map import ProviderMap

    client = kit.client_for(emulator)
    pm = ProviderMap.model_validate({"providers": {}, "default_owner_email": "nobody@wasatchdental.com"})
    owners = resolve_owners(client, pm, ["DDS1"])
    assert owners.default_owner_configured and owners.default_owner_id is None and owners.blocking


def test_api_call_sink_stores_counts_and_status(emulator: Any, kit: Any, tmp_path: Any) -> None:
    from dentrix_zoho.zoho import ZohoClient

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    run = ledger.start_run("full", "office-1")
    base = kit.client_for(emulator)
    client = ZohoClient(base.config, api_call_sink(ledger, run))
    client.users()
    calls = ledger.api_calls(run)
    assert calls and calls[-1]["http_status"] == 200 and calls[-1]["path_template"] == "/crm/v8/users"
