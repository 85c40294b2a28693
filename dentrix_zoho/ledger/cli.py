"""``dentrix-zoho ledger``: verify the audit chain and inspect runs.

Prints ids, codes and counts only; the ledger URL is shown with its password masked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url

from dentrix_zoho.ledger.engine import mask_url
from dentrix_zoho.ledger.ledger import Ledger
from dentrix_zoho.ledger.text_table import text_table
from dentrix_zoho.settings import load_settings


def open_ledger(url: str | None) -> Ledger:
    """The existing ledger at ``url``, or the one the environment names.

    Inspecting must not create: a mistyped SQLite path would otherwise verify
    as an empty, intact ledger.
    """
    resolved = url or load_settings().resolved_ledger_url
    database = make_url(resolved).database if resolved.startswith("sqlite") else None
    if database and database != ":memory:" and not Path(database).exists():
        raise click.ClickException(f"no ledger at {mask_url(resolved)}")
    try:
        return Ledger(resolved)
    except Exception as exc:
        # Driver messages can echo the DSN; name the error class, not the text.
        raise click.ClickException(f"cannot open the ledger at {mask_url(resolved)}: {type(exc).__name__}") from None


@click.group(name="ledger")
@click.option(
    "--url",
    default=None,
    help="Ledger URL (default: DENTRIX_ZOHO_LEDGER_URL, else $DENTRIX_ZOHO_HOME/ledger.sqlite).",
)
@click.pass_context
def ledger_group(ctx: click.Context, url: str | None) -> None:
    """Inspect and verify the migration ledger."""
    ctx.obj = url


def _with_ledger(command: Callable[..., None]) -> Callable[..., None]:
    # Opened only when a sub-command runs, so `--help` creates no database.
    @click.pass_context
    @functools.wraps(command)
    def run(ctx: click.Context, *args: Any, **kwargs: Any) -> None:
        with open_ledger(ctx.obj) as ledger:
            command(ledger, *args, **kwargs)

    return run


@ledger_group.command()
@_with_ledger
def verify(ledger: Ledger) -> None:
    """Check the audit log's hash chain; exit 1 if it is broken."""
    report = ledger.verify_chain()
    where = mask_url(ledger.url)
    if report.ok:
        click.echo(f"OK: {report.entries} audit entries, chain intact ({where})")
        return
    click.echo(
        f"BROKEN at seq {report.first_broken_seq}: {report.reason} "
        f"({report.entries} entries verified before it; {where})",
        err=True,
    )
    raise SystemExit(1)


@ledger_group.command()
@_with_ledger
def runs(ledger: Ledger) -> None:
    """List runs with their audit and crosswalk counts."""
    summaries = ledger.run_summaries()
    if not summaries:
        click.echo(f"no runs in {mask_url(ledger.url)}")
        return
    header = ("run id", "kind", "office", "status", "started", "api ops", "errors", "credits", "written", "created")
    rows = [
        (
            item.run.run_id,
            item.run.kind,
            item.run.office_id,
            item.run.status,
            item.run.started_at[:19],
            str(item.audit_entries),
            str(item.errors),
            str(item.credits),
            str(item.records_written),
            str(item.records_created),
        )
        for item in summaries
    ]
    click.echo(text_table(header, rows))


@ledger_group.command("show-run")
@click.argument("run_id")
@_with_ledger
def show_run(ledger: Ledger, run_id: str) -> None:
    """Counts per operation, module and outcome for one run."""
    summaries = ledger.run_summaries(run_id)
    if not summaries:
        raise click.ClickException(f"no run {run_id} in the ledger")
    item = summaries[0]
    run = item.run
    click.echo(f"run {run.run_id}: {run.kind}, office {run.office_id}, {run.status}")
    click.echo(f"started {run.started_at}, finished {run.finished_at or '-'}, spec {run.spec_hash or '-'}")
    click.echo(
        f"records written {item.records_written}, created {item.records_created}, "
        f"credits {item.credits}, quarantined {len(ledger.quarantine_rows(run_id))}"
    )
    rows = [
        (operation, module, outcome, str(count))
        for (operation, module, outcome), count in sorted(item.by_module_outcome.items())
    ]
    if rows:
        click.echo(text_table(("operation", "module", "outcome", "count"), rows))
    else:
        click.echo("no audit entries")
