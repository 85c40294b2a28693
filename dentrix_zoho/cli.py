"""The ``dentrix-zoho`` command.

Sub-commands live next to the code they drive and are imported only when
called, so ``dentrix-zoho --help`` stays fast and a missing optional system
library (unixODBC) breaks only the command that needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> ("module:attribute", one-line help shown by --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "dentrix_zoho.demo_cli:demo",
        "Migrate a synthetic practice into a local Zoho emulator, end to end (make demo).",
    ),
    "demo-practice": (
        "dentrix_zoho.source.synthetic.cli:demo_practice",
        "Generate a synthetic Dentrix practice database (SQLite).",
    ),
    "zoho-emulator": (
        "dentrix_zoho.zoho_emulator.cli:zoho_emulator",
        "Run the local Zoho CRM v8 emulator on loopback.",
    ),
    "stage": (
        "dentrix_zoho.source.cli:stage",
        "Stage every Dentrix object into DuckDB (outside Dagster).",
    ),
    "audit": (
        "dentrix_zoho.source.cli:audit",
        "Write the source audit report from the staged tables.",
    ),
    "map": (
        "dentrix_zoho.mapping.cli:map_group",
        "Propose, show and approve the Dentrix-to-Zoho field map.",
    ),
    "ledger": (
        "dentrix_zoho.ledger.cli:ledger_group",
        "Inspect and verify the migration ledger.",
    ),
    "estimate": (
        "dentrix_zoho.plan.cli:estimate",
        "Calls, credits, hours and days the migration needs on the customer's Zoho plan (no API call).",
    ),
    "rollback": (
        "dentrix_zoho.rollback.cli:rollback",
        "Plan and run a rollback of one run or the whole migration, from the ledger.",
    ),
    "offices": (
        "dentrix_zoho.offices_cli:offices_command",
        "Validate the offices file and list its offices (connection without password, zone, window, folder).",
    ),
    "org-audit": (
        "dentrix_zoho.org.cli:org_audit",
        "Find patients seen at several offices (offices file) in their staged snapshots; under merge, record them.",
    ),
    "run": (
        "dentrix_zoho.defs.run_cli:run",
        "Run one migration job (sample, full, delta, stage and audit) for one office, in this process.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        module = importlib.import_module(module_name)
        command: Any = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(package_name="dentrix-zoho")
def main() -> None:
    """Migrate a Dentrix G-series practice to Zoho CRM.

    Configuration comes from the environment: DENTRIX_SOURCE (SQLAlchemy URL
    or ODBC connection string), DENTRIX_ZOHO_HOME (working folder, default
    .dentrix_zoho), DENTRIX_OFFICE_ID (default office-1) and the ZOHO_*
    variables described in the README. Many offices: an offices file
    (DENTRIX_OFFICES_FILE, else $DENTRIX_ZOHO_HOME/offices.yaml), and
    --office ID on the commands that work on one office.
    """


if __name__ == "__main__":
    main()
