"""One Zoho org's limits shared by every process that calls it, kept in one SQL database.

Many runs (one per office, on one machine or many) call the same Zoho org, and Zoho counts the
org's concurrency and its rolling 24 h credits over all of them; the calls-per-minute ceiling
promised to the customer is the org's too. ``ZOHO_ORG_LIMITS_URL`` names a
database they all reach (PostgreSQL; SQLite for several processes on one machine); unset, each
process keeps its own in-process gates and budget (``throttle``/``budget``), as before.

Concurrency: **leases with expiry** in ``zoho_org_slots`` (one row per slot: the edition's limit
of kind ``all``, the heavy-call cap of kind ``heavy``). A call takes a free or expired row with
``UPDATE ... WHERE slot = (SELECT ... FOR UPDATE SKIP LOCKED)`` and frees it when it returns; a
keeper thread renews the process's live leases every third of the lease, so a slow call keeps its
slot and a killed process's slots come back once their lease runs out. Chosen over PostgreSQL
session advisory locks because:

* advisory locks belong to a session, so every slot a thread holds needs a connection of its own
  (4 runs x 20 threads = 80 of PostgreSQL's default 100 ``max_connections``, before the ledger
  and Dagster take theirs) or all of a process's threads funnel through one session;
* a lease survives a server restart, whereas a restart drops every advisory lock while the calls
  holding them are still in flight, so the first calls after it would run over the limit;
* the same table and statements work on SQLite (one statement is atomic there), where advisory
  locks do not exist.

Here a process uses a small pool (at most ``POOL_SIZE`` + ``POOL_OVERFLOW`` = 6 connections, plus
one that listens, on PostgreSQL), whatever its thread count: 4 runs take at most 28. Taking and
freeing a slot is one statement each, committed on its own. Waiting does not spin: within a
process one thread per kind asks the database at a time, the others block on a lock; that one
sleeps until a release's ``NOTIFY`` (every process's, its own included, so no run gets a head start
and keeps the slots), with a timeout that catches leases running out; without notifications
(SQLite, or while the listening connection is down) it polls, backing off from 2 to 50 ms.

Credits: every process adds what it spends to a per-bucket total in ``zoho_org_credits``
(1,440 buckets per window: a minute each for Zoho's 24 h) and reads the org's sum back, both by
the keeper every ``sync_seconds``; the per-call check reads the cached sum and asks the database
itself only near the edge. The org therefore sees another process's spends at most about one
sync late; the reserve and Zoho's own 429 absorb that.

Calls per minute (``ZOHO_CALLS_PER_MINUTE``, a ceiling promised to the customer, not a Zoho limit):
:class:`OrgMinute`, one row per call the ceiling allows in a minute in ``zoho_org_call_starts``,
each dated with the latest moment the call last counted on it may have started. Just before a call
is sent, after its slot and token, the process takes a row that has been free for a minute (oldest
first, ``FOR UPDATE SKIP LOCKED``) and dates it the database's now plus an allowance (2 s); the call
must start within half of that by the process's own clock, read before the statement went, or it
is not sent on that row (the row goes back unused). So the org's starts in any rolling minute never
exceed the ceiling, provided the few lines between that check and the hand-over to the HTTP client
take less than the other half (1 s): the count errs only low, never high. By how much: under a demand that never
lets up, each row carries one call per minute plus the allowance, 60/62 of the ceiling (about 3 %
low); a row another process holds locked in the instant is skipped. What the bound is measured on:
the moment this code hands the request to the HTTP client, on the database server's clock; when
Zoho receives it depends on the network, which nothing here controls; a server clock stepped forward
would err high by the step. Round trips: one statement per reservation, which covers as many calls
as the process's threads are waiting for at once (at most ``MINUTE_BLOCK_MAX``): one per call for a
lone call, about one per ten calls under load, on top of the slot's take and free. A reservation a
thread did not start goes back by the keeper (``previous`` restored), and all of them when the
process closes; a killed process's reserved rows count until a minute after the last moment it
could have sent on them (the allowance), then come back. Processes configured with different
ceilings share the rows, so the largest ceiling among the running processes is the org's.
Without ``ZOHO_ORG_LIMITS_URL`` the ceiling is per process (``throttle.MinuteRateLimiter``).

Database outage: a call that cannot take its slot or a call of the minute, or whose budget figure
is stale and cannot be refreshed, raises :class:`OrgLimitsUnavailable` (the URL shown without its password) before
anything is sent to Zoho, so a run neither hangs nor runs unlimited; once the database is back,
the next call goes through. A call already in flight finishes; a slot whose release could not be
written is freed as soon as the database answers again (or by its lease running out). Spends not yet written stay in memory and
are written once the database answers again (a process killed meanwhile loses up to one sync
of them).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from sqlalchemy import Engine, bindparam, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from dentrix_zoho.zoho.budget import WINDOW_SECONDS, CreditBudget
from dentrix_zoho.zoho.errors import ZohoError

logger = logging.getLogger(__name__)

Kind = Literal["all", "heavy"]
KINDS: tuple[Kind, ...] = ("all", "heavy")
CHANNEL = "zoho_org_slots"
BUCKETS_PER_WINDOW = 1_440
POOL_SIZE = 3
POOL_OVERFLOW = 3
# Backoff of a waiter that no notification wakes (SQLite, or the listener is down).
POLL_MIN_S = 0.002
POLL_MAX_S = 0.05
# A waiter woken by notifications still looks again this often, for leases that ran out.
NOTIFIED_POLL_S = 0.5
PRUNE_EVERY_S = 600.0
MINUTE_SECONDS = 60.0
# A reserved call starts within half of this after it was asked for; its row counts it as started at
# the end of it, so a call that starts late within the half still cannot take the org over its ceiling.
START_ALLOWANCE_S = 2.0
# Calls one reservation may cover: what a process's waiting threads use at once, no hoard.
MINUTE_BLOCK_MAX = 10
# A waiter for the ceiling looks again at least this often (another process may give calls back).
MINUTE_POLL_MAX_S = 1.0

T = TypeVar("T")


class OrgLimitsUnavailable(ZohoError):
    """The shared org limits database did not answer; the call was not sent to Zoho."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="ORG_LIMITS_UNAVAILABLE")


def shown_url(url: str) -> str:
    """The URL as it may appear in a message: password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown by its scheme only
        return url.split(":", 1)[0] + ":***"


def check_url(url: str) -> str:
    """``url`` when it names a PostgreSQL or SQLite database; a ValueError that does not echo it otherwise."""
    try:
        backend = make_url(url).get_backend_name()
    except Exception:
        raise ValueError("not a database URL (expected postgresql+psycopg://... or sqlite:///...)") from None
    if backend not in ("postgresql", "sqlite"):
        raise ValueError(f"{backend} is not supported; use postgresql+psycopg://... or sqlite:///...")
    return url


# -- the database ------------------------------------------------------------------------------------


_DDL = (
    "CREATE TABLE IF NOT EXISTS zoho_org_slots ("
    " org TEXT NOT NULL, kind TEXT NOT NULL, slot INTEGER NOT NULL,"
    " holder TEXT, expires_at DOUBLE PRECISION, PRIMARY KEY (org, kind, slot))",
    "CREATE TABLE IF NOT EXISTS zoho_org_credits ("
    " org TEXT NOT NULL, bucket BIGINT NOT NULL, credits BIGINT NOT NULL, PRIMARY KEY (org, bucket))",
    # Added after the first two: CREATE ... IF NOT EXISTS is how an org database of that schema is upgraded.
    "CREATE TABLE IF NOT EXISTS zoho_org_call_starts ("
    " org TEXT NOT NULL, slot INTEGER NOT NULL, started_by DOUBLE PRECISION NOT NULL,"
    " previous DOUBLE PRECISION NOT NULL, holder TEXT, PRIMARY KEY (org, slot))",
    "CREATE INDEX IF NOT EXISTS zoho_org_call_starts_oldest ON zoho_org_call_starts (org, started_by)",
)


class OrgDatabase:
    """The engine and the few statements that differ between PostgreSQL and SQLite."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        check_url(url)
        parsed = make_url(url)
        self.url = url
        self.shown = shown_url(url)
        self._password = parsed.password
        self.backend = parsed.get_backend_name()
        self.connect_timeout = connect_timeout
        if self.backend == "postgresql":
            self.engine = create_engine(
                parsed,
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                pool_timeout=max(connect_timeout, 1.0) * 2,
                connect_args=self._pg_connect_args(),
            )
            # Server time, so leases mean the same on every machine.
            self.now_sql = "extract(epoch from clock_timestamp())"
            # When the server received the statement: after the caller's clock was read before sending
            # it, before anything the statement takes is used; and stable, so an index can serve it.
            self.statement_now_sql = "extract(epoch from statement_timestamp())"
            self.skip_locked = " FOR UPDATE SKIP LOCKED"
        else:
            self.engine = create_engine(
                parsed, connect_args={"timeout": 30.0, "check_same_thread": False}, pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
            )
            _sqlite_pragmas(self.engine)
            self.now_sql = "((julianday('now') - 2440587.5) * 86400.0)"
            self.statement_now_sql = self.now_sql  # SQLite's 'now' is one value for a whole statement
            self.skip_locked = ""  # one UPDATE holds SQLite's write lock from start to end
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def _pg_connect_args(self) -> dict[str, Any]:
        # A dead server must fail a statement in seconds, not hang it: connect timeout, TCP
        # keepalives and tcp_user_timeout for a peer that vanished, statement_timeout for one that
        # hangs. Leases and spends need no fsync per commit: a server crash loses at most the
        # last moments of them, as a killed client would.
        seconds = max(1, math.ceil(self.connect_timeout))
        return {
            "connect_timeout": seconds,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": seconds * 2_000,
            "application_name": "dentrix_zoho_org_limits",
            "options": f"-c synchronous_commit=off -c statement_timeout={seconds * 2_000}",
        }

    def listen_kwargs(self) -> dict[str, Any]:
        """psycopg connection arguments for the connection that LISTENs."""
        parsed = make_url(self.url)
        kwargs: dict[str, Any] = {
            k: v for k, v in parsed.translate_connect_args(username="user", database="dbname").items() if v
        }
        kwargs.update({k: v for k, v in parsed.query.items() if isinstance(v, str)})
        kwargs.update(self._pg_connect_args())
        kwargs["autocommit"] = True
        return kwargs

    def reason(self, exc: BaseException) -> str:
        """The driver's first line, without the password should a driver ever echo it."""
        orig = getattr(exc, "orig", None) or exc
        line = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        if self._password:
            line = line.replace(self._password, "***")
        return f"{type(orig).__name__}: {line[:200]}"

    def unavailable(self, doing: str, exc: BaseException) -> OrgLimitsUnavailable:
        return OrgLimitsUnavailable(
            f"the shared Zoho org limits database ({self.shown}) did not answer while {doing} ({self.reason(exc)})"
        )

    def run(self, doing: str, work: Callable[[Connection], T], *, transaction: bool = False) -> T:
        """``work`` on a pooled connection; a connection the server dropped (a restart) is retried once.

        Each statement commits on its own unless ``transaction``: a slot taken or freed is one
        statement, and BEGIN and COMMIT would triple its round trips.
        """
        for attempt in (1, 2):
            try:
                if transaction:
                    with self.engine.begin() as conn:
                        return work(conn)
                with self._autocommit.connect() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == 1 and exc.connection_invalidated:
                    continue
                raise self.unavailable(doing, exc) from None
            except SQLAlchemyError as exc:
                raise self.unavailable(doing, exc) from None
        raise AssertionError("unreachable")

    def ensure_schema(self, org: str, limits: dict[Kind, int]) -> None:
        def work(conn: Connection) -> None:
            if self.backend == "postgresql":
                # CREATE TABLE IF NOT EXISTS races with itself across sessions; serialise it.
                conn.execute(text("SELECT pg_advisory_xact_lock(7305192830617)"))
            for ddl in _DDL:
                conn.execute(text(ddl))
            conn.execute(
                text("INSERT INTO zoho_org_slots (org, kind, slot) VALUES (:org, :kind, :slot) "
                     "ON CONFLICT DO NOTHING"),
                [{"org": org, "kind": kind, "slot": s} for kind, n in limits.items() for s in range(n)],
            )

        self.run("preparing its tables", work, transaction=True)

    def ensure_call_rows(self, org: str, per_minute: int) -> None:
        """One row of ``zoho_org_call_starts`` per call the ceiling allows in a minute (rows 0 .. per_minute-1)."""
        count = text("SELECT COUNT(*) FROM zoho_org_call_starts WHERE org = :org AND slot < :n")
        if self.backend == "postgresql":
            insert = text(
                "INSERT INTO zoho_org_call_starts (org, slot, started_by, previous)"
                " SELECT :org, s, 0, 0 FROM generate_series(0, :n - 1) AS s ON CONFLICT DO NOTHING"
            )
        else:
            insert = text(
                "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < :n) "
                "INSERT OR IGNORE INTO zoho_org_call_starts (org, slot, started_by, previous)"
                " SELECT :org, n, 0, 0 FROM s"
            )

        def work(conn: Connection) -> None:
            if int(conn.execute(count, {"org": org, "n": per_minute}).scalar_one()) < per_minute:
                conn.execute(insert, {"org": org, "n": per_minute})

        self.run("preparing the per-minute ceiling's rows", work, transaction=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()


# -- concurrency slots -------------------------------------------------------------------------------


class OrgSlots:
    """The org's call slots: ``slot(heavy)`` holds one ``all`` slot (and one ``heavy``) for a call."""

    def __init__(
        self, db: OrgDatabase, org: str, *, concurrency: int, heavy_cap: int, lease_seconds: float, holder: str
    ) -> None:
        self._db = db
        self.org = org
        self.limits: dict[Kind, int] = {"all": concurrency, "heavy": min(heavy_cap, concurrency)}
        self.lease_seconds = lease_seconds
        self.holder = holder
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._live: dict[str, tuple[Kind, int]] = {}  # token -> (kind, slot)
        self._unfreed: list[tuple[Kind, int, str]] = []  # released while the database was away
        self._doors: dict[Kind, threading.Lock] = {k: threading.Lock() for k in KINDS}
        self._freed: dict[Kind, threading.Event] = {k: threading.Event() for k in KINDS}
        self.notified = False  # a listener wakes waiters on other processes' releases
        self.waits = 0  # times a thread found no slot free and slept
        now = db.now_sql
        self._take = text(
            f"UPDATE zoho_org_slots SET holder = :token, expires_at = {now} + :lease "
            "WHERE org = :org AND kind = :kind AND slot = ("
            " SELECT slot FROM zoho_org_slots WHERE org = :org AND kind = :kind AND slot < :limit"
            f" AND (holder IS NULL OR expires_at < {now}) ORDER BY slot LIMIT 1{db.skip_locked}) "
            "RETURNING slot"
        )
        free = (
            "UPDATE zoho_org_slots SET holder = NULL, expires_at = NULL "
            "WHERE org = :org AND kind = :kind AND slot = :slot AND holder = :token"
        )
        self._free = text(
            f"WITH freed AS ({free} RETURNING slot) SELECT pg_notify('{CHANNEL}', :payload) FROM freed"
            if db.backend == "postgresql"
            else free
        )
        self._renew = text(
            f"UPDATE zoho_org_slots SET expires_at = {now} + :lease WHERE org = :org AND holder IN :tokens"
        ).bindparams(bindparam("tokens", expanding=True))

    @property
    def held(self) -> int:
        """Slots this process holds now, both kinds."""
        with self._lock:
            return len(self._live)

    def wake(self, kind: str) -> None:
        if kind in self._freed:
            self._freed[kind].set()  # type: ignore[index]

    def _try(self, kind: Kind, token: str) -> int | None:
        params = {"token": token, "lease": self.lease_seconds, "org": self.org, "kind": kind,
                  "limit": self.limits[kind]}
        try:
            slot = self._db.run(
                f"taking a Zoho {'heavy-call' if kind == 'heavy' else 'call'} slot",
                lambda conn: conn.execute(self._take, params).scalar_one_or_none(),
            )
        except OrgLimitsUnavailable as exc:
            raise OrgLimitsUnavailable(f"{exc}; the call was not sent to Zoho") from None
        return None if slot is None else int(slot)

    def acquire(self, kind: Kind) -> str:
        """Block until this process holds one of the org's ``kind`` slots; the token frees it."""
        token = f"{self.holder}#{next(self._seq)}"
        with self._doors[kind]:
            delay = POLL_MIN_S
            while True:
                self._freed[kind].clear()  # before looking, so a release in between still wakes us
                if self._unfreed:
                    try:
                        self.free_leftovers()
                    except OrgLimitsUnavailable:
                        pass  # the attempt to take a slot says so, and why
                slot = self._try(kind, token)
                if slot is not None:
                    with self._lock:
                        self._live[token] = (kind, slot)
                    return token
                self.waits += 1
                self._freed[kind].wait(NOTIFIED_POLL_S if self.notified else delay)
                delay = min(delay * 2, POLL_MAX_S)

    def _free_params(self, kind: Kind, slot: int, token: str) -> dict[str, Any]:
        return {"org": self.org, "kind": kind, "slot": slot, "token": token, "payload": f"{self.org}|{kind}"}

    def release(self, token: str) -> None:
        with self._lock:
            kind, slot = self._live.pop(token)
        params = self._free_params(kind, slot, token)
        try:
            self._db.run("freeing a Zoho call slot", lambda conn: conn.execute(self._free, params))
        except OrgLimitsUnavailable as exc:
            # The call itself is done. No longer renewed, the lease runs out on its own; freed at
            # once if the database answers again before that.
            logger.warning("%s; the slot is freed when it is back, or by its lease within %.0f s",
                           exc, self.lease_seconds)
            with self._lock:
                self._unfreed.append((kind, slot, token))
            self._freed[kind].set()  # our waiter finds out for itself
            return
        # With a listener our own NOTIFY wakes our waiter as it wakes the other processes': no head
        # start for this process, so the org's slots are shared among the runs, not kept by the first.
        if not self.notified:
            self._freed[kind].set()

    @contextmanager
    def slot(self, heavy: bool) -> Iterator[None]:
        # Heavy first, as the local gates do: a thread holding an ``all`` slot never waits for a heavy one.
        heavy_token = self.acquire("heavy") if heavy else None
        try:
            token = self.acquire("all")
            try:
                yield
            finally:
                self.release(token)
        finally:
            if heavy_token is not None:
                self.release(heavy_token)

    def free_leftovers(self) -> None:
        """Free the slots whose release the database missed (the keeper, and a waiter, call this)."""
        with self._lock:
            leftovers, self._unfreed = self._unfreed, []
        if not leftovers:
            return
        try:
            self._db.run(
                "freeing Zoho call slots",
                lambda conn: conn.execute(self._free, [self._free_params(*left) for left in leftovers]),
            )
        except OrgLimitsUnavailable:
            with self._lock:
                self._unfreed.extend(leftovers)
            raise
        for kind in {left[0] for left in leftovers}:
            self._freed[kind].set()

    def renew(self) -> None:
        with self._lock:
            tokens = list(self._live)
        if tokens:
            params = {"lease": self.lease_seconds, "org": self.org, "tokens": tokens}
            self._db.run("renewing call slot leases", lambda conn: conn.execute(self._renew, params))

    def occupancy(self) -> dict[str, int]:
        """Slots of each kind held by any process now (leases not yet run out)."""
        query = text(
            "SELECT kind, COUNT(*) FROM zoho_org_slots WHERE org = :org AND holder IS NOT NULL"
            f" AND expires_at >= {self._db.now_sql} GROUP BY kind"
        )
        rows = self._db.run("reading slots", lambda conn: conn.execute(query, {"org": self.org}).all())
        counts = {kind: 0 for kind in KINDS}
        counts.update({str(kind): int(n) for kind, n in rows})
        return counts


# -- credits -----------------------------------------------------------------------------------------


class OrgCredits:
    """The org's credits spent in the rolling window, summed over every process.

    ``add`` only counts in memory; ``sync`` writes this process's new spends into per-bucket rows
    and reads the org's window back. A bucket counts until its end leaves the window, so the figure
    errs high by at most one bucket (a minute of 24 h), never low.
    """

    def __init__(
        self,
        db: OrgDatabase,
        org: str,
        *,
        window_seconds: float = WINDOW_SECONDS,
        sync_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.org = org
        self.window_seconds = window_seconds
        self.bucket_seconds = window_seconds / BUCKETS_PER_WINDOW
        self.sync_seconds = sync_seconds
        self.max_age = 3 * sync_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._pending: dict[int, int] = {}  # bucket -> credits not yet written
        self._writing = 0  # credits taken out of _pending by a sync still under way
        self._window = 0  # the org's window as the last sync read it (our written spends included)
        self._synced_at = float("-inf")  # time.monotonic() of that read
        self._last_prune = float("-inf")
        self.own_total = 0
        self.syncs = 0
        self._add = text(
            "INSERT INTO zoho_org_credits (org, bucket, credits) VALUES (:org, :bucket, :credits) "
            "ON CONFLICT (org, bucket) DO UPDATE SET credits = zoho_org_credits.credits + excluded.credits"
        )
        self._sum = text(
            "SELECT COALESCE(SUM(credits), 0) FROM zoho_org_credits WHERE org = :org AND bucket >= :horizon"
        )
        self._prune = text("DELETE FROM zoho_org_credits WHERE org = :org AND bucket < :horizon")

    def _bucket(self, at: float) -> int:
        return math.floor(at / self.bucket_seconds)

    def add(self, credits: int) -> None:
        if credits <= 0:
            return
        bucket = self._bucket(self._clock())
        with self._lock:
            self._pending[bucket] = self._pending.get(bucket, 0) + credits
            self.own_total += credits

    def spent(self, max_age: float | None = None) -> int:
        """The org's credits in the window: the last sync's figure plus what we have not written yet.

        Syncs first when that figure is older than ``max_age`` seconds (default three syncs), and
        raises :class:`OrgLimitsUnavailable` if the database cannot be read.
        """
        limit = self.max_age if max_age is None else max_age
        with self._lock:
            stale = time.monotonic() - self._synced_at > limit
        if stale:
            self.sync()
        with self._lock:
            return self._window + self._writing + sum(self._pending.values())

    def sync(self) -> int:
        """Write our new spends, read the org's window; returns it."""
        with self._sync_lock:
            with self._lock:
                taken, self._pending = self._pending, {}
                self._writing = sum(taken.values())
            horizon = self._bucket(self._clock() - self.window_seconds)
            prune = time.monotonic() - self._last_prune > PRUNE_EVERY_S

            def work(conn: Connection) -> int:
                if taken:
                    conn.execute(self._add, [{"org": self.org, "bucket": b, "credits": c} for b, c in taken.items()])
                total = int(conn.execute(self._sum, {"org": self.org, "horizon": horizon}).scalar_one())
                if prune:
                    conn.execute(self._prune, {"org": self.org, "horizon": horizon})
                return total

            try:
                total = self._db.run("accounting Zoho credits", work, transaction=True)
            except OrgLimitsUnavailable:
                with self._lock:
                    for bucket, credits in taken.items():
                        self._pending[bucket] = self._pending.get(bucket, 0) + credits
                    self._writing = 0
                raise
            with self._lock:
                self._window = total
                self._writing = 0
                self._synced_at = time.monotonic()
                self.syncs += 1
            if prune:
                self._last_prune = time.monotonic()
            return total

    def flush(self) -> bool:
        """Write pending spends now; False (logged) when the database does not answer."""
        try:
            self.sync()
            return True
        except OrgLimitsUnavailable as exc:
            logger.warning("%s; %d credits not yet recorded for the org", exc, self.pending)
            return False

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(self._pending.values()) + self._writing


class OrgCreditBudget(CreditBudget):
    """The pause-or-stop policy of :class:`CreditBudget` against the org's shared account.

    ``spent`` stays this client's own (a step's credits are the difference of two readings);
    ``remaining`` and every decision use the org's window, less the reserve kept for the org's
    other integrations.
    """

    def __init__(self, account: OrgCredits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.account = account
        # Within this many credits of the reserve the check asks the database instead of the last sync.
        self.edge = max(10, (self.daily_limit or 0) // 500)

    def spend(self, credits: int) -> None:
        super().spend(credits)
        self.account.add(credits)

    @property
    def org_spent(self) -> int:
        return self.account.spent()

    def remaining(self, *, fresh: bool = False) -> int | None:
        org = self.account.spent(max_age=0.0 if fresh else None)
        with self._lock:
            self._expire(self._clock())
            return self._estimate(org)

    def _spent_note(self) -> str:
        try:
            org = str(self.account.spent())
        except OrgLimitsUnavailable:
            org = "unknown"
        return f"spent by the org {org}, by this client {self.spent}"

    def before_call(self, cost: int) -> None:
        """Pause (until the window frees enough) or stop when this call would dip into the reserve."""
        try:
            while True:
                remaining = self.remaining()
                if remaining is None or remaining - self.reserve >= cost + self.edge:
                    return
                remaining = self.remaining(fresh=True)
                if remaining is None or remaining - self.reserve >= cost:
                    return
                self.exhausted(cost, remaining, source="org accounting")  # raises on stop or after max_wait
        except OrgLimitsUnavailable as exc:
            raise OrgLimitsUnavailable(f"{exc}; the call was not sent to Zoho") from None


# -- calls per minute --------------------------------------------------------------------------------


class OrgMinute:
    """The org's calls-per-minute ceiling over every process: at most ``per_minute`` calls start in
    any rolling minute, summed over all of them.

    ``zoho_org_call_starts`` holds one row per call the ceiling allows in a minute; ``started_by`` is
    the latest moment the call last counted on the row may have started. A row is free once that is a
    minute past. A reservation takes free rows (oldest first) in one statement and sets
    ``started_by`` to the database's now plus ``allowance``; this process starts a reserved call only
    within half the allowance of having asked for it (by its own clock, read before the statement
    went), so every call starts before its row's ``started_by``, and the next call on the row starts
    after the row was free again, a full minute later. Hence never more starts in a minute than rows.

    A reservation is taken just before a call goes and covers as many calls as this process's threads
    are waiting for at that moment (at most ``MINUTE_BLOCK_MAX``): one statement for a lone call,
    fewer than one a call under load. A reserved call not started in time (its thread gave up) goes
    back (``previous`` restored) through the keeper; a process killed with a reservation has its rows
    back a minute after the last moment it could have used them.
    """

    def __init__(
        self,
        db: OrgDatabase,
        org: str,
        *,
        per_minute: int,
        holder: str,
        allowance: float = START_ALLOWANCE_S,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``clock``: seconds for both the rows and this process (tests, and processes sharing a fake
        clock); without it the rows use the database server's time and this process its monotonic clock."""
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        if allowance <= 0:
            raise ValueError("allowance must be positive")
        self._db = db
        self.org = org
        self.per_minute = per_minute
        self.holder = holder
        self.allowance = allowance
        self._use_within = allowance / 2
        self._bind_now = clock is not None
        self._clock: Callable[[], float] = clock if clock is not None else time.monotonic
        self._sleep = sleep
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._door = threading.Lock()
        self._pool: deque[tuple[float, int, str]] = deque()  # (use by, slot, token), oldest first
        self._unused: list[tuple[int, str]] = []  # reserved, never started: to give back
        self._waiting = 0
        self.started = 0  # calls this process started under the ceiling
        self.reserved = 0
        self.given_back = 0
        self.reservations = 0  # reserving statements that took rows
        self.waits = 0  # times the org's ceiling was reached and a thread slept
        now = ":now" if self._bind_now else db.statement_now_sql
        pick = (
            "SELECT slot FROM zoho_org_call_starts WHERE org = :org AND slot < :limit"
            f" AND started_by <= {now} - :minute ORDER BY started_by LIMIT :n"
        )
        # ARRAY(...) is evaluated once, before the update: the rows it locked are the rows updated.
        chosen = (
            f"slot = ANY(ARRAY({pick} FOR UPDATE SKIP LOCKED))" if db.backend == "postgresql" else f"slot IN ({pick})"
        )
        self._take = text(
            f"UPDATE zoho_org_call_starts SET previous = started_by, started_by = {now} + :allowance,"
            f" holder = :token WHERE org = :org AND {chosen} RETURNING slot"
        )
        self._next_free = text(
            f"SELECT MIN(started_by) + :minute - {now} FROM zoho_org_call_starts WHERE org = :org AND slot < :limit"
        )
        self._give_back = text(
            "UPDATE zoho_org_call_starts SET started_by = previous, holder = NULL"
            " WHERE org = :org AND slot = :slot AND holder = :token"
        )
        self._counted = text(
            f"SELECT COUNT(*) FROM zoho_org_call_starts WHERE org = :org AND started_by > {now} - :minute"
        )
        db.ensure_call_rows(org, per_minute)

    def _params(self, now: float, **extra: Any) -> dict[str, Any]:
        params = {"org": self.org, "limit": self.per_minute, "minute": MINUTE_SECONDS, **extra}
        if self._bind_now:
            params["now"] = now
        return params

    def start(self) -> float:
        """Block until this process may start one call; the caller sends it at once. This clock's reading then.

        Raises :class:`OrgLimitsUnavailable` when the database does not answer (nothing was sent).
        """
        with self._lock:
            self._waiting += 1
        try:
            delay = POLL_MIN_S
            while True:
                at = self._pop()
                if at is not None:
                    return at
                with self._door:  # one thread of this process asks the database; the others wait here
                    at = self._pop()
                    if at is not None:
                        return at
                    if self._unused:
                        try:
                            self.give_back()
                        except OrgLimitsUnavailable:
                            pass  # the reservation below says so, and why
                    if self.reserve(self._demand()):
                        delay = POLL_MIN_S
                        continue
                    self.waits += 1
                    wait = self._until_free()
                    if wait > 0:
                        self._sleep(min(wait, MINUTE_POLL_MAX_S))
                    else:  # free rows another process holds locked this instant
                        self._sleep(delay)
                        delay = min(delay * 2, POLL_MAX_S)
        finally:
            with self._lock:
                self._waiting -= 1

    def try_start(self) -> float | None:
        """Like :meth:`start` without waiting: None when the org's ceiling is reached now."""
        at = self._pop()
        if at is None and self.reserve(1):
            at = self._pop()
        return at

    def _demand(self) -> int:
        with self._lock:
            return max(1, min(MINUTE_BLOCK_MAX, self.per_minute, self._waiting - len(self._pool)))

    def _pop(self) -> float | None:
        now = self._clock()
        with self._lock:
            while self._pool:
                use_by, slot, token = self._pool.popleft()
                if now < use_by:
                    self.started += 1
                    return now
                self._unused.append((slot, token))
        return None

    def reserve(self, n: int) -> int:
        """Reserve up to ``n`` calls of the org's minute for this process (its threads take them); how many."""
        token = f"{self.holder}#m{next(self._seq)}"
        before = self._clock()  # read before the statement goes: the server's now is later
        params = self._params(before, n=n, token=token, allowance=self.allowance)
        try:
            slots = self._db.run(
                "reserving calls under the org's per-minute ceiling",
                lambda conn: [int(s) for s in conn.execute(self._take, params).scalars()],
            )
        except OrgLimitsUnavailable as exc:
            raise OrgLimitsUnavailable(f"{exc}; the call was not sent to Zoho") from None
        if slots:
            with self._lock:
                self._pool.extend((before + self._use_within, slot, token) for slot in slots)
                self.reserved += len(slots)
                self.reservations += 1
        return len(slots)

    def _until_free(self) -> float:
        params = self._params(self._clock())
        try:
            wait = self._db.run(
                "reading the org's per-minute ceiling",
                lambda conn: conn.execute(self._next_free, params).scalar_one_or_none(),
            )
        except OrgLimitsUnavailable as exc:
            raise OrgLimitsUnavailable(f"{exc}; the call was not sent to Zoho") from None
        return MINUTE_POLL_MAX_S if wait is None else float(wait)

    def give_back(self, *, everything: bool = False) -> int:
        """Return reserved calls not started in time (``everything``: every reserved one; on close)."""
        now = self._clock()
        with self._lock:
            while self._pool and (everything or now >= self._pool[0][0]):
                _, slot, token = self._pool.popleft()
                self._unused.append((slot, token))
            unused, self._unused = self._unused, []
        if not unused:
            return 0
        rows = [{"org": self.org, "slot": slot, "token": token} for slot, token in unused]
        try:
            self._db.run("returning unused calls of the per-minute ceiling",
                         lambda conn: conn.execute(self._give_back, rows))
        except OrgLimitsUnavailable:
            with self._lock:
                self._unused.extend(unused)
            raise
        with self._lock:
            self.given_back += len(unused)
        return len(unused)

    def counted(self) -> int:
        """Calls of every process that count against the org's minute now (an upper bound: reserved ones too)."""
        params = self._params(self._clock())
        return int(self._db.run("reading the org's per-minute ceiling",
                                lambda conn: conn.execute(self._counted, params).scalar_one()))


# -- the whole -------------------------------------------------------------------------------------


class OrgLimits:
    """Slots and credits of one org for this process, with the threads that keep them current."""

    def __init__(
        self,
        url: str,
        org: str,
        *,
        concurrency: int,
        heavy_cap: int,
        lease_seconds: float = 30.0,
        sync_seconds: float = 1.0,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
        connect_timeout: float = 5.0,
        rate_clock: Callable[[], float] | None = None,
        rate_sleep: Callable[[float], None] = time.sleep,
        start_allowance: float = START_ALLOWANCE_S,
    ) -> None:
        """``clock`` dates credit spends; ``rate_clock``/``rate_sleep`` time the per-minute ceiling
        (default: the server's time and real sleep; see :class:`OrgMinute`)."""
        self.db = OrgDatabase(url, connect_timeout=connect_timeout)
        self.org = org
        holder = f"{socket.gethostname()[:48]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.holder = holder
        self._rate = {"clock": rate_clock, "sleep": rate_sleep, "allowance": start_allowance}
        self._minutes: dict[int, OrgMinute] = {}
        self._minutes_lock = threading.Lock()
        self.slots = OrgSlots(
            self.db, org, concurrency=concurrency, heavy_cap=heavy_cap, lease_seconds=lease_seconds, holder=holder
        )
        self.credits = OrgCredits(self.db, org, window_seconds=window_seconds, sync_seconds=sync_seconds,
                                  clock=clock)
        try:
            self.db.ensure_schema(org, self.slots.limits)
        except OrgLimitsUnavailable:
            self.db.dispose()
            raise
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._keep, name="zoho-org-limits", daemon=True)]
        if self.db.backend == "postgresql":
            self._threads.append(threading.Thread(target=self._listen, name="zoho-org-listen", daemon=True))
        for thread in self._threads:
            thread.start()

    def minute(self, per_minute: int) -> OrgMinute:
        """The org's ceiling of ``per_minute`` call starts a minute for this process (one per ceiling)."""
        with self._minutes_lock:
            ceiling = self._minutes.get(per_minute)
            if ceiling is None:
                ceiling = self._minutes[per_minute] = OrgMinute(
                    self.db, self.org, per_minute=per_minute, holder=self.holder, **self._rate
                )
            return ceiling

    def _ceilings(self) -> list[OrgMinute]:
        with self._minutes_lock:
            return list(self._minutes.values())

    # -- background ------------------------------------------------------------------------------
    def _keep(self) -> None:
        """Renew leases every third of a lease, sync credits every ``sync_seconds``."""
        renew_every = self.slots.lease_seconds / 3
        tick = min(renew_every, self.credits.sync_seconds)
        next_renew = time.monotonic() + renew_every
        failing = False
        while not self._stop.wait(tick):
            try:
                self.slots.free_leftovers()
                for ceiling in self._ceilings():
                    ceiling.give_back()
                if time.monotonic() >= next_renew:
                    self.slots.renew()
                    next_renew = time.monotonic() + renew_every
                self.credits.sync()
                if failing:
                    logger.info("the shared Zoho org limits database (%s) answers again", self.db.shown)
                    failing = False
            except OrgLimitsUnavailable as exc:
                if not failing:
                    logger.warning("%s; new Zoho calls fail until it is back", exc)
                    failing = True

    def _listen(self) -> None:
        """Wake this process's waiters when another process frees a slot (PostgreSQL LISTEN/NOTIFY)."""
        import psycopg

        kwargs = self.db.listen_kwargs()
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(**kwargs) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.slots.notified = True
                    backoff = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            org, _, kind = note.payload.partition("|")
                            if org == self.org:
                                self.slots.wake(kind)
            except Exception:  # noqa: BLE001 - any driver failure: waiters poll until we are back
                self.slots.notified = False
                for kind in KINDS:
                    self.slots.wake(kind)  # let a waiter poll at once rather than at the notified pace
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.slots.notified = False

    # -- reading ---------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Counts only: slots held now by every process, the org's credits in the window."""
        snap: dict[str, Any] = {
            "held": self.slots.occupancy(),
            "limits": dict(self.slots.limits),
            "credits_24h": self.credits.sync(),
            "own_credits": self.credits.own_total,
        }
        ceilings = self._ceilings()
        if ceilings:
            snap["calls_per_minute"] = max(c.per_minute for c in ceilings)
            snap["calls_this_minute"] = ceilings[0].counted()
        return snap

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for ceiling in self._ceilings():
            try:
                ceiling.give_back(everything=True)
            except OrgLimitsUnavailable as exc:  # they come back a minute after their allowance
                logger.warning("%s; reserved calls not returned", exc)
        self.credits.flush()
        self.db.dispose()


_SHARED: dict[tuple[Any, ...], OrgLimits] = {}
_SHARED_LOCK = threading.Lock()


def shared_org_limits(url: str, org: str, **settings: Any) -> OrgLimits:
    """This process's one :class:`OrgLimits` for ``url`` and ``org``: every client of the process shares it,
    so its threads and connections do not multiply with the clients a run builds."""
    key = (os.getpid(), url, org, tuple(sorted(settings.items())))
    with _SHARED_LOCK:
        limits = _SHARED.get(key)
        if limits is None:
            limits = _SHARED[key] = OrgLimits(url, org, **settings)
        return limits


@atexit.register
def close_shared_org_limits() -> None:
    """Stop the shared instances (writing their pending spends); at exit, or between tests."""
    with _SHARED_LOCK:
        mine = [(k, v) for k, v in _SHARED.items() if k[0] == os.getpid()]
        for key, _ in mine:
            del _SHARED[key]
    for _, limits in mine:
        limits.close()
