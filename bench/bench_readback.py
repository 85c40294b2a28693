"""Read-back benchmark: the sample's field-level diff report and reconciliation at 300 ms a call.

The sample of the ``tiny`` practice (75 patients, as ``sample_migration`` picks them) is loaded into the
emulator with ``--latency-ms 300``; then the diff report and the reconciliation's read-backs run, every
API call counted from the client's events. Against limits measured in the same run:

* read-back calls against the minimum: per module ceil(records / IDS_PER_GET) x ceil(fields / 50)
  multi-id GETs (target <= 1.05); the reads by id of records with subform rows and the attachment
  listings per parent (the only reads Zoho has for those) are printed apart, not in the ratio;
* the diff report's wall time against its lower bound ``ceil(calls / concurrency) x latency`` for the
  calls it made (every one of its calls counts here, subform reads and listings included);
* what one GET per record (the old path) would have needed at the same latency, for scale;
* the migration estimate's diff report read-back and reconciliation (``dentrix_zoho.plan``, counted
  from the shaped rows before the load) against the calls the emulator answered for them; target
  within 2 %. The diff report runs on a client of its own, as the Dagster asset does.

    python -m bench.bench_readback     (also run by ``python -m bench``)
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import tempfile
import time
from pathlib import Path

LATENCY_MS = 300.0
EDITION = "enterprise"
SAMPLE_SIZE = 75
TARGET_CALL_RATIO = 1.05
TARGET_WALL_RATIO = 0.5  # lower bound / wall: the report also reads DuckDB and the ledger, and writes HTML
TARGET_PREDICTION = 0.02
AS_OF = dt.date(2026, 11, 1)


def main(argv: list[str] | None = None) -> int:
    import duckdb

    from bench.bench_extract import practice
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.load import LoadContext, LoadOptions, load_all, resolve_owners, select_sample, setup_schema
    from dentrix_zoho.load.diff_report import write_diff_report
    from dentrix_zoho.load.reconcile import reconcile_balances, reconcile_parents, reconcile_zoho_counts
    from dentrix_zoho.mapping import apply_api_names, load_spec, shape_all
    from dentrix_zoho.plan.counts import count_migration
    from dentrix_zoho.plan.estimate import EstimateInputs, estimate_phases
    from bench.practice_emulator import practice_emulator
    from dentrix_zoho.source.synthetic import PracticeFiles
    from dentrix_zoho.staging.stage_all import stage_objects
    from dentrix_zoho.zoho import ZohoClient, ZohoConfig, limits
    from dentrix_zoho.zoho.events import ApiCallEvent

    source_db = practice("tiny")
    files = PracticeFiles(source_db)
    office = "office-1"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        duck = tmp / "staging.duckdb"
        stage_objects(f"sqlite:///{source_db}", duck, office_id=office)
        with practice_emulator(tmp, files.provider_map, edition=EDITION, latency_ms=LATENCY_MS) as (emu, env, pmap, _):
            events: list[ApiCallEvent] = []
            client = ZohoClient(ZohoConfig.from_env(env), event_sink=events.append)
            schema = setup_schema(client, load_spec())
            spec = apply_api_names(load_spec(), schema.api_names)
            con = duckdb.connect(str(duck))
            try:
                sample = select_sample(con, SAMPLE_SIZE, office_id=office, as_of=AS_OF, spec=spec)
                shape_all(con, spec, office_id=office, as_of=AS_OF, image_root=files.images_dir,
                          ledger_pdf_dir=tmp / "pdfs",
                          sample_source_ids={s for s in sample if s.split(":")[1] == "patient"})
            finally:
                con.close()
            owners = resolve_owners(client, pmap, pmap.providers)
            ledger = Ledger(f"sqlite:///{tmp / 'ledger.sqlite'}")
            counts = count_migration(duck, office, scope="sample", sample=sample, ledger=ledger)
            phases, _ = estimate_phases(counts, EstimateInputs.build(edition=EDITION, latency_ms=LATENCY_MS,
                                                                     scope="sample"))
            predicted = {name: (sum(p.calls for p in phases if p.phase == name),
                                sum(p.credits for p in phases if p.phase == name))
                         for name in ("diff report read-back", "reconciliation")}
            options = LoadOptions(sample_source_ids=frozenset(sample))
            ctx = LoadContext(duck, client, ledger, office, ledger.start_run("sample", office), spec, owners, schema,
                              options)
            load_all(ctx)
            client.close()

            # The report's own client, as the Dagster asset has (its field metadata is read, not cached).
            client = ZohoClient(ZohoConfig.from_env(env), event_sink=events.append)
            ctx = LoadContext(duck, client, ledger, office, ledger.start_run("sample", office), spec, owners, schema,
                              options)
            first = len(events)
            usage0 = _usage(emu)
            t0, epoch0 = time.perf_counter(), time.time()
            summary = write_diff_report(ctx, tmp / "reports")
            diff_s = time.perf_counter() - t0
            used_diff = _delta(usage0, _usage(emu))
            made = [e for e in events[first:] if "oauth" not in e.path_template]
            diff_calls = len([e for e in made if e.outcome != "retry"])
            # Where the time went: before the first call (DuckDB, ledger, expected values), between the
            # first call's start and the last call's end, and after (comparing, writing the files).
            calls_start = min(e.time for e in made) - epoch0
            calls_end = max(e.time + e.latency_ms / 1000 for e in made) - epoch0
            concurrency = ctx.calls_in_flight

            first = len(events)
            t0 = time.perf_counter()
            parents = reconcile_parents(client, ledger, office, schema)
            balances = reconcile_balances(duck, client, ledger, office, schema)
            reconcile_s = time.perf_counter() - t0
            rec_calls = len(events) - first
            rec_min = sum(math.ceil(len(list(ledger.crosswalk_rows(module=m, office_id=office, deleted=False)))
                                    / limits.IDS_PER_GET) for m in ("Events", "Tasks", "Calls", "Notes", "Contacts"))
            # The whole reconciliation (its counts too) against the estimate's.
            usage0 = _usage(emu)
            reconcile_zoho_counts(client, ledger, office, schema, attempts=1, recheck_seconds=0)
            reconcile_parents(client, ledger, office, schema)
            reconcile_balances(duck, client, ledger, office, schema)
            used_recon = _delta(usage0, _usage(emu))
            client.close()

    call_ratio = summary.list_reads / summary.read_calls_minimum if summary.read_calls_minimum else 0.0
    bound_s = math.ceil(diff_calls / concurrency) * LATENCY_MS / 1000
    wall_ratio = bound_s / diff_s if diff_s else 0.0
    # The old path: one GET per record, attachments through the same listings per parent.
    one_by_one = summary.records - summary.by_module.get("Attachments", {}).get("records", 0) \
        + summary.attachment_listings
    print(f"sample diff report: {summary.records:,} records, {summary.fields_compared:,} fields, "
          f"{summary.mismatches} mismatches")
    print(f"  multi-record reads: {summary.list_reads} against a minimum of {summary.read_calls_minimum} "
          f"(ratio {call_ratio:.2f}; target <= {TARGET_CALL_RATIO})")
    print(f"  apart: {summary.subform_reads} subform reads (GET by id: records with subform rows), "
          f"{summary.long_text_reads} long rich-text reads, {summary.attachment_listings} attachment listings")
    print(f"  wall: {diff_s:.1f}s for {diff_calls} calls at {LATENCY_MS:.0f} ms, {concurrency} at a time: lower bound "
          f"{bound_s:.1f}s (ratio {wall_ratio:.2f}; target >= {TARGET_WALL_RATIO})")
    print(f"  of which: {calls_start:.1f}s before the first call, {calls_end - calls_start:.1f}s of calls, "
          f"{diff_s - calls_end:.1f}s after the last (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"  one GET per record would be about {one_by_one:,} calls, {one_by_one * LATENCY_MS / 1000 / 60:.1f} min "
          "one after another")
    print(f"reconciliation read-backs (parents, balances): {rec_calls} calls against a minimum of {rec_min}, "
          f"{reconcile_s:.1f}s; passed: {parents.passed and balances.passed}")
    worst = 0.0
    print("the estimate (from the shaped rows, before the load) against what the emulator answered:")
    print(f"  {'phase':<24} {'pred calls':>10} {'used':>6} {'ratio':>6} {'pred credits':>12} {'used':>6} {'ratio':>6}")
    for name, used in (("diff report read-back", used_diff), ("reconciliation", used_recon)):
        p = predicted[name]
        r = (used[0] / p[0] if p[0] else 0.0, used[1] / p[1] if p[1] else 0.0)
        worst = max(worst, abs(r[0] - 1), abs(r[1] - 1))
        print(f"  {name:<24} {p[0]:>10,} {used[0]:>6,} {r[0]:>6.3f} {p[1]:>12,} {used[1]:>6,} {r[1]:>6.3f}")
    print(f"  worst {worst:.1%} off (target within {TARGET_PREDICTION:.0%})")
    met = (call_ratio <= TARGET_CALL_RATIO and wall_ratio >= TARGET_WALL_RATIO and rec_calls <= rec_min
           and worst <= TARGET_PREDICTION)
    return 0 if met else 1


def _usage(emu: object) -> tuple[int, int]:
    """Calls (token calls aside) and credits the emulator counted so far."""
    usage = emu.usage()  # type: ignore[attr-defined]
    calls = sum(v for k, v in usage["calls"].items() if "oauth" not in k and "__emulator__" not in k)
    return calls, int(usage["credits"]["used_total"])


def _delta(before: tuple[int, int], after: tuple[int, int]) -> tuple[int, int]:
    return after[0] - before[0], after[1] - before[1]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
