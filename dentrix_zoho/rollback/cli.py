"""``dentrix-zoho rollback``: undo one migration run, or the whole migration, from the ledger.

Prints ids, codes and counts only. The Zoho client is configured from the
``ZOHO_*`` environment (``ZohoConfig.from_env()``), the ledger from
``DENTRIX_ZOHO_LEDGER_URL`` / ``DENTRIX_ZOHO_HOME`` unless ``--url`` names one.
"""

from __future__ import annotations

from typing import cast

import click

from dentrix_zoho.ledger import Ledger, LedgerError
from dentrix_zoho.ledger.cli import open_ledger
from dentrix_zoho.ledger.text_table import text_table
from dentrix_zoho.rollback.execute import Policy
from dentrix_zoho.rollback.plan import DEFAULT_MODULE_ORDER, RollbackPlan
from dentrix_zoho.rollback.service import (
    POLICIES,
    breakdown,
    close_finished,
    make_plan,
    new_rollback_run_id,
    run_rollback,
    unfinished_rollback,
)


def _parse_within(values: tuple[str, ...]) -> dict[str, list[str]]:
    within: dict[str, list[str]] = {}
    for value in values:
        module, sep, objects = value.partition("=")
        if not sep or not module or not objects:
            raise click.BadParameter(f"expected MODULE=parent_object,child_object, got {value!r}")
        within[module.strip()] = [name.strip() for name in objects.split(",") if name.strip()]
    return within


@click.command(name="rollback")
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="Roll back this migration run only.")
@click.option("--all", "all_runs", is_flag=True, help="Roll back every migration run (the whole migration).")
@click.option("--dry-run", is_flag=True, help="Print the plan and its cost; change nothing.")
@click.option(
    "--policy",
    type=click.Choice(POLICIES),
    default="skip",
    show_default=True,
    help="Records a person changed in Zoho after our write: 'skip' leaves them as they are, "
    "'force' deletes or restores them anyway. Either way they are reported.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--office", "office_id", default=None, metavar="ID",
              help="Limit --all to one office (needed with an offices file; an office taken out of the file "
                   "is still known to the ledger and can be rolled back).")
@click.option(
    "--module-order",
    default=",".join(DEFAULT_MODULE_ORDER),
    show_default=True,
    help="Load order, parents first; deletes run the other way.",
)
@click.option(
    "--within",
    multiple=True,
    help="Load order of source objects sharing a module, e.g. Contacts=guarantor,patient.",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Do not read Modified_Time/Modified_By before touching a record (human edits go undetected).",
)
@click.option("--url", default=None, help="Ledger URL (default as for `dentrix-zoho ledger`).")
def rollback(
    run_id: str | None,
    all_runs: bool,
    dry_run: bool,
    policy: str,
    yes: bool,
    office_id: str | None,
    module_order: str,
    within: tuple[str, ...],
    no_check: bool,
    url: str | None,
) -> None:
    """Undo one migration run (--run RUN_ID) or the whole migration (--all).

    The plan comes from the ledger: delete what the run(s) created, children
    before parents; put back the pre-image of every record that existed before
    and was updated. It is printed with its records, API calls and credits per
    module, then carried out after you confirm (--yes skips the question,
    --dry-run stops after the plan).

    Human edits win: a record someone changed in Zoho after our write is
    reported and, under --policy skip (the default), left alone. Run the
    rollback as the Zoho user the migration wrote as.

    Resumable: if a rollback stops half-way, run the same command again; it
    carries on under the same ledger run and skips what is done.

    Exit status: 0 when everything planned was undone (or on --dry-run), 1 when
    something was left (human edits skipped, failures, missing pre-images) or
    the confirmation was declined, 2 on a usage error.
    """
    if (run_id is None) == (not all_runs):
        raise click.UsageError("give exactly one of --run RUN_ID or --all")
    offices_file = _offices_file_ids(office_id, all_runs)
    with open_ledger(url) as ledger:
        if office_id is not None and offices_file is not None:
            file, ids = offices_file
            if office_id not in ids and office_id not in {run.office_id for run in ledger.runs()}:
                raise click.UsageError(f"office {office_id!r} is neither in {file} nor in the ledger; "
                                       f"offices: {', '.join(ids)}")
        try:
            plan = make_plan(
                ledger,
                run_id,
                all_runs,
                office_id=office_id,
                module_order=[name.strip() for name in module_order.split(",") if name.strip()],
                within_module_order=_parse_within(within),
                check_human_edits=not no_check,
            )
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(plan.render())
        if dry_run:
            return
        if plan.is_empty:
            closed = close_finished(ledger, plan)
            if closed:
                click.echo(f"Rollback run {closed} had done everything before it stopped; marked succeeded.")
            return
        if not yes:
            click.confirm("Carry out this rollback?", abort=True)
        _execute(plan, ledger, policy)


def _offices_file_ids(office_id: str | None, all_runs: bool) -> tuple[str, list[str]] | None:
    """The offices file and its office ids, if one is in use; with one, --all is one office at a time."""
    from dentrix_zoho.offices import OfficesError
    from dentrix_zoho.settings import load_offices

    try:
        offices = load_offices()
    except OfficesError as exc:
        raise click.UsageError(str(exc)) from None
    if not offices.from_file:
        return None
    if office_id is None and all_runs:
        raise click.UsageError(
            f"{offices.file} lists {len(offices)} offices: roll back one at a time with --office ID --all")
    return str(offices.file), offices.ids


def _execute(plan: RollbackPlan, ledger: Ledger, policy: str) -> None:
    from dentrix_zoho.load.ledger_io import api_call_sink
    from dentrix_zoho.progress import reporting_to
    from dentrix_zoho.zoho import BudgetExceeded, ConfigError, ZohoClient, ZohoConfig, ZohoError

    resumed = unfinished_rollback(ledger, plan)
    rollback_run_id = resumed or new_rollback_run_id()
    if resumed:
        click.echo(f"Resuming rollback run {rollback_run_id} (it did not finish).")
    try:
        config = ZohoConfig.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    with ZohoClient(config, event_sink=api_call_sink(ledger, rollback_run_id)) as client:
        try:
            client.check_budget(plan.credits)
            with reporting_to(click.echo):  # progress lines on the console, at least every 10 s
                result = run_rollback(plan, client, ledger, rollback_run_id, policy=cast(Policy, policy))
        except BudgetExceeded as exc:
            raise click.ClickException(f"not enough Zoho credits for this rollback: {exc}") from None
        except ZohoError as exc:
            raise click.ClickException(
                f"rollback run {rollback_run_id} stopped: {exc} (run the same command again to resume)"
            ) from None
    click.echo(f"Rollback run {rollback_run_id}: {result.summary()}")
    rows = breakdown(result)
    if rows:
        click.echo(text_table(("what", "op", "module", "records"), [(w, o, m, str(n)) for w, o, m, n in rows]))
    if result.human_edits:
        click.echo(
            f"Records changed in Zoho after our write are in the ledger's audit log of run {rollback_run_id} "
            "(skipped: code HUMAN_EDITED; forced: operation human_edit)."
            + (" Run again with --policy force to overwrite them." if policy == "skip" else "")
        )
    if not result.complete:
        raise SystemExit(1)


# ``dentrix_zoho/cli.py`` registers the command under this name.
rollback_group = rollback
