"""When to retry and how long to wait. Nothing else in the client decides either.

Zoho sends the same ``429 TOO_MANY_REQUESTS`` for "too many calls at once" and
"the day's credits are gone"; :func:`classify_429` tells them apart.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

import httpx

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

# Raised before the request left this process: repeating cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Throttle(Enum):
    CONCURRENCY = "concurrency"
    CREDITS = "credits"


def request_not_sent(exc: BaseException) -> bool:
    return isinstance(exc, _NOT_SENT)


def should_retry(*, status: int | None, exc: BaseException | None, idempotent: bool) -> bool:
    """Retry a 429 or a connect failure always (nothing happened server-side);
    a 5xx or a broken read only when repeating the call cannot duplicate a record."""
    if exc is not None:
        if request_not_sent(exc):
            return True
        return idempotent and isinstance(exc, httpx.TransportError)
    if status == 429:
        return True
    return idempotent and status in RETRYABLE_STATUS


def appending_fields(record: Mapping[str, Any]) -> list[str]:
    """Fields of a write whose rows Zoho appends: a list holding a row without an ``id``.

    Zoho adds a subform row sent without an id as a new row, whatever rows the record holds
    already (rows with an id are updated, ``{"id", "_delete": null}`` removes one, ``[]`` removes
    all): such a write, repeated after its answer was lost, holds every row twice. Any list of
    objects without ids is judged so, not only a subform: for a field whose list semantics we have
    not checked, a call sent once is the safe side.
    """
    return [
        name
        for name, value in record.items()
        if isinstance(value, list) and any(isinstance(row, Mapping) and not row.get("id") for row in value)
    ]


def appends_rows(records: Iterable[Mapping[str, Any]]) -> bool:
    """Would repeating this write add rows a second time? Then it is not idempotent."""
    return any(appending_fields(record) for record in records)


def backoff_seconds(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return (rng or random).uniform(0.0, ceiling)


def retry_after_seconds(headers: Mapping[str, str], cap: float) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, min(float(raw), cap))
    except ValueError:
        return None


def credits_remaining_header(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("x-api-credits-remaining")
    if raw is None:
        return None
    try:
        return int(float(raw))
    except ValueError:
        return None


_CREDIT_WORDS = ("credit", "24 hour", "24-hour", "daily", "per day", "api limit")
_CONCURRENCY_WORDS = ("concurren", "simultaneous", "parallel")


def classify_429(
    body: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    *,
    last_known_remaining: int | None,
    cost: int,
) -> Throttle:
    """Concurrency (back off and retry) or credits exhausted (wait for the window or stop).

    Evidence in order: the credits header on the 429 itself; the body's words
    (Zoho's one documented message names both causes, so a message naming only
    one of them decides, one naming both does not); then our own accounting.
    Anything still ambiguous is treated as concurrency, which is the safe guess:
    a wrong guess costs a few backed-off retries, after which the header or our
    accounting settles it.
    """
    remaining = credits_remaining_header(headers)
    if remaining is not None:
        return Throttle.CREDITS if remaining < max(cost, 1) else Throttle.CONCURRENCY
    text = ""
    if body:
        details = body.get("details")
        text = " ".join(
            str(part) for part in (body.get("code"), body.get("message"), details) if part
        ).lower()
    says_credits = any(word in text for word in _CREDIT_WORDS)
    says_concurrency = any(word in text for word in _CONCURRENCY_WORDS)
    if says_credits and not says_concurrency:
        return Throttle.CREDITS
    if says_concurrency and not says_credits:
        return Throttle.CONCURRENCY
    if last_known_remaining is not None and last_known_remaining < max(cost, 1):
        return Throttle.CREDITS
    return Throttle.CONCURRENCY
