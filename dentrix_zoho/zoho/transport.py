"""Every Zoho call goes through :meth:`Transport.call`: budget, pacing, auth, retries, events.

Callers describe a call with a :class:`CallSpec` (path *template* plus params)
and get the final ``httpx.Response`` back: a 2xx or a 4xx that retrying would
not change. 429, 5xx and connection errors are handled here and only here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from dentrix_zoho.zoho import logsafety, retry
from dentrix_zoho.zoho.auth import TokenCache, TokenManager
from dentrix_zoho.zoho.budget import CreditBudget
from dentrix_zoho.zoho.config import ZohoConfig
from dentrix_zoho.zoho.datacentres import check_base_url
from dentrix_zoho.zoho.errors import AuthError, UncertainOutcome, ZohoError, ZohoUnavailable
from dentrix_zoho.zoho.events import ApiCallEvent, EventSink, Outcome, log_event
from dentrix_zoho.zoho.limits import HEAVY_CALL_CAP
from dentrix_zoho.zoho.org_limits import OrgCreditBudget, OrgLimits, OrgMinute, shared_org_limits
from dentrix_zoho.zoho.throttle import ConcurrencyGates, MinuteRateLimiter

logger = logging.getLogger(__name__)

_REFRESH_AND_RETRY = frozenset({"INVALID_TOKEN", "AUTHENTICATION_FAILURE"})


@dataclass(frozen=True)
class CallSpec:
    method: str
    path_template: str  # "/crm/v8/{module}/upsert"; what events and logs show
    path_params: Mapping[str, str] = field(default_factory=dict)
    module: str | None = None
    params: Mapping[str, Any] | None = None
    json: Any = None
    files: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    record_count: int = 0
    credits: int = 1
    idempotent: bool = True  # False: a 5xx or broken read raises UncertainOutcome
    heavy: bool = False  # counts against Zoho's sub-concurrency cap of 10
    host: Literal["api", "upload"] = "api"
    absolute_url: str | None = None  # e.g. a bulk result's download_url; path_template still labels it

    def url(self, api_base: str, upload_base: str) -> str:
        if self.absolute_url is not None:
            return self.absolute_url
        path = self.path_template.format(**{k: quote(str(v), safe="") for k, v in self.path_params.items()})
        return (upload_base if self.host == "upload" else api_base) + path


def body_json(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {"data": payload}


def http_error(method: str, path_template: str, response: httpx.Response) -> ZohoError:
    """A final non-2xx answer as an exception: method, template, status and Zoho's code; no body."""
    payload = body_json(response)
    code = payload.get("code") if isinstance(payload.get("code"), str) else None
    return ZohoError(
        f"{method} {path_template}: HTTP {response.status_code} {code or ''}".rstrip(),
        status=response.status_code,
        code=code,
    )


class Transport:
    def __init__(
        self,
        config: ZohoConfig,
        *,
        event_sink: EventSink | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        credit_sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        token_cache: TokenCache | None = None,
        org_limits: OrgLimits | None = None,
        credit_clock: Callable[[], float] | None = None,
    ) -> None:
        """``org_limits``: the org's shared slots and credits; by default this process's shared instance
        for ``config.org_limits_url``, none when that is unset. ``credit_clock`` dates this client's own
        spends (tests)."""
        self.config = config
        logsafety.install()
        urls = config.urls()
        self._api_base = urls.api_base
        self._upload_base = urls.upload_url
        self._upload_follows_api = urls.upload_url == urls.api_base
        self._token_url = urls.token_url
        self._sink = event_sink
        self._sleep = sleep
        self._rng = rng or random.Random()
        concurrency = config.concurrency
        self.http = http or httpx.Client(
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.read_timeout,
            ),
            limits=httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2),
            follow_redirects=False,
        )
        if org_limits is None and config.org_limits_url is not None:
            org_limits = shared_org_limits(
                config.org_limits_url.get_secret_value(),
                config.pool_key,
                concurrency=concurrency,
                heavy_cap=min(HEAVY_CALL_CAP, concurrency),
                lease_seconds=config.org_lease_seconds,
                connect_timeout=config.connect_timeout,
            )
        self.org_limits = org_limits
        self.gates = ConcurrencyGates(
            concurrency, HEAVY_CALL_CAP, shared=org_limits.slots if org_limits is not None else None
        )
        # The per-minute ceiling: with the org's database, one count for every run of the org (taken
        # just before each send, see call()); without it, this process's own.
        self.org_minute: OrgMinute | None = (
            org_limits.minute(config.calls_per_minute)
            if org_limits is not None and config.calls_per_minute
            else None
        )
        self.rate_limiter = (
            MinuteRateLimiter(config.calls_per_minute, clock=clock, sleep=sleep)
            if config.calls_per_minute and self.org_minute is None
            else None
        )
        budget_settings: dict[str, Any] = {
            "daily_limit": config.daily_credits,
            "policy": config.on_budget_exhausted,
            "reserve": config.credit_reserve,
            "wait_step": config.credit_wait_seconds,
            "max_wait": config.max_credit_wait_seconds,
            "sleep": credit_sleep or sleep,
        }
        if credit_clock is not None:
            budget_settings["clock"] = credit_clock
        if org_limits is None:
            self.budget: CreditBudget = CreditBudget(**budget_settings)
        else:
            budget_settings["reserve"] = max(config.credit_reserve, config.org_credit_reserve_credits)
            self.budget = OrgCreditBudget(org_limits.credits, **budget_settings)
        self.auth = TokenManager(
            self.http,
            token_url=lambda: self._token_url,
            client_id=config.client_id,
            client_secret=config.client_secret,
            refresh_token=config.refresh_token,
            timeout=config.token_timeout,
            on_api_domain=self._follow_api_domain,
            emit=self._emit,
            shared=token_cache,
        )
        self._stats_lock = threading.Lock()
        self.calls = 0  # HTTP attempts against the API (token calls excluded)
        self.write_calls = 0  # of which writes (POST/PUT/PATCH/DELETE; COQL, a read sent as POST, excluded)
        self.latency_ewma_ms: float | None = None

    # -- endpoints -----------------------------------------------------------
    @property
    def api_base(self) -> str:
        return self._api_base

    @property
    def upload_base(self) -> str:
        return self._upload_base

    def _follow_api_domain(self, domain: str) -> None:
        """Zoho's multi-DC rule: call the domain the token response names."""
        try:
            domain = check_base_url(domain, "api_domain from the token response")
        except ValueError as exc:
            raise AuthError(str(exc)) from None
        if domain != self._api_base:
            logger.info("zoho api_domain changed by the token response; following it")
            self._api_base = domain
            if self._upload_follows_api:
                self._upload_base = domain

    # -- events --------------------------------------------------------------
    def _emit(self, event: ApiCallEvent) -> None:
        log_event(event)
        if self._sink is not None:
            try:
                self._sink(event)
            except Exception:  # a broken sink must not break a load
                logger.exception("zoho event sink failed")

    def _record(
        self,
        spec: CallSpec,
        started: float,
        t0: float,
        status: int | None,
        outcome: Outcome,
        attempt: int,
        code: str | None,
        credits: int,
        remaining: int | None,
    ) -> None:
        latency_ms = (time.perf_counter() - t0) * 1000
        with self._stats_lock:
            self.calls += 1
            if spec.method in ("POST", "PUT", "PATCH", "DELETE") and not spec.path_template.endswith("/coql"):
                self.write_calls += 1
            if status is not None:
                prev = self.latency_ewma_ms
                self.latency_ewma_ms = latency_ms if prev is None else 0.8 * prev + 0.2 * latency_ms
        self._emit(
            ApiCallEvent(
                time=started,
                method=spec.method,
                path_template=spec.path_template,
                module=spec.module,
                record_count=spec.record_count,
                status=status,
                credits=credits,
                latency_ms=latency_ms,
                outcome=outcome,
                attempt=attempt,
                error_code=code,
                credits_remaining=remaining,
            )
        )

    # -- the call ------------------------------------------------------------
    def _backoff(self, attempt: int, headers: Mapping[str, str] | None) -> None:
        wait = retry.retry_after_seconds(headers, self.config.backoff_cap) if headers else None
        if wait is None:
            wait = retry.backoff_seconds(
                attempt, base=self.config.backoff_base, cap=self.config.backoff_cap, rng=self._rng
            )
        self._sleep(wait)

    def call(self, spec: CallSpec) -> httpx.Response:
        attempt = 0
        refused: str | None = None  # the token Zoho last refused on this call
        while True:
            attempt += 1
            self.budget.before_call(spec.credits)
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            response: httpx.Response | None = None
            error: httpx.TransportError | None = None
            with self.gates.slot(spec.heavy):
                token = self.auth.token()
                if self.org_minute is not None:
                    # Last before the send, so the org's count dates this start within its allowance.
                    # A thread waiting here keeps its slot, but while the ceiling is reached no call
                    # of the org could start in it anyway.
                    self.org_minute.start()
                started, t0 = time.time(), time.perf_counter()
                try:
                    response = self.http.request(
                        spec.method,
                        spec.url(self._api_base, self._upload_base),
                        params=spec.params,
                        json=spec.json,
                        files=spec.files,
                        headers={"Authorization": f"Zoho-oauthtoken {token}", **spec.headers},
                    )
                except httpx.TransportError as exc:
                    error = exc

            if response is None:
                assert error is not None
                code = type(error).__name__
                if retry.should_retry(status=None, exc=error, idempotent=spec.idempotent):
                    if attempt <= self.config.max_retries:
                        self._record(spec, started, t0, None, "retry", attempt, code, 0, None)
                        self._backoff(attempt, None)
                        continue
                    self._record(spec, started, t0, None, "error", attempt, code, 0, None)
                    raise ZohoUnavailable(
                        f"{spec.method} {spec.path_template}: {code} after {attempt} attempts"
                    ) from None
                self._record(spec, started, t0, None, "uncertain", attempt, code, 0, None)
                raise UncertainOutcome(
                    f"{spec.method} {spec.path_template}: {code}; the write may have been applied",
                    code=code,
                ) from None

            status = response.status_code
            remaining = retry.credits_remaining_header(response.headers)
            if remaining is not None and (status in (401, 429) or status >= 500):
                self.budget.observe_remaining(remaining)
            payload = body_json(response) if status >= 400 else {}
            code = payload.get("code") if isinstance(payload.get("code"), str) else None

            if status == 401 and code in _REFRESH_AND_RETRY and token != refused:
                # Expired or sporadically refused token: refresh (single-flight) and repeat, once per
                # token, so a long credit pause that outlives a token still recovers.
                self._record(spec, started, t0, status, "retry", attempt, code, 0, remaining)
                self.auth.invalidate(token)
                refused = token
                attempt -= 1
                continue
            if status == 401:
                self._record(spec, started, t0, status, "error", attempt, code, 0, remaining)
                raise AuthError(
                    f"{spec.method} {spec.path_template}: 401 {code or ''}".strip(), status=401, code=code
                )

            if status == 429:
                kind = retry.classify_429(
                    payload,
                    response.headers,
                    last_known_remaining=self.budget.remaining(),
                    cost=spec.credits,
                )
                if kind is retry.Throttle.CREDITS:
                    self._record(spec, started, t0, status, "credits_exhausted", attempt, code, 0, remaining)
                    self.budget.exhausted(spec.credits, remaining)  # raises on "stop", sleeps on "pause"
                    attempt -= 1  # a pause is not a failed attempt
                    continue
                if attempt <= self.config.max_retries:
                    self._record(spec, started, t0, status, "retry", attempt, code, 0, remaining)
                    self._backoff(attempt, response.headers)
                    continue
                self._record(spec, started, t0, status, "error", attempt, code, 0, remaining)
                raise ZohoUnavailable(
                    f"{spec.method} {spec.path_template}: still 429 (concurrency) after {attempt} attempts",
                    status=429,
                    code=code,
                )

            if status >= 500:
                if retry.should_retry(status=status, exc=None, idempotent=spec.idempotent):
                    if attempt <= self.config.max_retries:
                        self._record(spec, started, t0, status, "retry", attempt, code, 0, remaining)
                        self._backoff(attempt, response.headers)
                        continue
                    self._record(spec, started, t0, status, "error", attempt, code, spec.credits, remaining)
                    self.budget.spend(spec.credits)
                    raise ZohoUnavailable(
                        f"{spec.method} {spec.path_template}: HTTP {status} after {attempt} attempts",
                        status=status,
                        code=code,
                    )
                self._record(spec, started, t0, status, "uncertain", attempt, code, spec.credits, remaining)
                self.budget.spend(spec.credits)
                raise UncertainOutcome(
                    f"{spec.method} {spec.path_template}: HTTP {status}; the write may have been applied",
                    status=status,
                    code=code,
                )

            # Zoho's figure already includes this call: count the spend first, then take the figure.
            self.budget.spend(spec.credits)
            if remaining is not None:
                self.budget.observe_remaining(remaining)
            outcome: Outcome = (
                "ok" if status < 300 and status != 207 else ("partial" if status == 207 else "error")
            )
            self._record(spec, started, t0, status, outcome, attempt, code, spec.credits, remaining)
            return response

    def close(self) -> None:
        self.http.close()
        if self.org_limits is not None:
            # The org instance outlives this client (the process shares it); its spends go in now.
            self.org_limits.credits.flush()
