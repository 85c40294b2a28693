"""Contacts several offices share (cross-office policy ``merge``, docs/cross_office.md).

The crosswalk holds one row per Zoho record: the office that created it, whose
``Source_System_ID`` the record carries (the *anchor*). When a patient of another office is the
same person, that office's record *joins* the Contact instead of creating one: ``shared_owners``
then lists the creator and every joiner, each until a rollback of its office releases it. The
Contact is deleted only with its last owner.

Deciding "create or join" must be atomic across processes (two offices may load the same
person at once): ``settle_merge`` runs in one transaction that holds the audit chain's tip lock
(SELECT ... FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on SQLite) from its first statement, so
deciders queue; the first member of a group to load *claims* it (``merge_claims``) and creates
the Contact, the others join it once it is in the crosswalk.

A claim ends with its run: a run that failed or was canceled has its claims released
(``release_claims``, the run-failure sensor), and a claim whose run is not running is taken over
by the next office, except where a write of the claimed record is in doubt (announced, and neither
recorded nor refused by Zoho: the Contact may be in Zoho, unknown to the ledger). That claim waits for its own office's
next run, which adopts the Contact or sends the record again, so two offices never both make the
person's Contact.

Each org-level audit records, with its groups and in the same transaction, the offices it covered
(``cross_office_audit`` audit entries under the audit's id; ``ledger_meta`` names the latest): a
load under ``merge`` reads the groups of the latest audit only, so that audit must cover its office.

Ids, codes and counts only: nothing here holds a patient's data.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from dentrix_zoho.ledger import schema as s
from dentrix_zoho.ledger.engine import write_locked
from dentrix_zoho.ledger.models import (
    AuditEntry,
    CrosswalkRow,
    LedgerError,
    MergeCandidate,
    MergeDecision,
    MergeMember,
    SharedOwner,
)

IN_CHUNK = 500
JOIN_OPERATION = "cross_office_join"
CLAIM_OPERATION = "cross_office_claim"
RELEASE_OPERATION = "cross_office_release"
# One entry per office an org-level audit covered (its code is the office id), under the audit's id.
AUDIT_OPERATION = "cross_office_audit"
# ledger_meta: the id of the latest org-level audit, whose groups are the ones in merge_groups.
AUDIT_META_KEY = "cross_office_audit"
_MERGE_OPERATIONS = (JOIN_OPERATION, CLAIM_OPERATION, RELEASE_OPERATION, AUDIT_OPERATION)

_Key = tuple[str, str, str]  # (office, source object, source id)


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _owner(row: Any) -> SharedOwner:
    return SharedOwner(
        zoho_module=row.zoho_module,
        zoho_id=row.zoho_id,
        office_id=row.office_id,
        source_object=row.source_object,
        source_id=row.source_id,
        role=row.role,
        run_id=row.run_id,
        row_hash=row.row_hash,
        since=row.since,
        released=bool(row.released),
        released_by_run=row.released_by_run,
    )


_CROSSWALK_FIELDS = tuple(f.name for f in fields(CrosswalkRow))


def _crosswalk_row(row: Any) -> CrosswalkRow:
    values = row._mapping
    return CrosswalkRow(**{name: values[name] for name in _CROSSWALK_FIELDS if name in values})


@dataclass(frozen=True, slots=True)
class OrgAudit:
    """The latest org-level audit whose groups the ledger holds: when it ran and which offices it compared."""

    audit_id: str
    audited_at: str
    offices: tuple[str, ...]

    def covers(self, office_id: str) -> bool:
        return office_id in self.offices


def lock_tip(conn: Connection) -> None:
    """Take the audit chain's tip row lock: every decider and appender queues behind it."""
    conn.execute(select(s.audit_tip.c.id).where(s.audit_tip.c.id == 1).with_for_update()).first()


class ClaimLost(LedgerError):
    """A run was about to send a Contact whose merge claim it no longer holds.

    The claim was released (the run was marked failed or canceled, ``org/ended_runs.py``) or taken
    over by another office while this run's process still ran: sending now could make the person's
    second Contact. Nothing of the batch is announced or sent; the run stops, and the office's next
    run decides again. The message names counts, never a patient.
    """


class SharedContacts:
    """The ledger's cross-office methods; mixed into :class:`dentrix_zoho.ledger.Ledger`."""

    engine: Engine
    _audit_lock: threading.Lock

    if TYPE_CHECKING:  # the Ledger's own

        def now(self) -> str: ...

        def _append_audit(self, conn: Connection, batch: Sequence[AuditEntry]) -> list[int]: ...

    # -- the org-level audit's groups ------------------------------------------------------

    def replace_merge_groups(self, members: Iterable[MergeMember], *, offices: Iterable[str],
                             audit_id: str | None = None) -> int:
        """Put the org-level audit's groups in place of the previous ones and record the ``offices`` it
        compared (every member's office among them), in one transaction."""
        rows = list(members)
        covered = sorted(set(offices))
        seen: set[tuple[str, str, str]] = set()
        for member in rows:
            key = (member.office_id, member.source_object, member.source_id)
            if key in seen:
                raise LedgerError(f"merge groups: {member.source_id} is in more than one group")
            seen.add(key)
        outside = sorted({m.office_id for m in rows} - set(covered))
        if outside:
            raise LedgerError(f"merge groups: office(s) {', '.join(outside)} not among the audited offices")
        audit_id = audit_id or f"org-audit-{uuid.uuid4().hex}"
        coverage = [AuditEntry(audit_id, AUDIT_OPERATION, "Contacts", "ok", code=office) for office in covered]
        for entry in coverage:
            entry.validate()
        now = self.now()
        with self._audit_lock, write_locked(self.engine) as conn:
            lock_tip(conn)  # a decider sees the old groups or the new ones, never half of them
            conn.execute(delete(s.merge_groups))
            for chunk in _chunks(rows):
                conn.execute(
                    insert(s.merge_groups),
                    [
                        {
                            "group_key": m.group_key,
                            "office_id": m.office_id,
                            "source_object": m.source_object,
                            "source_id": m.source_id,
                            "basis": m.basis,
                            "detected_at": now,
                        }
                        for m in chunk
                    ],
                )
            if coverage:
                self._append_audit(conn, coverage)
            meta = s.ledger_meta.c
            if conn.execute(select(meta.key).where(meta.key == AUDIT_META_KEY)).first() is None:
                conn.execute(insert(s.ledger_meta).values(key=AUDIT_META_KEY, value=audit_id))
            else:
                conn.execute(update(s.ledger_meta).where(meta.key == AUDIT_META_KEY).values(value=audit_id))
        return len(rows)

    def latest_org_audit(self) -> OrgAudit | None:
        """The org-level audit whose groups are in place (None: no audit under ``merge`` yet)."""
        meta, a = s.ledger_meta.c, s.audit_log.c
        with self.engine.connect() as conn:
            audit_id = conn.execute(select(meta.value).where(meta.key == AUDIT_META_KEY)).scalar()
            if audit_id is None:
                return None
            rows = conn.execute(
                select(a.code, a.time).where(a.run_id == audit_id, a.operation == AUDIT_OPERATION).order_by(a.seq)
            ).all()
        if not rows:
            return None
        return OrgAudit(str(audit_id), str(rows[0].time), tuple(str(r.code) for r in rows))

    def merge_groups(self, office_id: str | None = None) -> dict[str, list[MergeMember]]:
        """Group key -> its members; with ``office_id``, only the groups that include that office."""
        g = s.merge_groups.c
        query = select(g.group_key, g.office_id, g.source_object, g.source_id, g.basis).order_by(g.group_key, g.id)
        groups: dict[str, list[MergeMember]] = {}
        with self.engine.connect() as conn:
            if office_id is None:
                result: Iterable[Any] = conn.execute(query)
            else:
                keys = [k for (k,) in conn.execute(select(g.group_key).where(g.office_id == office_id).distinct())]
                result = [row for chunk in _chunks(keys) for row in conn.execute(query.where(g.group_key.in_(chunk)))]
            for row in result:
                groups.setdefault(row.group_key, []).append(MergeMember(*row))
        return groups

    # -- create or join ------------------------------------------------------------------

    def settle_merge(
        self,
        run_id: str,
        office_id: str,
        module: str,
        candidates: Sequence[MergeCandidate],
        *,
        dry_run: bool = False,
    ) -> list[MergeDecision]:
        """Per candidate: send it (its own Contact, or the first of its group), join it to the group's
        Contact (recorded here, with an audit entry), or let it wait for the office creating it.

        ``dry_run`` decides the same way and writes nothing.
        """
        wanted = list({c.source_id: c for c in candidates}.values())
        if not wanted:
            return []
        if dry_run:
            with self.engine.connect() as conn:
                return _Settler(conn, run_id, office_id, module, self.now()).decide(wanted)
        with self._audit_lock, write_locked(self.engine) as conn:
            lock_tip(conn)
            settler = _Settler(conn, run_id, office_id, module, self.now())
            decisions = settler.decide(wanted)
            settler.flush()
            if settler.audit:
                self._append_audit(conn, settler.audit)
        return decisions

    # -- reading and releasing holds -------------------------------------------------------

    def shared_owners(
        self,
        *,
        module: str | None = None,
        zoho_ids: Iterable[str] | None = None,
        office_id: str | None = None,
        run_id: str | None = None,
        released: bool | None = None,
    ) -> list[SharedOwner]:
        o = s.shared_owners.c
        query = select(s.shared_owners).order_by(o.id)
        if module is not None:
            query = query.where(o.zoho_module == module)
        if office_id is not None:
            query = query.where(o.office_id == office_id)
        if run_id is not None:
            query = query.where(o.run_id == run_id)
        if released is not None:
            query = query.where(o.released.is_(released))
        with self.engine.connect() as conn:
            if zoho_ids is None:
                return [_owner(row) for row in conn.execute(query)]
            ids = list(dict.fromkeys(zoho_ids))
            return [_owner(row) for chunk in _chunks(ids) for row in conn.execute(query.where(o.zoho_id.in_(chunk)))]

    def count_shared_holds(self, office_id: str, *, role: str | None = None, released: bool = False) -> int:
        o = s.shared_owners.c
        query = select(func.count()).where(o.office_id == office_id, o.released.is_(released))
        if role is not None:
            query = query.where(o.role == role)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def release_shared(
        self,
        by_run: str,
        module: str,
        holds: Sequence[SharedOwner],
        audit: Sequence[AuditEntry] = (),
    ) -> int:
        """Release offices' holds on shared Contacts (a rollback of theirs), with audit entries, atomically."""
        for entry in audit:
            entry.validate()
        now = self.now()
        released = 0
        o = s.shared_owners.c
        with self._audit_lock, write_locked(self.engine) as conn:
            for hold in holds:
                released += conn.execute(
                    update(s.shared_owners)
                    .where(
                        o.zoho_module == module,
                        o.zoho_id == hold.zoho_id,
                        o.office_id == hold.office_id,
                        o.source_object == hold.source_object,
                        o.source_id == hold.source_id,
                        o.released.is_(False),
                    )
                    .values(released=True, released_by_run=by_run, released_at=now)
                ).rowcount
            if audit:
                self._append_audit(conn, audit)
        return released

    def announce_claimed(self, entries: Sequence[AuditEntry], office_id: str, claimed: Iterable[str]) -> list[int]:
        """Append a batch's send intents (``entries``) if the run still holds the merge claims it took
        for ``claimed`` (source ids of the batch that this run claimed a group for); else ``ClaimLost``.

        One transaction behind the audit tip, as ``release_claims`` and the deciders: a release either
        comes first (then this refuses) or finds the intent and keeps the claim as in doubt.
        """
        wanted = sorted(set(claimed))
        for entry in entries:
            entry.validate()
        if not entries:
            return []
        run_ids = {entry.run_id for entry in entries}
        if len(run_ids) != 1:
            raise ValueError("one run's intents at a time")
        [run_id] = run_ids
        m = s.merge_claims.c
        with self._audit_lock, write_locked(self.engine) as conn:
            lock_tip(conn)
            held: set[str] = set()
            for chunk in _chunks(wanted):
                held.update(str(sid) for (sid,) in conn.execute(select(m.source_id).where(
                    m.office_id == office_id, m.run_id == run_id, m.source_id.in_(chunk))))
            lost = len(set(wanted) - held)
            if lost:
                raise ClaimLost(
                    f"run {run_id} no longer holds {lost} of the {len(wanted)} merge claim(s) of the batch it was "
                    "about to send (released when the run was marked ended, or taken over by another office): "
                    "nothing of the batch was sent; the office's next run decides again")
            return self._append_audit(conn, list(entries))

    def release_claims(self, run_id: str, module: str, *, code: str) -> tuple[int, int]:
        """Release the merge claims of ``run_id``, a run that ended (failed, canceled) without finishing:
        the next office to load the person claims the group. Returns (released, kept).

        A claim whose record's write is in doubt (announced, neither recorded nor refused: the
        Contact may be in Zoho) is kept for its office's next run. Only claims ``run_id`` still holds
        are touched: a retry of the office that claimed a group again holds it under its own run.
        Idempotent: a second call finds nothing to release.
        """
        m = s.merge_claims.c
        with self._audit_lock, write_locked(self.engine) as conn:
            lock_tip(conn)  # deciders queue behind it: none sees a claim half released
            claims = [_Claim(*row) for row in conn.execute(
                select(m.group_key, m.office_id, m.source_object, m.source_id, m.run_id).where(m.run_id == run_id))]
            doubtful = _writes_in_doubt(conn, module, claims)
            released = [c for c in claims if (c.office_id, c.source_object, c.source_id) not in doubtful]
            for chunk in _chunks([c.group_key for c in released]):
                conn.execute(delete(s.merge_claims).where(m.group_key.in_(chunk), m.run_id == run_id))
            if released:
                self._append_audit(conn, [AuditEntry(run_id, RELEASE_OPERATION, module, "ok", source_id=c.source_id,
                                                     code=code) for c in released])
        return len(released), len(claims) - len(released)

    def _release_deleted(self, conn: Connection, by_run: str, module: str, zoho_ids: Sequence[str], now: str) -> None:
        """A deleted Contact has no owners left."""
        o = s.shared_owners.c
        for chunk in _chunks(list(zoho_ids)):
            conn.execute(
                update(s.shared_owners)
                .where(o.zoho_module == module, o.zoho_id.in_(chunk), o.released.is_(False))
                .values(released=True, released_by_run=by_run, released_at=now)
            )

    def _shared_view(
        self, conn: Connection, office_id: str, source_object: str, own: Mapping[str, CrosswalkRow], source_ids: Sequence[str]
    ) -> dict[str, CrosswalkRow]:
        """How ``lookup_many`` sees this office's records through its holds on shared Contacts.

        A record that joined a live shared Contact reads as a row of this office pointing at it (so a
        child's parent, the accounting and the estimate find it); one whose office released its hold
        on the Contact it created reads as deleted (the office has rolled back; the Contact lives on
        for another office).
        """
        o = s.shared_owners.c
        holds: dict[str, list[Any]] = {}
        for chunk in _chunks(list(source_ids)):
            query = select(s.shared_owners).where(
                o.office_id == office_id, o.source_object == source_object, o.source_id.in_(chunk)
            )
            for row in conn.execute(query):
                holds.setdefault(row.source_id, []).append(row)
        if not holds:
            return {}
        anchors = _anchors(conn, [(h.zoho_module, h.zoho_id) for rows in holds.values() for h in rows])
        view: dict[str, CrosswalkRow] = {}
        for sid, rows in holds.items():
            mine = own.get(sid)
            live = [h for h in rows if _is_live(anchors, h.zoho_module, h.zoho_id)]
            if mine is not None and not mine.deleted:
                created = next((h for h in live if h.zoho_id == mine.zoho_id and h.zoho_module == mine.zoho_module), None)
                if created is not None and created.released:
                    view[sid] = replace(mine, deleted=True, deleted_by_run=created.released_by_run)
                continue
            joined = next((h for h in live if h.role == "joined" and not h.released), None)
            if joined is None:
                continue
            anchor = anchors[(joined.zoho_module, joined.zoho_id)]
            view[sid] = CrosswalkRow(
                office_id=office_id,
                source_object=source_object,
                source_id=sid,
                zoho_module=joined.zoho_module,
                zoho_id=joined.zoho_id,
                row_hash=joined.row_hash,
                last_run_id=joined.run_id,
                created_by_run=None,  # another office created it
                first_written_at=joined.since,
                last_written_at=joined.since,
                zoho_modified_time=anchor.zoho_modified_time,
            )
        return view


def _anchors(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CrosswalkRow]:
    by_module: dict[str, list[str]] = {}
    for module, zoho_id in set(keys):
        by_module.setdefault(module, []).append(zoho_id)
    c = s.crosswalk.c
    found: dict[tuple[str, str], CrosswalkRow] = {}
    for module, ids in by_module.items():
        for chunk in _chunks(ids):
            for row in conn.execute(select(s.crosswalk).where(c.zoho_module == module, c.zoho_id.in_(chunk))):
                found[(module, row.zoho_id)] = _crosswalk_row(row)
    return found


def _is_live(anchors: Mapping[tuple[str, str], CrosswalkRow], module: str, zoho_id: str) -> bool:
    anchor = anchors.get((module, zoho_id))
    return anchor is not None and not anchor.deleted


def _writes_in_doubt(conn: Connection, module: str, claims: Iterable[_Claim]) -> set[_Key]:
    """The claimed records a write of which may have landed unrecorded: no live crosswalk row of their
    office, and the audit log's latest word on them in ``module`` from any run of that office is a send
    intent, an uncertain answer, or an error that run did not quarantine (Zoho unavailable, the answer
    lost: the loader sends those again). A refusal the loader quarantined, or no write at all, leaves no doubt."""
    by_office: dict[str, dict[str, _Claim]] = {}
    for claim in claims:
        by_office.setdefault(claim.office_id, {})[claim.source_id] = claim
    r, a, c, q = s.runs.c, s.audit_log.c, s.crosswalk.c, s.quarantine.c
    found: set[_Key] = set()
    for office, wanted in by_office.items():
        sids = sorted(wanted)
        live: set[str] = set()
        for chunk in _chunks(sids):
            live.update(sid for (sid,) in conn.execute(select(c.source_id).where(
                c.office_id == office, c.zoho_module == module, c.deleted.is_(False), c.source_id.in_(chunk))))
        asked = [sid for sid in sids if sid not in live]
        if not asked:
            continue
        runs = [rid for (rid,) in conn.execute(select(r.run_id).where(r.office_id == office))]
        latest: dict[str, tuple[int, str, str]] = {}
        for run_chunk in _chunks(runs):  # by run: the audit log is indexed on it, not on the source id
            for chunk in _chunks(asked):
                query = select(a.source_id, a.seq, a.outcome, a.run_id).where(
                    a.run_id.in_(run_chunk), a.module == module, a.source_id.in_(chunk),
                    a.operation.not_in(_MERGE_OPERATIONS))
                for sid, seq, outcome, run_id in conn.execute(query):
                    if sid not in latest or seq > latest[sid][0]:
                        latest[sid] = (int(seq), str(outcome), str(run_id))
        refused: set[tuple[str, str]] = set()
        errors = [sid for sid, (_, outcome, _) in latest.items() if outcome == "error"]
        for chunk in _chunks(errors):
            refused.update((sid, run_id) for sid, run_id in conn.execute(select(q.source_id, q.run_id).where(
                q.office_id == office, q.source_id.in_(chunk), q.status == "open")))
        found.update((office, wanted[sid].source_object, sid) for sid, (_, outcome, run_id) in latest.items()
                     if outcome == "uncertain" or (outcome == "error" and (sid, run_id) not in refused))
    return found


@dataclass(frozen=True, slots=True)
class _Claim:
    group_key: str
    office_id: str
    source_object: str
    source_id: str
    run_id: str


@dataclass
class _Settler:
    """One ``settle_merge`` transaction: reads everything the decisions need, then writes once."""

    conn: Connection
    run_id: str
    office_id: str
    module: str
    now: str
    audit: list[AuditEntry] = field(default_factory=list)
    anchors: dict[tuple[str, str], CrosswalkRow] = field(default_factory=dict)
    shared: set[str] = field(default_factory=set)  # Zoho ids that have holds already
    claims: dict[str, _Claim] = field(default_factory=dict)
    run_status: dict[str, str] = field(default_factory=dict)
    in_doubt: set[_Key] = field(default_factory=set)  # ended claims whose record's write may have landed
    _inserts: list[dict[str, Any]] = field(default_factory=list)
    _updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _claim_inserts: list[dict[str, Any]] = field(default_factory=list)
    _claim_updates: list[dict[str, Any]] = field(default_factory=list)

    def decide(self, candidates: Sequence[MergeCandidate]) -> list[MergeDecision]:
        own = self._crosswalk({(self.office_id, c.source_object, c.source_id) for c in candidates})
        mine = self._holds({(self.office_id, c.source_object, c.source_id) for c in candidates}, released=None)
        other_keys = {k for c in candidates for k in c.others}
        others = {k: row for k, row in self._crosswalk(other_keys).items() if not row.deleted}
        other_holds = self._holds(other_keys, released=False)
        zoho_ids = {row.zoho_id for row in (*own.values(), *others.values())}
        zoho_ids |= {h.zoho_id for rows in (*mine.values(), *other_holds.values()) for h in rows}
        self.anchors = _anchors(self.conn, [(self.module, z) for z in zoho_ids])
        self.shared = self._shared_ids(zoho_ids)
        self.claims = self._claims({c.group_key for c in candidates})
        self.run_status = self._run_status({claim.run_id for claim in self.claims.values()})
        # Only an ended claim with no Contact in the crosswalk could be taken over: those alone are looked into.
        ended = [cl for cl in self.claims.values() if cl.run_id != self.run_id
                 and self.run_status.get(cl.run_id) != "running" and (cl.office_id, cl.source_object, cl.source_id)
                 not in others and cl.office_id != self.office_id]
        self.in_doubt = _writes_in_doubt(self.conn, self.module, ended) if ended else set()
        decisions: list[MergeDecision] = []
        for c in candidates:
            key = (self.office_id, c.source_object, c.source_id)
            decisions.append(self._decide(c, own.get(key), mine.get(key, []), others, other_holds))
        return decisions

    def _decide(
        self,
        c: MergeCandidate,
        own: CrosswalkRow | None,
        holds: list[Any],
        others: Mapping[_Key, CrosswalkRow],
        other_holds: Mapping[_Key, list[Any]],
    ) -> MergeDecision:
        live_holds = [h for h in holds if _is_live(self.anchors, self.module, h.zoho_id)]
        if own is not None and not own.deleted and own.zoho_module == self.module:
            # Its own Contact (it created it, or the policy was `separate` when it loaded): it stays the writer.
            for hold in live_holds:
                if hold.zoho_id == own.zoho_id and hold.released:
                    self._update(hold, released=False, released_by_run=None, released_at=None, run_id=self.run_id)
                    self._audit(JOIN_OPERATION, c.source_id, own.zoho_id, "REJOINED")
                elif hold.zoho_id != own.zoho_id and hold.role == "joined" and not hold.released:
                    self._update(hold, released=True, released_by_run=self.run_id, released_at=self.now)
                    self._audit(RELEASE_OPERATION, c.source_id, hold.zoho_id, "SUPERSEDED")
            return MergeDecision(c.source_id, "send", "CREATOR", own.zoho_id)
        joined = next((h for h in live_holds if h.role == "joined"), None)
        if joined is not None:
            if joined.released:
                self._update(joined, released=False, released_by_run=None, released_at=None, run_id=self.run_id,
                             row_hash=c.row_hash)
                self._audit(JOIN_OPERATION, c.source_id, joined.zoho_id, "REJOINED")
                return MergeDecision(c.source_id, "joined", "REJOINED", joined.zoho_id)
            if joined.row_hash != c.row_hash:
                self._update(joined, row_hash=c.row_hash)
            return MergeDecision(c.source_id, "joined", "STILL_JOINED", joined.zoho_id)

        found = {others[k].zoho_id for k in c.others if k in others and others[k].zoho_module == self.module}
        found |= {h.zoho_id for k in c.others for h in other_holds.get(k, [])}
        found = {z for z in found if _is_live(self.anchors, self.module, z)}
        if len(found) > 1:
            # Two offices made Contacts of their own before the merge (policy `separate`): never merged here.
            return MergeDecision(c.source_id, "send", "AMBIGUOUS")
        if found:
            zoho_id = found.pop()
            self._join(c, zoho_id, holds)
            return MergeDecision(c.source_id, "joined", "JOINED", zoho_id)
        return self._claim(c)

    def _join(self, c: MergeCandidate, zoho_id: str, holds: list[Any]) -> None:
        anchor = self.anchors[(self.module, zoho_id)]
        if zoho_id not in self.shared:
            self._insert(anchor.office_id, anchor.source_object, anchor.source_id, zoho_id, "created",
                         anchor.created_by_run or anchor.last_run_id, anchor.row_hash)
            self.shared.add(zoho_id)
        old = next((h for h in holds if h.zoho_id == zoho_id), None)
        if old is not None:  # it held this Contact before a rollback released it
            self._update(old, released=False, released_by_run=None, released_at=None, run_id=self.run_id,
                         row_hash=c.row_hash, role="joined")
        else:
            self._insert(self.office_id, c.source_object, c.source_id, zoho_id, "joined", self.run_id, c.row_hash)
        self._audit(JOIN_OPERATION, c.source_id, zoho_id, "JOINED")

    def _claim(self, c: MergeCandidate) -> MergeDecision:
        claim = self.claims.get(c.group_key)
        me = (self.office_id, c.source_object, c.source_id)
        values = {"office_id": self.office_id, "source_object": c.source_object, "source_id": c.source_id,
                  "run_id": self.run_id, "claimed_at": self.now}
        if claim is None:
            self._claim_inserts.append({"group_key": c.group_key, **values})
            self._audit(CLAIM_OPERATION, c.source_id, None, "CLAIMED")
        elif (claim.office_id, claim.source_object, claim.source_id) == me:
            if claim.run_id != self.run_id:
                self._claim_updates.append({"group_key": c.group_key, **values})
        elif claim.run_id != self.run_id and self.run_status.get(claim.run_id) == "running":
            # Another office's load is creating this person's Contact: join it on the next run.
            return MergeDecision(c.source_id, "wait", "WAITING", claimed_by_office=claim.office_id)
        elif (claim.office_id, claim.source_object, claim.source_id) in self.in_doubt:
            # The claimant's run ended with its write of the person unanswered: the Contact may be in Zoho.
            # Its office's next run adopts it (then this office joins) or sends it again; a take-over now
            # could make a second Contact.
            return MergeDecision(c.source_id, "wait", "IN_DOUBT", claimed_by_office=claim.office_id)
        else:
            # The claimant's load ended without a Contact (held back, refused, rolled back): take over.
            self._claim_updates.append({"group_key": c.group_key, **values})
            self._audit(CLAIM_OPERATION, c.source_id, None, "TAKEN_OVER")
        self.claims[c.group_key] = _Claim(c.group_key, self.office_id, c.source_object, c.source_id, self.run_id)
        return MergeDecision(c.source_id, "send", "CLAIMED")

    # -- reads ---------------------------------------------------------------------------

    def _crosswalk(self, keys: set[_Key]) -> dict[_Key, CrosswalkRow]:
        grouped: dict[tuple[str, str], list[str]] = {}
        for office, obj, sid in keys:
            grouped.setdefault((office, obj), []).append(sid)
        c = s.crosswalk.c
        found: dict[_Key, CrosswalkRow] = {}
        for (office, obj), sids in grouped.items():
            for chunk in _chunks(sids):
                query = select(s.crosswalk).where(
                    c.office_id == office, c.source_object == obj, c.source_id.in_(chunk)
                )
                for row in self.conn.execute(query):
                    found[(office, obj, row.source_id)] = _crosswalk_row(row)
        return found

    def _holds(self, keys: set[_Key], *, released: bool | None) -> dict[_Key, list[Any]]:
        grouped: dict[tuple[str, str], list[str]] = {}
        for office, obj, sid in keys:
            grouped.setdefault((office, obj), []).append(sid)
        o = s.shared_owners.c
        found: dict[_Key, list[Any]] = {}
        for (office, obj), sids in grouped.items():
            for chunk in _chunks(sids):
                query = select(s.shared_owners).where(
                    o.zoho_module == self.module, o.office_id == office, o.source_object == obj, o.source_id.in_(chunk)
                )
                if released is not None:
                    query = query.where(o.released.is_(released))
                for row in self.conn.execute(query.order_by(o.id)):
                    found.setdefault((office, obj, row.source_id), []).append(row)
        return found

    def _shared_ids(self, zoho_ids: set[str]) -> set[str]:
        o = s.shared_owners.c
        found: set[str] = set()
        for chunk in _chunks(sorted(zoho_ids)):
            query = select(o.zoho_id).where(o.zoho_module == self.module, o.zoho_id.in_(chunk)).distinct()
            found.update(z for (z,) in self.conn.execute(query))
        return found

    def _claims(self, keys: set[str]) -> dict[str, _Claim]:
        m = s.merge_claims.c
        found: dict[str, _Claim] = {}
        for chunk in _chunks(sorted(keys)):
            query = select(m.group_key, m.office_id, m.source_object, m.source_id, m.run_id).where(m.group_key.in_(chunk))
            for row in self.conn.execute(query):
                found[row.group_key] = _Claim(*row)
        return found

    def _run_status(self, run_ids: set[str]) -> dict[str, str]:
        r = s.runs.c
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(run_ids)):
            found.update(dict(self.conn.execute(select(r.run_id, r.status).where(r.run_id.in_(chunk))).all()))
        return found

    # -- writes (flushed at the end of the transaction) ------------------------------------------

    def _insert(self, office: str, obj: str, sid: str, zoho_id: str, role: str, run_id: str, row_hash: str | None) -> None:
        self._inserts.append({
            "zoho_module": self.module, "zoho_id": zoho_id, "office_id": office, "source_object": obj,
            "source_id": sid, "role": role, "run_id": run_id, "row_hash": row_hash, "since": self.now,
            "released": False,
        })

    def _update(self, hold: Any, **values: Any) -> None:
        self._updates.append((int(hold.id), values))

    def _audit(self, operation: str, source_id: str, zoho_id: str | None, code: str) -> None:
        self.audit.append(AuditEntry(self.run_id, operation, self.module, "ok", source_id=source_id,
                                     zoho_id=zoho_id, code=code))

    def flush(self) -> None:
        if self._inserts:
            self.conn.execute(insert(s.shared_owners), self._inserts)
        for hold_id, values in self._updates:
            self.conn.execute(update(s.shared_owners).where(s.shared_owners.c.id == hold_id).values(**values))
        if self._claim_inserts:
            self.conn.execute(insert(s.merge_claims), self._claim_inserts)
        m = s.merge_claims.c
        for values in self._claim_updates:
            self.conn.execute(
                update(s.merge_claims)
                .where(and_(m.group_key == values["group_key"]))
                .values({k: v for k, v in values.items() if k != "group_key"})
            )
