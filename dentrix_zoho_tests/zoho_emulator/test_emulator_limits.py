"""Credits, concurrency and the 429s that enforce them.

Zoho's documentation: https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from dentrix_zoho.zoho_emulator.errors import (
    CONCURRENCY_EXCEEDED_MESSAGE,
    CREDITS_EXCEEDED_MESSAGE,
    HEAVY_CONCURRENCY_EXCEEDED_MESSAGE,
)

from .conftest import Zoho


def test_default_credit_limits_follow_the_edition_formula(own_emulator) -> None:  # type: ignore[no-untyped-def]
    free = own_emulator(edition="free", users=3)
    assert free.usage()["credits"]["limit"] == 5_000
    assert free.usage()["concurrency"]["limit"] == 5
    standard = own_emulator(edition="standard", users=400)
    assert standard.usage()["credits"]["limit"] == 100_000  # 50 000 + 400 x 250 capped at 100 000


def test_write_costs_one_credit_per_ten_records_and_header_after_half(own_emulator) -> None:  # type: ignore[no-untyped-def]
    zoho = Zoho(own_emulator(credits=40))
    first = zoho.post("/Contacts", json={"data": [{"Last_Name": f"N{i}"} for i in range(100)]})
    assert first.status_code == 201 and "X-API-CREDITS-REMAINING" not in first.headers
    assert zoho.handle.usage()["credits"]["used_24h"] == 10
    second = zoho.post("/Contacts", json={"data": [{"Last_Name": f"M{i}"} for i in range(95)]})
    assert second.headers["X-API-CREDITS-REMAINING"] == "20"
    assert zoho.get("/Contacts", params={"fields": "Last_Name"}).headers["X-API-CREDITS-REMAINING"] == "19"


def test_exhausted_credits_answer_429_until_the_window_rolls(own_emulator) -> None:  # type: ignore[no-untyped-def]
    zoho = Zoho(own_emulator(credits=5))
    for _ in range(5):
        assert zoho.get("/org").status_code == 200
    refused = zoho.get("/org")
    assert refused.status_code == 429
    assert refused.json() == {"code": "TOO_MANY_REQUESTS", "details": {}, "message": CREDITS_EXCEEDED_MESSAGE,
                              "status": "error"}
    usage = zoho.handle.usage()
    assert usage["too_many_requests"]["credits"] == 1 and usage["too_many_requests"]["total"] == 1
    zoho.handle.advance_clock(24 * 3600 + 1)
    zoho = Zoho(zoho.handle)
    assert zoho.get("/org").status_code == 200


def _parallel(zoho: Zoho, count: int, request: callable) -> list[httpx.Response]:  # type: ignore[valid-type]
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: request(), range(count)))


def test_concurrency_beyond_the_edition_limit_is_429(own_emulator) -> None:  # type: ignore[no-untyped-def]
    zoho = Zoho(own_emulator(edition="free", latency_ms=1000))
    with httpx.Client(base_url=zoho.http.base_url, headers=zoho.http.headers,
                      limits=httpx.Limits(max_connections=20)) as http:
        responses = _parallel(zoho, 9, lambda: http.get("/org"))
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) >= 3 and sum(r.status_code == 200 for r in responses) <= 5
    assert all(r.json()["message"] == CONCURRENCY_EXCEEDED_MESSAGE for r in refused)
    usage = zoho.handle.usage()
    assert usage["concurrency"]["max_seen"] == 5 and usage["too_many_requests"]["concurrency"] == len(refused)


def test_heavy_cap_refuses_the_eleventh_concurrent_heavy_call(own_emulator) -> None:  # type: ignore[no-untyped-def]
    handle = own_emulator(edition="ultimate", latency_ms=1000)
    zoho = Zoho(handle)
    zoho.insert_ok("Leads", {"Last_Name": "A"})
    # Search is heavy; with latency each call holds its heavy slot while the others arrive.
    with httpx.Client(base_url=zoho.http.base_url, headers=zoho.http.headers, timeout=30,
                      limits=httpx.Limits(max_connections=20)) as http:
        responses = _parallel(zoho, 14, lambda: http.get("/Leads/search", params={"word": "A"}))
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) >= 2 and all(r.json()["message"] == HEAVY_CONCURRENCY_EXCEEDED_MESSAGE for r in refused)
    assert handle.usage()["concurrency"]["heavy_max_seen"] == 10
