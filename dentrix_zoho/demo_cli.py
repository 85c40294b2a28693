"""``dentrix-zoho demo``: the whole migration of a synthetic practice into a local Zoho emulator.

What ``make demo`` runs. It generates the practice (unless ``DENTRIX_SOURCE``
points at a real one), starts the emulator on a free loopback port with users
for the practice's providers, runs the ``sample_migration`` job, approves the
map on the operator's behalf (saying so), runs ``full_migration``, and prints a
one-screen summary with the report paths. Runs land in a persistent Dagster
instance under ``$DENTRIX_ZOHO_HOME/dagster`` so ``make ui`` shows them.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import click
import yaml

from dentrix_zoho.settings import ensure_dagster_home, load_settings, practice_sidecars


def _users_file(provider_map_path: Path | None, target: Path) -> Path:
    """Zoho users for the practice: one per provider e-mail in the map, plus an administrator."""
    from dentrix_zoho.source.provider_map import load_provider_map

    users = [{"first_name": "Office", "last_name": "Manager", "email": DEMO_OWNER_EMAIL,
              "profile": "Administrator", "role": "CEO"}]
    if provider_map_path is not None:
        pmap = load_provider_map(provider_map_path)
        for provider_id, email in sorted(pmap.providers.items()):
            if email:
                users.append({"first_name": provider_id.title(), "last_name": "Provider", "email": str(email)})
    target.write_text(yaml.safe_dump({"users": users}, sort_keys=False), encoding="utf-8")
    return target


DEMO_OWNER_EMAIL = "office.manager@dental.example.com"


def _demo_provider_map(practice_map: Path | None, target: Path) -> Path | None:
    """The practice's provider map plus a default owner, so that its unmapped provider does not block the demo."""
    if practice_map is None:
        return None
    data = yaml.safe_load(practice_map.read_text(encoding="utf-8")) or {}
    data["default_owner_email"] = data.get("default_owner_email") or DEMO_OWNER_EMAIL
    target.write_text(
        "# Written by `dentrix-zoho demo`: the practice's provider map with a default owner added.\n"
        + yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    return target


def _ensure_practice(scale: str, seed: int) -> Path | None:
    settings = load_settings()
    if settings.source:
        return None
    db = settings.default_practice_path.expanduser().resolve()
    if not db.exists():
        from dentrix_zoho.source.synthetic import generate_practice

        click.echo(f"generating a synthetic practice ({scale}, seed {seed}) at {db}")
        generate_practice(db, scale=scale, seed=seed, as_of=dt.date.today())  # type: ignore[arg-type]
    return db


def _run_job(defs: object, name: str, instance: object, log_file: Path, *, verbose: bool) -> bool:
    from dentrix_zoho.defs.operator_log import operator_logger

    job = defs.resolve_job_def(name)  # type: ignore[attr-defined]
    # Dagster's event stream into the log file; on the console one line per step and the progress lines.
    job = job.with_logger_defs({"operator": operator_logger(log_file, click.echo, verbose=verbose)})
    started = time.perf_counter()
    click.echo(f"\n== running {name} ==")
    # Dagster starts only the loggers the run config names (none named: its default console logger).
    result = job.execute_in_process(instance=instance, raise_on_error=False, run_config={"loggers": {"operator": {}}})
    failed_checks = [
        e for e in result.get_asset_check_evaluations() if not e.passed
    ]
    click.echo(
        f"{name}: {'succeeded' if result.success else 'FAILED'} in {time.perf_counter() - started:.0f}s "
        f"(run {result.run_id}); failed checks: "
        + (", ".join(f"{e.asset_key.to_user_string()}:{e.check_name}" for e in failed_checks) or "none")
    )
    return bool(result.success) and not failed_checks


@click.command()
@click.option("--scale", type=click.Choice(["tiny", "office", "large"]), default="tiny", show_default=True,
              help="Size of the synthetic practice (generated once per working folder).")
@click.option("--seed", default=7, show_default=True, help="Seed of the synthetic practice.")
@click.option("--edition", type=click.Choice(["free", "standard", "professional", "enterprise", "ultimate"]),
              default="enterprise", show_default=True, help="Zoho edition the emulator plays.")
@click.option("--latency-ms", default=0.0, show_default=True, help="Mean latency the emulator adds per call.")
@click.option("-v", "--verbose", is_flag=True,
              help="Show Dagster's whole event stream here too (it always goes to the log file named on screen).")
def demo(scale: str, seed: int, edition: str, latency_ms: float, verbose: bool) -> None:
    """Migrate a synthetic practice into a freshly started local Zoho emulator, end to end.

    Steps: generate the practice (unless DENTRIX_SOURCE is set), start the
    emulator, run sample_migration, approve the map (the demo does this for
    you; in a real migration a person reviews the diff report and runs
    `dentrix-zoho map approve --by NAME`), run full_migration, print a summary.

    The console shows one line per step (rows, calls, credits, seconds) and a
    progress line at least every 10 s of a long step ($DENTRIX_ZOHO_PROGRESS_SECONDS);
    Dagster's own event stream goes to $DENTRIX_ZOHO_HOME/logs/demo_<time>.log (-v: here too).
    """
    import dagster as dg

    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.mapping import approve_spec
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    settings = load_settings()
    home = settings.ensure_home().resolve()
    os.environ["DENTRIX_ZOHO_HOME"] = str(home)
    practice = _ensure_practice(scale, seed)
    provider_map = settings.resolved_provider_map()
    if practice is not None and provider_map is None:
        candidate = practice_sidecars(practice)["providers"]
        provider_map = candidate if candidate.exists() else None
    users_file = _users_file(provider_map, home / "emulator_users.yaml")
    if not settings.provider_map and provider_map is not None:
        demo_map = _demo_provider_map(provider_map, home / "providers.yaml")
        os.environ["DENTRIX_PROVIDER_MAP"] = str(demo_map)
        click.echo(f"provider map: {demo_map} (the practice's map, plus {DEMO_OWNER_EMAIL} as default owner "
                   "for providers without an e-mail)")
    ensure_dagster_home(home)

    from dentrix_zoho.defs.operator_log import python_logs_to

    log_file = home / "logs" / f"demo_{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    python_logs_to(log_file)
    click.echo(f"Dagster's event log and the loader's per-batch lines: {log_file}"
               + ("" if verbose else " (-v shows them here too)"))

    with running_emulator(home / "emulator", edition=edition, users=1, latency_ms=latency_ms,
                          extra_args=["--users-file", str(users_file)]) as emulator:
        click.echo(f"Zoho emulator at {emulator.base_url} ({edition})")
        for var in ("ZOHO_API_BASE", "ZOHO_ACCOUNTS_URL", "ZOHO_UPLOAD_URL"):
            os.environ[var] = emulator.base_url
        os.environ["ZOHO_CLIENT_ID"] = emulator.client_id
        os.environ["ZOHO_CLIENT_SECRET"] = emulator.client_secret
        os.environ["ZOHO_REFRESH_TOKEN"] = emulator.refresh_token
        os.environ["ZOHO_EDITION"] = edition
        os.environ.pop("ZOHO_DC", None)

        from dentrix_zoho.definitions import build_definitions

        defs = build_definitions()
        instance = dg.DagsterInstance.get()
        sample_ok = _run_job(defs, "sample_migration", instance, log_file, verbose=verbose)
        ledger = Ledger(settings.resolved_ledger_url if settings.ledger_url else f"sqlite:///{home / 'ledger.sqlite'}")
        if not sample_ok:
            click.echo("the sample migration did not pass its checks: not approving the map", err=True)
            sys.exit(1)
        spec_hash = approve_spec(ledger, "make-demo")
        click.echo(f"\nthe demo approves the map (spec {spec_hash[:12]}) as 'make-demo'; in a real migration a "
                   "person reviews the sample diff report first and runs `dentrix-zoho map approve --by NAME`")
        full_ok = _run_job(defs, "full_migration", instance, log_file, verbose=verbose)
        usage = emulator.usage()
        snapshot = emulator.snapshot()

    _print_summary(home, ledger, usage, snapshot)
    click.echo(f"Dagster's event log of these runs: {log_file}")
    sys.exit(0 if full_ok else 1)


def _shaping_counts(home: Path) -> tuple[int, int]:
    import duckdb

    con = duckdb.connect(str(home / "staging.duckdb"), read_only=True)
    try:
        held = con.execute("SELECT count(*) FROM zoho_shaped.quarantine").fetchone()[0]
        skipped = con.execute("SELECT count(*) FROM zoho_shaped.skipped").fetchone()[0]
    finally:
        con.close()
    return int(held), int(skipped)


def _print_summary(home: Path, ledger: object, usage: dict, snapshot: dict) -> None:  # type: ignore[type-arg]
    click.echo("\n== summary ==")
    modules = snapshot.get("modules", snapshot) if isinstance(snapshot, dict) else {}
    for module in ("Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments"):
        records = modules.get(module) if isinstance(modules, dict) else None
        if records is not None:
            click.echo(f"  {module:<12} {len(records):>7,} records in Zoho")
    held_at_load = len(ledger.quarantine_rows())  # type: ignore[attr-defined]
    held_at_shape, skipped = _shaping_counts(home)
    click.echo(f"  quarantined: {held_at_shape:,} while shaping, {held_at_load:,} at load; "
               f"skipped by a named rule: {skipped:,} (see the re-migration plan)")
    credits = usage.get("credits", {})
    used = credits.get("used_total", "?") if isinstance(credits, dict) else credits
    click.echo(f"  API calls: {usage.get('calls_total', '?')}, credits used: {used} "
               f"of {credits.get('limit', '?') if isinstance(credits, dict) else '?'} a day")
    chain = ledger.verify_chain()  # type: ignore[attr-defined]
    click.echo(f"  ledger audit chain: {'intact' if chain.ok else 'BROKEN'} ({chain.entries:,} entries)")
    reports = home / "reports"
    click.echo(f"\nreports (owner-only; they contain patient data): {reports}")
    for path in sorted(reports.glob("*")):
        if path.is_file():
            click.echo(f"  {path.name}")
    click.echo(f"Dagster runs: `make ui` (DAGSTER_HOME={os.environ.get('DAGSTER_HOME')})")
