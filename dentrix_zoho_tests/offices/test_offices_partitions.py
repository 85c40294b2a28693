"""Two offices staged, audited and shaped as two partitions, each into its own folder; a bad office fails alone.

Real synthetic practices (SQLite stand-ins, two office numbers and seeds), a real Dagster instance with
the ``offices`` partitions, and for the unreachable office a PostgreSQL URL on a port nothing listens on.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dentrix_zoho.defs.mapping.assets import build_mapping_assets
from dentrix_zoho.defs.offices import OFFICES_PARTITIONS, OFFICES_PARTITIONS_NAME
from dentrix_zoho.defs.source.assets import build_audit_assets, build_staging_assets
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import WorkspaceResource
from dentrix_zoho.source.synthetic import PracticeFiles, generate_practice
from dentrix_zoho_tests.pg_server import PgServer

pytestmark = pytest.mark.slow

AS_OF = date(2026, 11, 1)
SECRET = "Sup3r-Secret-Pw!"  # the unreachable office's password: must appear in no error, log or event


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket closes


@dataclass
class Dso:
    home: Path
    offices_file: Path
    practices: dict[str, Path]
    instance: dg.DagsterInstance

    def materialize(self, office_id: str) -> dg.ExecuteInProcessResult:
        mapping_assets, mapping_checks = build_mapping_assets(OFFICES_PARTITIONS)
        return dg.materialize(
            [*build_staging_assets(OFFICES_PARTITIONS), *build_audit_assets(OFFICES_PARTITIONS),
             *mapping_assets, *mapping_checks],
            partition_key=office_id,
            instance=self.instance,
            resources={
                # With an offices file these fields are not used: each office brings its own connection.
                "dentrix": DentrixSourceResource(),
                "workspace": WorkspaceResource(home=str(self.home), offices_file=str(self.offices_file)),
            },
            raise_on_error=False,
        )

    def folder(self, office_id: str) -> Path:
        return self.home.resolve() / "offices" / office_id


@pytest.fixture(scope="module")
def dso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dso]:
    base = tmp_path_factory.mktemp("dso")
    practices = {}
    for number, (office_id, seed) in enumerate((("north", 7), ("south", 11)), start=1):
        practices[office_id] = base / f"{office_id}.db"
        generate_practice(practices[office_id], scale="tiny", seed=seed, as_of=AS_OF, office=number)
    entries = "".join(
        f"  {office_id}:\n"
        f"    dentrix: {{url: 'sqlite:///{db}'}}\n"
        f"    image_dir: {PracticeFiles(db).images_dir.name}\n"  # relative to the offices file
        f"    provider_map: {PracticeFiles(db).provider_map}\n"
        f"    time_zone: {zone}\n"
        for (office_id, db), zone in zip(practices.items(), ("America/Denver", "America/Chicago"), strict=True)
    )
    entries += (
        "  gone:\n"
        f"    dentrix: {{url: 'postgresql+psycopg://dentrix@127.0.0.1:{_closed_port()}/DentrixSQL',"
        " password_env: GONE_DENTRIX_PWD}\n"
        "    time_zone: America/New_York\n"
        "  unset:\n"
        "    dentrix: {odbc: 'DRIVER={SQLite3};DATABASE=/nowhere.db', password_env: UNSET_DENTRIX_PWD}\n"
        "    time_zone: UTC\n"
    )
    offices_file = base / "offices.yaml"
    offices_file.write_text("offices:\n" + entries, encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(OFFICES_PARTITIONS_NAME, ["north", "south", "gone", "unset"])
    mp = pytest.MonkeyPatch()
    mp.setenv("DENTRIX_AS_OF", AS_OF.isoformat())
    mp.setenv("GONE_DENTRIX_PWD", SECRET)
    mp.delenv("UNSET_DENTRIX_PWD", raising=False)
    for name in ("DENTRIX_SOURCE", "DENTRIX_IMAGE_DIR", "DENTRIX_PROVIDER_MAP", "DENTRIX_OFFICE_ID"):
        mp.delenv(name, raising=False)
    try:
        yield Dso(home=base / "home", offices_file=offices_file, practices=practices, instance=instance)
    finally:
        mp.undo()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _events_text(result: dg.ExecuteInProcessResult) -> str:
    return json.dumps([str(event) for event in result.all_events])


def test_each_office_stages_and_shapes_into_its_own_folder_and_touches_no_other(dso: Dso) -> None:
    north = dso.materialize("north")
    assert north.success
    north_db = dso.folder("north") / "staging.duckdb"
    before = _digest(north_db)

    south = dso.materialize("south")
    assert south.success
    # The south run left north's staging database as it was, byte for byte.
    assert _digest(north_db) == before
    # Nothing in the shared home: every office's state is in its own folder.
    assert not (dso.home / "staging.duckdb").exists() and not (dso.home / "reports").exists()

    for office_id, result in (("north", north), ("south", south)):
        folder = dso.folder(office_id)
        with sqlite3.connect(dso.practices[office_id]) as raw:
            patients = raw.execute("SELECT count(*) FROM patient").fetchone()[0]
        con = duckdb.connect(str(folder / "staging.duckdb"), read_only=True)
        try:
            staged = con.execute("SELECT _office_id, count(*) FROM dentrix.patient GROUP BY 1").fetchall()
            shaped = con.execute("SELECT DISTINCT office_id FROM zoho_shaped.contacts").fetchall()
            images = con.execute("SELECT (SELECT count(*) FROM dentrix.eattach WHERE path_cnum IS NOT NULL) + "
                                 "(SELECT count(*) FROM dentrix.document WHERE path_cnum IS NOT NULL)").fetchone()[0]
        finally:
            con.close()
        assert staged == [(office_id, patients)]
        assert shaped == [(office_id,)]
        report = folder / "reports" / "source_audit.md"
        assert report.exists() and (report.stat().st_mode & 0o077) == 0
        # Each run materialized its own partition, and its checks are that partition's.
        assert {e.partition for e in result.get_asset_materialization_events()} == {office_id}
        checks = result.get_asset_check_evaluations()
        assert [(c.check_name, c.passed, c.partition) for c in checks] == [
            ("shaping_accounts_for_every_row", True, office_id)]
        audit = next(e for e in result.get_asset_materialization_events()
                     if e.asset_key == dg.AssetKey(["dentrix", "source_audit"]))
        # The office's own image folder (relative to the offices file) was audited: only the files the
        # generator leaves out on purpose are missing (none would be counted without a folder, all with a wrong one).
        assert 0 < audit.materialization.metadata["finding/image_files_missing"].value < images


def test_an_unreachable_office_fails_its_own_partition_without_the_password(dso: Dso) -> None:
    dso.materialize("north")
    north_db = dso.folder("north") / "staging.duckdb"
    before = _digest(north_db)

    gone = dso.materialize("gone")
    assert not gone.success
    failure = next(e for e in gone.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert message.startswith("office gone: cannot open its Dentrix database (postgresql+psycopg://dentrix@127.0.0.1:")
    assert "Connection refused" in message
    assert SECRET not in _events_text(gone) and SECRET not in message
    assert gone.get_asset_materialization_events() == []
    # The other offices go on: north's state untouched, and it still runs.
    assert _digest(north_db) == before
    assert dso.materialize("north").success


def test_an_office_whose_password_variable_is_unset_says_which_variable(dso: Dso) -> None:
    unset = dso.materialize("unset")
    assert not unset.success
    failure = next(e for e in unset.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert message.startswith("office unset: cannot open its Dentrix database (DRIVER={SQLite3};DATABASE=/nowhere.db)")
    assert "UNSET_DENTRIX_PWD (password_env) is not set" in message


def test_an_office_partition_not_in_the_file_fails_naming_the_file(dso: Dso) -> None:
    dso.instance.add_dynamic_partitions(OFFICES_PARTITIONS_NAME, ["west"])
    west = dso.materialize("west")
    assert not west.success
    failure = next(e for e in west.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert "office 'west' is not in" in message and "offices.yaml" in message


def test_wrong_credentials_fail_the_office_naming_the_cause_not_the_password(
    pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real PostgreSQL server that checks passwords (scram-sha-256) plays an office's database server."""
    wrong = "Wr0ng-Pass-" + pg_server.password[:4]
    offices_file = tmp_path / "offices.yaml"
    offices_file.write_text(
        "offices:\n  east:\n    dentrix:\n"
        f"      url: postgresql+psycopg://{pg_server.user}@127.0.0.1:{pg_server.port}/postgres\n"
        "      password_env: EAST_DENTRIX_PWD\n    time_zone: America/New_York\n", encoding="utf-8")
    monkeypatch.setenv("EAST_DENTRIX_PWD", wrong)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(OFFICES_PARTITIONS_NAME, ["east"])
    result = dg.materialize(build_staging_assets(OFFICES_PARTITIONS), partition_key="east", instance=instance,
                            resources={"dentrix": DentrixSourceResource(),
                                       "workspace": WorkspaceResource(home=str(tmp_path / "home"),
                                                                      offices_file=str(offices_file))},
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert message.startswith("office east: cannot open its Dentrix database")
    assert "password authentication failed" in message
    assert wrong not in _events_text(result) and pg_server.password not in _events_text(result)


def test_a_delta_of_one_office_reads_its_dentrix_and_changes_only_its_staging(dso: Dso) -> None:
    from dentrix_zoho.defs.cutover.assets import build_cutover_assets

    dso.materialize("north")
    dso.materialize("south")
    south_db = dso.folder("south") / "staging.duckdb"
    before = _digest(south_db)
    with sqlite3.connect(dso.practices["north"]) as db:
        db.execute("UPDATE patient SET emailaddr = 'moved@example.org', automodifiedtimestamp = '2026-11-26 12:00:00' "
                   "WHERE patid = (SELECT min(patid) FROM patient)")
    delta, _ = build_cutover_assets(OFFICES_PARTITIONS)
    result = dg.materialize([delta], partition_key="north", instance=dso.instance, raise_on_error=False, resources={
        "dentrix": DentrixSourceResource(),
        "workspace": WorkspaceResource(home=str(dso.home), offices_file=str(dso.offices_file))})
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.partition == "north" and event.materialization.metadata["changed"].value == 1
    assert _digest(south_db) == before
