"""The request pipeline every API route runs through: auth, concurrency, latency, faults, credits, logging."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from . import scopes as scope_rules
from .config import EmulatorConfig
from .engine import ExternalLookups, Org
from .errors import ApiError, authentication_failure, internal_error, invalid_module, invalid_token
from .faults import Fault, FaultPlan
from .limits import Limits
from .metadata import RECORD_MODULES
from .store import Clock

log = logging.getLogger(__name__)

JSON = "application/json;charset=UTF-8"
_MODULES_BY_LOWER = {m.lower(): m for m in RECORD_MODULES}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type=JSON)


def error_response(error: ApiError) -> Response:
    return json_response(error.body, error.status)


def no_content() -> Response:
    return Response(status_code=204)


class DroppedConnection(Response):
    """Announces a body and then ends the ASGI call without sending it: the server closes the
    connection and the client sees it drop mid-response."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", JSON.encode()), (b"content-length", b"1024")]})


class Emulator:
    """One emulated org and the machinery around it, shared by all routes."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.org = Org(config, self.clock)
        self.limits = Limits(config, self.clock)
        self.faults = FaultPlan(config.faults, config.seed)
        self._latency_rng = random.Random(config.seed + 1)
        self.token_mints: dict[str, deque[float]] = {}
        self.triggers: Counter[str] = Counter()
        self.background: set[asyncio.Task[Any]] = set()
        self.bulk_lock: asyncio.Lock | None = None  # bulk jobs run one at a time

    def latency(self) -> float:
        mean = self.config.latency_ms / 1000
        return mean * self._latency_rng.uniform(0.5, 1.5) if mean > 0 else 0.0

    def authenticate(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization")
        if not header or not header.startswith("Zoho-oauthtoken "):
            raise authentication_failure()
        token = self.org.state.access_tokens.get(header[len("Zoho-oauthtoken "):].strip())
        if token is None or token["expires_at"] <= self.clock.now():
            raise invalid_token()
        if token["user_id"] not in self.org.state.users or self.org.state.users[token["user_id"]]["status"] != "active":
            raise invalid_token()
        return token

    def fault_response(self, fault: Fault) -> Response:
        self.limits.faults[fault.kind + (":after" if fault.after_write else "")] += 1
        if fault.kind == "drop":
            return DroppedConnection()
        if fault.kind == "429":
            return error_response(ApiError(429, "TOO_MANY_REQUESTS",
                                           "Number of API requests for the 24 hour period is exceeded or the "
                                           "concurrency limit of the user for the app is exceeded"))
        if fault.kind == "500":
            return error_response(internal_error())
        status = int(fault.kind)
        return Response(f"<html><body><h1>{status} Service Temporarily Unavailable</h1></body></html>",
                        status, media_type="text/html")


@dataclass
class Call:
    """What a route handler knows about the call it serves."""

    emulator: Emulator
    request: Request
    user_id: str
    scopes: frozenset[str]
    heavy: bool = False

    @property
    def org(self) -> Org:
        return self.emulator.org

    @property
    def lookups(self) -> Org | ExternalLookups:
        header = self.request.headers.get("x-external")
        return ExternalLookups(self.emulator.org, header) if header else self.emulator.org

    def charge(self, credits: int, *, heavy: bool = False) -> None:
        if heavy and not self.heavy:
            self.emulator.limits.enter_heavy()
            self.heavy = True
        self.emulator.limits.charge(credits)

    def require_module(self, module: str, operation: str) -> None:
        scope_rules.require_module(self.scopes, module, operation)

    def require_any(self, *wanted: str) -> None:
        scope_rules.require_any(self.scopes, *wanted)

    def module(self, name: str | None = None, index: int = 0) -> str:
        raw = name if name is not None else self.request.path_params["module"]
        module = _MODULES_BY_LOWER.get(raw.lower())
        if module is None:
            raise invalid_module(index)
        return module

    async def json_body(self) -> Any:
        raw = await self.request.body()
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise ApiError(400, "INVALID_DATA", "the input json is invalid", {}) from None


Handler = Callable[[Request, Call], Awaitable[Response]]


def api(template: str, *, write: bool = False) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler in the pipeline. ``template`` names the endpoint in usage counts and logs;
    ``write`` marks calls whose injected faults may land after the write."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            emulator: Emulator = request.app.state.emulator
            started = time.perf_counter()
            name = f"{request.method} {template}"
            emulator.limits.calls[name] += 1
            try:
                response = await _run(emulator, request, handler, write)
            except ApiError as error:
                response = error_response(error)
            except Exception as exc:  # pragma: no cover - a bug; answer as Zoho would and keep serving
                # Type and place only: an exception's message may quote patient data.
                where = traceback.extract_tb(exc.__traceback__)[-1]
                log.error("unhandled %s in %s at %s:%d", type(exc).__name__, name, where.filename, where.lineno)
                response = error_response(internal_error())
            emulator.limits.statuses[response.status_code] += 1
            log.info("%s %d %.1fms", name, response.status_code, (time.perf_counter() - started) * 1000)
            return response

        return endpoint

    return wrap


async def _run(emulator: Emulator, request: Request, handler: Handler, write: bool) -> Response:
    token = emulator.authenticate(request)
    limits = emulator.limits
    limits.enter()
    try:
        fault = emulator.faults.draw(write)
        # Added latency is spent after the work, while the call still holds its concurrency slots,
        # so slow calls pile up against the limits the way they do on the real service.
        delay = emulator.latency()
        if fault is not None and fault.kind == "slow":
            limits.faults["slow"] += 1
            delay += emulator.config.slow_seconds
            fault = None
        if fault is not None and not fault.after_write:
            if delay:
                await asyncio.sleep(delay)
            return emulator.fault_response(fault)
        call = Call(emulator, request, token["user_id"], scope_rules.parse_scopes(token["scope"]))
        try:
            try:
                response = await handler(request, call)
            finally:
                if delay:
                    await asyncio.sleep(delay)
        finally:
            if call.heavy:
                limits.leave_heavy()
        if fault is not None:
            return emulator.fault_response(fault)
        remaining = limits.remaining_header()
        if remaining is not None:
            response.headers["X-API-CREDITS-REMAINING"] = remaining
        return response
    finally:
        limits.leave()
