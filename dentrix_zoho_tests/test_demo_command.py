"""`make demo` runs `dentrix-zoho demo`: the whole migration of a synthetic practice into a fresh emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_migrates_end_to_end_and_prints_where_the_reports_are(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DENTRIX_", "DAGSTER_"))}
    env["DENTRIX_ZOHO_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "dentrix_zoho.cli", "demo"], env=env, capture_output=True, text=True, timeout=600
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "sample_migration: succeeded" in out and "full_migration: succeeded" in out
    assert "failed checks: none" in out
    assert "ledger audit chain: intact" in out
    summary = out[out.index("== summary =="):]
    for module in ("Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments"):
        assert module in summary
    reports = tmp_path / "home" / "reports"
    assert (reports / "diff_report_office-1.html").exists()
    assert (reports / "remigration_plan_office-1.md").exists()
    assert (reports.stat().st_mode & 0o077) == 0
