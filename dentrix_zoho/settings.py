"""Run-time settings read from the environment.

One place for every environment variable the pipeline itself reads (the Zoho
client reads its own ``ZOHO_*`` variables in ``dentrix_zoho.zoho.config``).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

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
    def staging_path(self) -> Path:
        return self.home / "staging.duckdb"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

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
        return self.home


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
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


def practice_sidecars(db_path: Path) -> dict[str, Path]:
    """Files the synthetic practice generator writes beside its database."""
    from dentrix_zoho.source.synthetic.paths import PracticeFiles

    files = PracticeFiles(db_path)
    return {"images": files.images_dir, "providers": files.provider_map, "manifest": files.manifest}
