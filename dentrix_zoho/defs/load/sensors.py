"""When a migration run fails or is canceled, its ledger run is closed and its merge claims released.

Thin: ``dentrix_zoho.org.ended_runs.close_ended_run`` does the work (and says why a run retried by
Dagster's run retries is safe). The ledger run of a migration run carries the Dagster run's id. One
sensor per status (a run status sensor watches one), both on by default: a ledger run left
``running`` keeps every other office waiting for the shared Contacts its run had claimed. A tick that
cannot reach the ledger fails and the next tick takes the same runs again (the cursor moves only past
what was handled); closing twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg

from dentrix_zoho.defs.offices import PARTITION_TAG  # the office, with an offices file
from dentrix_zoho.defs.workspace_resource import WorkspaceResource

if TYPE_CHECKING:
    from dentrix_zoho.defs.offices import AnyJob

FAILURE_SENSOR = "ledger_run_failure_sensor"
CANCELED_SENSOR = "ledger_run_canceled_sensor"


def _close(context: dg.RunStatusSensorContext, workspace: WorkspaceResource, status: str) -> None:
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.org.ended_runs import close_ended_run

    run = context.dagster_run
    with Ledger(workspace.resolved_ledger_url) as ledger:
        ended = close_ended_run(ledger, run.run_id, office_id=run.tags.get(PARTITION_TAG), status=status)
    context.log.info(f"{run.job_name} run {run.run_id} ended {run.status.value}: {ended.counts()}")


def build_ended_run_sensors(jobs: Sequence[AnyJob]) -> list[dg.SensorDefinition]:
    """The two sensors, watching ``jobs`` (the migration jobs: their steps open ledger runs)."""
    monitored = list(jobs)

    @dg.run_failure_sensor(
        name=FAILURE_SENSOR,
        monitored_jobs=monitored,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="A failed migration run: its ledger run is marked failed and its cross-office merge claims "
                    "released, so other offices load the people it had claimed (a claim whose write is in doubt "
                    "waits for the office's next run).",
    )
    def ledger_run_failure_sensor(context: dg.RunFailureSensorContext, workspace: WorkspaceResource) -> None:
        _close(context, workspace, "failed")

    @dg.run_status_sensor(
        name=CANCELED_SENSOR,
        run_status=dg.DagsterRunStatus.CANCELED,
        monitored_jobs=monitored,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="A canceled migration run: its ledger run is marked stopped and its cross-office merge claims "
                    "released, as for a failed one.",
    )
    def ledger_run_canceled_sensor(context: dg.RunStatusSensorContext, workspace: WorkspaceResource) -> None:
        _close(context, workspace, "stopped")

    return [ledger_run_failure_sensor, ledger_run_canceled_sensor]
