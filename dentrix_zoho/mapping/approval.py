"""The approval gate: a person approves the exact spec (its content hash) before the full load.

Approvals live in the migration ledger (``Ledger.record_approval`` / ``approval_for``). The
hash is of the parsed, canonical spec, so a comment or layout change does not void an
approval but any change to what the map does does: the new content has a new hash, which
nobody has approved.

An approval opens one office (a dental group reviews one office's sample, then opens that
office) or every office (no office named). The gate for an office passes when the current
hash is approved for that office or for every office.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dentrix_zoho.ledger.models import Approval, RunRow
from dentrix_zoho.mapping.spec import MappingSpec, default_spec_path, load_spec, spec_hash


class ApprovalLedger(Protocol):
    """What the gate needs from the ledger (``dentrix_zoho.ledger.Ledger`` provides it)."""

    def record_approval(self, spec_hash: str, approved_by: str, spec_path: str | None = None,
                        office_id: str | None = None) -> object: ...

    def approval_for(self, spec_hash: str, office_id: str | None = None) -> Approval | None: ...


class SampleRunLedger(Protocol):
    def runs(self, kind: str | None = None) -> Sequence[RunRow]: ...


def approve_command(office_id: str | None = None) -> str:
    """The command that approves the current spec for ``office_id`` (None: every office)."""
    return "dentrix-zoho map approve " + (f"--office {office_id} " if office_id else "") + "--by NAME"


@dataclass(frozen=True)
class ApprovalStatus:
    spec_path: str
    spec_hash: str
    approved: bool
    # The office asked about; None: every office (only an approval for every office counts).
    office_id: str | None = None
    # The approval that opens it (the office's own before one for every office), if any.
    approval: Approval | None = None

    @property
    def org_wide(self) -> bool:
        """Approved by an approval for every office (not the office's own)."""
        return self.approval is not None and self.approval.office_id is None

    def describe(self) -> str:
        """One line: approved or not for the office, by which approval (names and times, no patient data)."""
        where = f"office {self.office_id}" if self.office_id else "every office"
        if self.approval is None:
            return f"NO for {where} (run: {approve_command(self.office_id)})"
        kind = "approval for every office" if self.org_wide else "the office's own approval"
        return f"yes for {where} ({kind} by {self.approval.approved_by} at {self.approval.approved_at})"

    def refusal(self) -> str:
        """Why a load beyond the sample is refused, and the command that opens it."""
        where = f" for office {self.office_id}" if self.office_id else ""
        return (f"the mapping spec {self.spec_hash[:12]} is not approved{where}: only the sample may be loaded; "
                f"review the sample diff report, then run `{approve_command(self.office_id)}`"
                + (" (or without --office to approve every office)" if self.office_id else ""))


def _resolve(spec: MappingSpec | Path | str | None) -> tuple[MappingSpec, str]:
    if isinstance(spec, MappingSpec):
        return spec, "<in memory>"
    path = Path(spec) if spec is not None else default_spec_path()
    return load_spec(path), str(path)


def approve_spec(ledger: ApprovalLedger, approved_by: str, spec: MappingSpec | Path | str | None = None,
                 *, office_id: str | None = None) -> str:
    """Validate the spec and record its approval for ``office_id`` (None: every office); returns the hash."""
    name = approved_by.strip()
    if not name:
        raise ValueError("an approval needs the approver's name (--by NAME)")
    parsed, path = _resolve(spec)
    digest = spec_hash(parsed)
    ledger.record_approval(digest, name, path, office_id)
    return digest


def approval_status(ledger: ApprovalLedger, spec: MappingSpec | Path | str | None = None,
                    *, office_id: str | None = None) -> ApprovalStatus:
    """Whether the spec as it is now is approved for ``office_id`` (None: for every office)."""
    parsed, path = _resolve(spec)
    digest = spec_hash(parsed)
    found = ledger.approval_for(digest, office_id)
    return ApprovalStatus(path, digest, found is not None, office_id, found)


def is_current_spec_approved(ledger: ApprovalLedger, spec: MappingSpec | Path | str | None = None,
                             *, office_id: str | None = None) -> bool:
    """True when the spec as it is now (default: the repository's spec) is approved for the office
    (its own approval or one for every office); without an office, for every office."""
    return approval_status(ledger, spec, office_id=office_id).approved


def has_sample_run(ledger: SampleRunLedger, digest: str, office_id: str) -> bool:
    """Whether the office has a sample migration of this spec hash that passed its reconciliation."""
    return any(r.office_id == office_id and r.spec_hash == digest and r.status == "succeeded"
               for r in ledger.runs(kind="sample"))
