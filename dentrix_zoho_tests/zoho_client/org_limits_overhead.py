"""What the shared org limits cost a call: ``python org_limits_overhead.py`` (starts its own PostgreSQL).

1. Per call, one thread: the budget check, the slot taken and freed, the spend counted, against the
   in-process gates and budget; PostgreSQL and SQLite; light and heavy calls.
2. Under load: 4 processes x 20 threads, each "call" a 150 ms sleep inside its slot, against an org
   limit of 20: calls per second against the bound 20 / 0.15 s, and the peak held at once.

Prints figures; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dentrix_zoho.zoho.budget import CreditBudget  # noqa: E402
from dentrix_zoho.zoho.limits import HEAVY_CALL_CAP  # noqa: E402
from dentrix_zoho.zoho.org_limits import OrgCreditBudget, OrgLimits  # noqa: E402
from dentrix_zoho.zoho.throttle import ConcurrencyGates  # noqa: E402


def per_call(url: str | None, n: int, heavy: bool) -> float:
    """Microseconds of limiter work per call (no call made), median of 5 runs of ``n``."""
    org = OrgLimits(url, f"bench{time.monotonic_ns()}", concurrency=20, heavy_cap=HEAVY_CALL_CAP) if url else None
    gates = ConcurrencyGates(20, HEAVY_CALL_CAP, shared=org.slots if org else None)
    settings: dict[str, Any] = {"daily_limit": 5_000_000, "policy": "stop", "reserve": 1_000_000}
    budget = OrgCreditBudget(org.credits, **settings) if org else CreditBudget(**settings)
    runs = []
    try:
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                budget.before_call(1)
                with gates.slot(heavy):
                    pass
                budget.spend(1)
            runs.append((time.perf_counter() - t0) / n * 1e6)
    finally:
        if org:
            org.close()
    return statistics.median(runs)


def load_worker(url: str, seconds: float, threads: int) -> None:
    org = OrgLimits(url, "load", concurrency=20, heavy_cap=HEAVY_CALL_CAP)
    gates = ConcurrencyGates(20, HEAVY_CALL_CAP, shared=org.slots)
    done = 0
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work() -> None:
        nonlocal done
        barrier.wait()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with gates.slot(False):
                time.sleep(0.150)
            with lock:
                done += 1

    pool = [threading.Thread(target=work) for _ in range(threads)]
    t0 = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print(json.dumps({"calls": done, "wall": time.monotonic() - t0, "waits": org.slots.waits}), flush=True)
    org.close()


def under_load(url: str, processes: int = 4, threads: int = 20, seconds: float = 15.0) -> dict[str, Any]:
    probe = OrgLimits(url, "load", concurrency=20, heavy_cap=HEAVY_CALL_CAP)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, probe.slots.occupancy()["all"])
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    procs = [
        subprocess.Popen([sys.executable, __file__, "worker", url, str(seconds), str(threads)],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    stop.set()
    watcher.join()
    probe.close()
    calls = sum(o["calls"] for o in outs)
    wall = max(o["wall"] for o in outs)
    bound = 20 / 0.150
    return {"calls": calls, "wall_s": round(wall, 2), "calls_per_s": round(calls / wall, 1),
            "bound_per_s": round(bound, 1), "efficiency": round(calls / wall / bound, 3), "peak_held": peak,
            "per_process": [o["calls"] for o in outs]}


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        load_worker(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
        return
    from dentrix_zoho_tests.pg_server import pg_server

    with pg_server() as server, tempfile.TemporaryDirectory() as tmp:
        pg = server.create_database("bench")
        lite = f"sqlite:///{Path(tmp) / 'org.sqlite'}"
        for name, url in (("in-process", None), ("postgresql", pg), ("sqlite", lite)):
            light = per_call(url, 2_000, heavy=False)
            heavy = per_call(url, 1_000, heavy=True)
            print(f"{name:11s} per call: light {light:7.1f} us, heavy {heavy:7.1f} us "
                  f"({light / 1500:.2f} % / {heavy / 1500:.2f} % of a 150 ms call)")
        print("postgresql under load (4 processes x 20 threads, 150 ms calls, limit 20):", under_load(pg))


if __name__ == "__main__":
    main()
