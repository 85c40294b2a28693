"""Provider id → e-mail map: Dentrix providers often have no e-mail, so a person supplies one.

File format (YAML)::

    providers:
      DDS1: dr.smith@practice.example
      HYG1: jane.hygienist@practice.example
    default_owner_email: office.manager@practice.example   # optional

Provider ids are compared trimmed and case-insensitively (Dentrix pads them to 5 characters).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator
from typing import Annotated


class ProviderMapError(ValueError):
    pass


def _email_syntax(value: str) -> str:
    # Syntax only (no DNS); reserved test domains are allowed so rehearsals can use them.
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not an e-mail address: {exc}") from None


Email = Annotated[str, AfterValidator(_email_syntax)]


class ProviderMap(BaseModel):
    # Other top-level keys (notes, office labels) are allowed and ignored.
    model_config = ConfigDict(extra="ignore")

    providers: dict[str, Email | None] = {}
    default_owner_email: Email | None = None

    @field_validator("providers", mode="before")
    @classmethod
    def _normalise_ids(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k).strip().upper(): v for k, v in value.items()}
        return value

    def email_for(self, provider_id: str | None) -> str | None:
        if not provider_id:
            return None
        return self.providers.get(provider_id.strip().upper())


def load_provider_map(path: Path) -> ProviderMap:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProviderMapError(f"{path}: cannot read the provider map: {exc}") from None
    try:
        return ProviderMap.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ProviderMapError(f"{path}: {problems}") from None


def load_provider_emails(path: Path) -> dict[str, str]:
    return {k: str(v) for k, v in load_provider_map(path).providers.items() if v}
