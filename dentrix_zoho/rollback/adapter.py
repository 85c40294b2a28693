"""``ZohoRollbackWriter``: the rollback's ``RollbackWriter`` over ``ZohoClient``.

Reads for the human-edit check that need only the stamps go as multi-id list calls
(``GET /{module}?ids=…&fields=Modified_Time,Modified_By``, ``load.readback``). Reads for a restore
go the same way (100 ids a call, 50 fields a group), except in a module with fields only
``GET /{module}/{id}`` returns (a subform, a multi-select lookup: every record is read whole by id)
and for a record whose pre-image holds a rich text longer than lists show. The list calls ask
for every field a list shows (the module's metadata, read once), since a restore must also see,
to empty them, the fields the migration set that the pre-image does not name; without pre-images
to go by (``expected`` not given) every record is read whole, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dentrix_zoho.load.readback import ReadBack, run_concurrently
from dentrix_zoho.rollback.writer import WriteOutcome
from dentrix_zoho.zoho import OrgLimitsUnavailable, RecordOutcome, ZohoClient, ZohoError

log = logging.getLogger(__name__)

V8 = "/crm/v8"
STAMP_FIELDS: frozenset[str] = frozenset({"Modified_Time", "Modified_By"})


class ZohoRollbackWriter:
    """Adapts ``ZohoClient`` to ``RollbackWriter``; the client's budget, retries and event sink apply."""

    def __init__(self, client: ZohoClient) -> None:
        self.client = client
        self.fetch_calls = 0
        self._readback: ReadBack | None = None  # one per rollback: it keeps each module's field types

    # -- RollbackWriter ------------------------------------------------------------

    def fetch(self, module: str, ids: Sequence[str], fields: Sequence[str], *,
              expected: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Mapping[str, Any]]:
        wanted = list(dict.fromkeys(str(zoho_id) for zoho_id in ids))
        if not wanted:
            return {}
        names = sorted(set(fields) - {"id"})
        if set(names) <= STAMP_FIELDS:
            reader = ReadBack(self.client)
            found = dict(reader.read(module, wanted, names))
            self.fetch_calls += reader.stats.calls
            return found
        if expected is None:
            # Whole records, one GET by id each (on worker threads within the concurrency).
            records = run_concurrently([(lambda i=zoho_id: self.client.get(module, i)) for zoho_id in wanted],
                                       self.client.config.concurrency, "rollback-read")
            self.fetch_calls += len(wanted)
            return {zoho_id: record for zoho_id, record in zip(wanted, records, strict=True) if record is not None}
        reader = self._reader()
        before = reader.stats.calls
        if reader.by_id_only_fields(module):
            # A module with subforms: every record whole, since rows the migration added to a record whose
            # pre-image holds none must be seen (and emptied) too.
            whole = dict.fromkeys(wanted, "subform")
        else:
            whole = {zoho_id: reason for zoho_id in wanted
                     if (reason := reader.needs_get_by_id(module, expected.get(zoho_id, {}))) is not None}
        # Every field a list shows, not only the pre-images': a restore empties what the migration set
        # on a record that did not have it before (``rollback.records.restore_payload``).
        names = sorted(set(names) | reader.list_fields(module))
        found = dict(reader.read(module, wanted, names, whole=whole))
        # The module's field metadata is the client's cached read (the service reads it for the read-only
        # fields before the first step), like the current user's: outside the plan's count.
        self.fetch_calls += reader.stats.calls - before
        return found

    def _reader(self) -> ReadBack:
        if self._readback is None:
            self._readback = ReadBack(self.client)
        return self._readback

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
            except OrgLimitsUnavailable:
                raise  # never asked Zoho: not a module without metadata
            except ZohoError as exc:
                log.warning("rollback: no field metadata for %s (%s); sending every pre-image field", module, exc.code)
                continue
            result[module] = frozenset(
                str(f["api_name"])
                for f in fields
                if f.get("api_name") and (f.get("read_only") or f.get("field_read_only"))
            )
        return result


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
