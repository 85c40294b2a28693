"""The offices file: what it accepts, and errors that name the file, the line and the key (never a password)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dentrix_zoho.offices import (
    DentrixConnectionSpec,
    OfficeConnectionError,
    OfficesError,
    read_offices_file,
)
from dentrix_zoho.settings import load_offices, load_settings

GOOD = """\
offices:
  north:
    dentrix:
      odbc: "DRIVER={c-treeACE ODBC Driver};HOST=10.1.0.5;PORT=6597;DATABASE=DentrixSQL;UID=dxread"
      password_env: NORTH_DENTRIX_PWD
    image_dir: images/north
    provider_map: /srv/maps/north.yaml
    time_zone: America/Denver
    cutover:
      start: 2026-11-27T18:00:00-07:00
      length_hours: 36
  "03":
    dentrix:
      url: postgresql+psycopg://dxread@south-srv:5432/dentrix
      password_env: SOUTH_PWD
      schema: dbo
    time_zone: America/Chicago
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "offices.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(OfficesError) as err:
        read_offices_file(path, tmp_path)
    return str(err.value)


def test_a_good_file_resolves_every_office(tmp_path: Path) -> None:
    offices = read_offices_file(write(tmp_path, GOOD), tmp_path / "home")
    assert offices.ids == ["north", "03"]  # the key's text, not YAML's octal 3
    north = offices.get("north")
    assert north.state_dir == (tmp_path / "home").resolve() / "offices" / "north"
    assert north.staging_path == north.state_dir / "staging.duckdb"
    assert north.reports_dir == north.state_dir / "reports"
    assert north.image_dir == tmp_path.resolve() / "images" / "north"  # relative to the file
    assert north.provider_map == Path("/srv/maps/north.yaml")
    assert north.time_zone == "America/Denver"
    assert north.cutover is not None and north.cutover.length_hours == 36
    assert north.origin.endswith("offices.yaml:2")
    south = offices.get("03")
    assert south.connection is not None and south.connection.schema_name == "dbo"
    assert south.cutover is None


@pytest.mark.parametrize(
    ("text", "line", "key", "why"),
    [
        ("offices:\n  north:\n    dentrix: {url: 'sqlite:///a.db'}\n    time_zone: Mars/Base\n",
         4, "offices.north.time_zone", "unknown time zone"),
        ("offices:\n  north:\n    dentrix: {url: 'sqlite:///a.db'}\n    time_zone: UTC\n    colour: red\n",
         5, "offices.north.colour", "unknown key"),
        ("offices:\n  north:\n    dentrix: {url: 'sqlite:///a.db'}\n",
         2, "offices.north.time_zone", "required key is missing"),
        ("offices:\n  north:\n    dentrix:\n      url: 'sqlite:///a.db'\n      odbc: 'DSN=x'\n    time_zone: UTC\n",
         3, "offices.north.dentrix", "exactly one of url"),
        ("offices:\n  north:\n    dentrix: {url: 'sqlite:///a.db', password_env: 'hunter 2'}\n    time_zone: UTC\n",
         3, "offices.north.dentrix.password_env", "NAME of an environment variable"),
        ("offices:\n  a/b:\n    dentrix: {url: 'sqlite:///a.db'}\n    time_zone: UTC\n",
         2, "offices.a/b", "office id 'a/b'"),
        ("offices:\n  north:\n    dentrix: {url: 'sqlite:///a.db'}\n    time_zone: UTC\n"
         "    cutover:\n      start: 2026-11-27T18:00:00-07:00\n      length_hours: 12\n",
         7, "offices.north.cutover.length_hours", "greater than or equal to 24"),
        ("offices: {}\n", 1, "offices", "at least 1 item"),
        ("office:\n  north: {}\n", 1, "office", "unknown key"),
    ],
)
def test_each_mistake_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, why: str) -> None:
    message = error_of(tmp_path, text)
    assert f"offices.yaml:{line}: {key}: " in message, message
    assert why in message, message


def test_several_mistakes_are_all_listed(tmp_path: Path) -> None:
    message = error_of(tmp_path, "offices:\n  a:\n    dentrix: {url: 'sqlite:///a'}\n    time_zone: Nowhere\n"
                                 "  b:\n    dentrix: {url: 'sqlite:///b'}\n    time_zone: UTC\n    extra: 1\n")
    assert message.startswith("2 problems in the offices file:")
    assert "offices.yaml:4: offices.a.time_zone" in message and "offices.yaml:8: offices.b.extra" in message


def test_a_duplicate_office_id_is_rejected_with_both_lines(tmp_path: Path) -> None:
    message = error_of(tmp_path, """\
        offices:
          north:
            dentrix: {url: "sqlite:///north.db"}
            time_zone: UTC
          south:
            dentrix: {url: "sqlite:///south.db"}
            time_zone: UTC
          north:
            dentrix: {url: "sqlite:///other.db"}
            time_zone: UTC
        """)
    assert message.endswith("offices.yaml:8: duplicate office id 'north': also at line 2; each may appear once")


def test_office_ids_that_differ_only_in_case_are_rejected(tmp_path: Path) -> None:
    """Zoho's unique check and COQL `like` ignore case: b_1 and B_1 would share Source_System_IDs."""
    message = error_of(tmp_path, """\
        offices:
          b_1:
            dentrix: {url: "sqlite:///b1.db"}
            time_zone: UTC
          B_1:
            dentrix: {url: "sqlite:///B1.db"}
            time_zone: UTC
        """)
    assert "offices.yaml:5: office id 'B_1' differs from 'b_1' (line 2) only in case" in message


def test_a_duplicated_key_inside_an_office_is_rejected_too(tmp_path: Path) -> None:
    message = error_of(tmp_path, "offices:\n  north:\n    dentrix: {url: 'sqlite:///a'}\n    time_zone: UTC\n"
                                 "    time_zone: America/Denver\n")
    assert "offices.yaml:5: duplicate key 'offices.north.time_zone': also at line 4" in message


@pytest.mark.parametrize(
    ("dentrix", "line", "key"),
    [
        ("      url: postgresql://dx:Hunter2Secret@srv/dentrix\n", 4, "offices.north.dentrix.url"),
        ("      odbc: DSN=Dentrix;UID=dx;PWD=Hunter2Secret\n", 4, "offices.north.dentrix.odbc"),
        ("      odbc: DSN=Dentrix;UID=dx;Password={Hunter2Secret}\n", 4, "offices.north.dentrix.odbc"),
        ("      url: sqlite:///a.db\n      password: Hunter2Secret\n", 5, "offices.north.dentrix.password"),
    ],
)
def test_an_inline_password_is_an_error_that_does_not_repeat_it(
    tmp_path: Path, dentrix: str, line: int, key: str
) -> None:
    message = error_of(tmp_path, f"offices:\n  north:\n    dentrix:\n{dentrix}    time_zone: UTC\n")
    assert f"offices.yaml:{line}: {key}: " in message, message
    assert "password_env" in message
    assert "Hunter2Secret" not in message


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "offices:\n  north: {dentrix: {url: 'sqlite:///a'}, time_zone: UTC\n")
    assert "offices.yaml:3: not valid YAML" in message


def test_the_password_is_read_from_its_variable_at_connect_time_only() -> None:
    odbc = DentrixConnectionSpec(odbc="DSN=Dentrix;UID=dx", password_env="NORTH_PWD")
    assert odbc.template == "DSN=Dentrix;UID=dx"
    assert odbc.connection_string({"NORTH_PWD": "pa;ss}w"}) == "DSN=Dentrix;UID=dx;PWD={pa;ss}}w}"
    url = DentrixConnectionSpec(url="postgresql://dx@srv/dentrix", password_env="NORTH_PWD")
    assert url.connection_string({"NORTH_PWD": "p@ss/w"}) == "postgresql://dx:p%40ss%2Fw@srv/dentrix"
    assert url.scrub("failed for p@ss/w and p%40ss%2Fw", {"NORTH_PWD": "p@ss/w"}) == "failed for *** and ***"
    with pytest.raises(OfficeConnectionError, match="NORTH_PWD .* is not set"):
        url.connection_string({})
    assert DentrixConnectionSpec(url="sqlite:///a.db").connection_string({}) == "sqlite:///a.db"


def test_without_a_file_there_is_one_office_from_the_environment(tmp_path: Path) -> None:
    env = {"DENTRIX_ZOHO_HOME": str(tmp_path), "DENTRIX_OFFICE_ID": "main-street", "DENTRIX_SOURCE": "sqlite:///x.db"}
    offices = load_offices(env)
    assert not offices.from_file and offices.ids == ["main-street"]
    # Today's paths: state directly in the home, so `make demo` is unchanged.
    assert offices.get("main-street").staging_path == tmp_path.resolve() / "staging.duckdb"
    assert load_settings(env).staging_path == tmp_path / "staging.duckdb"
    with pytest.raises(OfficesError, match="office 'north' is not in the environment"):
        load_settings(env, office="north")


def test_with_a_file_the_settings_follow_the_office(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    env = {"DENTRIX_ZOHO_HOME": str(tmp_path), "SOUTH_PWD": "s3cret"}
    south = load_settings(env, office="03")
    assert south.office_id == "03" and south.source_schema == "dbo"
    assert south.staging_path == tmp_path.resolve() / "offices" / "03" / "staging.duckdb"
    assert south.source == "postgresql+psycopg://dxread@south-srv:5432/dentrix"  # what may be shown
    assert south.connection_string() == "postgresql+psycopg://dxread:s3cret@south-srv:5432/dentrix"
    # The ledger stays one database for every office.
    assert south.resolved_ledger_url == load_settings(env).resolved_ledger_url
    with pytest.raises(OfficesError, match="lists 2 offices: say which with --office"):
        load_settings(env).for_office(None)
    with pytest.raises(OfficesError, match="office 'west' is not in"):
        load_settings(env, office="west")


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OfficesError, match="no such offices file"):
        load_offices({"DENTRIX_ZOHO_HOME": str(tmp_path), "DENTRIX_OFFICES_FILE": str(tmp_path / "nope.yaml")})
