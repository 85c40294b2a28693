"""``dentrix-zoho demo-practice``: write a synthetic Dentrix practice to disk."""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path

import click

from dentrix_zoho.source.synthetic.generator import generate_practice
from dentrix_zoho.source.synthetic.scales import SCALES
from dentrix_zoho.source.synthetic.schema import DENTRIX_VERSIONS


def _parse_day(ctx: click.Context, param: click.Parameter, value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2025-06-30") from None


@click.command("demo-practice")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to write (replaced if it exists). Sidecars go beside it: "
    "<stem>_images/, <stem>.seed.json, <stem>_providers.yaml.",
)
@click.option(
    "--scale", required=True, type=click.Choice(list(SCALES)),
    help="tiny ~200 patients (about a second); office ~8,000 patients, 60,000 appointments, "
    "250,000 ledger rows; large ~50,000 patients, 380,000 appointments, 1,600,000 ledger rows.",
)
@click.option("--seed", required=True, type=int, help="Random seed: the same seed, as-of date and office give the same practice.")
@click.option(
    "--as-of", "as_of", callback=_parse_day, metavar="YYYY-MM-DD",
    help="Snapshot date: history lies before it, booked appointments after it. Default: today.",
)
@click.option(
    "--office", default=1, show_default=True, type=click.IntRange(min=1),
    help="Office number. Other offices number their Practice Definitions (appointment statuses "
    "and types, payment types ...) differently; patient ids overlap between offices.",
)
@click.option(
    "--dentrix-version", default=DENTRIX_VERSIONS[-1], show_default=True, type=click.Choice(DENTRIX_VERSIONS),
    help="G6.2 leaves out the columns only newer versions have (v_appt.broken, ...).",
)
@click.option(
    "--hostile", is_flag=True,
    help="Then damage chosen patients on purpose, one kind each (empty and SQL-looking names, non-Latin "
    "and invisible characters, broken e-mails, phones and dates, impossible appointment times, guarantor "
    "loops, duplicated keys, huge and binary notes ...), listed with the outcome each must reach in "
    "<stem>.hostile.json.",
)
@click.option(
    "--hostile-kind", "hostile_kinds", multiple=True, metavar="KIND",
    help="With --hostile: only this kind (repeatable); default every kind.",
)
def demo_practice(out: Path, scale: str, seed: int, as_of: date, office: int, dentrix_version: str,
                  hostile: bool, hostile_kinds: tuple[str, ...]) -> None:
    """Generate a synthetic Dentrix G6/G7 practice database (SQLite stand-in for DentrixSQL).

    Tables and v_* views follow the Dentrix catalog; the extractor reads the file as schema
    'admin'. The practice carries the problems of a real one on purpose (padded text, split
    appointment times, guarantor balances, new-patient and deleted appointments, dirty
    contact data, duplicates, orphans, overlong notes, missing and oversized images ...),
    each listed with its ids in <stem>.seed.json. All data is invented.
    """
    started = time.perf_counter()
    result = generate_practice(out, scale, seed, as_of, office, dentrix_version=dentrix_version)  # type: ignore[arg-type]
    counts = result.counts
    click.echo(
        f"demo practice (office {office}, {scale}, seed {seed}, as of {as_of.isoformat()}): "
        f"{counts['patient']:,} patients, {counts['appt']:,} appointments, {counts['fullproclog']:,} ledger rows, "
        f"{counts['clinicalnote']:,} clinical notes, {result.manifest.image_count:,} images "
        f"in {time.perf_counter() - started:.1f} s -> {result.db_path} "
        f"(images {result.images_dir}, manifest {result.manifest_path}, provider map {result.provider_map_path})"
    )
    if hostile or hostile_kinds:
        from dentrix_zoho.source.synthetic.hostile import hostile_manifest_path, make_hostile

        try:
            damaged = make_hostile(result.db_path, seed, kinds=hostile_kinds or None)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(f"hostile: {len({m.patid for m in damaged.mutations})} patients damaged, "
                   f"{len(damaged.kinds)} kinds -> {hostile_manifest_path(result.db_path)}")
