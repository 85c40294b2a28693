"""Per-record results of a write, shared by the record API and Bulk Write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Action = Literal["insert", "update"]

# Error-detail keys that describe the fault without repeating the value sent.
_SAFE_DETAIL_KEYS = (
    "api_name",
    "json_path",
    "expected_data_type",
    "maximum_length",
    "limit",
    "allowed_count",
    "resource_path_index",
    "param",
    "param_name",
    "index",
    "id",
    "more_records",
)


@dataclass(frozen=True)
class RecordOutcome:
    index: int  # position in the caller's input list
    ok: bool
    zoho_id: str | None = None
    action: Action | None = None
    code: str | None = None
    api_name: str | None = None  # the field at fault, when Zoho names one
    message: str | None = None
    uncertain: bool = False  # the write may have happened; reconcile before retrying
    details: dict[str, Any] = field(default_factory=dict)
    # What Zoho stamped on the record by this write: a later different value means someone else wrote.
    modified_time: str | None = None

    def at(self, index: int) -> RecordOutcome:
        return replace(self, index=index)


def safe_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keep the diagnostic keys of a Zoho error ``details`` and drop anything that holds data."""
    if not isinstance(details, Mapping):
        return {}
    kept: dict[str, Any] = {k: details[k] for k in _SAFE_DETAIL_KEYS if k in details}
    dup = details.get("duplicate_record")
    if isinstance(dup, Mapping):
        module = dup.get("module")
        kept["duplicate_record"] = {
            "id": dup.get("id"),
            "module": module.get("api_name") if isinstance(module, Mapping) else module,
        }
    errors = details.get("errors")
    if isinstance(errors, list):
        kept["errors"] = [
            {"code": e.get("code"), **safe_details(e.get("details"))}
            for e in errors
            if isinstance(e, Mapping)
        ]
    return kept


def _first_api_name(details: Mapping[str, Any]) -> str | None:
    if isinstance(details.get("api_name"), str):
        return details["api_name"]
    for err in details.get("errors") or ():
        if isinstance(err, Mapping) and isinstance(err.get("api_name"), str):
            return err["api_name"]
    return None


def parse_record_result(index: int, item: Mapping[str, Any], default_action: Action | None) -> RecordOutcome:
    """One element of a write response's ``data[]``."""
    details = item.get("details") if isinstance(item.get("details"), Mapping) else {}
    status = str(item.get("status", "")).lower()
    code = item.get("code")
    if status == "success":
        action = item.get("action") or default_action
        return RecordOutcome(
            index=index,
            ok=True,
            zoho_id=str(details["id"]) if details.get("id") is not None else None,
            action=action if action in ("insert", "update") else default_action,
            code=code,
            message=item.get("message"),
            details={k: details[k] for k in ("id",) if k in details}
            | ({"duplicate_field": item["duplicate_field"]} if item.get("duplicate_field") else {}),
            modified_time=str(details["Modified_Time"]) if details.get("Modified_Time") else None,
        )
    kept = safe_details(details)
    return RecordOutcome(
        index=index,
        ok=False,
        code=code or "UNKNOWN_ERROR",
        api_name=_first_api_name(kept),
        message=item.get("message"),
        details=kept,
    )


def parse_write_response(
    indices: Sequence[int], payload: Mapping[str, Any], default_action: Action | None
) -> list[RecordOutcome] | None:
    """Outcomes for a batch, or ``None`` when the body is not a per-record ``data[]`` of the right length."""
    data = payload.get("data")
    if not isinstance(data, list) or len(data) != len(indices):
        return None
    return [
        parse_record_result(i, item if isinstance(item, Mapping) else {}, default_action)
        for i, item in zip(indices, data, strict=True)
    ]


def batch_error(index: int, payload: Mapping[str, Any], status: int | None) -> RecordOutcome:
    """A request-level error body attributed to the one record of a single-record batch."""
    details = safe_details(payload.get("details"))
    return RecordOutcome(
        index=index,
        ok=False,
        code=str(payload.get("code") or f"HTTP_{status}"),
        api_name=_first_api_name(details),
        message=payload.get("message"),
        details=details | ({"http_status": status} if status else {}),
    )


def uncertain(index: int, reason: str) -> RecordOutcome:
    return RecordOutcome(index=index, ok=False, code="UNCERTAIN_OUTCOME", message=reason, uncertain=True)
