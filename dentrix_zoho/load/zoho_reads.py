"""Reads the loader needs beyond the client's public calls: a parent's notes, and keyed pre-scans.

``ZohoClient`` has ``list_attachments`` but no per-parent notes listing; this goes through the
client's own transport (budget, retries, events) with the same path template Zoho documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dentrix_zoho.load.readback import ReadBack
from dentrix_zoho.zoho import ZohoClient, ZohoError, limits
from dentrix_zoho.zoho.transport import CallSpec, body_json

V8 = "/crm/v8"
STAMP_FIELDS = ("Modified_Time", "Modified_By")
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def list_parent_notes(client: ZohoClient, module: str, record_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.transport.call(CallSpec(
            method="GET",
            path_template=f"{V8}/{{module}}/{{record_id}}/Notes",
            path_params={"module": module, "record_id": str(record_id)},
            module="Notes",
            params={"fields": "Note_Title,Note_Content,Parent_Id", "page": page, "per_page": limits.RECORDS_PER_PAGE},
        ))
        if response.status_code == 204:
            return rows
        payload = body_json(response)
        if response.status_code >= 300:
            raise ZohoError(f"GET {V8}/{{module}}/{{record_id}}/Notes: HTTP {response.status_code}",
                            status=response.status_code, code=payload.get("code"))
        rows += payload.get("data") or []
        if not (payload.get("info") or {}).get("more_records"):
            return rows
        page += 1


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def existing_by_key(
    client: ZohoClient, module: str, key_field: str, extra_fields: Iterable[str], values: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Records whose ``key_field`` is one of ``values``, by COQL ``in`` (50 a call)."""
    fields = [key_field, *extra_fields]
    if not all(_API_NAME.match(f) for f in [module, *fields]):
        raise ValueError("module and fields must be API names")
    wanted = list(dict.fromkeys(values))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), limits.COQL_IN_VALUES_MAX):
        chunk = wanted[start : start + limits.COQL_IN_VALUES_MAX]
        query = (f"select id, {', '.join(fields)} from {module} where {key_field} in "
                 f"({', '.join(_quote(v) for v in chunk)}) limit {min(len(chunk) * 2, limits.COQL_LIMIT_MAX)}")
        for row in client.coql(query):
            if row.get(key_field) is not None:
                found[str(row[key_field])] = row
    return found


def scan_by_key(client: ZohoClient, module: str, key_field: str, extra_fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every record of the module that carries ``key_field``, keyed by it."""
    found: dict[str, dict[str, Any]] = {}
    for row in client.iter_records(module, [key_field, *extra_fields]):
        if row.get(key_field):
            found[str(row[key_field])] = row
    return found


def current_stamps(client: ZohoClient, module: str, zoho_ids: Iterable[str], *,
                   reader: ReadBack | None = None) -> dict[str, dict[str, Any]]:
    """``Modified_Time`` and ``Modified_By`` of records by id, for the human-edit checks.

    Multi-id GETs (``IDS_PER_GET`` ids a call, one credit, not a "complex" call) on worker threads,
    rather than COQL ``id in (...)``: 50 ids a call and held to the sub-concurrency of 10.
    """
    if not _API_NAME.match(module):
        raise ValueError("module must be an API name")
    wanted = [i for i in dict.fromkeys(str(z) for z in zoho_ids) if i.isdigit()]
    if not wanted:
        return {}
    return (reader or ReadBack(client)).read(module, wanted, STAMP_FIELDS)
