"""Stage many catalog objects in one run (the CLI and the benchmark; Dagster's staging multi-asset does the same)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from dentrix_zoho.source.catalog import CATALOG, CatalogObject
from dentrix_zoho.source.connection import SourceError, open_source
from dentrix_zoho.staging.store import StageFailure, StageResult, StagingStore, new_snapshot_id

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
    workers: int | None = None,
) -> list[StageResult]:
    """Stage the named objects (all of the catalog by default); one result per object.

    Every object is tried; if any failed, a ``SourceError`` naming each of them is
    raised at the end (the others are staged and committed).
    """
    chosen: list[CatalogObject] = [CATALOG[name] for name in (objects or CATALOG)]
    snapshot = snapshot_id or new_snapshot_id()
    store = StagingStore(staging_path)
    results: list[StageResult] = []
    failures: list[StageFailure] = []
    with open_source(source, schema) as conn, store.connect() as con:
        outcomes = store.stage_many(
            con, conn, chosen, office_id=office_id, snapshot_id=snapshot, chunk_rows=chunk_rows, workers=workers
        )
        for outcome in outcomes:
            if isinstance(outcome, StageFailure):
                failures.append(outcome)
                continue
            log.info("staged %s: %d rows in %.2fs", outcome.object_name, outcome.rows, outcome.seconds)
            results.append(outcome)
    if len(failures) == 1:
        raise failures[0].error
    if failures:
        raise SourceError(
            f"{len(failures)} objects could not be staged: " + "; ".join(str(f.error) for f in failures)
        )
    return results
