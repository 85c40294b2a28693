"""The org-level audit as the operator runs it: ``dentrix-zoho org-audit`` and the Dagster job
``cross_office_audit`` (asset ``dentrix_org/cross_office_audit``), over the offices of the offices file,
each office staged in its own folder; counts only in the output and the metadata."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from dentrix_zoho.cli import main
from dentrix_zoho.ledger import Ledger
from dentrix_zoho.org import POLICY_ENV
from dentrix_zoho_tests.org.conftest import D, person, stage_patients

OFFICES = ("north", "south", "east")
# The same woman at north and south (name, birth date, mobile); east's patient is someone else.
PATIENTS = {
    "north": [person(1, "Garcia", "Maria", D(1980, 3, 14), mobile="801-555-0101"),
              person(2, "Lindqvist", "Sam", D(1972, 8, 1))],
    "south": [person(7, "Garcia", "Maria", D(1980, 3, 14), mobile="(801) 555-0101"),
              person(8, "Okonkwo", "Sam", D(1972, 8, 1))],
    "east": [person(3, "Tanaka", "Yuki", D(1990, 1, 2))],
}
VALUES = ("Garcia", "Maria", "Lindqvist", "Okonkwo", "Tanaka", "1980", "555", "0101")


@dataclass
class Home:
    path: Path

    def stage(self, *offices: str) -> None:
        for office in offices:
            folder = self.path.resolve() / "offices" / office
            folder.mkdir(parents=True, exist_ok=True)
            stage_patients(folder / "staging.duckdb", {office: PATIENTS[office]})

    def invoke(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    @property
    def report(self) -> Path:
        return self.path.resolve() / "org" / "reports" / "cross_office_audit.md"

    def groups(self) -> list[list[str]]:
        with Ledger(f"sqlite:///{self.path.resolve() / 'ledger.sqlite'}") as ledger:
            return [[m.source_id for m in members] for members in ledger.merge_groups().values()]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    for name in ("DENTRIX_SOURCE", "DENTRIX_OFFICE_ID", "DENTRIX_OFFICES_FILE", "DENTRIX_ZOHO_LEDGER_URL", POLICY_ENV):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    path.mkdir()
    (path / "offices.yaml").write_text("offices:\n" + "".join(
        f"  {office}:\n    dentrix: {{url: 'sqlite:///{tmp_path / office}.db'}}\n    time_zone: America/Chicago\n"
        for office in OFFICES), encoding="utf-8")
    monkeypatch.setenv("DENTRIX_ZOHO_HOME", str(path))
    yield Home(path)


def test_the_command_explains_itself() -> None:
    code, out = Home(Path(".")).invoke("org-audit", "--help")
    assert code == 0
    for words in ("staging.duckdb", "org/reports/cross_office_audit.md", "DENTRIX_CROSS_OFFICE_POLICY", "separate",
                  "merge", "--skip-unstaged", "Exit status 2"):
        assert words in out, words


def test_the_command_audits_every_office_and_under_merge_records_the_groups(home: Home,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    home.stage(*OFFICES)
    code, out = home.invoke("org-audit")
    assert code == 0, out
    assert "3 offices: 1 group(s)" in out and "policy separate" in out and str(home.report) in out
    assert home.groups() == []  # separate: a report to review, nothing for the loads
    text = home.report.read_text(encoding="utf-8")
    assert "`north:patient:1`, `south:patient:7`" in text
    assert oct(home.report.stat().st_mode & 0o777) == "0o600"
    assert not [v for v in VALUES if v in out or v in text]  # ids and counts only

    monkeypatch.setenv(POLICY_ENV, "merge")
    code, out = home.invoke("org-audit")
    assert code == 0, out
    assert "policy merge: 2 records recorded in the ledger" in out
    assert home.groups() == [["north:patient:1", "south:patient:7"]]


def test_an_office_not_staged_stops_the_audit_unless_left_out_by_name(home: Home,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLICY_ENV, "merge")
    home.stage("north", "south")
    code, out = home.invoke("org-audit")
    assert code == 2 and "1 office(s)" in out and "not staged yet: east" in out and "--skip-unstaged" in out
    assert not home.report.exists() and home.groups() == []
    code, out = home.invoke("org-audit", "--skip-unstaged")
    assert code == 0 and "2 offices: 1 group(s)" in out, out
    assert home.groups() == [["north:patient:1", "south:patient:7"]]


def test_a_wrong_policy_or_no_offices_file_is_an_error_that_says_so(home: Home,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    home.stage(*OFFICES)
    monkeypatch.setenv(POLICY_ENV, "merged")
    code, out = home.invoke("org-audit")
    assert code == 2 and "DENTRIX_CROSS_OFFICE_POLICY: must be one of separate, merge, got 'merged'" in out
    monkeypatch.delenv(POLICY_ENV)
    (home.path / "offices.yaml").unlink()
    code, out = home.invoke("org-audit")
    assert code == 2 and "no offices file" in out


def _defs() -> dg.Definitions:
    from dentrix_zoho.definitions import build_definitions

    return build_definitions()


def test_the_asset_audits_every_office_with_counts_only_metadata(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLICY_ENV, "merge")
    job = _defs().resolve_job_def("cross_office_audit")
    instance = dg.DagsterInstance.ephemeral()
    # Before the offices are staged: the run fails and names them.
    failed = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    message = "\n".join(str(e.event_specific_data.error.message) for e in failed.all_events  # type: ignore[union-attr]
                        if e.event_type_value == "STEP_FAILURE")
    assert "3 office(s)" in message and "not staged yet: north, south, east" in message

    home.stage(*OFFICES)
    result = job.execute_in_process(instance=instance)
    assert result.success
    [materialization] = result.asset_materializations_for_node("dentrix_org__cross_office_audit")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["offices"] == 3 and metadata["groups"] == 1 and metadata["mergeable_groups"] == 1
    assert metadata["policy"] == "merge" and metadata["merge_records_recorded"] == 2
    assert metadata["dagster/row_count"] == 2 and metadata["report"] == str(home.report)
    assert not [v for v in VALUES if v in repr(metadata)]
    assert home.groups() == [["north:patient:1", "south:patient:7"]]
