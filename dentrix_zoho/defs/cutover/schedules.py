"""The cutover schedule: the sensor's alternative, a delta run on every cron tick inside the window."""

from __future__ import annotations

from datetime import timezone
from typing import TYPE_CHECKING

import dagster as dg

from dentrix_zoho.cutover.window import load_cutover_window
from dentrix_zoho.defs.workspace_resource import WorkspaceResource
from dentrix_zoho.defs.cutover.sensors import (
    DELETION_POLICY_TAG,
    NO_WINDOW,
    TRIGGER_TAG,
    Clock,
    WindowLoader,
    utc_now,
)

if TYPE_CHECKING:
    from dentrix_zoho.defs.cutover.sensors import AnyJob, OfficesNow


def build_cutover_schedule(
    job: AnyJob,
    cron: str = "*/15 * * * *",
    window_loader: WindowLoader = load_cutover_window,
    *,
    clock: Clock = utc_now,
    name: str = "cutover_delta_schedule",
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
) -> dg.ScheduleDefinition:
    """Every ``cron`` tick inside the window requests ``job``; ticks outside it are skipped.

    No probe: a delta that finds nothing sends nothing, so an idle tick costs one
    key read per table. Prefer the sensor when the Dentrix server is under load.
    """

    @dg.schedule(
        cron_schedule=cron,
        job=job,
        name=name,
        execution_timezone="UTC",
        default_status=default_status,
        description="A delta run on every tick of the cutover window (the alternative to the cutover sensor).",
    )
    def cutover_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        window = window_loader()
        if window is None:
            return dg.SkipReason(f"outside the cutover window: {NO_WINDOW}")
        tick = context.scheduled_execution_time or clock()
        if tick.tzinfo is None:
            tick = tick.replace(tzinfo=timezone.utc)
        state = window.state(tick)
        if not state.open:
            return dg.SkipReason(f"outside the cutover window: {state.reason}")
        return dg.RunRequest(
            run_key=f"cutover-{tick.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}",
            tags={TRIGGER_TAG: "cutover_schedule", DELETION_POLICY_TAG: window.deletion_policy},
        )

    return cutover_schedule


def build_office_cutover_schedule(
    job: AnyJob,
    offices_loader: OfficesNow,
    cron: str = "*/15 * * * *",
    *,
    clock: Clock = utc_now,
    name: str = "cutover_delta_schedule",
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
) -> dg.ScheduleDefinition:
    """With an offices file: on every tick, a delta run for each office whose own window is open."""
    from dentrix_zoho.defs.offices import OFFICES_PARTITIONS_NAME

    @dg.schedule(
        cron_schedule=cron,
        job=job,
        name=name,
        execution_timezone="UTC",
        default_status=default_status,
        description="On every tick, a delta run of each office whose cutover window (offices file) is open "
                    "(the alternative to the cutover sensor).",
    )
    def cutover_schedule(
        context: dg.ScheduleEvaluationContext, workspace: WorkspaceResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        tick = context.scheduled_execution_time or clock()
        if tick.tzinfo is None:
            tick = tick.replace(tzinfo=timezone.utc)
        partitions = set(context.instance.get_dynamic_partitions(OFFICES_PARTITIONS_NAME))
        requests: list[dg.RunRequest] = []
        skipped: list[str] = []
        for office in offices_loader(workspace):
            state = office.cutover.state(tick) if office.cutover is not None else None
            if state is None or not state.open or office.office_id not in partitions:
                skipped.append(f"{office.office_id}: " + ("no cutover window" if state is None else
                               state.reason if not state.open else "no partition yet"))
                continue
            requests.append(dg.RunRequest(
                run_key=f"cutover-{office.office_id}-{tick.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}",
                partition_key=office.office_id,
                tags={TRIGGER_TAG: "cutover_schedule", DELETION_POLICY_TAG: office.cutover.deletion_policy},  # type: ignore[union-attr]
            ))
        return requests or dg.SkipReason("; ".join(skipped) or "no offices")

    return cutover_schedule
