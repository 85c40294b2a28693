"""Records API: list, get, insert, update, upsert, delete, count, and per-record Notes (https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html, upsert-records.html; "Notes" in the v8 docs)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .api import Call, api, json_response, no_content
from .engine import ExternalLookups, Org, Tx, display_name, zoho_time
from .errors import ApiError, invalid_param, limit_exceeded, required_param
from .limits import write_cost
from .validation import RecordError

MAX_WRITE = 100
MAX_FIELDS = 50
MAX_PER_PAGE = 200
DISCRETE_PAGE_REACH = 2_000
TOKEN_PAGE_REACH = 100_000
PAGE_TOKEN_TTL = 24 * 3600
SORTABLE = ("id", "Created_Time", "Modified_Time")
TRIGGERS = ("workflow", "approval", "blueprint", "pathfinder", "orchestration")
HIDDEN_IN_LISTS = ("subform", "multiselectlookup", "multiuserlookup")


# ---- helpers shared with other route modules --------------------------------------------------

def public_record(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def success(record: dict[str, Any], message: str, *, approval: bool = False) -> dict[str, Any]:
    details = {"Modified_Time": record["Modified_Time"], "Modified_By": _ref(record["Modified_By"]),
               "Created_Time": record["Created_Time"], "id": record["id"], "Created_By": _ref(record["Created_By"])}
    if approval:
        details["$approval_state"] = "approved"
    return {"code": "SUCCESS", "details": details, "message": message, "status": "success"}


def _ref(user: dict[str, Any]) -> dict[str, Any]:
    return {"name": user["name"], "id": user["id"]}


def write_response(results: list[dict[str, Any]], ok_status: int) -> Response:
    """201/200 when all succeed, 400 when all fail, 207 when mixed (https://www.zoho.com/crm/developer/docs/api/v8/status-codes.html)."""
    ok = sum(1 for r in results if r["status"] == "success")
    status = ok_status if ok == len(results) else 400 if ok == 0 else 207
    return json_response({"data": results}, status)


def batch(body: Any) -> list[Any]:
    if not isinstance(body, dict) or "data" not in body:
        raise required_param("data")
    data = body["data"]
    if not isinstance(data, list):
        raise ApiError(400, "INVALID_DATA", "invalid data", {"expected_data_type": "jsonarray", "api_name": "data"})
    if not data:
        raise required_param("data")
    if len(data) > MAX_WRITE:
        raise limit_exceeded(MAX_WRITE, api_name="data")
    return data


def record_trigger(call: Call, body: dict[str, Any]) -> None:
    """Automation does not run in the emulator; which triggers were asked for is counted in usage."""
    trigger = body.get("trigger")
    if trigger is None:
        call.emulator.triggers["default(all)"] += 1
        return
    if not isinstance(trigger, list) or any(t not in TRIGGERS for t in trigger):
        raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": "trigger", "json_path": "$.trigger"})
    call.emulator.triggers[",".join(sorted(trigger)) or "none"] += 1


def not_object(index: int) -> RecordError:
    return RecordError("INVALID_DATA", "invalid data",
                       {"expected_data_type": "jsonobject", "api_name": "data", "json_path": f"$.data[{index}]"})


def _each(data: list[Any], run: Any) -> list[dict[str, Any]]:
    results = []
    for i, item in enumerate(data):
        try:
            if not isinstance(item, dict):
                raise not_object(i)
            results.append(run(i, item))
        except RecordError as error:
            results.append(error.body)
    return results


# ---- writes ------------------------------------------------------------------------------------

def insert_batch(call: Call, module: str, body: dict[str, Any], data: list[Any],
                 parent: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    org = call.org

    def run(i: int, item: dict[str, Any]) -> dict[str, Any]:
        if parent is not None and "Parent_Id" not in item:
            item = {**item, "Parent_Id": parent}
        return success(org.insert(tx, module, item, i, call.user_id, call.lookups), "record added",
                       approval=True)

    record_trigger(call, body)
    with org.transaction() as tx:
        return _each(data, run)


async def write_call(call: Call, operation: str, module: str | None = None) -> tuple[str, dict[str, Any], list[Any]]:
    """The common start of a write: module, body, <= 100 records, scope, credits (heavy above 10)."""
    module = module or call.module()
    body = await call.json_body()
    data = batch(body)
    call.require_module(module, operation)
    call.charge(write_cost(len(data)), heavy=len(data) > 10)
    return module, body, data


@api("/crm/v8/{module}", write=True)
async def insert_records(request: Request, call: Call) -> Response:
    module, body, data = await write_call(call, "CREATE")
    return write_response(insert_batch(call, module, body, data), 201)


def check_unmodified(call: Call, module: str, record_id: str) -> None:
    """``If-Unmodified-Since``: refuse to update a record changed after the given time."""
    raw = call.request.headers.get("if-unmodified-since")
    if raw is None:
        return
    since = _parse_time(raw)
    if since is None:
        raise invalid_param("If-Unmodified-Since")
    record = call.org.state.records.get(module, {}).get(record_id)
    if record is not None and (_parse_time(record["Modified_Time"]) or 0) > since:
        raise RecordError("ALREADY_MODIFIED", "the record has been modified after the given time",
                          {"id": record_id})


def update_response(results: list[dict[str, Any]]) -> Response:
    if results and all(r["code"] == "ALREADY_MODIFIED" for r in results):
        return json_response({"data": results}, 412)
    return write_response(results, 200)


def _update_one(org: Org, tx: Tx, call: Call, module: str, i: int, item: dict[str, Any],
                record_id: Any) -> dict[str, Any]:
    lookups = call.lookups
    external = lookups.field_for(module) if isinstance(lookups, ExternalLookups) else None
    if record_id in (None, "") and external is not None and item.get(external) not in (None, ""):
        # ``X-EXTERNAL: Module.Field``: the external value identifies the record instead of its id.
        record_id = org.find_first(module, external, item[external])
        if record_id is None:
            raise RecordError("INVALID_DATA", "the id given seems to be invalid",
                              {"api_name": external, "json_path": f"$.data[{i}].{external}"})
    if record_id in (None, ""):
        raise RecordError("MANDATORY_NOT_FOUND", "required field not found",
                          {"api_name": "id", "json_path": f"$.data[{i}].id"})
    check_unmodified(call, module, str(record_id))
    return success(org.update(tx, module, str(record_id), item, i, call.user_id, lookups), "record updated")


@api("/crm/v8/{module}", write=True)
async def update_records(request: Request, call: Call) -> Response:
    module, body, data = await write_call(call, "UPDATE")
    record_trigger(call, body)
    path_id = request.path_params.get("record_id")
    if path_id is not None and len(data) > 1:
        raise limit_exceeded(1, api_name="data")
    with call.org.transaction() as tx:
        results = _each(data, lambda i, item: _update_one(
            call.org, tx, call, module, i, item, path_id if path_id is not None else item.get("id")))
    return update_response(results)


@api("/crm/v8/{module}/upsert", write=True)
async def upsert_records(request: Request, call: Call) -> Response:
    if call.module() == "Notes":
        raise ApiError(400, "NOT_SUPPORTED", "upsert is not supported for this module", {})
    module, body, data = await write_call(call, "UPSERT")
    record_trigger(call, body)
    org = call.org
    allowed = org.match_fields(module)
    asked = body.get("duplicate_check_fields")
    # Entries that are neither system duplicate-check fields nor unique fields are ignored (https://www.zoho.com/crm/developer/docs/api/v8/upsert-records.html).
    order = [f for f in asked if f in allowed] if isinstance(asked, list) else []
    order = order or allowed

    def run(i: int, item: dict[str, Any]) -> dict[str, Any]:
        for name in order:
            value = item.get(name)
            if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
                match = org.find_first(module, name, value)
                if match is not None:
                    check_unmodified(call, module, match)
                    result = success(org.update(tx, module, match, item, i, call.user_id, call.lookups),
                                     "record updated")
                    return {"code": "SUCCESS", "duplicate_field": name, "action": "update", **result}
        result = success(org.insert(tx, module, item, i, call.user_id, call.lookups), "record added")
        return {"code": "SUCCESS", "duplicate_field": None, "action": "insert", **result}

    with org.transaction() as tx:
        results = _each(data, run)
    return update_response(results)


def delete_ids(call: Call, module: str, ids: list[str]) -> list[dict[str, Any]]:
    org = call.org
    records = org.state.records.get(module, {})
    results = []
    doomed = set()
    deleted_by = org.user_ref(call.user_id)
    now = zoho_time(call.emulator.clock.now())
    with org.transaction() as tx:
        for record_id in ids:
            if record_id in records:
                record = records[record_id]
                tx.delete(module, record_id)
                tx.apply(["bin", module, {
                    "id": record_id, "display_name": display_name(module, record), "type": "recycle",
                    "deleted_by": _ref(deleted_by), "created_by": _ref(record["Created_By"]),
                    "deleted_time": now}])
                doomed.add(record_id)
                results.append({"code": "SUCCESS", "details": {"id": record_id}, "message": "record deleted",
                                "status": "success"})
            else:
                results.append({"code": "INVALID_DATA", "details": {"id": record_id},
                                "message": "the id given seems to be invalid", "status": "error"})
        # Notes and attachments go with their parent, as in Zoho.
        for child in ("Notes", "Attachments"):
            for child_id, child_record in list(org.state.records.get(child, {}).items()):
                if (child_record.get("Parent_Id") or {}).get("id") in doomed:
                    tx.delete(child, child_id)
    return results


@api("/crm/v8/{module}", write=True)
async def delete_records(request: Request, call: Call) -> Response:
    module = call.module()
    path_id = request.path_params.get("record_id")
    if path_id is not None:
        ids = [path_id]
    else:
        raw = request.query_params.get("ids")
        if not raw:
            raise required_param("ids")
        ids = [i.strip() for i in raw.split(",") if i.strip()]
        if len(ids) > MAX_WRITE:
            raise limit_exceeded(MAX_WRITE, param="ids")
    call.require_module(module, "DELETE")
    call.charge(1)
    return write_response(delete_ids(call, module, ids), 200)


# ---- reads -------------------------------------------------------------------------------------

def requested_fields(call: Call, module: str, required: bool = True) -> list[str] | None:
    raw = call.request.query_params.get("fields")
    if not raw:
        if required:
            raise required_param("fields")
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if len(names) > MAX_FIELDS:
        raise limit_exceeded(MAX_FIELDS, param="fields")
    known = call.org.fields(module)
    # Unknown names are left out of the answer rather than refused (our choice; UNVERIFIED).
    return [n for n in names if n in known and known[n]["data_type"] not in HIDDEN_IN_LISTS]


def project(record: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    if names is None:
        return public_record(record)
    out = {name: record.get(name) for name in names}
    if "What_Id" in names and "$se_module" in record:
        # The module of a multi-module lookup comes with it: the lookup's id alone names no record
        # (Zoho's records carry "$se_module" beside "What_Id"; that lists do too is UNVERIFIED).
        out["$se_module"] = record["$se_module"]
    out["id"] = record["id"]
    return out


def _int_param(call: Call, name: str, default: int) -> int:
    raw = call.request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_param(name) from None
    if value < 1:
        raise invalid_param(name)
    return value


def _encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _decode_token(raw: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _parse_time(raw: str) -> float | None:
    try:
        return datetime.fromisoformat(raw.strip()).timestamp()
    except ValueError:
        return None


def paginate(call: Call, module: str, rows: list[dict[str, Any]], names: list[str] | None,
             sort_by: str, sort_order: str, *, reach: int = DISCRETE_PAGE_REACH,
             allow_token: bool = True, reach_code: str = "DISCRETE_PAGINATION_LIMIT_EXCEEDED") -> Response:
    """Page with ``page``/``per_page`` (first 2 000) or ``page_token`` (to 100 000); 204 when empty."""
    params = call.request.query_params
    per_page = _int_param(call, "per_page", MAX_PER_PAGE)
    if per_page > MAX_PER_PAGE:
        raise invalid_param("per_page")
    token_raw = params.get("page_token") if allow_token else None
    now = call.emulator.clock.now()
    if token_raw is not None:
        if params.get("page") is not None:
            raise ApiError(400, "AMBIGUITY_DURING_PROCESSING", "page and page_token cannot be given together",
                           {"ambiguity_due_to": ["page", "page_token"]})
        token = _decode_token(token_raw)
        if token is None or token.get("m") != module or token.get("u") != call.user_id:
            raise invalid_param("page_token", "invalid page token")
        if token["e"] <= now:
            raise ApiError(400, "INVALID_DATA", "page token expired", {"param_name": "page_token"})
        start, page = token["o"], token["p"]
        if start >= TOKEN_PAGE_REACH:
            raise ApiError(400, "PAGINATION_LIMIT_EXCEEDED", "pagination limit exceeded",
                           {"limit": TOKEN_PAGE_REACH})
    else:
        page = _int_param(call, "page", 1)
        start = (page - 1) * per_page
        if start + per_page > reach and start >= reach:
            raise ApiError(400, reach_code,
                           f"you can only get the first {reach} records without using page_token",
                           {"limit": reach})
        if start + per_page > reach:
            per_page = reach - start
    chunk = rows[start:start + per_page]
    if not chunk:
        return no_content()
    end = start + len(chunk)
    more = end < len(rows)
    info: dict[str, Any] = {"per_page": per_page, "count": len(chunk), "page": page, "sort_by": sort_by,
                            "sort_order": sort_order, "more_records": more, "call": False, "email": False,
                            "next_page_token": None, "previous_page_token": None, "page_token_expiry": None}
    if allow_token:
        expiry = now + PAGE_TOKEN_TTL
        if more:
            info["next_page_token"] = _encode_token({"m": module, "u": call.user_id, "o": end, "p": page + 1,
                                                     "e": expiry})
        if start > 0:
            info["previous_page_token"] = _encode_token({"m": module, "u": call.user_id,
                                                         "o": max(0, start - per_page), "p": max(1, page - 1),
                                                         "e": expiry})
        info["page_token_expiry"] = zoho_time(expiry)
    return json_response({"data": [project(r, names) for r in chunk], "info": info})


def sorted_rows(call: Call, module: str, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, str]:
    params = call.request.query_params
    sort_by = params.get("sort_by", "id")
    sort_order = params.get("sort_order", "desc")
    if sort_by not in SORTABLE:
        raise invalid_param("sort_by")
    if sort_order not in ("asc", "desc"):
        raise invalid_param("sort_order")
    if sort_by == "id":
        # Ids grow with creation, and the record table keeps creation order.
        ordered = rows if sort_order == "asc" else rows[::-1]
    else:
        ordered = sorted(rows, key=lambda r: (r.get(sort_by) or "", r["id"]), reverse=sort_order == "desc")
    return ordered, sort_by, sort_order


@api("/crm/v8/{module}")
async def list_records(request: Request, call: Call) -> Response:
    module = call.module()
    names = requested_fields(call, module)
    params = request.query_params
    call.require_module(module, "READ")
    cvid = params.get("cvid")
    if cvid is not None and params.get("sort_by") is not None:
        raise ApiError(400, "AMBIGUITY_DURING_PROCESSING", "cvid and sort_by cannot be given together",
                       {"ambiguity_due_to": ["cvid", "sort_by"]})
    call.charge(3 if cvid is not None else 1, heavy=cvid is not None or params.get("sort_by") is not None)
    rows = list(call.org.state.records.get(module, {}).values())
    ids = params.get("ids")
    if ids:
        wanted = {i.strip() for i in ids.split(",")}
        if len(wanted) > MAX_WRITE:
            raise limit_exceeded(MAX_WRITE, param="ids")
        rows = [r for r in rows if r["id"] in wanted]
    since_raw = request.headers.get("if-modified-since")
    if since_raw:
        since = _parse_time(since_raw)
        if since is None:
            raise invalid_param("If-Modified-Since")
        rows = [r for r in rows if (_parse_time(r["Modified_Time"]) or 0) > since]
    ordered, sort_by, sort_order = sorted_rows(call, module, rows)
    return paginate(call, module, ordered, names, sort_by, sort_order)


@api("/crm/v8/{module}/{record_id}")
async def get_record(request: Request, call: Call) -> Response:
    module = call.module()
    call.require_module(module, "READ")
    call.charge(1)
    record = call.org.state.records.get(module, {}).get(request.path_params["record_id"])
    if record is None:
        return no_content()
    return json_response({"data": [public_record(record)]})


@api("/crm/v8/{module}/deleted")
async def list_deleted(request: Request, call: Call) -> Response:
    """The recycle bin (``type=all|recycle|permanent``; the emulator only has recycled records)."""
    module = call.module()
    call.require_module(module, "READ")
    kind = request.query_params.get("type", "all")
    if kind not in ("all", "recycle", "permanent"):
        raise invalid_param("type")
    call.charge(2)
    rows = [] if kind == "permanent" else list(call.org.state.recycle_bin.get(module, {}).values())[::-1]
    return simple_page(call, rows, "data")


def simple_page(call: Call, rows: list[dict[str, Any]], key: str) -> Response:
    """``page``/``per_page`` paging with the short ``info`` of users and deleted-record lists."""
    per_page = _int_param(call, "per_page", MAX_PER_PAGE)
    page = _int_param(call, "page", 1)
    if per_page > MAX_PER_PAGE:
        raise invalid_param("per_page")
    chunk = rows[(page - 1) * per_page: page * per_page]
    if not chunk:
        return no_content()
    return json_response({key: chunk, "info": {"per_page": per_page, "count": len(chunk), "page": page,
                                               "more_records": page * per_page < len(rows)}})


@api("/crm/v8/{module}/actions/count")
async def count_records(request: Request, call: Call) -> Response:
    module = call.module()
    call.require_module(module, "READ")
    call.require_any("ZohoSearch.securesearch.READ", "ZohoSearch.securesearch.ALL")
    call.charge(1)
    return json_response({"count": len(call.org.state.records.get(module, {}))})


def _parent(call: Call) -> dict[str, Any]:
    module = call.module()
    if module == "Notes":
        raise ApiError(400, "INVALID_MODULE", "the module name given seems to be invalid", {"resource_path_index": 0})
    record_id = call.request.path_params["record_id"]
    if record_id not in call.org.state.records.get(module, {}):
        raise ApiError(400, "INVALID_DATA", "the related id given seems to be invalid",
                       {"resource_path_index": 1, "id": record_id})
    return {"module": {"api_name": module}, "id": record_id}


@api("/crm/v8/{module}/{record_id}/Notes")
async def list_record_notes(request: Request, call: Call) -> Response:
    parent = _parent(call)
    call.require_module("Notes", "READ")
    call.require_module(parent["module"]["api_name"], "READ")
    names = requested_fields(call, "Notes")
    call.charge(1)
    rows = [r for r in call.org.state.records.get("Notes", {}).values()
            if (r.get("Parent_Id") or {}).get("id") == parent["id"]]
    ordered, sort_by, sort_order = sorted_rows(call, "Notes", rows)
    return paginate(call, "Notes", ordered, names, sort_by, sort_order)


@api("/crm/v8/{module}/{record_id}/Notes", write=True)
async def insert_record_notes(request: Request, call: Call) -> Response:
    parent = _parent(call)
    _, body, data = await write_call(call, "CREATE", "Notes")
    return write_response(insert_batch(call, "Notes", body, data, parent=parent), 201)
