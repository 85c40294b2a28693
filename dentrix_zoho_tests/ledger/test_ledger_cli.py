from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import text

from dentrix_zoho.ledger import AuditEntry, Ledger
from dentrix_zoho.ledger.cli import ledger_group
from dentrix_zoho.ledger.engine import mask_url


def _seed(home: Path) -> str:
    with Ledger.for_home(home) as ledger:
        run = ledger.start_run("full", "office-1", run_id="run-a")
        ledger.record_write(run, "office-1", "patient", "1", "Contacts", "z1", "h", True, None)
        ledger.append_audit_many(
            [
                AuditEntry(run, "upsert", "Contacts", "ok", source_id="1", zoho_id="z1", code="SUCCESS", credits=1),
                AuditEntry(run, "upsert", "Contacts", "error", source_id="2", code="INVALID_DATA"),
                AuditEntry(run, "insert", "Notes", "ok", source_id="n1", zoho_id="n1", code="SUCCESS", credits=1),
            ]
        )
        ledger.finish_run(run, "succeeded")
        return ledger.url


def test_verify_exit_codes(tmp_path: Path) -> None:
    url = _seed(tmp_path)
    runner = CliRunner()
    env = {"DENTRIX_ZOHO_HOME": str(tmp_path), "DENTRIX_ZOHO_LEDGER_URL": ""}
    ok = runner.invoke(ledger_group, ["verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "OK: 3 audit entries" in ok.output

    with Ledger(url) as ledger, ledger.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET code = 'SUCCESS' WHERE seq = 2"))
    broken = runner.invoke(ledger_group, ["verify"], env=env)
    assert broken.exit_code == 1
    assert "BROKEN at seq 2" in broken.output


def test_runs_and_show_run(tmp_path: Path) -> None:
    url = _seed(tmp_path)
    runner = CliRunner()
    listing = runner.invoke(ledger_group, ["--url", url, "runs"])
    assert listing.exit_code == 0, listing.output
    line = next(row for row in listing.output.splitlines() if row.startswith("run-a"))
    assert line.split()[1:4] == ["full", "office-1", "succeeded"]
    assert line.split()[-5:] == ["3", "1", "2", "1", "1"]  # api ops, errors, credits, written, created

    shown = runner.invoke(ledger_group, ["--url", url, "show-run", "run-a"])
    assert shown.exit_code == 0, shown.output
    assert any(row.split() == ["upsert", "Contacts", "error", "1"] for row in shown.output.splitlines())
    assert any(row.split() == ["insert", "Notes", "ok", "1"] for row in shown.output.splitlines())

    missing = runner.invoke(ledger_group, ["--url", url, "show-run", "nope"])
    assert missing.exit_code != 0


def test_urls_are_printed_without_password() -> None:
    assert mask_url("postgresql+psycopg://mig:s3cret@db.internal:5432/ledger") == (
        "postgresql+psycopg://mig:***@db.internal:5432/ledger"
    )
    runner = CliRunner()
    result = runner.invoke(ledger_group, ["--url", "postgresql+nosuchdriver://mig:s3cret@127.0.0.1:1/ledger", "verify"])
    assert result.exit_code != 0
    assert "s3cret" not in result.output and "***" in result.output


def test_inspecting_a_missing_ledger_creates_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(ledger_group, ["verify"], env={"DENTRIX_ZOHO_HOME": str(tmp_path / "nope")})
    assert result.exit_code == 1
    assert "no ledger at" in result.output
    assert not (tmp_path / "nope").exists()
