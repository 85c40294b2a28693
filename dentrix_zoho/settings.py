"""Run-time settings read from the environment.

One place for every environment variable the pipeline itself reads (the Zoho
client reads its own ``ZOHO_*`` variables in ``dentrix_zoho.zoho.config``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, PrivateAttr, field_validator

if TYPE_CHECKING:
    from dentrix_zoho.offices import Offices

DEFAULT_HOME = ".dentrix_zoho"
DEFAULT_OFFICE = "office-1"


class Settings(BaseModel):
    """Where the pipeline reads from and keeps its state."""

    source: str | None = Field(
        default=None,
        description="DENTRIX_SOURCE: a SQLAlchemy URL or an ODBC connection string.",
    )
    home: Path = Field(default=Path(DEFAULT_HOME), description="DENTRIX_ZOHO_HOME")
    office_id: str = Field(default=DEFAULT_OFFICE, description="DENTRIX_OFFICE_ID")
    source_schema: str = Field(default="admin", description="DENTRIX_SCHEMA")
    ledger_url: str | None = Field(default=None, description="DENTRIX_ZOHO_LEDGER_URL")
    image_dir: Path | None = Field(default=None, description="DENTRIX_IMAGE_DIR")
    provider_map: Path | None = Field(default=None, description="DENTRIX_PROVIDER_MAP")
    as_of: date | None = Field(default=None, description="DENTRIX_AS_OF: the routing reference date")
    # Set by ``for_office`` when an offices file lists the office: where its own state lives, and the
    # name of the variable its Dentrix password is read from at connect time.
    state_dir: Path | None = Field(default=None, description="$DENTRIX_ZOHO_HOME/offices/<office> (offices file)")
    password_env: str | None = Field(default=None, description="the office's password_env (offices file)")

    @field_validator("office_id")
    @classmethod
    def _office_id_is_a_key(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ch in value for ch in ":/\\ \t"):
            raise ValueError(
                "DENTRIX_OFFICE_ID must be non-empty and contain no ':', '/', '\\' or spaces"
            )
        return value

    @property
    def office_home(self) -> Path:
        """Where this office's staging, reports and hand-off files live: the home itself without an offices file."""
        return self.state_dir if self.state_dir is not None else self.home

    @property
    def staging_path(self) -> Path:
        return self.office_home / "staging.duckdb"

    @property
    def reports_dir(self) -> Path:
        return self.office_home / "reports"

    def connection_string(self) -> str | None:
        """``source`` with the office's password put in from ``password_env`` (never shown, never logged)."""
        if self.source is None or self.password_env is None:
            return self.source
        from dentrix_zoho.offices import DentrixConnectionSpec, OfficeConnectionError
        from dentrix_zoho.source.connection import parse_source

        kind = "url" if parse_source(self.source).kind == "sqlalchemy" else "odbc"
        spec = DentrixConnectionSpec(**{kind: self.source, "password_env": self.password_env})
        try:
            return spec.connection_string(self._environ)
        except OfficeConnectionError as exc:
            raise ValueError(f"office {self.office_id}: {exc}") from None

    def scrub(self, message: str) -> str:
        """``message`` with the office's password (from ``password_env``) replaced by ***."""
        if self.source is None or self.password_env is None:
            return message
        from dentrix_zoho.offices import DentrixConnectionSpec
        from dentrix_zoho.source.connection import parse_source

        kind = "url" if parse_source(self.source).kind == "sqlalchemy" else "odbc"
        return DentrixConnectionSpec(**{kind: self.source, "password_env": self.password_env}).scrub(
            message, self._environ)

    def for_office(self, office_id: str | None) -> Settings:
        """These settings for one office of the offices file (``--office``); unchanged without a file.

        Without a file only the environment's office exists: naming another is an error.
        """
        offices = load_offices(self._environ)
        office = offices.select(office_id, self._environ)
        if not offices.from_file:
            return self
        connection = office.connection
        return self.model_copy(update={
            "office_id": office.office_id,
            "source": connection.template if connection is not None else None,
            "source_schema": connection.schema_name if connection is not None else self.source_schema,
            "password_env": connection.password_env if connection is not None else None,
            "image_dir": office.image_dir,
            "provider_map": office.provider_map,
            "state_dir": office.state_dir,
        })

    @property
    def default_practice_path(self) -> Path:
        return self.home / "demo_practice.db"

    @property
    def resolved_ledger_url(self) -> str:
        return self.ledger_url or f"sqlite:///{(self.home / 'ledger.sqlite').resolve()}"

    def resolved_image_dir(self) -> Path | None:
        """The practice's image folder; the demo practice keeps its own beside the database."""
        if self.image_dir is not None:
            return self.image_dir
        demo = practice_sidecars(self.default_practice_path)["images"]
        return demo if self.source is None and demo.exists() else None

    def resolved_provider_map(self) -> Path | None:
        if self.provider_map is not None:
            return self.provider_map
        demo = practice_sidecars(self.default_practice_path)["providers"]
        return demo if self.source is None and demo.exists() else None

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.home

    # The environment these settings were read from, for ``for_office`` (not a setting itself).
    _environ: dict[str, str] | None = PrivateAttr(default=None)


def load_settings(environ: dict[str, str] | None = None, *, office: str | None = None) -> Settings:
    """Settings from the environment; with ``office`` (``--office``), that office's from the offices file."""
    env = os.environ if environ is None else environ
    settings = _read(env)
    settings._environ = None if environ is None else dict(environ)
    if office is None:
        return settings
    return settings.for_office(office)


def _read(env: Mapping[str, str]) -> Settings:
    return Settings(
        source=env.get("DENTRIX_SOURCE") or None,
        home=Path(env.get("DENTRIX_ZOHO_HOME") or DEFAULT_HOME),
        office_id=env.get("DENTRIX_OFFICE_ID") or DEFAULT_OFFICE,
        source_schema=env.get("DENTRIX_SCHEMA", "admin"),
        ledger_url=env.get("DENTRIX_ZOHO_LEDGER_URL") or None,
        image_dir=Path(env["DENTRIX_IMAGE_DIR"]) if env.get("DENTRIX_IMAGE_DIR") else None,
        provider_map=Path(env["DENTRIX_PROVIDER_MAP"]) if env.get("DENTRIX_PROVIDER_MAP") else None,
        as_of=date.fromisoformat(env["DENTRIX_AS_OF"]) if env.get("DENTRIX_AS_OF") else None,
    )


def load_offices(environ: Mapping[str, str] | None = None) -> Offices:
    """The offices: from the offices file when there is one, else the single office of the environment."""
    # Imported here: the offices model pulls in the cutover package, which most commands never need.
    from dentrix_zoho.offices import ENV_FILE, Office, Offices, OfficesError, offices_file_path, read_offices_file

    env = os.environ if environ is None else environ
    settings = _read(env)
    home = settings.home.expanduser().resolve()
    path, named = offices_file_path(home, env)
    if not path.exists():
        if named:
            raise OfficesError(f"{path}: no such offices file ({ENV_FILE} names it)")
        single = Office(
            office_id=settings.office_id,
            state_dir=home,
            image_dir=settings.resolved_image_dir(),
            provider_map=settings.resolved_provider_map(),
        )
        return Offices(home=home, file=None, by_id={single.office_id: single})
    return read_offices_file(path, home)


def practice_sidecars(db_path: Path) -> dict[str, Path]:
    """Files the synthetic practice generator writes beside its database."""
    from dentrix_zoho.source.synthetic.paths import PracticeFiles

    files = PracticeFiles(db_path)
    return {"images": files.images_dir, "providers": files.provider_map, "manifest": files.manifest}


def ensure_dagster_home(home: Path) -> Path:
    """``$DAGSTER_HOME``, else ``<home>/dagster``: made, exported for this process, telemetry off.

    The commands that run jobs in this process (``demo``, ``run``) record them in this instance, so
    that ``make ui`` shows them.
    """
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home / "dagster")
    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        # Usage telemetry off by default: this pipeline handles protected health information.
        instance_yaml.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return dagster_home
