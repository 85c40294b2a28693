"""The approval lifecycle: approve the exact spec; any change voids it; reverting restores it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.mapping import approval_status, approve_spec, is_current_spec_approved, spec_hash
from dentrix_zoho.mapping.cli import map_group
from dentrix_zoho_tests.mapping.conftest import edit_leads_window


def test_lifecycle(tmp_path: Path, spec_copy: Path) -> None:
    with Ledger.for_home(tmp_path / "home") as ledger:
        assert not is_current_spec_approved(ledger, spec_copy)
        digest = approve_spec(ledger, "  Dr. Avery  ", spec_copy)
        assert digest == spec_hash(spec_copy)
        assert is_current_spec_approved(ledger, spec_copy)
        assert ledger.approvals()[-1].approved_by == "Dr. Avery"

        spec_copy.write_text("# reviewed\n" + spec_copy.read_text(encoding="utf-8"), encoding="utf-8")
        assert is_current_spec_approved(ledger, spec_copy), "a comment does not change the map"

        original = spec_copy.read_text(encoding="utf-8")
        edit_leads_window(spec_copy, 24)
        status = approval_status(ledger, spec_copy)
        assert not status.approved and status.spec_hash != digest

        spec_copy.write_text(original, encoding="utf-8")
        assert is_current_spec_approved(ledger, spec_copy), "the exact approved content is approved"


def test_an_approval_needs_a_name_and_a_valid_spec(tmp_path: Path, spec_copy: Path) -> None:
    with Ledger.for_home(tmp_path / "home") as ledger:
        with pytest.raises(ValueError, match="name"):
            approve_spec(ledger, "  ", spec_copy)
        spec_copy.write_text("version: 1\nstreams: {}\n", encoding="utf-8")
        with pytest.raises(ValueError, match="routing"):
            approve_spec(ledger, "Dr. Avery", spec_copy)
        assert ledger.approvals() == []


def test_cli_show_approve_show(tmp_path: Path, spec_copy: Path) -> None:
    runner = CliRunner()
    env = {"DENTRIX_ZOHO_HOME": str(tmp_path / "home"), "DENTRIX_ZOHO_LEDGER_URL": ""}
    shown = runner.invoke(map_group, ["show", "--spec", str(spec_copy)], env=env)
    assert shown.exit_code == 0, shown.output
    assert "approved: NO" in shown.output and spec_hash(spec_copy) in shown.output
    approved = runner.invoke(map_group, ["approve", "--spec", str(spec_copy), "--by", "Dr. Avery"], env=env)
    assert approved.exit_code == 0, approved.output
    assert "approved: yes" in runner.invoke(map_group, ["show", "--spec", str(spec_copy)], env=env).output
    edit_leads_window(spec_copy, 12)
    assert "approved: NO" in runner.invoke(map_group, ["show", "--spec", str(spec_copy)], env=env).output
    missing = runner.invoke(map_group, ["approve", "--spec", str(spec_copy)], env=env)
    assert missing.exit_code != 0 and "--by" in missing.output


def test_cli_propose_writes_a_reviewable_fragment(tmp_path: Path, practice) -> None:
    conn = practice()
    conn.close()
    out = tmp_path / "proposal.yaml"
    env = {"DENTRIX_ZOHO_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(map_group, ["propose", "--staging", str(tmp_path / "staging.duckdb"),
                                            "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "custfield:Favourite Colour" in result.output
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["practice_fields"]["Favourite Colour"]
