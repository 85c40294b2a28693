"""Extraction benchmark: rows per second staged against the raw driver fetch of the same rows.

For the ``office`` practice, per connection path (SQLAlchemy over the sqlite3 driver, and
pyodbc over unixODBC's SQLite3 driver):

* raw      - the driver alone: ``SELECT <catalog columns> FROM admin.<object>`` with ``fetchmany``
             on one connection, object after object;
* 1 conn   - a staging run with ``DENTRIX_EXTRACT_WORKERS=1``: one connection read on a thread
             ahead of DuckDB, converted to Arrow, trimmed, typed, hashed, swapped in;
* default  - a staging run as the CLI and the Dagster staging multi-asset run it
             (``DENTRIX_EXTRACT_WORKERS`` unset: two reader processes ahead of the one writer).

The target (staged/raw >= 0.7 on the default path) is judged on the line ``(catalog)``: a
staging run of every catalog object, which is what staging is (views and small tables
included). The lines per object are each a staging run of that object alone, so they carry
a run's fixed costs (a new DuckDB file, starting the readers, the checkpoint at close: about
70-100 ms) that the catalog run pays once; against a local SQLite file that is more than the
whole raw fetch of an 8,000-row table, so small tables alone stage well under the raw rate,
and are shown, not judged. Each figure is the best of three runs (five for the catalog), taken in turns so that
raw and staged see the same load (the machine is shared).

Memory: the raw pyodbc figure grows with the table because unixODBC's SQLite3 driver holds
the whole result set. The staging process is bounded by constants: the read-ahead budget
(64 MiB of Arrow), the chunk size, and DuckDB's staging budget (128MB, which also caps the
blocks DuckDB keeps cached after writing them). Compare fullproclog alone (254k rows) with
patient alone (8k); ``BENCH_EXTRACT_LARGE=1`` adds the large practice's 2.3M-row fullproclog.
Peak memory is measured in a child process per run: the staging process itself, and the
largest reader process beside it (a forked reader shares most of its pages with its parent,
so the two are not simply added).
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

from dentrix_zoho.source.extract import DEFAULT_CHUNK_ROWS

TARGET_RATIO = 0.7
OBJECTS = ["fullproclog", "appt", "patient", "v_patient"]
WHOLE_CATALOG = "(catalog)"  # every catalog object in turn, one process
CHUNK = DEFAULT_CHUNK_ROWS
REPEATS = 3
# The judged line gets more turns: on a shared two-core machine single runs vary by a fifth.
CATALOG_REPEATS = 5
# name -> DENTRIX_EXTRACT_WORKERS for the child (None: unset, the default)
MODES: dict[str, str | None] = {"raw": "1", "one": "1", "default": None}


def _bench_dir() -> Path:
    home = Path(os.environ.get("DENTRIX_ZOHO_HOME", ".dentrix_zoho")).resolve()
    path = home / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def practice(scale: str = "office") -> Path:
    from dentrix_zoho.source.synthetic import generate_practice

    db = _bench_dir() / f"{scale}.db"
    if not db.exists():
        started = time.perf_counter()
        generate_practice(db, scale=scale, seed=1, as_of=date(2026, 11, 1))  # type: ignore[arg-type]
        print(f"generated the {scale} practice in {time.perf_counter() - started:.1f}s")
    return db


def office_practice() -> Path:
    return practice("office")


def large_table_memory(out_dir: Path) -> None:
    """``BENCH_EXTRACT_LARGE=1``: fullproclog of the large practice (about 2.3M rows) staged alone, once."""
    source = f"sqlite:///{practice('large')}"
    raw = _run_child("raw", source, "fullproclog", out_dir)
    staged = _run_child("default", source, "fullproclog", out_dir)
    ratio = (staged["rows"] / staged["seconds"]) / (raw["rows"] / raw["seconds"])
    print(f"large practice, fullproclog alone: {staged['rows']:,} rows, staged/raw {ratio:.2f}, "
          f"peak {staged['peak_mb']:.0f} MB (+ reader {staged['worker_peak_mb']:.0f} MB)")


def child(kind: str, source: str, obj_name: str, out_dir: str) -> None:
    """Run one measurement in this (child) process and print JSON."""
    from dentrix_zoho.source.catalog import CATALOG
    from dentrix_zoho.source.connection import open_source
    from dentrix_zoho.source.extract import iter_chunks, plan_columns
    from dentrix_zoho.staging.store import StageFailure, StagingStore

    objects = list(CATALOG.values()) if obj_name == WHOLE_CATALOG else [CATALOG[obj_name]]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = 0
    with open_source(source) as conn:
        started = time.perf_counter()
        if kind == "raw":
            for obj in objects:
                plan = plan_columns(conn, obj)
                rows += sum(len(chunk) for chunk in iter_chunks(conn, obj, chunk_rows=CHUNK, plan=plan))
        else:
            # What a staging asset does: open the store, stage with the defaults, close (the
            # close checkpoints). The whole catalog goes through one store connection, as the CLI does.
            store = StagingStore(Path(out_dir) / f"{obj_name}-{kind}-{os.getpid()}.duckdb")
            with store.connect() as con:
                for outcome in store.stage_many(con, conn, objects, office_id="bench", snapshot_id="b"):
                    if isinstance(outcome, StageFailure):
                        raise outcome.error
                    rows += outcome.rows
        seconds = time.perf_counter() - started
    print(json.dumps({
        "rows": rows,
        "seconds": seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "base_mb": rss_before / 1024,
    }))


def _run_child(kind: str, source: str, obj_name: str, out_dir: Path) -> dict[str, float]:
    env = dict(os.environ)
    workers = MODES[kind]
    if workers is None:
        env.pop("DENTRIX_EXTRACT_WORKERS", None)
    else:
        env["DENTRIX_EXTRACT_WORKERS"] = workers
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_extract", "--child", kind, source, obj_name, str(out_dir)],
        capture_output=True, text=True, check=True, timeout=600, env=env,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(source: str, obj_name: str, out_dir: Path) -> dict[str, dict[str, float]]:
    """Best of ``REPEATS`` (``CATALOG_REPEATS`` for the judged catalog line) for every mode, taken in turns."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(CATALOG_REPEATS if obj_name == WHOLE_CATALOG else REPEATS):
        for kind in MODES:
            result = _run_child(kind, source, obj_name, out_dir)
            if kind not in best or result["seconds"] < best[kind]["seconds"]:
                best[kind] = result
    return best


def main() -> int:
    from dentrix_zoho.staging.readers import DEFAULT_WORKERS

    db = office_practice()
    paths = {"sqlalchemy": f"sqlite:///{db}"}
    if shutil.which("odbcinst"):
        paths["pyodbc"] = f"DRIVER=SQLite3;Database={db}"
    catalog: dict[str, float] = {}
    print(f"default = {DEFAULT_WORKERS} reader processes ahead of the one DuckDB writer; "
          "1 conn = DENTRIX_EXTRACT_WORKERS=1")
    print(f"{'path':<11} {'object':<17} {'rows':>8} {'raw r/s':>9} {'1conn r/s':>10} {'ratio':>5} "
          f"{'default r/s':>11} {'ratio':>5}  {'peak MB raw/1conn/default+reader':>32}")
    with tempfile.TemporaryDirectory() as tmp:
        for path_name, source in paths.items():
            for obj in [*OBJECTS, WHOLE_CATALOG]:
                best = measure(source, obj, Path(tmp))
                raw_rate = best["raw"]["rows"] / best["raw"]["seconds"]
                one_rate = best["one"]["rows"] / best["one"]["seconds"]
                default_rate = best["default"]["rows"] / best["default"]["seconds"]
                one_ratio, default_ratio = one_rate / raw_rate, default_rate / raw_rate
                if obj == WHOLE_CATALOG:
                    catalog[path_name] = default_ratio
                label = obj if obj == WHOLE_CATALOG else f"{obj} alone"
                memory = (f"{best['raw']['peak_mb']:.0f}/{best['one']['peak_mb']:.0f}/"
                          f"{best['default']['peak_mb']:.0f}+{best['default']['worker_peak_mb']:.0f}")
                print(f"{path_name:<11} {label:<17} {best['default']['rows']:>8,} {raw_rate:>9,.0f} {one_rate:>10,.0f} "
                      f"{one_ratio:>5.2f} {default_rate:>11,.0f} {default_ratio:>5.2f}  {memory:>32}", flush=True)
        if os.environ.get("BENCH_EXTRACT_LARGE") == "1":
            large_table_memory(Path(tmp))
    worst = min(catalog.values())
    print("staged/raw for a staging run of the whole catalog, default path: "
          + ", ".join(f"{name} {ratio:.2f}" for name, ratio in catalog.items())
          + f" (target >= {TARGET_RATIO}); objects alone carry a run's fixed costs and are not judged")
    print("peak memory per run is measured in its own process: compare fullproclog alone (largest) with patient alone.")
    return 0 if worst >= TARGET_RATIO else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        sys.exit(main())
