"""What a load needs (``LoadContext``), the order modules go in (``LOAD_ORDER``) and what a step reports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load.owners import OwnerResolution
from dentrix_zoho.load.schema_setup import SchemaResult
from dentrix_zoho.load.steps import LOAD_ORDER, LOAD_STEPS, Kind, LoadStep, steps_for
from dentrix_zoho.mapping.spec import MappingSpec
from dentrix_zoho.zoho import ZohoClient, limits

# The steps live in load/steps.py (shaped.py needs them, and owners.py -> shaped.py must not come back
# here); they are re-exported from this module, where the load's callers have always found them.
__all__ = ["LOAD_ORDER", "LOAD_STEPS", "Kind", "LoadContext", "LoadOptions", "LoadStep", "ModuleLoadResult",
           "WRITE_PATHS", "WRITE_PATH_ENV", "WritePath", "steps_for"]

WritePath = Literal["auto", "records", "bulk"]
WRITE_PATHS: tuple[str, ...] = ("auto", "records", "bulk")
WRITE_PATH_ENV = "ZOHO_WRITE_PATH"


def _write_path_from_env() -> str:
    return os.environ.get(WRITE_PATH_ENV, "").strip().lower() or "auto"


@dataclass(frozen=True)
class LoadOptions:
    dry_run: bool = False
    batch_size: int = limits.RECORDS_PER_WRITE
    # Restrict the load to these Source_System_IDs (a sample) and their children.
    sample_source_ids: frozenset[str] | None = None
    # Batches sent concurrently per client call (the client caps them at the org's concurrency).
    # None: as many as the org's concurrency allows (the client enforces the edition's limit and the
    # cap of 10 on heavy calls, and shares it with every other caller of this process).
    parallel_batches: int | None = None
    # How many times an uncertain Note/Attachment create is reconciled and re-sent within a run.
    child_retry_rounds: int = 3
    # A record someone edited in Zoho after our last write: leave it ("skip", reported) or "overwrite".
    human_edits: Literal["skip", "overwrite"] = "skip"
    # Keyed modules: "auto" asks the planner (choose_write_path) per step and run, "records" always
    # uses the record API, "bulk" uses Bulk Write for every row it can carry (see load/bulk_write.py).
    # Default from $ZOHO_WRITE_PATH, else "auto".
    write_path: WritePath = field(default_factory=_write_path_from_env)  # type: ignore[assignment]
    # How long one Bulk Write job may take before its rows go by the record API (None: the client's
    # bulk_timeout).
    bulk_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= limits.RECORDS_PER_WRITE:
            raise ValueError(f"batch_size must be 1-{limits.RECORDS_PER_WRITE}, got {self.batch_size}")
        if self.parallel_batches is not None and self.parallel_batches < 1:
            raise ValueError("parallel_batches must be at least 1")
        if self.write_path not in WRITE_PATHS:
            raise ValueError(f"write_path ({WRITE_PATH_ENV}) must be one of {', '.join(WRITE_PATHS)}, "
                             f"got {self.write_path!r}")
        if self.bulk_timeout_s is not None and self.bulk_timeout_s <= 0:
            raise ValueError("bulk_timeout_s must be positive")


@dataclass
class LoadContext:
    duckdb_path: Path
    client: ZohoClient
    ledger: Ledger
    office_id: str
    run_id: str
    spec: MappingSpec
    owners: OwnerResolution
    schema: SchemaResult
    options: LoadOptions = field(default_factory=LoadOptions)
    # Per-run caches (pre-scans of Zoho), filled lazily.
    run_cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def source_id_field(self, module: str) -> str:
        return self.schema.source_id_field(module)

    def run_id_field(self, module: str) -> str:
        return self.schema.run_id_field(module)

    @property
    def calls_in_flight(self) -> int:
        """Concurrent calls a step keeps going: ``parallel_batches`` if set, never above the org's concurrency."""
        concurrency = self.client.config.concurrency
        return max(1, min(self.options.parallel_batches or concurrency, concurrency))


@dataclass
class ModuleLoadResult:
    """Counts only: safe for logs and Dagster metadata."""

    step: str
    module: str
    shaped: int = 0  # rows in scope for this step
    unchanged: int = 0  # hash equal to the last successful load: not sent
    sent: int = 0
    ok: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0  # may succeed on the next run (retryable, uncertain, unresolved)
    quarantined: int = 0  # rejected by Zoho or held back (missing/over-limit file, parent not loaded)
    # Found in Zoho without a crosswalk row and taken into the ledger: keyed records by the pre-scan,
    # Notes/Attachments among their parent's children after an uncertain or interrupted create.
    reconciled: int = 0
    pre_images: int = 0
    links_dropped: int = 0  # optional links whose target is not in Zoho yet (sent again next run)
    owner_unresolved: int = 0
    human_edited: int = 0  # records edited in Zoho by someone else since our last write (see human_edits)
    # Policy ``merge`` (docs/cross_office.md): patients that joined a Contact another office created, not
    # sent; accounted for like a loaded row (rule ``cross_office_joined``). Those waiting for that
    # office's load are in ``quarantined``.
    cross_office_joined: int = 0
    api_calls: int = 0
    # The write path of this step (keyed modules) and the planner's numbers behind it.
    write_path: str = "records"
    bulk_rows: int = 0  # rows sent in Bulk Write jobs
    bulk_jobs: int = 0
    bulk_fallback: int = 0  # rows of a failed or unfinished job sent again by the record API
    planned_records_credits: int = 0  # the planner's estimate for the record API
    planned_bulk_credits: int = 0  # and for Bulk Write (0: not estimated)
    elapsed_s: float = 0.0
    dry_run: bool = False
    codes: dict[str, int] = field(default_factory=dict)  # error code -> count

    def as_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(self).items()}
