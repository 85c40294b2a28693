"""The org-level audit over every office of the offices file: which staging files, which report folder.

What the command (``dentrix-zoho org-audit``) and the Dagster asset (``dentrix_org/cross_office_audit``)
share; no Dagster here. Each office's staged snapshot is its own ``staging.duckdb`` in
``$DENTRIX_ZOHO_HOME/offices/<office>/``; the org's report goes to ``$DENTRIX_ZOHO_HOME/org/reports/``
(owner-only), beside the offices' folders and apart from the single-office ``reports/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.offices import Offices
from dentrix_zoho.org.cross_office import CrossOfficeAudit, CrossOfficeAuditError, run_cross_office_audit
from dentrix_zoho.org.policy import CrossOfficePolicy

log = logging.getLogger(__name__)

ORG_DIR = "org"


def org_reports_dir(home: Path) -> Path:
    return home / ORG_DIR / "reports"


@dataclass(frozen=True)
class OrgStaging:
    """Office -> its staged snapshot, and the offices of the file that have none yet."""

    staged: dict[str, Path]
    unstaged: tuple[str, ...] = field(default=())


def org_staging(offices: Offices) -> OrgStaging:
    if not offices.from_file:
        raise CrossOfficeAuditError(
            "no offices file: there is one office, and no other office to compare its patients with "
            "(the org-level audit needs an offices file, DENTRIX_OFFICES_FILE or $DENTRIX_ZOHO_HOME/offices.yaml)"
        )
    staged = {office.office_id: office.staging_path for office in offices if office.staging_path.is_file()}
    return OrgStaging(staged, tuple(office.office_id for office in offices if office.office_id not in staged))


def audit_offices(
    offices: Offices,
    ledger_url: str,
    *,
    policy: CrossOfficePolicy | None = None,
    skip_unstaged: bool = False,
) -> CrossOfficeAudit:
    """Compare the staged patients of every office of the file; write the org report; under ``merge``
    record the mergeable groups in the ledger for the offices' loads (replacing the previous audit's).

    An office not staged yet stops the audit (its patients would be left out of every group, and
    under ``merge`` a load of it would make second Contacts), unless ``skip_unstaged``; then run the
    audit again once it is staged, before loading it.
    """
    policy = policy or CrossOfficePolicy.from_env()
    found = org_staging(offices)
    if found.unstaged and not skip_unstaged:
        raise CrossOfficeAuditError(
            f"{len(found.unstaged)} office(s) of {offices.file} not staged yet: {', '.join(found.unstaged)}; "
            "stage them first (job stage_and_audit for their partitions, or dentrix-zoho stage --office ID), "
            "or leave them out of this audit (--skip-unstaged) and audit again before loading them"
        )
    if found.unstaged:
        log.warning("cross-office audit: %d office(s) not staged yet are left out: %s", len(found.unstaged),
                    ", ".join(found.unstaged))
    if len(found.staged) < 2:
        raise CrossOfficeAuditError(
            f"{len(found.staged)} office(s) of {offices.file} staged: the audit compares two or more"
        )
    with Ledger(ledger_url) as ledger:
        return run_cross_office_audit(found.staged, org_reports_dir(offices.home), ledger=ledger, policy=policy)
