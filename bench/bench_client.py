"""Benchmark the Zoho client against the local emulator (loopback only, bounded in time).

For N records per module it upserts through the record API and reports:

* calls and credits used against the theoretical minimum (``ceil(N/100)`` calls,
  1 credit per 10 records): target at most 2 % over;
* wall time against the lower bound ``calls x latency / concurrency`` with the
  emulator at ``--latency-ms`` and the client at the edition's concurrency
  (writes of more than 10 records also count against Zoho's sub-concurrency cap
  of 10, so the bound uses ``min(edition concurrency, 10)``): target at least 0.85.

    python -m bench.bench_client --records 20000 --editions standard --latency-ms 150
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from dentrix_zoho.zoho import ZohoClient, ZohoConfig, limits
from dentrix_zoho.zoho_emulator.testing import running_emulator

SOURCE_ID = {
    "field_label": "Source System ID",
    "data_type": "text",
    "length": 64,
    "unique": {"case_sensitive": False},
}
MANDATORY = {"Contacts": "Last_Name", "Leads": "Last_Name", "Accounts": "Account_Name"}


def _records(module: str, n: int) -> list[dict[str, str]]:
    key = MANDATORY[module]
    return [{key: f"Bench {i}", "Source_System_ID": f"{module[:1]}{i:07d}"} for i in range(n)]


def run(records: int, modules: list[str], edition: str, latency_ms: float, deadline_s: float) -> bool:
    ok = True
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_emulator(Path(tmp), edition=edition, users=10, latency_ms=latency_ms) as emu,
    ):
        config = ZohoConfig(
            api_base=emu.base_url,
            accounts_url=emu.base_url,
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            refresh_token=emu.refresh_token,
            edition=edition,
            users=10,
        )
        concurrency = min(config.concurrency, limits.HEAVY_CALL_CAP)
        print(
            f"edition={edition} concurrency={config.concurrency} (writes: {concurrency}) "
            f"latency={latency_ms:.0f} ms records/module={records}"
        )
        with ZohoClient(config) as client:
            for module in modules:
                client.ensure_schema(module, [SOURCE_ID])
            started_all = time.monotonic()
            for module in modules:
                if time.monotonic() - started_all > deadline_s:
                    print(f"{module}: skipped, past the {deadline_s:.0f} s budget")
                    ok = False
                    continue
                rows = _records(module, records)
                before = emu.usage()
                t0 = time.perf_counter()
                outcomes = client.upsert(module, rows)
                wall = time.perf_counter() - t0
                after = emu.usage()
                failed = sum(not o.ok for o in outcomes)
                calls = after["calls_total"] - before["calls_total"]
                credits = after["credits"]["used_total"] - before["credits"]["used_total"]
                min_calls = limits.write_calls(records)
                min_credits = limits.write_credits(records)
                bound = min_calls * (latency_ms / 1000) / concurrency
                calls_over = calls / min_calls - 1
                credits_over = credits / min_credits - 1
                wall_ratio = bound / wall if wall else 0.0
                module_ok = failed == 0 and calls_over <= 0.02 and credits_over <= 0.02 and wall_ratio >= 0.85
                ok &= module_ok
                print(
                    f"{module:9s} calls {calls}/{min_calls} (+{calls_over:.1%}, target <= 2%)  "
                    f"credits {credits}/{min_credits} (+{credits_over:.1%}, target <= 2%)  "
                    f"wall {wall:.2f}s vs bound {bound:.2f}s (ratio {wall_ratio:.2f}, target >= 0.85)  "
                    f"failed {failed}  {'OK' if module_ok else 'MISSED'}"
                )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--modules", default="Contacts,Leads")
    parser.add_argument("--editions", default="standard,enterprise", help="comma-separated")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument(
        "--deadline-s", type=float, default=120.0, help="stop starting new modules after this"
    )
    args = parser.parse_args(argv or [])  # the bench runner calls main() with no arguments
    modules = [m.strip() for m in args.modules.split(",") if m.strip()]
    ok = True
    for edition in [e.strip() for e in args.editions.split(",") if e.strip()]:
        ok &= run(args.records, modules, limits.normalise_edition(edition), args.latency_ms, args.deadline_s)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
