"""``dentrix-zoho estimate`` and the ``zoho_plan/migration_estimate`` asset with its ``fits_budget`` gate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from dentrix_zoho.cli import main

PATIENT_WORDS = ("Guarantorsen", "Gailvira", "Minorsky", "Maximilio", "Solowitz", "Samwisel", "Perio charting",
                 "xray1.jpg", "Delta Dental")
ESTIMATE_ENV = ("ZOHO_EDITION", "ZOHO_USERS", "ZOHO_ADDON_CREDITS", "ZOHO_PLAN_RESERVE", "ZOHO_LATENCY_MS",
                "ZOHO_MAX_CONCURRENCY", "DENTRIX_ZOHO_SCOPE", "ZOHO_ON_BUDGET_EXHAUSTED", "ZOHO_WRITE_PATH",
                "DENTRIX_ZOHO_LEDGER_URL", "DENTRIX_OFFICE_ID")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ESTIMATE_ENV:
        monkeypatch.delenv(name, raising=False)


def _run(home: Path, *args: str, **env: str) -> Any:
    return CliRunner().invoke(main, ["estimate", *args], env={"DENTRIX_ZOHO_HOME": str(home), **env})


def test_help_explains_every_input_and_the_exit_codes() -> None:
    result = CliRunner().invoke(main, ["estimate", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for option in ("--edition", "--users", "--addon-credits", "--reserve", "--latency-ms", "--concurrency",
                   "--scope", "--on-budget-exhausted", "--write-path", "--office"):
        assert option in text
    for env in ("ZOHO_EDITION", "ZOHO_USERS", "ZOHO_ADDON_CREDITS", "ZOHO_PLAN_RESERVE", "ZOHO_LATENCY_MS"):
        assert env in text
    assert "0 fits in one day" in text and "3 needs several days" in text and "2 cannot run" in text
    assert "estimate" in CliRunner().invoke(main, ["--help"]).output


def test_fits_writes_a_counts_only_report(office_home: Any) -> None:
    home = office_home()
    result = _run(home, "--edition", "enterprise", "--users", "5")
    assert result.exit_code == 0, result.output
    assert "verdict: fits in one day" in result.output
    report = home / "reports" / "estimate_office-1.md"
    text = report.read_text(encoding="utf-8")
    assert (report.stat().st_mode & 0o777) == 0o600
    assert "## Verdict: fits in one day" in text and "| Contacts | 3 |" in text
    assert "zoho.com/crm/help/api/api-limits.html" in text  # what the numbers rest on
    for word in PATIENT_WORDS:
        assert word not in text and word not in result.output


def test_a_tiny_budget_needs_days_and_stop_refuses(tiny_home: Path) -> None:
    # Free keeps 500 of its 5,000 credits with a 90 % reserve: the tiny practice needs more.
    paused = _run(tiny_home, "--edition", "free", "--reserve", "0.9", "--on-budget-exhausted", "pause")
    assert paused.exit_code == 3, paused.output
    assert "verdict: needs 2 days: run with pause" in paused.output
    stopped = _run(tiny_home, "--edition", "free", "--reserve", "0.9", ZOHO_ON_BUDGET_EXHAUSTED="stop")
    assert stopped.exit_code == 2 and "set it to pause" in stopped.output
    assert _run(tiny_home, "--edition", "enterprise").exit_code == 0


def test_no_patient_name_of_the_tiny_practice_in_the_report(tiny_home: Path) -> None:
    result = _run(tiny_home, "--edition", "professional", "--users", "3")
    assert result.exit_code == 0, result.output
    text = (tiny_home / "reports" / "estimate_office-1.md").read_text(encoding="utf-8")
    con = duckdb.connect(str(tiny_home / "staging.duckdb"), read_only=True)
    try:
        names = {n for row in con.execute("SELECT lastname, firstname FROM dentrix.patient").fetchall()
                 for n in row if n and len(n) >= 4}
    finally:
        con.close()
    assert names
    # whole words: a patient named "Call" is not the module "Calls"
    leaked = [n for n in names if re.search(rf"\b{re.escape(n)}\b", text + result.output)]
    assert not leaked, f"{len(leaked)} patient names in the estimate"


def test_bad_input_and_nothing_shaped_exit_2_naming_what_to_do(office_home: Any, tmp_path: Path) -> None:
    home = office_home()
    bad = _run(home, "--users", "-4")
    assert bad.exit_code == 2 and "--users / ZOHO_USERS" in bad.output
    bad_env = _run(home, ZOHO_USERS="200000")
    assert bad_env.exit_code == 2 and "--users / ZOHO_USERS" in bad_env.output
    unknown = _run(home, "--edition", "platinum")
    assert unknown.exit_code == 2 and "free, standard, professional, enterprise, ultimate" in unknown.output
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = _run(empty)
    assert nothing.exit_code == 2 and "dentrix-zoho stage" in nothing.output


# -- the Dagster asset and its gate --------------------------------------------------------------


def _materialize(home: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> dg.ExecuteInProcessResult:
    from dentrix_zoho.defs.plan.assets import migration_estimate
    from dentrix_zoho.defs.workspace_resource import WorkspaceResource

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return dg.materialize([migration_estimate], resources={
        "workspace": WorkspaceResource(home=str(home), office_id="office-1", ledger_url=None)},
        raise_on_error=False)


def _check(result: dg.ExecuteInProcessResult) -> Any:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "fits_budget"
    return evaluation


def test_asset_publishes_the_table_as_counts(office_home: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _materialize(office_home(), monkeypatch, ZOHO_EDITION="enterprise", ZOHO_USERS="5")
    assert result.success
    [mat] = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in mat.materialization.metadata.items()}
    assert meta["contacts_records"] == 3 and meta["attachments_records"] == 1
    # the hand count of test_estimate.py: owners 1, load 10, reconciliation 9 (COUNTs, notes page, listing, reads)
    assert meta["total_calls"] == 18 and meta["total_credits"] == 18 and meta["days"] == 1
    assert meta["verdict"] == "fits in one day" and "| Contacts |" in meta["table"]
    assert not any(word in str(meta) for word in PATIENT_WORDS)
    assert _check(result).passed


def test_gate_warns_under_pause_and_fails_under_stop(office_home: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    home = office_home(extra_notes=6_000)  # 60 calls of 100 notes: more than Free keeps with a 90 % reserve
    paused = _materialize(home, monkeypatch, ZOHO_EDITION="free", ZOHO_PLAN_RESERVE="0.9",
                          ZOHO_ON_BUDGET_EXHAUSTED="pause")
    check = _check(paused)
    assert check.passed and check.description.startswith("warning: needs 2 days: run with pause")
    stopped = _materialize(home, monkeypatch, ZOHO_EDITION="free", ZOHO_PLAN_RESERVE="0.9",
                           ZOHO_ON_BUDGET_EXHAUSTED="stop")
    check = _check(stopped)
    assert not check.passed and "set it to pause" in check.description


def test_full_migration_runs_the_estimate_before_the_first_write() -> None:
    from dentrix_zoho.definitions import defs

    graph = defs.resolve_asset_graph()
    first = graph.get(dg.AssetKey(["zoho_load", "responsible_parties"]))
    assert dg.AssetKey(["zoho_plan", "migration_estimate"]) in first.parent_keys
    for job in ("full_migration", "sample_migration"):
        keys = {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys}
        assert "zoho_plan/migration_estimate" in keys
