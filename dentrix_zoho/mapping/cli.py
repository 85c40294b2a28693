"""``dentrix-zoho map propose | show | approve --by NAME``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dentrix_zoho.mapping.approval import approval_status, approve_spec
from dentrix_zoho.mapping.metadata import field_metadata
from dentrix_zoho.mapping.spec import SpecError, default_spec_path, load_spec
from dentrix_zoho.offices_cli import office_option, office_settings, offices_file_in_use

if TYPE_CHECKING:
    from dentrix_zoho.ledger import Ledger


def _ledger() -> Ledger:
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.settings import load_settings

    settings = load_settings()
    if settings.ledger_url:
        return Ledger(settings.ledger_url)
    return Ledger.for_home(settings.ensure_home())


_spec_option = click.option(
    "--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Mapping spec (default: mapping_specs/dentrix_to_zoho.yaml).",
)


@click.group("map")
def map_group() -> None:
    """Propose, show and approve the Dentrix-to-Zoho field map."""


_APPROVAL_IS_ORG_WIDE = (
    "One map for every office of the org: --office checks the office exists; the approval is of the "
    "spec's content hash and covers all offices."
)


@map_group.command("show")
@_spec_option
@office_option(_APPROVAL_IS_ORG_WIDE)
def show(spec_path: Path | None, office: str | None) -> None:
    """Validate the spec and print what it maps, its hash and whether it is approved."""
    office_settings(office)
    path = spec_path or default_spec_path()
    try:
        spec = load_spec(path)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    with _ledger() as ledger:
        status = approval_status(ledger, path)
    click.echo(f"spec:     {path}")
    click.echo(f"hash:     {status.spec_hash}")
    click.echo(f"approved: {'yes' if status.approved else 'NO (run: dentrix-zoho map approve --by NAME)'}")
    click.echo(f"routing:  patients without treatment in {spec.routing.leads_window_months} months -> Leads")
    click.echo("streams:")
    for name, stream in spec.streams.items():
        click.echo(f"  {name:24} {stream.object:14} -> {stream.module:12} {len(stream.fields):3} fields, "
                   f"{len(stream.skip)} skip rules, {len(stream.quarantine)} quarantine rules")
    click.echo("custom fields to create:")
    for module, fields in spec.custom_fields.items():
        click.echo(f"  {module:12} {len(fields)}")
    click.echo(f"practice-defined fields mapped: {len(spec.practice_fields)}")


@map_group.command("approve")
@_spec_option
@click.option("--by", "approved_by", required=True, help="Name of the person approving the map.")
@office_option(_APPROVAL_IS_ORG_WIDE)
def approve(spec_path: Path | None, approved_by: str, office: str | None) -> None:
    """Record that NAME approved the spec exactly as it is now (its content hash)."""
    settings = office_settings(office)
    path = spec_path or default_spec_path()
    try:
        with _ledger() as ledger:
            digest = approve_spec(ledger, approved_by, path)
    except (SpecError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"approved {path} ({digest}) by {approved_by.strip()}"
               + (f" (reviewed on office {settings.office_id}; the approval covers every office)"
                  if office else ""))
    click.echo("Any change to the spec voids this approval.")


@map_group.command("propose")
@_spec_option
@click.option("--staging", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Staging DuckDB (default: the office's, $DENTRIX_ZOHO_HOME/staging.duckdb without an "
                   "offices file).")
@click.option("--metadata", "metadata_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Live Zoho field metadata as JSON {module: [fields]} (default: shipped).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the proposal (default: reports/mapping_proposal.yaml).")
@office_option("Profile this office's values only, from its staging database (default: $DENTRIX_OFFICE_ID, "
               "else the offices file's only office; without a file, every office in the staging database).")
def propose_cmd(spec_path: Path | None, staging: Path | None, metadata_path: Path | None, out: Path | None,
                office: str | None) -> None:
    """Propose targets for practice-defined fields and source columns the spec does not map."""
    import duckdb

    from dentrix_zoho.mapping.proposer import propose

    from dentrix_zoho.settings import load_settings

    # Without an offices file one staging database may hold several offices: --office filters it, as before.
    settings = office_settings(office) if offices_file_in_use() else load_settings()
    if settings.state_dir is not None:
        office = settings.office_id  # the office's own database holds only its rows
    try:
        spec = load_spec(spec_path)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    db = staging or settings.staging_path
    if not db.exists():
        raise click.ClickException(f"{db}: no staging database; run `dentrix-zoho stage` first")
    live = json.loads(metadata_path.read_text(encoding="utf-8")) if metadata_path else None
    existing = {module: list(fields.values()) for module, fields in field_metadata(spec, live).items()}
    with duckdb.connect(str(db), read_only=True) as conn:
        section = propose(conn, spec, existing, office_id=office)
    target = out or settings.reports_dir / "mapping_proposal.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(section.to_yaml(), encoding="utf-8")
    for p in section.proposals:
        where = "do not migrate" if p.target is None else f"{p.module}.{p.target}{' (new)' if p.create else ''}"
        click.echo(f"{p.confidence:4.2f}  {p.source:40} -> {where}")
    click.echo(f"{len(section.proposals)} proposal(s) written to {target}")
