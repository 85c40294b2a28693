"""Phase 1, audit & extract: one staging asset per Dentrix object, then the source audit."""


import dagster as dg

from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import DUCKDB_POOL, WorkspaceResource
from dentrix_zoho.source.catalog import CATALOG, CatalogObject
from dentrix_zoho.staging.store import new_snapshot_id

STAGING_GROUP = "dentrix"
PROGRESS_EVERY_ROWS = 100_000


def staged_asset_key(object_name: str) -> dg.AssetKey:
    return dg.AssetKey(["dentrix", object_name])


def _column_schema(columns: tuple[tuple[str, str], ...]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=n, type=t) for n, t in columns])


def _build_staging_asset(obj: CatalogObject) -> dg.AssetsDefinition:
    @dg.asset(
        key=staged_asset_key(obj.name),
        group_name=STAGING_GROUP,
        kinds={"duckdb", "sql"},
        pool=DUCKDB_POOL,
        description=(
            f"Dentrix {obj.kind} `admin.{obj.name}` staged into DuckDB as `dentrix.{obj.name}`: "
            f"trimmed, typed, with office id, source key, row hash and snapshot id. {obj.description}"
        ),
        metadata={"dentrix_object": obj.name, "key_columns": ", ".join(obj.key)},
    )
    def _stage(
        context: dg.AssetExecutionContext,
        dentrix: DentrixSourceResource,
        workspace: WorkspaceResource,
    ) -> dg.MaterializeResult:
        next_report = PROGRESS_EVERY_ROWS

        def progress(name: str, rows: int) -> None:
            nonlocal next_report
            if rows >= next_report:
                context.log.info(f"{name}: {rows:,} rows staged so far")
                next_report += PROGRESS_EVERY_ROWS

        snapshot_id = new_snapshot_id()
        with dentrix.open() as conn, workspace.staging.connect() as con:
            result = workspace.staging.stage_object(
                con, conn, obj, office_id=workspace.office_id, snapshot_id=snapshot_id, progress=progress
            )
        context.log.info(f"{obj.name}: {result.rows:,} rows staged in {result.seconds:.2f}s")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                "dagster/column_schema": _column_schema(result.columns),
                "snapshot_id": result.snapshot_id,
                "seconds": round(result.seconds, 3),
                "rows_per_second": round(result.rows / result.seconds) if result.seconds > 0 else 0,
                "columns_missing_in_source": ", ".join(result.missing_optional) or "none",
            }
        )

    return _stage


staging_assets = [_build_staging_asset(obj) for obj in CATALOG.values()]


@dg.asset(
    key=dg.AssetKey(["dentrix", "source_audit"]),
    group_name=STAGING_GROUP,
    kinds={"duckdb", "markdown"},
    pool=DUCKDB_POOL,
    deps=[staged_asset_key(name) for name in CATALOG],
    description=(
        "The source audit: version signals, counts per object, practice-defined fields, duplicate "
        "patient candidates, orphans, providers without e-mail, insurance plans in use, open claims, "
        "appointment history depth, missing and over-limit image files. The report file may list "
        "record ids; the metadata here holds counts only."
    ),
)
def source_audit(context: dg.AssetExecutionContext, workspace: WorkspaceResource) -> dg.MaterializeResult:
    from dentrix_zoho.settings import load_settings
    from dentrix_zoho.source.audit import run_audit
    from dentrix_zoho.source.provider_map import load_provider_emails

    settings = load_settings()
    provider_map_path = settings.resolved_provider_map()
    result = run_audit(
        workspace.staging.path,
        workspace.reports_dir,
        image_root=settings.resolved_image_dir(),
        provider_map=load_provider_emails(provider_map_path) if provider_map_path else None,
    )
    summary = result.summary()
    context.log.info("source audit: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    table = "\n".join(
        ["| Finding | Count |", "|---|---:|"] + [f"| {f.title} | {f.count:,} |" for f in result.findings.values()]
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(result.object_counts.values()),
            "report_path": dg.MetadataValue.path(str(result.path)),
            "findings": dg.MetadataValue.md(table),
            "objects_staged": len(result.object_counts),
            **{f"finding/{k}": v for k, v in summary.items()},
        }
    )


audit_assets = [source_audit]
