"""Seeded users: generated demo users, or named users from ``--users-file`` (YAML or JSON)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, EmailStr, ValidationError

from .config import EmulatorConfig

_FIRST = ["Patricia", "Marcus", "Aisha", "Daniel", "Mei", "Rafael", "Grace", "Tomas", "Priya", "Owen"]
_LAST = ["Boyle", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Alvarez", "Kowalski", "Nguyen", "Shah", "Reid"]
EMAIL_DOMAIN = "emulated-dental.example"


class UserSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_name: str
    last_name: str
    email: EmailStr
    status: Literal["active", "disabled"] = "active"
    profile: Literal["Administrator", "Standard"] = "Standard"
    role: str = "Manager"


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[UserSpec]


class UsersFileError(ValueError):
    pass


def load_users_file(path: Path) -> list[UserSpec]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsersFileError(f"{path}: cannot read users file: {exc}") from exc
    try:
        return UsersFile.model_validate(raw).users
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise UsersFileError(f"{path}: {problems}") from None


def seed_users(config: EmulatorConfig, new_id: Callable[[], str]) -> list[dict[str, Any]]:
    specs = load_users_file(config.users_file) if config.users_file else []
    for i in range(len(specs), max(config.users, 1)):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i * 3) % len(_LAST)]
        suffix = "" if i < len(_FIRST) else str(i)
        specs.append(UserSpec(first_name=first, last_name=last,
                              email=f"{first.lower()}.{last.lower()}{suffix}@{EMAIL_DOMAIN}",
                              profile="Administrator" if i == 0 else "Standard",
                              role="CEO" if i == 0 else "Manager"))
    users = []
    for i, spec in enumerate(specs):
        users.append({
            "id": new_id(), "zuid": str(70_000_000 + config.seed * 1000 + i), "first_name": spec.first_name,
            "last_name": spec.last_name, "full_name": f"{spec.first_name} {spec.last_name}",
            "email": spec.email, "status": spec.status, "confirm": True,
            "role": {"name": spec.role, "id": f"{6421000000000001000 + len(spec.role)}"},
            "profile": {"name": spec.profile,
                        "id": "6421000000000000501" if spec.profile == "Administrator" else "6421000000000000502"},
            "time_zone": "UTC", "locale": "en_US", "language": "en_US", "country_locale": "en_US",
        })
    return users
