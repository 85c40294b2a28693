"""What one batch's per-record outcomes leave in the ledger, for the record API and Bulk Write alike.

The layer under ``upserts.py`` (keyed modules), ``bulk_write.py`` (their Bulk Write jobs) and
``children.py`` (Notes, Attachments): a prepared row, the row hash stored for it, Zoho's answer turned
into crosswalk writes, audit entries and quarantine rows (``apply_outcomes``), and their commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dentrix_zoho.ledger import AuditEntry, CrosswalkWrite, QuarantineRow
from dentrix_zoho.load.context import LoadContext, LoadStep, ModuleLoadResult
from dentrix_zoho.load.ledger_io import BatchRecord, LedgerWriter, audit_code, value_class_code
from dentrix_zoho.load.links import ParentIndex, Resolved
from dentrix_zoho.load.shaped import ShapedRow
from dentrix_zoho.mapping.validation import value_class
from dentrix_zoho.zoho import RecordOutcome

# Stored-hash suffixes for a row sent without one of its optional links (Related_Party):
PARTIAL = "~partial"  # the target may still load: the next run sends the row again
UNLINKED = "~unlinked"  # the target is held back: sent again once the target is in Zoho
ADOPT_OPERATION = "adopt"  # audit: a record found in Zoho without a crosswalk row, taken into the ledger


def stored_hash(row: ShapedRow, resolved: Resolved) -> str:
    if resolved.retry_links:
        return row.row_hash + PARTIAL
    if resolved.dropped_optional:
        return row.row_hash + UNLINKED
    return row.row_hash


def loaded_hashes(row_hash: str) -> tuple[str, ...]:
    """Stored hashes meaning "this content is in Zoho" (with or without a dropped optional link)."""
    return (row_hash, row_hash + PARTIAL, row_hash + UNLINKED)


def hash_tag(row_hash: str) -> str:
    return f"[{row_hash[:12]}]"


def rejection(ctx: LoadContext, row: ShapedRow, payload: dict[str, Any], outcome: RecordOutcome) -> QuarantineRow:
    """Zoho refused the record: keep the code, the field and the class of the value, never the value."""
    field_name = outcome.api_name
    klass = value_class_code(value_class(payload.get(field_name))) if field_name else "record"
    detail = ""
    for key in ("expected_data_type", "maximum_length", "limit"):
        if key in outcome.details:
            detail = f" ({key} {outcome.details[key]})"
            break
    reason = f"zoho_rejected {outcome.code}{detail}"[:180] + " " + hash_tag(row.row_hash)
    return QuarantineRow(ctx.run_id, ctx.office_id, row.source_object, row.source_id, klass, reason, field=field_name)


@dataclass
class Prepared:
    row: ShapedRow
    payload: dict[str, Any]
    resolved: Resolved


def retryable_failure(outcome: RecordOutcome) -> bool:
    """A failure that sending again may cure (the answer was lost, Zoho was unavailable), not a refusal."""
    return not outcome.ok and (outcome.uncertain or bool(outcome.details.get("retryable"))
                               or outcome.code == "UNCERTAIN_OUTCOME")


def apply_outcomes(
    ctx: LoadContext,
    step: LoadStep,
    writer: LedgerWriter,
    parents: ParentIndex,
    result: ModuleLoadResult,
    prepared: Sequence[Prepared],
    outcomes: Sequence[RecordOutcome],
    *,
    operation: str,
    created_if: Callable[[Prepared, RecordOutcome], bool],
    parent_of: Callable[[Prepared], tuple[str, str] | None] = lambda p: None,
    credits: int = 0,
) -> BatchRecord:
    """Turn one batch's outcomes into ledger rows and counts (commit is the caller's)."""
    batch = BatchRecord()
    by_index = {o.index: o for o in outcomes}
    for i, item in enumerate(prepared):
        outcome = by_index.get(i)
        row = item.row
        spent = credits if i == 0 else 0
        if outcome is None:  # not sent (credits ran out before this batch)
            continue
        if outcome.ok and outcome.zoho_id:
            created = created_if(item, outcome)
            parent = parent_of(item)
            batch.writes.append(CrosswalkWrite(
                row.source_object, row.source_id, step.module, outcome.zoho_id, stored_hash(row, item.resolved),
                created, outcome.modified_time, parent_module=parent[0] if parent else None,
                parent_zoho_id=parent[1] if parent else None,
            ))
            batch.audit.append(AuditEntry(ctx.run_id, operation, step.module, "ok", source_id=row.source_id,
                                          zoho_id=outcome.zoho_id, code=audit_code(outcome.code), credits=spent))
            batch.resolved_sources.append((row.source_object, row.source_id))
            if step.kind == "upsert":  # only keyed records are link targets
                parents.set(row.source_id, outcome.zoho_id)
            result.ok += 1
            result.created += created
            result.updated += not created
            if item.resolved.dropped_optional:
                result.links_dropped += 1
            continue
        code = outcome.code or "UNKNOWN_ERROR"
        result.codes[code] = result.codes.get(code, 0) + 1
        retryable = retryable_failure(outcome)
        batch.audit.append(AuditEntry(ctx.run_id, operation, step.module, "uncertain" if outcome.uncertain else "error",
                                      source_id=row.source_id, code=audit_code(code), credits=spent))
        if retryable:
            result.failed += 1
        else:
            batch.quarantine.append(rejection(ctx, row, item.payload, outcome))
            result.quarantined += 1
    return batch


def commit(ctx: LoadContext, writer: LedgerWriter, batch: BatchRecord, result: ModuleLoadResult,
           step: LoadStep) -> None:
    conflicts = writer.commit(batch)
    if not conflicts:
        return
    # Another source record already owns that Zoho record (an upsert matched a shared key).
    held: list[QuarantineRow] = []
    for write in batch.writes:
        if any(msg.endswith(f"{write.source_object} {write.source_id}") for msg in conflicts):
            held.append(QuarantineRow(ctx.run_id, ctx.office_id, write.source_object, write.source_id,
                                      "zoho_record", "crosswalk_conflict: the Zoho record belongs to another source row"))
    result.ok -= len(held)
    result.quarantined += len(held)
    writer.commit(BatchRecord(quarantine=held))
