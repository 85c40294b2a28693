"""The source audit: what is in this Dentrix database, and what will need attention.

Reads only the staged DuckDB tables (and the image folder), never the source
itself. The Markdown report may name record ids (never names, phones or
e-mails); the summary returned for Dagster metadata holds counts only.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from dentrix_zoho.source.catalog import CATALOG, ClaimStatus, RscType
from dentrix_zoho.staging.rejects import CLEANED_REASONS, REJECTS_TABLE, rejects_exist
from dentrix_zoho.staging.store import META_SCHEMA, STAGING_SCHEMA

DEFAULT_MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
DUPLICATE_NAME_SIMILARITY = 0.92
ID_LIST_LIMIT = 50


@dataclass
class Finding:
    """One thing the audit counts; ``ids`` are record ids for the report file only."""

    title: str
    count: int
    ids: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class AuditResult:
    path: Path
    object_counts: dict[str, int]
    version_signals: dict[str, str]
    findings: dict[str, Finding]
    # Values staging could not convert, per object, column and reason (``staging.rejects``).
    rejects: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # Values staged cleaned of control or invisible characters, the same way (``rejects.CLEANED_REASONS``).
    cleaned: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def rejects_by_object(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (obj, _column, _reason), n in self.rejects.items():
            out[obj] = out.get(obj, 0) + n
        return out

    def summary(self) -> dict[str, int]:
        """Counts only: safe for logs and Dagster metadata."""
        return {name: f.count for name, f in self.findings.items()}


def _t(name: str) -> str:
    return f'{STAGING_SCHEMA}."{name}"'


def _ids(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> list[str]:
    return [":".join(str(v) for v in row) for row in con.execute(sql, params or []).fetchall()]


def object_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    staged = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [STAGING_SCHEMA]
        ).fetchall()
    }
    return {name: int(con.execute(f"SELECT count(*) FROM {_t(name)}").fetchone()[0]) for name in CATALOG if name in staged}


def version_signals(con: duckdb.DuckDBPyConnection, counts: Mapping[str, int]) -> dict[str, str]:
    signals: dict[str, str] = {}
    rows = con.execute(
        f"SELECT optionkey, optionvalue FROM {_t('options')} "
        "WHERE optionkey = 'Data_Version' OR optionsection = 'SysReqWkstnData'"
    ).fetchall()
    for key, value in rows:
        if key == "Data_Version":
            signals["Data_Version"] = str(value)
        elif value and "<InstalledVersion>" in str(value):
            inner = str(value).split("<InstalledVersion>", 1)[1].split("</InstalledVersion>", 1)[0]
            signals["InstalledVersion"] = inner
    signals["rxrec (G6.2+ prescriptions)"] = "present" if counts.get("rxrec") is not None else "absent"
    signals["v_appt (newer appointment view)"] = "present" if counts.get("v_appt") is not None else "absent"
    missing = con.execute(
        f"SELECT object_name, missing_optional FROM {META_SCHEMA}.snapshots "
        "WHERE missing_optional <> '' QUALIFY row_number() OVER (PARTITION BY object_name ORDER BY finished_at DESC) = 1"
    ).fetchall()
    for name, columns in missing:
        signals[f"{name}: columns absent in this version"] = columns
    return signals


_CLEANED = "reason IN (" + ", ".join(f"'{r}'" for r in CLEANED_REASONS) + ")"


def reject_counts(con: duckdb.DuckDBPyConnection, *, cleaned: bool = False) -> dict[tuple[str, str, str], int]:
    """Rejected values per (object, column, reason); a row whose key did not convert counts under the key.

    ``cleaned``: the values staged cleaned instead (not NULL), counted the same way.
    """
    if not rejects_exist(con):
        return {}
    return {
        (obj, column, reason): int(n)
        for obj, column, reason, n in con.execute(
            f"SELECT object_name, column_name, reason, count(*) FROM {REJECTS_TABLE} "
            f"WHERE {'' if cleaned else 'NOT '}{_CLEANED} GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    }


def _rejects(con: duckdb.DuckDBPyConnection, *, cleaned: bool = False) -> Finding:
    title = "Values staging cleaned (control or invisible characters removed)" if cleaned else \
        "Values staging could not convert"
    if not rejects_exist(con):
        return Finding(title, 0)
    rows = con.execute(
        f"SELECT office_id, object_name, coalesce(source_key, '(unidentified row)'), column_name FROM {REJECTS_TABLE} "
        f"WHERE {'' if cleaned else 'NOT '}{_CLEANED} ORDER BY ALL"
    ).fetchall()
    note = ("staged without those characters, the rest of the value kept; nothing to do" if cleaned else
            "staged as NULL (a row whose key did not convert is not staged); see the re-migration plan")
    return Finding(title, len(rows), [f"{o}:{obj}:{key} ({column})" for o, obj, key, column in rows], note)


def _duplicates(con: duckdb.DuckDBPyConnection) -> Finding:
    # Same birth date and near-identical names: candidates for a person to merge, not an automatic merge.
    sql = f"""
        WITH p AS (
            SELECT patid, birthdate,
                   lower(coalesce(firstname, '') || ' ' || coalesce(lastname, '')) AS full_name
            FROM {_t('patient')} WHERE birthdate IS NOT NULL)
        SELECT a.patid, b.patid FROM p a JOIN p b ON a.birthdate = b.birthdate AND a.patid < b.patid
        WHERE jaro_winkler_similarity(a.full_name, b.full_name) >= {DUPLICATE_NAME_SIMILARITY}
        ORDER BY 1, 2"""
    pairs = con.execute(sql).fetchall()
    return Finding(
        "Duplicate patient candidates (same birth date, similar name)",
        len(pairs),
        [f"{a}~{b}" for a, b in pairs],
        "pairs of patient ids; resolve in Dentrix or merge after the migration",
    )


def _orphans(con: duckdb.DuckDBPyConnection) -> Finding:
    sql = f"""
        SELECT 'appt', apptid FROM {_t('appt')} a
        WHERE a.patid <> 0 AND NOT EXISTS (SELECT 1 FROM {_t('patient')} p WHERE p.patid = a.patid)
        UNION ALL
        SELECT 'clinicalnote', cnotesid FROM {_t('clinicalnote')} c
        WHERE NOT EXISTS (SELECT 1 FROM {_t('patient')} p WHERE p.patid = c.patid)
        UNION ALL
        SELECT 'recallpending', patid || '/' || recallid FROM {_t('recallpending')} r
        WHERE NOT EXISTS (SELECT 1 FROM {_t('patient')} p WHERE p.patid = r.patid)
        UNION ALL
        SELECT 'rxrec', rxid FROM {_t('rxrec')} x
        WHERE x.patid <> 0 AND NOT EXISTS (SELECT 1 FROM {_t('patient')} p WHERE p.patid = x.patid)
        ORDER BY 1, 2"""
    rows = _ids(con, sql)
    return Finding("Orphan rows (patient no longer exists)", len(rows), rows, "object:id")


def _providers_without_email(con: duckdb.DuckDBPyConnection, provider_map: Mapping[str, str] | None) -> Finding:
    providers = [
        r[0]
        for r in con.execute(
            f"SELECT rscid FROM {_t('rsc')} WHERE rsctype = ? ORDER BY 1", [int(RscType.PROVIDER)]
        ).fetchall()
    ]
    known = {k.strip().upper() for k, v in (provider_map or {}).items() if v}
    missing = [p for p in providers if p.strip().upper() not in known]
    note = "no provider map given" if provider_map is None else "not in the provider map"
    return Finding("Providers without an e-mail (cannot become Zoho owners)", len(missing), missing, note)


def _carriers_in_use(con: duckdb.DuckDBPyConnection) -> Finding:
    sql = f"""
        SELECT DISTINCT c.insid FROM {_t('inscarrier')} c
        JOIN {_t('insured')} i ON i.insplanid = c.insid
        JOIN {_t('patient')} p ON i.insuredid IN (p.priminsuredid, p.secinsuredid)
        ORDER BY 1"""
    rows = _ids(con, sql)
    return Finding("Insurance plans in use", len(rows), rows, "carrier + employer group ids (inscarrier.insid)")


def _open_claims(con: duckdb.DuckDBPyConnection) -> Finding:
    rows = _ids(
        con,
        f"SELECT claimid FROM {_t('claim')} WHERE status IN (?, ?) ORDER BY 1",
        [int(ClaimStatus.CREATED), int(ClaimStatus.SENT)],
    )
    return Finding("Insurance claims still open (must clear before cutover)", len(rows), rows, "claim ids")


def _appointment_depth(con: duckdb.DuckDBPyConnection) -> Finding:
    first, last, n = con.execute(f"SELECT min(apptdate), max(apptdate), count(*) FROM {_t('appt')}").fetchone()
    deleted = con.execute(
        f"SELECT count(DISTINCT parentapptid) FROM {_t('appthist')} WHERE deletedflag"
    ).fetchone()[0]
    new_pat = con.execute(f"SELECT count(*) FROM {_t('appt')} WHERE patid = 0").fetchone()[0]
    years = ((last - first).days / 365.25) if first and last else 0.0
    return Finding(
        "Appointment history depth (years)",
        round(years),
        [],
        f"{n:,} appointments from {first:%Y-%m-%d} to {last:%Y-%m-%d}; {deleted:,} deleted (appthist only); "
        f"{new_pat:,} new-patient appointments without a patient row"
        if first and last
        else "no appointments",
    )


def _image_files(con: duckdb.DuckDBPyConnection, image_root: Path | None, max_bytes: int) -> tuple[Finding, Finding]:
    rows = con.execute(
        f"SELECT 'eattach', eattachid, path_cnum FROM {_t('eattach')} WHERE path_cnum IS NOT NULL "
        f"UNION ALL SELECT 'document', docid, path_cnum FROM {_t('document')} WHERE path_cnum IS NOT NULL "
        "ORDER BY 1, 2"
    ).fetchall()
    missing: list[str] = []
    over: list[str] = []
    if image_root is not None:
        for obj, ident, rel in rows:
            path = image_root / str(rel).replace("\\", "/")
            try:
                info = os.stat(path)
            except OSError:
                missing.append(f"{obj}:{ident}")
                continue
            if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
                over.append(f"{obj}:{ident}")
    note = "" if image_root is not None else "image folder not given: files not checked"
    return (
        Finding("Image/document files missing", len(missing), missing, note),
        Finding(f"Image/document files over {max_bytes // (1024 * 1024)} MB", len(over), over, note),
    )


def _practice_fields(con: duckdb.DuckDBPyConnection) -> Finding:
    rows = con.execute(
        f"SELECT f.custfieldid, f.fieldtype, count(v.patid) FROM {_t('custfield')} f "
        f"LEFT JOIN {_t('custvalue')} v USING (custfieldid) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    return Finding(
        "Practice-defined fields",
        len(rows),
        [f"{fid} ({ftype}, {n} values)" for fid, ftype, n in rows],
        "need Zoho custom fields (see the mapping proposer)",
    )


def collect_findings(
    con: duckdb.DuckDBPyConnection,
    *,
    image_root: Path | None,
    provider_map: Mapping[str, str] | None,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
) -> dict[str, Finding]:
    missing_images, over_limit = _image_files(con, image_root, max_attachment_bytes)
    return {
        "practice_defined_fields": _practice_fields(con),
        "duplicate_patient_candidates": _duplicates(con),
        "orphan_rows": _orphans(con),
        "providers_without_email": _providers_without_email(con, provider_map),
        "insurance_plans_in_use": _carriers_in_use(con),
        "open_claims": _open_claims(con),
        "appointment_history_years": _appointment_depth(con),
        "image_files_missing": missing_images,
        "image_files_over_limit": over_limit,
        "staging_rejects": _rejects(con),
        "staging_cleaned": _rejects(con, cleaned=True),
    }


def render_markdown(counts: Mapping[str, int], signals: Mapping[str, str], findings: Mapping[str, Finding],
                    rejects: Mapping[tuple[str, str, str], int] | None = None,
                    cleaned: Mapping[tuple[str, str, str], int] | None = None) -> str:
    lines = [
        "# Dentrix source audit",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from the staged snapshot.",
        "This file may list record ids; it holds no names, phones or e-mails.",
        "",
        "## Database version signals",
        "",
    ]
    lines += [f"- **{k}**: {v}" for k, v in signals.items()] or ["- none found"]
    lines += ["", "## Findings", "", "| Finding | Count | Note |", "|---|---:|---|"]
    lines += [f"| {f.title} | {f.count:,} | {f.note} |" for f in findings.values()]
    lines += ["", "## Rows per object", "", "| Object | Rows |", "|---|---:|"]
    lines += [f"| `{name}` | {n:,} |" for name, n in counts.items()]
    if rejects:
        lines += ["", "## Values staging could not convert, per object and column", "",
                  "| Object | Column | Reason | Values |", "|---|---|---|---:|"]
        lines += [f"| `{obj}` | `{column}` | {reason} | {n:,} |" for (obj, column, reason), n in rejects.items()]
    if cleaned:
        lines += ["", "## Values staging cleaned (staged, less control or invisible characters), per object and column",
                  "", "| Object | Column | Reason | Values |", "|---|---|---|---:|"]
        lines += [f"| `{obj}` | `{column}` | {reason} | {n:,} |" for (obj, column, reason), n in cleaned.items()]
    for f in findings.values():
        if f.ids:
            shown = f.ids[:ID_LIST_LIMIT]
            more = f" … and {len(f.ids) - len(shown):,} more" if len(f.ids) > len(shown) else ""
            lines += ["", f"### {f.title}", "", ", ".join(shown) + more]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Reports may hold patient data: owner-only permissions from the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def run_audit(
    staging_path: Path,
    reports_dir: Path,
    *,
    image_root: Path | None,
    provider_map: Mapping[str, str] | None,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
) -> AuditResult:
    con = duckdb.connect(str(staging_path), read_only=True)
    try:
        counts = object_counts(con)
        signals = version_signals(con, counts)
        findings = collect_findings(
            con, image_root=image_root, provider_map=provider_map, max_attachment_bytes=max_attachment_bytes
        )
        rejects = reject_counts(con)
        cleaned = reject_counts(con, cleaned=True)
    finally:
        con.close()
    path = reports_dir / "source_audit.md"
    write_private(path, render_markdown(counts, signals, findings, rejects, cleaned))
    return AuditResult(path=path, object_counts=counts, version_signals=signals, findings=findings, rejects=rejects,
                       cleaned=cleaned)
