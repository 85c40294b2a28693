"""Fixtures: one emulator subprocess per test session, reset before each test, driven by plain httpx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dentrix_zoho.zoho_emulator.testing import EmulatorHandle, running_emulator

_ACCOUNTS = httpx.Client(timeout=30)  # one pool: creating a client per call costs more than the call


def mint_token(handle: EmulatorHandle, **overrides: str) -> dict[str, Any]:
    form = {"grant_type": "refresh_token", "client_id": handle.client_id, "client_secret": handle.client_secret,
            "refresh_token": handle.refresh_token, **overrides}
    response = _ACCOUNTS.post(f"{handle.base_url}/oauth/v2/token", data=form)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


class Zoho:
    """A bare httpx client with a token: NOT the project's Zoho client (each checks the other)."""

    def __init__(self, handle: EmulatorHandle, token: str | None = None) -> None:
        self.handle = handle
        self.token = token or mint_token(handle)["access_token"]
        self.http = httpx.Client(base_url=f"{handle.base_url}/crm/v8", timeout=30,
                                 headers={"Authorization": f"Zoho-oauthtoken {self.token}"})

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.patch(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)

    def insert(self, module: str, *records: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.post(f"/{module}", json={"data": list(records), "trigger": []})
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def insert_ok(self, module: str, *records: dict[str, Any]) -> list[str]:
        results = self.insert(module, *records)
        assert all(r["status"] == "success" for r in results), results
        return [r["details"]["id"] for r in results]

    def users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = self.get("/users", params={"type": "ActiveUsers"}).json()["users"]
        return users


@pytest.fixture(scope="session")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path_factory.mktemp("emulator"), edition="enterprise", users=3,
                          extra_args=["--token-mint-limit", "0"]) as handle:
        yield handle


@pytest.fixture
def emulator(shared_emulator: EmulatorHandle) -> EmulatorHandle:
    shared_emulator.reset()
    shared_emulator.set_faults(None)
    return shared_emulator


@pytest.fixture
def zoho(emulator: EmulatorHandle) -> Iterator[Zoho]:
    client = Zoho(emulator)
    yield client
    client.http.close()


@pytest.fixture
def own_emulator(tmp_path: Path) -> Any:
    """Start a dedicated emulator with chosen options (for limits, editions, restarts)."""
    stack: list[Any] = []

    def start(**options: Any) -> EmulatorHandle:
        context = running_emulator(tmp_path / f"emu{len(stack)}", **options)
        handle = context.__enter__()
        stack.append(context)
        return handle

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)
