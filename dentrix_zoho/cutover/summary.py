"""What a delta found, as counts only (no keys, no values: safe for logs and Dagster metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ReadMode = Literal["cursor", "full"]


@dataclass(frozen=True)
class ObjectDelta:
    object_name: str
    mode: ReadMode  # "cursor": rows modified since the cursor minus the look-back; "full": every row
    cursor: datetime | None  # max modified staged before this delta (None: no cursor)
    since: datetime | None  # what was read: modified >= since (None for a full read)
    rows_read: int
    source_rows: int  # rows (keys) the source holds now
    new: int
    changed: int
    deleted: int
    deleted_in_history: int  # of the deletions, how many appthist records (appointments only)
    full_read_reason: str | None  # why a full read was needed, when it was
    seconds: float

    @property
    def total(self) -> int:
        return self.new + self.changed + self.deleted


@dataclass(frozen=True)
class DeltaSummary:
    snapshot_id: str
    office_id: str
    detected_at: datetime
    objects: tuple[ObjectDelta, ...]
    seconds: float

    @property
    def new(self) -> int:
        return sum(o.new for o in self.objects)

    @property
    def changed(self) -> int:
        return sum(o.changed for o in self.objects)

    @property
    def deleted(self) -> int:
        return sum(o.deleted for o in self.objects)

    @property
    def total(self) -> int:
        return self.new + self.changed + self.deleted

    @property
    def rows_read(self) -> int:
        return sum(o.rows_read for o in self.objects)

    def by_object(self) -> dict[str, ObjectDelta]:
        return {o.object_name: o for o in self.objects}

    def counts(self) -> dict[str, dict[str, int]]:
        """``{object: {new, changed, deleted}}`` for objects with at least one change."""
        return {
            o.object_name: {"new": o.new, "changed": o.changed, "deleted": o.deleted}
            for o in self.objects
            if o.total
        }

    def describe(self) -> str:
        parts = [f"{name} +{c['new']} ~{c['changed']} -{c['deleted']}" for name, c in self.counts().items()]
        return (
            f"delta {self.snapshot_id} ({self.office_id}): {self.new} new, {self.changed} changed, "
            f"{self.deleted} deleted from {self.rows_read} rows read in {self.seconds:.2f}s"
            + (f" [{'; '.join(parts)}]" if parts else "")
        )
