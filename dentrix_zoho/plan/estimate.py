"""How many calls, credits, hours and calendar days a migration needs on the customer's Zoho plan.

From the counts of what would be sent (``plan.counts``), phase by phase as the loader really
works: schema set-up, owner resolution, per step the pre-scan for records we do not know, the
human-edit check and the subform emptying of a re-run, the writes (record API or Bulk Write, as
``zoho.planning.choose_write_path`` decides), the uploads, then reconciliation and (sample only)
the diff report's read-back. Every Zoho number comes from ``zoho.limits``; reads are counted with
the read-back's own rules (``load.readback``: ``IDS_PER_GET`` ids and ``FIELDS_PER_GET`` fields a
multi-id GET, reads by id of records with subform rows, one listing per parent).

Reconciliation, as ``load.reconcile`` reads: a COQL ``COUNT`` per keyed module (several at a time),
the office's notes by the cheaper of the org's notes listing and a listing per parent (the same
``load.zoho_reads.choose_notes_read``), each parent's attachments listed, the office's
Events/Tasks/Calls and Notes read by id for their parent lookup, and its Contacts for ``Balance_Due``.
The pre-scan for records without a crosswalk row takes the loader's own path too
(``load.zoho_reads.pre_scan_path``: COQL ``in`` lookups or one COQL read of this office's records).

Wall time = sum over phases of ceil(calls / usable concurrency) x latency: usable concurrency is
the edition's (or a lower override), at most 10 for heavy calls (writes of more than 10 records,
COQL, search), and 1 for phases the loader runs one call at a time; Bulk Write adds the planner's
processing time. Calendar days = ceil(credits / usable credits per rolling 24 h), usable =
min(edition maximum, 50,000 + users x per-user + add-ons) x (1 - reserve).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dentrix_zoho.load.context import LOAD_ORDER, LOAD_STEPS
from dentrix_zoho.load.readback import listing_calls, minimum_calls, read_names
from dentrix_zoho.load.schema_setup import KEYED_MODULES
from dentrix_zoho.load.zoho_reads import (  # the loader's own rules for the reads that choose a path
    STAMP_FIELDS,
    choose_notes_read,
    lookup_calls,
    lookup_credits,
    office_scan_calls,
    office_scan_credits,
    pre_image_read_calls,
    pre_scan_path,
)
from dentrix_zoho.plan.counts import MigrationCounts, StepCounts
from dentrix_zoho.zoho import limits
from dentrix_zoho.zoho.config import ZohoConfig
from dentrix_zoho.zoho.planning import WritePathChoice, choose_write_path

MAX_USERS = 100_000  # beyond this a user count is a typo, not an org
MAX_DAYS = 30  # a migration that needs longer than this is not a plan
MAX_RESERVE = 0.9
DEFAULT_LATENCY_MS = 300.0  # what the client assumes before it has measured a call
DAY_SECONDS = 24 * 3600

# setting -> (command-line option, environment variable): every message names both.
SETTINGS: dict[str, tuple[str, str]] = {
    "edition": ("--edition", "ZOHO_EDITION"),
    "users": ("--users", "ZOHO_USERS"),
    "addon_credits": ("--addon-credits", "ZOHO_ADDON_CREDITS"),
    "reserve": ("--reserve", "ZOHO_PLAN_RESERVE"),
    "latency_ms": ("--latency-ms", "ZOHO_LATENCY_MS"),
    "concurrency": ("--concurrency", "ZOHO_MAX_CONCURRENCY"),
    "scope": ("--scope", "DENTRIX_ZOHO_SCOPE"),
    "on_budget_exhausted": ("--on-budget-exhausted", "ZOHO_ON_BUDGET_EXHAUSTED"),
    "write_path": ("--write-path", "ZOHO_WRITE_PATH"),
}


def setting_name(key: str) -> str:
    option, env = SETTINGS.get(key, (key, key))
    return f"{option} / {env}"


class EstimateInputError(ValueError):
    """A bad input; the message names the setting (option and environment variable)."""


class EstimateInputs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    edition: limits.Edition = "enterprise"
    users: int = Field(default=1, ge=1, le=MAX_USERS)
    addon_credits: int = Field(default=0, ge=0, le=1_000_000_000)
    reserve: float = Field(default=0.20, ge=0.0, le=MAX_RESERVE)
    latency_ms: float = Field(default=DEFAULT_LATENCY_MS, gt=0, le=120_000)
    concurrency: int | None = Field(default=None, ge=1)
    scope: Literal["sample", "full"] = "full"
    on_budget_exhausted: Literal["pause", "stop"] = "stop"
    write_path: Literal["auto", "records", "bulk"] = "auto"
    schema_ready: bool = True  # custom fields already created (their calls are spent or not needed)

    @field_validator("edition", mode="before")
    @classmethod
    def _edition(cls, value: object) -> object:
        return limits.normalise_edition(value) if isinstance(value, str) else value

    @classmethod
    def build(cls, **values: Any) -> EstimateInputs:
        """Validated inputs, or ``EstimateInputError`` naming each setting at fault."""
        try:
            return cls(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else ""
                message = str(err["msg"]).removeprefix("Value error, ")
                if key == "users":
                    message += f" (a Zoho org has 1 to {MAX_USERS:,} users)"
                if key == "reserve":
                    message += f" (a share of the day's credits, 0 to {MAX_RESERVE})"
                problems.append(f"{setting_name(key)}: {message}")
            raise EstimateInputError("invalid estimate input: " + "; ".join(problems)) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> EstimateInputs:
        """Inputs from the environment (``SETTINGS``); ``overrides`` that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for key, (_, var) in SETTINGS.items():
            raw = (env.get(var) or "").strip()
            if raw:
                values[key] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.build(**values)

    # -- what the plan allows -------------------------------------------------------------------
    @property
    def api_access(self) -> bool:
        return limits.API_ACCESS[self.edition]

    @property
    def edition_concurrency(self) -> int:
        return limits.edition_concurrency(self.edition)

    @property
    def usable_concurrency(self) -> int:
        return min(self.concurrency or self.edition_concurrency, self.edition_concurrency)

    @property
    def heavy_concurrency(self) -> int:
        return min(self.usable_concurrency, limits.HEAVY_CALL_CAP)

    @property
    def daily_credits(self) -> int | None:
        return limits.daily_credits(self.edition, self.users, self.addon_credits)

    @property
    def usable_credits_per_day(self) -> int | None:
        daily = self.daily_credits
        return None if daily is None else int(round(daily * (1 - self.reserve), 6))

    @property
    def latency_s(self) -> float:
        return self.latency_ms / 1000


@dataclass
class PhaseCost:
    """Calls of one kind in one step (or for the whole run when ``step`` is None)."""

    phase: str
    module: str | None
    step: str | None
    calls: int
    credits: int
    heavy: bool = False  # under the cap of 10 concurrent heavy calls
    parallel: bool = False  # the loader keeps several in flight
    seconds: float = 0.0


@dataclass
class ModulePlan:
    """One Zoho module: what goes, what each path would cost for its writes, and what was chosen."""

    module: str
    records: int = 0
    held_back: int = 0
    records_calls: int = 0  # writes by the record API alone
    records_credits: int = 0
    bulk_calls: int | None = None  # writes with Bulk Write for the rows it can carry (None: not supported)
    bulk_credits: int | None = None
    path: str = "records"  # records | bulk | mixed | none
    reasons: list[str] = field(default_factory=list)
    calls: int = 0  # every phase of the module
    credits: int = 0

    @property
    def cheapest_write_credits(self) -> int:
        options = [self.records_credits] + ([self.bulk_credits] if self.bulk_credits is not None else [])
        return min(options)


Verdict = Literal["fits", "needs_days", "cannot_run"]


@dataclass
class MigrationEstimate:
    inputs: EstimateInputs
    office_id: str
    phases: list[PhaseCost]
    modules: list[ModulePlan]
    verdict: Verdict
    verdict_text: str
    days: int
    refused_by_policy: bool  # several days needed, and ZOHO_ON_BUDGET_EXHAUSTED=stop would stop the run
    cheapest_credits: int  # the same migration with each module's writes on its cheaper path
    notes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.phases)

    @property
    def credits(self) -> int:
        return sum(p.credits for p in self.phases)

    @property
    def wall_seconds(self) -> float:
        return sum(p.seconds for p in self.phases)

    @property
    def records(self) -> int:
        return sum(m.records for m in self.modules)

    def by_phase(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for p in self.phases:
            row = out.setdefault(p.phase, {"calls": 0, "credits": 0, "seconds": 0.0})
            row["calls"] += p.calls
            row["credits"] += p.credits
            row["seconds"] += p.seconds
        return out

    def by_step(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for p in self.phases:
            if p.step is None:
                continue
            row = out.setdefault(p.step, {"calls": 0, "credits": 0})
            row["calls"] += p.calls
            row["credits"] += p.credits
        return out

    @property
    def exit_code(self) -> int:
        """0 fits in one day; 3 needs several days and will pause; 2 cannot run (or refused under stop)."""
        if self.verdict == "fits":
            return 0
        if self.verdict == "needs_days" and not self.refused_by_policy:
            return 3
        return 2


# -- phases ------------------------------------------------------------------------------------


# Phases whose credits are the writes themselves: where the record API and Bulk Write are the alternatives.
WRITE_PHASES = ("record writes", "Bulk Write", "uploads", "file replacement")


def _seconds(calls: int, inputs: EstimateInputs, *, heavy: bool, parallel: bool) -> float:
    if calls <= 0:
        return 0.0
    width = (inputs.heavy_concurrency if heavy else inputs.usable_concurrency) if parallel else 1
    return math.ceil(calls / width) * inputs.latency_s


def _phase(phase: str, module: str | None, step: str | None, calls: int, credits: int, inputs: EstimateInputs,
           *, heavy: bool, parallel: bool, seconds: float | None = None) -> PhaseCost:
    return PhaseCost(phase, module, step, calls, credits, heavy, parallel,
                     _seconds(calls, inputs, heavy=heavy, parallel=parallel) if seconds is None else seconds)


def _pages(n: int, per_page: int = limits.RECORDS_PER_PAGE) -> int:
    """A listing costs at least one call, even when Zoho answers 204 (nothing there)."""
    return max(1, math.ceil(n / per_page))


def _write_choice(module: str, carriable: int, inputs: EstimateInputs) -> WritePathChoice:
    return choose_write_path(
        module, carriable,
        concurrency=inputs.usable_concurrency,
        latency_s=inputs.latency_s,
        remaining_credits=inputs.usable_credits_per_day,
        poll_interval_s=float(ZohoConfig.model_fields["bulk_poll_max"].default),
    )


def _bulk_job_calls(carriable: int, bulk_credits: int) -> int:
    jobs = limits.bulk_jobs(carriable)
    return bulk_credits - jobs * (limits.CREDITS_BULK_WRITE - limits.CREDITS_DEFAULT)


def _schema_phase(inputs: EstimateInputs) -> list[PhaseCost]:
    if inputs.schema_ready:
        return []
    from dentrix_zoho.load.schema_setup import _wanted  # the fields set-up creates, per module
    from dentrix_zoho.mapping import load_spec, picklist_additions

    spec = load_spec()
    calls = 0
    for bodies in _wanted(spec).values():
        # read the module's fields, create 5 a call, read them back
        calls += 2 + math.ceil(len(bodies) / limits.FIELDS_PER_CREATE_CALL)
    # per standard picklist that lacks values: read, update, read back (a fresh org lacks them all)
    calls += 3 * sum(len(by_field) for by_field in picklist_additions(spec).values())
    return [_phase("schema set-up", None, None, calls, calls * limits.CREDITS_DEFAULT, inputs,
                   heavy=False, parallel=False)]


@lru_cache(maxsize=1)
def _spec_field_modules() -> tuple[frozenset[str], frozenset[str]]:
    """From the mapping spec (the estimate sees no field metadata): the modules whose field types schema
    set-up hands off (those it creates custom fields on), and of those the modules whose pre-images the
    loader reads one GET by id a record (``zoho_reads.pre_image_fields``: a field only GET by id
    returns, such as the Contacts' insurance subform)."""
    from dentrix_zoho.mapping import load_spec

    fields = load_spec().custom_fields
    whole = frozenset(m for m, fs in fields.items() if any(f.type in limits.BY_ID_ONLY_TYPES for f in fs))
    return frozenset(fields), whole


def _pre_image_phases(c: StepCounts, inputs: EstimateInputs) -> list[PhaseCost]:
    """Before a re-run (the cutover delta) updates records an earlier run of ours created, it reads their
    pre-images for its own rollback (``upserts.save_later_run_pre_images``): multi-id GETs, one field
    group assumed (a module with more fields than one GET carries takes one call more per group), or one
    GET by id each in a module read whole; the field metadata once per client (one client per load step)
    where set-up hands off none (Notes)."""
    if not c.updates:
        return []
    handed, whole = _spec_field_modules()
    reads = pre_image_read_calls(c.updates, None if c.module in whole else limits.FIELDS_PER_GET)
    out = [_phase("pre-images", c.module, c.step, reads, reads * limits.CREDITS_DEFAULT, inputs,
                  heavy=False, parallel=True)]
    if c.module not in handed:
        out.append(_phase("pre-images", c.module, c.step, 1, limits.CREDITS_DEFAULT, inputs,
                          heavy=False, parallel=False))
    return out


def _upsert_phases(c: StepCounts, inputs: EstimateInputs, plan: ModulePlan, scanned: set[str],
                   in_office: dict[str, int], org_read: list[bool]) -> list[PhaseCost]:
    out: list[PhaseCost] = []
    m, s = c.module, c.step
    # The pre-scan as the loader chooses it (zoho_reads.pre_scan_path); an office read serves every later
    # step of the module in the run. It reads what Zoho holds of the office now: what the ledger knows.
    if c.lacking and m not in scanned:
        office = in_office.get(m, 0)
        if pre_scan_path(c.lacking, lambda: office) == "lookup":
            out.append(_phase("pre-scan", m, s, lookup_calls(c.lacking), lookup_credits(c.lacking), inputs,
                              heavy=True, parallel=False))
        else:
            scanned.add(m)
            out.append(_phase("pre-scan", m, s, office_scan_calls(office), office_scan_credits(office), inputs,
                              heavy=True, parallel=False))
    if not c.to_send:
        return out
    if c.stamped_updates:  # Modified_Time/By by multi-id GETs (zoho_reads.current_stamps), once who we are
        reads = minimum_calls(c.stamped_updates, len(STAMP_FIELDS))
        out.append(_phase("human-edit check", m, s, reads, reads * limits.CREDITS_DEFAULT, inputs,
                          heavy=False, parallel=True))
        out.append(_phase("human-edit check", m, s, 1, limits.CREDITS_DEFAULT, inputs, heavy=False, parallel=False))
    # No field metadata read: Bulk Write's row test, the subform names and the pre-images take the field
    # types from schema set-up's hand-off (a hand-off written before it kept them reads them once per
    # step: not counted).
    out += _pre_image_phases(c, inputs)
    if c.subform_updates:
        out.append(_phase("subform emptying", m, s, limits.write_calls(c.subform_updates),
                          limits.write_credits(c.subform_updates), inputs, heavy=True, parallel=False))
    rec_calls = rec_credits = 0
    alt_rec_calls = alt_rec_credits = 0
    alt_bulk_calls = alt_bulk_credits = 0
    bulk_calls = bulk_credits = 0
    bulk_seconds = 0.0
    supported = m not in limits.BULK_WRITE_UNSUPPORTED_MODULES
    for wave, carriable in zip(c.waves, c.bulk_carriable, strict=True):
        alt_rec_calls += limits.write_calls(wave)
        alt_rec_credits += limits.write_credits(wave)
        choice = _write_choice(m, carriable, inputs) if supported and carriable else None
        if choice is not None and choice.bulk_credits is not None:
            jobs_calls = _bulk_job_calls(carriable, choice.bulk_credits)
            alt_bulk_calls += jobs_calls + limits.write_calls(wave - carriable)
            alt_bulk_credits += choice.bulk_credits + limits.write_credits(wave - carriable)
            plan.reasons.append(choice.reason)
        else:
            alt_bulk_calls += limits.write_calls(wave)
            alt_bulk_credits += limits.write_credits(wave)
        use_bulk = choice is not None and inputs.write_path != "records" and (
            inputs.write_path == "bulk" or choice.path == "bulk")
        if use_bulk:
            assert choice is not None and choice.bulk_credits is not None and choice.bulk_seconds is not None
            bulk_calls += _bulk_job_calls(carriable, choice.bulk_credits)
            bulk_credits += choice.bulk_credits
            bulk_seconds += choice.bulk_seconds
            rest = wave - carriable
        else:
            rest = wave
        rec_calls += limits.write_calls(rest)
        rec_credits += limits.write_credits(rest)
    plan.records_calls += alt_rec_calls
    plan.records_credits += alt_rec_credits
    if supported:
        plan.bulk_calls = (plan.bulk_calls or 0) + alt_bulk_calls
        plan.bulk_credits = (plan.bulk_credits or 0) + alt_bulk_credits
    else:
        plan.reasons.append(f"Bulk Write does not support {m}")
    if bulk_calls:
        if not org_read[0]:  # the org's id for the upload header, once per client
            org_read[0] = True
            bulk_calls += 1
            bulk_credits += limits.CREDITS_DEFAULT
        out.append(_phase("Bulk Write", m, s, bulk_calls, bulk_credits, inputs, heavy=False, parallel=False,
                          seconds=bulk_seconds))
    if rec_calls:
        out.append(_phase("record writes", m, s, rec_calls, rec_credits, inputs, heavy=True, parallel=True))
    if supported and not any(c.bulk_carriable):
        plan.reasons.append(f"{s}: no row a flat Bulk Write CSV can carry (subform rows, date-times, "
                            "multi-module lookups, empty values): record API")
    return out


def _child_phases(c: StepCounts, inputs: EstimateInputs, plan: ModulePlan) -> list[PhaseCost]:
    m, s = c.module, c.step
    out: list[PhaseCost] = []
    if c.kind == "notes":
        if c.creates:
            out.append(_phase("record writes", m, s, limits.write_calls(c.creates), limits.write_credits(c.creates),
                              inputs, heavy=True, parallel=True))
        out += _pre_image_phases(c, inputs)
        if c.updates:  # changed notes are updated in place, one call at a time
            out.append(_phase("record writes", m, s, limits.write_calls(c.updates), limits.write_credits(c.updates),
                              inputs, heavy=True, parallel=False))
        plan.records_calls += limits.write_calls(c.creates) + limits.write_calls(c.updates)
        plan.records_credits += limits.write_credits(c.creates) + limits.write_credits(c.updates)
    else:
        if c.creates:  # one upload a file
            out.append(_phase("uploads", m, s, c.creates, c.creates * limits.CREDITS_DEFAULT, inputs,
                              heavy=False, parallel=True))
        if c.updates:  # a changed file: delete the old one, upload the new (Zoho cannot update a file)
            out.append(_phase("file replacement", m, s, 2 * c.updates, 2 * c.updates * limits.CREDITS_DEFAULT,
                              inputs, heavy=False, parallel=False))
        plan.records_calls += c.creates + 2 * c.updates
        plan.records_credits += (c.creates + 2 * c.updates) * limits.CREDITS_DEFAULT
    if c.to_send and not any(r.startswith("Bulk Write does not support") for r in plan.reasons):
        plan.reasons.append(f"Bulk Write does not support {m}")
    return out


# What reconciliation reads by id (load.reconcile): Events/Tasks/Calls for their parent lookup, Notes
# for theirs, Contacts for the balance; Source_System_ID under whatever API name Zoho gave it.
PARENT_CHECK_FIELDS = read_names(["Source_System_ID", "Who_Id", "What_Id"])
NOTE_CHECK_FIELDS = read_names(["Parent_Id"])
BALANCE_CHECK_FIELDS = read_names(["Source_System_ID", "Balance_Due"])
ACTIVITY_MODULES = ("Events", "Tasks", "Calls")


def _reconciliation_phases(counts: MigrationCounts, inputs: EstimateInputs) -> list[PhaseCost]:
    """The reads of ``load.reconcile`` once the run has written what it sends (``counts.office_after``)."""
    phase = "reconciliation"
    out: list[PhaseCost] = []
    # zoho_counts: one COQL COUNT per keyed module (one row back, the lowest COQL tier), several at a time:
    # their wall time is that of the rounds they take together, shared among them.
    rounds = _seconds(len(KEYED_MODULES), inputs, heavy=True, parallel=True)
    for module in KEYED_MODULES:
        out.append(_phase(phase, module, None, 1, limits.coql_credits(1), inputs, heavy=True, parallel=True,
                          seconds=rounds / len(KEYED_MODULES)))
    # Notes as reconciliation chooses (zoho_reads.choose_notes_read): the org's notes a page at a time, or
    # one listing per parent of ours with notes; then each parent's attachments.
    notes = choose_notes_read(counts.zoho_after("Notes"), counts.note_children)
    if notes.calls:
        out.append(_phase(phase, "Notes", None, notes.calls, notes.calls * limits.CREDITS_DEFAULT, inputs,
                          heavy=False, parallel=notes.path == "per_parent"))
    listings = sum(listing_calls(n) for n in counts.attachment_children)
    if listings:
        out.append(_phase(phase, "Attachments", None, listings, listings * limits.CREDITS_DEFAULT, inputs,
                          heavy=False, parallel=True))
    # parents_resolve and balances: the office's records by multi-id GET.
    reads = [(m, counts.office_after(m), PARENT_CHECK_FIELDS) for m in ACTIVITY_MODULES]
    reads.append(("Notes", counts.office_after("Notes"), NOTE_CHECK_FIELDS))
    if counts.balances_staged:
        reads.append(("Contacts", counts.office_after("Contacts"), BALANCE_CHECK_FIELDS))
    for module, records, names in reads:
        calls = minimum_calls(records, len(names))
        if calls:
            out.append(_phase(phase, module, None, calls, calls * limits.CREDITS_DEFAULT, inputs, heavy=False,
                              parallel=True))
    return out


def _diff_report_phases(counts: MigrationCounts, inputs: EstimateInputs) -> list[PhaseCost]:
    """The diff report's read-back (``load.diff_report``), counted by ``counts.diff_reads``: each module's
    field metadata, multi-id GETs, reads by id of records with subform rows, one listing per parent."""
    phase = "diff report read-back"
    out: list[PhaseCost] = []
    for module in dict.fromkeys(LOAD_STEPS[n].module for n in LOAD_ORDER if LOAD_STEPS[n].kind != "attachments"):
        out.append(_phase(phase, module, None, 1, limits.CREDITS_DEFAULT, inputs, heavy=False, parallel=True))
    for module, kinds in counts.diff_reads.by_module.items():
        calls = sum(kinds.get(k, 0) for k in ("list_calls", "subform_reads", "long_text_reads"))
        if calls:
            out.append(_phase(phase, module, None, calls, calls * limits.CREDITS_DEFAULT, inputs, heavy=False,
                              parallel=True))
    listings = sum(listing_calls(n) for n in counts.diff_attachment_children)
    if listings:
        out.append(_phase(phase, "Attachments", None, listings, listings * limits.CREDITS_DEFAULT, inputs,
                          heavy=False, parallel=True))
    return out


def estimate_phases(counts: MigrationCounts, inputs: EstimateInputs, *, load_only: bool = False
                    ) -> tuple[list[PhaseCost], dict[str, ModulePlan]]:
    """Every phase's calls and credits; ``load_only``: the load steps alone (the loader's own check)."""
    phases: list[PhaseCost] = []
    modules: dict[str, ModulePlan] = {}
    if not load_only:
        phases += _schema_phase(inputs)
        pages = _pages(inputs.users, limits.USERS_PER_PAGE)
        phases.append(_phase("owner resolution", "Users", None, pages, pages * limits.CREDITS_DEFAULT, inputs,
                             heavy=False, parallel=False))
    scanned: set[str] = set()
    org_read = [False]
    in_office = dict(counts.in_office)
    for c in counts.steps:
        plan = modules.setdefault(c.module, ModulePlan(c.module, path="none"))
        plan.records += c.to_send
        plan.held_back += c.held_back
        if c.kind == "upsert":
            phases += _upsert_phases(c, inputs, plan, scanned, in_office, org_read)
            in_office[c.module] = in_office.get(c.module, 0) + c.creates
        else:
            phases += _child_phases(c, inputs, plan)
    if not load_only:
        phases += _reconciliation_phases(counts, inputs)
        if inputs.scope == "sample":
            phases += _diff_report_phases(counts, inputs)
    for p in phases:
        if p.module in modules:
            modules[p.module].calls += p.calls
            modules[p.module].credits += p.credits
    for module, plan in modules.items():
        kinds = {p.phase for p in phases if p.module == module}
        bulk, records = "Bulk Write" in kinds, bool(kinds & set(WRITE_PHASES) - {"Bulk Write"})
        plan.path = "mixed" if bulk and records else "bulk" if bulk else "records" if records else "none"
    return phases, modules


# -- the verdict -------------------------------------------------------------------------------


def _credit_settings() -> str:
    return (f"raise the credits ({setting_name('users')}, {setting_name('addon_credits')}, or a higher "
            f"{setting_name('edition')}) or lower {setting_name('reserve')}")


def _verdict(inputs: EstimateInputs, credits: int, wall_s: float) -> tuple[Verdict, str, int, bool]:
    if not inputs.api_access:
        return ("cannot_run", f"cannot run: the {inputs.edition} edition has no API access "
                f"({setting_name('edition')})", 0, False)
    usable = inputs.usable_credits_per_day
    credit_days = 1 if usable is None or credits <= usable else math.ceil(credits / usable)
    wall_days = max(1, math.ceil(wall_s / DAY_SECONDS))
    if credit_days > MAX_DAYS:
        return ("cannot_run", f"cannot run: needs {credits:,} credits, {credit_days} days at {usable:,} usable "
                f"credits a day, more than {MAX_DAYS} days: {_credit_settings()}", credit_days, False)
    if credit_days == 1:
        if wall_days == 1:
            return "fits", "fits in one day", 1, False
        return ("fits", f"fits in one day's credits; about {wall_days} days of wall time at "
                f"{inputs.latency_ms:.0f} ms a call", wall_days, False)
    assert usable is not None
    text = (f"needs {credit_days} days: run with pause (ZOHO_ON_BUDGET_EXHAUSTED=pause), {credits:,} credits "
            f"at up to {usable:,} a day")
    refused = inputs.on_budget_exhausted == "stop"
    if refused:
        text += (f"; refused as configured: {setting_name('on_budget_exhausted')} is stop, which would stop the "
                 "run when the first day's credits are gone: set it to pause")
    return "needs_days", text, max(credit_days, wall_days), refused


def _notes(inputs: EstimateInputs, counts: MigrationCounts) -> list[str]:
    client = ZohoConfig.model_fields
    max_wait_h = float(client["max_credit_wait_seconds"].default) / 3600
    daily = inputs.daily_credits
    notes = [
        "Credits per rolling 24 h, per-call credits, editions, API access and concurrency: Zoho's API limits "
        "page (zoho.com/crm/help/api/api-limits.html); Zoho has published other figures before, so confirm "
        "the org's own limit in Setup > Developer Space > APIs.",
        "Bulk Write: 500 credits and at most 25,000 records a job; not for Notes, Attachments, Events or Calls "
        "(Zoho's Bulk Write limitations page). Its processing time is the planner's assumption; Zoho "
        "publishes none.",
        f"Latency {inputs.latency_ms:.0f} ms a call is an input, not a measurement; concurrency "
        f"{inputs.usable_concurrency} ({inputs.edition}), at most {limits.HEAVY_CALL_CAP} for heavy calls.",
        "Counts are what the loader would send now: rows unchanged since the last load are not sent; a "
        "required parent not loaded, or a missing or over-limit file, is held back (quarantined at load).",
        "Not predictable here, so not counted: retries, records Zoho rejects and the calls that isolate them, "
        "pre-images of records that existed in Zoho before us (each read by id; a re-run's updates are counted "
        "as records an earlier run of ours created, whose pre-images go 100 a call, Contacts one by one for "
        "their subform), records of this office in Zoho that the ledger "
        "does not know (the pre-scan's office read pages through them), notes in the org that are not ours "
        "(when reconciliation lists the org's notes it pages through them), a second count when Zoho's count "
        "lags fresh writes, reads by id where Zoho refuses a list (403), and rich text longer than a list shows "
        "(known only from Zoho's field metadata).",
        "Read-back as the code reads: multi-id GETs of at most "
        f"{limits.IDS_PER_GET} ids and {limits.FIELDS_PER_GET} fields, a read by id for each record with subform "
        "rows, one attachment listing per parent, a COQL COUNT per keyed module.",
        f"Reserve {inputs.reserve:.0%}: the run itself keeps it only with ZOHO_CREDIT_RESERVE="
        f"{0 if daily is None else int(daily * inputs.reserve)} (the client's reserve, in credits).",
        f"Under pause the client waits at most {max_wait_h:.0f} h in all for credits; a longer migration stops "
        "then, and running the job again resumes it from the ledger.",
    ]
    if counts.scope == "sample":
        notes.append("Scope sample: the stratified sample and its children only.")
    return notes


def estimate_migration(counts: MigrationCounts, inputs: EstimateInputs) -> MigrationEstimate:
    phases, modules = estimate_phases(counts, inputs)
    credits = sum(p.credits for p in phases)
    wall = sum(p.seconds for p in phases)
    verdict, text, days, refused = _verdict(inputs, credits, wall)
    chosen_writes = sum(p.credits for p in phases if p.phase in WRITE_PHASES)
    cheapest = credits - chosen_writes + sum(m.cheapest_write_credits for m in modules.values())
    return MigrationEstimate(inputs, counts.office_id, phases, list(modules.values()), verdict, text, days, refused,
                             cheapest, _notes(inputs, counts))
