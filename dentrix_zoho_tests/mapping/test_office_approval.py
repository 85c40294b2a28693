"""Map approval per office: an approval opens one office or every office; a changed spec voids both kinds.

The ledger on SQLite and on a real PostgreSQL server; a ledger of schema 2 (approvals without an office)
opens with this code, is upgraded, and its approvals still open every office. The command line on an
offices file of two offices.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, inspect, select, update

from dentrix_zoho.cli import main
from dentrix_zoho.ledger import Ledger
from dentrix_zoho.ledger import schema as s
from dentrix_zoho.mapping import approval_status, approve_spec, is_current_spec_approved, spec_hash
from dentrix_zoho_tests.mapping.conftest import edit_leads_window

NORTH, SOUTH = "north", "south"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("pg_database"))


def test_an_office_approval_opens_that_office_only(ledger_url: str, spec_copy: Path) -> None:
    with Ledger(ledger_url) as ledger:
        digest = approve_spec(ledger, " Pat Reviewer ", spec_copy, office_id=NORTH)
        assert is_current_spec_approved(ledger, spec_copy, office_id=NORTH)
        assert not is_current_spec_approved(ledger, spec_copy, office_id=SOUTH)
        assert not is_current_spec_approved(ledger, spec_copy), "one office's approval is not every office's"
        north = approval_status(ledger, spec_copy, office_id=NORTH)
        assert north.approval is not None and not north.org_wide
        assert (north.approval.office_id, north.approval.approved_by, north.spec_hash) == (NORTH, "Pat Reviewer", digest)
        south = approval_status(ledger, spec_copy, office_id=SOUTH)
        assert south.approval is None
        assert "dentrix-zoho map approve --office south --by NAME" in south.refusal()
        assert [(a.office_id, a.approved_by) for a in ledger.approvals(digest)] == [(NORTH, "Pat Reviewer")]


def test_an_approval_for_every_office_opens_both_and_the_office_own_is_named_first(ledger_url: str,
                                                                                 spec_copy: Path) -> None:
    with Ledger(ledger_url) as ledger:
        approve_spec(ledger, "Dr. Avery", spec_copy)
        for office in (NORTH, SOUTH, "east"):
            status = approval_status(ledger, spec_copy, office_id=office)
            assert status.approved and status.org_wide, office
            assert status.describe().startswith(f"yes for office {office} (approval for every office by Dr. Avery")
        assert is_current_spec_approved(ledger, spec_copy)
        approve_spec(ledger, "Pat Reviewer", spec_copy, office_id=SOUTH)
        south = approval_status(ledger, spec_copy, office_id=SOUTH)
        assert south.approval is not None and south.approval.office_id == SOUTH and not south.org_wide
        assert approval_status(ledger, spec_copy, office_id=NORTH).org_wide


def test_a_changed_spec_voids_both_kinds_and_reverting_restores_them(ledger_url: str, spec_copy: Path) -> None:
    with Ledger(ledger_url) as ledger:
        approve_spec(ledger, "Dr. Avery", spec_copy)
        approve_spec(ledger, "Pat Reviewer", spec_copy, office_id=NORTH)
        original = spec_copy.read_text(encoding="utf-8")
        edit_leads_window(spec_copy, 24)
        for office in (NORTH, SOUTH, None):
            assert not is_current_spec_approved(ledger, spec_copy, office_id=office), office
        approve_spec(ledger, "Pat Reviewer", spec_copy, office_id=SOUTH)  # the new map, reviewed on south
        assert is_current_spec_approved(ledger, spec_copy, office_id=SOUTH)
        assert not is_current_spec_approved(ledger, spec_copy, office_id=NORTH)
        spec_copy.write_text(original, encoding="utf-8")
        assert all(is_current_spec_approved(ledger, spec_copy, office_id=o) for o in (NORTH, SOUTH, None))


def _version_and_columns(ledger: Ledger) -> tuple[str, set[str]]:
    with ledger.engine.connect() as conn:
        version = conn.execute(select(s.ledger_meta.c.value).where(s.ledger_meta.c.key == "schema_version")).scalar()
        columns = {c["name"] for c in inspect(conn).get_columns("approvals")}
    return str(version), columns


def _schema_2_ledger(url: str) -> None:
    """The schema-2 ledger, built without opening it with this code afterwards."""
    with Ledger(url) as made, made.engine.begin() as conn:
        s.approvals.drop(conn)
        old = Table("approvals", MetaData(),
                    Column("id", Integer, primary_key=True, autoincrement=True),
                    Column("spec_hash", String(128), nullable=False),
                    Column("approved_by", String(128), nullable=False),
                    Column("approved_at", String(40), nullable=False),
                    Column("spec_path", String(1024)))
        old.create(conn)
        conn.execute(insert(old).values(spec_hash="h-old", approved_by="Dr. Avery",
                                        approved_at="2026-10-01T09:00:00.000000+00:00", spec_path="spec.yaml"))
        conn.execute(update(s.ledger_meta).where(s.ledger_meta.c.key == "schema_version").values(value="2"))


def test_a_schema_2_ledger_is_upgraded_and_its_approvals_open_every_office(ledger_url: str) -> None:
    _schema_2_ledger(ledger_url)
    with Ledger(ledger_url) as upgraded:
        version, columns = _version_and_columns(upgraded)
        assert version == str(s.SCHEMA_VERSION) == "3" and "office_id" in columns
        (old,) = upgraded.approvals()
        assert (old.spec_hash, old.approved_by, old.office_id) == ("h-old", "Dr. Avery", None)
        assert upgraded.is_approved("h-old") and upgraded.is_approved("h-old", NORTH)
        assert upgraded.is_approved("h-old", SOUTH)
        upgraded.record_approval("h-new", "Pat Reviewer", office_id=NORTH)
        assert upgraded.is_approved("h-new", NORTH) and not upgraded.is_approved("h-new", SOUTH)
    with Ledger(ledger_url) as reopened:  # opening an upgraded ledger again changes nothing
        assert _version_and_columns(reopened)[0] == "3"
        assert [(a.spec_hash, a.office_id) for a in reopened.approvals()] == [("h-old", None), ("h-new", NORTH)]


def test_two_processes_opening_a_schema_2_ledger_at_once_both_open_it(pg_database: str) -> None:
    _schema_2_ledger(pg_database)
    start = threading.Barrier(2)
    opened: list[tuple[str, set[str]]] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            with Ledger(pg_database) as ledger:  # its own engine and pool, like another process
                opened.append(_version_and_columns(ledger))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert [v for v, _ in opened] == ["3", "3"] and all("office_id" in c for _, c in opened)
    with Ledger(pg_database) as ledger:
        assert ledger.is_approved("h-old", SOUTH)


# -- the command line ---------------------------------------------------------------------------------


@pytest.fixture
def offices_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("DENTRIX_SOURCE", "DENTRIX_OFFICE_ID", "DENTRIX_IMAGE_DIR", "DENTRIX_PROVIDER_MAP",
                 "DENTRIX_OFFICES_FILE", "DENTRIX_ZOHO_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "offices.yaml").write_text(
        "offices:\n" + "".join(f"  {o}:\n    dentrix: {{url: 'sqlite:///{tmp_path / (o + '.db')}'}}\n"
                               "    time_zone: America/Chicago\n" for o in (NORTH, SOUTH)), encoding="utf-8")
    monkeypatch.setenv("DENTRIX_ZOHO_HOME", str(home))
    yield home


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_help_explains_office(offices_env: Path) -> None:
    code, out = _cli("map", "approve", "--help")
    flat = " ".join(out.split())
    assert code == 0 and "--office ID" in out
    assert "for this office only" in flat and "Without --office the approval covers every office" in flat
    code, out = _cli("map", "show", "--help")
    flat = " ".join(out.split())
    assert code == 0 and "approved for this office, and by which approval" in flat


def test_cli_approves_one_office_then_every_office(offices_env: Path, spec_copy: Path) -> None:
    spec = str(spec_copy)
    code, out = _cli("map", "show", "--spec", spec)
    assert code == 0 and "approved: NO for every office" in out
    assert f"  {NORTH}  NO for office north (run: dentrix-zoho map approve --office north --by NAME)" in out

    code, out = _cli("map", "approve", "--spec", spec, "--office", NORTH, "--by", "Pat Reviewer")
    assert code == 0 and "for office north only" in out
    assert "warning: office north has no successful sample migration" in out  # nothing sampled in this ledger

    code, out = _cli("map", "show", "--spec", spec, "--office", NORTH)
    assert code == 0 and "approved: yes for office north (the office's own approval by Pat Reviewer" in out
    code, out = _cli("map", "show", "--spec", spec, "--office", SOUTH)
    assert code == 0 and "approved: NO for office south (run: dentrix-zoho map approve --office south" in out
    code, out = _cli("map", "show", "--spec", spec)
    assert code == 0 and "approved: NO for every office" in out and "approvals of this hash: 1" in out
    assert "  office north" in out and "by Pat Reviewer" in out
    assert "  north  yes for office north (the office's own approval" in out
    assert "  south  NO for office south" in out

    code, out = _cli("map", "approve", "--spec", spec, "--by", "Dr. Avery")
    assert code == 0 and "for every office" in out and "warning" not in out
    code, out = _cli("map", "show", "--spec", spec, "--office", SOUTH)
    assert "approved: yes for office south (approval for every office by Dr. Avery" in out
    code, out = _cli("map", "show", "--spec", spec)
    assert "approved: yes for every office (approval for every office by Dr. Avery" in out
    assert "approvals of this hash: 2" in out and "  north  yes for office north (the office's own approval" in out

    edit_leads_window(spec_copy, 30)
    code, out = _cli("map", "show", "--spec", spec)
    assert "approved: NO for every office" in out and "approvals of this hash" not in out
    assert "  north  NO" in out and "  south  NO" in out

    code, out = _cli("map", "approve", "--spec", spec, "--office", "west", "--by", "Pat Reviewer")
    assert code == 2 and "office 'west' is not in" in out
    with Ledger.for_home(offices_env) as ledger:
        assert [a.office_id for a in ledger.approvals()] == [NORTH, None]


def test_cli_approve_of_a_sampled_office_does_not_warn(offices_env: Path, spec_copy: Path) -> None:
    digest = spec_hash(spec_copy)
    with Ledger.for_home(offices_env) as ledger:
        failed = ledger.start_run("sample", SOUTH, spec_hash=digest)
        ledger.finish_run(failed, "failed")
        other = ledger.start_run("sample", NORTH, spec_hash="another-spec")
        ledger.finish_run(other, "succeeded")
    code, out = _cli("map", "approve", "--spec", str(spec_copy), "--office", NORTH, "--by", "Pat Reviewer")
    assert code == 0 and "warning: office north has no successful sample migration" in out
    code, out = _cli("map", "approve", "--spec", str(spec_copy), "--office", SOUTH, "--by", "Pat Reviewer")
    assert code == 0 and "warning: office south has no successful sample migration" in out  # it failed
    with Ledger.for_home(offices_env) as ledger:
        run = ledger.start_run("sample", NORTH, spec_hash=digest)
        ledger.finish_run(run, "succeeded")
    code, out = _cli("map", "approve", "--spec", str(spec_copy), "--office", NORTH, "--by", "Pat Reviewer")
    assert code == 0 and "warning" not in out and "for office north only" in out
