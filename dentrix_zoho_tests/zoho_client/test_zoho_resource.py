"""The Dagster resource builds from the environment; the pool name follows the org, not the secrets."""

from __future__ import annotations

import dagster as dg
import pytest

from dentrix_zoho.defs.zoho_resource import ZohoResource, zoho_pool_name, zoho_pool_name_from_env
from dentrix_zoho.zoho import ZohoClient, ZohoConfig

ENV = {
    "ZOHO_CLIENT_ID": "1000.CID",
    "ZOHO_CLIENT_SECRET": "secret-from-env",
    "ZOHO_REFRESH_TOKEN": "refresh-from-env",
    "ZOHO_DC": "EU",
    "ZOHO_EDITION": "professional",
    "ZOHO_USERS": "12",
}


def _set_env(monkeypatch, env: dict[str, str]) -> None:
    for key in ("ZOHO_API_BASE", "ZOHO_ACCOUNTS_URL", "ZOHO_UPLOAD_URL", "ZOHO_ORG", "ZOHO_MAX_CONCURRENCY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_resource_builds_from_env_vars(monkeypatch):
    _set_env(monkeypatch, ENV)
    resource = ZohoResource.from_env_vars(pool_slots=3)
    with dg.build_resources({"zoho": resource}) as built:
        zoho = built.zoho
        config = zoho.zoho_config()
        assert config.urls().api_base == "https://www.zohoapis.eu"
        assert config.edition == "professional" and config.users == 12
        assert config.client_secret.get_secret_value() == "secret-from-env"
        assert config.concurrency == 5  # professional 15 shared by 3 pool slots
        client = zoho.get_client()
        assert isinstance(client, ZohoClient)
        client.close()
    # The secret is not part of the resource's displayed config.
    assert "secret-from-env" not in repr(resource)


def test_the_orgs_shared_limiter_reaches_the_resource_from_the_environment(monkeypatch, tmp_path):
    _set_env(monkeypatch, ENV)
    url = f"sqlite:///{tmp_path / 'org.sqlite'}"
    monkeypatch.setenv("ZOHO_ORG_LIMITS_URL", url)
    monkeypatch.setenv("ZOHO_ORG_CREDIT_RESERVE", "0.3")
    monkeypatch.setenv("ZOHO_POOL_SLOTS", "4")
    resource = ZohoResource.from_env_vars()
    with dg.build_resources({"zoho": resource}) as built:
        config = built.zoho.zoho_config()
        assert config.org_limits_url is not None and config.org_limits_url.get_secret_value() == url
        assert config.org_credit_reserve == 0.3
        # The shared limiter holds all runs together: no run gives up its share of the edition's 15.
        assert built.zoho.pool_slots == 4 and config.concurrency == 15
    assert url not in repr(resource)
    monkeypatch.setenv("ZOHO_ORG_LEASE_SECONDS", "soon")
    with pytest.raises(ValueError, match="ZOHO_ORG_LEASE_SECONDS must be a number"):
        ZohoResource.from_env_vars()


def test_pool_name_is_per_org_and_stable(monkeypatch):
    _set_env(monkeypatch, ENV)
    a = zoho_pool_name(ZohoConfig.from_env(ENV))
    b = zoho_pool_name(ZohoConfig.from_env({**ENV, "ZOHO_REFRESH_TOKEN": "rotated"}))
    c = zoho_pool_name(ZohoConfig.from_env({**ENV, "ZOHO_DC": "US"}))
    assert a == b != c and a.startswith("zoho_api_")
    assert zoho_pool_name_from_env({**ENV, "ZOHO_ORG": "Bright Smiles"}) == "zoho_api_bright_smiles"
    assert zoho_pool_name_from_env(ENV) == a
    assert zoho_pool_name_from_env({}) == "zoho_api_default"


def test_asset_with_the_pool_loads_and_talks_to_the_emulator(monkeypatch, emulator):
    _set_env(
        monkeypatch,
        {
            "ZOHO_CLIENT_ID": emulator.client_id,
            "ZOHO_CLIENT_SECRET": emulator.client_secret,
            "ZOHO_REFRESH_TOKEN": emulator.refresh_token,
            "ZOHO_API_BASE": emulator.base_url,
            "ZOHO_ACCOUNTS_URL": emulator.base_url,
            "ZOHO_ORG": "emulated",
        },
    )
    pool = zoho_pool_name_from_env()

    @dg.asset(pool=pool)
    def zoho_org(zoho: ZohoResource) -> dg.MaterializeResult:
        with zoho.get_client() as client:
            return dg.MaterializeResult(metadata={"zgid": client.org()["zgid"]})

    defs = dg.Definitions(assets=[zoho_org], resources={"zoho": ZohoResource.from_env_vars()})
    result = dg.materialize([zoho_org], resources={"zoho": ZohoResource.from_env_vars()})
    assert result.success
    assert defs.get_assets_def("zoho_org").op.pool == "zoho_api_emulated"
    (mat,) = result.asset_materializations_for_node("zoho_org")
    assert mat.metadata["zgid"].value
