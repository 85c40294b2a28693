"""One rollback, start to end, as the command line and the Dagster job both run it:
plan from the ledger, resolve who "we" are in Zoho, execute through the client, count.

Counts and ids only leave this module; record contents stay in Zoho and the ledger.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.rollback.adapter import ZohoRollbackWriter
from dentrix_zoho.rollback.execute import ALL_OFFICES, Policy, RollbackResult, execute_rollback, run_notes
from dentrix_zoho.rollback.plan import DEFAULT_MODULE_ORDER, RollbackPlan, plan_rollback
from dentrix_zoho.zoho import OrgLimitsUnavailable, ZohoClient, ZohoError

log = logging.getLogger(__name__)

POLICIES: tuple[str, ...] = ("skip", "force")


def make_plan(
    ledger: Ledger,
    run_id: str | None,
    all_runs: bool,
    *,
    office_id: str | None = None,
    module_order: Sequence[str] = DEFAULT_MODULE_ORDER,
    within_module_order: Mapping[str, Sequence[str]] | None = None,
    check_human_edits: bool = True,
) -> RollbackPlan:
    """The plan as the Zoho adapter will carry it out (restore checks read one record per call)."""
    return plan_rollback(
        ledger,
        run_id,
        all_runs,
        module_order,
        within_module_order=within_module_order,
        office_id=office_id,
        check_human_edits=check_human_edits,
        restore_reads_per_record=True,
    )


def unfinished_rollback(ledger: Ledger, plan: RollbackPlan) -> str | None:
    """The latest rollback run of the same target and office that did not finish cleanly, to resume under its id."""
    office = plan.office_id or ALL_OFFICES
    prefix = run_notes(plan.target)
    for run in reversed(ledger.runs(kind="rollback")):
        notes = run.notes or ""
        if run.office_id == office and (notes == prefix or notes.startswith(prefix + ":")):
            return None if run.status == "succeeded" else run.run_id
    return None


def new_rollback_run_id() -> str:
    return f"rollback-{uuid.uuid4().hex[:12]}"


def run_rollback(
    plan: RollbackPlan,
    client: ZohoClient,
    ledger: Ledger,
    rollback_run_id: str,
    *,
    policy: Policy = "skip",
) -> RollbackResult:
    """Execute ``plan`` against Zoho; resumable by running it again (same or a fresh plan)."""
    writer = ZohoRollbackWriter(client)
    # Records last modified by anyone but the integration user count as human edits
    # where the ledger holds no Modified_Time (run the rollback as the migration's user).
    ours = _current_user(writer) if plan.check_human_edits and not plan.is_empty else None
    restored_modules = {step.module for step in plan.steps if step.op == "restore"}
    read_only = writer.read_only_fields(sorted(restored_modules)) if restored_modules else {}
    return execute_rollback(
        plan,
        writer,
        ledger,
        rollback_run_id,
        policy=policy,
        read_only_fields=read_only,
        our_user_ids=[ours] if ours else [],
    )


def _current_user(writer: ZohoRollbackWriter) -> str | None:
    try:
        return writer.current_user_id()
    except OrgLimitsUnavailable:
        raise  # never asked Zoho
    except ZohoError as exc:
        log.warning(
            "rollback: cannot tell which Zoho user we write as (%s); records without a recorded "
            "Modified_Time are not checked for human edits",
            exc.code or exc.status,
        )
        return None


def close_finished(ledger: Ledger, plan: RollbackPlan) -> str | None:
    """An empty plan with an unfinished rollback run of the same target: that run did all its work
    before it stopped (killed after its last step); mark it succeeded. Returns its id."""
    if not plan.is_empty:
        return None
    stale = unfinished_rollback(ledger, plan)
    if stale is not None:
        ledger.finish_run(stale, "succeeded", notes=run_notes(plan.target, "nothing left to do"))
    return stale


def plan_counts(plan: RollbackPlan) -> dict[str, int]:
    """Flat counts for logs and Dagster metadata: ``<op>.<module>`` records, calls and credits."""
    counts: dict[str, int] = {f"{op}.{module}": n for (module, op), n in sorted(plan.counts().items())}
    counts.update(api_calls=plan.api_calls, credits=plan.credits, check_calls=plan.check_calls)
    return counts


def result_counts(result: RollbackResult) -> dict[str, int]:
    skipped = sum(1 for edit in result.human_edits if edit.action == "skipped")
    return {
        "deleted": result.deleted,
        "restored": result.restored,
        "released": result.released,  # holds on shared Contacts another office still owns (kept in Zoho)
        "already_done": result.already_done,
        "human_edits": len(result.human_edits),
        "human_edits_skipped": skipped,
        "human_edits_forced": len(result.human_edits) - skipped,
        "failures": len(result.failures),
        "missing": len(result.missing),
        "unverified": result.unverified,
        "api_calls": result.api_calls,
        "credits": result.credits,
    }


def breakdown(result: RollbackResult) -> list[tuple[str, str, str, int]]:
    """(what, op, module or code, count) rows: human edits by op/module/action, failures by code."""
    rows: Counter[tuple[str, str, str]] = Counter()
    for edit in result.human_edits:
        rows[(f"human edit, {edit.action}", edit.op, edit.module)] += 1
    for failure in result.failures:
        rows[("failed", failure.op, f"{failure.module} {failure.code}")] += 1
    for missing in result.missing:
        rows[("not restorable", missing.op, f"{missing.module} {missing.code}")] += 1
    return [(what, op, where, n) for (what, op, where), n in sorted(rows.items())]


def describe(result: RollbackResult) -> dict[str, Any]:
    """Counts plus the breakdown, JSON-friendly."""
    return {**result_counts(result), "complete": result.complete, "breakdown": breakdown(result)}
