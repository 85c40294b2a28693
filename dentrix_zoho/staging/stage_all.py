"""Stage every catalog object in one go (the CLI and the benchmark; Dagster stages per asset)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from dentrix_zoho.source.catalog import CATALOG, CatalogObject
from dentrix_zoho.source.connection import open_source
from dentrix_zoho.staging.store import StageResult, StagingStore, new_snapshot_id

log = logging.getLogger(__name__)


def stage_objects(
    source: str,
    staging_path: Path,
    *,
    office_id: str,
    schema: str = "admin",
    objects: Iterable[str] | None = None,
    snapshot_id: str | None = None,
    chunk_rows: int = 10_000,
) -> list[StageResult]:
    """Stage the named objects (all of the catalog by default); returns one result per object."""
    chosen: list[CatalogObject] = [CATALOG[name] for name in (objects or CATALOG)]
    snapshot = snapshot_id or new_snapshot_id()
    store = StagingStore(staging_path)
    results: list[StageResult] = []
    with open_source(source, schema) as conn, store.connect() as con:
        for obj in chosen:
            result = store.stage_object(
                con, conn, obj, office_id=office_id, snapshot_id=snapshot, chunk_rows=chunk_rows
            )
            log.info("staged %s: %d rows in %.2fs", obj.name, result.rows, result.seconds)
            results.append(result)
    return results
