"""``dentrix-zoho run JOB --office ID``: one migration job for one office, in this process.

The sample migration, the full migration, the delta of the cutover window, or staging and the
audit, for the office named (its partition, with an offices file), recorded in the Dagster
instance (``$DAGSTER_HOME``, else ``$DENTRIX_ZOHO_HOME/dagster``) so the UI shows the run beside
the daemon's. The console gets one line per step; Dagster's event stream goes to
``$DENTRIX_ZOHO_HOME/logs/``. Ends by listing the office's reports.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

import click

from dentrix_zoho.offices_cli import office_option

JOBS = ("stage_and_audit", "sample_migration", "full_migration", "delta_migration")


@click.command("run")
@click.argument("job", type=click.Choice(JOBS))
@office_option()
@click.option("-v", "--verbose", is_flag=True, help="Show Dagster's whole event stream here too.")
def run(job: str, office: str | None, verbose: bool) -> None:
    """Run JOB (stage_and_audit, sample_migration, full_migration, delta_migration) for one office.

    The run goes in this process, recorded in the Dagster instance with the office's tag. It refuses
    to start while the office has a run queued or in progress (the daemon's, or another of these).
    Exit status 0 when the run succeeded and every check passed, 1 otherwise, 2 on a usage error or
    a refusal.
    """
    import dagster as dg

    from dentrix_zoho.defs.offices import OFFICE_TAG, OFFICES_PARTITIONS_NAME, unfinished_runs_of
    from dentrix_zoho.defs.operator_log import operator_logger, python_logs_to
    from dentrix_zoho.offices import OfficesError
    from dentrix_zoho.settings import ensure_dagster_home, load_offices, load_settings

    try:
        offices = load_offices()
        chosen = offices.select(office)
    except OfficesError as exc:
        raise click.UsageError(str(exc)) from None
    settings = load_settings()
    home = settings.ensure_home().resolve()
    partition = chosen.office_id if offices.from_file else None
    ensure_dagster_home(home)
    instance = dg.DagsterInstance.get()
    if partition is not None and not instance.has_dynamic_partition(OFFICES_PARTITIONS_NAME, partition):
        # The offices sensor adds it on its next tick; a run started by hand does not wait for it.
        instance.add_dynamic_partitions(OFFICES_PARTITIONS_NAME, [partition])
        click.echo(f"added the partition of office {partition}")

    # This run is in-process, outside the daemon's queue: it must not start beside a queued or
    # running one of the same office (both would write the office's staging file and race each
    # other's Zoho writes), and its office tag makes the daemon hold that office's queued runs back.
    busy = unfinished_runs_of(instance, chosen.office_id)
    if busy:
        listed = ", ".join(f"{r.run_id} ({r.job_name}, {r.status.value})" for r in busy[:3])
        click.echo(f"office {chosen.office_id} already has {len(busy)} run(s) queued or in progress: {listed}. "
                   "Wait for them to finish, or cancel them in the Dagster UI, then run this again.", err=True)
        sys.exit(2)

    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    log_file = home / "logs" / f"{job}_{chosen.office_id}_{stamp}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = python_logs_to(log_file)
    try:
        from dentrix_zoho.definitions import build_definitions

        job_def = build_definitions().resolve_job_def(job)
        job_def = job_def.with_logger_defs({"operator": operator_logger(log_file, click.echo, verbose=verbose)})
        click.echo(f"== {job}, office {chosen.office_id} == (Dagster's event log: {log_file})")
        result = job_def.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False,
                                            run_config={"loggers": {"operator": {}}},
                                            tags={OFFICE_TAG: chosen.office_id})
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    click.echo(f"{job} for office {chosen.office_id}: {'succeeded' if result.success else 'FAILED'} "
               f"(run {result.run_id}); failed checks: "
               + (", ".join(f"{e.asset_key.to_user_string()}:{e.check_name}" for e in failed) or "none"))
    reports = chosen.reports_dir
    files = sorted(p.name for p in reports.glob("*") if p.is_file()) if reports.exists() else []
    click.echo(f"reports of office {chosen.office_id} (owner-only; they contain patient data): {reports}"
               + "".join(f"\n  {name}" for name in files))
    sys.exit(0 if result.success and not failed else 1)
