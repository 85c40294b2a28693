"""Phase 3 shaping: Zoho-shaped tables from the staged Dentrix tables, the workflow reference, the gate."""

import time

import dagster as dg

from dentrix_zoho.defs.source.assets import staged_asset_key
from dentrix_zoho.defs.workspace_resource import OfficeScope, WorkspaceResource, duckdb_pool
from dentrix_zoho.mapping.spec import MappingSpec
from dentrix_zoho.mapping.outputs import MODULE_TABLES, OUTPUT_SCHEMA, table_columns
from dentrix_zoho.source.catalog import CATALOG

SHAPED_GROUP = "zoho_shaped"
SCOPE_TAG = "dentrix_zoho/scope"
SAMPLE_TABLE = f"{OUTPUT_SCHEMA}.sample_patients"


def shaped_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["zoho_shaped", table])


def run_scope(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
    """'sample' or 'full', from the job's tag; an ad-hoc materialization counts as full (and is gated)."""
    return context.run.tags.get(SCOPE_TAG, "full")


SHAPED_TABLES = [*MODULE_TABLES.values(), "quarantine", "skipped"]


def build_mapping_assets(
    partitions_def: dg.PartitionsDefinition | None = None,
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """The shaped tables, the workflow reference and the accounting check; per office with ``partitions_def``."""

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                shaped_asset_key(table),
                group_name=SHAPED_GROUP,
                kinds={"duckdb"},
                deps=[
                    *[staged_asset_key(name) for name in CATALOG],
                    # API names Zoho assigned to the custom fields; and, in the sample job, the sample.
                    dg.AssetKey(["zoho_load", "schema_setup"]),
                    dg.AssetKey(["zoho_shaped", "migration_sample"]),
                    # In the delta job: the staged tables brought up to date by change detection.
                    dg.AssetKey(["dentrix", "delta_changes"]),
                ],
                description=(
                    f"`{OUTPUT_SCHEMA}.{table}`: "
                    + (
                        f"{module} records shaped for Zoho (record JSON by API name, lookups by source id)."
                        if table in MODULE_TABLES.values()
                        else f"rows {table} by a named rule, with the reason (a value class, never the value)."
                    )
                ),
            )
            for table in SHAPED_TABLES
            for module in [next((m for m, t in MODULE_TABLES.items() if t == table), table)]
        ],
        pool=duckdb_pool(partitions_def),
        partitions_def=partitions_def,
        can_subset=False,
    )
    def zoho_shaped(context: dg.AssetExecutionContext, workspace: WorkspaceResource):  # type: ignore[no-untyped-def]
        """Transform and validate every staged object into Zoho-shaped rows, quarantine and skips."""
        from dentrix_zoho.defs.load.resources import open_ledger
        from dentrix_zoho.defs.load.state import load_schema
        from dentrix_zoho.mapping import apply_api_names, load_spec, shape_all
        from dentrix_zoho.progress import reporting_to

        office = workspace.scope(context)
        spec = office_spec(load_spec(), office)
        schema = load_schema(office.home_path)
        if schema is not None:
            spec = apply_api_names(spec, schema.api_names)
        else:
            context.log.warning("no Zoho schema yet: shaping with the API names derived from the labels")
        scope = run_scope(context)
        # Patients already in Zoho keep their module (Contact or Lead) whatever the routing says now.
        loaded = open_ledger(office).live_modules(office.office_id, spec.patient_objects())
        with office.staging.connect() as con:
            sample_ids = None
            if scope == "sample":
                sample_ids = {r[0] for r in con.execute(f"SELECT source_id FROM {SAMPLE_TABLE}").fetchall()}
                context.log.info(f"shaping the sample: {len(sample_ids)} patients and their children")
            started = time.perf_counter()
            with reporting_to(context.log.info):
                summary = shape_all(
                    con,
                    spec,
                    office_id=office.office_id,
                    as_of=office.today(),
                    image_root=office.image_root,
                    sample_source_ids=sample_ids,
                    ledger_pdf_dir=office.reports_dir / "ledger_pdfs",
                    loaded_modules=loaded,
                )
            seconds = round(time.perf_counter() - started, 3)
            counts = {
                table: int(
                    con.execute(
                        f"SELECT count(*) FROM {OUTPUT_SCHEMA}.{table} WHERE office_id = ?", [office.office_id]
                    ).fetchone()[0]
                )
                for table in SHAPED_TABLES
            }
        if not summary.balanced:
            context.log.error("shaping accounting does not balance: see the metadata table")
        by_table = {t: m for m, t in MODULE_TABLES.items()}
        for table in SHAPED_TABLES:
            module_counts = summary.modules.get(by_table.get(table, ""))
            metadata: dict[str, object] = {
                "dagster/row_count": counts[table],
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name=n, type=t) for n, t in table_columns(table)]
                ),
                "scope": scope,
                "spec_hash": summary.spec_hash[:12],
                "seconds": seconds,
            }
            if module_counts is not None:
                metadata |= {"quarantined": module_counts.quarantined, "skipped_by_rule": module_counts.skipped}
            if table == "contacts":
                metadata["accounting"] = dg.MetadataValue.md(summary.markdown())
                metadata["balanced"] = summary.balanced
            if table == "quarantine":
                metadata["reasons"] = dg.MetadataValue.json(summary.quarantine_reasons)
            if table == "skipped":
                metadata["rules"] = dg.MetadataValue.json(summary.skip_rules)
            yield dg.MaterializeResult(asset_key=shaped_asset_key(table), metadata=metadata)


    @dg.asset_check(
        asset=shaped_asset_key("contacts"),
        blocking=True,
        partitions_def=partitions_def,
        description="Per source object: staged = shaped + quarantined + skipped by a named rule (+ out of sample).",
    )
    def shaping_accounts_for_every_row(context: dg.AssetCheckExecutionContext, workspace: WorkspaceResource) -> dg.AssetCheckResult:
        office = workspace.scope(context)
        with office.staging.connect(read_only=True) as con:
            rows = con.execute(
                f"SELECT source_object, staged, shaped, quarantined, skipped, out_of_sample "
                f"FROM {OUTPUT_SCHEMA}.accounting WHERE office_id = ? ORDER BY 1",
                [office.office_id],
            ).fetchall()
        unbalanced = [r[0] for r in rows if r[1] != r[2] + r[3] + r[4] + r[5]]
        return dg.AssetCheckResult(
            passed=bool(rows) and not unbalanced,
            metadata={"objects": len(rows), "unbalanced_objects": ", ".join(unbalanced) or "none"},
            description="every staged row is shaped, quarantined or skipped by a named rule"
            if not unbalanced
            else f"rows unaccounted for in: {', '.join(unbalanced)}",
        )


    @dg.asset(
        key=dg.AssetKey(["zoho_shaped", "workflow_rebuild_reference"]),
        group_name=SHAPED_GROUP,
        kinds={"markdown"},
        deps=[staged_asset_key(n) for n in ("recalltype", "fulldef", "v_appt_status_codes", "v_appointment_types")],
        pool=duckdb_pool(partitions_def),
        partitions_def=partitions_def,
        description="How to rebuild recall intervals, reminder triggers, appointment statuses and types in Zoho Blueprint or Flow.",
    )
    def workflow_rebuild_reference(context: dg.AssetExecutionContext, workspace: WorkspaceResource) -> dg.MaterializeResult:
        from dentrix_zoho.mapping import load_spec, write_workflow_reference

        office = workspace.scope(context)
        with office.staging.connect(read_only=True) as con:
            path = write_workflow_reference(con, office_spec(load_spec(), office),
                                            office.reports_dir / "workflow_rebuild_reference.md")
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path))})

    return [zoho_shaped, workflow_rebuild_reference], [shaping_accounts_for_every_row]


def office_spec(spec: MappingSpec, office: OfficeScope) -> MappingSpec:
    """The mapping spec read in the office's time zone (offices file); unchanged for the one office of today."""
    if office.time_zone is None or office.time_zone == spec.practice.time_zone:
        return spec
    return spec.model_copy(update={"practice": spec.practice.model_copy(update={"time_zone": office.time_zone})})


mapping_assets, mapping_checks = build_mapping_assets()
zoho_shaped, workflow_rebuild_reference = mapping_assets
[shaping_accounts_for_every_row] = mapping_checks
