"""Delta benchmark: change detection after 1 % of the ``office`` practice changed, against a full re-stage.

1. Stage every base table of the office practice (a copy: the benchmark writes to it).
2. The practice keeps working: 1 % of the rows of the main tables are edited (with a
   newer ``automodifiedtimestamp``), inserted or deleted; deleted appointments leave
   ``appthist`` rows with ``deletedflag = 1``.
3. Time ``detect_and_apply_changes`` and, from the same baseline, a full re-stage of the
   same tables. Best of two each: the machine is shared.

Targets: detection finds exactly the keys that were touched (no more, no less), the
staged tables end up identical to the re-stage, detection takes at most
``TARGET_TIME_RATIO`` of the re-stage's time, and it fetches at most
``TARGET_CELL_RATIO`` of the values (rows x columns) a re-stage fetches. The second
figure is what counts against a real Dentrix server, where the fetch over ODBC
dominates; against the local SQLite stand-in, fixed costs weigh more. The Zoho side ("calls against the minimum")
needs the delta load: ``minimum_calls_for`` gives the yardstick it is measured against.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

from bench.bench_extract import office_practice
from dentrix_zoho.cutover.changes import DEFAULT_DELTA_OBJECTS, detect_and_apply_changes
from dentrix_zoho.cutover.minimum_calls import MinimumCalls, minimum_zoho_calls, total_minimum_calls
from dentrix_zoho.cutover.simulate import SimulatedActivity, simulate_activity
from dentrix_zoho.cutover.summary import DeltaSummary
from dentrix_zoho.source.catalog import CATALOG
from dentrix_zoho.source.connection import open_source
from dentrix_zoho.staging.stage_all import stage_objects
from dentrix_zoho.staging.store import StagingStore

TARGET_TIME_RATIO = 0.5
TARGET_CELL_RATIO = 0.1
FRACTION = 0.01
REPEATS = 2
OFFICE = "office-1"
# After the synthetic practice's snapshot (as_of 2026-11-01, stamps end that day).
ACTIVITY_AT = datetime(2026, 11, 2, 8, 0, 0)


def minimum_calls_for(summary: DeltaSummary) -> dict[str, MinimumCalls]:
    """The hook for the delta load: the fewest Zoho calls these changes can be sent with."""
    return minimum_zoho_calls(summary)


def cells_fetched(summary: DeltaSummary) -> tuple[int, int]:
    """(values a delta fetched: changed rows x columns + keys x key columns, values a re-stage fetches)."""
    delta = restage = 0
    for o in summary.objects:
        obj = CATALOG[o.object_name]
        delta += o.rows_read * len(obj.columns) + o.source_rows * len(obj.key)
        restage += o.source_rows * len(obj.columns)
    return delta, restage


def _stage(source: str, staging: Path) -> float:
    started = time.perf_counter()
    stage_objects(source, staging, office_id=OFFICE, objects=list(DEFAULT_DELTA_OBJECTS))
    return time.perf_counter() - started


def _delta(source: str, staging: Path) -> tuple[float, DeltaSummary]:
    store = StagingStore(staging)
    started = time.perf_counter()
    with open_source(source) as src, store.connect() as con:
        summary = detect_and_apply_changes(src, store, con, office_id=OFFICE, snapshot_id="bench-delta")
    return time.perf_counter() - started, summary


def _recorded(staging: Path) -> set[tuple[str, str, str]]:
    con = duckdb.connect(str(staging), read_only=True)
    try:
        rows = con.execute("SELECT object_name, source_key, change FROM staging_meta.changes").fetchall()
    finally:
        con.close()
    return {tuple(r) for r in rows}  # type: ignore[misc]


def _same_as_restage(delta_staging: Path, restaged: Path, objects: list[str]) -> list[str]:
    """Objects whose (key, hash) set differs between the delta-updated and the re-staged store."""
    con = duckdb.connect(str(delta_staging), read_only=True)
    try:
        con.execute(f"ATTACH '{restaged}' AS restaged (READ_ONLY)")
        return [
            name
            for name in objects
            if con.execute(
                f"""SELECT count(*) FROM (
                      (SELECT _source_key, _row_hash FROM dentrix."{name}"
                       EXCEPT SELECT _source_key, _row_hash FROM restaged.dentrix."{name}")
                      UNION ALL
                      (SELECT _source_key, _row_hash FROM restaged.dentrix."{name}"
                       EXCEPT SELECT _source_key, _row_hash FROM dentrix."{name}"))"""
            ).fetchone()[0]
        ]
    finally:
        con.close()


def main() -> int:
    practice = office_practice()
    with tempfile.TemporaryDirectory(prefix="bench_delta_") as tmp:
        work = Path(tmp)
        db = work / "office.db"
        shutil.copy(practice, db)
        source = f"sqlite:///{db}"
        baseline = work / "baseline.duckdb"
        first_stage = _stage(source, baseline)
        print(f"full stage of {len(DEFAULT_DELTA_OBJECTS)} tables: {first_stage:.2f}s")

        activity: SimulatedActivity = simulate_activity(db, at=ACTIVITY_AT, fraction=FRACTION, seed=1)
        print(
            f"practice activity: {activity.count()} keys touched in {len(activity.keys)} tables "
            f"({activity.count(change='new')} new, {activity.count(change='changed')} changed, "
            f"{activity.count(change='deleted')} deleted)"
        )

        delta_runs: list[float] = []
        restage_runs: list[float] = []
        summary: DeltaSummary | None = None
        for n in range(REPEATS):
            delta_staging, restaged = work / f"delta{n}.duckdb", work / f"restage{n}.duckdb"
            shutil.copy(baseline, delta_staging)
            shutil.copy(baseline, restaged)
            seconds, summary = _delta(source, delta_staging)
            delta_runs.append(seconds)
            restage_runs.append(_stage(source, restaged))
        assert summary is not None
        delta_s, restage_s = min(delta_runs), min(restage_runs)
        ratio = delta_s / restage_s if restage_s else float("inf")
        delta_cells, restage_cells = cells_fetched(summary)
        cell_ratio = delta_cells / restage_cells if restage_cells else float("inf")

        found = _recorded(work / "delta0.duckdb")
        expected = activity.as_rows()
        exact = found == expected
        differing = _same_as_restage(work / "delta0.duckdb", work / "restage0.duckdb", list(DEFAULT_DELTA_OBJECTS))
        fallbacks = [o.object_name for o in summary.objects if o.mode == "full"]

        print(f"detection + apply: {delta_s:.2f}s (rows read {summary.rows_read:,}); "
              f"full re-stage: {restage_s:.2f}s; ratio {ratio:.3f} (target <= {TARGET_TIME_RATIO})")
        print(f"values fetched: delta {delta_cells:,} vs re-stage {restage_cells:,}; "
              f"ratio {cell_ratio:.3f} (target <= {TARGET_CELL_RATIO})")
        print(f"changed keys found {len(found)} vs touched {len(expected)}: "
              f"{'exact' if exact else f'{len(found - expected)} extra, {len(expected - found)} missed'}")
        print(f"staged tables equal to the re-stage: {'yes' if not differing else 'NO: ' + ', '.join(differing)}")
        if fallbacks:
            print(f"objects read whole: {', '.join(fallbacks)}")
        calls = minimum_calls_for(summary)
        per_module = ", ".join(f"{m} {c.upsert_calls}+{c.delete_calls}" for m, c in calls.items())
        print(f"minimum Zoho calls for this delta: {total_minimum_calls(calls)} (upserts+deletes: {per_module}); "
              "the delta load's calls are compared against this")
        met = exact and not differing and ratio <= TARGET_TIME_RATIO and cell_ratio <= TARGET_CELL_RATIO
        return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
