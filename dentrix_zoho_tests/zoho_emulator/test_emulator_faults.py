"""Injected faults: deterministic under a seed, before or after the write, every kind."""

from __future__ import annotations

import httpx
import pytest

from dentrix_zoho.zoho_emulator.faults import FaultPlan, FaultSpecError, parse_fault_spec

from .conftest import Zoho


def test_fault_spec_parsing() -> None:
    assert parse_fault_spec("429=0.10,500=0.02,503=0.01,drop=0.01,slow=0.01") == {
        "429": 0.10, "500": 0.02, "503": 0.01, "drop": 0.01, "slow": 0.01}
    for bad in ("404=0.1", "500", "500=x", "500=1.5", "500=0.6,503=0.6"):
        with pytest.raises(FaultSpecError):
            parse_fault_spec(bad)


def test_same_seed_same_faults() -> None:
    def sequence(seed: int) -> list[object]:
        plan = FaultPlan("429=0.2,500=0.2,drop=0.1", seed)
        return [plan.draw(is_write=True) for _ in range(200)]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)
    kinds = {f.kind for f in sequence(7) if f}
    afters = {f.after_write for f in sequence(7) if f and f.kind != "429"}
    assert kinds == {"429", "500", "drop"} and afters == {True, False}


def _statuses(zoho: Zoho, calls: int) -> list[int | str]:
    out: list[int | str] = []
    for i in range(calls):
        try:
            out.append(zoho.post("/Leads", json={"data": [{"Last_Name": f"N{i}"}]}).status_code)
        except httpx.TransportError:
            out.append("drop")
    return out


def test_fault_sequence_repeats_exactly_under_a_seed(zoho: Zoho) -> None:
    zoho.handle.set_faults("429=0.2,500=0.1,502=0.05,503=0.1,drop=0.1", seed=3)
    first = _statuses(zoho, 60)
    zoho.handle.set_faults("429=0.2,500=0.1,502=0.05,503=0.1,drop=0.1", seed=3)
    second = _statuses(zoho, 60)
    assert first == second
    assert {429, 500, 502, 503, "drop", 201} <= set(first)


def test_faults_land_both_before_and_after_the_write(zoho: Zoho) -> None:
    zoho.handle.set_faults("500=1.0", seed=1)
    statuses = _statuses(zoho, 30)
    zoho.handle.set_faults(None)
    assert statuses == [500] * 30
    stored = zoho.get("/Leads/actions/count").json()["count"]
    assert 0 < stored < 30  # some written although the client saw 500, some not
    usage = zoho.handle.usage()["faults_injected"]
    assert usage["500:after"] == stored and usage["500"] == 30 - stored


def test_injected_errors_look_like_zoho(zoho: Zoho) -> None:
    zoho.handle.set_faults("429=1.0")
    throttled = zoho.get("/org")
    assert throttled.status_code == 429 and throttled.json()["code"] == "TOO_MANY_REQUESTS"
    zoho.handle.set_faults("500=1.0")
    assert zoho.get("/org").json() == {"code": "INTERNAL_ERROR", "details": {}, "message": "Internal Server Error",
                                       "status": "error"}
    zoho.handle.set_faults("503=1.0")
    assert zoho.get("/org").status_code == 503
    zoho.handle.set_faults("drop=1.0")
    with pytest.raises(httpx.TransportError):
        zoho.get("/org")
    zoho.handle.set_faults(None)
    assert zoho.get("/org").status_code == 200
    assert zoho.handle.usage()["statuses"]["429"] == 1
