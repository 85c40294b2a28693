"""``dentrix-zoho rollback``: show what a rollback would do and what it costs.

Executing a plan needs the Zoho client adapted to ``RollbackWriter``; until the
command is wired to it, ``plan`` is the read-only half: ids and counts only.
"""

from __future__ import annotations

import click

from dentrix_zoho.ledger import LedgerError
from dentrix_zoho.ledger.cli import open_ledger
from dentrix_zoho.rollback.plan import DEFAULT_MODULE_ORDER, plan_rollback


def _parse_within(values: tuple[str, ...]) -> dict[str, list[str]]:
    within: dict[str, list[str]] = {}
    for value in values:
        module, sep, objects = value.partition("=")
        if not sep or not module or not objects:
            raise click.BadParameter(f"expected MODULE=parent_object,child_object, got {value!r}")
        within[module.strip()] = [name.strip() for name in objects.split(",") if name.strip()]
    return within


@click.group(name="rollback")
def rollback_group() -> None:
    """Undo one migration run, or the whole migration, from the ledger."""


@rollback_group.command()
@click.option("--run", "run_id", default=None, help="Roll back this run only.")
@click.option("--all", "all_runs", is_flag=True, help="Roll back every migration run.")
@click.option("--office", "office_id", default=None, help="Limit --all to one office.")
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
@click.option("--no-check", is_flag=True, help="Do not read Modified_Time before touching a record.")
@click.option("--url", default=None, help="Ledger URL (default as for `dentrix-zoho ledger`).")
def plan(
    run_id: str | None,
    all_runs: bool,
    office_id: str | None,
    module_order: str,
    within: tuple[str, ...],
    no_check: bool,
    url: str | None,
) -> None:
    """Print the rollback plan: records, API calls and credits per module."""
    if (run_id is None) == (not all_runs):
        raise click.UsageError("give exactly one of --run RUN_ID or --all")
    with open_ledger(url) as ledger:
        try:
            result = plan_rollback(
                ledger,
                run_id,
                all_runs,
                [name.strip() for name in module_order.split(",") if name.strip()],
                within_module_order=_parse_within(within),
                office_id=office_id,
                check_human_edits=not no_check,
            )
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(result.render())
