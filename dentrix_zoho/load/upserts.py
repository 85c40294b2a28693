"""Keyed modules (Contacts, Leads, Events, Tasks, Calls): upserts on Source_System_ID.

Before the first write of a record we do not know, Zoho is asked for it once per run (COQL on
this office's Source_System_IDs, never the whole org's module unless COQL is refused):
a record that carries our Source_System_ID but is not in the crosswalk either came from an
interrupted run of ours (its Migration_Run_ID is one of our runs and we hold no pre-image of
it: we created it) or existed before us (we keep its pre-image before touching it). Either way
it goes into the crosswalk at once, before anything is sent: a row this run holds back (parent
not loaded, refused before with the same content, a failed batch) must not leave a record in
Zoho that rollback and the audit trail cannot see.

Every batch is announced first (audit ``send_intent``, one insert committed before the call).
Zoho's search index lags fresh writes, so the pre-scan may miss what a killed run just created,
and the upsert then answers "update": a record that had no crosswalk row, that the pre-scan did
not find there before us, that we announced and hold no pre-image of, is one this migration
created, whatever the search said. The intents also tell the human-edit check that a changed
``Modified_Time`` may be an update of ours whose answer was lost (``ledger/human_edits.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from dentrix_zoho import progress
from dentrix_zoho.ledger import AuditEntry, CrosswalkRow, CrosswalkWrite, QuarantineRow
from dentrix_zoho.ledger.human_edits import edited_since_our_write, writes_in_doubt
from dentrix_zoho.load import bulk_write
from dentrix_zoho.load.batch_outcomes import (  # noqa: F401 - loaded_hashes re-exported (reconcile.py)
    ADOPT_OPERATION,
    UNLINKED,
    Prepared,
    apply_outcomes,
    commit,
    hash_tag,
    loaded_hashes,
    retryable_failure,
)
from dentrix_zoho.load.context import LoadContext, LoadStep, ModuleLoadResult
from dentrix_zoho.load.cross_office import split_for_merge
from dentrix_zoho.load.ledger_io import BatchRecord, LedgerWriter
from dentrix_zoho.load.links import ParentIndex, Resolved, resolve_links
from dentrix_zoho.load.readback import ReadBack, run_concurrently
from dentrix_zoho.load.shaped import ShapedRow
from dentrix_zoho.load.window import Sent, send_in_window
from dentrix_zoho.load.zoho_reads import (
    current_stamps,
    existing_by_key,
    pre_image_fields,
    pre_scan_path,
    read_pre_images,
    scan_by_key,
    scan_office,
)
from dentrix_zoho.zoho import CreditsExhausted, RecordOutcome, ZohoError, limits
from dentrix_zoho.zoho.retry import appending_fields

log = logging.getLogger(__name__)

DRY_RUN_ID = "dry-run"  # stands in for a Zoho id a dry run would have got
# A batch carrying subform rows whose answer was lost is emptied and sent again in the same step at
# most this many times; what is still in doubt then waits for the next run (which empties it first).
RESEND_ROUNDS = 3
# Pre-images read per worker before the chunk is saved: what an error loses to a re-read stays small.
PRE_IMAGE_READS_PER_WORKER = 5


def still_rejected(writer: LedgerWriter, rows: Sequence[ShapedRow]) -> set[str]:
    """Rows Zoho refused with exactly this content: sending them again would only fail again."""
    out: set[str] = set()
    for row in rows:
        for q in writer.open_rows(row.source_object, row.source_id):
            if q.reason.startswith("zoho_rejected") and q.reason.endswith(hash_tag(row.row_hash)):
                out.add(row.source_id)
    return out


def crosswalk_by_source(ctx: LoadContext, rows: Sequence[ShapedRow]) -> dict[str, CrosswalkRow]:
    by_object: dict[str, list[str]] = {}
    for row in rows:
        by_object.setdefault(row.source_object, []).append(row.source_id)
    found: dict[str, CrosswalkRow] = {}
    for obj, sids in by_object.items():
        found.update(ctx.ledger.lookup_many(ctx.office_id, obj, sids))
    return found


def changed(ctx: LoadContext, rows: Sequence[ShapedRow]) -> list[ShapedRow]:
    by_object: dict[str, dict[str, str]] = {}
    for row in rows:
        by_object.setdefault(row.source_object, {})[row.source_id] = row.row_hash
    ids: set[str] = set()
    for obj, hashes in by_object.items():
        ids |= ctx.ledger.changed_rows(ctx.office_id, obj, hashes)
    return [r for r in rows if r.source_id in ids]


def held_back(ctx: LoadContext, row: ShapedRow, field_name: str | None, klass: str, reason: str) -> QuarantineRow:
    return QuarantineRow(ctx.run_id, ctx.office_id, row.source_object, row.source_id, klass, reason, field=field_name)


@dataclass
class _Known:
    """What the pre-scan told us about records we have no crosswalk row for."""

    interrupted: dict[str, str] = field(default_factory=dict)  # source id -> zoho id, created by an interrupted run
    foreign: dict[str, str] = field(default_factory=dict)  # source id -> zoho id, existed before us


def _office_records(ctx: LoadContext, module: str) -> int:
    return sum(1 for _ in ctx.ledger.crosswalk_rows(module=module, office_id=ctx.office_id, deleted=False))


def _pre_scan(ctx: LoadContext, module: str, unknown: list[str]) -> dict[str, dict[str, Any]]:
    """What Zoho holds of ``unknown``: by COQL ``in`` lookups, or by one COQL read of this office's
    records (``zoho_reads.pre_scan_path`` decides, for the estimate too); never the whole org's module
    unless Zoho refuses COQL. An office read serves every later step of the module in the run."""
    sid_field, run_field = ctx.source_id_field(module), ctx.run_id_field(module)
    extra = [run_field, "Modified_Time"]
    cache_key = f"prescan:{module}"
    scanned: dict[str, dict[str, Any]] | None = ctx.run_cache.get(cache_key)
    if scanned is not None:
        return {s: scanned[s] for s in unknown if s in scanned}
    path = pre_scan_path(len(unknown), lambda: _office_records(ctx, module))
    try:
        if path == "lookup":
            return existing_by_key(ctx.client, module, sid_field, extra, unknown)
        scanned = scan_office(ctx.client, module, sid_field, extra, ctx.office_id)
        log.info("load %s: pre-scan read this office's records by COQL for %d unknown (%d found in Zoho)",
                 module, len(unknown), len(scanned))
    except ZohoError as exc:
        if exc.status not in (400, 404):
            raise
        log.info("load %s: COQL refused (%s); scanning the whole module", module, exc.code)
        scanned = {s: r for s, r in scan_by_key(ctx.client, module, sid_field, extra).items()
                   if s.startswith(f"{ctx.office_id}:")}
    ctx.run_cache[cache_key] = scanned
    return {s: scanned[s] for s in unknown if s in scanned}


def save_pre_images(ctx: LoadContext, module: str, zoho_ids: Iterable[str], result: ModuleLoadResult) -> None:
    """The full record (subforms included: only GET by id returns them) before this run changes it.

    One GET per record, ``calls_in_flight`` at a time; each chunk's records are saved on this thread
    (the ledger's) before the next chunk is read, and all of them before the step's first write.
    """
    # A record this run already holds a pre-image of: that is the state before its first write.
    wanted = [z for z in dict.fromkeys(zoho_ids) if ctx.ledger.pre_image(ctx.run_id, module, z) is None]
    size = ctx.calls_in_flight * PRE_IMAGE_READS_PER_WORKER
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        records = run_concurrently([partial(ctx.client.get, module, zoho_id) for zoho_id in chunk],
                                   ctx.calls_in_flight, name="zoho-pre-image")
        for zoho_id, full in zip(chunk, records, strict=True):
            if full is not None and ctx.ledger.save_pre_image(ctx.run_id, module, zoho_id, full):
                result.pre_images += 1


def save_later_run_pre_images(ctx: LoadContext, module: str, rows: Iterable[CrosswalkRow],
                              result: ModuleLoadResult) -> None:
    """Records an earlier run of ours created that this run is about to change: their state before
    this run, so that its rollback puts back the earlier run's values (the later run's own creations
    are deleted instead, and a rollback of the creating run deletes the record and ignores these).

    Read many a call (``zoho_reads.read_pre_images``: multi-id GETs of every field a list shows, one
    GET by id only in a module with subforms), each chunk saved in the ledger, the only place record
    contents go, before the next is read and all of them before the step's first write: a kill after
    a write of this run leaves its pre-image behind, a kill before it leaves Zoho unchanged.
    """
    wanted = list(dict.fromkeys(x.zoho_id for x in rows if not x.deleted and x.zoho_module == module
                                and x.created_by_run is not None and x.created_by_run != ctx.run_id))
    if not wanted:
        return
    held = {ref.zoho_id for ref in ctx.ledger.pre_image_refs(ctx.run_id) if ref.module == module}
    wanted = [z for z in wanted if z not in held]
    if not wanted:
        return
    how = pre_image_fields(ctx.client, module, ctx.schema.field_types.get(module))
    reader = ReadBack(ctx.client, workers=ctx.calls_in_flight)
    size = (1 if how.whole else limits.IDS_PER_GET) * ctx.calls_in_flight * PRE_IMAGE_READS_PER_WORKER
    saved = 0
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        records = read_pre_images(ctx.client, module, chunk, how, reader=reader)
        for zoho_id in chunk:
            full = records.get(zoho_id)
            if full is not None and ctx.ledger.save_pre_image(ctx.run_id, module, zoho_id, full):
                saved += 1
    result.pre_images += saved
    stats = reader.stats
    log.info("load %s: pre-images of %d record(s) an earlier run created (%d multi-id GET(s), %d GET(s) by id)",
             module, saved, stats.list_calls, stats.subform_reads + stats.long_text_reads)


def imaged_before_us(ctx: LoadContext, module: str) -> set[str]:
    """Zoho ids of ``module`` some run holds a pre-image of, less the records the crosswalk says a run of
    ours created (a later run's pre-image of those is no sign that the record was there before us)."""
    imaged = {p.zoho_id for p in ctx.ledger.pre_image_refs() if p.module == module}
    ours = {z for z, x in ctx.ledger.by_zoho_ids(module, imaged).items() if x.created_by_run is not None}
    return imaged - ours


def classify_existing(ctx: LoadContext, module: str, unknown: list[str], result: ModuleLoadResult) -> _Known:
    known = _Known()
    if not unknown:
        return known
    existing = _pre_scan(ctx, module, unknown)
    if not existing:
        return known
    run_field = ctx.run_id_field(module)
    ours = {r.run_id for r in ctx.ledger.runs()}
    imaged = imaged_before_us(ctx, module)
    for sid, rec in existing.items():
        zoho_id = str(rec.get("id"))
        if rec.get(run_field) in ours and zoho_id not in imaged:
            known.interrupted[sid] = zoho_id
        else:
            known.foreign[sid] = zoho_id
    if known.foreign and not ctx.options.dry_run:
        save_pre_images(ctx, module, known.foreign.values(), result)
    log.info("load %s: %d records found in Zoho without a crosswalk row (%d from an interrupted run, %d pre-existing)",
             module, len(existing), len(known.interrupted), len(known.foreign))
    return known


def prepare(ctx: LoadContext, step: LoadStep, row: ShapedRow, resolved: Resolved) -> dict[str, Any]:
    sid_field, run_field = ctx.source_id_field(step.module), ctx.run_id_field(step.module)
    payload = {k: v for k, v in row.record.items() if k not in ("Source_System_ID", "Migration_Run_ID")}
    payload[sid_field] = row.source_id
    payload[run_field] = ctx.run_id
    payload.update(resolved.fields)
    return payload


def _waves(rows: list[ShapedRow], parents: ParentIndex) -> list[list[ShapedRow]]:
    """Rows whose link targets are in this same step go after those targets."""
    in_step = {r.source_id for r in rows}
    waves: list[list[ShapedRow]] = []
    remaining = rows
    placed: set[str] = set()
    while remaining:
        ready = [r for r in remaining
                 if all(t in placed or t not in in_step or parents.get(t) for t in r.link_source_ids())]
        if not ready:  # a cycle: send the rest; their links are resent on the next run
            ready = remaining
        waves.append(ready)
        placed |= {r.source_id for r in ready}
        remaining = [r for r in remaining if r.source_id not in placed]
    return waves


def select_rows(ctx: LoadContext, rows: list[ShapedRow], writer: LedgerWriter, parents: ParentIndex,
                result: ModuleLoadResult) -> tuple[list[ShapedRow], list[ShapedRow], dict[str, CrosswalkRow]]:
    """Changed rows, minus rows still waiting for a held-back link target and rows Zoho already
    refused with the same content; those refused rows (not sent, but still looked for in Zoho);
    and the crosswalk rows of both."""
    to_send = changed(ctx, rows)
    crosswalk = crosswalk_by_source(ctx, to_send)
    parents.prime([t for r in to_send for t in r.link_source_ids()] + [r.source_id for r in to_send])

    def waiting(row: ShapedRow) -> bool:
        x = crosswalk.get(row.source_id)
        return (x is not None and not x.deleted and x.row_hash == row.row_hash + UNLINKED
                and not any(parents.get(t) for t in row.link_source_ids()))

    to_send = [r for r in to_send if not waiting(r)]
    result.unchanged = len(rows) - len(to_send)
    refused = still_rejected(writer, to_send)
    result.quarantined += len(refused)
    return ([r for r in to_send if r.source_id not in refused], [r for r in to_send if r.source_id in refused],
            crosswalk)


def hold_module_changes(ctx: LoadContext, step: LoadStep, rows: list[ShapedRow], crosswalk: dict[str, CrosswalkRow],
                        writer: LedgerWriter, result: ModuleLoadResult) -> list[ShapedRow]:
    """Rows whose live Zoho record is in another module (a patient shaped as a Lead who is a Contact) are
    held, not sent: sending would make a second record of the person, and the crosswalk keeps one per
    source row. Shaping keeps a loaded patient in its module (``mapping/shape.py``), so this meets only
    rows shaped without the ledger's modules."""
    moved = [r for r in rows if (x := crosswalk.get(r.source_id)) is not None and not x.deleted
             and x.zoho_module != step.module]
    if not moved:
        return rows
    batch = BatchRecord(quarantine=[held_back(
        ctx, r, None, "route",
        f"module_changed: in Zoho as {crosswalk[r.source_id].zoho_module}, shaped for {step.module}; not sent "
        "(shape again with the ledger's modules, or move the record in Zoho by hand)") for r in moved])
    writer.commit(batch)
    result.quarantined += len(moved)
    log.warning("load %s: %d row(s) held: their records are in Zoho in another module", step.name, len(moved))
    held = {r.source_id for r in moved}
    return [r for r in rows if r.source_id not in held]


def adopt_found(ctx: LoadContext, step: LoadStep, rows: Sequence[ShapedRow], known: _Known, writer: LedgerWriter,
                parents: ParentIndex) -> int:
    """Put the records the pre-scan found into the crosswalk now, before this run sends anything.

    Until this run's own write succeeds they are adopted, not loaded: no row hash (the content
    Zoho holds is not known to be ours, so the row is sent again) and no ``Modified_Time`` (no
    write of ours to compare a human edit with). A kill from here on leaves them in the ledger.
    """
    found = known.interrupted | known.foreign
    if not found or ctx.options.dry_run:
        return 0
    batch = BatchRecord()
    for row in rows:
        zoho_id = found.get(row.source_id)
        if zoho_id is None:
            continue
        batch.writes.append(CrosswalkWrite(row.source_object, row.source_id, step.module, zoho_id, None,
                                           row.source_id in known.interrupted, None))
        batch.audit.append(AuditEntry(ctx.run_id, ADOPT_OPERATION, step.module, "ok", source_id=row.source_id,
                                      zoho_id=zoho_id, code="INTERRUPTED" if row.source_id in known.interrupted
                                      else "PRE_EXISTING"))
    refused = writer.commit(batch)
    if refused:  # the Zoho record is in the crosswalk already, under another source row
        log.warning("load %s: %d found records already belong to another source row", step.name, len(refused))
    for write in batch.writes:
        if not any(msg.endswith(f"{write.source_object} {write.source_id}") for msg in refused):
            parents.set(write.source_id, write.zoho_id)  # a link target like any record of ours in Zoho
    return len(batch.writes) - len(refused)


def load_upsert_step(ctx: LoadContext, step: LoadStep, rows: list[ShapedRow], result: ModuleLoadResult,
                     writer: LedgerWriter, parents: ParentIndex) -> None:
    # Policy ``merge``: a patient another office already made a Contact of joins it rather than being
    # sent, and one whose Contact another office's running load is making waits (quarantined, joins
    # next run). Before anything else, so no later stage (a killed run's Bulk Write jobs included)
    # sends either. Under ``separate`` every row goes on, for one COUNT per Contacts step at most.
    split = split_for_merge(writer, step.module, rows, dry_run=ctx.options.dry_run)
    if split.joined or split.waiting:
        for source_id, zoho_id in split.joined.items():
            parents.set(source_id, zoho_id)  # this office's children and links attach to the shared Contact
        result.cross_office_joined += len(split.joined)
        result.quarantined += len(split.waiting)
        progress.advance(len(split.joined))  # accounted for without a call
        rows = split.send
    bulk_write.resume(ctx, step, rows, writer, parents, result)  # a killed run's Bulk Write jobs first
    to_send, refused, crosswalk = select_rows(ctx, rows, writer, parents, result)
    to_send = hold_module_changes(ctx, step, to_send, crosswalk, writer, result)
    # Every row without a live crosswalk row is looked for, sent or not: what Zoho has of it is adopted.
    lacking = [r for r in (*to_send, *refused) if r.source_id not in crosswalk or crosswalk[r.source_id].deleted]
    if not lacking and not to_send:
        return
    known = classify_existing(ctx, step.module, [r.source_id for r in lacking], result)
    result.reconciled += adopt_found(ctx, step, lacking, known, writer, parents)
    if not to_send:
        return
    if not ctx.options.dry_run:
        # Records that were there before us and that we updated before: this run needs its own pre-image.
        not_ours = [x.zoho_id for x in crosswalk.values() if not x.deleted and x.created_by_run is None]
        save_pre_images(ctx, step.module, not_ours, result)
    sid_field = ctx.source_id_field(step.module)

    imaged: set[str] | None = None

    def created_if(item: Prepared, outcome: RecordOutcome) -> bool:
        nonlocal imaged
        sid = item.row.source_id
        if outcome.action == "insert" or sid in known.interrupted:
            return True
        if sid in in_zoho or not writer.announced(step.module, sid):
            return False
        # No crosswalk row and not there before us when this step looked, yet Zoho matched the key: a
        # write of ours made it (a killed run's batch the lagging index hid from the pre-scan, a Bulk
        # Write job cut short, a retried call), unless some run holds its state from before us.
        if imaged is None:
            imaged = imaged_before_us(ctx, step.module)
        return outcome.zoho_id not in imaged

    in_zoho = {sid: x.zoho_id for sid, x in crosswalk.items() if not x.deleted} | known.interrupted | known.foreign
    to_send = hold_human_edits(ctx, step, to_send, crosswalk, writer, result)
    if not ctx.options.dry_run:
        # Only rows that go: a record held for a person's edit is not changed, so nothing to put back.
        save_later_run_pre_images(ctx, step.module, [crosswalk[r.source_id] for r in to_send
                                                     if r.source_id in crosswalk], result)

    for wave in _waves(to_send, parents):
        ready: list[Prepared] = []
        held: BatchRecord = BatchRecord()
        for row in wave:
            resolved = resolve_links(row, parents, ctx.owners, held_back=writer.held_back)
            result.owner_unresolved += resolved.owner_unresolved
            if resolved.missing_required:
                held.quarantine.append(held_back(ctx, row, resolved.missing_required[0], "link",
                                                 "parent_not_loaded: the parent record is not in Zoho"))
                result.quarantined += 1
                continue
            ready.append(Prepared(row, prepare(ctx, step, row, resolved), resolved))
        if held.quarantine and not ctx.options.dry_run:
            writer.commit(held)
        if ctx.options.dry_run:
            result.sent += len(ready)
            for item in ready:  # children later in the dry run can count on these parents
                parents.set(item.row.source_id, DRY_RUN_ID)
            continue
        ready = clear_subforms(ctx, step, ready, in_zoho, result, writer)
        ready = bulk_write.send(ctx, step, ready, result, writer, parents, created_if)  # the rest: record API
        _send_batches(ctx, step, ready, result, writer, parents, sid_field, created_if)


def _integration_user(ctx: LoadContext) -> str | None:
    """The Zoho user id this migration writes as (once per run)."""
    if "integration_user" not in ctx.run_cache:
        users = ctx.client.users(type="CurrentUser")
        ctx.run_cache["integration_user"] = str(users[0]["id"]) if users else None
    return ctx.run_cache["integration_user"]  # type: ignore[no-any-return]


def hold_human_edits(ctx: LoadContext, step: LoadStep, rows: list[ShapedRow], crosswalk: dict[str, CrosswalkRow],
                     writer: LedgerWriter, result: ModuleLoadResult) -> list[ShapedRow]:
    """Human edits win: a record someone changed in Zoho after our last write is not overwritten.

    We recorded the ``Modified_Time`` Zoho gave our write; a later one means someone else wrote.
    Such rows are reported (audit ``HUMAN_EDITED``) and left alone under the ``skip`` policy, or sent
    anyway under ``overwrite`` (audit ``HUMAN_EDIT_OVERWRITTEN``).
    """
    ours = {r.source_id: crosswalk[r.source_id] for r in rows
            if r.source_id in crosswalk and not crosswalk[r.source_id].deleted and crosswalk[r.source_id].zoho_modified_time}
    if not ours or ctx.options.dry_run:
        return rows
    stamps = current_stamps(ctx.client, step.module, [x.zoho_id for x in ours.values()])
    me = [u for u in (_integration_user(ctx),) if u]

    def judged(x: CrosswalkRow, in_doubt: bool = False) -> bool:
        # No stamp read back (not found): nothing to compare, as before.
        now = stamps.get(x.zoho_id)
        return bool(now and now.get("Modified_Time")
                    and edited_since_our_write(x.zoho_modified_time, now, me, write_in_doubt=in_doubt))

    edited = {source_id for source_id, x in ours.items() if judged(x)}
    if edited:
        # A write of ours announced after the last one the ledger recorded may have landed unrecorded
        # (killed before the answer was written): a stamp our integration user left is then ours.
        doubtful = writes_in_doubt(ctx.ledger, [ours[s] for s in edited])
        ours_after_all = {s for s in edited if ours[s].zoho_id in doubtful and not judged(ours[s], True)}
        if ours_after_all:
            log.info("load %s: %d record(s) changed in Zoho by an update of ours the ledger had not recorded",
                     step.name, len(ours_after_all))
        edited -= ours_after_all
    if not edited:
        return rows
    overwrite = ctx.options.human_edits == "overwrite"
    code = "HUMAN_EDIT_OVERWRITTEN" if overwrite else "HUMAN_EDITED"
    batch = BatchRecord()
    by_id = {r.source_id: r for r in rows}
    for source_id in sorted(edited):
        batch.audit.append(AuditEntry(ctx.run_id, "skip_update" if not overwrite else "upsert", step.module, "ok",
                                      source_id=source_id, zoho_id=ours[source_id].zoho_id, code=code))
        if not overwrite:
            # Held, with a reason the re-migration plan turns into an action for a person.
            batch.quarantine.append(held_back(
                ctx, by_id[source_id], None, "human_edited",
                "human_edited: changed in Zoho by someone else after the migration wrote it; the Dentrix change "
                "was not applied (re-run with human edits set to overwrite, or reconcile by hand)"))
    writer.commit(batch)
    result.human_edited += len(edited)
    if not overwrite:
        result.quarantined += len(edited)
    log.warning("load %s: %d record(s) were edited in Zoho by someone else since our last write: %s",
                step.name, len(edited), "overwritten" if overwrite else "left as they are (reported)")
    return rows if overwrite else [r for r in rows if r.source_id not in edited]


def clear_subforms(ctx: LoadContext, step: LoadStep, ready: list[Prepared], in_zoho: dict[str, str],
                   result: ModuleLoadResult, writer: LedgerWriter) -> list[Prepared]:
    """Zoho appends subform rows sent without an id, so an update would repeat every insurance
    plan: empty the module's subforms on records that exist, then send them again.

    "Exist" includes records an earlier write of ours may have created without the ledger
    hearing the answer (a send intent, no crosswalk row): a run killed after Zoho applied it, or a
    batch whose answer stayed lost. The pre-scan finds those only once Zoho's search index has
    caught up; where it did not, the record is emptied by key (an upsert of the same payload
    with those fields ``[]``, which creates it if the write never landed) before it is sent.

    Returns the rows that may go; a record whose subforms could not be emptied waits for the
    next run (counted as failed) rather than have its rows doubled.
    """
    names = ctx.schema.subform_names(step.module)
    if names is None:  # a schema hand-off from before set-up kept the field types
        names = [str(f["api_name"]) for f in ctx.client.fields(step.module) if f.get("data_type") == "subform"]
    appending = [p for p in ready if p.row.source_id not in in_zoho and appending_fields(p.payload)]
    announced = writer.intents(step.module, [p.row.source_id for p in appending]) if appending else {}
    unseen = [p for p in appending if p.row.source_id in announced]
    existing = []
    for p in ready:
        if p.row.source_id not in in_zoho:
            continue
        if any(p.payload.get(n) for n in names):
            existing.append(p)  # new rows to send: the old ones must go first, in a call of their own
        else:
            # No rows now: an empty list in the same upsert removes any old rows, at no extra call.
            for n in names:
                p.payload[n] = []
    if not existing and not unseen:
        return ready
    blocked: set[str] = set()
    size = ctx.options.batch_size
    # (by id, chunk): records the ledger knows are emptied by id; those only announced, by key.
    chunks = ([(True, existing[i : i + size]) for i in range(0, len(existing), size)]
              + [(False, unseen[i : i + size]) for i in range(0, len(unseen), size)])

    def send(batch: tuple[bool, list[Prepared]]) -> Sent:
        by_id, chunk = batch
        try:
            if by_id:
                return ctx.client.update(step.module, [{"id": in_zoho[p.row.source_id], **{n: [] for n in names}}
                                                       for p in chunk], trigger=[]), None
            return ctx.client.upsert(step.module, [emptied(p.payload) for p in chunk],
                                     duplicate_check_fields=[ctx.source_id_field(step.module)], trigger=[]), None
        except CreditsExhausted as exc:
            return list(exc.outcomes), exc

    def settle(batch: tuple[bool, list[Prepared]], sent: Sent, started: float) -> None:
        by_id, chunk = batch
        outcomes = {o.index: o for o in sent[0]}
        if by_id:
            blocked.update(p.row.source_id for i, p in enumerate(chunk) if i not in outcomes or not outcomes[i].ok)
        else:
            # A refusal is left to the upsert that follows: Zoho refuses it the same way and its answer
            # quarantines the row with Zoho's reason. Only a lost answer or an outage holds the row back.
            blocked.update(p.row.source_id for i, p in enumerate(chunk)
                           if i not in outcomes or retryable_failure(outcomes[i]))

    # Each chunk announced before it goes (a write: its stamp is ours), then ``calls_in_flight`` at once.
    send_in_window(chunks, send, settle, window=ctx.calls_in_flight, name="load-subforms",
                   before_send=lambda batch: writer.record_intent(step.module, [p.row.source_id for p in batch[1]]))
    if blocked:
        result.failed += len(blocked)
        result.codes["SUBFORM_NOT_EMPTIED"] = result.codes.get("SUBFORM_NOT_EMPTIED", 0) + len(blocked)
    log.info("load %s: emptied subforms on %d existing records (%d written earlier with no answer) before "
             "re-sending (%d refused)", step.name, len(existing) + len(unseen) - len(blocked), len(unseen),
             len(blocked))
    return [p for p in ready if p.row.source_id not in blocked]


def emptied(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with the rows Zoho would append removed: sending it leaves those fields empty, and
    sending it twice leaves the same, so the transport may repeat it."""
    return {**payload, **{name: [] for name in appending_fields(payload)}}


@dataclass
class Resent:
    """What :func:`resend_lost` gives back: the batch's outcomes now, and the calls it made for them."""

    outcomes: list[RecordOutcome]
    calls: int = 0
    credits: int = 0


def resend_lost(ctx: LoadContext, step: LoadStep, batch: Sequence[Prepared], outcomes: Sequence[RecordOutcome],
                sid_field: str) -> Resent:
    """Send again, in the same step, the records of a batch whose answer was lost (``uncertain``).

    The client sends a batch carrying subform rows only once (a blind resend would append its rows
    a second time), so here, for each round: the records whose rows may already be there are
    upserted with those fields empty (by key: repeatable, and it also creates what the lost call
    did not), then the whole payload goes again. A round whose answer is lost again starts over.
    Runs on the sending thread: only Zoho calls, no ledger write (the batch's send intent, committed
    before its first call, covers them). ``CreditsExhausted`` carries the outcomes known so far.
    """
    by_index = {o.index: o for o in outcomes}
    done = Resent([])

    def upsert(positions: list[int], payloads: list[dict[str, Any]]) -> list[RecordOutcome]:
        """One call for these batch positions; outcomes at their positions in the batch."""
        done.calls += 1
        done.credits += limits.write_call_credits(len(payloads))
        try:
            answer = ctx.client.upsert(step.module, payloads, duplicate_check_fields=[sid_field], trigger=[])
        except CreditsExhausted as exc:
            by_index.update({positions[o.index]: o.at(positions[o.index]) for o in exc.outcomes})
            pending = [i for i in sorted(by_index) if by_index[i].uncertain]
            raise exc.with_progress([by_index[i] for i in sorted(by_index)], pending) from None
        return [o.at(positions[o.index]) for o in answer]

    created: set[int] = set()  # positions an emptying call created: the lost call had not
    for _ in range(RESEND_ROUNDS):
        lost = [i for i in sorted(by_index) if by_index[i].uncertain]
        if not lost:
            break
        wipe = [i for i in lost if appending_fields(batch[i].payload)]
        if wipe:
            for o in upsert(wipe, [emptied(batch[i].payload) for i in wipe]):
                if o.ok and o.action == "insert":
                    created.add(o.index)
                elif not o.ok:
                    by_index[o.index] = o  # refused or unavailable: that is its outcome for now
        again = [i for i in lost if by_index[i].uncertain]
        if again:
            for o in upsert(again, [batch[i].payload for i in again]):
                by_index[o.index] = replace(o, action="insert") if o.ok and o.index in created else o
        log.info("load %s: %d records of a batch whose answer was lost sent again (%d still in doubt)",
                 step.name, len(lost), sum(1 for i in lost if by_index[i].uncertain))
    done.outcomes = [by_index[i] for i in sorted(by_index)]
    return done


def _send_batches(ctx: LoadContext, step: LoadStep, ready: list[Prepared], result: ModuleLoadResult,
                  writer: LedgerWriter, parents: ParentIndex, sid_field: str,
                  created_if: Callable[[Prepared, RecordOutcome], bool]) -> None:
    size = ctx.options.batch_size
    batches = [ready[i : i + size] for i in range(0, len(ready), size)]

    resends: dict[int, Resent] = {}  # id(batch) -> the resends of a batch whose answer was lost

    def send(batch: list[Prepared]) -> Sent:
        try:
            outcomes = ctx.client.upsert(step.module, [p.payload for p in batch],
                                         duplicate_check_fields=[sid_field], trigger=[])
            if not any(o.uncertain for o in outcomes):
                return outcomes, None
            resent = resend_lost(ctx, step, batch, outcomes, sid_field)
            resends[id(batch)] = resent
            return resent.outcomes, None
        except CreditsExhausted as exc:
            return list(exc.outcomes), exc

    def settle(batch: list[Prepared], sent: Sent, started: float) -> None:
        outcomes, _ = sent
        resent = resends.pop(id(batch), Resent([]))
        calls, credits = 1 + resent.calls, limits.write_call_credits(len(batch)) + resent.credits
        result.sent += len({o.index for o in outcomes})
        result.api_calls += calls
        before = (result.ok, result.failed, result.quarantined)
        record = apply_outcomes(ctx, step, writer, parents, result, batch, outcomes, operation="upsert",
                                created_if=created_if, credits=credits)
        commit(ctx, writer, record, result, step)
        progress.advance(len(batch), calls=calls, credits=credits)
        log.info("load %s batch: sent=%d ok=%d failed=%d quarantined=%d elapsed=%.2fs", step.name,
                 len(outcomes), result.ok - before[0], result.failed - before[1],
                 result.quarantined - before[2], time.perf_counter() - started)

    send_in_window(batches, send, settle, window=ctx.calls_in_flight, name="load-upsert",
                   before_send=lambda batch: writer.record_intent(step.module, [p.row.source_id for p in batch]))
