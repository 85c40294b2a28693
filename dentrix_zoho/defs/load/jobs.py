"""The migration jobs: the sample (before approval) and the full migration (after it)."""

import dagster as dg

from dentrix_zoho.defs.load.assets import (
    APPROVAL_KEY,
    LOAD_GROUP,
    REPORTS_GROUP,
    SAMPLE_KEY,
)
from dentrix_zoho.defs.mapping.assets import SCOPE_TAG, SHAPED_GROUP
from dentrix_zoho.defs.plan.assets import PLAN_GROUP
from dentrix_zoho.defs.source.assets import STAGING_GROUP

# Deletions belong to the delta runs of the cutover window only.
_everything = dg.AssetSelection.groups(STAGING_GROUP, SHAPED_GROUP, PLAN_GROUP, LOAD_GROUP) - dg.AssetSelection.assets(
    dg.AssetKey(["zoho_load", "deletions"])
)

sample_migration_job = dg.define_asset_job(
    name="sample_migration",
    selection=(_everything | dg.AssetSelection.groups(REPORTS_GROUP)) - dg.AssetSelection.assets(APPROVAL_KEY),
    tags={SCOPE_TAG: "sample"},
    executor_def=dg.in_process_executor,
    description=(
        "Stage, pick a stratified sample of patients with all their children, shape, load it into Zoho, "
        "reconcile, and write the field-level diff report for a person to review before approving the map."
    ),
)

full_migration_job = dg.define_asset_job(
    name="full_migration",
    selection=_everything - dg.AssetSelection.assets(SAMPLE_KEY),
    tags={SCOPE_TAG: "full"},
    executor_def=dg.in_process_executor,
    description=(
        "Everything, in dependency order, gated on the approved map; resumable: run it again after any "
        "failure and it continues from the ledger without duplicating a record."
    ),
)

load_jobs = [sample_migration_job, full_migration_job]
