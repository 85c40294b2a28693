"""The delta run of the cutover window, and its sensor and schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from dentrix_zoho.cutover.window import DEFAULT_POLL_SECONDS
from dentrix_zoho.defs.cutover.assets import DELETIONS_KEY, DELTA_KEY
from dentrix_zoho.defs.cutover.schedules import build_cutover_schedule, build_office_cutover_schedule
from dentrix_zoho.defs.cutover.sensors import build_cutover_sensor, build_office_cutover_sensor
from dentrix_zoho.defs.load.assets import LOAD_GROUP, RECONCILIATION_KEY, SAMPLE_KEY
from dentrix_zoho.defs.mapping.assets import SCOPE_TAG, SHAPED_GROUP

if TYPE_CHECKING:
    from dentrix_zoho.offices import Offices

delta_migration_job = dg.define_asset_job(
    name="delta_migration",
    selection=(
        dg.AssetSelection.assets(DELTA_KEY)
        | dg.AssetSelection.groups(SHAPED_GROUP, LOAD_GROUP)
    ) - dg.AssetSelection.assets(SAMPLE_KEY),
    tags={SCOPE_TAG: "delta"},
    executor_def=dg.in_process_executor,
    description=(
        "During the cutover window: read only what changed in Dentrix, re-shape, send only the records whose "
        "content changed (upserts), apply deletions by policy, reconcile. Gated on the approved map."
    ),
)

cutover_sensor = build_cutover_sensor(delta_migration_job)
cutover_schedule = build_cutover_schedule(delta_migration_job)


def build_office_cutover_triggers(offices: Offices) -> tuple[dg.SensorDefinition, dg.ScheduleDefinition]:
    """The sensor and schedule with an offices file: each office's own window, a run for its partition.

    The sensor polls as often as the most eager office's window asks (read when the code loads).
    """
    from dentrix_zoho.defs.offices import offices_of

    polls = [office.cutover.poll_interval_seconds for office in offices if office.cutover is not None]
    sensor = build_office_cutover_sensor(delta_migration_job, offices_of,
                                         minimum_interval_seconds=min(polls, default=DEFAULT_POLL_SECONDS))
    return sensor, build_office_cutover_schedule(delta_migration_job, offices_of)


cutover_jobs = [delta_migration_job]
__all__ = ["RECONCILIATION_KEY", "DELETIONS_KEY", "build_office_cutover_triggers", "cutover_jobs", "cutover_schedule",
           "cutover_sensor"]
