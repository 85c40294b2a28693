"""The load's side of the cross-office policy: which Contacts rows go to Zoho, which join a shared Contact.

Under ``merge`` (``DENTRIX_CROSS_OFFICE_POLICY``, docs/cross_office.md) a patient the org-level
audit grouped with another office's is one Contact: the first office to load it creates it (its
row is sent as usual, keyed on its own ``Source_System_ID``); a later office's row is not sent
but *joins* that Contact in the ledger (``shared_owners``), so its children attach to it and a
rollback of either office keeps it while the other still owns it. A row whose group's Contact
is being created by another office's running load waits: held with a reason (quarantine
``cross_office_waiting``), it joins on the next run. Under ``separate`` every row is sent.

Every row is accounted for: sent, joined (counted under the rule ``cross_office_joined``), or
held with a reason. Counts and ids only leave this module.

A ``merge`` load of Contacts refuses to start (``OrgAuditMissing``, nothing sent) unless the latest
org-level audit, whose groups are the ones the ledger holds, covered the office: before it, every
patient another office shares would become a Contact of its own, which no later audit undoes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dentrix_zoho.ledger import Ledger, MergeCandidate, MergeDecision, QuarantineRow
from dentrix_zoho.load.ledger_io import BatchRecord, LedgerWriter
from dentrix_zoho.load.shaped import ShapedRow
from dentrix_zoho.org.policy import POLICY_ENV, CrossOfficePolicy, CrossOfficePolicyError, OrgAuditMissing

log = logging.getLogger(__name__)

MERGED_MODULE = "Contacts"
MERGED_OBJECTS = frozenset({"patient"})
JOINED_RULE = "cross_office_joined"
WAITING_CLASS = "cross_office_waiting"
WAITING_REASON = (
    "cross_office_waiting: another office's load is creating this person's shared Contact; "
    "the record joins it on the next run"
)


@dataclass(frozen=True)
class MergeMap:
    """One office's records in the org-level audit's mergeable groups: source id -> (group, other records)."""

    office_id: str
    groups: Mapping[str, tuple[str, tuple[tuple[str, str, str], ...]]] = field(default_factory=dict)

    @classmethod
    def load(cls, ledger: Ledger, office_id: str) -> MergeMap:
        groups: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {}
        for key, members in ledger.merge_groups(office_id).items():
            for member in members:
                if member.office_id != office_id:
                    continue
                others = tuple(
                    (m.office_id, m.source_object, m.source_id) for m in members if m.office_id != office_id
                )
                groups[member.source_id] = (key, others)
        return cls(office_id, groups)

    def candidate(self, row: ShapedRow) -> MergeCandidate | None:
        found = self.groups.get(row.source_id)
        if found is None or row.source_object not in MERGED_OBJECTS or not found[1]:
            return None
        return MergeCandidate(row.source_object, row.source_id, row.row_hash, found[0], found[1])


@dataclass
class CrossOfficeSplit:
    """The rows to send, and what became of the others."""

    send: list[ShapedRow]
    joined: dict[str, str] = field(default_factory=dict)  # source id -> the shared Contact's Zoho id
    waiting: list[ShapedRow] = field(default_factory=list)  # held: joins on the next run
    decisions: list[MergeDecision] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Counts only: safe for logs and Dagster metadata."""
        codes: dict[str, int] = {}
        for decision in self.decisions:
            codes[decision.code] = codes.get(decision.code, 0) + 1
        return {
            "sent": len(self.send),
            JOINED_RULE: len(self.joined),
            WAITING_CLASS: len(self.waiting),
            **{f"merge.{code.lower()}": n for code, n in sorted(codes.items())},
        }


def split_for_merge(
    writer: LedgerWriter,
    module: str,
    rows: Sequence[ShapedRow],
    *,
    policy: CrossOfficePolicy | None = None,
    merge_map: MergeMap | None = None,
    dry_run: bool = False,
) -> CrossOfficeSplit:
    """Which of an upsert step's rows go to Zoho under the cross-office policy (``policy`` default: the
    environment's; ``merge_map`` default: the ledger's groups for the writer's office).

    Joined rows are recorded in the ledger (their hold on the shared Contact, an audit
    ``cross_office_join``) and any quarantine they had is resolved; waiting rows are quarantined
    through ``writer``. A dry run decides the same way and writes nothing. Under ``merge``, Contacts rows
    of an office the latest org-level audit did not cover raise ``OrgAuditMissing`` before anything else.
    """
    policy = policy or CrossOfficePolicy.from_env()
    ledger, office_id = writer.ledger, writer.office_id
    if not policy.merge:
        if module == MERGED_MODULE and rows:
            _refuse_separate_over_joined(ledger, office_id)
        return CrossOfficeSplit(send=list(rows))
    if module != MERGED_MODULE or not rows:
        return CrossOfficeSplit(send=list(rows))
    refuse_unaudited(ledger, office_id)
    merge_map = merge_map or MergeMap.load(ledger, office_id)
    if not merge_map.groups:  # the audit covered the office and found none of its patients elsewhere
        log.info("load %s: policy merge: no cross-office groups for office %s in the latest org-level audit",
                 module, office_id)
    candidates = {c.source_id: c for row in rows if (c := merge_map.candidate(row)) is not None}
    candidates |= _still_holding(ledger, office_id, module, rows, candidates)
    if not candidates:
        return CrossOfficeSplit(send=list(rows))
    decisions = ledger.settle_merge(writer.run_id, office_id, module, list(candidates.values()), dry_run=dry_run)
    by_source = {d.source_id: d for d in decisions}
    writer.hold_claims(module, [d.source_id for d in decisions if d.action == "send" and d.code == "CLAIMED"])
    split = CrossOfficeSplit(send=[], decisions=decisions)
    for row in rows:
        decision = by_source.get(row.source_id)
        if decision is None or decision.action == "send":
            split.send.append(row)
        elif decision.action == "joined" and decision.zoho_id:
            split.joined[row.source_id] = decision.zoho_id
        else:
            split.waiting.append(row)
    if not dry_run:
        batch = BatchRecord(
            quarantine=[
                QuarantineRow(writer.run_id, office_id, row.source_object, row.source_id, WAITING_CLASS, WAITING_REASON)
                for row in split.waiting
            ],
            resolved_sources=[(row.source_object, row.source_id) for row in rows if row.source_id in split.joined],
        )
        if batch.quarantine or batch.resolved_sources:
            writer.commit(batch)
    log.info("load %s: cross-office merge: %s", module, split.counts())
    return split


def _still_holding(ledger: Ledger, office_id: str, module: str, rows: Sequence[ShapedRow],
                   grouped: Mapping[str, MergeCandidate]) -> dict[str, MergeCandidate]:
    """Rows that joined a shared Contact but are in no group of the latest audit (a record edited in Dentrix
    no longer matches, or the audit left its office out): they stay joined until a rollback or a deletion
    ends the hold, rather than become a second Contact while the hold still counts them. If the Contact
    is gone, the row is the first of a group of its own and is sent."""
    held = {h.source_id for h in ledger.shared_owners(module=module, office_id=office_id, released=False)
            if h.role == "joined"}
    return {row.source_id: MergeCandidate(row.source_object, row.source_id, row.row_hash, _own_group(row.source_id), ())
            for row in rows if row.source_id in held and row.source_id not in grouped
            and row.source_object in MERGED_OBJECTS}


def _own_group(source_id: str) -> str:
    """A group key of the record's own (the ledger's keys are 64 characters at most)."""
    return "held-" + hashlib.sha256(source_id.encode()).hexdigest()[:32]


AUDIT_COMMAND = "dentrix-zoho org-audit (or the Dagster job cross_office_audit)"


def refuse_unaudited(ledger: Ledger, office_id: str) -> None:
    """Under ``merge``, a load of an office the latest org-level audit did not compare would send every patient
    another office shares as a Contact of its own: refuse it, naming the command (ids only)."""
    audit = ledger.latest_org_audit()
    if audit is not None and audit.covers(office_id):
        return
    if audit is None:
        found = "the ledger holds no org-level cross-office audit"
    else:
        found = (f"the latest org-level cross-office audit ({audit.audited_at}, {len(audit.offices)} offices) did "
                 f"not include office {office_id} (not staged then, or not in the offices file)")
    raise OrgAuditMissing(
        f"{POLICY_ENV}=merge, but {found}: loading office {office_id} now would make a second Contact of every "
        f"patient another office shares, so nothing was sent. Run the org-level audit first, after staging every "
        f"office: {AUDIT_COMMAND}; then load office {office_id} again"
    )


def _refuse_separate_over_joined(ledger: Ledger, office_id: str) -> None:
    """Sending a joined record under ``separate`` would make it a second Contact while it still holds the shared one."""
    joined = ledger.count_shared_holds(office_id, role="joined")
    if joined:
        raise CrossOfficePolicyError(
            f"{POLICY_ENV}=separate, but office {office_id} has {joined} record(s) joined to Contacts another "
            f"office created under 'merge': roll the office back first (dentrix-zoho rollback --office {office_id} "
            "--all), or keep the policy 'merge'"
        )
