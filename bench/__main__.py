"""Run every benchmark in turn: ``python -m bench [name ...]``.

Each benchmark module has ``main() -> int`` and prints its own figures; this
runner only sequences them and reports which ones missed their target.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ["bench_extract", "bench_emulator", "bench_client", "bench_delta", "bench_migration", "bench_plan",
              "bench_readback", "bench_offices"]


def main(argv: list[str]) -> int:
    chosen = argv or BENCHMARKS
    failures: list[str] = []
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            print(f"skipped: {exc}")
            continue
        code = module.main()
        print(f"--- {name}: {'met its target' if code == 0 else 'MISSED its target'} "
              f"({time.perf_counter() - started:.0f}s)")
        if code != 0:
            failures.append(name)
    print("\nbenchmarks that missed their target: " + (", ".join(failures) if failures else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
