"""OAuth contract: grants, token shapes, HTTP-200 token errors, expiry, header form and scopes."""

from __future__ import annotations

import httpx

from dentrix_zoho.zoho_emulator.testing import EmulatorHandle

from .conftest import Zoho, mint_token


def test_refresh_grant_from_form_body_is_shaped_like_zoho(emulator: EmulatorHandle) -> None:
    body = mint_token(emulator)
    assert set(body) == {"access_token", "scope", "api_domain", "token_type", "expires_in"}
    assert body["api_domain"] == emulator.base_url
    assert body["expires_in"] == 3600
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("1000.")
    assert "refresh_token" not in body


def test_refresh_grant_from_query_string(emulator: EmulatorHandle) -> None:
    params = {"grant_type": "refresh_token", "client_id": emulator.client_id,
              "client_secret": emulator.client_secret, "refresh_token": emulator.refresh_token}
    response = httpx.post(f"{emulator.base_url}/oauth/v2/token", params=params)
    assert response.status_code == 200
    assert "access_token" in response.json()


def test_token_errors_are_http_200_with_error_key(emulator: EmulatorHandle) -> None:
    assert mint_token(emulator, client_id="nope") == {"error": "invalid_client"}
    assert mint_token(emulator, refresh_token="1000.bad.bad") == {"error": "invalid_code"}
    assert mint_token(emulator, grant_type="password") == {"error": "unsupported_grant_type"}


def test_api_domain_leads_back_to_the_emulator(emulator: EmulatorHandle) -> None:
    body = mint_token(emulator)
    response = httpx.get(f"{body['api_domain']}/crm/v8/users", params={"type": "CurrentUser"},
                         headers={"Authorization": f"Zoho-oauthtoken {body['access_token']}"})
    assert response.status_code == 200
    (user,) = response.json()["users"]
    assert user["status"] == "active" and "@" in user["email"] and len(user["id"]) == 19


def test_missing_header_and_bearer_prefix_fail_authentication(zoho: Zoho) -> None:
    bare = httpx.get(f"{zoho.handle.base_url}/crm/v8/org")
    assert bare.status_code == 401
    assert bare.json() == {"code": "AUTHENTICATION_FAILURE", "details": {}, "message": "Authentication failed",
                           "status": "error"}
    bearer = httpx.get(f"{zoho.handle.base_url}/crm/v8/org", headers={"Authorization": f"Bearer {zoho.token}"})
    assert bearer.status_code == 401 and bearer.json()["code"] == "AUTHENTICATION_FAILURE"


def test_unknown_and_expired_tokens_are_invalid_token(zoho: Zoho) -> None:
    unknown = httpx.get(f"{zoho.handle.base_url}/crm/v8/org", headers={"Authorization": "Zoho-oauthtoken 1000.x.y"})
    assert unknown.status_code == 401
    assert unknown.json() == {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token",
                              "status": "error"}
    assert zoho.get("/org").status_code == 200
    zoho.handle.advance_clock(3601)
    expired = zoho.get("/org")
    assert expired.status_code == 401 and expired.json()["code"] == "INVALID_TOKEN"
    assert Zoho(zoho.handle).get("/org").status_code == 200


def test_authorization_code_grant_issues_refresh_token_once(emulator: EmulatorHandle) -> None:
    code = emulator.grant_code("ZohoCRM.modules.ALL,ZohoCRM.users.READ")
    body = mint_token(emulator, grant_type="authorization_code", code=code)
    assert body["refresh_token"].startswith("1000.")
    assert body["scope"] == "ZohoCRM.modules.ALL ZohoCRM.users.READ"
    assert mint_token(emulator, grant_type="authorization_code", code=code) == {"error": "invalid_code"}
    again = mint_token(emulator, refresh_token=body["refresh_token"])
    assert "access_token" in again


def test_scope_mismatch_is_401(emulator: EmulatorHandle) -> None:
    code = emulator.grant_code("ZohoCRM.modules.contacts.READ,ZohoCRM.settings.fields.READ")
    token = mint_token(emulator, grant_type="authorization_code", code=code)["access_token"]
    limited = Zoho(emulator, token)
    assert limited.get("/Contacts", params={"fields": "Last_Name"}).status_code == 204
    for response in (limited.get("/settings/modules"), limited.get("/Leads", params={"fields": "Last_Name"}),
                     limited.post("/Contacts", json={"data": [{"Last_Name": "X"}]})):
        assert response.status_code == 401
        assert response.json() == {"code": "OAUTH_SCOPE_MISMATCH", "details": {},
                                   "message": "invalid oauth scope to access this URL", "status": "error"}
    assert limited.get("/settings/fields", params={"module": "Contacts"}).status_code == 200


def test_revoked_refresh_token_stops_minting(emulator: EmulatorHandle) -> None:
    code = emulator.grant_code("ZohoCRM.modules.ALL")
    refresh = mint_token(emulator, grant_type="authorization_code", code=code)["refresh_token"]
    response = httpx.post(f"{emulator.base_url}/oauth/v2/token/revoke", params={"token": refresh})
    assert response.json() == {"status": "success"}
    assert mint_token(emulator, refresh_token=refresh) == {"error": "invalid_code"}


def test_a_refresh_token_mints_at_most_ten_tokens_per_ten_minutes(own_emulator) -> None:  # type: ignore[no-untyped-def]
    handle = own_emulator()
    for _ in range(10):
        assert "access_token" in mint_token(handle)
    assert mint_token(handle)["error"] == "Access Denied"
    handle.advance_clock(601)
    assert "access_token" in mint_token(handle)


def test_credentials_from_the_environment_replace_the_demo_ones(own_emulator) -> None:  # type: ignore[no-untyped-def]
    mine = {"ZOHO_CLIENT_ID": "1000.PRACTICECLIENT", "ZOHO_CLIENT_SECRET": "practice-secret",
            "ZOHO_REFRESH_TOKEN": "1000.practice.refresh"}
    handle = own_emulator(credentials=mine)
    assert (handle.client_id, handle.refresh_token) == ("1000.PRACTICECLIENT", "1000.practice.refresh")
    assert "access_token" in mint_token(handle)
    demo = mint_token(handle, client_id="1000.EMULATORDEMOCLIENT0000000000000")
    assert demo == {"error": "invalid_client"}
    banner = (handle.data_dir / "emulator.log").read_text()
    assert "1000.PRACTICECLIENT" in banner and "practice-secret" not in banner
    assert "1000.practice.refresh" not in banner
