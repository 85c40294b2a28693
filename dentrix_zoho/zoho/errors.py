"""Exceptions raised by the Zoho client. Messages carry numbers and codes, never data or tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dentrix_zoho.zoho.outcomes import RecordOutcome


class ZohoError(Exception):
    """A Zoho call failed; ``code`` is Zoho's error code when it gave one."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        # Set when a multi-batch write stops part-way: what was written, and what was not sent.
        self.outcomes: list[RecordOutcome] = []
        self.pending_indices: list[int] = []


class AuthError(ZohoError):
    """The token could not be minted or the token was refused after a refresh."""


class ZohoUnavailable(ZohoError):
    """Retries ran out on 429 (concurrency), 5xx or connection errors."""


class UncertainOutcome(ZohoError):
    """A non-idempotent call may or may not have been applied (5xx, dropped connection)."""


class BudgetExceeded(ZohoError):
    """A planned load does not fit the credits left; nothing was sent."""

    def __init__(self, message: str, *, needed: int, remaining: int | None, limit: int | None) -> None:
        super().__init__(message, code="BUDGET_EXCEEDED")
        self.needed = needed
        self.remaining = remaining
        self.limit = limit


class CreditsExhausted(ZohoError):
    """The org's credits ran out mid-run and the policy is ``stop``.

    Resumable: ``outcomes`` holds what was written before the stop and
    ``pending_indices`` the input positions still to send; call the same method
    again with those records (upserts are keyed, so a repeat is harmless).
    """

    def __init__(
        self,
        message: str,
        *,
        remaining: int | None,
        limit: int | None,
        needed: int | None = None,
        outcomes: Sequence[RecordOutcome] = (),
        pending_indices: Sequence[int] = (),
    ) -> None:
        super().__init__(message, status=429, code="CREDITS_EXHAUSTED")
        self.remaining = remaining
        self.limit = limit
        self.needed = needed
        self.outcomes = list(outcomes)
        self.pending_indices = list(pending_indices)

    def with_progress(
        self, outcomes: Sequence[RecordOutcome], pending_indices: Sequence[int]
    ) -> CreditsExhausted:
        done = len(outcomes)
        return CreditsExhausted(
            f"{self.args[0]} ({done} records done, {len(pending_indices)} pending; resumable)",
            remaining=self.remaining,
            limit=self.limit,
            needed=self.needed,
            outcomes=outcomes,
            pending_indices=pending_indices,
        )


class SchemaLimitExceeded(ZohoError):
    """``ensure_schema`` would pass the edition's custom-field, unique or subform limit.

    Raised before anything is created.
    """

    def __init__(self, message: str, *, fields: Sequence[str]) -> None:
        super().__init__(message, code="SCHEMA_LIMIT_EXCEEDED")
        self.fields = list(fields)
