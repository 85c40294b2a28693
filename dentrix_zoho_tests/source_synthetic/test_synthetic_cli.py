from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from dentrix_zoho.source.synthetic.cli import demo_practice


def test_demo_practice_writes_the_database_and_sidecars(tmp_path: Path) -> None:
    out = tmp_path / "demo.db"
    result = CliRunner().invoke(demo_practice, ["--out", str(out), "--scale", "tiny", "--seed", "4", "--as-of", "2025-01-31", "--office", "3"])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert "\n" not in line
    assert "office 3" in line and "patients" in line and str(out) in line
    for sidecar in ("demo_images", "demo.seed.json", "demo_providers.yaml"):
        assert (tmp_path / sidecar).exists()
    conn = sqlite3.connect(out)
    try:
        (patients,) = conn.execute("SELECT COUNT(*) FROM patient").fetchone()
    finally:
        conn.close()
    assert f"{patients:,} patients" in line


def test_help_explains_every_option() -> None:
    result = CliRunner().invoke(demo_practice, ["--help"])
    assert result.exit_code == 0
    for option in ("--out", "--scale", "--seed", "--as-of", "--office", "--dentrix-version", "seed.json", "_providers.yaml"):
        assert option in result.output


def test_bad_date_and_missing_options_are_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(demo_practice, ["--out", str(tmp_path / "x.db"), "--scale", "tiny", "--seed", "1", "--as-of", "31/01/2025"])
    assert bad.exit_code == 2 and "2025-06-30" in bad.output
    missing = runner.invoke(demo_practice, ["--out", str(tmp_path / "x.db"), "--scale", "tiny"])
    assert missing.exit_code == 2 and "--seed" in missing.output
    assert not (tmp_path / "x.db").exists()
