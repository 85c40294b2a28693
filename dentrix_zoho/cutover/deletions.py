"""Records deleted in Dentrix during the cutover window: find them, then delete or mark them in Zoho.

A record is gone from the source when the ledger has a live Zoho record for a
source id that the current full shaping no longer produces (not as a record,
not quarantined, not skipped by a rule). Hard-deleted patients and appointments
deleted in Dentrix (``appthist.deletedflag``) both end up here.

Human edits win: a record that someone changed in Zoho after we wrote it
(``Modified_By`` is not our integration user, or ``Modified_Time`` differs from
what the ledger recorded, unless a write of ours announced since may have moved it) is reported
and left alone.

A Contact several offices share (cross-office policy ``merge``, docs/cross_office.md) is the
person of every office that holds it: a patient deleted at one office *releases* that office's
hold (ledger only, no API call) while another office still holds the Contact, whichever office
created it; only the last holder's deletion deletes (or marks) it. A record that joined another
office's Contact has no crosswalk row of its own: its hold is what is looked for here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.ledger.human_edits import edited_since_our_write, writes_in_doubt
from dentrix_zoho.ledger.models import AuditEntry, CrosswalkRow, SharedOwner
from dentrix_zoho.ledger.shared import RELEASE_OPERATION
from dentrix_zoho.load.zoho_reads import current_stamps
from dentrix_zoho.zoho import ZohoClient

log = logging.getLogger(__name__)

DeletionPolicy = Literal["delete", "mark"]
# Children before parents, so that nothing is left pointing at a deleted parent.
DELETION_ORDER: tuple[str, ...] = ("Attachments", "Notes", "Calls", "Tasks", "Events", "Leads", "Contacts")
SHAPED_TABLES = ("contacts", "leads", "events", "tasks", "calls", "notes", "attachments", "quarantine", "skipped")
UNMARKABLE = frozenset({"Notes", "Attachments"})  # no custom fields in Zoho
RELEASED_CODE = "SOURCE_DELETED"  # audit code of a hold released because the office's record is gone


class DeletionRefused(RuntimeError):
    pass


@dataclass
class DeletionResult:
    """Counts only."""

    policy: str
    candidates: int = 0
    deleted: int = 0
    marked: int = 0
    already_gone: int = 0
    human_edited: int = 0
    not_markable: int = 0
    # Holds on shared Contacts released: the office's record is gone, another office still holds the Contact.
    released: int = 0
    failed: int = 0
    by_module: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def shaped_source_ids(con: duckdb.DuckDBPyConnection, office_id: str) -> set[str]:
    present: set[str] = set()
    for table in SHAPED_TABLES:
        rows = con.execute(
            f"SELECT DISTINCT source_id FROM zoho_shaped.{table} WHERE office_id = ? AND source_id IS NOT NULL",
            [office_id],
        ).fetchall()
        present.update(r[0] for r in rows)
    return present


def _shaping_is_partial(con: duckdb.DuckDBPyConnection, office_id: str) -> bool:
    row = con.execute(
        "SELECT coalesce(sum(out_of_sample), 0) FROM zoho_shaped.accounting WHERE office_id = ?", [office_id]
    ).fetchone()
    return bool(row and row[0])


def find_deletions(con: duckdb.DuckDBPyConnection, ledger: Ledger, office_id: str) -> list[CrosswalkRow]:
    """Live crosswalk rows of this office whose source record the current shaping no longer has."""
    if _shaping_is_partial(con, office_id):
        # A sample shaping holds a slice of the practice: everything else would look deleted.
        raise DeletionRefused("the shaped tables hold a sample, not the whole practice: re-shape in full first")
    present = shaped_source_ids(con, office_id)
    if not present:
        raise DeletionRefused("nothing is shaped for this office: refusing to treat every record as deleted")
    gone = [r for r in ledger.crosswalk_rows(office_id=office_id, deleted=False) if r.source_id not in present]
    gone = _with_shared_holds(ledger, office_id, gone, present)
    order = {m: i for i, m in enumerate(DELETION_ORDER)}
    return sorted(gone, key=lambda r: (order.get(r.zoho_module, -1), r.source_object, r.source_id))


def _hold_key(hold: SharedOwner) -> tuple[str, str, str, str]:
    return hold.zoho_module, hold.zoho_id, hold.source_object, hold.source_id


def _with_shared_holds(ledger: Ledger, office_id: str, gone: list[CrosswalkRow], present: set[str]) -> list[CrosswalkRow]:
    """``gone`` less the Contacts this office has let go of already (its hold released: they live on for
    another office), plus the records that joined another office's Contact and are gone from the source.

    One read of the office's holds (none under ``separate``), whatever the number of records.
    """
    holds = ledger.shared_owners(office_id=office_id)
    if not holds:
        return gone
    held = {_hold_key(h) for h in holds if not h.released}
    let_go = {_hold_key(h) for h in holds if h.released} - held
    gone = [r for r in gone if (r.zoho_module, r.zoho_id, r.source_object, r.source_id) not in let_go]
    joined: dict[str, list[SharedOwner]] = {}
    for hold in holds:
        if hold.role == "joined" and not hold.released and hold.source_id not in present:
            joined.setdefault(hold.source_object, []).append(hold)
    for source_object, owners in joined.items():
        # As the office sees them: a row pointing at the shared Contact, while that Contact lives.
        seen = ledger.lookup_many(office_id, source_object, [h.source_id for h in owners])
        for hold in owners:
            row = seen.get(hold.source_id)
            if row is not None and not row.deleted and row.zoho_id == hold.zoho_id and row.zoho_module == hold.zoho_module:
                gone.append(row)
    return gone


def _integration_user_id(client: ZohoClient) -> str | None:
    users = client.users(type="CurrentUser")
    return str(users[0]["id"]) if users else None


def apply_deletions(
    client: ZohoClient,
    ledger: Ledger,
    run_id: str,
    candidates: Sequence[CrosswalkRow],
    *,
    policy: DeletionPolicy,
    marker_field: dict[str, str] | None = None,
) -> DeletionResult:
    """Delete (or mark, through ``marker_field[module]``, a boolean field) each candidate, children first."""
    result = DeletionResult(policy=policy, candidates=len(candidates))
    me = _integration_user_id(client) if candidates else None
    audit: list[AuditEntry] = []
    by_module: Counter[str] = Counter()
    for module in DELETION_ORDER:
        rows = [r for r in candidates if r.zoho_module == module]
        if not rows:
            continue
        rows = _release_shared(ledger, run_id, module, rows, result)
        if not rows:
            continue
        if policy == "mark" and module in UNMARKABLE:
            result.not_markable += len(rows)
            continue
        actionable: list[CrosswalkRow] = []
        doubtful = writes_in_doubt(ledger, rows) if module != "Attachments" else set()  # updates left unrecorded
        # One multi-id read of the stamps for the module's candidates, not a GET per record.
        stamps = current_stamps(client, module, [r.zoho_id for r in rows]) if module != "Attachments" else {}
        for row in rows:
            if module == "Attachments":
                actionable.append(row)
                continue
            record = stamps.get(str(row.zoho_id))
            if record is None:
                result.already_gone += 1
                ledger.mark_deleted(run_id, module, [row.zoho_id],
                                    [AuditEntry(run_id, "delete", module, "ok", row.source_id, row.zoho_id, "ALREADY_GONE")])
            elif edited_since_our_write(row.zoho_modified_time, record, [me] if me else (),
                                        write_in_doubt=row.zoho_id in doubtful):
                result.human_edited += 1
                audit.append(AuditEntry(run_id, "skip_delete", module, "ok", row.source_id, row.zoho_id, "HUMAN_EDITED"))
            else:
                actionable.append(row)
        if policy == "delete":
            _delete(client, ledger, run_id, module, actionable, result)
        else:
            _mark(client, ledger, run_id, module, actionable, result, (marker_field or {}).get(module))
        by_module[module] += len(actionable)
    if audit:
        ledger.append_audit_many(audit)
    result.by_module = dict(by_module)
    log.info("deletions (%s): %s", policy, {k: v for k, v in result.as_dict().items() if k != "by_module"})
    return result


def _release_shared(ledger: Ledger, run_id: str, module: str, rows: list[CrosswalkRow],
                    result: DeletionResult) -> list[CrosswalkRow]:
    """Release this office's hold on each Contact another office still holds; the rows left to delete or mark.

    Under either policy: marking a Contact "deleted in Dentrix" would be as wrong for the office that
    still sees the person as deleting it. Ledger only: no API call, nothing to check in Zoho.
    """
    live: dict[str, list[SharedOwner]] = {}
    for hold in ledger.shared_owners(module=module, zoho_ids=[r.zoho_id for r in rows], released=False):
        live.setdefault(hold.zoho_id, []).append(hold)
    if not live:
        return rows
    left: list[CrosswalkRow] = []
    mine: list[SharedOwner] = []
    audit: list[AuditEntry] = []
    for row in rows:
        holds = live.get(row.zoho_id, [])
        own = [h for h in holds if (h.office_id, h.source_object, h.source_id) == (row.office_id, row.source_object,
                                                                                   row.source_id)]
        if len(own) == len(holds):
            left.append(row)  # not shared, or this office is its last holder: deleted (or marked) as usual
            continue
        mine += own
        if own:
            audit.append(AuditEntry(run_id, RELEASE_OPERATION, module, "ok", row.source_id, row.zoho_id, RELEASED_CODE))
    if mine:
        result.released += ledger.release_shared(run_id, module, mine, audit)
    log.info("deletions %s: %d shared record(s) kept for the other offices that hold them (%d hold(s) released)",
             module, len(rows) - len(left), len(mine))
    return left


def _delete(client: ZohoClient, ledger: Ledger, run_id: str, module: str, rows: Iterable[CrosswalkRow],
            result: DeletionResult) -> None:
    rows = list(rows)
    if module == "Attachments":
        for row in rows:
            if not (row.parent_module and row.parent_zoho_id):
                result.failed += 1
                continue
            outcome = client.delete_attachment(row.parent_module, row.parent_zoho_id, row.zoho_id)
            _settle(ledger, run_id, module, row, outcome.ok or outcome.code in ("INVALID_DATA", "RESOURCE_NOT_FOUND"),
                    outcome.code, result)
        return
    outcomes = client.delete(module, [r.zoho_id for r in rows]) if rows else []
    for row, outcome in zip(rows, outcomes):
        _settle(ledger, run_id, module, row, outcome.ok or outcome.code == "INVALID_DATA", outcome.code, result)


def _settle(ledger: Ledger, run_id: str, module: str, row: CrosswalkRow, done: bool, code: str | None,
            result: DeletionResult) -> None:
    if done:
        result.deleted += 1
        ledger.mark_deleted(run_id, module, [row.zoho_id],
                            [AuditEntry(run_id, "delete", module, "ok", row.source_id, row.zoho_id, code)])
    else:
        result.failed += 1
        ledger.append_audit_many([AuditEntry(run_id, "delete", module, "error", row.source_id, row.zoho_id, code)])


def _mark(client: ZohoClient, ledger: Ledger, run_id: str, module: str, rows: list[CrosswalkRow],
          result: DeletionResult, marker: str | None) -> None:
    if not rows:
        return
    if marker is None:
        raise DeletionRefused(f"no 'Deleted In Dentrix' field on {module}: run schema setup first")
    outcomes = client.update(module, [{"id": r.zoho_id, marker: True} for r in rows])
    entries = []
    for row, outcome in zip(rows, outcomes):
        if outcome.ok:
            result.marked += 1
        else:
            result.failed += 1
        entries.append(AuditEntry(run_id, "mark_deleted", module, "ok" if outcome.ok else "error",
                                  row.source_id, row.zoho_id, outcome.code))
    ledger.append_audit_many(entries)
