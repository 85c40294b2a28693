"""Connection strings: which kind, how they are shown, and the errors a person sees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dentrix_zoho.source.connection import SourceError, open_source, parse_source


def test_sqlalchemy_url_and_odbc_string_are_told_apart() -> None:
    assert parse_source("sqlite:///practice.db").kind == "sqlalchemy"
    assert parse_source("postgresql+psycopg://u:p@h/db").kind == "sqlalchemy"
    assert parse_source("DSN=c-treeACE ODBC Driver;UID=u;PWD=p").kind == "odbc"
    assert parse_source("DRIVER={SQLite3};Database=/tmp/x.db").kind == "odbc"


@pytest.mark.parametrize("bad", ["", "   ", "practice.db"])
def test_unusable_source_is_a_clear_error(bad: str) -> None:
    with pytest.raises(SourceError, match="DENTRIX_SOURCE"):
        parse_source(bad)


def test_passwords_never_appear_in_the_shown_form() -> None:
    odbc = parse_source("host=srv;UID=ddp;PWD=s3cr3t!;Database=DentrixSQL;DSN=c-treeACE ODBC Driver;port=6597")
    assert "s3cr3t" not in odbc.redacted()
    assert "PWD=***" in odbc.redacted()
    assert "host=srv" in odbc.redacted()
    url = parse_source("mssql+pyodbc://ddp:s3cr3t@srv/DentrixSQL")
    assert "s3cr3t" not in url.redacted()
    assert url.secrets() == ["s3cr3t"]


def test_missing_sqlite_file_is_reported_without_creating_it(tmp_path: Path) -> None:
    target = tmp_path / "nope.db"
    with pytest.raises(SourceError, match="no such file"):
        with open_source(f"sqlite:///{target}"):
            pass
    assert not target.exists()


@pytest.mark.odbc
@pytest.mark.skipif(shutil.which("odbcinst") is None, reason="unixODBC not installed")
def test_unreachable_dsn_names_the_connection_but_not_the_password() -> None:
    with pytest.raises(SourceError) as info:
        with open_source("DSN=no-such-dentrix-dsn;UID=ddp;PWD=hunter2-secret", login_timeout_s=2):
            pass
    message = str(info.value)
    assert "no-such-dentrix-dsn" in message
    assert "hunter2-secret" not in message
    assert "PWD=***" in message


def test_without_unixodbc_the_package_imports_and_the_odbc_path_says_what_to_install() -> None:
    import subprocess
    import sys

    # In a fresh interpreter (re-importing the package here would leave two copies of its modules):
    # a machine without libodbc, where importing pyodbc fails.
    script = (
        "import sys; sys.modules['pyodbc'] = None\n"
        "import dentrix_zoho.definitions\n"
        "from dentrix_zoho.source.connection import SourceError, open_source\n"
        "try:\n"
        "    with open_source('DSN=Dentrix;UID=u;PWD=p'):\n"
        "        pass\n"
        "except SourceError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unixODBC" in done.stdout and "apt-get install unixodbc" in done.stdout
