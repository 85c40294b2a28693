"""Record-API writes: batches of 100, sent concurrently, parsed per record.

* A batch Zoho rejects as a whole (a request-level 400) is split until the bad
  record stands alone, so one malformed record costs only itself.
* An insert (no key) is never repeated blindly: after an uncertain outcome the
  records are looked up by ``lookup_field`` first and only the missing ones are
  sent again; without a lookup field they come back ``uncertain``.
* When credits run out under the ``stop`` policy, batches not yet sent stay
  unsent and ``CreditsExhausted`` carries what was done and what is pending.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dentrix_zoho.zoho import limits
from dentrix_zoho.zoho.errors import CreditsExhausted, UncertainOutcome, ZohoError, ZohoUnavailable
from dentrix_zoho.zoho.outcomes import (
    Action,
    RecordOutcome,
    batch_error,
    parse_write_response,
    uncertain,
)
from dentrix_zoho.zoho.transport import CallSpec, Transport, body_json, http_error

logger = logging.getLogger(__name__)

# Request-level codes that no record caused: splitting the batch would not help.
_NOT_A_RECORD_PROBLEM = frozenset(
    {
        "INVALID_MODULE",
        "INVALID_URL_PATTERN",
        "NO_PERMISSION",
        "OAUTH_SCOPE_MISMATCH",
        "REQUIRED_PARAM_MISSING",
        "INVALID_REQUEST_METHOD",
        "API_NOT_SUPPORTED",
        "INVALID_HOST",
        "FEATURE_NOT_SUPPORTED",
        "FEATURE_NOT_ENABLED",
    }
)
_JSON_PATH_INDEX = re.compile(r"^\$\.data\[(\d+)\]")

# value of lookup_field -> zoho id, for the values that exist
Lookup = Callable[[str, str, Sequence[str]], dict[str, str]]


@dataclass(frozen=True)
class WriteOp:
    method: str
    path_template: str
    module: str
    default_action: Action | None
    idempotent: bool
    body_extra: Mapping[str, Any] = field(default_factory=dict)
    path_params: Mapping[str, str] = field(default_factory=dict)
    lookup_field: str | None = None  # inserts only: resolves uncertain outcomes
    ids_in_query: bool = False  # deletes: ``?ids=a,b,c`` instead of a JSON body
    batch_size: int = limits.RECORDS_PER_WRITE


class BatchWriter:
    def __init__(self, transport: Transport, lookup: Lookup) -> None:
        self._t = transport
        self._lookup = lookup

    def write(self, op: WriteOp, records: Sequence[Mapping[str, Any]]) -> list[RecordOutcome]:
        if not records:
            return []
        size = op.batch_size
        chunks = [list(range(i, min(i + size, len(records)))) for i in range(0, len(records), size)]
        stop = threading.Event()
        done: dict[int, RecordOutcome] = {}
        pending: list[int] = []
        exhausted: list[CreditsExhausted] = []
        fatal: list[BaseException] = []
        lock = threading.Lock()

        def run(indices: list[int]) -> None:
            if stop.is_set():
                with lock:
                    pending.extend(indices)
                return
            try:
                outcomes = self._send(op, indices, [records[i] for i in indices])
            except CreditsExhausted as exc:
                stop.set()
                with lock:
                    exhausted.append(exc)
                    # A split or resolved batch may have written part of itself before the stop.
                    mine = set(indices)
                    partial = {o.index: o for o in exc.outcomes if o.index in mine}
                    done.update(partial)
                    pending.extend(i for i in indices if i not in partial)
                return
            except ZohoUnavailable as exc:
                # Retries ran out for this batch only; the caller may send these records again.
                outcomes = [_failed(i, exc) for i in indices]
            except BaseException as exc:  # AuthError, request-level errors: the run cannot go on
                stop.set()
                with lock:
                    fatal.append(exc)
                    pending.extend(indices)
                return
            with lock:
                for outcome in outcomes:
                    done[outcome.index] = outcome

        workers = min(self._t.gates.concurrency, len(chunks))
        if workers <= 1:
            for chunk in chunks:
                run(chunk)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoho-write") as pool:
                list(pool.map(run, chunks))
        ordered = [done[i] for i in sorted(done)]
        if fatal:
            if isinstance(fatal[0], ZohoError):
                # Inserts already made must not be lost: the caller records them before re-raising.
                fatal[0].outcomes = ordered
                fatal[0].pending_indices = sorted(pending)
            raise fatal[0]
        if exhausted:
            raise exhausted[0].with_progress(ordered, sorted(pending))
        return ordered

    # -- one batch -------------------------------------------------------------
    def _send(self, op: WriteOp, indices: list[int], batch: list[Mapping[str, Any]]) -> list[RecordOutcome]:
        if op.idempotent:
            return self._send_once(op, indices, batch)
        return self._send_insert(op, indices, batch, rounds=0)

    def _spec(self, op: WriteOp, batch: list[Mapping[str, Any]]) -> CallSpec:
        if op.ids_in_query:
            return CallSpec(
                method=op.method,
                path_template=op.path_template,
                path_params={"module": op.module, **op.path_params},
                module=op.module,
                params={"ids": ",".join(str(r["id"]) for r in batch), **op.body_extra},
                record_count=len(batch),
                credits=limits.CREDITS_DEFAULT,
                idempotent=op.idempotent,
            )
        return CallSpec(
            method=op.method,
            path_template=op.path_template,
            path_params={"module": op.module, **op.path_params},
            module=op.module,
            json={"data": batch, **op.body_extra},
            record_count=len(batch),
            credits=limits.write_call_credits(len(batch)),
            idempotent=op.idempotent,
            heavy=limits.is_heavy_write(len(batch)),
        )

    def _send_once(
        self, op: WriteOp, indices: list[int], batch: list[Mapping[str, Any]]
    ) -> list[RecordOutcome]:
        response = self._t.call(self._spec(op, batch))
        payload = body_json(response)
        parsed = parse_write_response(indices, payload, op.default_action)
        if parsed is not None:
            return parsed
        # A 2xx without per-record results, or a refusal no record caused: nothing to isolate.
        if response.status_code not in (400, 413, 422) or payload.get("code") in _NOT_A_RECORD_PROBLEM:
            raise http_error(op.method, op.path_template, response)
        return self._isolate(op, indices, batch, payload, response.status_code)

    def _isolate(
        self,
        op: WriteOp,
        indices: list[int],
        batch: list[Mapping[str, Any]],
        payload: Mapping[str, Any],
        status: int,
    ) -> list[RecordOutcome]:
        """The whole batch was refused: find the record(s) at fault by splitting."""
        if len(batch) == 1:
            return [batch_error(indices[0], payload, status)]
        culprit = _culprit_position(payload, len(batch))
        if culprit is not None:
            logger.info(
                "zoho %s batch refused; record %d named by the error, resending the rest", op.module, culprit
            )
            outcomes = [batch_error(indices[culprit], payload, status)]
            parts = [[p for p in range(len(batch)) if p != culprit]]
        else:
            logger.info("zoho %s batch of %d refused as a whole; splitting", op.module, len(batch))
            outcomes = []
            mid = len(batch) // 2
            parts = [list(range(mid)), list(range(mid, len(batch)))]
        for part in parts:
            part_indices = [indices[p] for p in part]
            outcomes += _keeping_progress(
                outcomes,
                part_indices,
                lambda part=part, part_indices=part_indices: self._send(
                    op, part_indices, [batch[p] for p in part]
                ),
            )
        return sorted(outcomes, key=lambda o: o.index)

    def _send_insert(
        self, op: WriteOp, indices: list[int], batch: list[Mapping[str, Any]], rounds: int
    ) -> list[RecordOutcome]:
        try:
            return self._send_once(op, indices, batch)
        except UncertainOutcome as exc:
            reason = f"insert outcome unknown ({exc.code or exc.status}); reconcile before retrying"
            # Each round is look-up-then-resend; bounded like any other retry.
            if not op.lookup_field or rounds >= self._t.config.max_retries:
                return [uncertain(i, reason) for i in indices]
            return self._resolve(op, indices, batch, rounds, reason)

    def _resolve(
        self, op: WriteOp, indices: list[int], batch: list[Mapping[str, Any]], rounds: int, reason: str
    ) -> list[RecordOutcome]:
        """Look the records up by their key; report the found ones, insert only the missing."""
        assert op.lookup_field
        keys = [r.get(op.lookup_field) for r in batch]
        values = [str(k) for k in keys if k not in (None, "")]
        try:
            found = self._lookup(op.module, op.lookup_field, values) if values else {}
        except ZohoError:
            return [uncertain(i, reason + "; lookup failed") for i in indices]
        outcomes: list[RecordOutcome] = []
        retry_idx: list[int] = []
        retry_batch: list[Mapping[str, Any]] = []
        for index, record, key in zip(indices, batch, keys, strict=True):
            if key in (None, ""):
                outcomes.append(uncertain(index, reason + f"; record has no {op.lookup_field}"))
            elif str(key) in found:
                outcomes.append(
                    RecordOutcome(
                        index=index,
                        ok=True,
                        zoho_id=found[str(key)],
                        action="insert",
                        code="SUCCESS",
                        message="record found after an uncertain insert",
                        details={"resolved_by": op.lookup_field},
                    )
                )
            else:
                retry_idx.append(index)
                retry_batch.append(record)
        logger.info(
            "zoho %s uncertain insert resolved: %d found, %d to resend",
            op.module,
            len(outcomes),
            len(retry_idx),
        )
        if retry_idx:
            outcomes += _keeping_progress(
                outcomes, retry_idx, lambda: self._send_insert(op, retry_idx, retry_batch, rounds + 1)
            )
        return sorted(outcomes, key=lambda o: o.index)


def _keeping_progress(
    done: list[RecordOutcome], indices: Sequence[int], send: Callable[[], list[RecordOutcome]]
) -> list[RecordOutcome]:
    """Send one part of a split or resolved batch without losing what earlier parts wrote.

    Credits gone: the earlier outcomes ride on the exception. Retries gone: only
    this part's records are marked failed, so records already created are never
    reported as failed (and re-inserted by the caller).
    """
    try:
        return send()
    except CreditsExhausted as exc:
        exc.outcomes[:0] = done
        raise
    except ZohoUnavailable as exc:
        return [_failed(i, exc) for i in indices]


def _culprit_position(payload: Mapping[str, Any], size: int) -> int | None:
    details = payload.get("details")
    if not isinstance(details, Mapping):
        return None
    path = details.get("json_path")
    if isinstance(path, str):
        match = _JSON_PATH_INDEX.match(path)
        if match and int(match.group(1)) < size:
            return int(match.group(1))
    index = details.get("index")
    if isinstance(index, int) and 0 <= index < size:
        return index
    return None


def _failed(index: int, exc: ZohoError) -> RecordOutcome:
    return RecordOutcome(
        index=index,
        ok=False,
        code=exc.code or "ZOHO_UNAVAILABLE",
        message=str(exc),
        details={"retryable": True, **({"http_status": exc.status} if exc.status else {})},
    )
