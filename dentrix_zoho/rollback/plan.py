"""Plan a rollback from the ledger: what to delete, what to restore, in which
order, in how many API calls and for how many credits.

A plan lists only what is still to do, so planning again after a crash gives
the remaining work; the executor re-checks each step against the ledger too.

A Contact several offices share (cross-office policy ``merge``, ``ledger/shared.py``) is deleted
only with its last owner: rolling back one office while another still owns it *releases* that
office's hold (a ledger-only step, no API call) and keeps the Contact; the office's children of
it are deleted as usual.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from dentrix_zoho.ledger import CrosswalkRow, Ledger, LedgerError, PreImageRef, SharedOwner
from dentrix_zoho.ledger.text_table import text_table
from dentrix_zoho.load.readback import minimum_calls
from dentrix_zoho.zoho.limits import LIST_RICH_TEXT_CHARS

# The stamps every check reads beside a pre-image's fields (``rollback/execute.py``).
STAMP_FIELDS = ("Modified_Time", "Modified_By")

DEFAULT_MODULE_ORDER: tuple[str, ...] = ("Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments")
ATTACHMENT_MODULES: frozenset[str] = frozenset({"Attachments"})

# Zoho limits and credit prices (https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html; the records pages cap a call at 100).
MAX_IDS_PER_DELETE = 100
MAX_RECORDS_PER_UPDATE = 100
RECORDS_PER_UPDATE_CREDIT = 10
CREDITS_PER_DELETE_CALL = 1
CREDITS_PER_READ_CALL = 1

Op = Literal["delete", "restore", "release"]


@dataclass(frozen=True, slots=True)
class RollbackItem:
    zoho_id: str
    source_object: str | None = None
    source_id: str | None = None
    # Modified_Time Zoho reported after our last write; anything else now means
    # someone edited the record since.
    expected_modified_time: str | None = None
    # Restores: whose pre-image to put back, and every pre-image this settles.
    pre_image_run_id: str | None = None
    pre_image_ids: tuple[int, ...] = ()
    # Attachments are deleted through their parent record's URL.
    parent_module: str | None = None
    parent_zoho_id: str | None = None
    # Releases: whose hold on a shared Contact ends.
    office_id: str | None = None
    # Restores: the pre-image holds what only GET by id returns (a list: subform or multi-select; a text
    # longer than lists show), so its check reads it whole; and how many fields the pre-image names.
    whole_read: bool = False
    field_count: int = 0


@dataclass(frozen=True, slots=True)
class RollbackStep:
    """One API call; a release is a ledger write only."""

    op: Op
    module: str
    items: tuple[RollbackItem, ...]
    per_record: bool = False  # attachments: one DELETE per attachment

    @property
    def zoho_ids(self) -> list[str]:
        return [item.zoho_id for item in self.items]

    @property
    def calls(self) -> int:
        return 0 if self.op == "release" else 1

    @property
    def credits(self) -> int:
        if self.op == "release":
            return 0
        if self.op == "restore":
            return math.ceil(len(self.items) / RECORDS_PER_UPDATE_CREDIT)
        return CREDITS_PER_DELETE_CALL


@dataclass
class RollbackPlan:
    target: str  # a run id, or "all"
    office_id: str | None
    run_ids: tuple[str, ...]
    steps: list[RollbackStep]
    check_human_edits: bool = True
    notes: list[str] = field(default_factory=list)
    # A restore's check (the Zoho adapter's reads, ``rollback/adapter.py``): the pre-images' fields
    # by list calls of 100 ids, a record of a module with subforms one GET by id. Without it: one list
    # call per step, as a delete's check.
    restore_reads_per_record: bool = False

    def counts(self) -> dict[tuple[str, str], int]:
        """Records per (module, op)."""
        totals: Counter[tuple[str, str]] = Counter()
        for step in self.steps:
            totals[(step.module, step.op)] += len(step.items)
        return dict(totals)

    @property
    def write_calls(self) -> int:
        return sum(step.calls for step in self.steps)

    @property
    def check_calls(self) -> int:
        """Reads that compare Modified_Time before touching a record (one per step)."""
        if not self.check_human_edits:
            return 0
        return sum(self.check_reads(step) for step in self.steps)

    def check_reads(self, step: RollbackStep) -> int:
        if not self.check_human_edits or step.per_record or step.op == "release":
            return 0
        if step.op != "restore" or not self.restore_reads_per_record:
            return 1
        listed = [item for item in step.items if not item.whole_read]
        fields = max((item.field_count for item in listed), default=0)
        return minimum_calls(len(listed), fields) + (len(step.items) - len(listed))

    @property
    def api_calls(self) -> int:
        return self.write_calls + self.check_calls

    @property
    def credits(self) -> int:
        return sum(step.credits for step in self.steps) + self.check_calls * CREDITS_PER_READ_CALL

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def render(self) -> str:
        title = "Rollback of the whole migration" if self.target == "all" else f"Rollback of run {self.target}"
        if self.office_id:
            title += f" (office {self.office_id})"
        lines = [title]
        if self.is_empty:
            lines.append("Nothing to roll back.")
        else:
            rows: list[tuple[str, str, str, str, str]] = []
            for (op, module), (records, calls, credits) in self._per_op_module().items():
                rows.append((op, module, str(records), str(calls), str(credits)))
            if self.check_calls:
                rows.append(
                    (
                        "check",
                        "(Modified_Time/_By reads)",
                        "-",
                        str(self.check_calls),
                        str(self.check_calls * CREDITS_PER_READ_CALL),
                    )
                )
            total_records = sum(len(step.items) for step in self.steps)
            rows.append(("total", "", str(total_records), str(self.api_calls), str(self.credits)))
            lines.append(text_table(("op", "module", "records", "calls", "credits"), rows))
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def _per_op_module(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        # Keeps execution order: restores first, then deletes children to parents, then releases.
        table: dict[tuple[str, str], tuple[int, int, int]] = {}
        for step in self.steps:
            records, calls, credits = table.get((step.op, step.module), (0, 0, 0))
            table[(step.op, step.module)] = (records + len(step.items), calls + step.calls, credits + step.credits)
        return table


def plan_rollback(
    ledger: Ledger,
    run_id: str | None,
    all_runs: bool,
    module_order: Sequence[str] = DEFAULT_MODULE_ORDER,
    *,
    within_module_order: Mapping[str, Sequence[str]] | None = None,
    office_id: str | None = None,
    check_human_edits: bool = True,
    restore_reads_per_record: bool = False,
) -> RollbackPlan:
    """Plan the rollback of one run (``run_id``) or of everything (``all_runs``).

    ``module_order`` is the load order, parents first; deletes go the other way.
    ``within_module_order`` gives, per module, the load order of source objects
    sharing it (e.g. ``{"Contacts": ["guarantor", "patient"]}``: responsible
    parties are loaded before the patients that point at them, so patients are
    deleted first). Source objects not listed count as the most dependent.
    """
    if (run_id is None) == (not all_runs):
        raise ValueError("give exactly one of run_id or all_runs=True")
    within = {module: list(order) for module, order in (within_module_order or {}).items()}
    notes: list[str] = []

    if run_id is not None:
        run = ledger.run(run_id)
        if run is None:
            raise LedgerError(f"no run {run_id} in the ledger")
        if run.kind == "rollback":
            raise LedgerError(f"run {run_id} is itself a rollback; it has nothing to undo")
        office_id = office_id or run.office_id
        if run.status == "running":
            notes.append(f"run {run_id} is still marked running: stop it before rolling it back")
        run_ids: tuple[str, ...] = (run_id,)
        created = list(ledger.crosswalk_rows(created_by_run=run_id, deleted=False, office_id=office_id))
    else:
        run_ids = tuple(
            r.run_id
            for r in ledger.runs()
            if r.kind != "rollback" and (office_id is None or r.office_id == office_id)
        )
        created = list(ledger.crosswalk_rows(created=True, deleted=False, office_id=office_id))

    created, releases = _shared_contacts(ledger, created, run_id, office_id, notes)
    rollback_runs = {r.run_id for r in ledger.runs(kind="rollback")}
    restores = _restore_items(ledger, run_id, office_id, created, rollback_runs, notes,
                              read_shapes=restore_reads_per_record and check_human_edits)
    if run_id is not None:
        # A later run (the cutover delta) keeps pre-images of records an earlier run created before it
        # updates them (load/upserts.save_later_run_pre_images): its rollback puts those values back.
        earlier = sum(1 for _, _, row in restores if row is not None and row.created_by_run not in (None, run_id))
        if earlier:
            notes.append(f"{earlier} record(s) an earlier run created are put back as that run left them")
        later = sum(1 for row in created if row.last_run_id != run_id)
        later += sum(1 for _, _, row in restores if row is not None and row.last_run_id != run_id)
        if later:
            notes.append(
                f"{later} record(s) were written again by a later run; "
                "rolling back this run also undoes those later writes"
            )

    unknown = sorted({row.zoho_module for row in created} - set(module_order))
    if unknown:
        notes.append(f"modules not in the load order, deleted first: {', '.join(unknown)}")

    steps = _restore_steps(restores, module_order, within)
    steps += _delete_steps(created, module_order, within, notes)
    steps += _release_steps(releases, module_order)
    return RollbackPlan(
        target=run_id or "all",
        office_id=office_id,
        run_ids=run_ids,
        steps=steps,
        check_human_edits=check_human_edits,
        notes=notes,
        restore_reads_per_record=restore_reads_per_record,
    )


def _shared_contacts(
    ledger: Ledger,
    created: list[CrosswalkRow],
    run_id: str | None,
    office_id: str | None,
    notes: list[str],
) -> tuple[list[CrosswalkRow], list[SharedOwner]]:
    """The records to delete once shared Contacts are counted, and the holds to release.

    A shared Contact another office still holds is kept (this rollback's holds on it released);
    one whose last holders this rollback removes is deleted, whoever created it, unless it existed
    in Zoho before the migration (then it is not ours to delete; a restore puts its pre-image back).
    """

    def in_scope(hold: SharedOwner) -> bool:
        return (office_id is None or hold.office_id == office_id) and (run_id is None or hold.run_id == run_id)

    mine = ledger.shared_owners(office_id=office_id, run_id=run_id, released=False)
    wanted: dict[str, set[str]] = {}
    for module, zoho_id in [(r.zoho_module, r.zoho_id) for r in created] + [(h.zoho_module, h.zoho_id) for h in mine]:
        wanted.setdefault(module, set()).add(zoho_id)
    holds: dict[tuple[str, str], list[SharedOwner]] = {}
    anchors: dict[tuple[str, str], CrosswalkRow] = {}
    for module, ids in wanted.items():
        for hold in ledger.shared_owners(module=module, zoho_ids=sorted(ids)):
            holds.setdefault((module, hold.zoho_id), []).append(hold)
        shared = [zid for zid in ids if (module, zid) in holds]
        anchors.update({(module, zid): row for zid, row in ledger.by_zoho_ids(module, shared).items()})

    doomed = {(row.zoho_module, row.zoho_id) for row in created}
    kept: set[tuple[str, str]] = set()
    releases: list[SharedOwner] = []
    last: list[CrosswalkRow] = []
    for key, rows in sorted(holds.items()):
        live = [hold for hold in rows if not hold.released]
        ours = [hold for hold in live if in_scope(hold)]
        anchor = anchors.get(key)
        if any(not in_scope(hold) for hold in live) or anchor is None or anchor.deleted or anchor.created_by_run is None:
            kept.add(key)
            releases += ours
        elif key not in doomed:
            last.append(anchor)  # another office created it; its last holders go now
    if kept & doomed:
        notes.append(
            f"{len(kept & doomed)} shared Contact(s) kept: another office still owns them "
            "(this rollback releases its hold)"
        )
    joined_kept = len({(h.zoho_module, h.zoho_id) for h in releases} - doomed)
    if joined_kept:
        notes.append(f"{joined_kept} shared Contact(s) another office created keep that office; this one's hold ends")
    if last:
        notes.append(f"{len(last)} shared Contact(s) deleted with their last owner")
    return [row for row in created if (row.zoho_module, row.zoho_id) not in kept] + last, releases


def _release_steps(releases: Sequence[SharedOwner], module_order: Sequence[str]) -> list[RollbackStep]:
    rank = _module_rank(module_order)
    by_module: dict[str, list[RollbackItem]] = {}
    for hold in sorted(releases, key=lambda h: (h.zoho_module, h.zoho_id, h.office_id, h.source_id)):
        by_module.setdefault(hold.zoho_module, []).append(
            RollbackItem(zoho_id=hold.zoho_id, source_object=hold.source_object, source_id=hold.source_id,
                         office_id=hold.office_id)
        )
    steps: list[RollbackStep] = []
    for module in sorted(by_module, key=lambda m: (rank.get(m, len(rank)), m)):
        steps += [RollbackStep("release", module, tuple(b)) for b in _batches(by_module[module], MAX_IDS_PER_DELETE)]
    return steps


def _restore_items(
    ledger: Ledger,
    run_id: str | None,
    office_id: str | None,
    created: Sequence[CrosswalkRow],
    rollback_runs: set[str],
    notes: list[str],
    *,
    read_shapes: bool = False,
) -> list[tuple[str, RollbackItem, CrosswalkRow | None]]:
    """(module, item, crosswalk row) per record: this run's pre-image, or (all runs) the earliest one."""
    doomed = {(row.zoho_module, row.zoho_id) for row in created}
    groups: dict[tuple[str, str], list[PreImageRef]] = {}
    for ref in ledger.pre_image_refs(run_id, restored=False):  # capture order
        if ref.run_id in rollback_runs or (ref.module, ref.zoho_id) in doomed:
            continue
        groups.setdefault((ref.module, ref.zoho_id), []).append(ref)

    rows: dict[tuple[str, str], CrosswalkRow] = {}
    for module in {module for module, _ in groups}:
        ids = [zoho_id for m, zoho_id in groups if m == module]
        rows.update({(module, zid): row for zid, row in ledger.by_zoho_ids(module, ids).items()})

    items: list[tuple[str, RollbackItem, CrosswalkRow | None]] = []
    orphans = 0
    for key, refs in groups.items():
        row = rows.get(key)
        if row is not None and row.deleted:
            continue  # the record is gone; nothing to put back
        if row is None and office_id is not None and run_id is None:
            orphans += 1  # cannot tell which office it belongs to
            continue
        if row is not None and office_id is not None and row.office_id != office_id:
            continue
        first = refs[0]
        shape = _read_shape(ledger.pre_image(first.run_id, first.module, first.zoho_id)) if read_shapes else (False, 0)
        items.append(
            (
                first.module,
                RollbackItem(
                    zoho_id=first.zoho_id,
                    source_object=row.source_object if row else None,
                    source_id=row.source_id if row else None,
                    expected_modified_time=row.zoho_modified_time if row else None,
                    pre_image_run_id=first.run_id,
                    pre_image_ids=tuple(ref.id for ref in refs),
                    whole_read=shape[0],
                    field_count=shape[1],
                ),
                row,
            )
        )
    if orphans:
        notes.append(f"{orphans} pre-image(s) have no crosswalk row and no office; left out")
    return items


def _read_shape(pre_image: Mapping[str, Any] | None) -> tuple[bool, int]:
    """(read whole by id, fields named) of a restore's check, as the Zoho adapter will read it: a list
    value (a subform, a multi-select) or a text longer than lists show makes it a GET by id."""
    if pre_image is None:
        return False, 0
    names = [name for name in pre_image if name != "id" and not name.startswith("$")]
    whole = any(isinstance(v, list) or (isinstance(v, str) and len(v) > LIST_RICH_TEXT_CHARS)
                for v in pre_image.values())
    return whole, len(names) + len(STAMP_FIELDS)


def _module_rank(module_order: Sequence[str]) -> dict[str, int]:
    return {module: index for index, module in enumerate(module_order)}


def _object_rank(within: Mapping[str, list[str]], module: str, source_object: str | None) -> int:
    order = within.get(module, [])
    # Unlisted objects rank after every listed one: loaded last, deleted first.
    return order.index(source_object) if source_object in order else len(order)


def _restore_steps(
    restores: Iterable[tuple[str, RollbackItem, CrosswalkRow | None]],
    module_order: Sequence[str],
    within: Mapping[str, list[str]],
) -> list[RollbackStep]:
    rank = _module_rank(module_order)
    by_module: dict[str, list[RollbackItem]] = {}
    for module, item, _ in restores:
        by_module.setdefault(module, []).append(item)
    for module, items in by_module.items():
        # A pre-image with a subform shows the module has them: the adapter reads all its records whole.
        if any(item.whole_read for item in items):
            by_module[module] = [replace(item, whole_read=True) for item in items]
    steps: list[RollbackStep] = []
    for module in sorted(by_module, key=lambda m: (rank.get(m, len(rank)), m)):
        items = sorted(
            by_module[module],
            key=lambda item: (_object_rank(within, module, item.source_object), item.zoho_id),
        )
        steps += [RollbackStep("restore", module, tuple(batch)) for batch in _batches(items, MAX_RECORDS_PER_UPDATE)]
    return steps


def _delete_steps(
    created: Sequence[CrosswalkRow],
    module_order: Sequence[str],
    within: Mapping[str, list[str]],
    notes: list[str],
) -> list[RollbackStep]:
    rank = _module_rank(module_order)
    by_module: dict[str, list[CrosswalkRow]] = {}
    for row in created:
        by_module.setdefault(row.zoho_module, []).append(row)
    # Unknown modules rank as the most dependent (-1 after reversing).
    ordered = sorted(by_module, key=lambda m: (-rank.get(m, len(rank)), m))
    steps: list[RollbackStep] = []
    for module in ordered:
        rows = sorted(
            by_module[module],
            key=lambda row: (-_object_rank(within, module, row.source_object), row.zoho_id),
        )
        items = [
            RollbackItem(
                zoho_id=row.zoho_id,
                source_object=row.source_object,
                source_id=row.source_id,
                expected_modified_time=row.zoho_modified_time,
                parent_module=row.parent_module,
                parent_zoho_id=row.parent_zoho_id,
            )
            for row in rows
        ]
        if module in ATTACHMENT_MODULES:
            orphans = [item for item in items if not (item.parent_module and item.parent_zoho_id)]
            if orphans:
                notes.append(
                    f"{len(orphans)} attachment(s) have no parent record in the ledger and cannot be "
                    "deleted by URL; they go with their parent if it is deleted"
                )
            steps += [
                RollbackStep("delete", module, (item,), per_record=True)
                for item in items
                if item.parent_module and item.parent_zoho_id
            ]
        else:
            steps += [RollbackStep("delete", module, tuple(b)) for b in _batches(items, MAX_IDS_PER_DELETE)]
    return steps


def _batches(items: Sequence[RollbackItem], size: int) -> Iterable[list[RollbackItem]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
