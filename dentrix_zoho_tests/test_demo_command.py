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
    # A quiet console: one line per step, not Dagster's event stream (that goes to the named log file).
    lines = (out + done.stderr).splitlines()
    assert len(lines) < 120, f"{len(lines)} console lines"
    assert "STEP_START" not in out + done.stderr and "DEBUG" not in out + done.stderr
    assert "  zoho_load/patients: " in out and " calls, " in out
    logs = list((tmp_path / "home" / "logs").glob("demo_*.log"))
    assert len(logs) == 1 and str(logs[0]) in out
    assert "STEP_START" in logs[0].read_text(encoding="utf-8")


def test_a_step_slowed_by_emulator_latency_prints_progress_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DENTRIX_", "DAGSTER_"))}
    env["DENTRIX_ZOHO_HOME"] = str(tmp_path / "home")
    # A line every 0.2 s of a step; 150 ms a call makes the Events step (19 calls) last over a second.
    env["DENTRIX_ZOHO_PROGRESS_SECONDS"] = "0.2"
    done = subprocess.run([sys.executable, "-m", "dentrix_zoho.cli", "demo", "--latency-ms", "150"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    progress = [line for line in done.stdout.splitlines() if line.startswith("    load events: ")]
    assert progress, done.stdout[-3000:]
    assert "/s" in progress[0] and "records (" in progress[0]
