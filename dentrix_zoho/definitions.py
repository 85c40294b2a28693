"""Every Dagster definition of dentrix-zoho, assembled (and nothing else).

Without an offices file: one office from the environment, nothing partitioned (as always).
With one (``DENTRIX_OFFICES_FILE``, else ``$DENTRIX_ZOHO_HOME/offices.yaml``): every migration
asset, check and the rollback job partitioned by office (dynamic partitions ``offices``, kept
in step with the file by ``offices_sensor``), the cutover triggers per office, and the org level
(the cross-office patient audit and its job, not partitioned).
"""

from __future__ import annotations

import os

import dagster as dg

from dentrix_zoho.defs.cutover.assets import build_cutover_assets
from dentrix_zoho.defs.cutover.jobs import build_office_cutover_triggers, cutover_jobs, cutover_schedule, cutover_sensor
from dentrix_zoho.defs.load.assets import build_load_assets
from dentrix_zoho.defs.load.jobs import load_jobs
from dentrix_zoho.defs.load.sensors import build_ended_run_sensors
from dentrix_zoho.defs.mapping.assets import build_mapping_assets
from dentrix_zoho.defs.offices import OFFICES_PARTITIONS, build_offices_sensor
from dentrix_zoho.defs.org.assets import build_org_assets, build_org_jobs
from dentrix_zoho.defs.plan.assets import build_plan_assets
from dentrix_zoho.defs.rollback.jobs import build_rollback_job
from dentrix_zoho.defs.source.assets import build_audit_assets, build_staging_assets
from dentrix_zoho.defs.source.jobs import source_jobs
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import WorkspaceResource
from dentrix_zoho.defs.zoho_resource import ZohoResource
from dentrix_zoho.settings import load_offices, load_settings


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
    # A broken offices file stops the code location here, with the file, line and key in the message.
    offices = load_offices()
    partitions = OFFICES_PARTITIONS if offices.from_file else None
    mapping_assets, mapping_checks = build_mapping_assets(partitions)
    assets = [*build_staging_assets(partitions), *build_audit_assets(partitions), *mapping_assets,
              *build_plan_assets(partitions), *build_load_assets(partitions), *build_cutover_assets(partitions),
              *build_org_assets(partitions)]  # the org level: only with an offices file
    sensors: list[dg.SensorDefinition] = [cutover_sensor]
    schedules: list[dg.ScheduleDefinition] = [cutover_schedule]
    if offices.from_file:
        office_sensor, office_schedule = build_office_cutover_triggers(offices)
        sensors, schedules = [office_sensor, build_offices_sensor(),
                              *build_ended_run_sensors([*load_jobs, *cutover_jobs])], [office_schedule]
    return dg.Definitions(
        assets=_owned(assets),
        asset_checks=[*mapping_checks],
        jobs=[*source_jobs, *load_jobs, *cutover_jobs, build_rollback_job(partitions), *build_org_jobs(partitions)],
        sensors=sensors,
        schedules=schedules,
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
                offices_file=str(offices.file) if offices.file is not None else None,
            ),
        },
    )


defs = build_definitions()
