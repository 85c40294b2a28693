"""Small JSON hand-offs between load assets (schema API names, owner resolution, sample ids).

Counts and ids only: nothing here is patient data.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from dentrix_zoho.load import OwnerResolution, SchemaResult

SCHEMA_FILE = "zoho_schema.json"
OWNERS_FILE = "zoho_owners.json"
T = TypeVar("T")


def _write(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def _save(home: Path, name: str, value: object) -> Path:
    path = home / name
    _write(path, dataclasses.asdict(value))  # type: ignore[call-overload]
    return path


def _load(home: Path, name: str, cls: type[T]) -> T | None:
    path = home / name
    if not path.exists():
        return None
    return cls(**json.loads(path.read_text(encoding="utf-8")))


def save_schema(home: Path, schema: SchemaResult) -> Path:
    return _save(home, SCHEMA_FILE, schema)


def load_schema(home: Path) -> SchemaResult | None:
    return _load(home, SCHEMA_FILE, SchemaResult)


def save_owners(home: Path, owners: OwnerResolution) -> Path:
    return _save(home, OWNERS_FILE, owners)


def load_owners(home: Path) -> OwnerResolution | None:
    return _load(home, OWNERS_FILE, OwnerResolution)
