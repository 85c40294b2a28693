"""Phases 2-5 in Dagster: schema setup, owners, the gate, one asset per load step, reconciliation, reports.

Every load asset is an upsert keyed on Source_System_ID and resumable from the
ledger; blocking checks stop the steps downstream of anything unaccounted for.
Metadata holds counts only.
"""

from collections.abc import Iterator

import dagster as dg

from dentrix_zoho.defs.load.resources import CallTally, build_load_context, open_ledger, sample_ids, zoho_client
from dentrix_zoho.defs.load.state import load_schema, save_owners, save_schema
from dentrix_zoho.defs.mapping.assets import SAMPLE_TABLE, SHAPED_GROUP, office_spec, run_scope, shaped_asset_key
from dentrix_zoho.defs.plan.assets import ESTIMATE_KEY
from dentrix_zoho.defs.source.assets import staged_asset_key
from dentrix_zoho.defs.workspace_resource import WorkspaceResource, duckdb_pool
from dentrix_zoho.defs.zoho_resource import ZohoResource, zoho_pool_name_from_env
from dentrix_zoho.load import LOAD_ORDER, LOAD_STEPS, LoadOverBudget, ModuleLoadResult

LOAD_GROUP = "zoho_load"
REPORTS_GROUP = "zoho_reports"
ZOHO_POOL = zoho_pool_name_from_env()


def load_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["zoho_load", name])


SCHEMA_KEY = load_key("schema_setup")
OWNERS_KEY = load_key("owner_resolution")
APPROVAL_KEY = load_key("mapping_approval")
RECONCILIATION_KEY = load_key("reconciliation")
SAMPLE_KEY = dg.AssetKey(["zoho_shaped", "migration_sample"])


class SampleConfig(dg.Config):
    size: int = 75
    seed: int = 0


def _load_metadata(result: ModuleLoadResult, credits: int) -> dict[str, object]:
    """Counts a data engineer charts over runs (numeric, so the UI plots them), and the error codes."""
    skip = ("codes", "step", "module", "elapsed_s")
    metadata: dict[str, object] = {k: v for k, v in result.as_dict().items() if k not in skip}
    metadata["dagster/row_count"] = result.ok + result.unchanged
    metadata["credits"] = credits
    metadata["seconds"] = round(result.elapsed_s, 3)
    if result.codes:
        metadata["error_codes"] = dg.MetadataValue.json(result.codes)
    return metadata


# Before the first write, once: the approval gate, the owners (with the schema and the shaped tables
# behind them) and the estimate with its budget gate. Each later step waits only for the one before,
# so the graph reads as the load order: parents, then children.
LOAD_CHAIN_HEAD = (APPROVAL_KEY, OWNERS_KEY, ESTIMATE_KEY)


def _build_load_step(
    step_name: str, previous: dg.AssetKey | None, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetsDefinition:
    step = LOAD_STEPS[step_name]
    key = load_key(step_name)
    deps = list(LOAD_CHAIN_HEAD) if previous is None else [previous]
    where = "" if step.where == "TRUE" else f" where {step.where}"

    @dg.asset(
        key=key,
        group_name=LOAD_GROUP,
        kinds={"zoho"},
        pool=ZOHO_POOL,
        deps=deps,
        partitions_def=partitions_def,
        metadata={"shaped_table": f"zoho_shaped.{step.table}", "zoho_module": step.module},
        check_specs=[dg.AssetCheckSpec(
            "accounted_for", asset=key, blocking=True, partitions_def=partitions_def,
            description="Every shaped row is loaded, unchanged since the last load, or quarantined with a "
                        "reason. A failure stops the steps after this one: run the job again and it resumes "
                        "from the ledger without duplicating a record.")],
        description=(
            f"Load step `{step_name}`: upserts (or creates, for {step.kind}) the rows of "
            f"`zoho_shaped.{step.table}`{where} into Zoho {step.module}, keyed on Source_System_ID, every "
            "outcome in the ledger. A failure leaves what was written recorded: run the job again to resume."
        ),
    )
    def _load(context: dg.AssetExecutionContext, workspace: WorkspaceResource, zoho: ZohoResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        from dentrix_zoho.load import estimate_load, load_module, refuse_if_over_budget
        from dentrix_zoho.mapping import approval_status, spec_hash, load_spec
        from dentrix_zoho.progress import reporting_to

        scope = run_scope(context)
        office = workspace.scope(context)
        ledger = open_ledger(office)
        if scope != "sample":
            # The blocking check stops a job; this stops an ad-hoc materialization too.
            approval = approval_status(ledger, office_id=office.office_id)
            if not approval.approved:
                raise dg.Failure(approval.refusal())
        ledger.start_run(scope, office.office_id, spec_hash=spec_hash(load_spec()), run_id=context.run.run_id)
        ctx = build_load_context(context, office, zoho, ledger, scope=scope)
        if previous is None:
            estimate = estimate_load(ctx)
            context.log.info(f"load estimate: {estimate.calls:,} calls, {estimate.credits:,} credits "
                             f"(remaining: {estimate.remaining if estimate.remaining is not None else 'unknown'})")
            try:
                refuse_if_over_budget(ctx, estimate)
            except LoadOverBudget as exc:
                raise dg.Failure(str(exc), metadata={"estimate": dg.MetadataValue.json(estimate.summary())}) from None
        credits_before = ctx.client.budget.spent
        with reporting_to(context.log.info):
            result = load_module(ctx, step_name)
        credits = max(0, ctx.client.budget.spent - credits_before)
        context.log.info(
            f"{step_name}: {result.ok:,} ok, {result.unchanged:,} unchanged, {result.quarantined:,} quarantined, "
            f"{result.failed:,} failed, {result.api_calls:,} calls, {credits:,} credits in {result.elapsed_s:.1f}s"
        )
        # Human edits held are quarantined; so are patients waiting to join another office's Contact (merge).
        accounted = result.ok + result.unchanged + result.quarantined + result.cross_office_joined
        joined = f", {result.cross_office_joined:,} joined another office's Contact" if result.cross_office_joined else ""
        yield dg.MaterializeResult(metadata=_load_metadata(result, credits))
        yield dg.AssetCheckResult(
            check_name="accounted_for",
            passed=result.failed == 0 and accounted >= result.shaped,
            metadata={"shaped": result.shaped, "accounted": accounted, "failed": result.failed,
                      "cross_office_joined": result.cross_office_joined},
            description=f"{accounted:,} of {result.shaped:,} rows loaded, unchanged or quarantined{joined}; "
            f"{result.failed:,} failed" + ("" if result.failed == 0 else " (run again: the load resumes from the ledger)"),
        )

    return _load


def _build_load_steps(partitions_def: dg.PartitionsDefinition | None) -> list[dg.AssetsDefinition]:
    assets = []
    previous: dg.AssetKey | None = None
    for name in LOAD_ORDER:
        assets.append(_build_load_step(name, previous, partitions_def))
        previous = load_key(name)
    return assets


# Each blocking: a failure marks the run failed in the ledger and stops the reports after it.
RECONCILIATION_CHECKS = {
    "load_accounting": "Per source object: staged = loaded + quarantined + skipped by a named rule. A failure "
                       "names the objects with rows unaccounted for: run the job again to resume their load.",
    "zoho_counts": "Zoho's record count per module matches the ledger's crosswalk. A failure means records are "
                   "missing from Zoho or there are records we did not write: see the counts per module.",
    "parents": "Every child record's lookup (Who_Id, What_Id, Parent_Id, Related_Party) resolves in Zoho. A "
               "failure lists the modules with orphans: run again, the loader re-sends dropped links.",
    "balances": "Balance_Due in Zoho sums to the guarantors' balances staged from Dentrix. A failure means a "
                "ledger total did not arrive intact: compare the sums per office in the metadata.",
    "zero_loss": "All of the above passed: no record lost. A failure means the migration is not done.",
}


def build_load_assets(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetsDefinition]:
    """The sample, schema, gates, owners, load steps, reconciliation and diff report; per office with ``partitions_def``."""

    @dg.asset(
        key=SAMPLE_KEY,
        group_name=SHAPED_GROUP,
        kinds={"duckdb"},
        pool=duckdb_pool(partitions_def),
        partitions_def=partitions_def,
        deps=[staged_asset_key(n) for n in ("patient", "appt", "recallpending", "clinicalnote", "insured", "aging")],
        description="Picks a stratified 50-100 patients (active, recall, insured, with notes, with balances, minors) "
                    "for the sample migration; only the sample job uses it. A failure means nothing was staged yet.",
    )
    def migration_sample(context: dg.AssetExecutionContext, config: SampleConfig, workspace: WorkspaceResource) -> dg.MaterializeResult:
        from dentrix_zoho.load import select_sample
        from dentrix_zoho.mapping import load_spec

        office = workspace.scope(context)
        with office.staging.connect() as con:
            ids = select_sample(
                con, config.size, office_id=office.office_id, as_of=office.today(),
                spec=office_spec(load_spec(), office), seed=config.seed,
            )
            con.execute("CREATE SCHEMA IF NOT EXISTS zoho_shaped")
            con.execute(f"CREATE OR REPLACE TABLE {SAMPLE_TABLE} (source_id VARCHAR PRIMARY KEY)")
            con.executemany(f"INSERT INTO {SAMPLE_TABLE} VALUES (?)", [(i,) for i in sorted(ids)])
        context.log.info(f"sample: {len(ids)} patients selected")
        return dg.MaterializeResult(metadata={"dagster/row_count": len(ids), "requested_size": config.size})


    @dg.asset(
        key=SCHEMA_KEY,
        group_name=LOAD_GROUP,
        kinds={"zoho"},
        pool=ZOHO_POOL,
        partitions_def=partitions_def,
        description="Creates the custom fields and the insurance subform in Zoho (batches of 5) and reads back the "
                    "API names Zoho assigned. A failure stops shaping and every load step: fix the Zoho permission or "
                    "limit it names, then run again (fields already created are found, not duplicated).",
    )
    def schema_setup(context: dg.AssetExecutionContext, workspace: WorkspaceResource, zoho: ZohoResource) -> dg.MaterializeResult:
        from dentrix_zoho.load import setup_schema
        from dentrix_zoho.mapping import load_spec

        office = workspace.scope(context)
        ledger = open_ledger(office)
        result = setup_schema(zoho_client(zoho, ledger, context.run.run_id), load_spec())
        path = save_schema(office.home_path, result)
        summary = result.summary()
        context.log.info(f"schema ready: {summary}")
        if result.picklist_missing:
            context.log.warning(
                "picklist values the value maps need are missing in Zoho; add them in Setup: "
                + ", ".join(f"{m}.{f} ({len(v)})" for m, fs in result.picklist_missing.items() for f, v in fs.items())
            )
        return dg.MaterializeResult(
            metadata={**summary, "api_names_file": dg.MetadataValue.path(str(path)),
                      "api_names": dg.MetadataValue.json(result.api_names)}
        )


    @dg.asset(
        key=APPROVAL_KEY,
        group_name=LOAD_GROUP,
        kinds={"yaml"},
        partitions_def=partitions_def,
        check_specs=[dg.AssetCheckSpec("mapping_approved", asset=APPROVAL_KEY, blocking=True, partitions_def=partitions_def,
                                       description="The current mapping spec's content hash is approved for this "
                                                   "office (its own approval or one for every office). A failure "
                                                   "means nothing beyond the sample is loaded: review the office's "
                                                   "sample diff report, then `dentrix-zoho map approve --office ID "
                                                   "--by NAME` (without --office: every office).")],
        description="The approval gate at the head of the load: nothing beyond the sample moves until a person "
                    "approves this exact map for the office (`dentrix-zoho map approve --office ID --by NAME`) or "
                    "for every office (without --office); any edit to the spec voids both.",
    )
    def mapping_approval(context: dg.AssetExecutionContext, workspace: WorkspaceResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        from dentrix_zoho.mapping import approval_status

        office = workspace.scope(context)
        status = approval_status(open_ledger(office), office_id=office.office_id)
        approved = status.approved
        spec_hash = status.spec_hash
        # Which approval opened the office: its own or one for every office (the approver is no patient).
        by = {} if status.approval is None else {
            "approval": "every office" if status.org_wide else "office", "approved_by": status.approval.approved_by}
        yield dg.MaterializeResult(metadata={"spec_hash": spec_hash[:12], "approved": approved, **by})
        yield dg.AssetCheckResult(
            check_name="mapping_approved",
            passed=approved,
            metadata={"spec_hash": spec_hash[:12], **by},
            description=status.describe() if approved else status.refusal(),
        )


    @dg.asset(
        key=OWNERS_KEY,
        group_name=LOAD_GROUP,
        kinds={"zoho"},
        pool=ZOHO_POOL,
        partitions_def=partitions_def,
        deps=[SCHEMA_KEY, *[shaped_asset_key(t) for t in ("contacts", "leads", "events", "tasks", "calls")]],
        check_specs=[dg.AssetCheckSpec("providers_resolved", asset=OWNERS_KEY, blocking=True, partitions_def=partitions_def,
                                       description="Every provider resolves to an active Zoho user, or the map names "
                                                   "a default owner. A failure stops the load: add the providers it "
                                                   "names to the provider map (or set default_owner_email).")],
        description="Resolves each Dentrix provider to the Zoho user who will own its records, by the e-mail in the "
                    "provider map (case-insensitive); at the head of the load, before the first write.",
    )
    def owner_resolution(context: dg.AssetExecutionContext, workspace: WorkspaceResource, zoho: ZohoResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        from dentrix_zoho.load import resolve_owners, shaped_provider_ids
        from dentrix_zoho.source.provider_map import ProviderMap, load_provider_map

        office = workspace.scope(context)
        path = office.provider_map
        provider_map = load_provider_map(path) if path else ProviderMap()
        ledger = open_ledger(office)
        ids = shaped_provider_ids(office.staging.path, office.office_id)
        owners = resolve_owners(zoho_client(zoho, ledger, context.run.run_id), provider_map, ids)
        save_owners(office.home_path, owners)
        summary = owners.summary()
        yield dg.MaterializeResult(metadata={**summary, "providers_seen": len(ids)})
        yield dg.AssetCheckResult(
            check_name="providers_resolved",
            passed=not owners.blocking,
            metadata={"unmatched": len(owners.unmatched), "unmatched_providers": ", ".join(owners.unmatched) or "none"},
            description="every provider has an owner" if not owners.blocking else
            f"{len(owners.unmatched)} provider(s) have no Zoho user and no default owner is set: "
            "add them to the provider map (or set default_owner_email)",
        )

    @dg.asset(
        key=RECONCILIATION_KEY,
        group_name=LOAD_GROUP,
        kinds={"zoho", "csv"},
        pool=ZOHO_POOL,
        # Deletions run only in the delta job; elsewhere the dependency is simply not selected.
        partitions_def=partitions_def,
        deps=[load_key(LOAD_ORDER[-1]), dg.AssetKey(["zoho_load", "deletions"])],
        check_specs=[dg.AssetCheckSpec(name, asset=RECONCILIATION_KEY, blocking=True, description=text,
                                       partitions_def=partitions_def)
                     for name, text in RECONCILIATION_CHECKS.items()],
        description=(
            "Reconciliation gates: per module source = loaded + quarantined + skipped by a named rule; Zoho counts "
            "match the ledger; every child's parent resolves; Balance_Due sums to the guarantor balances; zero loss. "
            "Also writes the re-migration plan (CSV and Markdown) of every quarantined record."
        ),
    )
    def reconciliation(context: dg.AssetExecutionContext, workspace: WorkspaceResource, zoho: ZohoResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        from dentrix_zoho.progress import reporting_to
        from dentrix_zoho.load import (
            reconcile_accounting,
            reconcile_balances,
            reconcile_parents,
            reconcile_zoho_counts,
            write_remigration_plan,
            zero_loss_gate,
        )

        scope = run_scope(context)
        ws = workspace.scope(context)
        ledger = open_ledger(ws)
        schema = load_schema(ws.home_path)
        if schema is None:
            raise dg.Failure("schema setup has not run: materialize zoho_load/schema_setup first")
        tally = CallTally()
        client = zoho_client(zoho, ledger, context.run.run_id, tally)
        office = ws.office_id
        sample = sample_ids(ws) if scope == "sample" else None
        with reporting_to(context.log.info):
            results = [
                reconcile_accounting(ws.staging.path, ledger, office, sample_source_ids=sample),
                reconcile_zoho_counts(client, ledger, office, schema, recheck_seconds=5.0),
                reconcile_parents(client, ledger, office, schema),
                reconcile_balances(ws.staging.path, client, ledger, office, schema),
            ]
        gate = zero_loss_gate(results)
        plan = write_remigration_plan(ws.staging.path, ledger, office, ws.reports_dir)
        ledger.finish_run(context.run.run_id, "succeeded" if gate.passed else "failed")
        yield dg.MaterializeResult(
            metadata={
                "zero_loss": gate.passed,
                "quarantined_records": plan.records,
                **tally.metadata(),
                "remigration_plan_csv": dg.MetadataValue.path(str(plan.csv_path)),
                "remigration_plan_md": dg.MetadataValue.path(str(plan.markdown_path)),
                "remigration_plan": dg.MetadataValue.json(plan.by_reason),
            }
        )
        for name, result in zip(RECONCILIATION_CHECKS, [*results, gate], strict=True):
            yield dg.AssetCheckResult(
                check_name=name,
                passed=result.passed,
                description=result.description,
                metadata={"counts": dg.MetadataValue.json(result.counts)},
            )


    @dg.asset(
        key=dg.AssetKey(["zoho_reports", "sample_diff_report"]),
        group_name=REPORTS_GROUP,
        kinds={"html", "csv"},
        pool=ZOHO_POOL,
        partitions_def=partitions_def,
        deps=[RECONCILIATION_KEY],
        description="Reads every migrated record back from Zoho and compares it field by field with its shaped row "
                    "(HTML and CSV, owner-only: they hold patient data). The report a person reviews before approving "
                    "the map; a failure leaves the load as it is, run the report again.",
    )
    def sample_diff_report(context: dg.AssetExecutionContext, workspace: WorkspaceResource, zoho: ZohoResource) -> dg.MaterializeResult:
        from dentrix_zoho.load import write_diff_report

        office = workspace.scope(context)
        ledger = open_ledger(office)
        ctx = build_load_context(context, office, zoho, ledger, scope=run_scope(context))
        summary = write_diff_report(ctx, office.reports_dir)
        counts = {k: v for k, v in vars(summary).items() if isinstance(v, int) and not isinstance(v, bool)}
        context.log.info(f"diff report: {summary.records:,} records, {summary.mismatches:,} mismatching fields")
        return dg.MaterializeResult(
            metadata={**counts, "html": dg.MetadataValue.path(str(summary.html_path)), "csv": dg.MetadataValue.path(str(summary.csv_path)), "clean": summary.clean}
        )

    return [migration_sample, schema_setup, mapping_approval, owner_resolution,
            *_build_load_steps(partitions_def), reconciliation, sample_diff_report]


load_assets = build_load_assets()
migration_sample, schema_setup, mapping_approval, owner_resolution = load_assets[:4]
load_step_assets = load_assets[4:-2]
reconciliation, sample_diff_report = load_assets[-2:]
