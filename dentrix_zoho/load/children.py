"""Notes and Attachments: no upsert, so nothing is created twice by construction instead.

* Before a create (and a note's update), its source ids go to the audit log as ``send_intent``.
* A record with an intent later than its last crosswalk write (a crash, a timeout, a 5xx after
  send) is first looked for among its parent's existing children: a note by title and content,
  a file by name and size, skipping children the crosswalk already gives to another row. That
  happens before anything holds the row back (its file gone from disk, Zoho refused this content
  before), so a copy a killed run left is in the ledger even while the row waits; only what is
  not found is sent, when it can be.
* Missing and over-limit files are never sent: each is a quarantine row with its reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from dentrix_zoho import progress
from dentrix_zoho.ledger import AuditEntry
from dentrix_zoho.load.context import LoadContext, LoadStep, ModuleLoadResult
from dentrix_zoho.load.ledger_io import BatchRecord, LedgerWriter, audit_code
from dentrix_zoho.load.links import ParentIndex, resolve_links
from dentrix_zoho.load.readback import run_concurrently
from dentrix_zoho.load.shaped import ShapedRow
from dentrix_zoho.load.upserts import (
    Prepared,
    apply_outcomes,
    changed,
    commit,
    crosswalk_by_source,
    held_back,
    save_later_run_pre_images,
    still_rejected,
)
from dentrix_zoho.load.window import Sent, send_in_window
from dentrix_zoho.load.zoho_reads import list_parent_notes
from dentrix_zoho.zoho import CreditsExhausted, RecordOutcome, ZohoUnavailable, limits

log = logging.getLogger(__name__)

ATTACHMENT_BATCH_FACTOR = 5
LIST_TRUNCATION = 500  # Zoho cuts rich text to 500 characters in list responses


def _text(value: Any) -> str:
    return str(value or "").replace("\r\n", "\n").strip()


def note_matches(existing: dict[str, Any], record: dict[str, Any]) -> bool:
    if _text(existing.get("Note_Title")) != _text(record.get("Note_Title")):
        return False
    have, want = _text(existing.get("Note_Content")), _text(record.get("Note_Content"))
    return have == want or (len(have) >= LIST_TRUNCATION and want.startswith(have))


def attachment_matches(existing: dict[str, Any], record: dict[str, Any]) -> bool:
    if str(existing.get("File_Name") or "") != str(record.get("File_Name") or ""):
        return False
    size = record.get("Size")
    return size is None or existing.get("Size") in (None, "") or str(existing.get("Size")) == str(size)


class _Reconciler:
    """Finds children already in Zoho for rows whose create may have happened."""

    def __init__(self, ctx: LoadContext, step: LoadStep) -> None:
        self.ctx = ctx
        self.step = step
        self.claimed: set[str] = set()
        self._listing: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def _list(self, parent: tuple[str, str]) -> list[dict[str, Any]]:
        """One parent's children as Zoho lists them now (a read: any thread)."""
        module, zoho_id = parent
        if self.step.kind == "notes":
            return list_parent_notes(self.ctx.client, module, zoho_id)
        return self.ctx.client.list_attachments(module, zoho_id)

    def children(self, parent: tuple[str, str], fresh: bool) -> list[dict[str, Any]]:
        if fresh or parent not in self._listing:
            self._listing[parent] = self._list(parent)
        return self._listing[parent]

    def list_fresh(self, parents: Sequence[tuple[str, str]]) -> None:
        """List these parents' children again, ``calls_in_flight`` parents at a time."""
        listings = run_concurrently([partial(self._list, parent) for parent in parents], self.ctx.calls_in_flight,
                                    name="zoho-children")
        self._listing.update(zip(parents, listings, strict=True))

    def find(self, items: Sequence[Prepared]) -> dict[int, RecordOutcome]:
        """Outcomes (by position in ``items``) for the ones found in Zoho."""
        found: dict[int, RecordOutcome] = {}
        matches: Callable[[dict[str, Any], dict[str, Any]], bool] = (
            note_matches if self.step.kind == "notes" else attachment_matches
        )
        by_parent: dict[tuple[str, str], list[int]] = {}
        for i, item in enumerate(items):
            if item.resolved.parent is not None:
                by_parent.setdefault(item.resolved.parent, []).append(i)
        # The listings are reads and go at once; matching stays in order here, so that which row
        # claims which child does not depend on which listing came back first.
        self.list_fresh(list(by_parent))
        for parent, positions in by_parent.items():
            listing = self.children(parent, fresh=False)
            owned = set(self.ctx.ledger.by_zoho_ids(self.step.module, [str(c.get("id")) for c in listing]))
            for i in positions:
                record = items[i].row.record
                for child in listing:
                    child_id = str(child.get("id"))
                    if child_id in owned or child_id in self.claimed or not matches(child, record):
                        continue
                    self.claimed.add(child_id)
                    found[i] = RecordOutcome(index=i, ok=True, zoho_id=child_id, action="insert", code="SUCCESS",
                                             message="found among the parent's children", details={"reconciled": True})
                    break
        return found


def _note_payload(row: ShapedRow, fields: dict[str, Any]) -> dict[str, Any]:
    payload = {k: row.record[k] for k in ("Note_Title", "Note_Content") if row.record.get(k) is not None}
    payload.update(fields)
    return payload


class ChildLoader:
    def __init__(self, ctx: LoadContext, step: LoadStep, result: ModuleLoadResult, writer: LedgerWriter,
                 parents: ParentIndex) -> None:
        self.ctx = ctx
        self.step = step
        self.result = result
        self.writer = writer
        self.parents = parents
        self.reconciler = _Reconciler(ctx, step)
        self.operation = "create_note" if step.kind == "notes" else "upload_attachment"

    # -- the step ------------------------------------------------------------
    def run(self, rows: list[ShapedRow]) -> None:
        to_send = changed(self.ctx, rows)
        self.result.unchanged = len(rows) - len(to_send)
        to_send, looked_for = self.found_first(to_send)
        if self.step.kind == "attachments":  # a file already in Zoho needs no file on disk
            to_send = self.hold_back_files(to_send)
        refused = still_rejected(self.writer, to_send)
        self.result.quarantined += len(refused)
        to_send = [r for r in to_send if r.source_id not in refused]
        if not to_send:
            return
        crosswalk = crosswalk_by_source(self.ctx, to_send)
        self.parents.prime(t for r in to_send for t in r.link_source_ids())
        ready: list[Prepared] = []
        held = BatchRecord()
        for row in to_send:
            resolved = resolve_links(row, self.parents, self.ctx.owners, notes_shape=self.step.kind == "notes")
            self.result.owner_unresolved += resolved.owner_unresolved
            if resolved.missing_required or resolved.parent is None:
                held.quarantine.append(held_back(self.ctx, row, "Parent_Id", "link",
                                                 "parent_not_loaded: the parent record is not in Zoho"))
                self.result.quarantined += 1
                continue
            payload = _note_payload(row, resolved.fields) if self.step.kind == "notes" else {}
            ready.append(Prepared(row, payload, resolved))
        if self.ctx.options.dry_run:
            self.result.sent += len(ready)
            return
        if held.quarantine:
            self.writer.commit(held)
        live = {sid for sid, x in crosswalk.items() if not x.deleted}
        updates = [p for p in ready if p.row.source_id in live]
        creates = [p for p in ready if p.row.source_id not in live]
        if updates and self.step.kind == "notes":
            # A note is updated in place: its state before this run, for this run's rollback (before the
            # first update goes). A changed file is deleted and uploaded anew: the rollback deletes the new
            # one but has no pre-image that could bring the old file back.
            save_later_run_pre_images(self.ctx, self.step.module,
                                      [crosswalk[p.row.source_id] for p in updates], self.result)
        if updates:
            self.replace(updates, {p.row.source_id: crosswalk[p.row.source_id].zoho_id for p in updates})
        if creates:
            self.create(creates, looked_for)

    def found_first(self, rows: list[ShapedRow]) -> tuple[list[ShapedRow], set[str]]:
        """Look for the rows a run announced since their last crosswalk write, before any is held back.

        Returns the rows not found, and the source ids looked for (``create`` need not look again).
        """
        if not rows or self.ctx.options.dry_run:
            return rows, set()
        crosswalk = crosswalk_by_source(self.ctx, rows)
        announced = self.writer.intents(self.step.module, [r.source_id for r in rows])
        maybe: list[Prepared] = []
        for row in rows:
            x = crosswalk.get(row.source_id)
            when = announced.get(row.source_id)
            if when is None or (x is not None and (not x.deleted or when <= x.last_written_at)):
                continue  # never announced, or announced before the write the ledger holds
            self.parents.prime(row.link_source_ids())
            resolved = resolve_links(row, self.parents, self.ctx.owners, notes_shape=self.step.kind == "notes")
            if resolved.parent is not None:  # without a parent in Zoho there is nowhere to look
                maybe.append(Prepared(row, {}, resolved))
        if not maybe:
            return rows, set()
        left = {p.row.source_id for p in self.reconcile(maybe)}
        looked = {p.row.source_id for p in maybe}
        return [r for r in rows if r.source_id not in looked or r.source_id in left], looked

    def hold_back_files(self, rows: list[ShapedRow]) -> list[ShapedRow]:
        ok: list[ShapedRow] = []
        held = BatchRecord()
        for row in rows:
            path = Path(row.file_path) if row.file_path else None
            status = row.file_status or "missing"
            if status == "ok" and (path is None or not path.is_file()):
                status = "missing"  # gone since shaping
            elif status == "ok" and path is not None and path.stat().st_size > limits.ATTACHMENT_MAX_BYTES:
                status = "over_limit"
            if status == "ok":
                ok.append(row)
                continue
            reason = {"missing": "file_missing: the image file is not in the practice's image folder",
                      "over_limit": f"file_over_limit: larger than Zoho's {limits.ATTACHMENT_MAX_BYTES} bytes"}.get(
                status, f"file_{status}")
            held.quarantine.append(held_back(self.ctx, row, "file", f"file_{status}", reason))
            self.result.quarantined += 1
        if held.quarantine and not self.ctx.options.dry_run:
            self.writer.commit(held)
        return ok

    # -- creating, with reconciliation -----------------------------------------
    def create(self, items: list[Prepared], looked_for: Collection[str] = ()) -> None:
        unseen = [p for p in items if p.row.source_id not in looked_for]
        announced = self.writer.intents(self.step.module, [p.row.source_id for p in unseen])
        maybe_there = [p for p in unseen if p.row.source_id in announced]
        fresh = [p for p in items if p.row.source_id not in announced]
        if maybe_there:
            fresh += self.reconcile(maybe_there)
        pending = fresh
        for round_no in range(self.ctx.options.child_retry_rounds + 1):
            if not pending:
                return
            uncertain = self.send(pending)
            if not uncertain:
                return
            log.info("load %s: %d creates with an unknown outcome; reconciling (round %d)", self.step.name,
                     len(uncertain), round_no + 1)
            pending = self.reconcile(uncertain)
        if pending:  # still unknown after every round: the next run reconciles them first
            self.result.failed += len(pending)

    def reconcile(self, items: list[Prepared]) -> list[Prepared]:
        """Record the ones found in Zoho; return the ones to send (again)."""
        found = self.reconciler.find(items)
        if found:
            hits = [items[i] for i in sorted(found)]
            outcomes = [found[i].at(n) for n, i in enumerate(sorted(found))]
            record = apply_outcomes(self.ctx, self.step, self.writer, self.parents, self.result, hits, outcomes,
                                    operation="reconcile", created_if=lambda *_: True,
                                    parent_of=lambda p: p.resolved.parent)
            commit(self.ctx, self.writer, record, self.result, self.step)
            self.result.reconciled += len(hits)
        return [item for i, item in enumerate(items) if i not in found]

    def send(self, items: list[Prepared]) -> list[Prepared]:
        """Create in batches; returns the items whose outcome is unknown."""
        size = self.ctx.options.batch_size
        if self.step.kind == "notes":
            # One call per batch of 100, ``calls_in_flight`` of them in flight: a new one goes out as
            # soon as one comes back (no group waits for its slowest call).
            window = self.ctx.calls_in_flight
        else:
            # Uploads go one call each through a pool inside ``transmit``; a longer batch keeps the
            # pool full for longer (the tail of a batch waits for its slowest upload), while what a
            # crash leaves to reconcile stays a few hundred files.
            size *= ATTACHMENT_BATCH_FACTOR
            window = 1
        uncertain: list[Prepared] = []
        send_in_window(
            [items[start : start + size] for start in range(0, len(items), size)],
            self.transmit,
            lambda batch, sent, started: self.settle(batch, sent, started, uncertain),
            window=window,
            name="load-children",
            # A resume looks in Zoho before sending again whatever was announced and not settled.
            before_send=lambda batch: self.writer.record_intent(self.step.module, [p.row.source_id for p in batch]),
        )
        return uncertain

    def settle(self, batch: list[Prepared], sent: Sent, started: float, uncertain: list[Prepared]) -> None:
        """Write one batch's outcomes to the ledger; its unknown ones go to ``uncertain``."""
        outcomes, _ = sent
        self.result.api_calls += 1 if self.step.kind == "notes" else len(batch)  # one call per file
        outcomes = self.unclaimed(outcomes)
        unknown = {o.index for o in outcomes if o.uncertain}
        self.result.sent += len(outcomes)
        before = (self.result.ok, self.result.failed, self.result.quarantined)
        sorted_outcomes = sorted(outcomes, key=lambda o: o.index)
        keep = [o for o in sorted_outcomes if o.index not in unknown]
        record = apply_outcomes(
            self.ctx, self.step, self.writer, self.parents, self.result,
            [batch[o.index] for o in keep], [o.at(n) for n, o in enumerate(keep)],
            operation=self.operation, created_if=lambda *_: True, parent_of=lambda p: p.resolved.parent,
            credits=self.credits(len(batch)),
        )
        commit(self.ctx, self.writer, record, self.result, self.step)
        progress.advance(len(batch), calls=1 if self.step.kind == "notes" else len(batch),
                         credits=self.credits(len(batch)))
        uncertain += [batch[i] for i in sorted(unknown)]
        log.info("load %s batch: sent=%d ok=%d failed=%d quarantined=%d uncertain=%d elapsed=%.2fs",
                 self.step.name, len(outcomes), self.result.ok - before[0], self.result.failed - before[1],
                 self.result.quarantined - before[2], len(unknown), time.perf_counter() - started)

    def credits(self, n: int) -> int:
        return limits.write_call_credits(n) if self.step.kind == "notes" else n

    def transmit(self, batch: list[Prepared]) -> Sent:
        """Send one batch (on a sender thread): outcomes, and credits running out. No ledger here."""
        if self.step.kind == "notes":
            try:
                return self.ctx.client.create_notes([p.payload for p in batch]), None
            except CreditsExhausted as exc:
                return list(exc.outcomes), exc
        workers = self.ctx.calls_in_flight

        def upload(pair: tuple[int, Prepared]) -> RecordOutcome | CreditsExhausted:
            i, item = pair
            module, parent_id = item.resolved.parent or ("", "")
            try:
                outcome = self.ctx.client.upload_attachment(module, parent_id, Path(item.row.file_path or ""),
                                                            filename=str(item.row.record.get("File_Name") or "") or None)
            except CreditsExhausted as exc:
                return exc
            except ZohoUnavailable as exc:  # retries ran out: this file goes again next run
                return RecordOutcome(index=i, ok=False, code=exc.code or "ZOHO_UNAVAILABLE",
                                     details={"retryable": True})
            return outcome.at(i)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load-attach") as pool:
            answers = list(pool.map(upload, enumerate(batch)))
        outcomes = [a for a in answers if isinstance(a, RecordOutcome)]
        stops = [a for a in answers if isinstance(a, CreditsExhausted)]
        return outcomes, (stops[0] if stops else None)

    def unclaimed(self, outcomes: list[RecordOutcome]) -> list[RecordOutcome]:
        """An upload the client resolved by file name may have matched a file another row owns."""
        if self.step.kind == "notes":
            return outcomes
        claimed = set(self.ctx.ledger.by_zoho_ids(self.step.module, [o.zoho_id for o in outcomes if o.ok and o.zoho_id]))
        return [
            RecordOutcome(index=o.index, ok=False, code="UNCERTAIN_OUTCOME", uncertain=True,
                          message="matched a file another row owns")
            if o.ok and o.zoho_id in claimed and o.details.get("resolved_by") else o
            for o in outcomes
        ]

    # -- changed rows that already exist ------------------------------------------
    def replace(self, items: list[Prepared], zoho_ids: dict[str, str]) -> None:
        if self.step.kind == "notes":
            size = self.ctx.options.batch_size
            for start in range(0, len(items), size):
                batch = items[start : start + size]
                payloads = [{"id": zoho_ids[p.row.source_id], **{k: v for k, v in p.payload.items() if k != "Parent_Id"}}
                            for p in batch]
                # A write: if its answer is lost, the new Modified_Time is ours, not a person's.
                self.writer.record_intent(self.step.module, [p.row.source_id for p in batch])
                try:
                    outcomes = self.ctx.client.update("Notes", payloads, trigger=[])
                    exhausted = None
                except CreditsExhausted as exc:
                    outcomes, exhausted = list(exc.outcomes), exc
                self.result.sent += len(outcomes)
                self.result.api_calls += 1
                record = apply_outcomes(self.ctx, self.step, self.writer, self.parents, self.result, batch, outcomes,
                                        operation="update_note", created_if=lambda *_: False,
                                        parent_of=lambda p: p.resolved.parent,
                                        credits=limits.write_call_credits(len(batch)))
                commit(self.ctx, self.writer, record, self.result, self.step)
                if exhausted is not None:
                    raise exhausted
            return
        # A changed file replaces the old one: delete the old, then upload the new. A kill in between
        # leaves the row without a live Zoho file in the ledger, so the next run uploads it again;
        # the other order could leave an old copy behind that nothing would ever remove.
        going: list[Prepared] = []
        for p in items:
            old, parent = zoho_ids[p.row.source_id], p.resolved.parent
            assert parent is not None
            outcome = self.ctx.client.delete_attachment(parent[0], parent[1], old)
            self.result.api_calls += 1
            if not outcome.ok and outcome.code not in ("INVALID_DATA", "RESOURCE_NOT_FOUND"):
                self.result.failed += 1
                continue
            self.ctx.ledger.mark_deleted(self.ctx.run_id, self.step.module, [old], [AuditEntry(
                self.ctx.run_id, "delete_attachment", self.step.module, "ok", source_id=p.row.source_id,
                zoho_id=old, code=audit_code(outcome.code), credits=1)])
            going.append(p)
        if going:
            self.create(going)
