"""``dentrix-zoho org-audit``: patients seen at several offices, across every office of the offices file."""

from __future__ import annotations

import logging

import click


@click.command("org-audit")
@click.option("--skip-unstaged", is_flag=True, default=False,
              help="Audit the offices staged so far and leave out the others (named in a warning). Audit "
                   "again once they are staged, before loading them.")
def org_audit(skip_unstaged: bool) -> None:
    """Find the patients seen at several offices of the offices file (same birth date and gender, and close
    names, or close last names and the same mobile phone or e-mail) in the offices' staged snapshots.

    \b
    Run it after staging every office and before loading any under the policy merge; run it again
    when offices are added. It reads each office's $DENTRIX_ZOHO_HOME/offices/<office>/staging.duckdb
    read-only (not while that office's staging or shaping runs) and writes
    $DENTRIX_ZOHO_HOME/org/reports/cross_office_audit.md (owner-only): groups of records by
    Source_System_ID, never a name, birth date, phone or e-mail.

    \b
    DENTRIX_CROSS_OFFICE_POLICY decides what the loads do with those groups (docs/cross_office.md):
      separate  (default) every office record stays a Contact of its own; the report is for review.
      merge     the audit records its mergeable groups in the ledger (DENTRIX_ZOHO_LEDGER_URL, else
                $DENTRIX_ZOHO_HOME/ledger.sqlite), replacing the last audit's; the first office to load
                a person creates the Contact, the others join it.

    Exit status 2 when an office is not staged (unless --skip-unstaged), a snapshot cannot be read, there
    is no offices file, or the policy or the offices file is wrong.
    """
    from dentrix_zoho.offices import OfficesError
    from dentrix_zoho.org.cross_office import CrossOfficeAuditError
    from dentrix_zoho.org.policy import CrossOfficePolicy, CrossOfficePolicyError
    from dentrix_zoho.org.run import audit_offices
    from dentrix_zoho.settings import load_offices, load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        policy = CrossOfficePolicy.from_env()
        offices = load_offices()
        audit = audit_offices(offices, load_settings().resolved_ledger_url, policy=policy,
                              skip_unstaged=skip_unstaged)
    except (CrossOfficeAuditError, CrossOfficePolicyError, OfficesError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    counts = audit.summary()
    click.echo(f"cross-office audit of {counts['offices']} offices: {counts['groups']} group(s) of records taken for "
               f"one person ({counts['mergeable_groups']} mergeable, {counts['records_in_groups']} records), "
               f"{counts['pairs_compared']:,} pairs compared; policy {policy.policy}"
               + (f": {audit.recorded} records recorded in the ledger for the loads" if policy.merge else ""))
    click.echo(f"report: {audit.path}")
