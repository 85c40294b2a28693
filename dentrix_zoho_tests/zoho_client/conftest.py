"""Fixtures: the Zoho emulator in a subprocess on loopback, and clients pointed at it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.zoho import ApiCallEvent, ZohoClient, ZohoConfig
from dentrix_zoho.zoho.org_limits import OrgLimits, close_shared_org_limits
from dentrix_zoho.zoho.transport import CallSpec

SOURCE_ID_FIELD = {
    "field_label": "Source System ID",
    "data_type": "text",
    "length": 64,
    "unique": {"case_sensitive": False},
}


class Recorder:
    """An event sink that keeps every event (thread-safe enough: list.append is atomic)."""

    def __init__(self) -> None:
        self.events: list[ApiCallEvent] = []

    def __call__(self, event: ApiCallEvent) -> None:
        self.events.append(event)

    def where(self, **match: Any) -> list[ApiCallEvent]:
        return [e for e in self.events if all(getattr(e, k) == v for k, v in match.items())]


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    with contextlib.ExitStack() as stack:
        count = 0

        def start(**kwargs: Any) -> Any:
            nonlocal count
            count += 1
            return stack.enter_context(running_emulator(tmp_path / f"emu{count}", **kwargs))

        yield start


@pytest.fixture
def emulator(emulator_factory: Callable[..., Any]) -> Any:
    return emulator_factory()


def emulator_settings(handle: Any, **overrides: Any) -> dict[str, Any]:
    """``ZohoConfig`` fields for a client of the emulator ``handle``: its hosts and credentials, an
    Enterprise org of 5 users, and fast backoff; ``overrides`` on top."""
    return {
        "api_base": handle.base_url,
        "accounts_url": handle.base_url,
        "client_id": handle.client_id,
        "client_secret": handle.client_secret,
        "refresh_token": handle.refresh_token,
        "edition": "enterprise",
        "users": 5,
        "backoff_base": 0.005,
        "backoff_cap": 0.05,
        **overrides,
    }


def client_for(handle: Any, sink: Recorder | None = None, **overrides: Any) -> ZohoClient:
    settings = emulator_settings(handle, max_retries=12, bulk_poll_initial=0.05, bulk_poll_max=0.2)
    settings.update({k: v for k, v in overrides.items() if k not in ("sleep", "credit_sleep", "clock")})
    extra = {k: overrides[k] for k in ("sleep", "credit_sleep", "clock") if k in overrides}
    return ZohoClient(ZohoConfig(**settings), sink, **extra)


def contacts(n: int, start: int = 0, prefix: str = "P") -> list[dict[str, Any]]:
    return [
        {"Last_Name": f"Patient{i}", "Source_System_ID": f"{prefix}{i:06d}"} for i in range(start, start + n)
    ]


def stored(handle: Any, module: str) -> list[dict[str, Any]]:
    return list(handle.snapshot()["modules"].get(module, []))


def ids_written_once(handle: Any, module: str, expected: set[str]) -> bool:
    """Every expected Source_System_ID is stored exactly once and nothing else is."""
    keys = [r.get("Source_System_ID") for r in stored(handle, module)]
    return len(keys) == len(set(keys)) and set(keys) == expected


@pytest.fixture
def schema_ready() -> Callable[[ZohoClient], dict[str, str]]:
    def ready(client: ZohoClient, module: str = "Contacts") -> dict[str, str]:
        return client.ensure_schema(module, [SOURCE_ID_FIELD])

    return ready


class Kit:
    """Helpers handed to tests as a fixture (tests never import conftest)."""

    Recorder = Recorder
    SOURCE_ID_FIELD = SOURCE_ID_FIELD
    client_for = staticmethod(client_for)
    contacts = staticmethod(contacts)
    stored = staticmethod(stored)
    ids_written_once = staticmethod(ids_written_once)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit


# --- the org's shared limits (test_org_limits*.py) -----------------------------------------------

USERS = CallSpec(method="GET", path_template="/crm/v8/users", params={"type": "ActiveUsers"}, credits=1)


class FakeClock:
    """One clock for every member; a sleep moves it on (no real waiting), so a minute or a 24 h
    window passes at once. ``slept`` keeps each pause."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


@pytest.fixture(params=["postgresql", "sqlite"])
def org_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The org's database: a fresh one on the session's PostgreSQL server, or a SQLite file."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'org.sqlite'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def make_limits() -> Iterator[Callable[..., OrgLimits]]:
    """``make(url, org, **settings)``: one member of the org (a process's limits), closed after the test."""
    made: list[OrgLimits] = []

    def make(url: str, org: str = "org1", **kwargs: Any) -> OrgLimits:
        settings: dict[str, Any] = {"concurrency": 6, "heavy_cap": 3, "lease_seconds": 30.0, "sync_seconds": 0.2}
        settings.update(kwargs)
        limits = OrgLimits(url, org, **settings)
        made.append(limits)
        return limits

    yield make
    for limits in made:
        limits.close()
    close_shared_org_limits()
