"""The rollback as a Dagster job: plan from the ledger, log the plan, carry it out, publish counts.

Thin: the work is ``dentrix_zoho.rollback.service``. Metadata and logs hold counts, ids and codes only.
"""

from typing import cast

import dagster as dg
from pydantic import Field

from dentrix_zoho.defs.load.resources import CallTally, open_ledger, zoho_client
from dentrix_zoho.progress import reporting_to
from dentrix_zoho.defs.workspace_resource import WorkspaceResource
from dentrix_zoho.defs.zoho_resource import ZohoResource, zoho_pool_name_from_env
from dentrix_zoho.ledger import LedgerError
from dentrix_zoho.rollback.execute import Policy
from dentrix_zoho.rollback.service import (
    POLICIES,
    close_finished,
    make_plan,
    plan_counts,
    result_counts,
    run_rollback,
    unfinished_rollback,
)


class RollbackConfig(dg.Config):
    run_id: str | None = Field(default=None, description="Roll back this migration run only.")
    all_runs: bool = Field(default=False, description="Roll back every migration run of this office.")
    dry_run: bool = Field(default=False, description="Log the plan and its cost; change nothing.")
    policy: str = Field(
        default="skip",
        description="Records a person changed in Zoho after our write: 'skip' (report, leave) or 'force'.",
    )


@dg.op(
    name="rollback",
    pool=zoho_pool_name_from_env(),
    description="Undo one run or the whole migration from the ledger; human-edited records are reported.",
)
def rollback_op(
    context: dg.OpExecutionContext, config: RollbackConfig, workspace: WorkspaceResource, zoho: ZohoResource
) -> dg.Output[dict[str, int]]:
    if (config.run_id is None) == (not config.all_runs):
        raise dg.Failure("give exactly one of run_id or all_runs: true")
    if config.policy not in POLICIES:
        raise dg.Failure(f"policy must be one of {', '.join(POLICIES)}, not {config.policy!r}")
    # An office taken out of the offices file keeps its partition until it is rolled back: in_file=False.
    office = workspace.scope(context, in_file=False)
    with open_ledger(office) as ledger:
        if config.run_id is not None and office.partitioned:
            run = ledger.run(config.run_id)
            if run is not None and run.office_id != office.office_id:
                raise dg.Failure(f"run {config.run_id} belongs to office {run.office_id}, not to this run's "
                                 f"office {office.office_id}: launch the rollback for partition {run.office_id}")
        try:
            plan = make_plan(
                ledger,
                config.run_id,
                config.all_runs,
                office_id=office.office_id if config.all_runs or office.partitioned else None,
            )
        except LedgerError as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info("rollback plan:\n%s", plan.render())
        planned = plan_counts(plan)
        metadata: dict[str, dg.RawMetadataValue] = {f"plan.{k}": v for k, v in planned.items()}
        metadata["target"] = plan.target
        if config.dry_run or plan.is_empty:
            metadata["dry_run"] = config.dry_run
            if not config.dry_run and (closed := close_finished(ledger, plan)):
                context.log.info("rollback run %s had done everything before it stopped; marked succeeded", closed)
            return dg.Output(planned, metadata=metadata)
        # A rollback of the same target that did not finish goes on under its ledger run;
        # otherwise this Dagster run's id names the rollback in the ledger.
        rollback_run_id = unfinished_rollback(ledger, plan) or context.run_id
        if rollback_run_id != context.run_id:
            context.log.info("resuming rollback run %s (it did not finish)", rollback_run_id)
        tally = CallTally()
        with zoho_client(zoho, ledger, rollback_run_id, tally) as client, reporting_to(context.log.info):
            result = run_rollback(plan, client, ledger, rollback_run_id, policy=cast(Policy, config.policy))
        counts = result_counts(result)
        metadata["rollback_run_id"] = rollback_run_id
        metadata.update(tally.metadata())
        metadata.update({f"result.{k}": v for k, v in counts.items()})
        context.log.info("rollback %s: %s", plan.target, result.summary())
        if not result.complete:
            raise dg.Failure(
                f"rollback of {plan.target} left work undone: {result.summary()}",
                metadata=metadata,
            )
        return dg.Output(counts, metadata=metadata)


def build_rollback_job(partitions_def: dg.PartitionsDefinition | None = None) -> dg.JobDefinition:
    """The rollback job; with ``partitions_def`` (offices), for one office: its partition."""

    @dg.job(
        name="rollback_migration",
        description=(
            "Roll back one migration run (run_id) or the whole migration (all_runs) of "
            + ("this partition's office" if partitions_def is not None else "the office")
            + " from the ledger: delete what was created, children first, restore the pre-image of what was "
            "updated; resumable by running it again."
        ),
        executor_def=dg.in_process_executor,
        partitions_def=partitions_def,
    )
    def rollback_migration_job() -> None:
        rollback_op()

    return rollback_migration_job


rollback_migration_job = build_rollback_job()
rollback_jobs = [rollback_migration_job]
