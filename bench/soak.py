"""Fault soak: ``python -m bench.soak --size small|office --seed N --kills K`` (``make soak``: office).

The whole migration of a synthetic practice runs twice, each phase as its own child process
(``bench/soak_phase.py``) with the same configuration:

1. **Clean**: an emulator without faults; every phase once. Its Zoho state is the reference,
   and each phase's working time (from the child's ready mark to its exit) is measured.
2. **Faulty**: a second emulator with its own data folder and seeded faults (default
   ``429=0.10,500=0.02,503=0.01,drop=0.01``); every phase is SIGKILLed (its whole process group,
   from this process) ``K`` times and run again until it completes. A phase that calls Zoho dies
   once the emulator has served a random number of its calls (drawn from the clean run's count for
   the phase, fewer after each resume); staging and shaping die after a random share of their clean
   working time. Exit 3 from a child (rows left failed) is run again too,
   as the Dagster step's blocking check would have the operator do.

Phases, in order: stage, schema, approve (not killed: one ledger row), shape, owners, each load
step of ``LOAD_ORDER`` (run ``soak-full``), then the practice changes as on a cutover day
(``cutover/simulate.py``, the same seeded change in both runs: it stands for Dentrix, not for
the migration, so it is not killed), delta_stage (change detection), delta_shape, delta_load (run
``soak-delta``), deletions, rollback (of ``soak-delta``). Schema setup runs before shaping
because shaping uses the API names Zoho assigned.

Zoho's records are compared record by record at three checkpoints: after the full load, after
the delta (with its deletions) and at the end (after the rollback). A record's key is its
``Source_System_ID``; a Note's is its parent's key with its title and content, an Attachment's
its parent's key with its file name and size. Values compared are the fields we send: ids, times,
``Created_By``/``Modified_By`` and Zoho's ``$`` system keys are left out, lookups are compared by
the key of the record they point to. Lost = in clean, not in faulty; duplicated = a key more often
in faulty than in clean; extra = in faulty only; differing = same key, other values. The ledger's
accounting (``reconcile_accounting``) is checked after the load and after the delta, and
``dentrix-zoho ledger verify`` at the end.

The report (counts, keys as ``office:object:key`` and field names only, never a value) is
printed and written to ``<out>/soak_report.json`` and ``.md``. Exit 1 when anything was lost,
duplicated, extra or differing, when a phase did not complete, or when a check failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT_VAR = "DENTRIX_SOAK_SOURCE"
SCALES = {"small": "tiny", "office": "office"}
DEFAULT_FAULTS = "429=0.10,500=0.02,503=0.01,drop=0.01"
AS_OF = dt.date(2026, 11, 1)
CUTOVER_AT = dt.datetime(2026, 11, 26, 12, 0, 0)
OFFICE = "office-1"
OWNER_EMAIL = "office.manager@dental.example.com"
LATENCY_MS = 3.0
READY_TIMEOUT_S = 120.0
# A phase attempt that runs longer than this is hung: killed and reported.
ATTEMPT_TIMEOUT_S = {"small": 300.0, "office": 1800.0}
# Attempts after the last kill before a phase counts as not completing (exit 3 or crashes).
EXTRA_ATTEMPTS = 6
NOT_KILLED = {"approve"}
# Fields Zoho sets or that name Zoho's own ids and times: not ours to compare.
SYSTEM_FIELDS = {"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By", "Last_Activity_Time",
                 "Record_Creation_Source_ID__s"}
CHECKPOINT_AFTER = {"load:ledger_pdfs": "after_load", "deletions": "after_delta", "rollback": "final"}


def phases() -> list[str]:
    from dentrix_zoho.load import LOAD_ORDER

    return ["stage", "schema", "approve", "shape", "owners", *[f"load:{s}" for s in LOAD_ORDER],
            "simulate", "delta_stage", "delta_shape", "delta_load", "deletions", "rollback"]


# -- child processes ---------------------------------------------------------------------------


_CHILDREN: set[subprocess.Popen[str]] = set()


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_children() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        _CHILDREN.discard(proc)


@dataclass
class Attempt:
    phase: str
    rc: int | None
    killed: bool = False
    hung: bool = False
    work_s: float = 0.0
    kill_at_s: float | None = None
    api_calls: int = 0  # calls the emulator served during the attempt (the kill landed after these)
    result: dict[str, Any] | None = None


def run_attempt(phase: str, cfg_path: Path, env: dict[str, str], log_path: Path, *, kill_after: float | None,
                timeout_s: float, calls: Any = None, kill_at_calls: int | None = None) -> Attempt:
    """One child for one phase; SIGKILL its process group ``kill_after`` seconds after its ready mark, or
    (``kill_at_calls``) once the emulator has served that many of its API calls, ``kill_after`` then being
    the latest moment.

    ``calls``: reads the emulator's call counter, so the report can say how far into its traffic a kill landed.
    """
    calls_before = calls() if calls else 0
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n--- {phase} (kill after {kill_after if kill_after is None else round(kill_after, 3)}s"
                  f"{'' if kill_at_calls is None else f' or {kill_at_calls} API calls'})\n")
        log.flush()
        proc = subprocess.Popen([sys.executable, "-m", "bench.soak_phase", phase, str(cfg_path)], cwd=REPO_ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        _CHILDREN.add(proc)
        ready = threading.Event()
        ready_at: list[float] = []
        result: list[dict[str, Any]] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("SOAK-READY"):
                    ready_at.append(time.monotonic())
                    ready.set()
                elif line.startswith("SOAK-RESULT "):
                    result.append(json.loads(line.partition(" ")[2]))
                else:
                    log.write(line)
            ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        attempt = Attempt(phase, None, kill_at_s=kill_after)
        try:
            ready.wait(READY_TIMEOUT_S)
            started = ready_at[0] if ready_at else time.monotonic()
            if kill_after is not None and ready_at:
                if kill_at_calls is not None and calls is not None:
                    limit = started + kill_after
                    while proc.poll() is None and time.monotonic() < limit and calls() - calls_before < kill_at_calls:
                        time.sleep(0.005)
                    kill_after = max(0.0, limit - time.monotonic())
                    if proc.poll() is None and time.monotonic() < limit:
                        kill_after = 0.0  # the call count is reached: now
                try:
                    proc.wait(timeout=kill_after)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    attempt.killed = True
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                attempt.hung = True
                proc.wait()
            attempt.work_s = time.monotonic() - started
            reader.join(timeout=10)
        finally:
            if proc.poll() is None:
                _kill_group(proc)
                proc.wait()
            _CHILDREN.discard(proc)
        attempt.rc = proc.returncode
        attempt.api_calls = (calls() - calls_before) if calls else 0
        attempt.result = result[-1] if result else None
        return attempt


# -- one run (clean or faulty) ---------------------------------------------------------------------


@dataclass
class PhaseStats:
    attempts: int = 0
    kills: int = 0
    kills_missed: int = 0  # the timer fired after the phase had completed
    incomplete: int = 0  # exit 3: rows left for the next attempt
    crashes: int = 0  # any other exit that was not our kill
    hung: int = 0
    kill_calls: list[int] = field(default_factory=list)  # API calls the killed attempt got served first
    api_calls: int = 0  # API calls the emulator served this phase, all attempts
    completed: bool = False
    clean_work_s: float = 0.0
    clean_api_calls: int = 0
    work_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _calls_counter(emulator: Any) -> Any:
    return lambda: int(emulator.usage().get("calls_total", 0))


@dataclass
class Run:
    name: str
    folder: Path
    env: dict[str, str]
    cfg_path: Path
    emulator: Any
    stats: dict[str, PhaseStats] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounting: dict[str, dict[str, Any]] = field(default_factory=dict)
    cutover_rows_touched: int = 0


def prepare_practice(out: Path, scale: str, seed: int) -> tuple[Path, Path, Path, Path]:
    """The practice (generated once), a provider map with a default owner, and the emulator's users."""
    import yaml

    from dentrix_zoho.source.synthetic import PracticeFiles, generate_practice

    folder = out / "practice" / f"{scale}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "practice.db"
    if not db.exists():
        generate_practice(db, scale=scale, seed=seed, as_of=AS_OF)  # type: ignore[arg-type]
    files = PracticeFiles(db)
    pmap = yaml.safe_load(files.provider_map.read_text(encoding="utf-8")) or {}
    pmap["default_owner_email"] = OWNER_EMAIL
    provider_map = folder / "providers.yaml"
    provider_map.write_text(yaml.safe_dump(pmap, sort_keys=False), encoding="utf-8")
    emails = [OWNER_EMAIL, *sorted({str(e) for e in (pmap.get("providers") or {}).values() if e})]
    users = folder / "emulator_users.yaml"
    users.write_text(yaml.safe_dump({"users": [
        {"first_name": f"U{i}", "last_name": "Staff", "email": e, **({"profile": "Administrator"} if i == 0 else {})}
        for i, e in enumerate(emails)]}, sort_keys=False), encoding="utf-8")
    return db, files.images_dir, provider_map, users


def make_run(name: str, out: Path, practice_db: Path, images: Path, provider_map: Path, emulator: Any) -> Run:
    folder = out / name
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    db = folder / "practice.db"  # this run's copy: the cutover activity changes it
    shutil.copy(practice_db, db)
    ledger_url = f"sqlite:///{folder / 'ledger.sqlite'}"
    zoho_env = {"ZOHO_API_BASE": emulator.base_url, "ZOHO_ACCOUNTS_URL": emulator.base_url,
                "ZOHO_UPLOAD_URL": emulator.base_url, "ZOHO_CLIENT_ID": emulator.client_id,
                "ZOHO_CLIENT_SECRET": emulator.client_secret, "ZOHO_REFRESH_TOKEN": emulator.refresh_token,
                "ZOHO_EDITION": "enterprise", "ZOHO_USERS": "1"}
    cfg = {"home": str(home), "source_db": str(db), "duckdb": str(folder / "staging.duckdb"),
           "ledger_url": ledger_url, "office": OFFICE, "as_of": AS_OF.isoformat(), "image_dir": str(images),
           "provider_map": str(provider_map), "zoho_env": zoho_env}
    cfg_path = folder / "config.json"
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DENTRIX_"))}
    env.update(zoho_env)
    env.update({"DENTRIX_ZOHO_HOME": str(home), "DENTRIX_ZOHO_LEDGER_URL": ledger_url, "DENTRIX_OFFICE_ID": OFFICE,
                "DENTRIX_SOURCE": f"sqlite:///{db}", "DENTRIX_AS_OF": AS_OF.isoformat(),
                "DENTRIX_IMAGE_DIR": str(images), "DENTRIX_PROVIDER_MAP": str(provider_map),
                "DENTRIX_EXTRACT_WORKERS": "2", "PYTHONPATH": str(REPO_ROOT)})
    return Run(name, folder, env, cfg_path, emulator)


def simulate(run: Run, seed: int, fraction: float) -> int:
    from dentrix_zoho.cutover.simulate import simulate_activity

    cfg = json.loads(run.cfg_path.read_text(encoding="utf-8"))
    activity = simulate_activity(Path(cfg["source_db"]), at=CUTOVER_AT, fraction=fraction, seed=seed)
    return activity.count()


def checkpoint(run: Run, name: str) -> None:
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.load import reconcile_accounting

    run.snapshots[name] = run.emulator.snapshot()
    # Kept for finding a defect's cause; the folder is owner-only (records are patient data, synthetic here).
    (run.folder / f"snapshot_{name}.json").write_text(json.dumps(run.snapshots[name]), encoding="utf-8")
    if name == "final":
        return
    cfg = json.loads(run.cfg_path.read_text(encoding="utf-8"))
    ledger = Ledger(cfg["ledger_url"])
    try:
        check = reconcile_accounting(Path(cfg["duckdb"]), ledger, OFFICE)
        run.accounting[name] = {"passed": check.passed, "description": check.description}
    except Exception as exc:  # noqa: BLE001 - reported, and counts as a failed check
        import traceback

        with open(run.folder / "phases.log", "a", encoding="utf-8") as log:
            log.write(f"\n--- accounting at {name} raised\n{traceback.format_exc()}")
        run.accounting[name] = {"passed": False, "description": f"{type(exc).__name__} (see phases.log)"}
    finally:
        ledger.engine.dispose()


def drive(run: Run, order: list[str], *, kills: int, rng: random.Random, clean: Run | None, seed: int,
          fraction: float, timeout_s: float, deadline: float) -> None:
    """Every phase in order; with ``clean`` given, each killed ``kills`` times and resumed."""
    log = run.folder / "phases.log"
    for phase in order:
        stats = run.stats[phase] = PhaseStats()
        if phase == "simulate":
            stats.attempts, stats.completed = 1, True
            run.cutover_rows_touched = simulate(run, seed, fraction)
            continue
        base = clean.stats[phase].work_s if clean is not None else 0.0
        stats.clean_work_s = base
        stats.clean_api_calls = clean.stats[phase].api_calls if clean is not None else 0
        planned = 0 if clean is None or phase in NOT_KILLED else kills
        while not stats.completed:
            if time.monotonic() > deadline:
                raise SoakTimeout(f"{run.name}: time is up in phase {phase}")
            if stats.attempts >= planned + EXTRA_ATTEMPTS:
                break
            kill_after = kill_at_calls = None
            if stats.kills < planned:
                # Less is left after each resume: the next kill comes earlier.
                shrink = 0.6 ** stats.kills
                clean_calls = clean.stats[phase].api_calls if clean is not None else 0
                if clean_calls >= 3:
                    # A phase that talks to Zoho dies after a random number of the calls it makes (the
                    # clean run's count), so the kill lands in its traffic, not in its start-up; a timer
                    # of three times its clean working time stops it if the calls never come.
                    kill_at_calls = rng.randint(1, max(1, int(clean_calls * 0.9 * shrink)))
                    kill_after = 3 * base + 1.0
                else:
                    kill_after = max(0.005, rng.uniform(0.05, 0.5) * base * shrink)
            attempt = run_attempt(phase, run.cfg_path, run.env, log, kill_after=kill_after, timeout_s=timeout_s,
                                  calls=_calls_counter(run.emulator), kill_at_calls=kill_at_calls)
            stats.attempts += 1
            stats.work_s += attempt.work_s
            stats.api_calls += attempt.api_calls
            if attempt.killed:
                stats.kills += 1
                stats.kill_calls.append(attempt.api_calls)
            elif attempt.hung:
                stats.hung += 1
            elif attempt.rc == 0:
                stats.completed = True
                if kill_after is not None:
                    stats.kills_missed += 1
            elif attempt.rc == 3:
                stats.incomplete += 1
            else:
                stats.crashes += 1
        if not stats.completed:
            raise PhaseFailed(f"{run.name}: phase {phase} did not complete in {stats.attempts} attempts "
                              f"({stats.crashes} crashes, {stats.incomplete} incomplete; see {log})")
        if phase in CHECKPOINT_AFTER:
            checkpoint(run, CHECKPOINT_AFTER[phase])


class SoakTimeout(RuntimeError):
    pass


class PhaseFailed(RuntimeError):
    pass


# -- comparison ----------------------------------------------------------------------------------


def _index(snapshot: dict[str, Any], source_field: str) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Zoho id -> our key for every keyed record, and the module of every record id."""
    keys: dict[str, str] = {}
    modules: dict[str, tuple[str, str]] = {}
    for module, records in snapshot.get("modules", {}).items():
        for record in records:
            rid = str(record.get("id"))
            modules[rid] = (module, rid)
            if record.get(source_field):
                keys[rid] = str(record[source_field])
    return keys, modules


def _normal(value: Any, keys: dict[str, str]) -> Any:
    """A value with record ids replaced by the key of the record they point to."""
    if isinstance(value, dict):
        if "id" in value:
            target = str(value["id"])
            if target in keys:
                return {"ref": keys[target]}
            return {k: _normal(v, keys) for k, v in sorted(value.items()) if k != "id"}
        return {k: _normal(v, keys) for k, v in sorted(value.items()) if k not in SYSTEM_FIELDS}
    if isinstance(value, list):
        return [_normal(v, keys) for v in value]
    return value


def _parent_key(record: dict[str, Any], keys: dict[str, str]) -> str:
    for name in ("Parent_Id", "$parent_id", "parent_id"):
        parent = record.get(name)
        if isinstance(parent, dict) and "id" in parent:
            return keys.get(str(parent["id"]), f"?{parent.get('module', '')}")
        if isinstance(parent, str):
            return keys.get(parent, "?")
    return "?"


def record_key(module: str, record: dict[str, Any], keys: dict[str, str], source_field: str) -> str:
    if record.get(source_field):
        return str(record[source_field])
    parent = _parent_key(record, keys)
    if module == "Notes":
        return f"{parent}|note|{record.get('Note_Title')}|{_digest(record.get('Note_Content'))}"
    if module == "Attachments":
        return f"{parent}|file|{record.get('File_Name')}|{record.get('Size')}"
    return f"{parent}|{module}|{_digest(json.dumps(_normal(record, keys), sort_keys=True, default=str))}"


def _digest(text: Any) -> str:
    import hashlib

    # Keys go into the report: a note's content is patient data, its digest is not.
    return hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:16]


def keyed_records(snapshot: dict[str, Any], source_field: str) -> dict[str, dict[str, list[str]]]:
    """``{module: {key: [normalised record as JSON, ...]}}``."""
    keys, _ = _index(snapshot, source_field)
    out: dict[str, dict[str, list[str]]] = {}
    for module, records in snapshot.get("modules", {}).items():
        by_key = out.setdefault(module, {})
        for record in records:
            # An empty list, null and an absent field all read as "no rows" in Zoho (a subform, a
            # multi-select): which one a record holds follows whether our upsert found it existing (an
            # update sends [] to clear old rows) rather than what it holds, so they compare equal; any
            # row still counts.
            values = {k: _normal(v, keys) for k, v in record.items()
                      if k not in SYSTEM_FIELDS and not k.startswith("$") and v is not None and v != []}
            by_key.setdefault(record_key(module, record, keys, source_field), []).append(
                json.dumps(values, sort_keys=True, default=str))
    return out


def _field_diff(clean: str, faulty: str) -> list[str]:
    a, b = json.loads(clean), json.loads(faulty)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def compare(clean: dict[str, Any], faulty: dict[str, Any], source_field: str, examples: int = 10) -> dict[str, Any]:
    """Record by record; examples name keys and fields, never values."""
    a, b = keyed_records(clean, source_field), keyed_records(faulty, source_field)
    totals = Counter[str]()
    field_counts = Counter[str]()  # module.field -> records differing in it
    per_module: dict[str, dict[str, int]] = {}
    shown: dict[str, list[str]] = {"lost": [], "duplicated": [], "extra": [], "differing": []}
    for module in sorted(set(a) | set(b)):
        ca, cb = a.get(module, {}), b.get(module, {})
        counts = Counter[str]()
        for key in sorted(set(ca) | set(cb)):
            va, vb = ca.get(key, []), cb.get(key, [])
            counts["compared"] += len(va)
            if not vb:
                counts["lost"] += len(va)
                kind = "lost"
            elif not va:
                counts["extra"] += len(vb)
                kind = "extra"
            elif len(vb) > len(va):
                counts["duplicated"] += len(vb) - len(va)
                kind = "duplicated"
            elif len(vb) < len(va):
                counts["lost"] += len(va) - len(vb)
                kind = "lost"
            elif sorted(va) != sorted(vb):
                differing = sum(1 for x, y in zip(sorted(va), sorted(vb)) if x != y)
                counts["differing"] += differing
                fields = _field_diff(sorted(va)[0], sorted(vb)[0]) if len(va) == 1 else ["(several records)"]
                field_counts.update(f"{module}.{name}" for name in fields)
                kind = "differing"
                if len(shown[kind]) < examples:
                    shown[kind].append(f"{module} {key}: {', '.join(fields)}")
                continue
            else:
                continue
            if len(shown[kind]) < examples:
                shown[kind].append(f"{module} {key}")
        per_module[module] = {k: counts[k] for k in ("compared", "lost", "duplicated", "extra", "differing")}
        totals.update(counts)
    return {"totals": {k: totals[k] for k in ("compared", "lost", "duplicated", "extra", "differing")},
            "by_module": per_module, "differing_fields": dict(sorted(field_counts.items())),
            "examples": {k: v for k, v in shown.items() if v}}


def ledger_verify(run: Run) -> dict[str, Any]:
    cfg = json.loads(run.cfg_path.read_text(encoding="utf-8"))
    proc = subprocess.run([sys.executable, "-m", "dentrix_zoho.cli", "ledger", "--url", cfg["ledger_url"], "verify"],
                          cwd=REPO_ROOT, env=run.env, capture_output=True, text=True, timeout=300)
    return {"ok": proc.returncode == 0, "output": (proc.stdout + proc.stderr).strip().splitlines()[-1:]}


# -- the report ------------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Fault soak: {report['size']} (seed {report['seed']}, {report['kills_per_phase']} kill(s) a phase)",
             "", f"Faults: `{report['faults']}`; {report['seconds']:.0f} s in all; verdict: **{report['verdict']}**", ""]
    lines += ["| phase | attempts | kills | API calls before each kill | missed | incomplete | crashes | "
              "clean calls | faulty calls | clean s | faulty s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in report["phases"].items():
        lines.append(f"| {name} | {s['attempts']} | {s['kills']} | {', '.join(map(str, s['kill_calls'])) or '-'} | "
                     f"{s['kills_missed']} | {s['incomplete']} | {s['crashes']} | {s['clean_api_calls']} | "
                     f"{s['api_calls']} | {s['clean_work_s']:.2f} | {s['work_s']:.2f} |")
    lines += ["", "| checkpoint | compared | lost | duplicated | extra | differing |", "|---|---|---|---|---|---|"]
    for name, c in report["comparison"].items():
        t = c["totals"]
        lines.append(f"| {name} | {t['compared']} | {t['lost']} | {t['duplicated']} | {t['extra']} | {t['differing']} |")
    for name, c in report["comparison"].items():
        for kind, examples in c.get("examples", {}).items():
            lines += ["", f"{name}, {kind} (first {len(examples)}):", *[f"- {e}" for e in examples]]
    lines += ["", f"Runs: {json.dumps(report.get('runs', {}))}; kills: {report.get('kills', 0)}; "
              f"rows the cutover day touched: {json.dumps(report.get('cutover_rows_touched', {}))}"]
    accounting = ", ".join(f"{run} {name} {'ok' if c['passed'] else 'FAILED'}"
                           for run, checks in report["accounting"].items() for name, c in checks.items())
    lines += ["", f"Accounting (every shaped row loaded, quarantined or skipped): {accounting or '-'}",
              f"Ledger chain: clean {report['ledger_verify']['clean']['ok']}, faulty {report['ledger_verify']['faulty']['ok']}",
              f"Faults injected: {json.dumps(report['faults_injected'], sort_keys=True)}",
              f"API calls: clean {report['api_calls']['clean']}, faulty {report['api_calls']['faulty']}"]
    if report.get("error"):
        lines += ["", f"Stopped: {report['error']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=1, help="seeds the practice, the kill points and the faults")
    parser.add_argument("--kills", type=int, default=1, help="SIGKILLs per phase (each followed by a resume)")
    parser.add_argument("--faults", default=DEFAULT_FAULTS)
    parser.add_argument("--change-fraction", type=float, default=None,
                        help="share of rows the cutover day touches (default 0.05 small, 0.01 office)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder (default $DENTRIX_ZOHO_HOME/soak/<size>-<seed>-<time>)")
    parser.add_argument("--max-minutes", type=float, default=None, help="give up after this long (default 15 small, 120 office)")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("DENTRIX_ZOHO_HOME") or REPO_ROOT / ".dentrix_zoho")
    out = (args.out or home / "soak" / f"{args.size}-{args.seed}-{dt.datetime.now():%Y%m%d-%H%M%S}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    if os.environ.get(SNAPSHOT_VAR) != str(out / "src"):
        _run_from_snapshot(out, argv if argv is not None else sys.argv[1:])
    started = time.monotonic()
    deadline = started + 60 * (args.max_minutes or (15 if args.size == "small" else 120))
    # SIGTERM (a test's timeout, Ctrl-C's cousin) still stops the children and both emulators.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    fraction = args.change_fraction if args.change_fraction is not None else (0.05 if args.size == "small" else 0.01)
    try:
        return _soak(args, out, fraction, started, deadline)
    finally:
        kill_children()


def _run_from_snapshot(out: Path, argv: list[str]) -> None:
    """Carry on in a copy of the source tree taken now (``<out>/src``): colleagues' edits made while the soak
    runs (a mapping spec changed halfway voids its approval) must not change the code under test."""
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("dentrix_zoho", "mapping_specs", "bench"):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=ignore)
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0", **{SNAPSHOT_VAR: str(src)})
    rest, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--out="):
            skip = False
            continue
        if arg == "--out":
            skip = True
            continue
        rest.append(arg)
    os.chdir(src)
    os.execve(sys.executable, [sys.executable, "-m", "bench.soak", *rest, "--out", str(out)], env)


def _soak(args: argparse.Namespace, out: Path, fraction: float, started: float, deadline: float) -> int:
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    timeout_s = ATTEMPT_TIMEOUT_S[args.size]
    print(f"fault soak: {args.size} practice, seed {args.seed}, {args.kills} kill(s) a phase, faults {args.faults}; "
          f"folder {out}", flush=True)
    practice, images, provider_map, users = prepare_practice(out, SCALES[args.size], args.seed)
    order = phases()
    rng = random.Random(f"soak:{args.seed}")
    emulator_args = ["--users-file", str(users), "--token-mint-limit", "0"]
    for name in ("clean", "faulty"):
        if (out / name).exists():
            shutil.rmtree(out / name)  # a previous soak's ledger, staging or Zoho state must not leak into this one
    report: dict[str, Any] = {"size": args.size, "seed": args.seed, "kills_per_phase": args.kills,
                              "faults": args.faults, "phases": {}, "comparison": {}, "accounting": {},
                              "ledger_verify": {"clean": {"ok": None}, "faulty": {"ok": None}},
                              "faults_injected": {}, "api_calls": {}, "error": None}
    with running_emulator(out / "clean" / "zoho", users=1, latency_ms=LATENCY_MS, extra_args=emulator_args) as clean_emu, \
         running_emulator(out / "faulty" / "zoho", users=1, latency_ms=LATENCY_MS, faults=args.faults,
                          seed=args.seed, extra_args=emulator_args) as faulty_emu:
        clean = make_run("clean", out, practice, images, provider_map, clean_emu)
        faulty = make_run("faulty", out, practice, images, provider_map, faulty_emu)
        try:
            t0 = time.monotonic()
            drive(clean, order, kills=0, rng=rng, clean=None, seed=args.seed, fraction=fraction,
                  timeout_s=timeout_s, deadline=deadline)
            print(f"clean run: {time.monotonic() - t0:.0f}s", flush=True)
            t0 = time.monotonic()
            drive(faulty, order, kills=args.kills, rng=rng, clean=clean, seed=args.seed, fraction=fraction,
                  timeout_s=timeout_s, deadline=deadline)
            print(f"faulty run: {time.monotonic() - t0:.0f}s", flush=True)
        except (SoakTimeout, PhaseFailed) as exc:
            report["error"] = str(exc)
        source_field = _source_field(clean)
        for name in ("after_load", "after_delta", "final"):
            if name in clean.snapshots and name in faulty.snapshots:
                report["comparison"][name] = compare(clean.snapshots[name], faulty.snapshots[name], source_field)
        report["accounting"] = {"clean": clean.accounting, "faulty": faulty.accounting}
        report["ledger_verify"] = {"clean": ledger_verify(clean), "faulty": ledger_verify(faulty)}
        report["faults_injected"] = faulty_emu.usage().get("faults_injected", {})
        report["api_calls"] = {"clean": clean_emu.usage().get("calls_total"), "faulty": faulty_emu.usage().get("calls_total")}
    report["phases"] = {name: s.as_dict() for name, s in faulty.stats.items()}
    report["runs"] = {"clean": 1, "faulty": 1, "child_processes": sum(s.attempts for s in faulty.stats.values())
                      + sum(s.attempts for s in clean.stats.values())}
    report["kills"] = sum(s.kills for s in faulty.stats.values())
    report["cutover_rows_touched"] = {"clean": clean.cutover_rows_touched, "faulty": faulty.cutover_rows_touched}
    report["seconds"] = time.monotonic() - started
    failures = _failures(report)
    report["verdict"] = "PASS" if not failures else "FAIL: " + "; ".join(failures)
    (out / "soak_report.json").write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    markdown = render_markdown(report)
    (out / "soak_report.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"report: {out / 'soak_report.md'}")
    return 0 if not failures else 1


def _source_field(run: Run) -> str:
    from dentrix_zoho.load import SchemaResult

    path = Path(json.loads(run.cfg_path.read_text(encoding="utf-8"))["home"]) / "zoho_schema.json"
    if not path.exists():
        return "Source_System_ID"
    schema = SchemaResult(**json.loads(path.read_text(encoding="utf-8")))
    return schema.source_id_field("Contacts")


def _failures(report: dict[str, Any]) -> list[str]:
    failures = []
    if report["error"]:
        failures.append(report["error"])
    for name, c in report["comparison"].items():
        bad = {k: v for k, v in c["totals"].items() if k != "compared" and v}
        if bad:
            failures.append(f"{name}: " + ", ".join(f"{v} {k}" for k, v in bad.items()))
    if len(report["comparison"]) < 3:
        failures.append("not every checkpoint was compared")
    for name, check in report["accounting"].get("faulty", {}).items():
        clean_passed = report["accounting"].get("clean", {}).get(name, {}).get("passed")
        if not check["passed"] and clean_passed:
            failures.append(f"accounting {name} failed in the faulty run")
    for name, verdict in report["ledger_verify"].items():
        if not verdict["ok"]:
            failures.append(f"ledger verify ({name}) failed")
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
