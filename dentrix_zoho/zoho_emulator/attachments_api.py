"""Attachments: multipart upload to ``/{module}/{id}/Attachments``, list, download, delete ("Attachments" in the v8 docs; crm-oas v8.0).

The file is written to ``<data-dir>/files/<attachment id>`` before its record is journaled, so a crash
leaves at most an unreferenced file, never a record without its bytes.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import Call, api, json_response, no_content
from .engine import zoho_time
from .errors import ApiError, required_param
from .records_api import _parent, paginate, requested_fields, sorted_rows, success

MB = 1024 * 1024


def _too_large(limit_mb: int) -> ApiError:
    return ApiError(400, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE", "file size is more than allowed size",
                    {"allowed_size_in_bytes": limit_mb * MB, "allowed_size_in_mb": limit_mb})


def _attachment(call: Call, parent: dict[str, Any], name: str, size: int, digest: str | None,
                link: str | None, attachment_id: str) -> dict[str, Any]:
    now = zoho_time(call.emulator.clock.now())
    me = call.org.user_ref(call.user_id)
    module = parent["module"]["api_name"]
    return {
        "id": attachment_id, "File_Name": name, "Size": str(size), "$se_module": module,
        "Parent_Id": {"module": {"api_name": module}, "name": call.org.record_name(module, parent["id"]),
                      "id": parent["id"]},
        "$type": "Link URL" if link else "Attachment", "$link_url": link, "$file_id": attachment_id,
        "$sha256": digest, "$editable": True, "Owner": me, "Created_By": me, "Modified_By": me,
        "Created_Time": now, "Modified_Time": now,
    }


@api("/crm/v8/{module}/{record_id}/Attachments", write=True)
async def upload_attachment(request: Request, call: Call) -> Response:
    parent = _parent(call)
    call.require_module("Attachments", "CREATE")
    call.require_module(parent["module"]["api_name"], "READ")
    limit_mb = call.emulator.config.max_attachment_mb
    declared = request.headers.get("content-length")
    # A request far over the limit is refused before it is read (multipart overhead allowed).
    if declared and declared.isdigit() and int(declared) > limit_mb * MB + 64 * 1024:
        raise _too_large(limit_mb)
    form = await request.form(max_files=1, max_fields=10)
    call.charge(1)
    upload = form.get("file")
    link = form.get("attachmentUrl") or request.query_params.get("attachmentUrl")
    attachment_id = call.org.new_id()
    if isinstance(upload, UploadFile):
        content = await upload.read()
        if len(content) > limit_mb * MB:
            raise _too_large(limit_mb)
        path = call.org.store.file_path(attachment_id)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(content)
        os.replace(tmp, path)
        record = _attachment(call, parent, upload.filename or "attachment", len(content),
                             hashlib.sha256(content).hexdigest(), None, attachment_id)
    elif isinstance(link, str) and link:
        title = form.get("title") or request.query_params.get("title") or link
        record = _attachment(call, parent, str(title), 0, None, link, attachment_id)
    else:
        raise required_param("file")
    with call.org.transaction() as tx:
        tx.put("Attachments", record)
    result = success(record, "attachment uploaded successfully")
    return json_response({"data": [result]}, 200)


@api("/crm/v8/{module}/{record_id}/Attachments")
async def list_attachments(request: Request, call: Call) -> Response:
    parent = _parent(call)
    call.require_module("Attachments", "READ")
    names = requested_fields(call, "Attachments", required=False)
    call.charge(1)
    rows = [r for r in call.org.state.records.get("Attachments", {}).values()
            if r["Parent_Id"]["id"] == parent["id"]]
    if names is None:
        names = [k for k in ("File_Name", "Size", "Parent_Id", "$se_module", "$type", "$link_url", "$file_id",
                             "Owner", "Created_By", "Modified_By", "Created_Time", "Modified_Time")]
    ordered, sort_by, sort_order = sorted_rows(call, "Attachments", rows)
    return paginate(call, "Attachments", ordered, names, sort_by, sort_order)


def _own_attachment(call: Call, parent: dict[str, Any]) -> dict[str, Any]:
    record = call.org.state.records.get("Attachments", {}).get(call.request.path_params["attachment_id"])
    if record is None or record["Parent_Id"]["id"] != parent["id"]:
        raise ApiError(400, "INVALID_DATA", "the id given seems to be invalid",
                       {"id": call.request.path_params["attachment_id"], "resource_path_index": 3})
    return record


@api("/crm/v8/{module}/{record_id}/Attachments/{attachment_id}")
async def download_attachment(request: Request, call: Call) -> Response:
    parent = _parent(call)
    call.require_module("Attachments", "READ")
    call.charge(1)
    record = _own_attachment(call, parent)
    path = call.org.store.file_path(record["id"])
    if record["$link_url"] or not path.exists():
        return no_content()
    name = record["File_Name"].replace('"', "")
    return Response(path.read_bytes(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@api("/crm/v8/{module}/{record_id}/Attachments/{attachment_id}", write=True)
async def delete_attachment(request: Request, call: Call) -> Response:
    parent = _parent(call)
    call.require_module("Attachments", "DELETE")
    call.charge(1)
    record = _own_attachment(call, parent)
    with call.org.transaction() as tx:
        tx.delete("Attachments", record["id"])
    call.org.store.file_path(record["id"]).unlink(missing_ok=True)
    return json_response({"data": [{"code": "SUCCESS", "details": {"id": record["id"]},
                                    "message": "record deleted", "status": "success"}]})


ROUTES = [
    Route("/crm/v8/{module}/{record_id}/Attachments", upload_attachment, methods=["POST"]),
    Route("/crm/v8/{module}/{record_id}/Attachments", list_attachments, methods=["GET"]),
    Route("/crm/v8/{module}/{record_id}/Attachments/{attachment_id}", download_attachment, methods=["GET"]),
    Route("/crm/v8/{module}/{record_id}/Attachments/{attachment_id}", delete_attachment, methods=["DELETE"]),
]
