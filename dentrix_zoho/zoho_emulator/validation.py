"""Per-record validation from field metadata, producing Zoho's per-record error objects (https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html, https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Protocol

from .metadata import RECORD_MODULES, WHAT_ID_MODULES

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Zoho documents ``yyyy-MM-ddTHH:mm:ss±HH:mm``; we require the offset form (no ``Z``).
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[0-9()\-.\s/xX#*]*[0-9][0-9()\-.\s/xX#*]*$")
_WEBSITE = re.compile(r"^(https?://)?[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+(/\S*)?$")
_CALL_DURATION = re.compile(r"^\d{1,4}:\d{2}$")
PARTICIPANT_TYPES = ("lead", "contact", "user", "email")
PARTICIPANT_MODULES = {"lead": "Leads", "contact": "Contacts"}
MAX_PARTICIPANTS = 50
MAX_SUBFORM_ROWS = 100


class RecordError(Exception):
    """One record's failure, already in Zoho's per-record shape."""

    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(code)
        self.body: dict[str, Any] = {"code": code, "details": details, "message": message, "status": "error"}


class Lookups(Protocol):
    def record_name(self, module: str, record_id: str) -> str | None: ...
    def active_user(self, user_id: str) -> dict[str, Any] | None: ...
    def new_id(self) -> str: ...
    def external_id(self, module: str, value: dict[str, Any]) -> str | None: ...


def invalid(api_name: str, path: str, **extra: Any) -> RecordError:
    return RecordError("INVALID_DATA", "invalid data", {"api_name": api_name, "json_path": path, **extra})


def _expect(field: dict[str, Any], path: str, expected: str | None = None) -> RecordError:
    return invalid(field["api_name"], path, expected_data_type=expected or field["data_type"])


def _too_long(field: dict[str, Any], path: str, limit: int) -> RecordError:
    return invalid(field["api_name"], path, maximum_length=limit)


def _string(field: dict[str, Any], value: Any, path: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        raise _expect(field, path)
    limit = field.get("length")
    if limit and len(value) > limit:
        raise _too_long(field, path, limit)
    if pattern is not None and value and not pattern.match(value):
        raise _expect(field, path)
    return value


def _text(field: dict[str, Any], value: Any, path: str, ctx: Lookups, payload: dict[str, Any],
          existing: dict[str, Any] | None) -> Any:
    if field["api_name"] == "Call_Duration":
        return _string(field, value, path, _CALL_DURATION)
    return _string(field, value, path)


def _pattern(pattern: re.Pattern[str]) -> Callable[..., Any]:
    def check(field: dict[str, Any], value: Any, path: str, *_: Any) -> Any:
        return _string(field, value, path, pattern)
    return check


def _date(field: dict[str, Any], value: Any, path: str, *_: Any) -> Any:
    if not isinstance(value, str) or not _DATE.match(value):
        raise _expect(field, path)
    try:
        date.fromisoformat(value)
    except ValueError:
        raise _expect(field, path) from None
    return value


def _datetime(field: dict[str, Any], value: Any, path: str, *_: Any) -> Any:
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise _expect(field, path)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise _expect(field, path) from None
    return value


def _digits_before_point(value: float | int) -> int:
    return len(str(int(abs(value))))


def _integer(field: dict[str, Any], value: Any, path: str, *_: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _expect(field, path)
    limit = field.get("length") or 9
    if _digits_before_point(value) > limit:
        raise _too_long(field, path, limit)
    return value


def _bigint(field: dict[str, Any], value: Any, path: str, *_: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
        raise _expect(field, path)
    limit = field.get("length") or 18
    if len(str(value).lstrip("-")) > limit:
        raise _too_long(field, path, limit)
    return str(value)


def _decimal(field: dict[str, Any], value: Any, path: str, *_: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _expect(field, path)
    limit = field.get("length") or 16
    if _digits_before_point(value) > limit:
        raise _too_long(field, path, limit)
    return value


def _boolean(field: dict[str, Any], value: Any, path: str, *_: Any) -> Any:
    if not isinstance(value, bool):
        raise _expect(field, path)
    return value


def _picklist(field: dict[str, Any], value: Any, path: str, *_: Any) -> Any:
    if not isinstance(value, str):
        raise _expect(field, path)
    if value not in field["_values"]:
        raise invalid(field["api_name"], path)
    return value


def _multiselect(field: dict[str, Any], value: Any, path: str, ctx: Lookups, payload: dict[str, Any],
                 existing: dict[str, Any] | None) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _expect(field, path)
    for item in value:
        if item not in field["_values"]:
            raise invalid(field["api_name"], path)
    append = (payload.get("$append_values") or {}).get(field["api_name"])
    if append and existing and existing.get(field["api_name"]):
        merged = list(existing[field["api_name"]])
        return merged + [v for v in value if v not in merged]
    return list(dict.fromkeys(value))


def _lookup_id(field: dict[str, Any], value: Any, path: str) -> str:
    if not isinstance(value, dict):
        raise _expect(field, path, "jsonobject")
    raw = value.get("id")
    if isinstance(raw, bool) or not isinstance(raw, str | int) or not str(raw).isdigit():
        raise invalid(field["api_name"], f"{path}.id")
    return str(raw)


def _related_missing(field: dict[str, Any], path: str) -> RecordError:
    return RecordError("INVALID_DATA", "the related id given seems to be invalid",
                       {"api_name": field["api_name"], "json_path": path})


def _lookup(field: dict[str, Any], value: Any, path: str, ctx: Lookups, payload: dict[str, Any],
            existing: dict[str, Any] | None) -> Any:
    target = field["lookup_module"]
    external = ctx.external_id(target, value) if isinstance(value, dict) and "id" not in value else None
    record_id = external if external is not None else _lookup_id(field, value, path)
    if target == "$se_module":
        target = payload.get("$se_module") or (existing or {}).get("$se_module")
        if target is None:
            raise RecordError("MANDATORY_NOT_FOUND", "required field not found",
                              {"api_name": "$se_module", "json_path": path.rsplit(".", 1)[0] + ".$se_module"})
        if target not in WHAT_ID_MODULES:
            raise invalid("$se_module", path.rsplit(".", 1)[0] + ".$se_module")
    name = ctx.record_name(target, record_id)
    if name is None:
        raise _related_missing(field, path)
    return {"name": name, "id": record_id}


def _user(field: dict[str, Any], value: Any, path: str, ctx: Lookups, *_: Any) -> Any:
    user_id = _lookup_id(field, value, path)
    user = ctx.active_user(user_id)
    if user is None:
        raise _related_missing(field, path)
    return {"name": user["full_name"], "id": user_id, "email": user["email"]}


def _participants(field: dict[str, Any], value: Any, path: str, ctx: Lookups, *_: Any) -> Any:
    if not isinstance(value, list):
        raise _expect(field, path, "jsonarray")
    if len(value) > MAX_PARTICIPANTS:
        raise RecordError("LIMIT_EXCEEDED", "the given data exceeds the limit",
                          {"api_name": field["api_name"], "json_path": path, "limit": MAX_PARTICIPANTS})
    out = []
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        if not isinstance(item, dict) or item.get("type") not in PARTICIPANT_TYPES:
            raise invalid(field["api_name"], item_path)
        kind = item["type"]
        if kind == "email":
            email = item.get("Email") or item.get("participant")
            if not isinstance(email, str) or not _EMAIL.match(email):
                raise invalid(field["api_name"], item_path)
            out.append({"type": "email", "Email": email, "participant": email})
            continue
        pid = item.get("participant")
        if not isinstance(pid, str | int) or not str(pid).isdigit():
            raise invalid(field["api_name"], item_path)
        if kind == "user":
            user = ctx.active_user(str(pid))
            name = user["full_name"] if user else None
        else:
            name = ctx.record_name(PARTICIPANT_MODULES[kind], str(pid))
        if name is None:
            raise _related_missing(field, item_path)
        out.append({"type": kind, "participant": str(pid), "name": name})
    return out


def _parent_id(field: dict[str, Any], value: Any, path: str, ctx: Lookups, *_: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("module"), dict):
        raise _expect(field, path, "jsonobject")
    module = value["module"].get("api_name")
    record_id = _lookup_id(field, value, path)
    if module not in RECORD_MODULES or module == "Notes":
        raise invalid(field["api_name"], f"{path}.module")
    name = ctx.record_name(module, record_id)
    if name is None:
        raise _related_missing(field, path)
    return {"module": {"api_name": module}, "name": name, "id": record_id}


def _subform(field: dict[str, Any], value: Any, path: str, ctx: Lookups, payload: dict[str, Any],
             existing: dict[str, Any] | None) -> Any:
    """Rows without id are appended, ``{"id", "_delete": null}`` removes one, ``[]`` wipes all ("Subforms" in the v8 docs)."""
    if not isinstance(value, list):
        raise _expect(field, path, "jsonarray")
    rows: list[dict[str, Any]] = [dict(r) for r in (existing or {}).get(field["api_name"]) or []]
    if not value:
        return []
    row_fields = {f["api_name"]: f for f in field["subform_fields"]}
    for i, row in enumerate(value):
        row_path = f"{path}[{i}]"
        if not isinstance(row, dict):
            raise _expect(field, row_path, "jsonobject")
        row_id = row.get("id")
        target = None
        if row_id is not None:
            target = next((r for r in rows if r["id"] == str(row_id)), None)
            if target is None:
                raise invalid(field["api_name"], f"{row_path}.id")
            if "_delete" in row:
                rows.remove(target)
                continue
        clean: dict[str, Any] = target if target is not None else {"id": ctx.new_id()}
        for key, item in row.items():
            sub = row_fields.get(key)
            if sub is None or item is None:
                if sub is not None:
                    clean[key] = None
                continue
            clean[key] = VALIDATORS[sub["data_type"]](sub, item, f"{row_path}.{key}", ctx, row, None)
        if target is None:
            rows.append(clean)
    if len(rows) > MAX_SUBFORM_ROWS:
        raise RecordError("LIMIT_EXCEEDED", "the given data exceeds the limit",
                          {"api_name": field["api_name"], "json_path": path, "limit": MAX_SUBFORM_ROWS})
    return rows


Validator = Callable[[dict[str, Any], Any, str, Lookups, dict[str, Any], dict[str, Any] | None], Any]
VALIDATORS: dict[str, Validator] = {
    "text": _text, "textarea": _text, "autonumber": _text,
    "email": _pattern(_EMAIL), "phone": _pattern(_PHONE), "website": _pattern(_WEBSITE),
    "date": _date, "datetime": _datetime, "integer": _integer, "bigint": _bigint,
    "double": _decimal, "currency": _decimal, "percent": _decimal, "boolean": _boolean,
    "picklist": _picklist, "multiselectpicklist": _multiselect, "lookup": _lookup,
    "ownerlookup": _user, "userlookup": _user, "participants": _participants,
    "parent_id": _parent_id, "subform": _subform,
}


def validate_record(payload: dict[str, Any], fields: dict[str, dict[str, Any]], index: int, ctx: Lookups,
                    existing: dict[str, Any] | None, mandatory: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Return the cleaned values to store; raise :class:`RecordError` for the first problem.

    Mandatory fields are checked first (on insert: absent or empty; on update: set to null/empty),
    then each supplied field in payload order. Unknown keys and read-only fields are ignored, as Zoho
    does.
    """
    prefix = f"$.data[{index}]."
    if mandatory is None:
        mandatory = tuple(n for n, f in fields.items() if f["system_mandatory"])
    for name in mandatory:
        if existing is None:
            missing = payload.get(name) in (None, "", [])
        else:
            missing = name in payload and payload[name] in (None, "", [])
        if missing:
            raise RecordError("MANDATORY_NOT_FOUND", "required field not found",
                              {"api_name": name, "json_path": prefix + name})
    clean: dict[str, Any] = {}
    for key, value in payload.items():
        field = fields.get(key)
        if field is None or field["read_only"]:
            continue
        if value is None:
            clean[key] = None
            continue
        clean[key] = VALIDATORS[field["data_type"]](field, value, prefix + key, ctx, payload, existing)
    if "What_Id" in clean and clean["What_Id"] is not None:
        clean["$se_module"] = payload.get("$se_module") or (existing or {}).get("$se_module")
    return clean
