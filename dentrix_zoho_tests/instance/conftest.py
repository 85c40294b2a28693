"""A Dagster home holding the shipped deploy/local/dagster.yaml, pointed at a real test PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
LOCAL_YAML = REPO / "deploy" / "local" / "dagster.yaml"
K8S_DIR = REPO / "deploy" / "k8s"


def dagster_pg_env(database_url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables that deploy/*/dagster.yaml reads, for one database."""
    url = make_url(database_url)
    return {
        "DAGSTER_PG_HOST": str(url.host),
        "DAGSTER_PG_PORT": str(url.port),
        "DAGSTER_PG_DB": str(url.database),
        "DAGSTER_PG_USERNAME": str(url.username),
        "DAGSTER_PG_PASSWORD": str(url.password),
    }


@pytest.fixture
def pg_env(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = dagster_pg_env(pg_database)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def local_home(tmp_path: Path, pg_env: dict[str, str]) -> Path:
    """$DAGSTER_HOME as deploy/README.md sets it up: a folder with the shipped file copied in."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    return home
