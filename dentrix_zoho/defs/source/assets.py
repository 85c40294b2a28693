"""Phase 1, audit & extract: one asset per Dentrix object, staged together by one multi-asset run; then the source audit."""


import time
from collections.abc import Iterator

import dagster as dg

from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import WorkspaceResource, duckdb_pool
from dentrix_zoho.progress import Progress
from dentrix_zoho.source.catalog import CATALOG, CatalogObject
from dentrix_zoho.staging.store import StageFailure, new_snapshot_id

STAGING_GROUP = "dentrix"


def staged_asset_key(object_name: str) -> dg.AssetKey:
    return dg.AssetKey(["dentrix", object_name])


def _column_schema(columns: tuple[tuple[str, str], ...]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=n, type=t) for n, t in columns])


def _staging_spec(obj: CatalogObject) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=staged_asset_key(obj.name),
        group_name=STAGING_GROUP,
        kinds={"duckdb", "sql"},
        description=(
            f"Dentrix {obj.kind} `admin.{obj.name}` staged into DuckDB as `dentrix.{obj.name}`: "
            f"trimmed, typed, with office id, source key, row hash and snapshot id. {obj.description}"
        ),
        metadata={"dentrix_object": obj.name, "key_columns": ", ".join(obj.key)},
    )


def build_staging_assets(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetsDefinition]:
    """The staging multi-asset; with ``partitions_def`` (offices), one office per run."""

    @dg.multi_asset(
        name="dentrix_staging",
        specs=[_staging_spec(obj) for obj in CATALOG.values()],
        can_subset=True,
        pool=duckdb_pool(partitions_def),
        partitions_def=partitions_def,
        description=(
            "Every selected Dentrix object staged in one run: one DuckDB writer, reader processes "
            "(DENTRIX_EXTRACT_WORKERS) reading the next objects while it loads. Each object is its own "
            "asset, committed on its own; one that fails leaves its previous snapshot and fails the step."
        ),
    )
    def dentrix_staging(
        context: dg.AssetExecutionContext,
        dentrix: DentrixSourceResource,
        workspace: WorkspaceResource,
    ) -> Iterator[dg.MaterializeResult]:
        office = workspace.scope(context)
        selected = [obj for obj in CATALOG.values() if staged_asset_key(obj.name) in context.selected_asset_keys]
        # A progress line at least every 10 s of staging: objects done of the selection, and the rows of
        # the object under way.
        staged = Progress("staging", len(selected), unit="objects", sink=context.log.info)

        def progress(name: str, rows: int) -> None:
            staged.poke(f"{name}: {rows:,} rows so far")

        snapshot_id = new_snapshot_id()
        started = time.perf_counter()
        staged_rows = 0
        failures: list[StageFailure] = []
        context.log.info(f"staging {len(selected)} Dentrix objects of office {office.office_id}, snapshot {snapshot_id}")
        with dentrix.open(office) as conn, office.staging.connect() as con:
            outcomes = office.staging.stage_many(
                con, conn, selected, office_id=office.office_id, snapshot_id=snapshot_id, progress=progress
            )
            for done, outcome in enumerate(outcomes, start=1):
                staged.advance(1)
                if isinstance(outcome, StageFailure):
                    context.log.error(f"[{done}/{len(selected)}] {outcome.error}")
                    failures.append(outcome)
                    continue
                staged_rows += outcome.rows
                context.log.info(
                    f"[{done}/{len(selected)}] {outcome.object_name}: {outcome.rows:,} rows in {outcome.seconds:.2f}s"
                    + (f", {outcome.rejected_values:,} values and {outcome.rejected_rows:,} rows rejected "
                       "(staging_meta.rejects)" if outcome.rejected_values or outcome.rejected_rows else "")
                )
                yield dg.MaterializeResult(
                    asset_key=staged_asset_key(outcome.object_name),
                    metadata={
                        "dagster/row_count": outcome.rows,
                        "dagster/column_schema": _column_schema(outcome.columns),
                        "snapshot_id": outcome.snapshot_id,
                        "seconds": round(outcome.seconds, 3),
                        "columns_missing_in_source": ", ".join(outcome.missing_optional) or "none",
                        # Counts only: values staged NULL because they did not convert, rows whose key did not.
                        "rejected_values": outcome.rejected_values,
                        "rejected_rows": outcome.rejected_rows,
                    },
                )
        seconds = time.perf_counter() - started
        context.log.info(
            f"staged {len(selected) - len(failures)} of {len(selected)} objects, {staged_rows:,} rows in "
            f"{seconds:.1f}s ({staged_rows / seconds if seconds else 0:,.0f} rows/s)"
        )
        if failures:
            raise dg.Failure(
                description=f"{len(failures)} Dentrix objects could not be staged (their previous snapshots are kept): "
                + "; ".join(str(f.error) for f in failures),
                metadata={"failed_objects": ", ".join(f.object_name for f in failures)},
            )


    return [dentrix_staging]


staging_assets = build_staging_assets()
dentrix_staging = staging_assets[0]


def build_audit_assets(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetsDefinition]:
    """The source audit; with ``partitions_def`` (offices), one office's audit per run."""

    @dg.asset(
        key=dg.AssetKey(["dentrix", "source_audit"]),
        group_name=STAGING_GROUP,
        kinds={"duckdb", "markdown"},
        pool=duckdb_pool(partitions_def),
        partitions_def=partitions_def,
        deps=[staged_asset_key(name) for name in CATALOG],
        description=(
            "The source audit: version signals, counts per object, practice-defined fields, duplicate "
            "patient candidates, orphans, providers without e-mail, insurance plans in use, open claims, "
            "appointment history depth, missing and over-limit image files, values staging could not convert "
            "per object and column. The report file may list "
            "record ids; the metadata here holds counts only."
        ),
    )
    def source_audit(context: dg.AssetExecutionContext, workspace: WorkspaceResource) -> dg.MaterializeResult:
        from dentrix_zoho.source.audit import run_audit
        from dentrix_zoho.source.provider_map import load_provider_emails

        office = workspace.scope(context)
        provider_map_path = office.provider_map
        result = run_audit(
            office.staging.path,
            office.reports_dir,
            image_root=office.image_dir,
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
                **{f"rejected_values/{name}": n for name, n in result.rejects_by_object().items()},
            }
        )

    return [source_audit]


audit_assets = build_audit_assets()
[source_audit] = audit_assets
