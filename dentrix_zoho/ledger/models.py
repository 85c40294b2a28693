"""Plain value types that go in and out of the ledger.

Only ids, codes and counts cross this boundary for the audit log; patient data
lives in Zoho, in DuckDB staging and in the pre-images, never in audit entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

RunKind = Literal["sample", "full", "delta", "rollback"]
RunStatus = Literal["running", "succeeded", "failed", "stopped"]
Outcome = Literal["ok", "error", "uncertain", "skipped"]
QuarantineStatus = Literal["open", "resolved"]

RUN_KINDS: frozenset[str] = frozenset({"sample", "full", "delta", "rollback"})
RUN_STATUSES: frozenset[str] = frozenset({"running", "succeeded", "failed", "stopped"})
OUTCOMES: frozenset[str] = frozenset({"ok", "error", "uncertain", "skipped"})

# Operation names and codes are identifiers by construction, which keeps free
# text (and with it any chance of a patient's name) out of the audit log.
_OPERATION = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_VALUE_CLASS = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_REASON = 200


class LedgerError(Exception):
    """A ledger call was given something it refuses to store."""


class CrosswalkConflict(LedgerError):
    """Two source records claim the same Zoho record (e.g. an upsert merged them)."""


@dataclass(frozen=True, slots=True)
class CrosswalkRow:
    office_id: str
    source_object: str
    source_id: str
    zoho_module: str
    zoho_id: str
    row_hash: str | None
    last_run_id: str
    created_by_run: str | None
    first_written_at: str
    last_written_at: str
    zoho_modified_time: str | None
    parent_module: str | None = None
    parent_zoho_id: str | None = None
    deleted: bool = False
    deleted_by_run: str | None = None


@dataclass(frozen=True, slots=True)
class CrosswalkWrite:
    """One successful write to Zoho, as the loader reports it to the ledger."""

    source_object: str
    source_id: str
    module: str
    zoho_id: str
    row_hash: str | None
    created: bool
    zoho_modified_time: str | None = None
    # Attachments (and Notes) live under a parent record; deleting an
    # attachment needs the parent's module and id in the URL.
    parent_module: str | None = None
    parent_zoho_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    run_id: str
    operation: str
    module: str
    outcome: str
    source_id: str | None = None
    zoho_id: str | None = None
    code: str | None = None
    credits: int = 0
    http_status: int | None = None
    time: str | None = None  # ISO-8601 UTC; filled in by the ledger when None
    # Filled in when read back from the ledger.
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def validate(self) -> None:
        if not _OPERATION.match(self.operation):
            raise LedgerError(f"audit operation must be a lower-case identifier, got {self.operation!r}")
        if self.outcome not in OUTCOMES:
            raise LedgerError(f"audit outcome must be one of {sorted(OUTCOMES)}, got {self.outcome!r}")
        if self.code is not None and not _CODE.match(self.code):
            raise LedgerError("audit code must be an identifier-like code (no spaces, <= 64 chars)")
        if self.credits < 0:
            raise LedgerError("audit credits cannot be negative")


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A source record held back, with the *class* of the problem, never the value."""

    run_id: str
    office_id: str
    source_object: str
    source_id: str
    value_class: str
    reason: str
    field: str | None = None
    status: str = "open"
    id: int | None = None

    def validate(self) -> None:
        if not _VALUE_CLASS.match(self.value_class):
            raise LedgerError("quarantine value_class must be a lower-case code such as 'invalid_email'")
        if len(self.reason) > _MAX_REASON:
            raise LedgerError(f"quarantine reason longer than {_MAX_REASON} characters")
        if self.status not in ("open", "resolved"):
            raise LedgerError("quarantine status must be 'open' or 'resolved'")


@dataclass(frozen=True, slots=True)
class Approval:
    spec_hash: str
    approved_by: str
    approved_at: str
    spec_path: str | None
    # The one office the approval opens; None: every office.
    office_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    kind: str
    office_id: str
    started_at: str
    finished_at: str | None
    status: str
    spec_hash: str | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class PreImageRef:
    """Where a pre-image is, without its (patient-bearing) payload."""

    id: int
    run_id: str
    module: str
    zoho_id: str
    captured_at: str
    restored_by_run: str | None = None


@dataclass(frozen=True, slots=True)
class RunSummary:
    run: RunRow
    audit_entries: int
    errors: int
    credits: int
    records_written: int
    records_created: int
    by_module_outcome: dict[tuple[str, str, str], int] = field(default_factory=dict)


# -- patients seen at several offices (policy ``merge``) ---------------------------------------

SharedRole = Literal["created", "joined"]
MergeAction = Literal["send", "joined", "wait"]


@dataclass(frozen=True, slots=True)
class MergeMember:
    """One record of a cross-office group (the org-level audit's), by ids only."""

    group_key: str
    office_id: str
    source_object: str
    source_id: str
    basis: str  # "name", "phone", "email", comma-joined


@dataclass(frozen=True, slots=True)
class SharedOwner:
    """An office's hold on a Contact several offices share."""

    zoho_module: str
    zoho_id: str
    office_id: str
    source_object: str
    source_id: str
    role: str
    run_id: str
    row_hash: str | None
    since: str
    released: bool = False
    released_by_run: str | None = None


@dataclass(frozen=True, slots=True)
class MergeCandidate:
    """A row an office is about to upsert whose record is in a cross-office group."""

    source_object: str
    source_id: str
    row_hash: str
    group_key: str
    # The group's other records: (office, source object, source id).
    others: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class MergeDecision:
    """What the loader does with a candidate: send it, leave it joined to a shared Contact, or wait.

    ``code`` says why: CREATOR (its own Contact), CLAIMED (first of its group to load),
    AMBIGUOUS (its group already has two Contacts: sent as a record of its own), JOINED, REJOINED,
    STILL_JOINED, WAITING (another office's running load creates the group's Contact), IN_DOUBT
    (another office's ended run may have created it: its write was sent and never answered, so
    only that office's next run, adopting or sending again, settles the group).
    """

    source_id: str
    action: str
    code: str
    zoho_id: str | None = None
    # WAITING: the office whose load is creating the Contact.
    claimed_by_office: str | None = None
