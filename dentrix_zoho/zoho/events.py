"""One structured event per HTTP attempt, for the ledger. No bodies, no values, no tokens."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

Outcome = Literal["ok", "partial", "error", "retry", "uncertain", "credits_exhausted"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiCallEvent:
    time: float  # epoch seconds when the attempt started
    method: str
    path_template: str  # e.g. /crm/v8/{module}/upsert: never the ids or the query
    module: str | None
    record_count: int
    status: int | None  # None when no response came back
    credits: int  # the documented cost of the call (0 when it was refused with 429)
    latency_ms: float
    outcome: Outcome
    attempt: int = 1
    error_code: str | None = None  # Zoho's code or the transport error's class name
    credits_remaining: int | None = None  # from X-API-CREDITS-REMAINING when sent

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


EventSink = Callable[[ApiCallEvent], None]


def log_event(event: ApiCallEvent) -> None:
    logger.debug(
        "zoho %s %s module=%s records=%d status=%s latency_ms=%.0f credits=%d outcome=%s attempt=%d%s",
        event.method,
        event.path_template,
        event.module,
        event.record_count,
        event.status,
        event.latency_ms,
        event.credits,
        event.outcome,
        event.attempt,
        f" code={event.error_code}" if event.error_code else "",
    )
