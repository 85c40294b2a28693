"""A dental group on one machine: synthetic offices, PostgreSQL, one emulator, the real daemon and backfills.

Shared by the end-to-end test (``test_offices_through_daemon.py``) and the benchmark
(``bench/bench_offices.py``), so both drive the project exactly as deploy/README.md says an operator
does: the shipped ``deploy/local/dagster.yaml`` in ``$DAGSTER_HOME``, Dagster's storage, the ledger and
the org's shared limits (``ZOHO_ORG_LIMITS_URL``) in three databases of one PostgreSQL server,
``dagster-daemon run`` on the project's real definitions (``dentrix_zoho.definitions`` with an offices
file), and ``dagster job backfill`` to queue one run per office partition.

Passwords: the database URLs handed to the runs carry none (libpq reads ``PGPASSWORD``), so a log or
an event that shows a URL shows no secret; ``DAGSTER_PG_PASSWORD`` is what the instance file reads.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text

from dentrix_zoho_tests.instance.conftest import LOCAL_YAML, dagster_pg_env
from dentrix_zoho_tests.instance.daemon import daemon_process, log_tail, venv_binary
from dentrix_zoho_tests.pg_server import PgServer

REPO = Path(__file__).resolve().parents[2]
DEFINITIONS_MODULE = "dentrix_zoho.definitions"
OWNER = "office.manager@dental.example.com"
AS_OF = date(2026, 11, 1)
ORG = "dso-org"
PARTITION_TAG = "dagster/partition"
BACKFILL_TAG = "dagster/backfill"
# Variables of the developer's shell that would point the runs at another office, ledger or org.
CLEARED_VARS = ("DENTRIX_SOURCE", "DENTRIX_OFFICE_ID", "DENTRIX_IMAGE_DIR", "DENTRIX_PROVIDER_MAP", "ZOHO_DC",
                "ZOHO_USERS", "ZOHO_MAX_CONCURRENCY", "ZOHO_POOL_SLOTS", "ZOHO_CALLS_PER_MINUTE",
                "ZOHO_ON_BUDGET_EXHAUSTED", "ZOHO_ORG_CREDIT_RESERVE", "ZOHO_LATENCY_MS", "DENTRIX_CROSS_OFFICE_POLICY")
# Zoho modules whose records carry Source_System_ID (upserted on it); Notes and Attachments do not.
KEYED_MODULES = ("Contacts", "Leads", "Events", "Tasks", "Calls")


@dataclass(frozen=True)
class OfficeSpec:
    office_id: str
    number: int  # the synthetic practice's office number (its own practice definitions)
    seed: int


def office_specs(count: int, *, first_seed: int = 101) -> list[OfficeSpec]:
    """``count`` offices ``o01``, ``o02`` ... each a different practice (seed) and office number."""
    return [OfficeSpec(f"o{i + 1:02d}", i + 1, first_seed + i) for i in range(count)]


def write_offices(base: Path, offices: Sequence[OfficeSpec], *, scale: str = "tiny") -> tuple[Path, Path]:
    """Generate each office's synthetic Dentrix and write the offices file and the emulator's users file.

    Returns (offices file, users file). Each office's provider map gets the default owner, and every
    e-mail of every map becomes a Zoho user, so owner resolution finds everyone."""
    from dentrix_zoho.source.synthetic import PracticeFiles, generate_practice

    base.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    emails = {OWNER}
    for office in offices:
        db = base / f"{office.office_id}.db"
        generate_practice(db, scale=scale, seed=office.seed, as_of=AS_OF, office=office.number)  # type: ignore[arg-type]
        files = PracticeFiles(db)
        providers = yaml.safe_load(files.provider_map.read_text(encoding="utf-8"))
        providers["default_owner_email"] = OWNER
        provider_map = base / f"{office.office_id}_providers.yaml"
        provider_map.write_text(yaml.safe_dump(providers), encoding="utf-8")
        emails |= {e for e in providers["providers"].values() if e}
        entries[office.office_id] = {"dentrix": {"url": f"sqlite:///{db}"}, "image_dir": str(files.images_dir),
                                     "provider_map": str(provider_map), "time_zone": "America/Chicago"}
    offices_file = base / "offices.yaml"
    offices_file.write_text(yaml.safe_dump({"offices": entries}, sort_keys=False), encoding="utf-8")
    users = base / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [{"first_name": "User", "last_name": str(i), "email": e}
                                               for i, e in enumerate(sorted(emails))]}), encoding="utf-8")
    return offices_file, users


@dataclass(frozen=True)
class DsoDatabases:
    """Three databases of one server; ``*_url`` without the password (the runs' view), ``admin_*`` with it."""

    server: PgServer
    dagster: str
    ledger: str
    limits: str

    @classmethod
    def create(cls, server: PgServer) -> DsoDatabases:
        return cls(server, server.create_database("dagster"), server.create_database("dentrix_ledger"),
                   server.create_database("zoho_org_limits"))

    @staticmethod
    def _bare(url: str) -> str:
        return re.sub(r"://([^:@/]+):[^@]*@", r"://\1@", url)

    @property
    def ledger_url(self) -> str:
        return self._bare(self.ledger)

    @property
    def limits_url(self) -> str:
        return self._bare(self.limits)


def dso_env(*, home: Path, dagster_home: Path, offices_file: Path, emulator: Any, databases: DsoDatabases,
            lease_seconds: float = 5.0, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the daemon (and so of its code server and every run) and of the CLI commands."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARS}
    env.update(dagster_pg_env(databases.dagster))
    env.update({
        "DAGSTER_HOME": str(dagster_home),
        "PGPASSWORD": databases.server.password,
        "DENTRIX_ZOHO_HOME": str(home),
        "DENTRIX_OFFICES_FILE": str(offices_file),
        "DENTRIX_AS_OF": AS_OF.isoformat(),
        "DENTRIX_ZOHO_LEDGER_URL": databases.ledger_url,
        "ZOHO_ORG_LIMITS_URL": databases.limits_url,
        "ZOHO_ORG_LEASE_SECONDS": str(lease_seconds),
        "ZOHO_ORG": ORG,
        "ZOHO_EDITION": "enterprise",
        "ZOHO_API_BASE": emulator.base_url,
        "ZOHO_ACCOUNTS_URL": emulator.base_url,
        "ZOHO_UPLOAD_URL": emulator.base_url,
        "ZOHO_CLIENT_ID": emulator.client_id,
        "ZOHO_CLIENT_SECRET": emulator.client_secret,
        "ZOHO_REFRESH_TOKEN": emulator.refresh_token,
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


def make_dagster_home(folder: Path) -> Path:
    """$DAGSTER_HOME as deploy/README.md sets it up: the shipped local instance file, nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(LOCAL_YAML, folder / "dagster.yaml")
    return folder


def max_concurrent_runs() -> int:
    """The shipped instance file's limit on runs in progress."""
    return int(yaml.safe_load(LOCAL_YAML.read_text())["concurrency"]["runs"]["max_concurrent_runs"])


def zoho_pool() -> str:
    """The pool every Zoho-calling asset declares for ``ORG`` (as ``zoho_pool_name_from_env`` names it)."""
    from dentrix_zoho.defs.zoho_resource import zoho_pool_name_from_env

    return zoho_pool_name_from_env({"ZOHO_ORG": ORG})


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` as this process's environment for the block (DagsterInstance.from_config reads DAGSTER_PG_*)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def project_daemon(env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run -m dentrix_zoho.definitions` on the instance in ``env``'s DAGSTER_HOME
    (``daemon.daemon_process``: ended with whatever it started)."""
    with daemon_process(["run", "-m", DEFINITIONS_MODULE, "--working-directory", str(REPO)], env, log,
                        cwd=REPO) as proc:
        yield proc


def cli(env: Mapping[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command of this environment (``dagster ...``, ``dentrix-zoho ...``), run in the repository."""
    done = subprocess.run([venv_binary(args[0]), *args[1:]], env=dict(env), cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args[:3])} ... exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def request_backfill(env: Mapping[str, str], partitions: Iterable[str], job: str = "full_migration") -> str:
    """One backfill of ``job`` over the office partitions, as the UI's *Launch backfill* asks for it: a
    requested backfill that the daemon's backfill loop turns into queued runs and keeps open until they
    end (so the daemon's run retries apply to its runs); the backfill id.

    Not ``dagster job backfill``: that command submits the runs itself and marks the backfill completed
    at once, and the daemon never retries a run of a completed backfill."""
    import dagster as dg
    from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemotePartitionSetOrigin, RemoteRepositoryOrigin
    from dagster._core.remote_representation.external_data import partition_set_snap_name_for_job_name
    from dagster._core.utils import make_new_backfill_id
    from dagster._time import get_current_timestamp

    # The daemon finds the code location by name: `-m dentrix_zoho.definitions` names it after the module.
    origin = RemotePartitionSetOrigin(
        repository_origin=RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(DEFINITIONS_MODULE),
                                                 SINGLETON_REPOSITORY_NAME),
        partition_set_name=partition_set_snap_name_for_job_name(job),
    )
    backfill = PartitionBackfill(
        backfill_id=make_new_backfill_id(), partition_set_origin=origin, status=BulkActionStatus.REQUESTED,
        partition_names=list(partitions), from_failure=False, reexecution_steps=None, tags={},
        backfill_timestamp=get_current_timestamp(),
    )
    with environment(env), dg.DagsterInstance.get() as instance:
        instance.add_backfill(backfill)
    return backfill.backfill_id


def backfill_status(env: Mapping[str, str], backfill_id: str) -> str:
    import dagster as dg

    with environment(env), dg.DagsterInstance.get() as instance:
        backfill = instance.get_backfill(backfill_id)
        return "missing" if backfill is None else backfill.status.value


def prepare_instance(env: Mapping[str, str], office_ids: Sequence[str], pool_slots: int) -> None:
    """What an operator does once per instance: the offices' partitions (the offices sensor would add them
    within a minute) and the org pool's limit (deploy/README.md: as wide as max_concurrent_runs with the
    shared limiter)."""
    import dagster as dg

    with environment(env), dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("offices", list(office_ids))
        instance.event_log_storage.set_concurrency_slots(zoho_pool(), pool_slots)


def approve_map(ledger_admin_url: str) -> None:
    """The map approval the full job's blocking gate asks for (one approval of the spec covers every office)."""
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.mapping import approve_spec

    with Ledger(ledger_admin_url) as ledger:
        approve_spec(ledger, "dso-test")


# -- watching the runs --------------------------------------------------------------------------------


def runs_of(instance: Any, backfill_id: str | None = None) -> list[Any]:
    """Runs, oldest first: of one backfill and the retries the daemon made of them, or all."""
    records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
    runs = [r.dagster_run for r in records]
    if backfill_id is None:
        return runs
    ids = {r.run_id for r in runs if r.tags.get(BACKFILL_TAG) == backfill_id}
    return [r for r in runs if r.run_id in ids or r.root_run_id in ids]


def wait_for(condition: Callable[[], bool], what: str, log: Path, bound_seconds: float = 600,
             every: float = 0.5) -> None:
    """Poll until ``condition`` holds; the bound only stops a broken run, it measures nothing."""
    deadline = time.monotonic() + bound_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}; daemon log:\n{log_tail(log)}")
        time.sleep(every)


def run_pid(instance: Any, run_id: str) -> int | None:
    """The run's own process, from the engine event its code server wrote when it started it."""
    import dagster as dg

    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event is not None else None
        if data is not None and "pid" in (data.metadata or {}) and "Started process for run" in (event.message or ""):
            return int(str(data.metadata["pid"].value))
    return None


def failed_steps(instance: Any, run_id: str) -> list[str]:
    import dagster as dg

    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    return [f"{r.event_log_entry.step_key}: {r.event_log_entry.dagster_event.event_specific_data.error.message[:300]}"
            for r in records]


# -- what Zoho and the ledger hold ------------------------------------------------------------------


def records_by_source_id(snapshot: Mapping[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every record of the org that carries a Source_System_ID, by that id: (module, record) each."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for module, records in snapshot["modules"].items():
        for record in records:
            key = next((v for k, v in record.items() if k.startswith("Source_System_ID") and v), None)
            if key:
                found.setdefault(str(key), []).append((module, record))
    return found


def office_records(snapshot: Mapping[str, Any], office_id: str) -> dict[str, dict[str, Any]]:
    """The office's records with a Source_System_ID (prefix ``<office>:``), by that id (each must be one)."""
    return {k: v[0][1] for k, v in records_by_source_id(snapshot).items() if k.startswith(f"{office_id}:")}


def duplicates(snapshot: Mapping[str, Any]) -> dict[str, int]:
    """Source_System_IDs held by more than one record."""
    return {k: len(v) for k, v in records_by_source_id(snapshot).items() if len(v) > 1}


def module_counts(snapshot: Mapping[str, Any]) -> Counter[str]:
    return Counter({m: len(records) for m, records in snapshot["modules"].items() if m != "users"})


def live_crosswalk(ledger_admin_url: str) -> dict[str, Counter[str]]:
    """Live crosswalk rows (what the ledger says is ours in Zoho) per office, per module."""
    engine = create_engine(ledger_admin_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT office_id, zoho_module, count(*) FROM crosswalk WHERE NOT deleted "
                "GROUP BY office_id, zoho_module")).all()
    finally:
        engine.dispose()
    out: dict[str, Counter[str]] = {}
    for office, module, n in rows:
        out.setdefault(str(office), Counter())[str(module)] = int(n)
    return out


def ledger_credits_by_run(ledger_admin_url: str) -> dict[str, int]:
    """Credits each run's clients recorded, call by call, in the ledger's api_calls."""
    engine = create_engine(ledger_admin_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT run_id, COALESCE(SUM(credits), 0) FROM api_calls GROUP BY run_id")).all()
    finally:
        engine.dispose()
    return {str(run): int(n) for run, n in rows}


def ledger_calls(ledger_admin_url: str) -> tuple[int, float | None, float | None]:
    """Calls in api_calls that went to the API (not the token endpoint), and the first and last call times."""
    engine = create_engine(ledger_admin_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT time, latency_ms FROM api_calls WHERE path_template NOT LIKE '%oauth%'")).all()
    finally:
        engine.dispose()
    from datetime import datetime

    stamps = [datetime.fromisoformat(str(t)).timestamp() for t, _ in rows]
    ends = [s + (lat or 0) / 1000 for s, (_, lat) in zip(stamps, rows)]
    return len(rows), (min(stamps) if stamps else None), (max(ends) if ends else None)


def org_credits(limits_admin_url: str, org: str = ORG) -> int:
    """The org's shared credit count: what every process added to zoho_org_credits."""
    engine = create_engine(limits_admin_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COALESCE(SUM(credits), 0) FROM zoho_org_credits WHERE org = :org"),
                                    {"org": "".join(ch if ch.isalnum() else "_" for ch in org.lower())}).scalar_one())
    finally:
        engine.dispose()


def writes_of_run(ledger_admin_url: str, run_id: str) -> int:
    """Records the run has written so far by the ledger (audit entries other than intents)."""
    engine = create_engine(ledger_admin_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM audit_log WHERE run_id = :run AND operation <> 'send_intent' "
                "AND outcome = 'ok'"), {"run": run_id}).scalar_one())
    finally:
        engine.dispose()


def check_results(instance: Any, run_id: str) -> dict[str, bool]:
    """The run's asset check evaluations, by check name (each office run evaluates its own partition's)."""
    import dagster as dg

    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    out: dict[str, bool] = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        out[evaluation.check_name] = out.get(evaluation.check_name, True) and bool(evaluation.passed)
    return out
