"""Bulk Write for keyed modules: where it costs fewer credits, a step's rows go in Bulk Write jobs.

Called by ``upserts.load_upsert_step`` with the rows it is about to send by the record API (links
resolved, subforms handled). What it decides and does:

* **Which path.** ``LoadOptions.write_path``: ``records`` never uses Bulk Write; ``bulk`` uses it for
  every row it can carry; ``auto`` (the default) asks the planner (``ZohoClient.choose_write_path``)
  for the number of rows Bulk Write would carry this run. The decision and its numbers go in the
  ledger (audit operation ``write_path``, code ``<path>.r<record API credits>.b<Bulk Write credits>``)
  and in ``ModuleLoadResult`` (``write_path``, ``planned_*_credits``, ``bulk_rows``, ``bulk_jobs``),
  which the Dagster load step publishes as metadata. A job costs 500 credits, so on its own numbers
  Bulk Write pays only beyond about 5,000 rows in a step: the demo practices stay on the record API.
* **Which rows.** Bulk Write does not take Notes, Attachments, Events or Calls. Of the others, a row
  goes by the record API when its payload holds what one flat CSV with ``ignore_empty`` cannot say
  the same way: subform rows (Bulk Write wants child CSVs; the record API's ``[]`` that empties old
  rows has no CSV form either), an explicit empty value (``None``/``[]``: the record API clears the
  field, an empty cell is ignored), a multi-module lookup (``What_Id`` with ``$se_module``), or a
  datetime (Bulk Write reads ``MM/dd/yyyy HH:mm:ss`` in the user's time zone, our values carry an
  offset). Lookups and the owner go as ``Field.id`` columns; dates as ``MM/dd/yyyy``; booleans
  ``true``/``false``. So the Zoho state a Bulk Write load leaves equals the record API's.
* **One job.** At most 25,000 rows, 25 MB and 200 columns per CSV (``zoho.bulk.build_files``); the
  ``Source_System_ID`` column goes first, so the result file (which repeats the first three columns)
  names each row's source id: results are matched by it, not by position. Order of the ledger
  writes: upload, send intents for the rows (``send_intent``), create the job (``upsert`` with
  ``find_by`` = ``Source_System_ID``), at once an audit row ``bulk_job`` holding the job id (code =
  the step name), then poll (bounded by ``LoadOptions.bulk_timeout_s``), download, apply the result
  exactly as the record API's outcomes (``batch_outcomes.apply_outcomes``: crosswalk write, created = the
  record did not exist before this run, per-row errors into the quarantine as ``zoho_rejected
  <CODE>`` with the column in the quarantine row's ``field``, ``unprocessed`` or a missing row =
  uncertain, sent again next run), and last an audit row ``bulk_job_done`` (code = the job's status).
* **A job that fails or never finishes.** Its rows go by the record API in the same step (keyed on
  ``Source_System_ID``: what the job wrote before it stopped is updated, not duplicated, and counted
  created since it was not in Zoho before this run). The job is settled (``bulk_job_done`` FAILED or
  TIMEOUT) and never looked at again.
* **Resume.** Before a step selects its rows, every ``bulk_job`` of this step without a
  ``bulk_job_done`` (a run killed while it ran) is polled; a completed job's added/updated rows go
  into the crosswalk (created = ``added``, under the run that created the job, so ``rollback --run``
  of that run removes them) with no row hash, like an adopted record, so this run sends
  them once more as a keyed update (content known to be ours from then on) and rollback sees them.
  A failed, unknown or still unfinished job is settled; the pre-scan adopts what it wrote.

Known limit: a kill in the moment between Zoho's answer to "create job" and the ``bulk_job`` row
leaves a job we cannot name (Zoho lists no jobs). Its rows are safe all the same: the pre-scan
adopts what it wrote before the resume, and what it writes after is an update of a record the
resume created by upsert; nothing is written twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from dentrix_zoho.ledger import AuditEntry, CrosswalkWrite
from dentrix_zoho.ledger import schema as ledger_schema
from dentrix_zoho.load.batch_outcomes import ADOPT_OPERATION, Prepared, apply_outcomes, commit
from dentrix_zoho.load.context import LoadContext, LoadStep, ModuleLoadResult
from dentrix_zoho.load.ledger_io import BatchRecord, LedgerWriter, audit_code
from dentrix_zoho.load.links import ParentIndex
from dentrix_zoho.load.shaped import ShapedRow
from dentrix_zoho.zoho import RecordOutcome, ZohoError, bulk, limits

log = logging.getLogger(__name__)

DECISION_OPERATION = "write_path"
JOB_OPERATION = "bulk_job"  # the job exists in Zoho: zoho_id = job id, code = step name
SETTLED_OPERATION = "bulk_job_done"  # its outcome is in the ledger: code = COMPLETED / FAILED / TIMEOUT / ...
TIMEOUT_CODE = "BULK_TIMEOUT"
REFUSED_OPERATION = "bulk_refused"  # Zoho would not take a job (no permission or scope): code = Zoho's code
# Zoho's answers to a user who may not use Bulk Write: the profile lacks the permission (403), or the
# token lacks the bulk scope (401 OAUTH_SCOPE_MISMATCH). Either holds for the rest of the run.
_REFUSALS = {403: None, 401: "OAUTH_SCOPE_MISMATCH"}

Created = Callable[[Prepared, RecordOutcome], bool]


def supports(module: str) -> bool:
    return module not in limits.BULK_WRITE_UNSUPPORTED_MODULES


# -- which rows --------------------------------------------------------------------------------------


def _types(ctx: LoadContext, module: str) -> dict[str, str]:
    # Set-up handed the types over; a load step's client has nothing cached, so reading them again
    # would cost a metadata call per step. Only a hand-off from before it kept them is read from Zoho.
    handed = ctx.schema.field_types.get(module)
    if handed is not None:
        return dict(handed)
    return {str(f.get("api_name")): str(f.get("data_type")) for f in ctx.client.fields(module)}


def _bulk_date(value: Any) -> str | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]).strftime("%m/%d/%Y") if len(str(value)) == 10 else None
    except ValueError:
        return None


def csv_record(payload: Mapping[str, Any], sid_field: str, types: Mapping[str, str]) -> dict[str, Any] | None:
    """The payload as one Bulk Write CSV row (``Source_System_ID`` first), or None when only the record
    API can say it the same way (see the module docstring)."""
    out: dict[str, Any] = {sid_field: payload.get(sid_field)}
    for key, value in payload.items():
        if key == sid_field:
            continue
        kind = types.get(key)
        if key.startswith("$") or kind is None or kind == "subform" or value is None or value == []:
            return None
        if isinstance(value, Mapping):
            if set(value) != {"id"}:
                return None
        elif isinstance(value, (list, tuple)):
            if not all(isinstance(v, str) for v in value):
                return None
        elif kind == "datetime":
            return None
        elif kind == "date":
            value = _bulk_date(value)
            if value is None:
                return None
        out[key] = value
    return out


# -- the ledger's view of jobs ---------------------------------------------------------------------


def _job_row(ctx: LoadContext, step: LoadStep, job_id: str) -> AuditEntry:
    return AuditEntry(ctx.run_id, JOB_OPERATION, step.module, "uncertain", zoho_id=job_id, code=audit_code(step.name),
                      credits=limits.CREDITS_BULK_WRITE)


def _settle(ctx: LoadContext, step: LoadStep, job_id: str, status: str) -> None:
    ctx.ledger.append_audit(AuditEntry(ctx.run_id, SETTLED_OPERATION, step.module,
                                       "ok" if status == "COMPLETED" else "error", zoho_id=job_id,
                                       code=audit_code(status.replace(" ", "_"))))


def _refused(exc: ZohoError) -> bool:
    return exc.status in _REFUSALS and _REFUSALS[exc.status] in (None, exc.code)


def refused_this_run(ctx: LoadContext) -> str | None:
    """Zoho's code if it refused a Bulk Write job earlier in this run (an earlier step may be another process)."""
    a = ledger_schema.audit_log.c
    with ctx.ledger.engine.connect() as conn:
        row = conn.execute(select(a.code).where(a.run_id == ctx.run_id, a.operation == REFUSED_OPERATION)
                           .limit(1)).first()
    return None if row is None else str(row[0] or "REFUSED")


def unsettled_jobs(ctx: LoadContext, step: LoadStep) -> dict[str, str]:
    """Job id -> the run that created it, for this step's jobs whose outcome no run recorded, oldest first."""
    a = ledger_schema.audit_log.c
    with ctx.ledger.engine.connect() as conn:
        created = {r[0]: r[1] for r in conn.execute(
            select(a.zoho_id, a.run_id).where(a.operation == JOB_OPERATION, a.module == step.module,
                                              a.code == audit_code(step.name)).order_by(a.seq)) if r[0]}
        if not created:
            return {}
        settled = {r[0] for r in conn.execute(
            select(a.zoho_id).where(a.operation == SETTLED_OPERATION, a.zoho_id.in_(list(created))))}
    return {j: run for j, run in created.items() if j not in settled}


def _decide(ctx: LoadContext, step: LoadStep, n_rows: int, result: ModuleLoadResult) -> bool:
    choice = ctx.client.choose_write_path(step.module, n_rows)
    path = "bulk" if ctx.options.write_path == "bulk" else choice.path
    bulk_credits = choice.bulk_credits if choice.bulk_credits is not None else 0
    result.planned_records_credits += choice.records_credits
    result.planned_bulk_credits += bulk_credits
    ctx.ledger.append_audit(AuditEntry(
        ctx.run_id, DECISION_OPERATION, step.module, "ok",
        code=audit_code(f"{path}.r{choice.records_credits}.b{bulk_credits}"),
    ))
    forced = " (forced by write_path=bulk)" if path != choice.path else ""
    log.info("load %s: %d rows Bulk Write could carry go via %s%s: %s", step.name, n_rows, path, forced,
             choice.reason)
    return path == "bulk"


# -- sending ----------------------------------------------------------------------------------------


def send(ctx: LoadContext, step: LoadStep, ready: list[Prepared], result: ModuleLoadResult,
         writer: LedgerWriter, parents: ParentIndex, created_if: Created) -> list[Prepared]:
    """Send what Bulk Write should carry in jobs; returns the rows still to go by the record API."""
    if ctx.options.write_path == "records" or not supports(step.module) or not ready or ctx.options.dry_run:
        return ready
    sid_field = ctx.source_id_field(step.module)
    types = _types(ctx, step.module)
    carried: list[tuple[Prepared, dict[str, Any]]] = []
    rest: list[Prepared] = []
    for item in ready:
        record = csv_record(item.payload, sid_field, types)
        if record is None:
            rest.append(item)
        else:
            carried.append((item, record))
    if not carried:
        return ready
    columns = {k for _, record in carried for k in record}
    if len(columns) > limits.BULK_WRITE_MAX_COLUMNS:
        log.info("load %s: %d columns, more than Bulk Write takes; record API", step.name, len(columns))
        return ready
    if not _decide(ctx, step, len(carried), result):
        return ready
    if (code := refused_this_run(ctx)) is not None:
        log.warning("load %s: Zoho refused Bulk Write earlier in this run (%s); record API", step.name, code)
        return ready
    result.write_path = "bulk"
    fallback: list[Prepared] = []  # rows of jobs that failed or did not finish (counted sent once already)
    unsent: list[Prepared] = []  # rows of jobs Zoho refused to create (never sent)
    refused = False
    for start in range(0, len(carried), limits.BULK_WRITE_MAX_RECORDS):
        chunk = carried[start : start + limits.BULK_WRITE_MAX_RECORDS]
        for file in bulk.build_files(step.module, [record for _, record in chunk]):
            items = [chunk[i][0] for i in file.indices]
            if refused:
                unsent += items
                continue
            try:
                done = _run_job(ctx, step, file, items, result, writer, parents, sid_field, created_if)
            except ZohoError as exc:
                if not _refused(exc):
                    raise
                # No job exists (Zoho refused to create it): its rows, and every later job's, go by the
                # record API; the refusal is in the ledger, so this run's later steps do not ask again.
                refused = True
                unsent += items
                ctx.ledger.append_audit(AuditEntry(ctx.run_id, REFUSED_OPERATION, step.module, "error",
                                                   code=audit_code(exc.code or str(exc.status))))
                log.warning("load %s: Zoho refused a Bulk Write job (%s %s): the profile or token may not use "
                            "Bulk Write; its rows go by the record API", step.name, exc.status, exc.code)
                continue
            if not done:
                fallback += items
    if fallback:
        result.bulk_fallback += len(fallback)
        result.sent -= len(fallback)  # counted again when the record API sends them
        log.warning("load %s: %d rows of failed or unfinished Bulk Write jobs go by the record API", step.name,
                    len(fallback))
    if unsent:
        result.bulk_fallback += len(unsent)
    return rest + fallback + unsent


def _run_job(ctx: LoadContext, step: LoadStep, file: bulk.BulkFile, items: list[Prepared],
             result: ModuleLoadResult, writer: LedgerWriter, parents: ParentIndex, sid_field: str,
             created_if: Created) -> bool:
    """One job, start to finish. False: it failed or did not finish, its rows are the caller's again."""
    client = ctx.client
    file_id = client.bulk_upload(step.module, file)
    writer.record_intent(step.module, [p.row.source_id for p in items])
    job_id = client.bulk_create_job(step.module, file_id, len(items), "upsert", sid_field)
    ctx.ledger.append_audit(_job_row(ctx, step, job_id))  # before the first poll: a resume finds the job
    result.bulk_jobs += 1
    result.bulk_rows += len(items)
    result.sent += len(items)
    status = _wait(ctx, step, job_id)
    if status is None:
        return False
    rows = client.bulk_result(step.module, job_id, status)
    outcomes = bulk.parse_result_by_key([p.row.source_id for p in items], rows, sid_field)
    record = apply_outcomes(ctx, step, writer, parents, result, items, outcomes, operation="upsert",
                            created_if=created_if)
    commit(ctx, writer, record, result, step)
    _settle(ctx, step, job_id, "COMPLETED")
    log.info("load %s: Bulk Write job of %d rows: %d errors", step.name, len(items),
             sum(not o.ok for o in outcomes))
    return True


def _wait(ctx: LoadContext, step: LoadStep, job_id: str) -> dict[str, Any] | None:
    """The finished job's status, or None (settled FAILED, TIMEOUT or NOT_FOUND) when it has no result."""
    try:
        status = ctx.client.bulk_wait(step.module, job_id, ctx.options.bulk_timeout_s)
    except ZohoError as exc:
        if exc.code == TIMEOUT_CODE:
            log.warning("load %s: Bulk Write job not finished in time; its rows go by the record API", step.name)
            _settle(ctx, step, job_id, "TIMEOUT")
            return None
        if exc.status == 404:
            _settle(ctx, step, job_id, "NOT_FOUND")
            return None
        raise
    state = bulk.job_status(status)
    if state != "COMPLETED":
        log.warning("load %s: Bulk Write job %s (%s)", step.name, state, bulk.job_failure_code(status))
        _settle(ctx, step, job_id, state or "FAILED")
        return None
    return status


# -- resume -----------------------------------------------------------------------------------------


def resume(ctx: LoadContext, step: LoadStep, rows: Sequence[ShapedRow], writer: LedgerWriter,
           parents: ParentIndex, result: ModuleLoadResult) -> int:
    """Record the results of this step's jobs that a killed run left unrecorded; returns rows taken in."""
    if ctx.options.dry_run or not supports(step.module):
        return 0
    jobs = unsettled_jobs(ctx, step)
    if not jobs:
        return 0
    sid_field = ctx.source_id_field(step.module)
    by_sid = {r.source_id: r for r in rows}
    taken = 0
    for job_id, job_run in jobs.items():
        status = _wait(ctx, step, job_id)
        if status is None:
            continue
        result_rows = ctx.client.bulk_result(step.module, job_id, status)
        keys = [k for k in dict.fromkeys(_key_of(r, sid_field) for r in result_rows) if k in by_sid]
        outcomes = bulk.parse_result_by_key(keys, result_rows, sid_field)
        taken += _take_in(ctx, step, job_run, [by_sid[k] for k in keys], outcomes, writer, parents)
        _settle(ctx, step, job_id, "COMPLETED")
    result.reconciled += taken
    if taken:
        log.info("load %s: %d rows of an interrupted Bulk Write job taken into the ledger", step.name, taken)
    return taken


def _key_of(row: Mapping[str, str], column: str) -> str:
    return next(((v or "").strip() for k, v in row.items() if k and k.strip().upper() == column.upper()), "")


def _take_in(ctx: LoadContext, step: LoadStep, job_run: str, rows: Sequence[ShapedRow],
             outcomes: Iterable[RecordOutcome], writer: LedgerWriter, parents: ParentIndex) -> int:
    """Written rows into the crosswalk under the run that created the job (so ``rollback --run`` of that
    run removes what it added), unhashed: this run sends them again. Errors are left to that send."""
    batch = BatchRecord()
    for outcome in outcomes:
        row = rows[outcome.index]
        if not (outcome.ok and outcome.zoho_id):
            continue
        batch.writes.append(CrosswalkWrite(row.source_object, row.source_id, step.module, outcome.zoho_id, None,
                                           outcome.action == "insert"))
        batch.audit.append(AuditEntry(ctx.run_id, ADOPT_OPERATION, step.module, "ok",
                                      source_id=row.source_id, zoho_id=outcome.zoho_id, code="BULK_RESUMED"))
    refused = ctx.ledger.record_writes(job_run, ctx.office_id, batch.writes) if batch.writes else []
    writer.commit(BatchRecord(audit=batch.audit))
    for write in batch.writes:
        if not any(msg.endswith(f"{write.source_object} {write.source_id}") for msg in refused):
            parents.set(write.source_id, write.zoho_id)
    return len(batch.writes) - len(refused)
