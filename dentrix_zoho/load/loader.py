"""``load_module`` / ``load_all``: shaped rows into Zoho, every outcome into the ledger.

Resumable by construction: a kill at any point leaves Zoho and the ledger in a state the
next run completes without duplicates (upserts are keyed; Notes and Attachments are
reconciled against their parent's children before they are created again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dentrix_zoho.load.children import ChildLoader
from dentrix_zoho.load.context import LOAD_ORDER, LoadContext, LoadStep, ModuleLoadResult, steps_for
from dentrix_zoho.load.ledger_io import LedgerWriter
from dentrix_zoho.load.links import ParentIndex
from dentrix_zoho.load.shaped import ShapedRow, open_duckdb, read_step_rows
from dentrix_zoho.load.upserts import load_upsert_step
from dentrix_zoho.progress import Progress, tracking
from dentrix_zoho.zoho import BudgetExceeded

log = logging.getLogger(__name__)


class LoadOverBudget(BudgetExceeded):
    """The load's estimate does not fit the credits left; nothing was sent."""

    def __init__(self, estimate: LoadEstimate) -> None:
        super().__init__(
            f"load refused: needs ~{estimate.credits} credits in ~{estimate.calls} calls, "
            f"{estimate.remaining} remaining (reserve {estimate.reserve}) of {estimate.limit} per 24 h",
            needed=estimate.credits, remaining=estimate.remaining, limit=estimate.limit,
        )
        self.estimate = estimate


def _rows(ctx: LoadContext, step: LoadStep, source_ids: Iterable[str] | None) -> list[ShapedRow]:
    with open_duckdb(ctx.duckdb_path) as con:
        return read_step_rows(con, step, ctx.office_id, sample=ctx.options.sample_source_ids, source_ids=source_ids)


def _parents(ctx: LoadContext) -> ParentIndex:
    index = ctx.run_cache.get("parents")
    if index is None:
        index = ctx.run_cache["parents"] = ParentIndex(ctx.ledger, ctx.office_id)
    return index


def _writer(ctx: LoadContext) -> LedgerWriter:
    writer = ctx.run_cache.get("writer")
    if writer is None:
        writer = ctx.run_cache["writer"] = LedgerWriter(ctx.ledger, ctx.run_id, ctx.office_id)
    return writer


def run_step(ctx: LoadContext, step: LoadStep, source_ids: Iterable[str] | None = None) -> ModuleLoadResult:
    result = ModuleLoadResult(step=step.name, module=step.module, dry_run=ctx.options.dry_run)
    t0 = time.perf_counter()
    calls0 = ctx.client.transport.calls
    rows = _rows(ctx, step, source_ids)
    result.shaped = len(rows)
    # Each settled batch advances it (upserts.py, children.py): a line at least every 10 s of a long step.
    # Joined rows (policy merge) are accounted for without a call.
    step_progress = Progress(f"load {step.name}", len(rows),
                             counted=lambda: result.unchanged + result.sent + result.cross_office_joined)
    try:
        with tracking(step_progress):
            if step.kind == "upsert":
                load_upsert_step(ctx, step, rows, result, _writer(ctx), _parents(ctx))
            else:
                ChildLoader(ctx, step, result, _writer(ctx), _parents(ctx)).run(rows)
    finally:
        result.api_calls = ctx.client.transport.calls - calls0
        result.elapsed_s = round(time.perf_counter() - t0, 3)
        log.info("load %s (%s): shaped=%d unchanged=%d sent=%d ok=%d created=%d failed=%d quarantined=%d "
                 "reconciled=%d calls=%d elapsed=%.2fs%s", step.name, step.module, result.shaped, result.unchanged,
                 result.sent, result.ok, result.created, result.failed, result.quarantined, result.reconciled,
                 result.api_calls, result.elapsed_s, " (dry run)" if result.dry_run else "")
    return result


def load_module(ctx: LoadContext, module: str, *, source_ids: set[str] | None = None) -> ModuleLoadResult:
    """Load one step (``"patients"``) or every step of one Zoho module (``"Contacts"``), results summed."""
    results = [run_step(ctx, step, source_ids) for step in steps_for(module)]
    if len(results) == 1:
        return results[0]
    total = ModuleLoadResult(step=module, module=results[0].module, dry_run=ctx.options.dry_run)
    for r in results:
        for name, value in vars(r).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "elapsed_s":
                setattr(total, name, getattr(total, name) + value)
        for code, n in r.codes.items():
            total.codes[code] = total.codes.get(code, 0) + n
        total.elapsed_s = round(total.elapsed_s + r.elapsed_s, 3)
    return total


def load_all(ctx: LoadContext, modules: Sequence[str] = LOAD_ORDER, *, check_budget: bool = True) -> list[ModuleLoadResult]:
    """Every step in dependency order; refuses up front (``LoadOverBudget``) when the credits do not fit."""
    if check_budget and not ctx.options.dry_run:
        refuse_if_over_budget(ctx, estimate_load(ctx, modules))
    return [load_module(ctx, name) for name in modules]


# -- credits ---------------------------------------------------------------------------


@dataclass
class StepEstimate:
    step: str
    module: str
    records: int  # rows to send (changed since the last load)
    calls: int
    credits: int


@dataclass
class LoadEstimate:
    steps: list[StepEstimate] = field(default_factory=list)
    remaining: int | None = None
    reserve: int = 0
    limit: int | None = None

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.steps)

    @property
    def credits(self) -> int:
        return sum(s.credits for s in self.steps)

    @property
    def fits(self) -> bool:
        return self.remaining is None or self.credits <= self.remaining - self.reserve

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "credits": self.credits, "remaining": self.remaining, "reserve": self.reserve,
                "limit": self.limit, "fits": self.fits,
                "by_step": {s.step: {"records": s.records, "calls": s.calls, "credits": s.credits} for s in self.steps},
                "by_module": self.by_module()}

    def by_module(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in self.steps:
            m = out.setdefault(s.module, {"records": 0, "calls": 0, "credits": 0})
            m["records"] += s.records
            m["calls"] += s.calls
            m["credits"] += s.credits
        return out


def _estimate_inputs(ctx: LoadContext) -> Any:
    from dentrix_zoho.plan.estimate import DEFAULT_LATENCY_MS, EstimateInputs

    config = ctx.client.config
    return EstimateInputs.build(
        edition=config.edition, users=max(1, config.users), concurrency=config.concurrency,
        latency_ms=ctx.client.transport.latency_ewma_ms or DEFAULT_LATENCY_MS, reserve=0.0,
        scope="sample" if ctx.options.sample_source_ids is not None else "full",
        on_budget_exhausted=config.on_budget_exhausted, write_path=ctx.options.write_path,
    )


def estimate_load(ctx: LoadContext, modules: Sequence[str] = LOAD_ORDER) -> LoadEstimate:
    """Calls and credits per step of the load, from the migration estimate (``dentrix_zoho.plan``):
    the same counts and phases, the load steps alone; the client's budget says what is left."""
    from dentrix_zoho.plan.counts import count_migration
    from dentrix_zoho.plan.estimate import estimate_phases

    counts = count_migration(ctx.duckdb_path, ctx.office_id, sample=ctx.options.sample_source_ids,
                             scope="sample" if ctx.options.sample_source_ids is not None else "full",
                             ledger=ctx.ledger, steps=modules, require_shaped=False)
    phases, _ = estimate_phases(counts, _estimate_inputs(ctx), load_only=True)
    budget = ctx.client.budget
    estimate = LoadEstimate(remaining=budget.remaining(), reserve=budget.reserve, limit=budget.daily_limit)
    for c in counts.steps:
        mine = [p for p in phases if p.step == c.step]
        estimate.steps.append(StepEstimate(c.step, c.module, c.to_send, sum(p.calls for p in mine),
                                           sum(p.credits for p in mine)))
    return estimate


def refuse_if_over_budget(ctx: LoadContext, estimate: LoadEstimate) -> None:
    """Refuse (policy ``stop``) a load the credits left cannot carry; under ``pause`` go on and wait."""
    if not estimate.fits:
        if ctx.client.budget.policy != "pause":
            raise LoadOverBudget(estimate)
        log.warning("load estimate: %d credits, %s remaining (reserve %d): the load will pause when the "
                    "credits run out (ZOHO_ON_BUDGET_EXHAUSTED=pause)", estimate.credits, estimate.remaining,
                    estimate.reserve)
        return
    log.info("load estimate: %d calls, %d credits; %s credits remaining", estimate.calls, estimate.credits,
             "unknown" if estimate.remaining is None else estimate.remaining)
