"""Extraction benchmark: rows per second staged against the raw driver fetch of the same rows.

For the ``office`` practice, per object and connection path (SQLAlchemy over the
sqlite3 driver, and pyodbc over unixODBC's SQLite3 driver):

* raw     - the driver alone: ``SELECT <catalog columns> FROM admin.<object>`` with ``fetchmany``;
* staged  - the whole staging step: fetch, hand to DuckDB, trim, type, hash, swap in.

The ratio staged/raw is the figure (target >= 0.7). Peak memory is measured in a
child process per object, so a large and a small table can be compared: memory
must not grow with table size.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

TARGET_RATIO = 0.7
OBJECTS = ["fullproclog", "appt", "patient", "v_patient"]
CHUNK = 10_000


def _bench_dir() -> Path:
    home = Path(os.environ.get("DENTRIX_ZOHO_HOME", ".dentrix_zoho")).resolve()
    path = home / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def office_practice() -> Path:
    from dentrix_zoho.source.synthetic import generate_practice

    db = _bench_dir() / "office.db"
    if not db.exists():
        started = time.perf_counter()
        generate_practice(db, scale="office", seed=1, as_of=date(2026, 11, 1))
        print(f"generated the office practice in {time.perf_counter() - started:.1f}s")
    return db


def child(kind: str, source: str, obj_name: str, out_dir: str) -> None:
    """Run one measurement in this (child) process and print JSON."""
    from dentrix_zoho.source.catalog import CATALOG
    from dentrix_zoho.source.connection import open_source
    from dentrix_zoho.source.extract import iter_chunks, plan_columns
    from dentrix_zoho.staging.store import StagingStore

    obj = CATALOG[obj_name]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open_source(source) as conn:
        started = time.perf_counter()
        if kind == "raw":
            plan = plan_columns(conn, obj)
            rows = sum(len(chunk) for chunk in iter_chunks(conn, obj, chunk_rows=CHUNK, plan=plan))
        else:
            store = StagingStore(Path(out_dir) / f"{obj_name}.duckdb")
            with store.connect() as con:
                rows = store.stage_object(con, conn, obj, office_id="bench", snapshot_id="b", chunk_rows=CHUNK).rows
        seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_kb / 1024, "base_mb": rss_before / 1024}))


def measure(kind: str, source: str, obj_name: str, out_dir: Path) -> dict[str, float]:
    best: dict[str, float] | None = None
    for _ in range(3):  # best of three: the machine is shared with other work
        proc = subprocess.run(
            [sys.executable, "-m", "bench.bench_extract", "--child", kind, source, obj_name, str(out_dir)],
            capture_output=True, text=True, check=True, timeout=600,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best is not None
    return best


def main() -> int:
    db = office_practice()
    paths = {"sqlalchemy": f"sqlite:///{db}"}
    if shutil.which("odbcinst"):
        paths["pyodbc"] = f"DRIVER=SQLite3;Database={db}"
    worst = float("inf")
    print(f"{'path':<11} {'object':<12} {'rows':>9} {'raw rows/s':>11} {'staged rows/s':>14} {'ratio':>6} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for path_name, source in paths.items():
            for obj in OBJECTS:
                raw = measure("raw", source, obj, Path(tmp))
                staged = measure("staged", source, obj, Path(tmp))
                raw_rate = raw["rows"] / raw["seconds"]
                staged_rate = staged["rows"] / staged["seconds"]
                ratio = staged_rate / raw_rate
                worst = min(worst, ratio)
                print(f"{path_name:<11} {obj:<12} {staged['rows']:>9,} {raw_rate:>11,.0f} {staged_rate:>14,.0f} "
                      f"{ratio:>6.2f} {staged['peak_mb']:>8.0f}")
    print(f"worst staged/raw ratio: {worst:.2f} (target >= {TARGET_RATIO})")
    print("peak memory per object is measured in its own process: compare fullproclog (largest) with patient.")
    return 0 if worst >= TARGET_RATIO else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        sys.exit(main())
