"""What rollback needs from a Zoho client, and what it gets back per record.

The real client is adapted to this protocol; tests use an in-memory fake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Zoho answers a delete of an id that no longer exists with INVALID_DATA (per
# record); an adapter may also report NOT_FOUND. Either way the record is gone,
# which is what the rollback wanted.
ALREADY_GONE_CODES: frozenset[str] = frozenset({"INVALID_DATA", "NOT_FOUND", "RECORD_NOT_FOUND", "ALREADY_DELETED"})


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """Zoho's answer for one record of a write call."""

    zoho_id: str
    ok: bool
    code: str  # SUCCESS, INVALID_DATA, ...
    http_status: int | None = None
    modified_time: str | None = None  # Modified_Time after an update, when Zoho returns it


class RollbackWriter(Protocol):
    # Calls the fetches made so far (the rollback's bill counts them).
    fetch_calls: int

    def fetch(self, module: str, ids: Sequence[str], fields: Sequence[str], *,
              expected: Mapping[str, Mapping[str, Any]] | None = None) -> Mapping[str, Mapping[str, Any]]:
        """Current records by id, with at least ``fields`` (always Modified_Time and
        Modified_By; for restores also the restored fields); ids that no longer
        exist are absent. For restores ``expected`` gives each record's pre-image, so that
        an adapter reads whole (GET by id) only the records whose pre-image holds what a
        list call cannot show (a subform); the rest go as list calls with ``ids=``
        (≤ 100 ids, split where Zoho's 50-field cap demands)."""
        ...

    def delete(self, module: str, ids: Sequence[str]) -> Sequence[WriteOutcome]:
        """DELETE /{module}?ids=… with at most 100 ids; one outcome per id."""
        ...

    def update(self, module: str, records: Sequence[Mapping[str, Any]]) -> Sequence[WriteOutcome]:
        """PUT /{module} with at most 100 records, each carrying ``id``; one outcome per record."""
        ...

    def delete_attachment(self, parent_module: str, parent_id: str, attachment_id: str) -> WriteOutcome:
        """DELETE /{parent_module}/{parent_id}/Attachments/{attachment_id}."""
        ...
