"""Everything the loader tells the ledger: per batch, the crosswalk, the audit log and the quarantine.

A batch's records (crosswalk writes, audit entries, new quarantine rows, resolutions) go in one
ledger transaction (``Ledger.record_batch``): a kill leaves all of a batch or none of it. Send
intents are the exception by design: each is committed on its own before its call goes out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dentrix_zoho.ledger import AuditEntry, CrosswalkWrite, Ledger, QuarantineRow
from dentrix_zoho.ledger.ledger import INTENT_OPERATION

_CODE = re.compile(r"[^A-Za-z0-9_.\-]")
_CLASS = re.compile(r"[^a-z0-9_]")


def audit_code(code: str | None) -> str | None:
    if code is None:
        return None
    cleaned = _CODE.sub("_", code)[:64]
    return cleaned or None


def value_class_code(text: str) -> str:
    cleaned = _CLASS.sub("_", text.lower()).strip("_")[:64] or "unknown"
    return cleaned if cleaned[0].isalpha() else f"v_{cleaned}"[:64]


@dataclass
class BatchRecord:
    """What one batch leaves in the ledger."""

    writes: list[CrosswalkWrite] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    quarantine: list[QuarantineRow] = field(default_factory=list)
    resolved_sources: list[tuple[str, str]] = field(default_factory=list)  # (source_object, source_id)


class LedgerWriter:
    """Commits batches, keeps the quarantine free of repeats, and reads back send intents."""

    def __init__(self, ledger: Ledger, run_id: str, office_id: str) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.office_id = office_id
        self._open: dict[tuple[str, str], list[QuarantineRow]] | None = None
        self._held: set[str] | None = None
        self._announced: dict[str, set[str]] = {}  # module -> source ids this writer committed intents for
        # module -> source ids this run claimed a cross-office group for (``load/cross_office.py``):
        # their intents go only while the run still holds the claims (``Ledger.announce_claimed``).
        self._claimed: dict[str, set[str]] = {}

    def _open_quarantine(self) -> dict[tuple[str, str], list[QuarantineRow]]:
        if self._open is None:
            self._open = {}
            for row in self.ledger.quarantine_rows(status="open", office_id=self.office_id):
                self._open.setdefault((row.source_object, row.source_id), []).append(row)
        return self._open

    def commit(self, batch: BatchRecord) -> list[str]:
        """Write one batch in one ledger transaction; returns crosswalk conflicts (the caller has already
        quarantined nothing for them)."""
        open_rows = self._open_quarantine()
        pending: dict[tuple[str, str], list[QuarantineRow]] = {}
        fresh: list[QuarantineRow] = []
        for row in batch.quarantine:
            key = (row.source_object, row.source_id)
            known = [*open_rows.get(key, ()), *pending.get(key, ())]
            if any((k.field, k.reason) == (row.field, row.reason) for k in known):
                continue
            fresh.append(row)
            pending.setdefault(key, []).append(row)
        resolving = [k for k in dict.fromkeys(batch.resolved_sources) if k in open_rows or k in pending]
        conflicts = self.ledger.record_batch(self.run_id, self.office_id, writes=batch.writes, audit=batch.audit,
                                             quarantine=fresh, resolve=resolving)
        # The cache follows what the transaction committed, only once it has.
        for key, rows in pending.items():
            open_rows.setdefault(key, []).extend(rows)
        for k in resolving:
            open_rows.pop(k, None)
        if fresh or resolving:
            self._held = None
        return conflicts

    def resolve(self, sources: Iterable[tuple[str, str]]) -> int:
        """A record that loads now is no longer quarantined; returns how many source records were taken out."""
        open_rows = self._open_quarantine()
        keys = [k for k in dict.fromkeys(sources) if k in open_rows]
        if not keys:
            return 0
        self.ledger.record_batch(self.run_id, self.office_id, resolve=keys)
        for k in keys:
            open_rows.pop(k, None)
        self._held = None
        return len(keys)

    def is_quarantined(self, source_object: str, source_id: str) -> bool:
        return (source_object, source_id) in self._open_quarantine()

    def open_rows(self, source_object: str, source_id: str) -> list[QuarantineRow]:
        return list(self._open_quarantine().get((source_object, source_id), []))

    def held_back(self, source_id: str) -> bool:
        """Is this source record (any object) in the open quarantine?"""
        if self._held is None:
            self._held = {sid for _, sid in self._open_quarantine()}
        return source_id in self._held

    def record_intent(self, module: str, source_ids: Sequence[str]) -> None:
        """Before every write call (one insert, committed before the call goes out): a resume learns
        that the write may have landed though the ledger never heard the answer. Upserts: the record
        is ours if Zoho then says "update" and nothing else claims it; Notes and Attachments: looked
        for among the parent's children before they are sent again; an update: its stamp is not a
        person's edit (``ledger/human_edits.py``). A batch with a row whose merge claim the run lost
        (the run was marked ended while this process ran) raises ``ClaimLost``: nothing of it goes."""
        entries = [AuditEntry(self.run_id, INTENT_OPERATION, module, "uncertain", source_id=sid) for sid in source_ids]
        claimed = self._claimed.get(module, set()).intersection(source_ids)
        if claimed:
            self.ledger.announce_claimed(entries, self.office_id, claimed)
        else:
            self.ledger.append_audit_many(entries)
        self._announced.setdefault(module, set()).update(source_ids)

    def hold_claims(self, module: str, source_ids: Iterable[str]) -> None:
        """Rows this run claimed a cross-office group for: their writes go only while it holds the claims."""
        self._claimed.setdefault(module, set()).update(source_ids)

    def announced(self, module: str, source_id: str) -> bool:
        """Did this writer commit an intent for the record (so before any call that wrote it)?"""
        return source_id in self._announced.get(module, ())

    def intents(self, module: str, source_ids: Iterable[str]) -> dict[str, str]:
        """Source ids some run announced a write for, with the time of the latest announcement."""
        return self.ledger.latest_intents(module, source_ids)


def api_call_sink(ledger: Ledger, run_id: str) -> Callable[[Any], None]:
    """An event sink for ``ZohoClient(config, event_sink=...)`` that stores every call in the ledger.

    The client's ``ApiCallEvent`` says ``status``; the ledger's table says ``http_status``.
    """

    def sink(event: Any) -> None:
        values = event.as_dict() if hasattr(event, "as_dict") else dict(event)
        values.setdefault("http_status", values.get("status"))
        ledger.record_api_call(run_id, values)

    return sink
