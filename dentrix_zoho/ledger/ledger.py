"""The migration ledger: crosswalk, audit chain, pre-images, quarantine, approvals.

One ``Ledger`` per process is enough; it is safe to share between threads.
Every write that reads before it writes runs in a transaction that holds the
write lock from the start (BEGIN IMMEDIATE on SQLite, a row lock on the chain
tip for the audit log), so two processes appending to one ledger keep the
chain intact.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from dentrix_zoho.ledger import schema as s
from dentrix_zoho.ledger.chain import GENESIS_HASH, entry_hash, verify_rows
from dentrix_zoho.ledger.engine import make_ledger_engine, mask_url, sqlite_url_for, write_locked
from dentrix_zoho.ledger.models import (
    RUN_KINDS,
    RUN_STATUSES,
    Approval,
    AuditEntry,
    ChainReport,
    CrosswalkConflict,
    CrosswalkRow,
    CrosswalkWrite,
    LedgerError,
    PreImageRef,
    QuarantineRow,
    RunRow,
    RunSummary,
)
from dentrix_zoho.ledger.shared import SharedContacts

log = logging.getLogger(__name__)

# Bound parameters per IN (...) list: well under SQLite's and PostgreSQL's limits.
IN_CHUNK = 500
# Above this many hashes, one scan of the (office, object) slice beats chunked IN.
SCAN_THRESHOLD = 5_000
# Audit operation of a write about to go out, committed before the call: a resume learns from it
# that the write may have landed although the ledger never heard the answer.
INTENT_OPERATION = "send_intent"

_Row = TypeVar("_Row")

_API_CALL_KEYS = (
    "method",
    "path_template",
    "module",
    "record_count",
    "http_status",
    "credits",
    "outcome",
)


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _from_row(cls: type[_Row], row: Any) -> _Row:
    """A value object from a result row, taking the columns it names."""
    values = row._mapping
    return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})  # type: ignore[arg-type]


class Ledger(SharedContacts):
    """The system of record for one migration (one or many offices).

    Contacts several offices share (cross-office policy ``merge``): ``ledger/shared.py``.
    """

    def __init__(self, url: str, *, clock: Callable[[], datetime] | None = None) -> None:
        self.url = url
        self.engine = make_ledger_engine(url)
        self._clock = clock or (lambda: datetime.now(UTC))
        # Threads of one process queue here; processes queue on the database lock.
        self._audit_lock = threading.Lock()
        self._create_schema()

    @classmethod
    def for_home(cls, home: Path) -> Ledger:
        home.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_url_for(home / "ledger.sqlite"))

    def __repr__(self) -> str:
        return f"Ledger({mask_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="microseconds")

    # -- schema -------------------------------------------------------------

    def _create_schema(self) -> None:
        for attempt in (1, 2):
            try:
                with write_locked(self.engine) as conn:
                    s.metadata.create_all(conn, checkfirst=True)
                    self._seed(conn)
                return
            except (OperationalError, ProgrammingError, IntegrityError):
                # Two processes creating the schema at once on PostgreSQL: the
                # loser sees "already exists"; the second pass finds it there.
                if attempt == 2:
                    raise

    def _seed(self, conn: Connection) -> None:
        # FOR UPDATE (PostgreSQL): two processes opening an old ledger at once upgrade it one after the
        # other, the second reading the version the first wrote.
        version = conn.execute(
            select(s.ledger_meta.c.value).where(s.ledger_meta.c.key == "schema_version").with_for_update()
        ).scalar()
        if version is None:
            conn.execute(insert(s.ledger_meta).values(key="schema_version", value=str(s.SCHEMA_VERSION)))
        elif int(version) > s.SCHEMA_VERSION:
            raise LedgerError(f"ledger schema version {version} is newer than this code ({s.SCHEMA_VERSION})")
        elif int(version) < s.SCHEMA_VERSION:
            # New tables: create_all has just made them in this transaction; new columns: upgrade.
            s.upgrade(conn, int(version))
            conn.execute(
                update(s.ledger_meta)
                .where(s.ledger_meta.c.key == "schema_version")
                .values(value=str(s.SCHEMA_VERSION))
            )
        has_tip = conn.execute(select(s.audit_tip.c.id)).first() is not None
        has_entries = conn.execute(select(s.audit_log.c.seq).limit(1)).first() is not None
        if not has_tip and not has_entries:
            conn.execute(insert(s.audit_tip).values(id=1, last_seq=0, last_hash=GENESIS_HASH))

    # -- runs ---------------------------------------------------------------

    def start_run(
        self,
        kind: str,
        office_id: str,
        spec_hash: str | None = None,
        run_id: str | None = None,
        notes: str | None = None,
    ) -> str:
        """Register a run; starting an existing run id again resumes it."""
        if kind not in RUN_KINDS:
            raise LedgerError(f"run kind must be one of {sorted(RUN_KINDS)}, got {kind!r}")
        run_id = run_id or uuid.uuid4().hex
        with write_locked(self.engine) as conn:
            existing = conn.execute(select(s.runs).where(s.runs.c.run_id == run_id)).first()
            if existing is None:
                conn.execute(
                    insert(s.runs).values(
                        run_id=run_id,
                        kind=kind,
                        office_id=office_id,
                        started_at=self.now(),
                        status="running",
                        spec_hash=spec_hash,
                        notes=notes,
                    )
                )
            elif existing.kind != kind or existing.office_id != office_id:
                raise LedgerError(f"run {run_id} exists as kind {existing.kind!r} for office {existing.office_id!r}")
            else:
                conn.execute(update(s.runs).where(s.runs.c.run_id == run_id).values(status="running", finished_at=None))
        return run_id

    def finish_run(self, run_id: str, status: str, notes: str | None = None) -> None:
        if status not in RUN_STATUSES or status == "running":
            raise LedgerError(f"a finished run's status is succeeded, failed or stopped, not {status!r}")
        values: dict[str, Any] = {"status": status, "finished_at": self.now()}
        if notes is not None:
            values["notes"] = notes
        with write_locked(self.engine) as conn:
            result = conn.execute(update(s.runs).where(s.runs.c.run_id == run_id).values(**values))
            if result.rowcount == 0:
                raise LedgerError(f"unknown run {run_id}")

    def run(self, run_id: str) -> RunRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.runs).where(s.runs.c.run_id == run_id)).first()
        return _from_row(RunRow, row) if row else None

    def runs(self, kind: str | None = None) -> list[RunRow]:
        query = select(s.runs).order_by(s.runs.c.started_at, s.runs.c.run_id)
        if kind is not None:
            query = query.where(s.runs.c.kind == kind)
        with self.engine.connect() as conn:
            return [_from_row(RunRow, row) for row in conn.execute(query)]

    # -- crosswalk ----------------------------------------------------------

    def record_write(
        self,
        run_id: str,
        office_id: str,
        source_object: str,
        source_id: str,
        module: str,
        zoho_id: str,
        row_hash: str | None,
        created: bool,
        zoho_modified_time: str | None,
        *,
        parent_module: str | None = None,
        parent_zoho_id: str | None = None,
    ) -> None:
        """Upsert one crosswalk row; raises CrosswalkConflict if another source owns zoho_id."""
        write = CrosswalkWrite(
            source_object=source_object,
            source_id=source_id,
            module=module,
            zoho_id=zoho_id,
            row_hash=row_hash,
            created=created,
            zoho_modified_time=zoho_modified_time,
            parent_module=parent_module,
            parent_zoho_id=parent_zoho_id,
        )
        conflicts = self.record_writes(run_id, office_id, [write])
        if conflicts:
            raise CrosswalkConflict(conflicts[0])

    def record_writes(self, run_id: str, office_id: str, writes: Iterable[CrosswalkWrite]) -> list[str]:
        """Upsert a batch in one transaction; returns a message per write refused.

        A write is refused when its Zoho record already belongs to another
        source record (an upsert that matched on e-mail merged two patients):
        the caller quarantines it. The creator of a record is kept across
        later updates; a new Zoho id for the same source starts a new history.
        """
        batch = list(writes)
        if not batch:
            return []
        with write_locked(self.engine) as conn:
            conflicts = self._record_writes(conn, run_id, office_id, batch, self.now())
        for message in conflicts:
            log.warning("crosswalk write refused: %s", message)
        return conflicts

    def _record_writes(
        self, conn: Connection, run_id: str, office_id: str, writes: Iterable[CrosswalkWrite], now: str
    ) -> list[str]:
        """``record_writes`` on the caller's transaction; returns the refusals (logged by the caller)."""
        latest: dict[tuple[str, str], CrosswalkWrite] = {}
        for write in writes:
            latest[(write.source_object, write.source_id)] = write
        if not latest:
            return []
        conflicts: list[str] = []
        existing = self._rows_by_source(conn, office_id, list(latest))
        owners = self._owners_by_zoho(conn, [(w.module, w.zoho_id) for w in latest.values()])
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        claimed: dict[tuple[str, str], tuple[str, str, str]] = {}
        for key, write in latest.items():
            zkey = (write.module, write.zoho_id)
            mine = existing.get(key)
            if mine is not None and not mine[1].deleted and mine[1].zoho_module != write.module:
                # One crosswalk row per source record: taking it over would lose the ledger's only
                # trace of the live record in the other module (rollback and the audit could not see it).
                conflicts.append(
                    f"{write.module} {write.zoho_id} would be a second record of a source row in Zoho as "
                    f"{mine[1].zoho_module} {mine[1].zoho_id}; refused for {key[0]} {key[1]}"
                )
                continue
            owner = claimed.get(zkey) or owners.get(zkey)
            if owner is not None and owner != (office_id, *key):
                conflicts.append(
                    f"{write.module} {write.zoho_id} already belongs to "
                    f"{owner[1]} {owner[2]} (office {owner[0]}); refused for {key[0]} {key[1]}"
                )
                continue
            claimed[zkey] = (office_id, *key)
            row = self._next_crosswalk_values(run_id, office_id, write, existing.get(key), now)
            (updates if "b_id" in row else inserts).append(row)
        if inserts:
            conn.execute(insert(s.crosswalk), inserts)
        if updates:
            # Bind names must differ from column names in an executemany UPDATE.
            columns = [name for name in updates[0] if name != "b_id"]
            conn.execute(
                update(s.crosswalk)
                .where(s.crosswalk.c.id == bindparam("b_id"))
                .values({name: bindparam(f"b_{name}") for name in columns}),
                [{f"b_{name}": row[name] for name in columns} | {"b_id": row["b_id"]} for row in updates],
            )
        return conflicts

    def record_batch(
        self,
        run_id: str,
        office_id: str,
        *,
        writes: Sequence[CrosswalkWrite] = (),
        audit: Sequence[AuditEntry] = (),
        quarantine: Sequence[QuarantineRow] = (),
        resolve: Iterable[tuple[str, str]] = (),
    ) -> list[str]:
        """What one batch leaves in the ledger, in one transaction: its crosswalk writes (refused as
        ``record_writes`` refuses them; the refusals are returned), its quarantine rows, the office's open
        quarantine rows of ``resolve`` (source_object, source_id) marked resolved, and its audit entries.

        A kill leaves all of it or none. The audit entries go last, so the chain tip (a row lock on
        PostgreSQL, which every office's runs queue on) is held for the least time.
        """
        resolving = list(dict.fromkeys(resolve))
        if not (writes or audit or quarantine or resolving):
            return []
        for entry in audit:
            entry.validate()
        for row in quarantine:
            row.validate()
        now = self.now()
        with self._audit_lock, write_locked(self.engine) as conn:
            conflicts = self._record_writes(conn, run_id, office_id, writes, now)
            if quarantine:
                self._insert_quarantine(conn, quarantine, now)
            if resolving:
                self._resolve_open(conn, office_id, resolving)
            if audit:
                self._append_audit(conn, audit)
        for message in conflicts:
            log.warning("crosswalk write refused: %s", message)
        return conflicts

    @staticmethod
    def _next_crosswalk_values(
        run_id: str,
        office_id: str,
        write: CrosswalkWrite,
        existing: tuple[int, CrosswalkRow] | None,
        now: str,
    ) -> dict[str, Any]:
        current = existing[1] if existing else None
        new_record = current is None or current.deleted or current.zoho_id != write.zoho_id
        creator = run_id if write.created else None
        values: dict[str, Any] = {
            "zoho_module": write.module,
            "zoho_id": write.zoho_id,
            "row_hash": write.row_hash,
            "last_run_id": run_id,
            "last_written_at": now,
            "zoho_modified_time": write.zoho_modified_time,
            "deleted": False,
            "deleted_by_run": None,
            "deleted_at": None,
        }
        if new_record:
            values["created_by_run"] = creator
            values["first_written_at"] = now
            values["parent_module"] = write.parent_module
            values["parent_zoho_id"] = write.parent_zoho_id
        else:
            assert current is not None
            values["created_by_run"] = current.created_by_run or creator
            values["first_written_at"] = current.first_written_at
            values["parent_module"] = write.parent_module or current.parent_module
            values["parent_zoho_id"] = write.parent_zoho_id or current.parent_zoho_id
        if current is None:
            values.update(office_id=office_id, source_object=write.source_object, source_id=write.source_id)
        else:
            assert existing is not None
            values["b_id"] = existing[0]
        return values

    def _rows_by_source(
        self, conn: Connection, office_id: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, CrosswalkRow]]:
        """Existing rows (with their surrogate key) for (source_object, source_id) keys."""
        by_object: dict[str, list[str]] = {}
        for source_object, source_id in keys:
            by_object.setdefault(source_object, []).append(source_id)
        found: dict[tuple[str, str], tuple[int, CrosswalkRow]] = {}
        for source_object, ids in by_object.items():
            for chunk in _chunks(ids):
                query = select(s.crosswalk).where(
                    s.crosswalk.c.office_id == office_id,
                    s.crosswalk.c.source_object == source_object,
                    s.crosswalk.c.source_id.in_(chunk),
                )
                for row in conn.execute(query):
                    found[(row.source_object, row.source_id)] = (row.id, _from_row(CrosswalkRow, row))
        return found

    def _owners_by_zoho(
        self, conn: Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, str, str]]:
        by_module: dict[str, list[str]] = {}
        for module, zoho_id in keys:
            by_module.setdefault(module, []).append(zoho_id)
        owners: dict[tuple[str, str], tuple[str, str, str]] = {}
        c = s.crosswalk.c
        for module, ids in by_module.items():
            for chunk in _chunks(ids):
                query = select(c.zoho_module, c.zoho_id, c.office_id, c.source_object, c.source_id).where(
                    c.zoho_module == module, c.zoho_id.in_(chunk)
                )
                for row in conn.execute(query):
                    owners[(row.zoho_module, row.zoho_id)] = (row.office_id, row.source_object, row.source_id)
        return owners

    def lookup(self, office_id: str, source_object: str, source_id: str) -> CrosswalkRow | None:
        """The crosswalk row, including a deleted one (check ``.deleted``)."""
        return self.lookup_many(office_id, source_object, [source_id]).get(source_id)

    def lookup_many(self, office_id: str, source_object: str, source_ids: Iterable[str]) -> dict[str, CrosswalkRow]:
        """Crosswalk rows by source id, as this office sees them: a record that joined a Contact another
        office created (policy ``merge``) reads as a row pointing at that Contact, and the Contact this
        office created reads as deleted once its rollback released it to the other offices."""
        keys = [(source_object, source_id) for source_id in dict.fromkeys(source_ids)]
        with self.engine.connect() as conn:
            rows = self._rows_by_source(conn, office_id, keys)
            found = {source_id: row for (_, source_id), (_, row) in rows.items()}
            found.update(self._shared_view(conn, office_id, source_object, found, [sid for _, sid in keys]))
        return found

    def zoho_id_for(self, office_id: str, source_object: str, source_id: str) -> str | None:
        """The live Zoho id for a source record; None if never written or rolled back."""
        row = self.lookup(office_id, source_object, source_id)
        return None if row is None or row.deleted else row.zoho_id

    def by_zoho_ids(self, module: str, zoho_ids: Iterable[str]) -> dict[str, CrosswalkRow]:
        ids = list(dict.fromkeys(zoho_ids))
        found: dict[str, CrosswalkRow] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids):
                query = select(s.crosswalk).where(s.crosswalk.c.zoho_module == module, s.crosswalk.c.zoho_id.in_(chunk))
                for row in conn.execute(query):
                    found[row.zoho_id] = _from_row(CrosswalkRow, row)
        return found

    def changed_rows(self, office_id: str, source_object: str, hashes: Mapping[str, str]) -> set[str]:
        """Source ids whose hash differs from the crosswalk, or that have no live row."""
        c = s.crosswalk.c
        stored: dict[str, str | None] = {}
        base = select(c.source_id, c.row_hash).where(
            c.office_id == office_id, c.source_object == source_object, c.deleted.is_(False)
        )
        with self.engine.connect() as conn:
            if len(hashes) > SCAN_THRESHOLD:
                result = conn.execution_options(yield_per=10_000).execute(base)
                for source_id, row_hash in result:
                    if source_id in hashes:
                        stored[source_id] = row_hash
            else:
                for chunk in _chunks(list(hashes)):
                    for source_id, row_hash in conn.execute(base.where(c.source_id.in_(chunk))):
                        stored[source_id] = row_hash
        return {
            source_id
            for source_id, row_hash in hashes.items()
            if stored.get(source_id) is None or stored[source_id] != row_hash
        }

    def crosswalk_rows(
        self,
        run_id: str | None = None,
        created_by_run: str | None = None,
        module: str | None = None,
        *,
        office_id: str | None = None,
        created: bool | None = None,
        deleted: bool | None = None,
    ) -> Iterator[CrosswalkRow]:
        """Crosswalk rows filtered by last writer, creator, module, office and flags.

        ``created=True`` keeps rows some run created (False: rows that pre-existed);
        ``deleted=False`` keeps rows whose Zoho record is still live.
        """
        c = s.crosswalk.c
        query = select(s.crosswalk).order_by(c.id)
        if run_id is not None:
            query = query.where(c.last_run_id == run_id)
        if created_by_run is not None:
            query = query.where(c.created_by_run == created_by_run)
        if module is not None:
            query = query.where(c.zoho_module == module)
        if office_id is not None:
            query = query.where(c.office_id == office_id)
        if created is not None:
            query = query.where(c.created_by_run.is_not(None) if created else c.created_by_run.is_(None))
        if deleted is not None:
            query = query.where(c.deleted.is_(deleted))
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=5_000).execute(query):
                yield _from_row(CrosswalkRow, row)

    def live_modules(self, office_id: str, source_objects: Sequence[str]) -> dict[str, str]:
        """Source id -> Zoho module of the office's live records of these source objects (the modules
        shaping keeps a patient in, whatever the routing rules say now: ``mapping/shape.py``)."""
        c = s.crosswalk.c
        query = select(c.source_id, c.zoho_module).where(
            c.office_id == office_id, c.source_object.in_(list(source_objects)), c.deleted.is_(False))
        with self.engine.connect() as conn:
            return {str(sid): str(module) for sid, module in conn.execute(query)}

    def counts(self, office_id: str) -> dict[str, int]:
        """Live crosswalk rows per source object for one office."""
        c = s.crosswalk.c
        query = (
            select(c.source_object, func.count())
            .where(c.office_id == office_id, c.deleted.is_(False))
            .group_by(c.source_object)
        )
        with self.engine.connect() as conn:
            return {name: int(count) for name, count in conn.execute(query)}

    # -- audit log ------------------------------------------------------------

    def append_audit(self, entry: AuditEntry) -> int:
        return self.append_audit_many([entry])[0]

    def append_audit_many(self, entries: Iterable[AuditEntry]) -> list[int]:
        """Append entries in one transaction and return their seq numbers."""
        batch = list(entries)
        if not batch:
            return []
        for entry in batch:
            entry.validate()
        with self._audit_lock, write_locked(self.engine) as conn:
            return self._append_audit(conn, batch)

    def _append_audit(self, conn: Connection, batch: Sequence[AuditEntry]) -> list[int]:
        tip = conn.execute(
            select(s.audit_tip.c.last_seq, s.audit_tip.c.last_hash).where(s.audit_tip.c.id == 1).with_for_update()
        ).first()
        if tip is None:
            raise LedgerError("the audit chain tip is missing; run `dentrix-zoho ledger verify`")
        seq, prev_hash = int(tip.last_seq), str(tip.last_hash)
        now = self.now()
        rows: list[dict[str, Any]] = []
        for entry in batch:
            seq += 1
            row = {
                "seq": seq,
                "run_id": entry.run_id,
                "time": entry.time or now,
                "operation": entry.operation,
                "module": entry.module,
                "source_id": entry.source_id,
                "zoho_id": entry.zoho_id,
                "outcome": entry.outcome,
                "code": entry.code,
                "credits": int(entry.credits),
                "http_status": entry.http_status,
                "prev_hash": prev_hash,
            }
            row["hash"] = prev_hash = entry_hash(row)
            rows.append(row)
        conn.execute(insert(s.audit_log), rows)
        conn.execute(update(s.audit_tip).where(s.audit_tip.c.id == 1).values(last_seq=seq, last_hash=prev_hash))
        return [row["seq"] for row in rows]

    def latest_intents(self, module: str, source_ids: Iterable[str]) -> dict[str, str]:
        """Per source id, the time of the latest send intent any run recorded for it in ``module``."""
        wanted = list(dict.fromkeys(source_ids))
        if not wanted:
            return {}
        a = s.audit_log.c
        base = (select(a.source_id, func.max(a.time))
                .where(a.operation == INTENT_OPERATION, a.module == module).group_by(a.source_id))
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            if len(wanted) > SCAN_THRESHOLD:  # one pass over the module's intents beats many IN lists
                keep = set(wanted)
                found = {sid: t for sid, t in conn.execute(base) if sid in keep}
            else:
                for chunk in _chunks(wanted):
                    found.update((sid, t) for sid, t in conn.execute(base.where(a.source_id.in_(chunk))))
        return found

    def audit_entries(self, run_id: str | None = None) -> Iterator[AuditEntry]:
        query = select(s.audit_log).order_by(s.audit_log.c.seq)
        if run_id is not None:
            query = query.where(s.audit_log.c.run_id == run_id)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=5_000).execute(query):
                yield AuditEntry(**dict(row._mapping))

    def verify_chain(self) -> ChainReport:
        with self.engine.connect() as conn:
            tip_row = conn.execute(
                select(s.audit_tip.c.last_seq, s.audit_tip.c.last_hash).where(s.audit_tip.c.id == 1)
            ).first()
            tip = (int(tip_row.last_seq), str(tip_row.last_hash)) if tip_row else None
            result = conn.execution_options(yield_per=5_000).execute(select(s.audit_log).order_by(s.audit_log.c.seq))
            return verify_rows((dict(row._mapping) for row in result), tip)

    # -- API call events ---------------------------------------------------------

    def record_api_call(self, run_id: str, event: Mapping[str, Any]) -> None:
        """Store one Zoho client call event (keys: time, method, path_template,
        module, record_count, http_status, credits, latency_ms or latency_s,
        outcome). Other keys are ignored so that nothing but counts and codes lands here."""
        values: dict[str, Any] = {key: event.get(key) for key in _API_CALL_KEYS}
        values["run_id"] = run_id
        values["time"] = _event_time(event.get("time")) or self.now()
        values["latency_ms"] = _latency_ms(event)
        with self.engine.begin() as conn:
            conn.execute(insert(s.api_calls).values(**values))

    def api_call_recorder(self, run_id: str) -> Callable[[Mapping[str, Any]], None]:
        """A callback for the Zoho client's event hook, bound to one run."""
        return lambda event: self.record_api_call(run_id, event)

    def api_calls(self, run_id: str | None = None) -> list[dict[str, Any]]:
        query = select(s.api_calls).order_by(s.api_calls.c.id)
        if run_id is not None:
            query = query.where(s.api_calls.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # -- pre-images --------------------------------------------------------------

    def save_pre_image(self, run_id: str, module: str, zoho_id: str, record: Mapping[str, Any]) -> bool:
        """Keep the record as it was before ``run_id`` first changed it.

        Returns False when this run already holds a pre-image of the record:
        the first one is the state before the run, later ones are our own writes.
        """
        payload = json.dumps(record, sort_keys=True, default=str)
        with write_locked(self.engine) as conn:
            exists = conn.execute(
                select(s.pre_images.c.id).where(
                    s.pre_images.c.run_id == run_id,
                    s.pre_images.c.module == module,
                    s.pre_images.c.zoho_id == zoho_id,
                )
            ).first()
            if exists is not None:
                return False
            conn.execute(
                insert(s.pre_images).values(
                    run_id=run_id,
                    module=module,
                    zoho_id=zoho_id,
                    captured_at=self.now(),
                    record_json=payload,
                )
            )
        return True

    def pre_image(self, run_id: str, module: str, zoho_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            payload = conn.execute(
                select(s.pre_images.c.record_json).where(
                    s.pre_images.c.run_id == run_id,
                    s.pre_images.c.module == module,
                    s.pre_images.c.zoho_id == zoho_id,
                )
            ).scalar()
        return None if payload is None else json.loads(payload)

    def pre_image_refs(
        self,
        run_id: str | None = None,
        *,
        restored: bool | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[PreImageRef]:
        """Pre-images (without payload) in capture order, by run, restored flag or id."""
        p = s.pre_images.c
        query = select(p.id, p.run_id, p.module, p.zoho_id, p.captured_at, p.restored_by_run).order_by(
            p.captured_at, p.id
        )
        if run_id is not None:
            query = query.where(p.run_id == run_id)
        if restored is not None:
            query = query.where(p.restored_by_run.is_not(None) if restored else p.restored_by_run.is_(None))
        with self.engine.connect() as conn:
            if ids is None:
                return [_from_row(PreImageRef, row) for row in conn.execute(query)]
            refs: list[PreImageRef] = []
            for chunk in _chunks(list(ids)):
                refs.extend(_from_row(PreImageRef, row) for row in conn.execute(query.where(p.id.in_(chunk))))
            return refs

    # -- rollback bookkeeping ------------------------------------------------------

    def mark_deleted(
        self,
        by_run: str,
        module: str,
        zoho_ids: Sequence[str],
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """Flag crosswalk rows as deleted by a rollback run, with their audit entries, atomically."""
        now = self.now()
        for entry in audit:
            entry.validate()
        with self._audit_lock, write_locked(self.engine) as conn:
            for chunk in _chunks(list(zoho_ids)):
                conn.execute(
                    update(s.crosswalk)
                    .where(s.crosswalk.c.zoho_module == module, s.crosswalk.c.zoho_id.in_(chunk))
                    .values(deleted=True, deleted_by_run=by_run, deleted_at=now)
                )
            self._release_deleted(conn, by_run, module, zoho_ids, now)
            if audit:
                self._append_audit(conn, audit)

    def mark_restored(
        self,
        by_run: str,
        module: str,
        restored: Mapping[str, tuple[Sequence[int], str | None]],
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """Record restores: zoho_id -> (pre-image ids now restored, Modified_Time after restore).

        The crosswalk keeps the row (the record pre-existed us) but forgets its
        hash, so the next delta run sends the source values again.
        """
        now = self.now()
        for entry in audit:
            entry.validate()
        with self._audit_lock, write_locked(self.engine) as conn:
            for zoho_id, (pre_image_ids, modified_time) in restored.items():
                if pre_image_ids:
                    conn.execute(
                        update(s.pre_images)
                        .where(s.pre_images.c.id.in_(list(pre_image_ids)))
                        .values(restored_by_run=by_run, restored_at=now)
                    )
                conn.execute(
                    update(s.crosswalk)
                    .where(and_(s.crosswalk.c.zoho_module == module, s.crosswalk.c.zoho_id == zoho_id))
                    .values(row_hash=None, zoho_modified_time=modified_time, last_written_at=now)
                )
            if audit:
                self._append_audit(conn, audit)

    # -- quarantine ------------------------------------------------------------------

    def quarantine(self, rows: Iterable[QuarantineRow]) -> int:
        """Hold rows back with a value class and reason; the value itself has no place here."""
        batch = list(rows)
        for row in batch:
            row.validate()
        if not batch:
            return 0
        with self.engine.begin() as conn:
            self._insert_quarantine(conn, batch, self.now())
        return len(batch)

    @staticmethod
    def _insert_quarantine(conn: Connection, batch: Sequence[QuarantineRow], now: str) -> None:
        conn.execute(
            insert(s.quarantine),
            [
                {
                    "run_id": row.run_id,
                    "office_id": row.office_id,
                    "source_object": row.source_object,
                    "source_id": row.source_id,
                    "field": row.field,
                    "value_class": row.value_class,
                    "reason": row.reason,
                    "status": row.status,
                    "created_at": now,
                }
                for row in batch
            ],
        )

    @staticmethod
    def _resolve_open(conn: Connection, office_id: str, sources: Sequence[tuple[str, str]]) -> int:
        """Mark the office's open quarantine rows of these (source_object, source_id) resolved."""
        q = s.quarantine.c
        by_object: dict[str, list[str]] = {}
        for source_object, source_id in sources:
            by_object.setdefault(source_object, []).append(source_id)
        total = 0
        for source_object, ids in by_object.items():
            for chunk in _chunks(ids):
                total += conn.execute(
                    update(s.quarantine)
                    .where(q.office_id == office_id, q.status == "open", q.source_object == source_object,
                           q.source_id.in_(chunk))
                    .values(status="resolved")
                ).rowcount
        return total

    def quarantine_rows(
        self, run_id: str | None = None, *, status: str | None = None, office_id: str | None = None
    ) -> list[QuarantineRow]:
        """Quarantine rows in id order, by run, status and office (None: every one)."""
        q = s.quarantine.c
        query = select(s.quarantine).order_by(q.id)
        if run_id is not None:
            query = query.where(q.run_id == run_id)
        if office_id is not None:
            query = query.where(q.office_id == office_id)
        if status is not None:
            query = query.where(q.status == status)
        with self.engine.connect() as conn:
            return [_from_row(QuarantineRow, row) for row in conn.execute(query)]

    def resolve_quarantine(self, ids: Iterable[int]) -> int:
        id_list = list(ids)
        total = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(id_list):
                total += conn.execute(
                    update(s.quarantine).where(s.quarantine.c.id.in_(chunk)).values(status="resolved")
                ).rowcount
        return total

    # -- approvals ---------------------------------------------------------------------

    def record_approval(
        self, spec_hash: str, approved_by: str, spec_path: str | None = None, office_id: str | None = None
    ) -> Approval:
        """Record that ``approved_by`` approved the spec ``spec_hash`` for ``office_id`` (None: every office)."""
        if office_id is not None and not office_id.strip():
            raise LedgerError("an office approval needs the office's id (None approves every office)")
        approval = Approval(spec_hash, approved_by, self.now(), spec_path, office_id)
        with self.engine.begin() as conn:
            conn.execute(
                insert(s.approvals).values(
                    spec_hash=approval.spec_hash,
                    approved_by=approval.approved_by,
                    approved_at=approval.approved_at,
                    spec_path=approval.spec_path,
                    office_id=approval.office_id,
                )
            )
        return approval

    def approval_for(self, spec_hash: str, office_id: str | None = None) -> Approval | None:
        """The approval that opens ``office_id`` to the spec: the office's own (the latest), else the latest
        for every office. Without an office, only an approval for every office counts."""
        a = s.approvals.c
        scope = a.office_id.is_(None) if office_id is None else or_(a.office_id == office_id, a.office_id.is_(None))
        query = (
            select(a.spec_hash, a.approved_by, a.approved_at, a.spec_path, a.office_id)
            .where(a.spec_hash == spec_hash, scope)
            .order_by(case((a.office_id.is_(None), 1), else_=0), a.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return Approval(*row) if row is not None else None

    def is_approved(self, spec_hash: str, office_id: str | None = None) -> bool:
        """Approved for ``office_id`` (its own approval or one for every office); without one, for every office."""
        return self.approval_for(spec_hash, office_id) is not None

    def approvals(self, spec_hash: str | None = None) -> list[Approval]:
        """Every approval (of one spec hash), oldest first."""
        a = s.approvals.c
        query = select(a.spec_hash, a.approved_by, a.approved_at, a.spec_path, a.office_id).order_by(a.id)
        if spec_hash is not None:
            query = query.where(a.spec_hash == spec_hash)
        with self.engine.connect() as conn:
            return [Approval(*row) for row in conn.execute(query)]

    # -- summaries ----------------------------------------------------------------------

    def run_summaries(self, run_id: str | None = None) -> list[RunSummary]:
        """Per run: audit counts, credits and crosswalk rows, for the CLI and reports."""
        a, c = s.audit_log.c, s.crosswalk.c
        audit_q = select(a.run_id, a.operation, a.module, a.outcome, func.count(), func.sum(a.credits)).group_by(
            a.run_id, a.operation, a.module, a.outcome
        )
        written_q = select(c.last_run_id, func.count()).group_by(c.last_run_id)
        created_q = (
            select(c.created_by_run, func.count()).where(c.created_by_run.is_not(None)).group_by(c.created_by_run)
        )
        if run_id is not None:
            audit_q = audit_q.where(a.run_id == run_id)
            written_q = written_q.where(c.last_run_id == run_id)
            created_q = created_q.where(c.created_by_run == run_id)
        with self.engine.connect() as conn:
            audit_rows = conn.execute(audit_q).all()
            written = {row[0]: int(row[1]) for row in conn.execute(written_q)}
            created = {row[0]: int(row[1]) for row in conn.execute(created_q)}
        breakdown: dict[str, dict[tuple[str, str, str], tuple[int, int]]] = {}
        for rid, operation, module, outcome, count, credits in audit_rows:
            breakdown.setdefault(rid, {})[(operation, module, outcome)] = (int(count), int(credits or 0))
        runs = [self.run(run_id)] if run_id is not None else self.runs()
        summaries = []
        for run in runs:
            if run is None:
                continue
            cells = breakdown.get(run.run_id, {})
            summaries.append(
                RunSummary(
                    run=run,
                    audit_entries=sum(count for count, _ in cells.values()),
                    errors=sum(count for (_, _, outcome), (count, _) in cells.items() if outcome == "error"),
                    credits=sum(credits for _, credits in cells.values()),
                    records_written=written.get(run.run_id, 0),
                    records_created=created.get(run.run_id, 0),
                    by_module_outcome={key: count for key, (count, _) in cells.items()},
                )
            )
        return summaries


def _event_time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="microseconds")
    return str(value)


def _latency_ms(event: Mapping[str, Any]) -> int | None:
    if event.get("latency_ms") is not None:
        return int(round(float(event["latency_ms"])))
    seconds = event.get("latency_s", event.get("latency"))
    return None if seconds is None else int(round(float(seconds) * 1000))
