"""OAuth access tokens: one refresh at a time, bounded in time, following ``api_domain``.

Many threads ask for a token; when it is missing or about to expire, exactly
one of them refreshes and the rest wait (at most ``timeout`` seconds) for its
result. Zoho reports token errors with HTTP 200 and an ``error`` key.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from dentrix_zoho.zoho.errors import AuthError
from dentrix_zoho.zoho.events import ApiCallEvent

logger = logging.getLogger(__name__)

EXPIRY_SKEW_SECONDS = 60.0  # refresh this long before Zoho would refuse the token
TOKEN_PATH = "/oauth/v2/token"


class TokenCache:
    """Access tokens shared by every client of this process.

    Zoho lets one refresh token mint only 10 access tokens per 10 minutes; a
    pipeline that builds a client per asset would run out. Clients with the
    same token URL, client id and refresh token therefore reuse one token.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, int], tuple[str, float, str | None]] = {}

    def get(self, key: tuple[str, int]) -> tuple[str, float, str | None] | None:
        with self._lock:
            return self._tokens.get(key)

    def put(self, key: tuple[str, int], token: str, expires_at: float, api_domain: str | None) -> None:
        with self._lock:
            self._tokens[key] = (token, expires_at, api_domain)

    def drop(self, key: tuple[str, int], token: str) -> None:
        with self._lock:
            if key in self._tokens and self._tokens[key][0] == token:
                del self._tokens[key]


# Pass as ``token_cache=`` to clients that should share tokens (the Dagster resource does).
SHARED_TOKENS = TokenCache()


class TokenManager:
    def __init__(
        self,
        http: httpx.Client,
        *,
        token_url: Callable[[], str],
        client_id: str,
        client_secret: SecretStr,
        refresh_token: SecretStr,
        timeout: float,
        on_api_domain: Callable[[str], None],
        emit: Callable[[ApiCallEvent], None],
        clock: Callable[[], float] = time.monotonic,
        shared: TokenCache | None = None,
    ) -> None:
        self._http = http
        self._shared = shared
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._timeout = timeout
        self._on_api_domain = on_api_domain
        self._emit = emit
        self._clock = clock
        self._refresh_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._access_token: str | None = None
        self._expires_at = 0.0
        self.refresh_count = 0
        # Keyed by a digest (never the secret itself) and by the clock, whose readings only compare
        # with themselves.
        self._secret_digest = hashlib.sha256(
            "\x1f".join((client_id, refresh_token.get_secret_value())).encode()
        ).hexdigest()

    @property
    def _shared_key(self) -> tuple[str, int]:
        return (f"{self._token_url()}|{self._secret_digest}", id(self._clock))

    def _fresh(self) -> str | None:
        with self._state_lock:
            token, expires_at = self._access_token, self._expires_at
        if token is not None and expires_at - self._clock() > EXPIRY_SKEW_SECONDS:
            return token
        shared = self._shared.get(self._shared_key) if self._shared is not None else None
        if shared is not None and shared[1] - self._clock() > EXPIRY_SKEW_SECONDS:
            with self._state_lock:
                self._access_token, self._expires_at = shared[0], shared[1]
            if shared[2]:
                self._on_api_domain(shared[2])
            return shared[0]
        return None

    def token(self) -> str:
        return self._fresh() or self._refresh(stale=self._access_token)

    def invalidate(self, used: str) -> None:
        """Zoho refused ``used``; the next ``token()`` refreshes unless someone already did."""
        with self._state_lock:
            if self._access_token == used:
                self._expires_at = 0.0
        if self._shared is not None:
            self._shared.drop(self._shared_key, used)

    def _refresh(self, stale: str | None) -> str:
        if not self._refresh_lock.acquire(timeout=self._timeout):
            raise AuthError(f"timed out after {self._timeout:.0f} s waiting for a token refresh")
        try:
            # Another thread may have refreshed while we waited for the lock.
            token = self._fresh()
            if token is not None and token != stale:
                return token
            return self._mint()
        finally:
            self._refresh_lock.release()

    def _mint(self) -> str:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "refresh_token": self._refresh_token.get_secret_value(),
        }
        last_error = "no attempt"
        for attempt in (1, 2):
            started, t0 = time.time(), time.perf_counter()
            status: int | None = None
            try:
                response = self._http.post(self._token_url(), data=form, timeout=self._timeout)
                status = response.status_code
            except httpx.TransportError as exc:
                last_error = type(exc).__name__
                self._event(started, t0, None, "retry" if attempt == 1 else "error", attempt, last_error)
                continue
            payload = _json(response)
            access = payload.get("access_token")
            if status >= 500:
                last_error = f"HTTP {status}"
                self._event(started, t0, status, "retry" if attempt == 1 else "error", attempt, last_error)
                continue
            if status != 200 or not isinstance(access, str):
                # Zoho's error word (invalid_client, invalid_code…) is safe to show; the body is not.
                error = payload.get("error") if isinstance(payload.get("error"), str) else f"HTTP {status}"
                self._event(started, t0, status, "error", attempt, error)
                raise AuthError(f"Zoho refused the token refresh: {error}", status=status, code=error)
            with self._state_lock:
                self._access_token = access
                self._expires_at = self._clock() + _expires_in(payload)
                self.refresh_count += 1
            domain = payload.get("api_domain")
            if isinstance(domain, str) and domain:
                self._on_api_domain(domain)
            if self._shared is not None:
                self._shared.put(
                    self._shared_key, access, self._expires_at, domain if isinstance(domain, str) and domain else None
                )
            self._event(started, t0, status, "ok", attempt, None)
            logger.info("zoho access token refreshed (refresh #%d)", self.refresh_count)
            return access
        raise AuthError(f"token refresh failed: {last_error}")

    def _event(
        self, started: float, t0: float, status: int | None, outcome: str, attempt: int, code: str | None
    ) -> None:
        self._emit(
            ApiCallEvent(
                time=started,
                method="POST",
                path_template=TOKEN_PATH,
                module=None,
                record_count=0,
                status=status,
                credits=0,
                latency_ms=(time.perf_counter() - t0) * 1000,
                outcome=outcome,  # type: ignore[arg-type]
                attempt=attempt,
                error_code=code,
            )
        )


def _json(response: httpx.Response) -> dict:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _expires_in(payload: dict) -> float:
    """Seconds of validity; old responses gave ``expires_in`` in ms next to ``expires_in_sec``."""
    if isinstance(payload.get("expires_in_sec"), (int, float)):
        return float(payload["expires_in_sec"])
    value = payload.get("expires_in")
    if isinstance(value, (int, float)) and value > 0:
        return float(value) / 1000 if value > 86_400 else float(value)
    return 3600.0
