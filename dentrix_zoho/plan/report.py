"""The estimate as Markdown (``reports/estimate_<office>.md``) and as counts-only metadata.

Counts, module names and settings only: nothing from a record.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from dentrix_zoho.load.reports_io import write_private
from dentrix_zoho.plan.estimate import MigrationEstimate, setting_name


def _n(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def module_table(estimate: MigrationEstimate) -> str:
    lines = [
        "| Module | Records | Held back | Record API calls | Record API credits | Bulk Write calls | "
        "Bulk Write credits | Path | Calls (all phases) | Credits (all phases) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for m in estimate.modules:
        lines.append(f"| {m.module} | {m.records:,} | {m.held_back:,} | {m.records_calls:,} | {m.records_credits:,} | "
                     f"{_n(m.bulk_calls)} | {_n(m.bulk_credits)} | {m.path} | {m.calls:,} | {m.credits:,} |")
    lines.append(f"| **Total** | {estimate.records:,} | {sum(m.held_back for m in estimate.modules):,} | | | | | | "
                 f"**{estimate.calls:,}** | **{estimate.credits:,}** |")
    return "\n".join(lines)


def phase_table(estimate: MigrationEstimate) -> str:
    lines = ["| Phase | Calls | Credits | Wall time |", "|---|---:|---:|---:|"]
    for phase, row in estimate.by_phase().items():
        lines.append(f"| {phase} | {int(row['calls']):,} | {int(row['credits']):,} | {_duration(row['seconds'])} |")
    lines.append(f"| **Total** | **{estimate.calls:,}** | **{estimate.credits:,}** | "
                 f"**{_duration(estimate.wall_seconds)}** |")
    return "\n".join(lines)


def render(estimate: MigrationEstimate, *, generated: dt.datetime | None = None) -> str:
    i = estimate.inputs
    daily = i.daily_credits
    usable = i.usable_credits_per_day
    when = (generated or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    inputs = [
        ("Edition", i.edition, setting_name("edition")),
        ("Users", f"{i.users:,}", setting_name("users")),
        ("Add-on credits", f"{i.addon_credits:,}", setting_name("addon_credits")),
        ("Credits per rolling 24 h", "unlimited" if daily is None else f"{daily:,}", "Zoho's limit for the above"),
        ("Reserve for the org's other integrations", f"{i.reserve:.0%}", setting_name("reserve")),
        ("Usable credits per 24 h", "unlimited" if usable is None else f"{usable:,}", ""),
        ("Concurrency", f"{i.usable_concurrency} ({i.heavy_concurrency} for heavy calls)", setting_name("concurrency")),
        ("Latency per call", f"{i.latency_ms:.0f} ms", setting_name("latency_ms")),
        ("Scope", i.scope, setting_name("scope")),
        ("Write path", i.write_path, setting_name("write_path")),
        ("When credits run out", i.on_budget_exhausted, setting_name("on_budget_exhausted")),
    ]
    reasons = [f"- **{m.module}** ({m.path}): " + "; ".join(dict.fromkeys(m.reasons))
               for m in estimate.modules if m.reasons]
    parts = [
        f"# Migration estimate: office {estimate.office_id}",
        "",
        f"Generated {when}. Counts only; no record's content is in this file.",
        "",
        f"## Verdict: {estimate.verdict_text}",
        "",
        f"{estimate.records:,} records in {estimate.calls:,} calls and {estimate.credits:,} credits; about "
        f"{_duration(estimate.wall_seconds)} of wall time; {estimate.days} calendar day(s). The cheapest "
        f"feasible plan (record API or Bulk Write per module) needs {estimate.cheapest_credits:,} credits.",
        "",
        "## Inputs",
        "",
        "| Input | Value | Setting |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in inputs],
        "",
        "## Per module",
        "",
        module_table(estimate),
        "",
        "Record API / Bulk Write columns: the module's writes by that path alone (Bulk Write carries the rows "
        "one flat CSV can hold, the rest go by the record API); calls and credits of all phases include "
        "pre-scans, metadata and read-backs.",
        "",
        "### Chosen path and why",
        "",
        *reasons,
        "",
        "## Where the credits go",
        "",
        phase_table(estimate),
        "",
        "## What the numbers rest on",
        "",
        *[f"- {note}" for note in estimate.notes],
        "",
    ]
    return "\n".join(parts)


def report_path(reports_dir: Path, office_id: str) -> Path:
    return Path(reports_dir) / f"estimate_{office_id}.md"


def write_report(estimate: MigrationEstimate, reports_dir: Path) -> Path:
    return write_private(report_path(reports_dir, estimate.office_id), render(estimate))


def metadata(estimate: MigrationEstimate) -> dict[str, Any]:
    """Numbers (and the verdict's words) for Dagster: per module records, calls, credits."""
    out: dict[str, Any] = {
        "total_records": estimate.records,
        "total_calls": estimate.calls,
        "total_credits": estimate.credits,
        "cheapest_credits": estimate.cheapest_credits,
        "wall_seconds": round(estimate.wall_seconds, 1),
        "days": estimate.days,
        "usable_credits_per_day": estimate.inputs.usable_credits_per_day or 0,
        "verdict": estimate.verdict_text,
        "exit_code": estimate.exit_code,
    }
    for m in estimate.modules:
        key = m.module.lower()
        out[f"{key}_records"] = m.records
        out[f"{key}_calls"] = m.calls
        out[f"{key}_credits"] = m.credits
    return out
