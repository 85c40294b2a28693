"""Many offices benchmark (issue 13.6): N small offices as one backfill through the real daemon into one org.

N tiny synthetic practices (different seeds and office numbers; default 24) in an offices file; the
project's definitions; the shipped ``deploy/local/dagster.yaml`` (4 runs at once, one per office) with
Dagster's storage, the ledger and the org's shared limits (``ZOHO_ORG_LIMITS_URL``) on a throw-away
PostgreSQL; ``dagster-daemon run``; one Enterprise emulator at 150 ms a call; the map approved once; one
backfill of ``full_migration`` over every office, requested as the UI requests it. Measured in the
same run (helpers shared with the end-to-end test: ``dentrix_zoho_tests/instance/dso.py``):

* peak concurrent calls at the emulator: must be <= 20 (the edition's limit);
* 429s for concurrency at the emulator: target 0;
* credits used (emulator, the org's shared account and the runs' ledger counts, which must agree)
  against the minimum: the sum of the offices' cheapest plans (each run's migration estimate, the
  figure ``bench_plan`` holds the load to);
* wall time of the load (first to last Zoho call of the backfill) against the lower bound
  ``calls x latency / 20``: target bound / wall >= 0.8. Also shown: the bound with Zoho's cap of
  10 heavy calls (writes of more than 10 records), the emulator's mean occupancy, and the whole
  backfill's wall (processes, staging and shaping included), and how busy the machine's cores were
  during the load (``bench/cpu_sampler.py``): CPU-seconds / cores is a second floor, for this
  machine, that no scheduling of the calls gets under.

    python -m bench.bench_offices [--offices N] [--latency-ms MS]     (a quick run: --offices 6)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.cpu_sampler import CpuSampler, process_cpu_seconds

EDITION_CONCURRENCY = 20  # Enterprise
HEAVY_CAP = 10
TARGET_WALL_RATIO = 0.8
TARGET_CONCURRENCY_429 = 0
ESTIMATE_KEY = ("zoho_plan", "migration_estimate")
BOUND_SECONDS = 3_600  # stops a broken run; measures nothing


def _estimates(instance: Any, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each run's migration estimate metadata (its office's calls and credits, cheapest plan)."""
    import dagster as dg

    out: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        for record in records:
            materialization = record.event_log_entry.asset_materialization
            if materialization is not None and tuple(materialization.asset_key.path) == ESTIMATE_KEY:
                out[str(materialization.partition)] = {k: v.value for k, v in materialization.metadata.items()}
    return out


def _step_windows(instance: Any, run_ids: list[str]) -> dict[str, list[tuple[str, float, float]]]:
    """Per run: (step key, start, end) of each step, from the run's own events."""
    import dagster as dg

    out: dict[str, list[tuple[str, float, float]]] = {}
    for run_id in run_ids:
        starts: dict[str, float] = {}
        windows: list[tuple[str, float, float]] = []
        for record in instance.get_records_for_run(run_id).records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None or entry.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
            elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                windows.append((entry.step_key, starts.get(entry.step_key, entry.timestamp), entry.timestamp))
        out[run_id] = windows
    return out


def _by_step(calls: list[dict[str, Any]], windows: dict[str, list[tuple[str, float, float]]]) -> list[str]:
    """Where a run's time goes: per step (summed over runs) its seconds, Zoho calls and calls in flight."""
    seconds: dict[str, float] = {}
    count: dict[str, int] = {}
    busy: dict[str, float] = {}
    for spans in windows.values():
        for step, start, end in spans:
            seconds[step] = seconds.get(step, 0.0) + (end - start)
    routes: dict[str, Counter[str]] = {}
    for call in calls:
        for step, start, end in windows.get(str(call["run_id"]), []):
            if start <= call["start"] <= end:
                count[step] = count.get(step, 0) + 1
                busy[step] = busy.get(step, 0.0) + (call["latency_ms"] or 0) / 1000
                routes.setdefault(step, Counter())[f"{call['method']} {call['path_template']}"] += 1
                break
    runs = max(1, len(windows))
    rows = [f"  {'step':<34} {'s/run':>6} {'calls/run':>9} {'in flight':>9}"]
    for step in sorted(seconds, key=lambda k: -seconds[k]):
        if seconds[step] / runs < 0.5:
            continue
        rows.append(f"  {step:<34} {seconds[step] / runs:>6.1f} {count.get(step, 0) / runs:>9.0f} "
                    f"{busy.get(step, 0.0) / seconds[step] if seconds[step] else 0:>9.1f}")
    for step in sorted(count, key=lambda k: -seconds.get(k, 0.0))[:3]:
        rows.append(f"  {step} calls per run: " + ", ".join(
            f"{route} {n / runs:.0f}" for route, n in routes[step].most_common(4)))
    return rows


def _busy(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``intervals``."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def _idle(calls: list[dict[str, Any]], windows: dict[str, list[tuple[str, float, float]]],
          spans: dict[str, tuple[float | None, float | None]]) -> list[str]:
    """Where a run's time goes when it is not calling Zoho: per step, before its first call, after its
    last, and between its calls with none of the run's calls in flight; per run, outside any step."""
    by_run: dict[str, list[tuple[float, float]]] = {}
    for call in calls:
        by_run.setdefault(str(call["run_id"]), []).append(
            (call["start"], call["start"] + (call["latency_ms"] or 0) / 1000))
    head: dict[str, float] = {}
    tail: dict[str, float] = {}
    gaps: dict[str, float] = {}
    seconds: dict[str, float] = {}
    outside = process = 0.0
    for run_id, steps in windows.items():
        mine = sorted(by_run.get(run_id, []))
        for step, start, end in steps:
            inside = [(a, min(b, end)) for a, b in mine if start <= a <= end]
            seconds[step] = seconds.get(step, 0.0) + (end - start)
            if not inside:
                continue
            first, last = inside[0][0], max(b for _, b in inside)
            head[step] = head.get(step, 0.0) + (first - start)
            tail[step] = tail.get(step, 0.0) + max(0.0, end - last)
            gaps[step] = gaps.get(step, 0.0) + max(0.0, (last - first) - _busy(inside))
        run_start, run_end = spans.get(run_id, (None, None))
        ordered = sorted(steps, key=lambda w: w[1])
        if ordered and run_start and run_end:
            process += ordered[0][1] - run_start
            outside += _busy([(run_start, run_end)]) - _busy([(a, b) for _, a, b in ordered])
    runs = max(1, len(windows))
    rows = [f"  {'step (Zoho calling)':<34} {'s/run':>6} {'to 1st call':>11} {'after last':>10} {'gaps':>6}"]
    for step in sorted(head, key=lambda k: -seconds[k]):
        rows.append(f"  {step:<34} {seconds[step] / runs:>6.1f} {head[step] / runs:>11.2f} "
                    f"{tail[step] / runs:>10.2f} {gaps[step] / runs:>6.2f}")
    rows.append(f"  per run outside any step: {outside / runs:.1f}s, of which before its first step "
                f"(process start) {process / runs:.1f}s")
    return rows


def _org_idle(calls: list[dict[str, Any]], windows: dict[str, list[tuple[str, float, float]]]) -> list[str]:
    """The load wall's stretches with no call of any run in flight, and the steps the runs were in then."""
    merged: list[list[float]] = []
    for a, b in sorted((c["start"], c["start"] + (c["latency_ms"] or 0) / 1000) for c in calls):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    gaps = [(merged[i][1], merged[i + 1][0]) for i in range(len(merged) - 1)]
    idle = sum(b - a for a, b in gaps)
    wall = merged[-1][1] - merged[0][0] if merged else 0.0
    during: dict[str, float] = {}
    for a, b in gaps:
        for spans in windows.values():
            for step, start, end in spans:
                overlap = min(b, end) - max(a, start)
                if overlap > 0:
                    during[step] = during.get(step, 0.0) + overlap
    top = sorted(during, key=lambda k: -during[k])[:5]
    return [f"no call of any run in flight: {idle:.0f}s of the {wall:.0f}s load wall ({idle / wall if wall else 0:.0%}); "
            "the runs' steps then (run-seconds): " + ", ".join(f"{k} {during[k]:.0f}" for k in top)]


def _machine_floor(sampler: CpuSampler, first: float, last: float, bound_s: float, emulator_cpu0: float | None,
                   emulator_cpu1: float | None, backfill_s: float) -> list[str]:
    """The CPU's share of the load wall: with every core busy, no scheduling of the calls shortens it."""
    busy = sampler.busy_between(first, last)
    if busy is None:
        return ["machine CPU during the load: not measured (no /proc/stat)"]
    cpu_s, share = busy
    cores = os.cpu_count() or 1
    floor_s = cpu_s / cores
    load_s = last - first
    emulator = ""
    if emulator_cpu0 is not None and emulator_cpu1 is not None:
        emulator = (f"; the emulator alone {emulator_cpu1 - emulator_cpu0:.0f} CPU-s over the {backfill_s:.0f}s "
                    "backfill (real Zoho's work is not on this machine)")
    return [f"machine CPU during the load: {share:.0%} of {cores} cores busy, {cpu_s:.0f} CPU-s{emulator}",
            f"the machine's floor for that work: {floor_s:.0f}s (CPU-s / cores); the larger of the two floors "
            f"against the load wall: {max(bound_s, floor_s) / load_s:.2f} (call bound alone {bound_s / load_s:.2f})"]


def _calls(ledger_url: str) -> list[dict[str, Any]]:
    from datetime import datetime

    from sqlalchemy import create_engine, text

    engine = create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT run_id, time, method, path_template, record_count, latency_ms, credits FROM api_calls "
                "WHERE path_template NOT LIKE '%oauth%'")).mappings().all()
    finally:
        engine.dispose()
    return [{**row, "start": datetime.fromisoformat(str(row["time"])).timestamp()} for row in rows]


def run(offices: int, latency_ms: float, dump: Path | None = None,
        instance_file: Path | None = None) -> tuple[list[str], bool]:
    import dagster as dg

    from dentrix_zoho.zoho_emulator.testing import running_emulator
    from dentrix_zoho_tests.instance import dso
    from dentrix_zoho_tests.pg_server import pg_server

    lines: list[str] = []
    specs = dso.office_specs(offices)
    with tempfile.TemporaryDirectory(prefix="bench-offices-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        offices_file, users = dso.write_offices(tmp / "practices", specs)
        generated_s = time.perf_counter() - t0
        with pg_server() as pg, running_emulator(tmp / "zoho", edition="enterprise", users=1, latency_ms=latency_ms,
                                                 extra_args=["--users-file", str(users), "--token-mint-limit", "0"]) as emu:
            databases = dso.DsoDatabases.create(pg)
            home = tmp / "home"
            home.mkdir()
            dagster_home = dso.make_dagster_home(tmp / "dagster_home")
            if instance_file is not None:  # an experiment: another instance file than the shipped one
                (dagster_home / "dagster.yaml").write_text(instance_file.read_text(encoding="utf-8"), encoding="utf-8")
                lines.append(f"instance file: {instance_file} (not the shipped deploy/local/dagster.yaml)")
            env = dso.dso_env(home=home, dagster_home=dagster_home,
                              offices_file=offices_file, emulator=emu, databases=databases)
            dso.approve_map(databases.ledger)
            log = tmp / "daemon.log"
            with dso.project_daemon(env, log) as daemon:
                max_runs = dso.max_concurrent_runs()
                dso.prepare_instance(env, [s.office_id for s in specs], pool_slots=max_runs)
                started = time.time()
                sampler = CpuSampler().start()
                emulator_cpu0 = process_cpu_seconds(emu.process.pid)
                backfill = dso.request_backfill(env, [s.office_id for s in specs])
                with dso.environment(env), dg.DagsterInstance.get() as instance:
                    most_in_progress = 0

                    def finished() -> bool:
                        nonlocal most_in_progress
                        runs = dso.runs_of(instance, backfill)
                        most_in_progress = max(most_in_progress, sum(
                            r.status in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED) for r in runs))
                        if daemon.poll() is not None:
                            raise RuntimeError(f"the daemon exited:\n{dso.log_tail(log)}")
                        return len(runs) >= offices and all(r.is_finished for r in runs)

                    dso.wait_for(finished, "every office run finished", log, bound_seconds=BOUND_SECONDS, every=1.0)
                    backfill_s = time.time() - started
                    sampler.stop()
                    emulator_cpu1 = process_cpu_seconds(emu.process.pid)
                    runs = dso.runs_of(instance, backfill)
                    failed = [r for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
                    records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
                    spans = [(records[r.run_id].start_time, records[r.run_id].end_time) for r in runs]
                    estimates = _estimates(instance, [r.run_id for r in runs])
                    windows = _step_windows(instance, [r.run_id for r in runs])
                    for r in failed:
                        lines.append(f"FAILED {r.tags.get(dso.PARTITION_TAG)} {r.run_id}: "
                                     f"{dso.failed_steps(instance, r.run_id)[:2]}")
            usage = emu.usage()
            snapshot = emu.snapshot()
            calls = _calls(databases.ledger)
            by_run = dso.ledger_credits_by_run(databases.ledger)
            org = dso.org_credits(databases.limits)
            crosswalk = dso.live_crosswalk(databases.ledger)

    # -- figures ------------------------------------------------------------------------------------
    api_calls = sum(v for k, v in usage["calls"].items() if "oauth" not in k and "__emulator__" not in k)
    latency_s = latency_ms / 1000
    first = min(c["start"] for c in calls)
    last = max(c["start"] + (c["latency_ms"] or 0) / 1000 for c in calls)
    load_s = last - first
    bound_s = api_calls * latency_s / EDITION_CONCURRENCY
    heavy = sum(1 for c in calls if c["method"] in ("POST", "PUT", "PATCH") and (c["record_count"] or 0) > 10
                and "coql" not in str(c["path_template"]))
    heavy_bound_s = max(bound_s, heavy * latency_s / HEAVY_CAP)
    occupancy = sum((c["latency_ms"] or 0) for c in calls) / 1000 / load_s if load_s else 0.0
    wall_ratio = bound_s / load_s if load_s else 0.0
    peak = usage["concurrency"]["max_seen"]
    too_many = usage["too_many_requests"]
    concurrency_429 = int(too_many.get("concurrency", 0))
    charged = int(usage["credits"]["used_total"])
    ledger_credits = sum(by_run.values())
    cheapest = sum(int(e.get("cheapest_credits", 0)) for e in estimates.values())
    estimated = sum(int(e.get("total_credits", 0)) for e in estimates.values())
    estimated_calls = sum(int(e.get("total_calls", 0)) for e in estimates.values())
    schema_calls = [c for c in calls if "/settings/" in str(c["path_template"])]
    schema_credits = sum(int(c["credits"] or 0) for c in schema_calls)
    dups = dso.duplicates(snapshot)
    once = all(len(dso.office_records(snapshot, s.office_id)) ==
               sum(n for m, n in crosswalk.get(s.office_id, {}).items() if m in dso.KEYED_MODULES) for s in specs)
    run_s = sorted(end - start for start, end in spans if start and end)

    lines.append(f"{offices} tiny offices (generated in {generated_s:.0f}s), one backfill, {max_runs} runs at once, "
                 f"Enterprise emulator at {latency_ms:.0f} ms; {len(runs)} runs, {len(failed)} failed; "
                 f"at most {most_in_progress} in progress")
    lines.append(f"records in Zoho: {sum(map(len, (dso.office_records(snapshot, s.office_id) for s in specs))):,} "
                 f"keyed; each office's once and equal to its crosswalk: {once}; duplicate Source_System_IDs: {len(dups)}")
    lines.append(f"peak concurrent calls at the emulator: {peak} (must be <= {EDITION_CONCURRENCY}); "
                 f"heavy {usage['concurrency']['heavy_max_seen']} (<= {HEAVY_CAP})")
    lines.append(f"429 for concurrency: {concurrency_429} (target {TARGET_CONCURRENCY_429}); all 429s: "
                 f"{too_many.get('total', 0)}")
    lines.append(f"credits: emulator {charged:,}, org's shared account {org:,}, runs' ledger {ledger_credits:,}")
    lines.append(f"credits used / the offices' cheapest plans ({cheapest:,}): "
                 f"{charged / cheapest if cheapest else float('nan'):.3f}; / their estimates ({estimated:,}): "
                 f"{charged / estimated if estimated else float('nan'):.3f}; schema set-up reads, outside the "
                 f"estimate: {len(schema_calls):,} calls, {schema_credits:,} credits; without them "
                 f"{(charged - schema_credits) / cheapest if cheapest else float('nan'):.3f}")
    lines.append(f"calls: {api_calls:,} at the emulator against the estimates' {estimated_calls:,}")
    lines.append(f"load wall (first to last Zoho call): {load_s:.0f}s against a lower bound of {bound_s:.0f}s "
                 f"({api_calls:,} calls x {latency_ms:.0f} ms / {EDITION_CONCURRENCY}): ratio {wall_ratio:.2f} "
                 f"(target >= {TARGET_WALL_RATIO}); with the heavy cap ({heavy:,} writes of > 10 records at "
                 f"<= {HEAVY_CAP}) the bound is {heavy_bound_s:.0f}s, ratio {heavy_bound_s / load_s:.2f}")
    lines.append(f"mean calls in flight at the emulator during the load: {occupancy:.1f} of {EDITION_CONCURRENCY}")
    lines.extend(_machine_floor(sampler, first, last, bound_s, emulator_cpu0, emulator_cpu1, backfill_s))
    lines.extend(_org_idle(calls, windows))
    if run_s:
        per_run: dict[str, list[float]] = {}
        for c in calls:
            per_run.setdefault(str(c["run_id"]), []).append(c["start"])
        zoho_s = sorted(max(t) - min(t) for t in per_run.values())
        lines.append(f"backfill wall {backfill_s:.0f}s; a run takes {run_s[0]:.0f}-{run_s[-1]:.0f}s "
                     f"(median {run_s[len(run_s) // 2]:.0f}s), from its first Zoho call to its last "
                     f"{zoho_s[0]:.0f}-{zoho_s[-1]:.0f}s (median {zoho_s[len(zoho_s) // 2]:.0f}s)")
    lines.append("where a run's time goes (per run, mean over runs; in flight: its Zoho calls at once):")
    lines.extend(_by_step(calls, windows))
    span_of = {r.run_id: span for r, span in zip(runs, spans, strict=True)}
    lines.append("a run's time without a Zoho call of its own in flight (seconds per run):")
    lines.extend(_idle(calls, windows, span_of))
    if dump is not None:
        import json

        dump.write_text(json.dumps({"calls": calls, "windows": windows, "spans": span_of}, default=str))
    met = (not failed and peak <= EDITION_CONCURRENCY and concurrency_429 <= TARGET_CONCURRENCY_429
           and wall_ratio >= TARGET_WALL_RATIO and not dups and once and charged == org == ledger_credits)
    return lines, met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_offices", description=__doc__.split("\n\n")[0])
    parser.add_argument("--offices", type=int, default=24, help="tiny offices in the backfill (default 24)")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="the emulator's mean latency per call")
    parser.add_argument("--dump", type=Path, help="write the calls, step windows and run spans to this JSON file")
    parser.add_argument("--instance-file", type=Path,
                        help="an experiment: this dagster.yaml instead of the shipped deploy/local/dagster.yaml")
    args = parser.parse_args(argv or [])
    lines, met = run(args.offices, args.latency_ms, args.dump, args.instance_file)
    for line in lines:
        print(line, flush=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
