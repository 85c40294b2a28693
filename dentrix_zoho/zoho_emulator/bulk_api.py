"""Bulk Write: upload a zipped CSV, create a job, run it in the background, poll, download the result
("Bulk APIs" in the v8 docs; crm-oas v8.0/bulk_write.json).

Jobs run one at a time in the server's event loop, in chunks, going ADDED -> IN PROGRESS -> COMPLETED.
Each chunk is one journaled transaction. A job still ADDED or IN PROGRESS when the emulator stops is
marked FAILED at the next start (rows already written stay written, as after a real outage).
Values in the CSV follow Bulk Write's defaults: date ``MM/dd/yyyy``, datetime ``MM/dd/yyyy HH:mm:ss``
(ISO forms are accepted too), multi-select values separated by ``;``, booleans ``true``/``false``.

Per-row errors go in the result file's ``ERRORS`` column as ``<CODE>-<column>`` (mandatory field
missing, invalid data, a duplicate of a unique field), with ``STATUS`` ``skipped``.

A test knob, read from the environment when a job starts (so set it before the emulator starts):
``ZOHO_EMULATOR_BULK_JOBS=fail:N`` writes the first N rows of every job and then marks it FAILED
(as after an outage: the rows written stay written, no result file); ``stall:N`` writes N rows and
leaves the job IN PROGRESS for good (a job that never finishes); ``refuse`` answers every "create job"
with 403 ``NO_PERMISSION`` (a user whose profile may not use Bulk Write: Zoho's error shape for a
missing permission; the permission's name in ``details`` is ours, Zoho documents none for Bulk Write),
before any credit is spent or row written. The upload itself is still accepted.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import os
import zipfile
from datetime import datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import Call, Emulator, api, json_response
from .engine import zoho_time
from .errors import ApiError, required_param
from .metadata import BULK_WRITE_MODULES, RECORD_MODULES
from .validation import RecordError

MB = 1024 * 1024
MAX_FILE_BYTES = 25 * MB
MAX_ROWS = 25_000
MAX_COLUMNS = 200
CHUNK_ROWS = 250
JOB_COST = 500
OPERATIONS = ("insert", "update", "upsert")
JOB_KNOB = "ZOHO_EMULATOR_BULK_JOBS"


BULK_PERMISSION = "Crm_Implied_Bulk_Write"  # our name: Zoho documents none for Bulk Write


def _knob() -> tuple[str, int] | None:
    """``("fail"|"stall"|"refuse", rows)`` from ``ZOHO_EMULATOR_BULK_JOBS``, or None when unset."""
    raw = os.environ.get(JOB_KNOB, "").strip().lower()
    if not raw:
        return None
    mode, _, count = raw.partition(":")
    if mode not in ("fail", "stall", "refuse") or not (count or "0").isdigit():
        raise ValueError(f"{JOB_KNOB} must be fail:N, stall:N or refuse, got {raw!r}")
    return mode, int(count or 0)


def _error(status: int, code: str, message: str, **details: Any) -> ApiError:
    return ApiError(status, code, message, details)


# ---- upload ------------------------------------------------------------------------------------

@api("/crm/v8/upload", write=True)
async def upload_file(request: Request, call: Call) -> Response:
    zgid = call.org.state.org["zgid"]
    if request.headers.get("feature") != "bulk-write" or request.headers.get("x-crm-org") != zgid:
        return json_response({"x-error": "check if headers [feature, X-CRM-ORG] are present and valid",
                              "ERROR_CODE": "INVALID_REQUEST", "ERROR_MESSAGE": "invalid headers",
                              "info": {}, "http_status": 400}, 400)
    call.require_any("ZohoFiles.files.ALL", "ZohoFiles.files.CREATE")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_FILE_BYTES + 64 * 1024:
        raise _error(413, "FILE_TOO_LARGE", "File size too large to process")
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise required_param("file")
    call.charge(1)
    content = await upload.read()
    if len(content) > MAX_FILE_BYTES:
        raise _error(413, "FILE_TOO_LARGE", "File size too large to process")
    if not zipfile.is_zipfile(io.BytesIO(content)):
        raise _error(400, "INVALID_FILE_FORMAT", "invalid file format. only zip format is supported")
    file_id = call.org.new_id()
    path = call.org.store.file_path(f"upload-{file_id}.zip")
    tmp = path.with_suffix(".part")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    created = zoho_time(call.emulator.clock.now())
    with call.org.transaction() as tx:
        tx.apply(["bfile", file_id, {"id": file_id, "name": upload.filename, "size": len(content),
                                     "created_time": created}])
    return json_response({"status": "success", "code": "FILE_UPLOAD_SUCCESS", "message": "file uploaded.",
                          "details": {"file_id": file_id, "created_time": created}})


def _read_csv(emulator: Emulator, file_id: str) -> tuple[str, list[list[str]]]:
    path = emulator.org.store.file_path(f"upload-{file_id}.zip")
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if len(names) != 1:
            raise _error(400, "INVALID_FORMAT", "the zip must hold exactly one CSV file for a flat module")
        text = archive.read(names[0]).decode("utf-8-sig")
    sample = text[:4096]
    delimiter = max(",;:|", key=sample.split("\n", 1)[0].count)
    return names[0], [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


# ---- create job --------------------------------------------------------------------------------

def _resource(body: Any) -> dict[str, Any]:
    resources = body.get("resource") if isinstance(body, dict) else None
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], dict):
        raise required_param("resource")
    if len(resources) > 1:
        raise _error(400, "NOT_SUPPORTED", "the emulator runs one resource per job", param="resource")
    return resources[0]


@api("/crm/bulk/v8/write")
async def create_job(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.bulk.ALL", "ZohoCRM.bulk.CREATE")
    knob = _knob()
    if knob is not None and knob[0] == "refuse":
        raise _error(403, "NO_PERMISSION", "permission denied", permissions=[BULK_PERMISSION])
    body = await call.json_body()
    operation = body.get("operation") if isinstance(body, dict) else None
    if operation not in OPERATIONS:
        raise _error(400, "INVALID_DATA", "invalid operation", api_name="operation")
    resource = _resource(body)
    module_name = (resource.get("module") or {}).get("api_name", "")
    module = next((m for m in RECORD_MODULES if m.lower() == str(module_name).lower()), None)
    if module is None or module not in BULK_WRITE_MODULES:
        raise _error(400, "MODULE_NOT_AVAILABLE", "the module is not available for bulk write",
                     module=module_name, resource_path="resource[0].module")
    call.require_module(module, {"insert": "CREATE", "update": "UPDATE", "upsert": "UPSERT"}[operation])
    file_id = str(resource.get("file_id", ""))
    if file_id not in call.org.state.bulk_files:
        raise _error(400, "INVALID_FILE_ID", "the file id given seems to be invalid", file_id=file_id)
    fields = call.org.fields(module)
    find_by = resource.get("find_by")
    if operation != "insert" and not find_by:
        raise _error(400, "MANDATORY_NOT_FOUND", "Required key find_by is not available", api_name="find_by")
    if find_by and find_by != "id" and find_by not in call.org.match_fields(module):
        raise _error(400, "INVALID_FIELD", "find_by must be id, a duplicate-check field or a unique field",
                     api_name=find_by)
    csv_name, rows = _read_csv(call.emulator, file_id)
    if not rows:
        raise _error(400, "INVALID_FORMAT", "the CSV is empty")
    header, data = rows[0], rows[1:]
    if len(header) > MAX_COLUMNS:
        raise _error(400, "HEADER_LIMIT_EXCEEDED", "more than 200 columns")
    if len(data) > MAX_ROWS:
        raise _error(400, "LIMIT_EXCEEDED", "more than 25000 records in the file", limit=MAX_ROWS)
    mappings = resource.get("field_mappings")
    if mappings is None:
        mappings = [{"api_name": name.split(".")[0], "index": i,
                     **({"find_by": name.split(".", 1)[1]} if "." in name else {})}
                    for i, name in enumerate(header)]
    if not isinstance(mappings, list) or len(mappings) > MAX_COLUMNS:
        raise _error(400, "HEADER_LIMIT_EXCEEDED", "more than 200 fields mapped")
    clean_mappings = []
    for m in mappings:
        if not isinstance(m, dict) or m.get("api_name") not in fields or fields[m["api_name"]]["read_only"]:
            raise _error(400, "INVALID_FIELD", "the field given seems to be invalid",
                         api_name=m.get("api_name") if isinstance(m, dict) else None)
        index = m.get("index")
        if index is not None and (not isinstance(index, int) or not 0 <= index < len(header)):
            raise _error(400, "COLUMN_INDEX_NOT_FOUND", "the column index given is not in the file", index=index)
        if index is None and not m.get("default_value"):
            raise _error(400, "MANDATORY_NOT_FOUND", "index or default_value is required", api_name=m["api_name"])
        if fields[m["api_name"]]["data_type"] == "lookup" and not m.get("find_by"):
            raise _error(400, "MANDATORY_NOT_FOUND", "Required key find_by is not available",
                         api_name=m["api_name"])
        clean_mappings.append({"api_name": m["api_name"], "index": index, "format": m.get("format"),
                               "find_by": m.get("find_by"), "default_value": m.get("default_value")})
    if operation != "update":
        mapped = {m["api_name"] for m in clean_mappings}
        missing = [n for n, f in fields.items() if f["system_mandatory"] and n not in mapped]
        if missing:
            raise _error(400, "MANDATORY_FIELDS_NOT_MAPPED", "mandatory fields are not mapped", api_names=missing)
    call.charge(JOB_COST)
    job_id = call.org.new_id()
    me = call.org.user_ref(call.user_id)
    job = {
        "id": job_id, "operation": operation, "status": "ADDED", "character_encoding": "UTF-8",
        "created_by": {"id": me["id"], "name": me["name"]}, "created_time": zoho_time(call.emulator.clock.now()),
        "ignore_empty": bool(body.get("ignore_empty", False)), "callback": body.get("callback"),
        "user_id": call.user_id, "file_id": file_id,
        "resource": [{"status": "ADDED", "type": "data", "code": None,
                      "module": {"api_name": module, "id": None}, "find_by": find_by,
                      "field_mappings": clean_mappings,
                      "file": {"status": "ADDED", "name": csv_name, "added_count": 0, "skipped_count": 0,
                               "updated_count": 0, "total_count": len(data)}}],
        "result": None,
    }
    with call.org.transaction() as tx:
        tx.apply(["bjob", job_id, job])
    task = asyncio.get_running_loop().create_task(_run_job(call.emulator, job_id))
    call.emulator.background.add(task)
    task.add_done_callback(call.emulator.background.discard)
    return json_response({"status": "success", "code": "SUCCESS", "message": "success",
                          "details": {"id": job_id, "created_by": job["created_by"]}}, 201)


# ---- run ---------------------------------------------------------------------------------------

def _to_value(field: dict[str, Any], raw: str, mapping: dict[str, Any], emulator: Emulator) -> Any:
    data_type = field["data_type"]
    if data_type == "integer":
        return int(raw) if raw.lstrip("-").isdigit() else raw
    if data_type in ("double", "currency", "percent"):
        try:
            return float(raw)
        except ValueError:
            return raw
    if data_type == "boolean":
        return {"true": True, "false": False}.get(raw.lower(), raw)
    if data_type == "multiselectpicklist":
        return [v.strip() for v in raw.split(";") if v.strip()]
    if data_type in ("date", "datetime"):
        fmt = mapping.get("format") or ("%m/%d/%Y" if data_type == "date" else "%m/%d/%Y %H:%M:%S")
        fmt = fmt.replace("MM", "%m").replace("dd", "%d").replace("yyyy", "%Y").replace("HH", "%H") \
            .replace("mm", "%M").replace("ss", "%S") if "%" not in fmt else fmt
        try:
            parsed = datetime.strptime(raw, fmt)
        except ValueError:
            return raw
        return parsed.strftime("%Y-%m-%d") if data_type == "date" else parsed.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    if data_type in ("lookup", "ownerlookup", "userlookup"):
        find_by = mapping.get("find_by") or "id"
        if find_by == "id":
            return {"id": raw}
        if data_type != "lookup":
            user = next((u for u in emulator.org.state.users.values()
                         if str(u.get(find_by, "")).lower() == raw.lower()), None)
            return {"id": user["id"] if user else "0"}
        target = field["lookup_module"]
        match = next((r["id"] for r in emulator.org.state.records.get(target, {}).values()
                      if str(r.get(find_by, "")).lower() == raw.lower()), "0")
        return {"id": match}
    return raw


def _row_payload(job: dict[str, Any], row: list[str], fields: dict[str, dict[str, Any]],
                 emulator: Emulator) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for mapping in job["resource"][0]["field_mappings"]:
        index = mapping["index"]
        raw = row[index].strip() if index is not None and index < len(row) else ""
        if raw == "" and mapping.get("default_value"):
            raw = str(mapping["default_value"].get("value", ""))
        if raw == "":
            if not job["ignore_empty"]:
                payload[mapping["api_name"]] = None
            continue
        payload[mapping["api_name"]] = _to_value(fields[mapping["api_name"]], raw, mapping, emulator)
    return payload


def _error_text(error: RecordError) -> str:
    """``<CODE>-<field>``, several joined by ``:``, as in Zoho's result CSV."""
    body = error.body
    errors = body["details"].get("errors") or [body]
    return ":".join(f"{e['code']}-{e['details'].get('api_name', '')}" for e in errors)


def _process_row(emulator: Emulator, tx: Any, job: dict[str, Any], module: str, row: list[str],
                 fields: dict[str, dict[str, Any]], line: int) -> tuple[str, str, str]:
    org = emulator.org
    operation = job["operation"]
    find_by = job["resource"][0]["find_by"]
    payload = _row_payload(job, row, fields, emulator)
    match = None
    if find_by:
        key = payload.get(find_by)
        if find_by == "id":
            key_index = next((m["index"] for m in job["resource"][0]["field_mappings"] if m["api_name"] == "id"),
                             None)
            key = row[key_index] if key_index is not None else None
            match = key if key in org.state.records.get(module, {}) else None
        elif isinstance(key, str | int | float) and key != "":
            match = org.find_first(module, find_by, key)
    try:
        if operation == "insert" and match is not None:
            return match, "skipped", f"DUPLICATE_DATA-{find_by}"
        if operation == "update" and match is None:
            return "", "skipped", f"RESOURCE_NOT_FOUND-{find_by}"
        if match is not None:
            record = org.update(tx, module, match, payload, line, job["user_id"])
            return record["id"], "updated", ""
        record = org.insert(tx, module, payload, line, job["user_id"])
        return record["id"], "added", ""
    except RecordError as error:
        return "", "skipped", _error_text(error)


async def _run_job(emulator: Emulator, job_id: str) -> None:
    if emulator.bulk_lock is None:
        emulator.bulk_lock = asyncio.Lock()
    async with emulator.bulk_lock:
        await asyncio.sleep(0.05)
        org = emulator.org
        job = _copy(org.state.bulk_jobs[job_id])
        resource = job["resource"][0]
        module = resource["module"]["api_name"]
        _set_status(emulator, job, "IN PROGRESS")
        try:
            _, rows = _read_csv(emulator, job["file_id"])
        except (OSError, zipfile.BadZipFile, ApiError):
            _set_status(emulator, job, "FAILED")
            return
        header, data = rows[0], rows[1:]
        knob = _knob()
        if knob is not None and knob[0] != "refuse":
            data = data[:knob[1]]
        fields = org.fields(module)
        results: list[list[str]] = []
        counts = resource["file"]
        for start in range(0, len(data), CHUNK_ROWS):
            with org.transaction() as tx:
                for offset, row in enumerate(data[start:start + CHUNK_ROWS]):
                    record_id, status, errors = _process_row(emulator, tx, job, module, row, fields,
                                                             start + offset)
                    results.append(row[:3] + [record_id, status, errors])
                    counts[{"added": "added_count", "updated": "updated_count",
                            "skipped": "skipped_count"}[status]] += 1
            await asyncio.sleep(0)
        if knob is not None and knob[0] != "refuse":
            if knob[0] == "fail":
                _set_status(emulator, job, "FAILED")
            else:  # "stall": the counts move, the status never leaves IN PROGRESS
                _set_status(emulator, job, "IN PROGRESS")
            return
        _write_result(emulator, job, header, results)
        resource["code"] = "SUCCESS"
        job["result"] = {"download_url": f"/v8/crm/{org.state.org['domain_name']}/bulk-write/{job_id}/{job_id}.zip"}
        _set_status(emulator, job, "COMPLETED")


def _copy(job: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(job)


def _set_status(emulator: Emulator, job: dict[str, Any], status: str) -> None:
    job["status"] = status
    job["resource"][0]["status"] = status
    job["resource"][0]["file"]["status"] = status
    with emulator.org.transaction() as tx:
        tx.apply(["bjob", job["id"], _copy(job)])


def _write_result(emulator: Emulator, job: dict[str, Any], header: list[str], results: list[list[str]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header[:3] + ["ID", "STATUS", "ERRORS"])
    writer.writerows(results)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{job['id']}.csv", text.getvalue())
    path = emulator.org.store.file_path(f"bulk-result-{job['id']}.zip")
    tmp = path.with_suffix(".part")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


def fail_interrupted_jobs(emulator: Emulator) -> None:
    for job in list(emulator.org.state.bulk_jobs.values()):
        if job["status"] in ("ADDED", "IN PROGRESS"):
            _set_status(emulator, _copy(job), "FAILED")


# ---- poll and download ---------------------------------------------------------------------------

_PRIVATE = ("user_id", "file_id", "ignore_empty")


@api("/crm/bulk/v8/write/{job_id}")
async def get_job(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.bulk.ALL", "ZohoCRM.bulk.READ")
    call.charge(1)
    job = call.org.state.bulk_jobs.get(request.path_params["job_id"])
    if job is None:
        raise _error(404, "RESOURCE_NOT_FOUND", "the requested resource is not found",
                     id=request.path_params["job_id"])
    return json_response({k: v for k, v in job.items() if k not in _PRIVATE})


@api("/v8/crm/{org}/bulk-write/{job_id}/{name}")
async def download_result(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.bulk.ALL", "ZohoCRM.bulk.READ")
    call.charge(1)
    job_id = request.path_params["job_id"]
    job = call.org.state.bulk_jobs.get(job_id)
    path = call.org.store.file_path(f"bulk-result-{job_id}.zip")
    if job is None or job["status"] != "COMPLETED" or not path.exists():
        raise _error(404, "RESOURCE_NOT_FOUND", "the requested resource is not found", id=job_id)
    return Response(path.read_bytes(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'})


ROUTES = [
    Route("/crm/v8/upload", upload_file, methods=["POST"]),
    Route("/crm/bulk/v8/write", create_job, methods=["POST"]),
    Route("/crm/bulk/v8/write/{job_id}", get_job, methods=["GET"]),
    Route("/v8/crm/{org}/bulk-write/{job_id}/{name}", download_result, methods=["GET"]),
]
