"""``ZohoRollbackWriter``: the rollback's ``RollbackWriter`` over ``ZohoClient``.

Reads for the human-edit check that need only the stamps go as one list call
(``GET /{module}?ids=…&fields=Modified_Time,Modified_By``). Reads for a restore
fetch whole records by id: only ``GET /{module}/{id}`` returns subforms, and
putting a record back means seeing every field the migration may have set,
including fields the pre-image does not name.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from dentrix_zoho.rollback.writer import WriteOutcome
from dentrix_zoho.zoho import RecordOutcome, ZohoClient, ZohoError, limits
from dentrix_zoho.zoho.transport import CallSpec, body_json, http_error

log = logging.getLogger(__name__)

V8 = "/crm/v8"
STAMP_FIELDS: frozenset[str] = frozenset({"Modified_Time", "Modified_By"})


class ZohoRollbackWriter:
    """Adapts ``ZohoClient`` to ``RollbackWriter``; the client's budget, retries and event sink apply."""

    def __init__(self, client: ZohoClient) -> None:
        self.client = client

    # -- RollbackWriter ------------------------------------------------------------

    def fetch(self, module: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        wanted = list(dict.fromkeys(str(zoho_id) for zoho_id in ids))
        if not wanted:
            return {}
        if set(fields) - {"id"} <= STAMP_FIELDS:
            return self._list_by_ids(module, wanted, sorted(set(fields) - {"id"}))
        found: dict[str, Mapping[str, Any]] = {}
        for zoho_id in wanted:
            record = self.client.get(module, zoho_id)
            if record is not None:
                found[zoho_id] = record
        return found

    def delete(self, module: str, ids: Sequence[str]) -> list[WriteOutcome]:
        keys = [str(zoho_id) for zoho_id in ids]
        return _by_position(keys, self.client.delete(module, keys))

    def update(self, module: str, records: Sequence[Mapping[str, Any]]) -> list[WriteOutcome]:
        # trigger=[]: a restore must not fire workflows, approvals or blueprints.
        keys = [str(record["id"]) for record in records]
        return _by_position(keys, self.client.update(module, records, trigger=[]))

    def delete_attachment(self, parent_module: str, parent_id: str, attachment_id: str) -> WriteOutcome:
        outcome = self.client.delete_attachment(parent_module, parent_id, attachment_id)
        return _convert(str(attachment_id), outcome)

    # -- what the rollback needs to know about the org -----------------------------

    def current_user_id(self) -> str | None:
        """The Zoho user this client writes as: records last modified by anyone else were edited by a person."""
        users = self.client.users("CurrentUser")
        return str(users[0]["id"]) if users and users[0].get("id") is not None else None

    def read_only_fields(self, modules: Iterable[str]) -> dict[str, frozenset[str]]:
        """Per module, the fields Zoho will not take in an update (never sent in a restore)."""
        result: dict[str, frozenset[str]] = {}
        for module in modules:
            try:
                fields = self.client.fields(module)
            except ZohoError as exc:
                log.warning("rollback: no field metadata for %s (%s); sending every pre-image field", module, exc.code)
                continue
            result[module] = frozenset(
                str(f["api_name"])
                for f in fields
                if f.get("api_name") and (f.get("read_only") or f.get("field_read_only"))
            )
        return result

    # -- internals -----------------------------------------------------------------

    def _list_by_ids(self, module: str, ids: Sequence[str], fields: Collection[str]) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        for start in range(0, len(ids), limits.IDS_PER_DELETE):
            chunk = ids[start : start + limits.IDS_PER_DELETE]
            response = self.client.transport.call(
                CallSpec(
                    method="GET",
                    path_template=f"{V8}/{{module}}",
                    path_params={"module": module},
                    module=module,
                    params={"ids": ",".join(chunk), "fields": ",".join(fields), "per_page": limits.RECORDS_PER_PAGE},
                    record_count=len(chunk),
                )
            )
            if response.status_code == 204:  # none of them exists any more
                continue
            if response.status_code >= 300:
                raise http_error("GET", f"{V8}/{{module}}", response)
            for row in body_json(response).get("data") or []:
                if row.get("id") is not None:
                    found[str(row["id"])] = row
        return found


def _by_position(keys: Sequence[str], outcomes: Sequence[RecordOutcome]) -> list[WriteOutcome]:
    # A failed record's outcome carries no id: its position in the call names it.
    return [_convert(keys[outcome.index], outcome) for outcome in outcomes if 0 <= outcome.index < len(keys)]


def _convert(zoho_id: str, outcome: RecordOutcome) -> WriteOutcome:
    status = outcome.details.get("http_status")
    return WriteOutcome(
        zoho_id=zoho_id,
        ok=outcome.ok,
        code=outcome.code or ("SUCCESS" if outcome.ok else "UNKNOWN_ERROR"),
        http_status=status if isinstance(status, int) else None,
        modified_time=_text(outcome.details.get("Modified_Time")),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
