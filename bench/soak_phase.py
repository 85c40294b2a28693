"""One phase of the fault soak in its own process: ``python -m bench.soak_phase PHASE CONFIG_JSON``.

The soak (``bench/soak.py``) runs every phase of a migration as one of these children, so a
SIGKILL from the parent takes the whole phase down (its process group: staging's reader
processes too). Each phase is what the pipeline runs, through the same domain code the
Dagster assets call: running a phase again resumes it.

Phases: ``stage``, ``schema``, ``approve``, ``shape``, ``owners``, ``load:<step>`` (one step
of ``LOAD_ORDER``, run ``soak-full``), ``delta_stage`` (change detection), ``delta_shape``,
``delta_load`` (every step, run ``soak-delta``), ``deletions`` (the delta's deletions in Zoho),
``rollback`` (``dentrix-zoho rollback --run soak-delta``).

The child prints ``SOAK-READY`` once its imports are done (the parent's kill timer starts
there, so a kill lands in the phase's work, not in the interpreter's start-up) and
``SOAK-RESULT {json}`` (counts only) at the end. Exit 0: the phase is complete; 3: it ran
but left work for a next attempt (failed rows, retries exhausted); anything else: it crashed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

FULL_RUN = "soak-full"
DELTA_RUN = "soak-delta"
INCOMPLETE = 3


def _ready() -> None:
    print("SOAK-READY", flush=True)


def _result(**counts: Any) -> None:
    print("SOAK-RESULT " + json.dumps(counts, sort_keys=True), flush=True)


def _client(cfg: dict[str, Any], ledger: Any, run_id: str) -> Any:
    from dentrix_zoho.load import api_call_sink
    from dentrix_zoho.zoho import ZohoClient, ZohoConfig

    # Short backoffs: the emulator's faults are random, not a real overload, and the soak is bounded in time.
    config = ZohoConfig.from_env(cfg["zoho_env"], backoff_base=0.02, backoff_cap=0.5, max_retries=10)
    return ZohoClient(config, event_sink=api_call_sink(ledger, run_id))


def _ledger(cfg: dict[str, Any]) -> Any:
    from dentrix_zoho.ledger import Ledger

    return Ledger(cfg["ledger_url"])


def _home(cfg: dict[str, Any]) -> Path:
    return Path(cfg["home"])


def _save(cfg: dict[str, Any], name: str, value: object) -> None:
    path = _home(cfg) / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(value), sort_keys=True), encoding="utf-8")  # type: ignore[call-overload]
    tmp.replace(path)  # atomic: a kill never leaves half a file


def _spec(cfg: dict[str, Any]) -> Any:
    from dentrix_zoho.load import SchemaResult
    from dentrix_zoho.mapping import apply_api_names, load_spec

    schema = SchemaResult(**json.loads((_home(cfg) / "zoho_schema.json").read_text(encoding="utf-8")))
    return apply_api_names(load_spec(), schema.api_names), schema


def _provider_map(cfg: dict[str, Any]) -> Any:
    from dentrix_zoho.source.provider_map import load_provider_map

    return load_provider_map(Path(cfg["provider_map"]))


def stage(cfg: dict[str, Any]) -> int:
    from dentrix_zoho.staging.stage_all import stage_objects

    _ready()
    results = stage_objects(f"sqlite:///{cfg['source_db']}", Path(cfg["duckdb"]), office_id=cfg["office"])
    _result(objects=len(results), rows=sum(r.rows for r in results))
    return 0


def schema(cfg: dict[str, Any]) -> int:
    from dentrix_zoho.load import setup_schema
    from dentrix_zoho.mapping import load_spec

    _ready()
    ledger = _ledger(cfg)
    with _client(cfg, ledger, FULL_RUN) as client:
        result = setup_schema(client, load_spec())
    _save(cfg, "zoho_schema.json", result)
    _result(**{k: v for k, v in result.summary().items() if isinstance(v, int)})
    return 0


def approve(cfg: dict[str, Any]) -> int:
    from dentrix_zoho.cli import main

    _ready()
    sys.argv = ["dentrix-zoho", "map", "approve", "--by", "fault-soak"]
    main()
    return 0


def shape(cfg: dict[str, Any]) -> int:
    import duckdb

    from dentrix_zoho.mapping import shape_all

    _ready()
    spec, _ = _spec(cfg)
    con = duckdb.connect(cfg["duckdb"])
    try:
        summary = shape_all(con, spec, office_id=cfg["office"], as_of=dt.date.fromisoformat(cfg["as_of"]),
                            image_root=Path(cfg["image_dir"]), ledger_pdf_dir=_home(cfg) / "ledger_pdfs",
                            loaded_modules=_ledger(cfg).live_modules(cfg["office"], spec.patient_objects()))
    finally:
        con.close()
    _result(balanced=summary.balanced)
    return 0 if summary.balanced else INCOMPLETE


def owners(cfg: dict[str, Any]) -> int:
    from dentrix_zoho.load import resolve_owners, shaped_provider_ids

    _ready()
    ledger = _ledger(cfg)
    pmap = _provider_map(cfg)
    with _client(cfg, ledger, FULL_RUN) as client:
        result = resolve_owners(client, pmap, shaped_provider_ids(Path(cfg["duckdb"]), cfg["office"]))
    _save(cfg, "zoho_owners.json", result)
    _result(unmatched=len(result.unmatched), blocking=bool(result.blocking))
    return INCOMPLETE if result.blocking else 0


def _load_context(cfg: dict[str, Any], ledger: Any, client: Any, run_id: str, kind: str) -> Any:
    from dentrix_zoho.load import LoadContext, OwnerResolution
    from dentrix_zoho.mapping import is_current_spec_approved, load_spec, spec_hash

    if not is_current_spec_approved(ledger):
        raise SystemExit("the mapping spec is not approved: only the sample may be loaded")
    spec, schema_result = _spec(cfg)
    owner_result = OwnerResolution(**json.loads((_home(cfg) / "zoho_owners.json").read_text(encoding="utf-8")))
    ledger.start_run(kind, cfg["office"], spec_hash=spec_hash(load_spec()), run_id=run_id)
    return LoadContext(Path(cfg["duckdb"]), client, ledger, cfg["office"], run_id, spec, owner_result, schema_result)


def _load_steps(cfg: dict[str, Any], steps: list[str], run_id: str, kind: str, *, last: bool = False) -> int:
    """``last``: the run's final step; when it completes the run is marked succeeded (the Dagster job's
    reconciliation does this after its gates; a rollback refuses a run still marked running)."""
    from dentrix_zoho.load import load_module

    ledger = _ledger(cfg)
    with _client(cfg, ledger, run_id) as client:
        ctx = _load_context(cfg, ledger, client, run_id, kind)
        totals: dict[str, int] = {"shaped": 0, "sent": 0, "ok": 0, "unchanged": 0, "failed": 0, "quarantined": 0,
                                  "reconciled": 0}
        for step in steps:
            result = load_module(ctx, step)
            for name in totals:
                totals[name] += int(getattr(result, name))
        accounted = totals["ok"] + totals["unchanged"] + totals["quarantined"]
        # What the Dagster step's blocking ``accounted_for`` check asks; otherwise the step is run again.
        complete = totals["failed"] == 0 and accounted >= totals["shaped"]
        if complete and last:
            ledger.finish_run(run_id, "succeeded")
    _result(**totals)
    return 0 if complete else INCOMPLETE


def load_step(cfg: dict[str, Any], step: str) -> int:
    from dentrix_zoho.load import LOAD_ORDER

    _ready()
    return _load_steps(cfg, [step], FULL_RUN, "full", last=step == LOAD_ORDER[-1])


def delta_stage(cfg: dict[str, Any]) -> int:
    from dentrix_zoho.cutover.changes import detect_and_apply_changes
    from dentrix_zoho.source.connection import open_source
    from dentrix_zoho.staging.store import StagingStore

    _ready()
    store = StagingStore(Path(cfg["duckdb"]))
    with open_source(f"sqlite:///{cfg['source_db']}") as conn, store.connect() as con:
        summary = detect_and_apply_changes(conn, store, con, office_id=cfg["office"], snapshot_id="soak-delta")
    _result(new=summary.new, changed=summary.changed, deleted=summary.deleted)
    return 0


def delta_load(cfg: dict[str, Any]) -> int:
    from dentrix_zoho.load import LOAD_ORDER

    _ready()
    return _load_steps(cfg, list(LOAD_ORDER), DELTA_RUN, "delta")


def deletions(cfg: dict[str, Any]) -> int:
    import duckdb

    from dentrix_zoho.cutover.deletions import apply_deletions, find_deletions

    _ready()
    ledger = _ledger(cfg)
    con = duckdb.connect(cfg["duckdb"], read_only=True)
    try:
        candidates = find_deletions(con, ledger, cfg["office"])
    finally:
        con.close()
    with _client(cfg, ledger, DELTA_RUN) as client:
        ledger.start_run("delta", cfg["office"], run_id=DELTA_RUN)
        result = apply_deletions(client, ledger, DELTA_RUN, candidates, policy="delete")
        if not result.failed:
            ledger.finish_run(DELTA_RUN, "succeeded")  # the delta's last step: see _load_steps
    _result(candidates=result.candidates, deleted=result.deleted, failed=result.failed)
    return INCOMPLETE if result.failed else 0


def rollback(cfg: dict[str, Any]) -> int:
    from dentrix_zoho.rollback.cli import rollback as command

    _ready()
    try:
        command.main(args=["--run", DELTA_RUN, "--yes", "--url", cfg["ledger_url"]],
                     prog_name="dentrix-zoho rollback", standalone_mode=False)
    except SystemExit as exc:
        return INCOMPLETE if exc.code else 0
    return 0


PHASES = {"stage": stage, "schema": schema, "approve": approve, "shape": shape, "owners": owners,
          "delta_stage": delta_stage, "delta_shape": shape, "delta_load": delta_load, "deletions": deletions,
          "rollback": rollback}


def main(argv: list[str]) -> int:
    phase, config_path = argv
    cfg: dict[str, Any] = json.loads(Path(config_path).read_text(encoding="utf-8"))
    if phase.startswith("load:"):
        return load_step(cfg, phase.partition(":")[2])
    return PHASES[phase](cfg)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
