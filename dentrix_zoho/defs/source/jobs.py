"""Jobs of the audit & extract phase."""

from __future__ import annotations

import dagster as dg

from dentrix_zoho.defs.source.assets import STAGING_GROUP

stage_and_audit_job = dg.define_asset_job(
    name="stage_and_audit",
    selection=dg.AssetSelection.groups(STAGING_GROUP),
    description="Stage every Dentrix object into DuckDB and write the source audit report.",
    executor_def=dg.in_process_executor,
)

source_jobs = [stage_and_audit_job]
