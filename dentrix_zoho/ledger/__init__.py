"""The migration ledger: the system of record for what moved where, and how."""

from dentrix_zoho.ledger.ledger import Ledger
from dentrix_zoho.ledger.models import (
    Approval,
    AuditEntry,
    ChainReport,
    CrosswalkConflict,
    CrosswalkRow,
    CrosswalkWrite,
    LedgerError,
    MergeCandidate,
    MergeDecision,
    MergeMember,
    PreImageRef,
    QuarantineRow,
    RunRow,
    RunSummary,
    SharedOwner,
)

__all__ = [
    "Approval",
    "AuditEntry",
    "ChainReport",
    "CrosswalkConflict",
    "CrosswalkRow",
    "CrosswalkWrite",
    "Ledger",
    "LedgerError",
    "MergeCandidate",
    "MergeDecision",
    "MergeMember",
    "PreImageRef",
    "QuarantineRow",
    "RunRow",
    "RunSummary",
    "SharedOwner",
]
