"""Org-level work across the offices of one Zoho org: patients seen at several offices."""

from dentrix_zoho.org.cross_office import (
    REPORT_NAME,
    CrossOfficeAudit,
    CrossOfficeAuditError,
    CrossOfficeGroup,
    DetectionResult,
    MatchPair,
    detect_cross_office,
    render_report,
    run_cross_office_audit,
)
from dentrix_zoho.org.policy import POLICY_ENV, CrossOfficePolicy, CrossOfficePolicyError, OrgAuditMissing

__all__ = [
    "POLICY_ENV",
    "REPORT_NAME",
    "CrossOfficeAudit",
    "CrossOfficeAuditError",
    "CrossOfficeGroup",
    "CrossOfficePolicy",
    "CrossOfficePolicyError",
    "DetectionResult",
    "MatchPair",
    "OrgAuditMissing",
    "detect_cross_office",
    "render_report",
    "run_cross_office_audit",
]
