"""Where a synthetic practice's files live, all derived from the database path.

For ``--out /x/practice.db``:
``/x/practice.db`` (the SQLite DentrixSQL stand-in), ``/x/practice_images/`` (the image
folder; database paths are relative to it), ``/x/practice.seed.json`` (the seed manifest),
``/x/practice_providers.yaml`` (a sample provider -> e-mail map).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PracticeFiles:
    db: Path

    @property
    def images_dir(self) -> Path:
        return self.db.parent / f"{self.db.stem}_images"

    @property
    def manifest(self) -> Path:
        return self.db.parent / f"{self.db.stem}.seed.json"

    @property
    def provider_map(self) -> Path:
        return self.db.parent / f"{self.db.stem}_providers.yaml"

    @property
    def partial_db(self) -> Path:
        """Written first and renamed at the end, so a crash never leaves a half practice at ``db``."""
        return self.db.parent / f"{self.db.name}.partial"
