"""``--office ID`` for the commands, and ``dentrix-zoho offices``: which office a command works on.

Without an offices file there is one office (``DENTRIX_OFFICE_ID``), and ``--office`` may only name
it. With one, ``--office`` picks the office (else ``DENTRIX_OFFICE_ID``, else the file's only office)
and the command reads and writes that office's folder, ``$DENTRIX_ZOHO_HOME/offices/<office>/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from dentrix_zoho.settings import Settings, load_offices, load_settings

F = TypeVar("F", bound=Callable[..., object])

OFFICE_HELP = (
    "Office of the offices file to work on (default: $DENTRIX_OFFICE_ID, else the file's only office); "
    "without an offices file, the one office of the environment."
)


def office_option(help_text: str = OFFICE_HELP) -> Callable[[F], F]:
    return click.option("--office", "office", default=None, metavar="ID", help=help_text)


def office_settings(office: str | None) -> Settings:
    """The settings of the office named (or implied); a usage error names the offices file and its offices."""
    from dentrix_zoho.offices import OfficesError

    try:
        return load_settings().for_office(office)
    except OfficesError as exc:
        raise click.UsageError(str(exc)) from None


def offices_file_in_use() -> bool:
    """Whether an offices file is in use (a broken one is a usage error naming file, line and key)."""
    from dentrix_zoho.offices import OfficesError

    try:
        return load_offices().from_file
    except OfficesError as exc:
        raise click.UsageError(str(exc)) from None


@click.command("offices")
def offices_command() -> None:
    """Validate the offices file and list its offices: Dentrix connection (no password), time zone,
    cutover window and state folder. Exit status 2 when the file is wrong (file, line and key named)."""
    from dentrix_zoho.offices import OfficesError

    try:
        offices = load_offices()
    except OfficesError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    if not offices.from_file:
        office = next(iter(offices))
        click.echo(f"no offices file: one office, {office.office_id} (DENTRIX_OFFICE_ID), state in {office.state_dir}")
        return
    click.echo(f"{offices.file}: {len(offices)} offices")
    for office in offices:
        window = (f"cutover {office.cutover.start.isoformat()} for {office.cutover.length_hours:g} h"
                  if office.cutover else "no cutover window")
        password = (f", password from ${office.connection.password_env}"
                    if office.connection is not None and office.connection.password_env else "")
        click.echo(f"  {office.office_id}: {office.describe_source()}{password}; {office.time_zone}; {window}; "
                   f"state in {office.state_dir}")
