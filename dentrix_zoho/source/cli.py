"""``dentrix-zoho stage`` and ``dentrix-zoho audit``: the extract phase without Dagster."""

from __future__ import annotations

import logging
import sys

import click

from dentrix_zoho.offices_cli import office_option, office_settings
from dentrix_zoho.settings import Settings
from dentrix_zoho.source.connection import SourceError


def _source_or_default(source: str | None, settings: Settings) -> str:
    if source:
        return source
    if settings.source:
        try:
            return settings.connection_string() or settings.source
        except ValueError as exc:  # the office's password variable is unset: named, never its value
            raise click.UsageError(str(exc)) from None
    demo = settings.default_practice_path.expanduser().resolve()
    if demo.exists():
        return f"sqlite:///{demo}"
    raise click.UsageError(
        "no source: pass --source, set DENTRIX_SOURCE, or create the demo practice with "
        f"`dentrix-zoho demo-practice --out {demo}`"
    )


@click.command()
@click.option("--source", help="SQLAlchemy URL or ODBC connection string (default: $DENTRIX_SOURCE, else the demo practice).")
@click.option("--object", "objects", multiple=True, help="Stage only this Dentrix object (repeatable).")
@click.option("--chunk-rows", default=10_000, show_default=True, help="Rows fetched per round trip.")
@click.option("--workers", type=click.IntRange(1, 16), default=None,
              help="Reader processes, each with its own connection (default: $DENTRIX_EXTRACT_WORKERS, else 2; "
                   "1 = the one connection, no processes).")
@office_option()
def stage(source: str | None, objects: tuple[str, ...], chunk_rows: int, workers: int | None,
          office: str | None) -> None:
    """Stage Dentrix objects into $DENTRIX_ZOHO_HOME/staging.duckdb (schema dentrix), in one run;
    with an offices file, the office's own $DENTRIX_ZOHO_HOME/offices/<office>/staging.duckdb.

    Readers fetch the next objects while DuckDB loads the current one; each object is
    committed on its own, so one that fails keeps its previous snapshot and the others
    are staged. Logs one line per object with its row count and time; no patient data.
    Exit status 2 if any object failed.
    """
    from dentrix_zoho.staging.stage_all import stage_objects

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = office_settings(office)
    settings.ensure_home()
    try:
        results = stage_objects(
            _source_or_default(source, settings),
            settings.staging_path,
            office_id=settings.office_id,
            schema=settings.source_schema,
            objects=objects or None,
            chunk_rows=chunk_rows,
            workers=workers,
        )
    except (SourceError, KeyError) as exc:
        click.echo(f"error: {settings.scrub(str(exc))}", err=True)
        sys.exit(2)
    total = sum(r.rows for r in results)
    click.echo(f"staged {len(results)} objects, {total:,} rows of office {settings.office_id} into "
               f"{settings.staging_path}")


@click.command()
@office_option()
def audit(office: str | None) -> None:
    """Write the source audit report (Markdown) from the staged tables and print its path."""
    from dentrix_zoho.source.audit import run_audit

    settings = office_settings(office)
    report = run_audit(settings.staging_path, settings.reports_dir, image_root=None, provider_map=None)
    click.echo(f"audit report: {report.path}")
