"""``ZohoClient``: the one object the pipeline uses to talk to Zoho CRM v8.

Thread-safe: one httpx pool, one token, one budget and one set of concurrency
gates shared by every thread that calls it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from dentrix_zoho.zoho import bulk, limits, retry
from dentrix_zoho.zoho.budget import CreditBudget
from dentrix_zoho.zoho.auth import TokenCache
from dentrix_zoho.zoho.config import ZohoConfig
from dentrix_zoho.zoho.datacentres import check_base_url
from dentrix_zoho.zoho.errors import CreditsExhausted, UncertainOutcome, ZohoError
from dentrix_zoho.zoho.events import EventSink
from dentrix_zoho.zoho.metadata import batches_of, label_key, plan_picklist_additions, plan_schema
from dentrix_zoho.zoho.outcomes import (
    RecordOutcome,
    batch_error,
    parse_record_result,
    safe_details,
    uncertain,
)
from dentrix_zoho.zoho.planning import WritePathChoice, choose_write_path
from dentrix_zoho.zoho.transport import CallSpec, Transport, body_json, http_error
from dentrix_zoho.zoho.writes import BatchWriter, WriteOp

logger = logging.getLogger(__name__)

V8 = "/crm/v8"
BULK_V8 = "/crm/bulk/v8"
DEFAULT_LATENCY_S = 0.3  # before we have measured any call
_FINISHED = frozenset({"COMPLETED", "FAILED"})
_NOT_FOUND = frozenset({"INVALID_DATA", "RESOURCE_NOT_FOUND", "NOT_FOUND"})
_LIMIT_RE = re.compile(r"\blimit\s+(?:\d+\s*,\s*)?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class BudgetCheck:
    needed: int
    remaining: int | None
    limit: int | None


class ZohoClient:
    def __init__(
        self,
        config: ZohoConfig,
        event_sink: EventSink | None = None,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        credit_sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        token_cache: TokenCache | None = None,
    ) -> None:
        """``sleep``/``clock`` pace backoff and the per-minute ceiling; ``credit_sleep`` the credit pauses.

        ``token_cache``: share access tokens with other clients of this process (``auth.SHARED_TOKENS``),
        so that building many clients does not run into Zoho's token-minting limit.
        """
        self.config = config
        self._sleep = sleep
        self.transport = Transport(
            config, event_sink=event_sink, http=http, sleep=sleep, credit_sleep=credit_sleep, clock=clock,
            token_cache=token_cache,
        )
        self._writer = BatchWriter(self.transport, self._lookup_ids)
        self._cache_lock = threading.Lock()
        self._fields: dict[str, list[dict[str, Any]]] = {}
        self._modules: list[dict[str, Any]] | None = None
        self._org: dict[str, Any] | None = None

    # -- lifecycle ---------------------------------------------------------------
    @property
    def write_calls_made(self) -> int:
        """Write calls this client has made (for benchmarks and reports; reads and token calls excluded)."""
        return self.transport.write_calls

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> ZohoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def budget(self) -> CreditBudget:
        return self.transport.budget

    def _call(self, **kwargs: Any) -> httpx.Response:
        return self.transport.call(CallSpec(**kwargs))

    def _json(self, **kwargs: Any) -> dict[str, Any]:
        """A call whose non-2xx answer is an error for the caller."""
        response = self._call(**kwargs)
        if response.status_code >= 300:
            raise http_error(kwargs["method"], kwargs["path_template"], response)
        return body_json(response)

    # -- writes --------------------------------------------------------------------
    def upsert(
        self,
        module: str,
        records: Sequence[Mapping[str, Any]],
        duplicate_check_fields: Sequence[str] = ("Source_System_ID",),
        trigger: Sequence[str] = (),
    ) -> list[RecordOutcome]:
        """Keyed on ``duplicate_check_fields`` (a unique field): repeating it finds the same record.

        Except for rows Zoho appends (subform rows without an ``id``, ``retry.appending_fields``):
        a call carrying any is sent once, since a resend after a 5xx or a broken answer that came
        after Zoho applied it would hold those rows twice. Such a call's records come back
        ``uncertain`` then, and the caller empties those fields before it sends them again
        (``load/upserts.py``). The rule is per call: the loader sends one batch a call, so a batch
        without such rows keeps the transport's retries.
        """
        op = WriteOp(
            method="POST",
            path_template=f"{V8}/{{module}}/upsert",
            module=module,
            default_action=None,
            idempotent=not retry.appends_rows(records),
            body_extra={"duplicate_check_fields": list(duplicate_check_fields), "trigger": list(trigger)},
        )
        return self._writer.write(op, records)

    def insert(
        self,
        module: str,
        records: Sequence[Mapping[str, Any]],
        *,
        lookup_field: str | None = None,
        trigger: Sequence[str] = (),
    ) -> list[RecordOutcome]:
        """Never retried blindly: an uncertain batch is looked up by ``lookup_field`` first."""
        op = WriteOp(
            method="POST",
            path_template=f"{V8}/{{module}}",
            module=module,
            default_action="insert",
            idempotent=False,
            body_extra={"trigger": list(trigger)},
            lookup_field=lookup_field,
        )
        return self._writer.write(op, records)

    def update(
        self, module: str, records: Sequence[Mapping[str, Any]], trigger: Sequence[str] = ()
    ) -> list[RecordOutcome]:
        """By id, so repeatable, unless it carries rows Zoho appends (as :meth:`upsert`): a rollback's
        restore re-creating subform rows comes back ``uncertain`` rather than doubled."""
        missing = [i for i, r in enumerate(records) if not r.get("id")]
        if missing:
            raise ValueError(f"update needs an 'id' in every record; missing at positions {missing[:10]}")
        op = WriteOp(
            method="PUT",
            path_template=f"{V8}/{{module}}",
            module=module,
            default_action="update",
            idempotent=not retry.appends_rows(records),
            body_extra={"trigger": list(trigger)},
        )
        return self._writer.write(op, records)

    def delete(self, module: str, ids: Sequence[str], *, wf_trigger: bool = False) -> list[RecordOutcome]:
        op = WriteOp(
            method="DELETE",
            path_template=f"{V8}/{{module}}",
            module=module,
            default_action=None,
            idempotent=True,
            body_extra={"wf_trigger": "true" if wf_trigger else "false"},
            ids_in_query=True,
            batch_size=limits.IDS_PER_DELETE,
        )
        return self._writer.write(op, [{"id": str(i)} for i in ids])

    def create_notes(
        self, records: Sequence[Mapping[str, Any]], *, lookup_field: str | None = None
    ) -> list[RecordOutcome]:
        """Notes have no upsert: insert semantics; uncertain outcomes come back ``uncertain``
        unless ``lookup_field`` names a field the caller can search on."""
        return self.insert("Notes", records, lookup_field=lookup_field)

    # -- reads -------------------------------------------------------------------------
    def get(self, module: str, record_id: str) -> dict[str, Any] | None:
        response = self._call(
            method="GET",
            path_template=f"{V8}/{{module}}/{{record_id}}",
            path_params={"module": module, "record_id": str(record_id)},
            module=module,
            record_count=1,
        )
        if response.status_code == 204:
            return None
        payload = body_json(response)
        if response.status_code in (400, 404) and payload.get("code") in _NOT_FOUND:
            return None
        if response.status_code >= 300:
            raise http_error("GET", f"{V8}/{{module}}/{{record_id}}", response)
        data = payload.get("data") or []
        return data[0] if data else None

    def get_many(self, module: str, ids: Iterable[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Records by id, ``GET /{module}?ids=…&fields=…``: ``IDS_PER_GET`` ids and ``FIELDS_PER_GET``
        fields a call (more fields: one call per group, merged by id). Ids Zoho does not hold are absent.

        A list GET has no subforms, multi-select or multi-user lookups, and cuts rich text to
        ``LIST_RICH_TEXT_CHARS``: whoever needs those reads the record with :meth:`get`.
        """
        wanted = list(dict.fromkeys(str(i) for i in ids))
        names = list(dict.fromkeys(f for f in fields if f != "id")) or ["id"]
        found: dict[str, dict[str, Any]] = {}
        path = f"{V8}/{{module}}"
        for start in range(0, len(wanted), limits.IDS_PER_GET):
            chunk = wanted[start : start + limits.IDS_PER_GET]
            for f_start in range(0, len(names), limits.FIELDS_PER_GET):
                params = {"ids": ",".join(chunk), "fields": ",".join(names[f_start : f_start + limits.FIELDS_PER_GET]),
                          "per_page": limits.RECORDS_PER_PAGE}
                page = 1
                while True:
                    response = self._call(method="GET", path_template=path, path_params={"module": module},
                                          module=module, params={**params, "page": page}, record_count=len(chunk))
                    if response.status_code == 204:  # none of them exists
                        break
                    if response.status_code >= 300:
                        raise http_error("GET", path, response)
                    payload = body_json(response)
                    for row in payload.get("data") or []:
                        if row.get("id") is not None:
                            found.setdefault(str(row["id"]), {}).update(row)
                    if not (payload.get("info") or {}).get("more_records"):
                        break
                    page += 1
        return found

    def iter_records(
        self, module: str, fields: Sequence[str], *, per_page: int = limits.RECORDS_PER_PAGE
    ) -> Iterator[dict[str, Any]]:
        """Every record of a module: ``page`` for the first 2,000, ``page_token`` beyond."""
        if not fields or len(fields) > limits.FIELDS_PER_GET:
            raise ValueError(f"iter_records needs 1-{limits.FIELDS_PER_GET} fields, got {len(fields)}")
        per_page = min(per_page, limits.RECORDS_PER_PAGE)
        page, token = 1, None
        while True:
            params: dict[str, Any] = {"fields": ",".join(fields), "per_page": per_page}
            if token:
                params["page_token"] = token
            else:
                params["page"] = page
            response = self._call(
                method="GET",
                path_template=f"{V8}/{{module}}",
                path_params={"module": module},
                module=module,
                params=params,
            )
            if response.status_code == 204:
                return
            if response.status_code >= 300:
                payload = body_json(response)
                raise http_error("GET", f"{V8}/{{module}}", response)
            payload = body_json(response)
            yield from payload.get("data") or []
            info = payload.get("info") or {}
            if not info.get("more_records"):
                return
            if token or page * per_page >= limits.PAGE_PARAM_REACH:
                token = info.get("next_page_token")
                if not token:
                    raise ZohoError(f"{module}: more records beyond {page * per_page} but no next_page_token")
            else:
                page += 1

    def _paged(
        self,
        path_template: str,
        module: str | None,
        params: Mapping[str, Any],
        key: str,
        *,
        heavy: bool = False,
        reach: int | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self._call(
                method="GET",
                path_template=path_template,
                path_params={**({"module": module} if module else {}), **(path_params or {})},
                module=module,
                params={**params, "page": page, "per_page": limits.RECORDS_PER_PAGE},
                heavy=heavy,
            )
            if response.status_code == 204:
                return rows
            payload = body_json(response)
            if response.status_code >= 300:
                raise http_error("GET", path_template, response)
            rows += payload.get(key) or []
            info = payload.get("info") or {}
            if not info.get("more_records") or (reach and page * limits.RECORDS_PER_PAGE >= reach):
                return rows
            page += 1

    def search(
        self,
        module: str,
        criteria: str | None = None,
        *,
        email: str | None = None,
        phone: str | None = None,
        word: str | None = None,
    ) -> list[dict[str, Any]]:
        """Up to 2,000 matches. The query (which may hold an e-mail) never reaches a log or event."""
        params = {
            k: v for k, v in {"criteria": criteria, "email": email, "phone": phone, "word": word}.items() if v
        }
        if len(params) != 1:
            raise ValueError("search takes exactly one of criteria, email, phone, word")
        return self._paged(
            f"{V8}/{{module}}/search", module, params, "data", heavy=True, reach=limits.SEARCH_REACH
        )

    def coql(self, query: str) -> list[dict[str, Any]]:
        match = _LIMIT_RE.search(query)
        limit = int(match.group(1)) if match else 200
        response = self._call(
            method="POST",
            path_template=f"{V8}/coql",
            json={"select_query": query},
            credits=limits.coql_credits(limit),
            heavy=True,
        )
        if response.status_code == 204:
            return []
        payload = body_json(response)
        if response.status_code >= 300:
            raise http_error("POST", f"{V8}/coql", response)
        return list(payload.get("data") or [])

    def count(self, module: str) -> int:
        """Zoho's own count; it may lag fresh writes by 1-10 minutes."""
        payload = self._json(
            method="GET",
            path_template=f"{V8}/{{module}}/actions/count",
            path_params={"module": module},
            module=module,
        )
        return int(payload.get("count") or 0)

    def _lookup_ids(self, module: str, field: str, values: Sequence[str]) -> dict[str, str]:
        """``value -> id`` for the values that exist, by COQL ``in`` (50 at a time), else by search."""
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", field) or not re.fullmatch(
            r"[A-Za-z][A-Za-z0-9_]*", module
        ):
            raise ValueError("lookup field and module must be API names")
        found: dict[str, str] = {}
        for chunk in batches_of(list(values), limits.COQL_IN_VALUES_MAX):
            quoted = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in chunk)
            query = f"select id, {field} from {module} where {field} in ({quoted}) limit {len(chunk) * 2}"
            try:
                rows = self.coql(query)
            except ZohoError as exc:
                if exc.status not in (400, 404):
                    raise
                rows = []
                for value in chunk:
                    escaped = value.replace("(", "\\(").replace(")", "\\)").replace(",", "\\,")
                    rows += self.search(module, f"({field}:equals:{escaped})")
            for row in rows:
                if row.get(field) is not None and row.get("id"):
                    found[str(row[field])] = str(row["id"])
        return found

    # -- attachments -------------------------------------------------------------------
    def upload_attachment(
        self, module: str, record_id: str, path: Path, filename: str | None = None
    ) -> RecordOutcome:
        path = Path(path)
        name = filename or path.name
        size = path.stat().st_size
        if size > limits.ATTACHMENT_MAX_BYTES:
            return RecordOutcome(
                index=0,
                ok=False,
                code="FILE_SIZE_MORE_THAN_ALLOWED_SIZE",
                message=f"{size} bytes; Zoho takes at most {limits.ATTACHMENT_MAX_BYTES}",
                details={"size": size, "limit": limits.ATTACHMENT_MAX_BYTES},
            )
        content = path.read_bytes()
        for attempt in (1, 2):
            try:
                response = self._call(
                    method="POST",
                    path_template=f"{V8}/{{module}}/{{record_id}}/Attachments",
                    path_params={"module": module, "record_id": str(record_id)},
                    module=module,
                    files={"file": (name, content, "application/octet-stream")},
                    record_count=1,
                    idempotent=False,
                )
            except UncertainOutcome:
                existing = [a for a in self.list_attachments(module, record_id) if a.get("File_Name") == name]
                if existing:
                    return RecordOutcome(
                        index=0,
                        ok=True,
                        zoho_id=str(existing[-1].get("id")),
                        action="insert",
                        code="SUCCESS",
                        message="attachment found after an uncertain upload",
                        details={"resolved_by": "File_Name"},
                    )
                if attempt == 2:
                    return uncertain(0, "attachment upload outcome unknown twice")
                continue
            payload = body_json(response)
            data = payload.get("data")
            if isinstance(data, list) and data:
                return parse_record_result(0, data[0], "insert")
            return batch_error(0, payload, response.status_code)
        raise AssertionError("unreachable")

    def list_attachments(self, module: str, record_id: str) -> list[dict[str, Any]]:
        return self._paged(
            f"{V8}/{{module}}/{{record_id}}/Attachments",
            module,
            {"fields": "id,File_Name,Size,Created_Time"},
            "data",
            path_params={"record_id": str(record_id)},
        )

    def delete_attachment(self, module: str, record_id: str, attachment_id: str) -> RecordOutcome:
        response = self._call(
            method="DELETE",
            path_template=f"{V8}/{{module}}/{{record_id}}/Attachments/{{attachment_id}}",
            path_params={"module": module, "record_id": str(record_id), "attachment_id": str(attachment_id)},
            module=module,
            record_count=1,
        )
        payload = body_json(response)
        data = payload.get("data")
        if isinstance(data, list) and data:
            return parse_record_result(0, data[0], None)
        return batch_error(0, payload, response.status_code)

    # -- users and org -------------------------------------------------------------------
    def users(self, type: str = "ActiveUsers") -> list[dict[str, Any]]:  # noqa: A002 - Zoho's parameter name
        return self._paged(f"{V8}/users", None, {"type": type}, "users")

    def resolve_users_by_email(self, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Active users keyed by lower-cased e-mail, for the e-mails asked; unmatched ones are absent."""
        wanted = {e.strip().lower() for e in emails if e and e.strip()}
        by_email = {
            str(u.get("email", "")).strip().lower(): u for u in self.users("ActiveUsers") if u.get("email")
        }
        return {e: by_email[e] for e in sorted(wanted) if e in by_email}

    def org(self) -> dict[str, Any]:
        with self._cache_lock:
            if self._org is not None:
                return self._org
        payload = self._json(method="GET", path_template=f"{V8}/org")
        orgs = payload.get("org") or []
        if not orgs:
            raise ZohoError("GET /crm/v8/org returned no organisation")
        with self._cache_lock:
            self._org = dict(orgs[0])
            return self._org

    # -- metadata ------------------------------------------------------------------
    def modules(self, refresh: bool = False) -> list[dict[str, Any]]:
        with self._cache_lock:
            if self._modules is not None and not refresh:
                return self._modules
        payload = self._json(method="GET", path_template=f"{V8}/settings/modules")
        with self._cache_lock:
            self._modules = list(payload.get("modules") or [])
            return self._modules

    def fields(self, module: str, refresh: bool = False) -> list[dict[str, Any]]:
        with self._cache_lock:
            if module in self._fields and not refresh:
                return self._fields[module]
        payload = self._json(
            method="GET", path_template=f"{V8}/settings/fields", module=module, params={"module": module}
        )
        with self._cache_lock:
            self._fields[module] = list(payload.get("fields") or [])
            return self._fields[module]

    def ensure_schema(self, module: str, fields: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Create the missing custom fields (5 per call) and return ``field_label -> api_name``.

        Idempotent: fields already there (matched by label) are not sent. The
        edition's limits are checked before the first write.
        """
        plan = plan_schema(module, self.fields(module, refresh=True), fields, self.config.edition)
        failures: list[str] = []
        for batch in batches_of(plan.to_create, limits.FIELDS_PER_CREATE_CALL):
            response = self._call(
                method="POST",
                path_template=f"{V8}/settings/fields",
                module=module,
                params={"module": module},
                json={"fields": batch},
                record_count=len(batch),
            )
            payload = body_json(response)
            results = payload.get("fields") if isinstance(payload.get("fields"), list) else None
            if results is None or len(results) != len(batch):
                if response.status_code >= 300:
                    failures += [
                        f"{f['field_label']} ({payload.get('code') or response.status_code})" for f in batch
                    ]
                continue
            for spec, result in zip(batch, results, strict=True):
                if (
                    str(result.get("status", "")).lower() == "success"
                    or result.get("code") == "DUPLICATE_DATA"
                ):
                    continue  # a duplicate label means it exists: read back below
                failures.append(
                    f"{spec['field_label']} ({result.get('code')}: {safe_details(result.get('details'))})"
                )
        if failures:
            self.fields(module, refresh=True)
            raise ZohoError(
                f"{module}: could not create fields: {'; '.join(failures)}", code="FIELD_CREATE_FAILED"
            )
        existing = self.fields(module, refresh=bool(plan.to_create))
        by_label = {
            label_key(str(f.get("field_label", ""))): str(f["api_name"])
            for f in existing
            if f.get("api_name")
        }
        mapping: dict[str, str] = {}
        missing: list[str] = []
        for spec in fields:
            label = str(spec["field_label"])
            if label_key(label) in by_label:
                mapping[label] = by_label[label_key(label)]
            else:
                missing.append(label)
        if missing:
            raise ZohoError(
                f"{module}: fields not found after creation: {', '.join(missing)}", code="FIELD_CREATE_FAILED"
            )
        if plan.to_create:
            logger.info("zoho %s: created %d custom fields", module, len(plan.to_create))
        return mapping

    def add_picklist_values(self, module: str, api_name: str, values: Sequence[str]) -> list[str]:
        """Add the ``values`` a picklist lacks and return those added (in order); idempotent.

        ``PATCH /crm/v8/settings/fields/{field_id}?module=`` (scope ``ZohoCRM.settings.fields.ALL``,
        1 credit) with ``{"fields": [{"id", "pick_list_values": [...]}]}``: our reading of Zoho's
        "Update Custom Field" API, which the reference does not document. Current values are sent
        back with their ``id`` so that they stay. Nothing missing means no PATCH (one metadata GET).
        A wanted value whose display value exists with other letter case cannot be added (Zoho
        calls it a duplicate); it is left out, and a re-read shows it still missing.
        """
        current = {str(f.get("api_name")): f for f in self.fields(module, refresh=True)}
        existing = current.get(api_name)
        if existing is None or not existing.get("id"):
            raise ZohoError(f"{module}.{api_name}: no such field", code="FIELD_NOT_FOUND")
        try:
            plan = plan_picklist_additions(module, existing, values)
        except ValueError as exc:
            raise ZohoError(str(exc), code="NOT_A_PICKLIST") from None
        if plan.case_clashes:
            logger.warning(
                "zoho %s.%s: %d picklist values differ from existing ones only in letter case; not added",
                module, api_name, len(plan.case_clashes),
            )
        if not plan.to_add:
            return []
        # A retry after a lost answer meets DUPLICATE_DATA for values already added: harmless, and
        # the re-read below decides what is there.
        response = self._call(
            method="PATCH",
            path_template=f"{V8}/settings/fields/{{field_id}}",
            path_params={"field_id": str(existing["id"])},
            module=module,
            params={"module": module},
            json=plan.body(existing),
        )
        payload = body_json(response)
        results = payload.get("fields") if isinstance(payload.get("fields"), list) else []
        result = results[0] if results and isinstance(results[0], Mapping) else payload
        ok = response.status_code < 300 and str(result.get("status", "")).lower() == "success"
        after = {str(f.get("api_name")): f for f in self.fields(module, refresh=True)}.get(api_name) or {}
        present = {str(v.get("actual_value")) for v in after.get("pick_list_values") or []}
        added = [v for v in plan.to_add if v in present]
        if len(added) < len(plan.to_add):
            code = result.get("code") or response.status_code
            raise ZohoError(
                f"{module}.{api_name}: could not add {len(plan.to_add) - len(added)} picklist values "
                f"({code}: {safe_details(result.get('details'))})",
                status=response.status_code,
                code="PICKLIST_UPDATE_FAILED",
            )
        if not ok:
            logger.info("zoho %s.%s: picklist update answered %s, but the values are there", module, api_name,
                        result.get("code") or response.status_code)
        logger.info("zoho %s.%s: added %d picklist values", module, api_name, len(added))
        return added

    # -- bulk write ------------------------------------------------------------------
    def bulk_write(
        self,
        module: str,
        records: Sequence[Mapping[str, Any]],
        operation: Literal["insert", "update", "upsert"] = "upsert",
        find_by: str | None = "Source_System_ID",
    ) -> list[RecordOutcome]:
        if module in limits.BULK_WRITE_UNSUPPORTED_MODULES:
            raise ValueError(f"Bulk Write does not support {module}; use the record API")
        if operation != "insert" and not find_by:
            raise ValueError(f"Bulk Write {operation} needs find_by")
        if not records:
            return []
        zgid = str(self.org().get("zgid") or self.org().get("id"))
        outcomes: list[RecordOutcome] = []
        files = bulk.build_files(module, records)
        for n, file in enumerate(files):
            try:
                outcomes += self._bulk_job(module, file, operation, find_by, zgid)
            except CreditsExhausted as exc:
                pending = [i for f in files[n:] for i in f.indices]
                raise exc.with_progress(outcomes, pending) from None
        return outcomes

    def _bulk_job(
        self, module: str, file: bulk.BulkFile, operation: str, find_by: str | None, zgid: str
    ) -> list[RecordOutcome]:
        file_id = self.bulk_upload(module, file, zgid)
        job_id = self.bulk_create_job(module, file_id, len(file.indices), operation, find_by)
        status = self.bulk_wait(module, job_id)
        if bulk.job_status(status) == "FAILED":
            return [
                RecordOutcome(index=i, ok=False, code=bulk.job_failure_code(status), message="bulk write job failed")
                for i in file.indices
            ]
        return bulk.parse_result_rows(file.indices, self.bulk_result(module, job_id, status))

    # The steps of one Bulk Write job, public so that the loader can record the job's id in its
    # ledger between creating the job and polling it (and find the job again after a kill).
    def bulk_upload(self, module: str, file: bulk.BulkFile, zgid: str | None = None) -> str:
        """Upload one zipped CSV (reference: Bulk Write "Upload File"); returns its ``file_id``."""
        zgid = zgid or str(self.org().get("zgid") or self.org().get("id"))
        upload = self._json(
            method="POST",
            path_template=f"{V8}/upload",
            module=module,
            host="upload",
            headers={"feature": "bulk-write", "X-CRM-ORG": zgid},
            files={"file": (file.csv_name.replace(".csv", ".zip"), file.zip_bytes, "application/zip")},
            record_count=len(file.indices),
        )
        file_id = (upload.get("details") or {}).get("file_id")
        if not file_id:
            raise ZohoError(f"Bulk Write upload for {module} returned no file_id", code=upload.get("code"))
        return str(file_id)

    def bulk_create_job(
        self, module: str, file_id: str, n_records: int, operation: str = "upsert",
        find_by: str | None = "Source_System_ID",
    ) -> str:
        """Create the job for an uploaded file (500 credits); returns the job id. Lookups go as
        ``Field.id`` columns, which Bulk Write maps without ``field_mappings``."""
        resource: dict[str, Any] = {"type": "data", "module": {"api_name": module}, "file_id": str(file_id)}
        if find_by:
            resource["find_by"] = find_by
        job = self._json(
            method="POST",
            path_template=f"{BULK_V8}/write",
            module=module,
            json={"operation": operation, "ignore_empty": True, "resource": [resource]},
            record_count=n_records,
            credits=limits.CREDITS_BULK_WRITE,
            idempotent=operation != "insert",
        )
        job_id = (job.get("details") or {}).get("id")
        if not job_id:
            raise ZohoError(f"Bulk Write job for {module} returned no id", code=job.get("code"))
        return str(job_id)

    def bulk_status(self, module: str, job_id: str) -> dict[str, Any]:
        """One poll of a job: ``status`` is ADDED, IN PROGRESS, COMPLETED, FAILED (or SKIPPED)."""
        return self._json(
            method="GET",
            path_template=f"{BULK_V8}/write/{{job_id}}",
            path_params={"job_id": job_id},
            module=module,
        )

    def bulk_wait(self, module: str, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Poll until the job is COMPLETED or FAILED; ``ZohoError`` code ``BULK_TIMEOUT`` after ``timeout``
        seconds (default: the config's ``bulk_timeout``)."""
        return self._poll_bulk(module, job_id, timeout)

    def bulk_result(self, module: str, job_id: str, status: Mapping[str, Any]) -> list[dict[str, str]]:
        """The rows of a COMPLETED job's result file (the first three columns, ``ID``, ``STATUS``, ``ERRORS``)."""
        url = ((status.get("result") or {}).get("download_url")) or ""
        if not url:
            raise ZohoError(f"Bulk Write job for {module} completed without a download_url")
        absolute = (
            url
            if url.startswith(("http://", "https://"))
            else self.transport.api_base + "/" + url.lstrip("/")
        )
        check_base_url(absolute.split("?", 1)[0], "bulk result download_url")
        response = self._call(
            method="GET",
            path_template=f"{BULK_V8}/write/{{job_id}}/result",
            path_params={"job_id": str(job_id)},
            module=module,
            absolute_url=absolute,
        )
        if response.status_code >= 300:
            raise http_error("GET", f"{BULK_V8}/write/{{job_id}}/result", response)
        return bulk.read_result_csv(response.content)

    def _poll_bulk(self, module: str, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        wait = self.config.bulk_poll_initial
        limit = self.config.bulk_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            status = self.bulk_status(module, job_id)
            if bulk.job_status(status) in _FINISHED:
                return status
            if time.monotonic() + wait > deadline:
                raise ZohoError(
                    f"Bulk Write job for {module} not finished after {limit:.0f} s",
                    code="BULK_TIMEOUT",
                )
            self._sleep(wait)
            wait = min(wait * 1.5, self.config.bulk_poll_max)

    # -- planning --------------------------------------------------------------------
    def choose_write_path(self, module: str, n_records: int) -> WritePathChoice:
        """Record API or Bulk Write for this batch: fewer credits wins; near-equal credits, less time."""
        choice = self._choose_write_path(module, n_records)
        logger.info("zoho %s: %d records via %s: %s", module, n_records, choice.path, choice.reason)
        return choice

    def _choose_write_path(self, module: str, n_records: int) -> WritePathChoice:
        latency_ms = self.transport.latency_ewma_ms or DEFAULT_LATENCY_S * 1000
        return choose_write_path(
            module,
            n_records,
            concurrency=self.config.concurrency,
            latency_s=latency_ms / 1000,
            remaining_credits=self.budget.remaining(),
            poll_interval_s=self.config.bulk_poll_max,
        )

    def estimate_credits(self, plan: Iterable[limits.PlannedOperation] | Mapping[str, int]) -> int:
        return limits.estimate_credits(plan)

    def check_budget(self, plan: Iterable[limits.PlannedOperation] | Mapping[str, int] | int) -> BudgetCheck:
        """Before a load: ``BudgetExceeded`` (policy ``stop``) when the plan does not fit."""
        needed = plan if isinstance(plan, int) else limits.estimate_credits(plan)
        remaining = self.budget.check_plan(needed)
        return BudgetCheck(needed=needed, remaining=remaining, limit=self.budget.daily_limit)
