"""``dentrix-zoho estimate``: calls, credits, hours and calendar days of the migration on a Zoho plan."""

from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_FITS = 0
EXIT_CANNOT = 2
EXIT_DAYS = 3
SCHEMA_FILE = "zoho_schema.json"  # written by schema set-up (defs/load/state.py): the custom fields exist


def _ledger_if_any(url: str, home: Path):  # type: ignore[no-untyped-def]
    """The migration ledger when there is one (a re-run sends only what changed), else None."""
    from dentrix_zoho.ledger import Ledger

    default = home / "ledger.sqlite"
    if url.startswith("sqlite:///") and Path(url.removeprefix("sqlite:///")) == default.resolve():
        if not default.exists():
            return None
    return Ledger(url)


@click.command(epilog="""\b
Exit status:
  0  fits in one day
  3  needs several days; ZOHO_ON_BUDGET_EXHAUSTED=pause: run it, it pauses for credits
  2  cannot run (no API access, more than 30 days), refused (several days under
     ZOHO_ON_BUDGET_EXHAUSTED=stop), bad input, or nothing shaped yet
""")
@click.option("--edition", default=None,
              help="Zoho CRM edition: free, standard (starter), professional, enterprise (zoho_one), ultimate "
                   "(crm_plus). Default $ZOHO_EDITION, else enterprise. Sets credits per 24 h and concurrency.")
@click.option("--users", type=int, default=None,
              help="Licensed users in the org, 1-100,000 (each adds credits per 24 h). Default $ZOHO_USERS, else 1.")
@click.option("--addon-credits", type=int, default=None,
              help="API credits bought as add-ons, per 24 h. Default $ZOHO_ADDON_CREDITS, else 0.")
@click.option("--reserve", type=float, default=None,
              help="Share of the day's credits left to the org's other integrations, 0-0.9. "
                   "Default $ZOHO_PLAN_RESERVE, else 0.20.")
@click.option("--latency-ms", type=float, default=None,
              help="Round trip of one API call, in ms, for the wall time. Default $ZOHO_LATENCY_MS, else 300.")
@click.option("--concurrency", type=int, default=None,
              help="Concurrent calls to use, at most the edition's (10 for heavy calls in every edition). "
                   "Default $ZOHO_MAX_CONCURRENCY, else the edition's.")
@click.option("--scope", type=click.Choice(["sample", "full"]), default=None,
              help="The stratified sample (needs zoho_shaped/migration_sample) or everything. "
                   "Default $DENTRIX_ZOHO_SCOPE, else full.")
@click.option("--on-budget-exhausted", type=click.Choice(["pause", "stop"]), default=None,
              help="What the run does when credits run out; a several-day plan needs pause. "
                   "Default $ZOHO_ON_BUDGET_EXHAUSTED, else stop.")
@click.option("--write-path", type=click.Choice(["auto", "records", "bulk"]), default=None,
              help="Keyed modules: the planner's choice, the record API only, or Bulk Write where it can. "
                   "Default $ZOHO_WRITE_PATH, else auto.")
@click.option("--office", default=None, help="Office to estimate. Default $DENTRIX_OFFICE_ID, else office-1 (with an "
              "offices file: else the file's only office; its staging and reports are in its own folder).")
def estimate(edition: str | None, users: int | None, addon_credits: int | None, reserve: float | None,
             latency_ms: float | None, concurrency: int | None, scope: str | None, on_budget_exhausted: str | None,
             write_path: str | None, office: str | None) -> None:
    """Estimate the migration on the customer's Zoho plan, before any write.

    Reads what is shaped in $DENTRIX_ZOHO_HOME/staging.duckdb (and, if a migration ledger exists,
    sends only rows changed since the last load), and gives per module the records, the calls and
    credits by the record API and by Bulk Write where Zoho supports it, the chosen path and why,
    the wall time at --latency-ms and the edition's concurrency, and the calendar days under the
    rolling 24-hour credit limit (edition, users, add-ons) less the reserve. Writes
    reports/estimate_<office>.md (counts only) and prints the verdict: "fits in one day",
    "needs N days: run with pause" or "cannot run: ...". Makes no API call.
    """
    from dentrix_zoho.plan.counts import NothingShaped, count_migration
    from dentrix_zoho.plan.estimate import EstimateInputError, EstimateInputs, estimate_migration
    from dentrix_zoho.plan.report import phase_table, write_report
    from dentrix_zoho.offices_cli import offices_file_in_use
    from dentrix_zoho.settings import load_settings

    try:
        settings = load_settings()
        if offices_file_in_use():
            settings = settings.for_office(office)  # the office's own staging database and reports
        office_id = office or settings.office_id
        home = settings.home.expanduser()
        inputs = EstimateInputs.from_env(
            edition=edition, users=users, addon_credits=addon_credits, reserve=reserve, latency_ms=latency_ms,
            concurrency=concurrency, scope=scope, on_budget_exhausted=on_budget_exhausted, write_path=write_path,
            schema_ready=(settings.office_home.expanduser() / SCHEMA_FILE).exists(),
        )
    except (EstimateInputError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CANNOT)
    staging = settings.staging_path.expanduser()
    if not staging.exists():
        click.echo(f"error: no staging database at {staging}: run `dentrix-zoho stage` first, then shape "
                   "(the zoho_shaped assets in Dagster)", err=True)
        sys.exit(EXIT_CANNOT)
    try:
        counts = count_migration(staging, office_id, scope=inputs.scope,
                                 ledger=_ledger_if_any(settings.resolved_ledger_url, home))
    except NothingShaped as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CANNOT)
    result = estimate_migration(counts, inputs)
    path = write_report(result, settings.reports_dir.expanduser())
    click.echo(f"office {office_id}, {inputs.edition}, {inputs.users:,} users: {result.records:,} records, "
               f"{result.calls:,} calls, {result.credits:,} credits")
    click.echo(phase_table(result))
    click.echo(f"verdict: {result.verdict_text}")
    click.echo(f"report: {path}")
    sys.exit(result.exit_code)
