"""Narrow mechanics with httpx.MockTransport: whole-batch isolation, token errors, api_domain rules.

Everything here that the emulator can show is also proven over real HTTP in test_zoho_emulator_*.py;
the emulator answers every per-record problem per record, so the whole-batch split lives here.
"""

from __future__ import annotations

import json
import logging
import threading

import httpx
import pytest

from dentrix_zoho.zoho import AuthError, ZohoClient, ZohoConfig, ZohoError

BASE = "http://127.0.0.1:1"


def _config(**over) -> ZohoConfig:
    return ZohoConfig(
        api_base=BASE,
        accounts_url=BASE,
        client_id="cid",
        client_secret="very-secret",
        refresh_token="refresh-secret",
        backoff_base=0.0,
        **over,
    )


class FakeZoho:
    """Just enough of Zoho for one mechanic: tokens, and a write endpoint that a poisoned record breaks."""

    def __init__(self, *, culprit_path: bool = False, token_body: dict | None = None) -> None:
        self.culprit_path = culprit_path
        self.token_body = token_body
        self.write_sizes: list[int] = []
        self.token_calls = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            with self.lock:
                self.token_calls += 1
            body = self.token_body or {
                "access_token": f"tok{self.token_calls}",
                "expires_in": 3600,
                "api_domain": BASE,
                "token_type": "Bearer",
            }
            return httpx.Response(200, json=body)
        if request.url.path.endswith("/upsert") and "/Nowhere/" not in request.url.path:
            data = json.loads(request.content)["data"]
            with self.lock:
                self.write_sizes.append(len(data))
            bad = [i for i, r in enumerate(data) if r.get("Date_of_Birth") == "1990-02-30"]
            if bad:
                details = {"api_name": "Date_of_Birth"}
                if self.culprit_path:
                    details["json_path"] = f"$.data[{bad[0]}].Date_of_Birth"
                return httpx.Response(
                    400,
                    json={
                        "code": "INVALID_DATA",
                        "details": details,
                        "message": "invalid data",
                        "status": "error",
                    },
                )
            return httpx.Response(
                200,
                json={
                    "data": [
                        {
                            "code": "SUCCESS",
                            "action": "insert",
                            "details": {"id": str(1000 + i)},
                            "message": "record added",
                            "status": "success",
                        }
                        for i, _ in enumerate(data)
                    ]
                },
            )
        with self.lock:
            self.write_sizes.append(0)  # a rejected request that no record caused
        return httpx.Response(
            400,
            json={
                "code": "INVALID_MODULE",
                "details": {"resource_path_index": 0},
                "message": "the module name given seems to be invalid",
                "status": "error",
            },
        )


def _client(fake: FakeZoho, **over) -> ZohoClient:
    return ZohoClient(_config(**over), http=httpx.Client(transport=httpx.MockTransport(fake)))


def _records(n: int, poisoned: int) -> list[dict]:
    rows = [{"Last_Name": f"N{i}", "Source_System_ID": f"S{i}"} for i in range(n)]
    rows[poisoned]["Date_of_Birth"] = "1990-02-30"
    return rows


def test_whole_batch_rejection_is_split_down_to_the_bad_record():
    fake = FakeZoho()
    with _client(fake) as client:
        out = client.upsert("Contacts", _records(100, poisoned=37))
    assert [o.index for o in out] == list(range(100))
    assert [o.index for o in out if not o.ok] == [37]
    assert (out[37].code, out[37].api_name) == ("INVALID_DATA", "Date_of_Birth")
    assert all(o.ok for i, o in enumerate(out) if i != 37)
    # Bisection: one failed call per level on the bad side, log2(100) levels; good halves go once.
    assert len(fake.write_sizes) <= 2 * 7 + 1
    assert sum(size for size in fake.write_sizes if size) >= 100


def test_json_path_names_the_culprit_directly():
    fake = FakeZoho(culprit_path=True)
    with _client(fake) as client:
        out = client.upsert("Contacts", _records(100, poisoned=5))
    assert [o.index for o in out if not o.ok] == [5]
    assert fake.write_sizes == [100, 99]


def test_request_level_error_is_not_split():
    fake = FakeZoho()
    with _client(fake) as client, pytest.raises(ZohoError, match="INVALID_MODULE"):
        client.upsert("Nowhere", _records(100, poisoned=0))
    assert fake.write_sizes == [0]


def test_token_error_with_http_200_raises_without_secrets():
    fake = FakeZoho(token_body={"error": "invalid_client"})
    with _client(fake) as client, pytest.raises(AuthError) as info:
        client.org()
    text = str(info.value)
    assert "invalid_client" in text and "very-secret" not in text and "refresh-secret" not in text


def test_api_domain_over_plain_http_off_loopback_is_refused():
    fake = FakeZoho(
        token_body={"access_token": "t", "expires_in": 3600, "api_domain": "http://crm.example.org"}
    )
    with _client(fake) as client, pytest.raises(AuthError, match="https"):
        client.org()


def test_single_flight_refresh_with_many_threads():
    fake = FakeZoho()
    with _client(fake) as client:
        barrier = threading.Barrier(20)

        def grab() -> None:
            barrier.wait()
            client.transport.auth.token()

        threads = [threading.Thread(target=grab) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert fake.token_calls == 1


def test_refresh_waiters_give_up_after_the_timeout():
    started = threading.Event()
    release = threading.Event()

    def slow_token(request: httpx.Request) -> httpx.Response:
        started.set()
        release.wait(5)
        return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})

    client = ZohoClient(
        _config(token_timeout=0.2), http=httpx.Client(transport=httpx.MockTransport(slow_token))
    )
    first = threading.Thread(target=client.transport.auth.token)
    first.start()
    started.wait(5)
    with pytest.raises(AuthError, match="timed out"):
        client.transport.auth.token()
    release.set()
    first.join()
    client.close()


def test_logs_carry_templates_not_values(caplog):
    fake = FakeZoho()
    caplog.set_level(logging.DEBUG, logger="dentrix_zoho")
    with _client(fake) as client:
        client.upsert("Contacts", _records(3, poisoned=1))
    assert "/crm/v8/{module}/upsert" in caplog.text
    for secret in ("tok1", "very-secret", "refresh-secret", "S0", "N2", "1990-02-30"):
        assert secret not in caplog.text


@pytest.mark.parametrize("dc", ["US", "EU", "IN", "AU", "JP", "CN", "CA", "SA"])
def test_each_data_centre_mints_at_its_accounts_server_then_calls_the_named_api_domain(dc):
    from dentrix_zoho.zoho.datacentres import dc_urls

    urls = dc_urls(dc, "sandbox")
    seen: list[str] = []

    def zoho(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.scheme}://{request.url.host}{request.url.path}")
        if request.url.path == "/oauth/v2/token":
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            assert b"grant_type=refresh_token" in request.content
            return httpx.Response(
                200, json={"access_token": "t", "expires_in": 3600, "api_domain": urls.api_base}
            )
        assert request.headers["authorization"] == "Zoho-oauthtoken t"
        return httpx.Response(200, json={"org": [{"zgid": "1"}]})

    config = ZohoConfig(dc=dc, environment="sandbox", client_id="c", client_secret="s", refresh_token="r")
    with ZohoClient(config, http=httpx.Client(transport=httpx.MockTransport(zoho))) as client:
        client.org()
        assert client.transport.upload_base == urls.upload_url
    assert seen == [f"POST {urls.accounts_url}/oauth/v2/token", f"GET {urls.api_base}/crm/v8/org"]


def test_uncertain_insert_keeps_found_records_when_the_resend_runs_out_of_retries():
    """A 500 after half the batch landed; the lookup finds that half; the resend then meets only 429s."""
    posts: list[int] = []

    def zoho(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.url.path == "/crm/v8/coql":
            query = json.loads(request.content)["select_query"]
            landed = [f"S{i}" for i in range(5) if f"'S{i}'" in query]
            return httpx.Response(
                200, json={"data": [{"id": f"9{k[1:]}", "Source_System_ID": k} for k in landed]}
            )
        posts.append(len(json.loads(request.content)["data"]))
        if len(posts) == 1:
            return httpx.Response(500, json={"code": "INTERNAL_ERROR", "details": {}, "status": "error"})
        return httpx.Response(429, json={"code": "TOO_MANY_REQUESTS", "details": {}, "status": "error"})

    config = _config(max_retries=2)
    with ZohoClient(
        config, http=httpx.Client(transport=httpx.MockTransport(zoho)), sleep=lambda s: None
    ) as c:
        out = c.insert("Contacts", _records(10, poisoned=9), lookup_field="Source_System_ID")
    assert posts == [10, 5, 5, 5]  # one uncertain insert, then only the 5 missing, 3 attempts
    assert [(o.ok, o.zoho_id) for o in out[:5]] == [(True, f"9{i}") for i in range(5)]
    assert all(not o.ok and not o.uncertain and o.details.get("retryable") for o in out[5:])
