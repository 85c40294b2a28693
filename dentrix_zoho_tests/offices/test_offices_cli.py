"""``--office`` on the commands: each works on the office named, in its own folder; unknown offices are usage errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from dentrix_zoho.cli import main
from dentrix_zoho.ledger import Ledger


@dataclass
class Dso:
    home: Path
    file: Path

    def invoke(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    def folder(self, office_id: str) -> Path:
        return self.home.resolve() / "offices" / office_id


@pytest.fixture()
def dso(tiny_practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dso]:
    for name in ("DENTRIX_SOURCE", "DENTRIX_OFFICE_ID", "DENTRIX_IMAGE_DIR", "DENTRIX_PROVIDER_MAP",
                 "DENTRIX_OFFICES_FILE", "DENTRIX_ZOHO_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    for office_id in ("north", "south"):
        shutil.copy(tiny_practice, tmp_path / f"{office_id}.db")
    (home / "offices.yaml").write_text(
        "offices:\n" + "".join(
            f"  {office_id}:\n    dentrix: {{url: 'sqlite:///{tmp_path / (office_id + '.db')}'}}\n"
            f"    time_zone: America/Chicago\n" for office_id in ("north", "south")
        ) + "  locked:\n    dentrix: {url: 'postgresql+psycopg://dx@127.0.0.1:9/dentrix', password_env: LOCKED_PWD}\n"
            "    time_zone: UTC\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DENTRIX_ZOHO_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("DENTRIX_AS_OF", "2026-11-01")
    monkeypatch.setenv("DENTRIX_EXTRACT_WORKERS", "1")
    yield Dso(home=home, file=home / "offices.yaml")


def _offices_in(staging: Path) -> list[tuple[str]]:
    con = duckdb.connect(str(staging), read_only=True)
    try:
        return con.execute("SELECT DISTINCT _office_id FROM dentrix.patient").fetchall()
    finally:
        con.close()


def test_offices_lists_the_file_and_a_broken_file_names_line_and_key(dso: Dso) -> None:
    code, out = dso.invoke("offices")
    assert code == 0 and f"{dso.file.resolve()}: 3 offices" in out
    assert "locked: postgresql+psycopg://dx@127.0.0.1:9/dentrix, password from $LOCKED_PWD" in out
    assert f"state in {dso.folder('south')}" in out
    dso.file.write_text("offices:\n  north:\n    dentrix: {url: 'sqlite:///n.db'}\n    time_zone: Atlantis\n")
    code, out = dso.invoke("offices")
    assert code == 2 and "offices.yaml:4: offices.north.time_zone: unknown time zone 'Atlantis'" in out


def test_stage_and_audit_work_on_the_office_named(dso: Dso) -> None:
    code, out = dso.invoke("stage", "--office", "south", "--object", "patient")
    assert code == 0, out
    assert f"of office south into {dso.folder('south') / 'staging.duckdb'}" in out
    assert _offices_in(dso.folder("south") / "staging.duckdb") == [("south",)]
    assert not (dso.folder("north") / "staging.duckdb").exists() and not (dso.home / "staging.duckdb").exists()

    code, out = dso.invoke("stage", "--object", "patient")  # three offices: which one?
    assert code == 2 and "lists 3 offices: say which with --office (one of north, south, locked)" in out
    code, out = dso.invoke("stage", "--office", "west")
    assert code == 2 and "office 'west' is not in" in out
    code, out = dso.invoke("stage", "--office", "locked")
    assert code == 2 and "LOCKED_PWD (password_env) is not set" in out


@pytest.mark.slow
def test_run_stages_one_office_as_its_partition(dso: Dso) -> None:
    code, out = dso.invoke("run", "stage_and_audit", "--office", "north")
    assert code == 0, out
    assert "added the partition of office north" in out
    assert "stage_and_audit for office north: succeeded" in out
    assert "source_audit.md" in out and str(dso.folder("north") / "reports") in out
    assert _offices_in(dso.folder("north") / "staging.duckdb") == [("north",)]
    assert not (dso.folder("south") / "staging.duckdb").exists()

    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("offices") == ["north"]
        [record] = instance.get_run_records()
        assert record.dagster_run.tags["dagster/partition"] == "north"
        assert record.dagster_run.tags["dentrix_zoho/office"] == "north"  # the daemon's per-office limit sees it


def test_run_refuses_while_the_office_has_a_run_in_progress_and_tags_its_own(dso: Dso, tmp_path: Path) -> None:
    """`run` goes outside the daemon's queue: beside a queued or running run of the office it refuses."""
    import dagster as dg
    from dagster._core.test_utils import create_run_for_test

    from dentrix_zoho.settings import ensure_dagster_home

    ensure_dagster_home(dso.home)
    # Not entered: entering sets Dagster's process-wide current state storage.
    instance = dg.DagsterInstance.get()
    try:
        going = create_run_for_test(instance, job_name="full_migration", status=dg.DagsterRunStatus.STARTED,
                                    tags={"dagster/partition": "north"})
        create_run_for_test(instance, job_name="full_migration", status=dg.DagsterRunStatus.STARTING,
                            tags={"dentrix_zoho/office": "south"})
        create_run_for_test(instance, job_name="full_migration", status=dg.DagsterRunStatus.FAILURE,
                            tags={"dagster/partition": "locked"})

        code, out = dso.invoke("run", "stage_and_audit", "--office", "north")
        assert code == 2 and f"office north already has 1 run(s) queued or in progress: {going.run_id} " \
                             "(full_migration, STARTED)" in out
        code, out = dso.invoke("run", "stage_and_audit", "--office", "south")
        assert code == 2 and "office south already has 1 run(s) queued or in progress" in out
        assert not (dso.folder("north") / "staging.duckdb").exists()
        assert not (dso.folder("south") / "staging.duckdb").exists()
        assert len(instance.get_runs()) == 3  # nothing started

        from dentrix_zoho.defs.offices import unfinished_runs_of

        assert unfinished_runs_of(instance, "locked") == []  # a finished run holds nothing
        instance.report_run_canceled(going)
        assert unfinished_runs_of(instance, "north") == []
    finally:
        instance.dispose()


def test_rollback_is_per_office_and_reaches_an_office_taken_out_of_the_file(dso: Dso) -> None:
    code, out = dso.invoke("rollback", "--all", "--dry-run")
    assert code == 2 and "roll back one at a time with --office ID --all" in out
    # An office removed from the file but still in the ledger: its rollback is what the sensor asks for.
    ledger = Ledger(f"sqlite:///{dso.home / 'ledger.sqlite'}")
    run_id = ledger.start_run("full", "east")
    ledger.record_write(run_id, "east", "patient", "east:patient:1", "Contacts", "9001", row_hash="h",
                        created=True, zoho_modified_time="2026-11-01T10:00:00+00:00")
    ledger.finish_run(run_id, "succeeded")
    code, out = dso.invoke("rollback", "--all", "--office", "west", "--dry-run")
    assert code == 2 and "office 'west' is neither in" in out and "nor in the ledger" in out
    code, out = dso.invoke("rollback", "--all", "--office", "east", "--dry-run")
    assert code == 0, out
    assert "Rollback of the whole migration (office east)" in out and "Contacts" in out


@pytest.mark.slow
def test_estimate_and_map_propose_read_the_office_folder(dso: Dso) -> None:
    code, out = dso.invoke("estimate", "--office", "south")
    assert code == 2 and f"no staging database at {dso.folder('south') / 'staging.duckdb'}" in out
    code, out = dso.invoke("estimate", "--office", "west")
    assert code == 2 and "office 'west' is not in" in out
    dso.invoke("stage", "--office", "south")
    code, out = dso.invoke("map", "propose", "--office", "south")
    assert code == 0, out
    assert (dso.folder("south") / "reports" / "mapping_proposal.yaml").exists()
    code, out = dso.invoke("map", "approve", "--by", "Pat Reviewer", "--office", "south")
    assert code == 0 and "for office south only" in out, out
    code, out = dso.invoke("map", "show", "--office", "south")
    assert code == 0 and "approved: yes for office south (the office's own approval by Pat Reviewer" in out, out
    code, out = dso.invoke("map", "show", "--office", "north")
    assert code == 0 and "approved: NO for office north (run: dentrix-zoho map approve --office north" in out, out


def test_without_an_offices_file_office_may_only_name_the_one_office(dso: Dso, tiny_practice: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dso.file.unlink()
    monkeypatch.setenv("DENTRIX_SOURCE", f"sqlite:///{tiny_practice}")
    code, out = dso.invoke("stage", "--office", "north", "--object", "patient")
    assert code == 2 and "office 'north' is not in the environment" in out
    code, out = dso.invoke("stage", "--office", "office-1", "--object", "patient")
    assert code == 0 and f"into {dso.home / 'staging.duckdb'}" in out  # today's path
    code, out = dso.invoke("offices")
    assert code == 0 and "no offices file: one office, office-1" in out
