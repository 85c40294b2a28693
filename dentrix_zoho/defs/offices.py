"""Offices as Dagster partitions: the ``offices`` dynamic partitions and the sensor that keeps them in step with the file.

Thin: the file is read by ``dentrix_zoho.offices``; whether a removed office still has records in
Zoho is the rollback plan's question (``dentrix_zoho.rollback.service.make_plan``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import dagster as dg

from dentrix_zoho.defs.workspace_resource import WorkspaceResource
from dentrix_zoho.offices import Offices, read_offices_file

if TYPE_CHECKING:
    # define_asset_job returns this class; Dagster does not export it at the top level.
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

    # A job the sensors and schedules target: built, or as define_asset_job returns it.
    AnyJob: TypeAlias = dg.JobDefinition | UnresolvedAssetJobDefinition

OFFICES_PARTITIONS_NAME = "offices"
OFFICES_PARTITIONS = dg.DynamicPartitionsDefinition(name=OFFICES_PARTITIONS_NAME)

# Asset checks carry the office partition so the UI shows each office's gates apart (accounting,
# reconciliation, zero loss); Dagster 1.13 marks a check spec's partitions_def as a preview.
warnings.filterwarnings("ignore", message=r".*partitions_def on an AssetCheckSpec.*")

OfficesLoader = Callable[[WorkspaceResource], Offices]

# The run tag the deploy configurations limit to one run per office (deploy/local/dagster.yaml);
# partition runs also carry Dagster's own dagster/partition, limited the same way.
OFFICE_TAG = "dentrix_zoho/office"
PARTITION_TAG = "dagster/partition"
_UNFINISHED = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def unfinished_runs_of(instance: dg.DagsterInstance, office_id: str) -> list[dg.DagsterRun]:
    """Runs of the office that are queued or going, by either tag (newest first, each once)."""
    seen: dict[str, dg.DagsterRun] = {}
    for tag in (OFFICE_TAG, PARTITION_TAG):
        for run in instance.get_runs(dg.RunsFilter(statuses=list(_UNFINISHED), tags={tag: office_id})):
            seen.setdefault(run.run_id, run)
    return list(seen.values())


def offices_of(workspace: WorkspaceResource) -> Offices:
    """The offices file as it is now (read on every tick: it is edited while the code location runs)."""
    if workspace.offices_file is None:
        raise RuntimeError("the offices sensor needs the workspace's offices file")
    from pathlib import Path

    return read_offices_file(Path(workspace.offices_file), workspace.home_path)


def rollback_hint(office_id: str) -> str:
    return f"dentrix-zoho rollback --office {office_id} --all"


def records_left(workspace: WorkspaceResource, office_id: str) -> int:
    """Records a whole rollback of the office would still delete or restore in Zoho (0: nothing left)."""
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.rollback.service import make_plan

    with Ledger(workspace.resolved_ledger_url) as ledger:
        plan = make_plan(ledger, None, True, office_id=office_id, check_human_edits=False)
    return sum(plan.counts().values())


def build_offices_sensor(
    loader: OfficesLoader = offices_of,
    *,
    name: str = "offices_sensor",
    minimum_interval_seconds: int = 60,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """Adds a partition for every office in the file; deletes the partition of an office taken out of it
    only once nothing of it is left in Zoho (else logs how to roll it back first, and keeps it)."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Keeps the 'offices' partitions in step with the offices file: a new office gets its partition; "
            "an office taken out of the file loses its partition only when the ledger holds none of its "
            "records in Zoho (roll it back first: dentrix-zoho rollback --office ID --all)."
        ),
    )
    def offices_sensor(context: dg.SensorEvaluationContext, workspace: WorkspaceResource) -> dg.SensorResult | dg.SkipReason:
        # A broken file raises: the tick fails with the file, line and key, and no partition changes.
        offices = loader(workspace)
        existing = list(context.instance.get_dynamic_partitions(OFFICES_PARTITIONS_NAME))
        added = [office_id for office_id in offices.ids if office_id not in existing]
        removed = [office_id for office_id in existing if office_id not in offices.by_id]
        deleted: list[str] = []
        kept: list[str] = []
        for office_id in removed:
            left = records_left(workspace, office_id)
            if left:
                kept.append(office_id)
                context.log.error(
                    f"office {office_id} is no longer in {offices.file}, but {left:,} of its records are in Zoho "
                    f"(ledger): its partition is kept. Roll it back first with `{rollback_hint(office_id)}` "
                    "(or put the office back in the file); the partition goes on the next tick after that."
                )
            else:
                deleted.append(office_id)
        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        if added:
            context.log.info(f"adding office partition(s): {', '.join(added)}")
            requests.append(dg.AddDynamicPartitionsRequest(OFFICES_PARTITIONS_NAME, added))
        if deleted:
            context.log.info(f"deleting the partition(s) of office(s) taken out of the file with nothing in Zoho: "
                             f"{', '.join(deleted)}")
            requests.append(dg.DeleteDynamicPartitionsRequest(OFFICES_PARTITIONS_NAME, deleted))
        if not requests:
            held = "".join(f"; kept the partition of office {office_id}, no longer in the file: its records are in "
                           f"Zoho, roll it back first with `{rollback_hint(office_id)}`" for office_id in kept)
            return dg.SkipReason(f"{len(offices)} office partition(s) in step with {offices.file}{held}")
        return dg.SensorResult(dynamic_partitions_requests=requests)

    return offices_sensor
