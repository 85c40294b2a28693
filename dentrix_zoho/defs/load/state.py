"""Small JSON hand-offs between load assets (schema API names, owner resolution, sample ids).

Counts and ids only: nothing here is patient data.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

from dentrix_zoho.load import OwnerResolution, SchemaResult

SCHEMA_FILE = "zoho_schema.json"
OWNERS_FILE = "zoho_owners.json"


def _write(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def save_schema(home: Path, schema: SchemaResult) -> Path:
    path = home / SCHEMA_FILE
    _write(path, dataclasses.asdict(schema))
    return path


def load_schema(home: Path) -> SchemaResult | None:
    path = home / SCHEMA_FILE
    if not path.exists():
        return None
    return SchemaResult(**json.loads(path.read_text(encoding="utf-8")))


def save_owners(home: Path, owners: OwnerResolution) -> Path:
    path = home / OWNERS_FILE
    _write(path, dataclasses.asdict(owners))
    return path


def load_owners(home: Path) -> OwnerResolution | None:
    path = home / OWNERS_FILE
    if not path.exists():
        return None
    return OwnerResolution(**json.loads(path.read_text(encoding="utf-8")))
