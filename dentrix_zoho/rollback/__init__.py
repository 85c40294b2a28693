"""Rollback: undo one migration run or the whole migration, from the ledger."""

from dentrix_zoho.rollback.execute import HumanEdit, RollbackResult, StepFailure, execute_rollback
from dentrix_zoho.rollback.plan import (
    DEFAULT_MODULE_ORDER,
    RollbackItem,
    RollbackPlan,
    RollbackStep,
    plan_rollback,
)
from dentrix_zoho.rollback.writer import ALREADY_GONE_CODES, RollbackWriter, WriteOutcome

__all__ = [
    "ALREADY_GONE_CODES",
    "DEFAULT_MODULE_ORDER",
    "HumanEdit",
    "RollbackItem",
    "RollbackPlan",
    "RollbackResult",
    "RollbackStep",
    "RollbackWriter",
    "StepFailure",
    "WriteOutcome",
    "execute_rollback",
    "plan_rollback",
]
