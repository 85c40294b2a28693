"""Run a rollback plan against Zoho, recording every step in the ledger.

Resumable: a step's records are marked in the ledger (crosswalk ``deleted``,
pre-image ``restored_by_run``) in the same transaction as their audit entries,
and a re-run skips what is marked. A record that is already gone counts as
deleted; a record that already holds its pre-image counts as restored (a
crash between Zoho's answer and the ledger write).

Human edits win: a record whose Modified_Time differs from the one we
recorded after our write is reported and, under the default ``skip`` policy,
left alone. Where the ledger holds no Modified_Time for a record, or the times
agree (Zoho stamps to the second), its Modified_By decides: anyone but
``our_user_ids`` (the integration user the migration and the rollback write
as) counts as a person. So does it where a write of ours was announced (send intent) after the
last one the ledger recorded: that write may have landed unrecorded (``ledger/human_edits.py``).

A release (an office's hold on a Contact another office still owns, ``ledger/shared.py``) touches
the ledger only: no API call, nothing to check in Zoho.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from dentrix_zoho.ledger import AuditEntry, Ledger, SharedOwner
from dentrix_zoho.ledger.shared import RELEASE_OPERATION
from dentrix_zoho.progress import Progress
from dentrix_zoho.rollback.plan import CREDITS_PER_READ_CALL, STAMP_FIELDS, RollbackItem, RollbackPlan, RollbackStep
from dentrix_zoho.ledger.human_edits import edited_since_our_write, modified_by_id, writes_in_doubt
from dentrix_zoho.rollback.records import matches_pre_image, restore_payload
from dentrix_zoho.rollback.writer import ALREADY_GONE_CODES, RollbackWriter, WriteOutcome

log = logging.getLogger(__name__)

Policy = Literal["skip", "force"]

ALL_OFFICES = "*"


@dataclass(frozen=True, slots=True)
class HumanEdit:
    """A record someone changed after our write."""

    op: str
    module: str
    zoho_id: str
    source_object: str | None
    source_id: str | None
    recorded_modified_time: str | None
    current_modified_time: str | None
    modified_by_id: str | None
    action: Literal["skipped", "forced"]


@dataclass(frozen=True, slots=True)
class StepFailure:
    op: str
    module: str
    zoho_id: str
    code: str


@dataclass
class RollbackResult:
    run_id: str
    deleted: int = 0
    restored: int = 0
    released: int = 0  # holds on shared Contacts another office still owns (kept in Zoho)
    already_done: int = 0
    human_edits: list[HumanEdit] = field(default_factory=list)
    failures: list[StepFailure] = field(default_factory=list)
    missing: list[StepFailure] = field(default_factory=list)  # restores whose record is gone
    unverified: int = 0  # records with no recorded Modified_Time to compare
    api_calls: int = 0
    credits: int = 0

    @property
    def complete(self) -> bool:
        skipped = any(edit.action == "skipped" for edit in self.human_edits)
        return not (self.failures or self.missing or skipped)

    def summary(self) -> str:
        skipped = sum(1 for edit in self.human_edits if edit.action == "skipped")
        shared = f", released {self.released} shared" if self.released else ""
        return (
            f"deleted {self.deleted}, restored {self.restored}{shared}, already done {self.already_done}, "
            f"human edits {len(self.human_edits)} ({skipped} skipped), failures {len(self.failures)}, "
            f"missing {len(self.missing)}, calls {self.api_calls}, credits {self.credits}"
        )


def execute_rollback(
    plan: RollbackPlan,
    writer: RollbackWriter,
    ledger: Ledger,
    run_id_of_rollback: str,
    *,
    policy: Policy = "skip",
    read_only_fields: Mapping[str, Collection[str]] | None = None,
    our_user_ids: Collection[str] = (),
) -> RollbackResult:
    """Carry out ``plan``; re-running with the same (or a fresh) plan resumes."""
    if policy not in ("skip", "force"):
        raise ValueError("policy must be 'skip' or 'force'")
    ledger.start_run(
        "rollback",
        plan.office_id or ALL_OFFICES,
        run_id=run_id_of_rollback,
        notes=run_notes(plan.target),
    )
    runner = _Runner(
        plan, writer, ledger, run_id_of_rollback, policy, read_only_fields or {}, frozenset(our_user_ids)
    )
    # A line at least every 10 s of a long rollback: records settled of the plan's, calls so far.
    progress = Progress(f"rollback {plan.target}", sum(len(step.items) for step in plan.steps))
    try:
        for step in plan.steps:
            calls_before = runner.result.api_calls
            if step.op == "restore":
                runner.restore(step)
            elif step.op == "release":
                runner.release(step)
            elif step.per_record:
                runner.delete_attachment(step)
            else:
                runner.delete(step)
            progress.advance(len(step.items), calls=runner.result.api_calls - calls_before,
                             detail=f"{step.op} {step.module}")
    except BaseException as exc:
        status = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
        ledger.finish_run(
            run_id_of_rollback, status, notes=run_notes(plan.target, f"interrupted: {runner.result.summary()}")
        )
        raise
    result = runner.result
    ledger.finish_run(
        run_id_of_rollback,
        "succeeded" if not result.failures else "failed",
        notes=run_notes(plan.target, result.summary()),
    )
    log.info("rollback %s of %s: %s", run_id_of_rollback, plan.target, result.summary())
    return result


class _Runner:
    def __init__(
        self,
        plan: RollbackPlan,
        writer: RollbackWriter,
        ledger: Ledger,
        run_id: str,
        policy: Policy,
        read_only_fields: Mapping[str, Collection[str]],
        our_user_ids: frozenset[str] = frozenset(),
    ) -> None:
        self.plan = plan
        self.writer = writer
        self.ledger = ledger
        self.run_id = run_id
        self.policy = policy
        self.read_only = read_only_fields
        self.our_users = our_user_ids
        self.result = RollbackResult(run_id=run_id)
        self._in_doubt: set[str] = set()  # records with a write of ours announced after the last one recorded

    # -- deletes ------------------------------------------------------------------

    def delete(self, step: RollbackStep) -> None:
        pending = self._not_yet_deleted(step)
        if not pending:
            return
        current = self._fetch(step, pending, STAMP_FIELDS)
        to_delete: list[RollbackItem] = []
        gone: list[RollbackItem] = []
        skipped: list[RollbackItem] = []
        for item in pending:
            if current is not None and item.zoho_id not in current:
                gone.append(item)
            elif current is not None and not self._may_touch("delete", step.module, item, current[item.zoho_id]):
                skipped.append(item)
            else:
                to_delete.append(item)
        self._settle_gone(step.module, gone)
        self._audit_skipped("delete", step.module, skipped)
        if not to_delete:
            return
        outcomes = self._call(
            "delete", step.module, to_delete, lambda: self.writer.delete(step.module, [i.zoho_id for i in to_delete])
        )
        self._apply_delete_outcomes(step.module, to_delete, outcomes, step.credits)

    def delete_attachment(self, step: RollbackStep) -> None:
        pending = self._not_yet_deleted(step)
        if not pending:
            return
        item = pending[0]
        assert item.parent_module and item.parent_zoho_id
        outcome = self._call(
            "delete",
            step.module,
            pending,
            lambda: [self.writer.delete_attachment(item.parent_module or "", item.parent_zoho_id or "", item.zoho_id)],
        )
        self._apply_delete_outcomes(step.module, pending, outcome, step.credits)

    def _not_yet_deleted(self, step: RollbackStep) -> list[RollbackItem]:
        rows = self.ledger.by_zoho_ids(step.module, step.zoho_ids)
        pending = [item for item in step.items if not (item.zoho_id in rows and rows[item.zoho_id].deleted)]
        self.result.already_done += len(step.items) - len(pending)
        return pending

    def _apply_delete_outcomes(
        self, module: str, items: Sequence[RollbackItem], outcomes: Sequence[WriteOutcome], credits: int
    ) -> None:
        by_id = {outcome.zoho_id: outcome for outcome in outcomes}
        done: list[tuple[RollbackItem, WriteOutcome]] = []
        failed: list[tuple[RollbackItem, WriteOutcome]] = []
        for item in items:
            outcome = by_id.get(item.zoho_id) or WriteOutcome(item.zoho_id, False, "NO_RESULT")
            if outcome.ok or outcome.code in ALREADY_GONE_CODES:
                done.append((item, outcome))
            else:
                failed.append((item, outcome))
        entries = [self._entry("delete", module, item, "ok", outcome) for item, outcome in done]
        entries += [self._entry("delete", module, item, "error", outcome) for item, outcome in failed]
        entries = self._charge(entries, credits)
        self.ledger.mark_deleted(self.run_id, module, [item.zoho_id for item, _ in done], entries)
        self.result.deleted += sum(1 for _, outcome in done if outcome.ok)
        self.result.already_done += sum(1 for _, outcome in done if not outcome.ok)
        self.result.failures += [StepFailure("delete", module, item.zoho_id, o.code) for item, o in failed]

    def _settle_gone(self, module: str, items: Sequence[RollbackItem]) -> None:
        """Records already absent from Zoho: deleted by an earlier, interrupted attempt."""
        if not items:
            return
        entries = self._coded("delete", module, items, "ok", "ALREADY_GONE")
        self.ledger.mark_deleted(self.run_id, module, [item.zoho_id for item in items], entries)
        self.result.already_done += len(items)

    # -- releases (ledger only) ------------------------------------------------------

    def release(self, step: RollbackStep) -> None:
        """End this rollback's offices' holds on Contacts another office still owns; Zoho is not touched."""
        live = {
            (h.office_id, h.source_object, h.source_id, h.zoho_id): h
            for h in self.ledger.shared_owners(module=step.module, zoho_ids=step.zoho_ids, released=False)
        }
        pending: list[tuple[RollbackItem, SharedOwner]] = []
        for item in step.items:
            hold = live.get((item.office_id or "", item.source_object or "", item.source_id or "", item.zoho_id))
            if hold is not None:
                pending.append((item, hold))
        self.result.already_done += len(step.items) - len(pending)
        if not pending:
            return
        entries = [
            self._entry(RELEASE_OPERATION, step.module, item, "ok", WriteOutcome(item.zoho_id, True, "SHARED_KEPT"))
            for item, _ in pending
        ]
        self.result.released += self.ledger.release_shared(self.run_id, step.module, [h for _, h in pending], entries)

    # -- restores -----------------------------------------------------------------

    def restore(self, step: RollbackStep) -> None:
        pending = self._not_yet_restored(step)
        if not pending:
            return
        read_only = self.read_only.get(step.module, ())
        pre_images: dict[str, dict[str, Any]] = {}
        for item in pending:
            pre_image = self.ledger.pre_image(item.pre_image_run_id or "", step.module, item.zoho_id)
            if pre_image is None:
                self.result.missing.append(StepFailure("restore", step.module, item.zoho_id, "NO_PRE_IMAGE"))
            else:
                pre_images[item.zoho_id] = pre_image
        pending = [item for item in pending if item.zoho_id in pre_images]
        if not pending:
            return
        restored_fields = {name for image in pre_images.values() for name in restore_payload(image, None, read_only)}
        current = self._fetch(step, pending, sorted(restored_fields - {"id"}) + list(STAMP_FIELDS), pre_images)
        payloads: dict[str, dict[str, Any]] = {}
        already: dict[str, tuple[tuple[int, ...], str | None]] = {}
        skipped: list[RollbackItem] = []
        for item in pending:
            pre_image = pre_images[item.zoho_id]
            now = current.get(item.zoho_id) if current is not None else None
            if current is not None and now is None:
                self.result.missing.append(StepFailure("restore", step.module, item.zoho_id, "RECORD_GONE"))
                continue
            payload = restore_payload(pre_image, now, read_only)
            if now is not None and matches_pre_image(now, payload):
                already[item.zoho_id] = (item.pre_image_ids, _text(now.get("Modified_Time")))
            elif now is not None and not self._may_touch("restore", step.module, item, now):
                skipped.append(item)
            else:
                payloads[item.zoho_id] = payload
        if already:
            done = [item for item in pending if item.zoho_id in already]
            entries = self._coded("restore", step.module, done, "ok", "ALREADY_RESTORED")
            self.ledger.mark_restored(self.run_id, step.module, already, entries)
            self.result.already_done += len(already)
        self._audit_skipped("restore", step.module, skipped)
        to_restore = [item for item in pending if item.zoho_id in payloads]
        if not to_restore:
            return
        outcomes = self._call(
            "restore",
            step.module,
            to_restore,
            lambda: self.writer.update(step.module, [payloads[item.zoho_id] for item in to_restore]),
        )
        by_id = {outcome.zoho_id: outcome for outcome in outcomes}
        restored: dict[str, tuple[tuple[int, ...], str | None]] = {}
        results: list[AuditEntry] = []
        for item in to_restore:
            outcome = by_id.get(item.zoho_id) or WriteOutcome(item.zoho_id, False, "NO_RESULT")
            if outcome.ok:
                restored[item.zoho_id] = (item.pre_image_ids, outcome.modified_time)
                results.append(self._entry("restore", step.module, item, "ok", outcome))
            else:
                results.append(self._entry("restore", step.module, item, "error", outcome))
                self.result.failures.append(StepFailure("restore", step.module, item.zoho_id, outcome.code))
        self.ledger.mark_restored(self.run_id, step.module, restored, self._charge(results, step.credits))
        self.result.restored += len(restored)

    def _not_yet_restored(self, step: RollbackStep) -> list[RollbackItem]:
        wanted = [ref_id for item in step.items for ref_id in item.pre_image_ids]
        open_ids = {ref.id for ref in self.ledger.pre_image_refs(restored=False, ids=wanted)}
        pending = [item for item in step.items if any(ref_id in open_ids for ref_id in item.pre_image_ids)]
        self.result.already_done += len(step.items) - len(pending)
        return pending

    # -- shared -------------------------------------------------------------------

    def _fetch(
        self, step: RollbackStep, items: Sequence[RollbackItem], field_names: Sequence[str],
        pre_images: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Mapping[str, Any]] | None:
        if not self.plan.check_human_edits:
            return None
        before = self.writer.fetch_calls
        ids = [item.zoho_id for item in items]
        current = dict(self.writer.fetch(step.module, ids, field_names, expected=pre_images))
        rows = self.ledger.by_zoho_ids(step.module, ids)
        self._in_doubt |= writes_in_doubt(self.ledger, rows.values())
        reads = self.writer.fetch_calls - before
        credits = reads * CREDITS_PER_READ_CALL
        self.result.api_calls += reads
        self.result.credits += credits
        self.ledger.append_audit(AuditEntry(self.run_id, "read", step.module, "ok", code="SUCCESS", credits=credits))
        return current

    def _may_touch(self, op: str, module: str, item: RollbackItem, current: Mapping[str, Any]) -> bool:
        edited = edited_since_our_write(item.expected_modified_time, current, self.our_users,
                                        write_in_doubt=item.zoho_id in self._in_doubt)
        same = None if edited is None else not edited
        if same is None:
            self.result.unverified += 1
            return True
        if same:
            return True
        action: Literal["skipped", "forced"] = "forced" if self.policy == "force" else "skipped"
        self.result.human_edits.append(
            HumanEdit(
                op=op,
                module=module,
                zoho_id=item.zoho_id,
                source_object=item.source_object,
                source_id=item.source_id,
                recorded_modified_time=item.expected_modified_time,
                current_modified_time=_text(current.get("Modified_Time")),
                modified_by_id=modified_by_id(current),
                action=action,
            )
        )
        log.warning("%s %s %s was edited after our write: %s", op, module, item.zoho_id, action)
        if action == "forced":
            # Overwritten on purpose, and the ledger says so (a skip is audited with its step).
            self.ledger.append_audit(
                self._entry("human_edit", module, item, "ok", WriteOutcome(item.zoho_id, True, f"FORCED_{op.upper()}"))
            )
        return self.policy == "force"

    def _audit_skipped(self, op: str, module: str, items: Sequence[RollbackItem]) -> None:
        self.ledger.append_audit_many(self._coded(op, module, items, "skipped", "HUMAN_EDITED"))

    def _call(
        self, op: str, module: str, items: Sequence[RollbackItem], send: Callable[[], Sequence[WriteOutcome]]
    ) -> Sequence[WriteOutcome]:
        self.result.api_calls += 1
        try:
            return list(send())
        except BaseException:
            # Whether Zoho applied the call is unknown: say so, and let a re-run
            # find out (gone / already restored) before it writes again.
            self.ledger.append_audit_many(self._coded(op, module, items, "uncertain", "NO_RESPONSE"))
            raise

    def _coded(self, op: str, module: str, items: Sequence[RollbackItem], outcome: str, code: str) -> list[AuditEntry]:
        return [
            self._entry(op, module, item, outcome, WriteOutcome(item.zoho_id, outcome == "ok", code)) for item in items
        ]

    def _entry(self, op: str, module: str, item: RollbackItem, outcome: str, answer: WriteOutcome) -> AuditEntry:
        return AuditEntry(
            run_id=self.run_id,
            operation=op,
            module=module,
            outcome=outcome,
            source_id=item.source_id,
            zoho_id=item.zoho_id,
            code=answer.code,
            http_status=answer.http_status,
        )

    def _charge(self, entries: list[AuditEntry], credits: int) -> list[AuditEntry]:
        # A call's credits go on its first entry, so a sum over entries is the bill.
        self.result.credits += credits
        if not entries:
            return entries
        return [replace(entries[0], credits=credits), *entries[1:]]


def run_notes(target: str, detail: str | None = None) -> str:
    """The ledger notes of a rollback run; they name its target so that an unfinished run can be resumed."""
    return f"rollback of {target}" + (f": {detail}" if detail else "")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
