"""Phase 2-5 loading: schema setup, owners, the resumable loader, reconciliation and its reports.

Domain code: no Dagster import here (the assets and checks live in ``dentrix_zoho.defs``).
"""

from dentrix_zoho.load.context import (
    LOAD_ORDER,
    LOAD_STEPS,
    LoadContext,
    LoadOptions,
    LoadStep,
    ModuleLoadResult,
)
from dentrix_zoho.load.diff_report import DiffSummary, write_diff_report
from dentrix_zoho.load.ledger_io import api_call_sink
from dentrix_zoho.load.loader import (
    LoadEstimate,
    LoadOverBudget,
    StepEstimate,
    estimate_load,
    load_all,
    load_module,
    refuse_if_over_budget,
)
from dentrix_zoho.load.owners import OwnerResolution, resolve_owners, shaped_provider_ids
from dentrix_zoho.load.reconcile import (
    CheckResult,
    reconcile_accounting,
    reconcile_balances,
    reconcile_parents,
    reconcile_zoho_counts,
    zero_loss_gate,
)
from dentrix_zoho.load.remigration import RemigrationPlan, write_remigration_plan
from dentrix_zoho.load.sample import DEFAULT_STRATA, select_sample
from dentrix_zoho.load.schema_setup import SchemaResult, setup_schema

__all__ = [
    "DEFAULT_STRATA",
    "LOAD_ORDER",
    "LOAD_STEPS",
    "CheckResult",
    "DiffSummary",
    "LoadContext",
    "LoadEstimate",
    "LoadOptions",
    "LoadOverBudget",
    "LoadStep",
    "ModuleLoadResult",
    "OwnerResolution",
    "RemigrationPlan",
    "SchemaResult",
    "StepEstimate",
    "api_call_sink",
    "estimate_load",
    "load_all",
    "load_module",
    "reconcile_accounting",
    "reconcile_balances",
    "reconcile_parents",
    "reconcile_zoho_counts",
    "refuse_if_over_budget",
    "resolve_owners",
    "select_sample",
    "setup_schema",
    "shaped_provider_ids",
    "write_diff_report",
    "write_remigration_plan",
    "zero_loss_gate",
]
