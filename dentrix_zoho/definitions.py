"""Every Dagster definition of dentrix-zoho, assembled (and nothing else)."""

from __future__ import annotations

import os

import dagster as dg

from dentrix_zoho.defs.cutover.assets import cutover_assets
from dentrix_zoho.defs.cutover.jobs import cutover_jobs, cutover_schedule, cutover_sensor
from dentrix_zoho.defs.load.assets import load_assets
from dentrix_zoho.defs.load.jobs import load_jobs
from dentrix_zoho.defs.mapping.assets import mapping_assets, mapping_checks
from dentrix_zoho.defs.plan.assets import plan_assets
from dentrix_zoho.defs.rollback.jobs import rollback_jobs
from dentrix_zoho.defs.source.assets import audit_assets, staging_assets
from dentrix_zoho.defs.source.jobs import source_jobs
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import WorkspaceResource
from dentrix_zoho.defs.zoho_resource import ZohoResource
from dentrix_zoho.settings import load_settings


# Who answers for every asset in the UI's catalog: the migration team at the controls, one value for all.
ASSET_OWNERS = ["team:migration"]


def _owned(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    return list(dg.map_asset_specs(lambda spec: spec.replace_attributes(owners=ASSET_OWNERS), assets))


def _env_or(name: str, default: str | None) -> str | dg.EnvVar | None:
    # EnvVar keeps a secret-bearing value (an ODBC string with PWD=) out of the
    # run config shown in the UI; an unset variable falls back to the default.
    return dg.EnvVar(name) if os.environ.get(name) else default


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    home = str(settings.home.expanduser().resolve())
    return dg.Definitions(
        assets=_owned([*staging_assets, *audit_assets, *mapping_assets, *plan_assets, *load_assets, *cutover_assets]),
        asset_checks=[*mapping_checks],
        jobs=[*source_jobs, *load_jobs, *cutover_jobs, *rollback_jobs],
        sensors=[cutover_sensor],
        schedules=[cutover_schedule],
        resources={
            "dentrix": DentrixSourceResource(
                source=_env_or("DENTRIX_SOURCE", None),
                schema_name=settings.source_schema,
                demo_practice_path=str(settings.home.expanduser().resolve() / "demo_practice.db"),
            ),
            "zoho": ZohoResource.from_env_vars(),
            "workspace": WorkspaceResource(
                home=home,
                office_id=settings.office_id,
                ledger_url=_env_or("DENTRIX_ZOHO_LEDGER_URL", None),
            ),
        },
    )


defs = build_definitions()
