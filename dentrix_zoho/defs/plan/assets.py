"""Group ``zoho_plan``: the migration estimate, before any write, with its blocking budget gate."""

from collections.abc import Iterator

import dagster as dg

from dentrix_zoho.defs.mapping.assets import run_scope, shaped_asset_key
from dentrix_zoho.defs.workspace_resource import WorkspaceResource, duckdb_pool
from dentrix_zoho.mapping.outputs import MODULE_TABLES

PLAN_GROUP = "zoho_plan"
ESTIMATE_KEY = dg.AssetKey(["zoho_plan", "migration_estimate"])


def build_plan_assets(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetsDefinition]:
    """The estimate and its budget gate; per office with ``partitions_def``."""

    @dg.asset(
        key=ESTIMATE_KEY,
        group_name=PLAN_GROUP,
        kinds={"markdown"},
        pool=duckdb_pool(partitions_def),
        partitions_def=partitions_def,
        deps=[shaped_asset_key(t) for t in MODULE_TABLES.values()],
        check_specs=[dg.AssetCheckSpec(
            "fits_budget", asset=ESTIMATE_KEY, blocking=True, partitions_def=partitions_def,
            description="The migration fits the org's credits: in one day, or in several with "
                        "ZOHO_ON_BUDGET_EXHAUSTED=pause; never more than 30 days, never without API access.")],
        description=(
            "Per module: records, calls and credits by the record API and by Bulk Write, the chosen path, wall "
            "time and calendar days under the edition's rolling 24-hour credit limit less the reserve "
            "(ZOHO_EDITION, ZOHO_USERS, ZOHO_ADDON_CREDITS, ZOHO_PLAN_RESERVE, ZOHO_LATENCY_MS). "
            "Writes reports/estimate_<office>.md; makes no API call."
        ),
    )
    def migration_estimate(context: dg.AssetExecutionContext, workspace: WorkspaceResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        from dentrix_zoho.ledger import Ledger
        from dentrix_zoho.plan.counts import NothingShaped, count_migration
        from dentrix_zoho.plan.estimate import EstimateInputError, EstimateInputs, estimate_migration
        from dentrix_zoho.plan.report import metadata, module_table, write_report

        office = workspace.scope(context)
        try:
            inputs = EstimateInputs.from_env(scope=run_scope(context), schema_ready=True)
        except EstimateInputError as exc:
            raise dg.Failure(str(exc)) from None
        try:
            counts = count_migration(office.staging.path, office.office_id, scope=inputs.scope,
                                     ledger=Ledger(office.resolved_ledger_url))
        except NothingShaped as exc:
            raise dg.Failure(str(exc)) from None
        estimate = estimate_migration(counts, inputs)
        path = write_report(estimate, office.reports_dir)
        context.log.info(f"estimate: {estimate.calls:,} calls, {estimate.credits:,} credits: {estimate.verdict_text}")
        yield dg.MaterializeResult(metadata={
            **metadata(estimate),
            "dagster/row_count": estimate.records,
            "table": dg.MetadataValue.md(module_table(estimate)),
            "report": dg.MetadataValue.path(str(path)),
        })
        passed = estimate.verdict == "fits" or (estimate.verdict == "needs_days" and not estimate.refused_by_policy)
        if estimate.verdict == "needs_days" and passed:
            context.log.warning(f"the migration needs {estimate.days} days of credits: {estimate.verdict_text}")
        yield dg.AssetCheckResult(
            check_name="fits_budget",
            passed=passed,
            metadata={"days": estimate.days, "total_credits": estimate.credits,
                      "usable_credits_per_day": estimate.inputs.usable_credits_per_day or 0},
            description=("warning: " if estimate.verdict == "needs_days" and passed else "") + estimate.verdict_text,
        )

    return [migration_estimate]


plan_assets = build_plan_assets()
[migration_estimate] = plan_assets
