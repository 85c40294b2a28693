"""Limits table, data-centre URLs and configuration parsing."""

from __future__ import annotations

import pytest

from dentrix_zoho.zoho import limits
from dentrix_zoho.zoho.config import ConfigError, ZohoConfig
from dentrix_zoho.zoho.datacentres import DATA_CENTRES, check_base_url, dc_urls

BASE_ENV = {
    "ZOHO_CLIENT_ID": "1000.CLIENT",
    "ZOHO_CLIENT_SECRET": "s3cret-value",
    "ZOHO_REFRESH_TOKEN": "1000.refresh-value",
}


@pytest.mark.parametrize(
    ("edition", "users", "expected"),
    [
        ("free", 3, 5_000),
        ("standard", 10, 52_500),
        ("standard", 1_000, 100_000),  # capped at the edition maximum
        ("professional", 20, 60_000),
        ("enterprise", 50, 100_000),
        ("enterprise", 10_000, 5_000_000),
        ("ultimate", 100_000, 50_000 + 100_000 * 2_000),  # no cap
    ],
)
def test_daily_credits_by_edition_and_users(edition, users, expected):
    assert limits.daily_credits(edition, users) == expected


def test_write_credits_are_one_per_ten_records_per_call():
    assert limits.write_call_credits(1) == 1
    assert limits.write_call_credits(10) == 1
    assert limits.write_call_credits(11) == 2
    assert limits.write_call_credits(100) == 10
    # 250 records = 100 + 100 + 50 -> 10 + 10 + 5
    assert limits.write_credits(250) == 25
    assert limits.write_calls(250) == 3
    assert limits.write_credits(0) == 0


def test_estimate_credits_of_a_plan():
    plan = {"upsert": 1_000, "notes": 95, "attachment": 7, "bulk_write": 30_000, "delete": 250}
    expected = 100 + 10 + 7 + 2 * (500 + 2) + 3
    assert limits.estimate_credits(plan) == expected
    assert limits.estimate_credits([limits.PlannedOperation("coql", 2)]) == 6
    with pytest.raises(ValueError, match="unknown operation kind"):
        limits.estimate_credits({"teleport": 1})


def test_edition_aliases_and_unknown_edition():
    assert limits.normalise_edition("Zoho One") == "enterprise"
    assert limits.normalise_edition("CRM-Plus") == "ultimate"
    assert limits.normalise_edition("Starter") == "standard"
    with pytest.raises(ValueError, match="unknown Zoho edition"):
        limits.normalise_edition("platinum")


@pytest.mark.parametrize("dc", DATA_CENTRES)
def test_dc_table_every_centre_and_environment(dc):
    prod, sandbox, dev = (dc_urls(dc, env) for env in ("production", "sandbox", "developer"))
    assert prod.api_base.startswith("https://www.zohoapis.")
    assert sandbox.api_base == prod.api_base.replace("://www.", "://sandbox.")
    assert dev.api_base == prod.api_base.replace("://www.", "://developer.")
    assert prod.accounts_url == sandbox.accounts_url == dev.accounts_url
    assert prod.token_url == prod.accounts_url + "/oauth/v2/token"
    for url in (prod.api_base, prod.accounts_url, prod.upload_url):
        assert url.startswith("https://") and not url.endswith("/")


def test_dc_table_known_values():
    assert dc_urls("US").api_base == "https://www.zohoapis.com"
    assert dc_urls("eu").accounts_url == "https://accounts.zoho.eu"
    assert dc_urls("AU").api_base == "https://www.zohoapis.com.au"
    assert dc_urls("CN", "sandbox").api_base == "https://sandbox.zohoapis.com.cn"
    assert dc_urls("CA").accounts_url == "https://accounts.zohocloud.ca"
    assert dc_urls("CA").upload_url == "https://upload.zohocloud.ca"
    assert dc_urls("SA").upload_url == "https://files.zoho.sa"
    assert dc_urls("JP").upload_url == "https://content.zohoapis.jp"
    with pytest.raises(ValueError, match="unknown Zoho data centre"):
        dc_urls("UK")


def test_config_from_dc():
    cfg = ZohoConfig.from_env(
        {**BASE_ENV, "ZOHO_DC": "in", "ZOHO_EDITION": "Professional", "ZOHO_USERS": "12"}
    )
    urls = cfg.urls()
    assert cfg.dc == "IN"
    assert urls.api_base == "https://www.zohoapis.in"
    assert urls.token_url == "https://accounts.zoho.in/oauth/v2/token"
    assert urls.upload_url == "https://content.zohoapis.in"
    assert cfg.edition == "professional"
    assert cfg.daily_credits == 50_000 + 12 * 500
    assert cfg.concurrency == 15


def test_config_explicit_hosts_win_and_upload_defaults_to_api_base():
    cfg = ZohoConfig.from_env(
        {
            **BASE_ENV,
            "ZOHO_DC": "EU",
            "ZOHO_API_BASE": "http://127.0.0.1:8765/",
            "ZOHO_ACCOUNTS_URL": "http://127.0.0.1:8765/oauth/v2/token",
        }
    )
    urls = cfg.urls()
    assert urls.api_base == "http://127.0.0.1:8765"
    assert urls.upload_url == "http://127.0.0.1:8765"
    assert urls.token_url == "http://127.0.0.1:8765/oauth/v2/token"


def test_config_refuses_plain_http_off_loopback():
    with pytest.raises(ConfigError, match="https"):
        ZohoConfig.from_env(
            {
                **BASE_ENV,
                "ZOHO_API_BASE": "http://crm.example.org",
                "ZOHO_ACCOUNTS_URL": "https://accounts.zoho.com",
            }
        )
    assert check_base_url("http://localhost:9/", "x") == "http://localhost:9"
    assert check_base_url("http://[::1]:9", "x") == "http://[::1]:9"
    with pytest.raises(ValueError):
        check_base_url("ftp://127.0.0.1", "x")


def test_config_errors_name_the_variable_and_hide_secrets():
    with pytest.raises(ConfigError) as info:
        ZohoConfig.from_env(
            {**BASE_ENV, "ZOHO_DC": "US", "ZOHO_USERS": "many", "ZOHO_ON_BUDGET_EXHAUSTED": "panic"}
        )
    text = str(info.value)
    assert "ZOHO_USERS" in text and "ZOHO_ON_BUDGET_EXHAUSTED" in text
    assert "s3cret-value" not in text
    with pytest.raises(ConfigError, match="ZOHO_CLIENT_SECRET"):
        ZohoConfig.from_env({"ZOHO_CLIENT_ID": "x", "ZOHO_REFRESH_TOKEN": "y", "ZOHO_DC": "US"})
    with pytest.raises(ConfigError, match="ZOHO_DC"):
        ZohoConfig.from_env(BASE_ENV)
    cfg = ZohoConfig.from_env({**BASE_ENV, "ZOHO_DC": "US"})
    assert "s3cret-value" not in repr(cfg) and "refresh-value" not in repr(cfg)


def test_concurrency_never_exceeds_the_edition():
    cfg = ZohoConfig.from_env(
        {**BASE_ENV, "ZOHO_DC": "US", "ZOHO_EDITION": "standard", "ZOHO_MAX_CONCURRENCY": "50"}
    )
    assert cfg.concurrency == 10
    cfg = ZohoConfig.from_env(
        {**BASE_ENV, "ZOHO_DC": "US", "ZOHO_EDITION": "ultimate", "ZOHO_MAX_CONCURRENCY": "4"}
    )
    assert cfg.concurrency == 4


def test_pool_key_is_stable_and_secret_free():
    a = ZohoConfig.from_env({**BASE_ENV, "ZOHO_DC": "US"})
    b = ZohoConfig.from_env({**BASE_ENV, "ZOHO_DC": "US", "ZOHO_REFRESH_TOKEN": "other"})
    c = ZohoConfig.from_env({**BASE_ENV, "ZOHO_DC": "EU"})
    assert a.pool_key == b.pool_key != c.pool_key
    assert (
        ZohoConfig.from_env({**BASE_ENV, "ZOHO_DC": "US", "ZOHO_ORG": "Smile Dental-East"}).pool_key
        == "smile_dental_east"
    )


def test_calls_per_minute_plan_ceiling_by_edition():
    cfg = ZohoConfig.from_env(
        {**BASE_ENV, "ZOHO_DC": "US", "ZOHO_EDITION": "professional", "ZOHO_CALLS_PER_MINUTE": "plan"}
    )
    assert cfg.calls_per_minute == 2_500
    cfg = ZohoConfig.from_env({**BASE_ENV, "ZOHO_DC": "US", "ZOHO_CALLS_PER_MINUTE": "120"})
    assert cfg.calls_per_minute == 120
    assert ZohoConfig.from_env({**BASE_ENV, "ZOHO_DC": "US"}).calls_per_minute is None
