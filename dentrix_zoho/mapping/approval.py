"""The approval gate: a person approves the exact spec (its content hash) before the full load.

Approvals live in the migration ledger (``Ledger.record_approval`` / ``is_approved``). The
hash is of the parsed, canonical spec, so a comment or layout change does not void an
approval but any change to what the map does does: the new content has a new hash, which
nobody has approved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dentrix_zoho.mapping.spec import MappingSpec, default_spec_path, load_spec, spec_hash


class ApprovalLedger(Protocol):
    """What the gate needs from the ledger (``dentrix_zoho.ledger.Ledger`` provides it)."""

    def record_approval(self, spec_hash: str, approved_by: str, spec_path: str | None = None) -> object: ...

    def is_approved(self, spec_hash: str) -> bool: ...


@dataclass(frozen=True)
class ApprovalStatus:
    spec_path: str
    spec_hash: str
    approved: bool


def _resolve(spec: MappingSpec | Path | str | None) -> tuple[MappingSpec, str]:
    if isinstance(spec, MappingSpec):
        return spec, "<in memory>"
    path = Path(spec) if spec is not None else default_spec_path()
    return load_spec(path), str(path)


def approve_spec(ledger: ApprovalLedger, approved_by: str, spec: MappingSpec | Path | str | None = None) -> str:
    """Validate the spec and record its approval; returns the approved hash."""
    name = approved_by.strip()
    if not name:
        raise ValueError("an approval needs the approver's name (--by NAME)")
    parsed, path = _resolve(spec)
    digest = spec_hash(parsed)
    ledger.record_approval(digest, name, path)
    return digest


def approval_status(ledger: ApprovalLedger, spec: MappingSpec | Path | str | None = None) -> ApprovalStatus:
    parsed, path = _resolve(spec)
    digest = spec_hash(parsed)
    return ApprovalStatus(path, digest, ledger.is_approved(digest))


def is_current_spec_approved(ledger: ApprovalLedger, spec: MappingSpec | Path | str | None = None) -> bool:
    """True when the spec as it is now (default: the repository's spec) has been approved."""
    return approval_status(ledger, spec).approved
