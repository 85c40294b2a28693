"""``dentrix-zoho map propose | show [--office ID] | approve [--office ID] --by NAME``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dentrix_zoho.mapping.approval import ApprovalStatus, approval_status, approve_spec, has_sample_run
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


_SHOW_OFFICE_HELP = (
    "Tell whether the spec is approved for this office, and by which approval: the office's own or one for "
    "every office. Without --office: the approval for every office, and each office's own."
)
_APPROVE_OFFICE_HELP = (
    "Approve the spec for this office only (after reviewing its sample diff report); the other offices stay "
    "closed until they are approved too. Without --office the approval covers every office of the org. "
    "Either kind is of the spec's content hash: any change to the spec voids it."
)


def _office_lines(ledger: Ledger, path: Path, digest: str) -> list[str]:
    """Per office: approved or not, by which approval (offices of the file, and any with an approval)."""
    from dentrix_zoho.offices import OfficesError
    from dentrix_zoho.settings import load_offices

    try:
        offices = [o.office_id for o in load_offices()]
    except OfficesError as exc:
        raise click.UsageError(str(exc)) from None
    offices += sorted({a.office_id for a in ledger.approvals(digest) if a.office_id} - set(offices))
    width = max((len(o) for o in offices), default=0)
    lines = []
    for o in offices:
        found = ledger.approval_for(digest, o)
        lines.append(f"  {o:{width}}  {ApprovalStatus(str(path), digest, found is not None, o, found).describe()}")
    return lines


@map_group.command("show")
@_spec_option
@office_option(_SHOW_OFFICE_HELP)
def show(spec_path: Path | None, office: str | None) -> None:
    """Validate the spec and print what it maps, its hash and whether it is approved (for every office,
    or for the office named)."""
    office_id = office_settings(office).office_id if office else None
    path = spec_path or default_spec_path()
    try:
        spec = load_spec(path)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    with _ledger() as ledger:
        status = approval_status(ledger, path, office_id=office_id)
        offices = [] if office_id else _office_lines(ledger, path, status.spec_hash)
        approvals = [] if office_id else ledger.approvals(status.spec_hash)
    click.echo(f"spec:     {path}")
    click.echo(f"hash:     {status.spec_hash}")
    click.echo(f"approved: {status.describe()}")
    if approvals:
        click.echo(f"approvals of this hash: {len(approvals)}")
        for a in approvals:
            click.echo(f"  {'office ' + a.office_id if a.office_id else 'every office':20} by {a.approved_by} "
                       f"at {a.approved_at}")
    if offices:
        click.echo("per office:")
        for line in offices:
            click.echo(line)
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
@office_option(_APPROVE_OFFICE_HELP)
def approve(spec_path: Path | None, approved_by: str, office: str | None) -> None:
    """Record that NAME approved the spec exactly as it is now (its content hash), for the office named
    or, without --office, for every office."""
    office_id = office_settings(office).office_id if office else None
    path = spec_path or default_spec_path()
    try:
        with _ledger() as ledger:
            digest = approve_spec(ledger, approved_by, path, office_id=office_id)
            sampled = office_id is None or has_sample_run(ledger, digest, office_id)
    except (SpecError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if not sampled:
        click.echo(f"warning: office {office_id} has no successful sample migration of spec {digest[:12]} in the "
                   "ledger: was its sample diff report reviewed? (the approval is recorded all the same)", err=True)
    click.echo(f"approved {path} ({digest}) by {approved_by.strip()} "
               + (f"for office {office_id} only: the other offices need their own approval, or one without --office"
                  if office_id else "for every office"))
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
