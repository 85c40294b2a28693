"""Cutover in Dagster: detect what changed in Dentrix since the last stage, and remove what was deleted."""

from collections.abc import Iterator

import dagster as dg

from dentrix_zoho.defs.source.assets import staged_asset_key
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import WorkspaceResource, duckdb_pool
from dentrix_zoho.defs.zoho_resource import ZohoResource, zoho_pool_name_from_env
from dentrix_zoho.source.catalog import base_tables

CUTOVER_GROUP = "cutover"
DELTA_KEY = dg.AssetKey(["dentrix", "delta_changes"])
DELETIONS_KEY = dg.AssetKey(["zoho_load", "deletions"])
DELETION_POLICY_TAG = "dentrix_zoho/deletion_policy"


def build_cutover_assets(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetsDefinition]:
    """The delta pickup and the deletions; per office with ``partitions_def``."""

    @dg.asset(
        key=DELTA_KEY,
        group_name=CUTOVER_GROUP,
        kinds={"duckdb", "sql"},
        pool=duckdb_pool(partitions_def),
        partitions_def=partitions_def,
        deps=[staged_asset_key(obj.name) for obj in base_tables()],
        description=(
            "Delta pickup: rows new, changed (row hash) or deleted in Dentrix since the last stage, read by the "
            "modified-time cursors with a look-back margin, applied to the staged tables and recorded in "
            "staging_meta.changes. Counts only."
        ),
    )
    def delta_changes(context: dg.AssetExecutionContext, dentrix: DentrixSourceResource, workspace: WorkspaceResource) -> dg.MaterializeResult:
        from dentrix_zoho.cutover.changes import detect_and_apply_changes
        from dentrix_zoho.staging.store import new_snapshot_id

        office = workspace.scope(context)
        with dentrix.open(office) as conn, office.staging.connect() as con:
            summary = detect_and_apply_changes(
                conn, office.staging, con, office_id=office.office_id, snapshot_id=new_snapshot_id()
            )
        context.log.info(summary.describe())
        changed = {name: d.total for name, d in summary.by_object().items() if d.total}
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": summary.total,
                "new": summary.new,
                "changed": summary.changed,
                "deleted": summary.deleted,
                "rows_read": summary.rows_read,
                "seconds": round(summary.seconds, 3),
                "changed_by_object": dg.MetadataValue.json(changed),
            }
        )


    @dg.asset(
        key=DELETIONS_KEY,
        group_name="zoho_load",
        kinds={"zoho"},
        pool=zoho_pool_name_from_env(),
        partitions_def=partitions_def,
        deps=[dg.AssetKey(["zoho_load", "ledger_pdfs"])],
        check_specs=[dg.AssetCheckSpec(
            "no_failed_deletions", asset=DELETIONS_KEY, blocking=True, partitions_def=partitions_def,
            description="Every record deleted in Dentrix was deleted or marked in Zoho, or left alone because a "
                        "person edited it. A failure stops reconciliation: run the delta again to retry them.")],
        description=(
            "Records deleted in Dentrix during the cutover window, deleted in Zoho (children first) or marked, "
            "by the run's deletion policy (tag dentrix_zoho/deletion_policy; default delete). Records a person "
            "edited in Zoho since we wrote them are reported and left alone."
        ),
    )
    def deletions(context: dg.AssetExecutionContext, workspace: WorkspaceResource, zoho: ZohoResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        from dentrix_zoho.cutover.deletions import apply_deletions, find_deletions
        from dentrix_zoho.defs.load.resources import open_ledger, zoho_client
        from dentrix_zoho.defs.load.state import load_schema
        from dentrix_zoho.load.schema_setup import DELETED_LABEL

        policy = context.run.tags.get(DELETION_POLICY_TAG, "delete")
        if policy not in ("delete", "mark"):
            raise dg.Failure(f"deletion policy must be 'delete' or 'mark', not {policy!r}")
        office = workspace.scope(context)
        ledger = open_ledger(office)
        with office.staging.connect(read_only=True) as con:
            candidates = find_deletions(con, ledger, office.office_id)
        schema = load_schema(office.home_path)
        markers = {m: names[DELETED_LABEL] for m, names in (schema.api_names if schema else {}).items()
                   if DELETED_LABEL in names}
        result = apply_deletions(zoho_client(zoho, ledger, context.run.run_id), ledger, context.run.run_id, candidates,
                                 policy=policy, marker_field=markers)  # type: ignore[arg-type]
        yield dg.MaterializeResult(metadata={**{k: v for k, v in result.as_dict().items() if k != "by_module"},
                                             "by_module": dg.MetadataValue.json(result.by_module)})
        yield dg.AssetCheckResult(
            check_name="no_failed_deletions",
            passed=result.failed == 0,
            metadata={"failed": result.failed, "human_edited": result.human_edited},
            description=f"{result.deleted + result.marked} of {result.candidates} applied; {result.human_edited} "
            f"left alone because a person edited them in Zoho; {result.failed} failed",
        )

    return [delta_changes, deletions]


cutover_assets = build_cutover_assets()
delta_changes, deletions = cutover_assets
