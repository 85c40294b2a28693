"""Users, org and metadata routes: ``/users``, ``/org``, ``/settings/modules|fields|layouts`` (https://www.zoho.com/crm/developer/docs/api/v8/modules-api.html, https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .api import Call, api, json_response, no_content
from .config import CUSTOM_FIELD_LIMIT, SUBFORM_LIMIT
from .engine import Tx, module_id
from .errors import ApiError, invalid_module, invalid_param, limit_exceeded, required_param
from .metadata import (
    CUSTOM_FIELD_MODULES,
    CUSTOM_TYPES,
    LISTED_MODULES,
    MAX_UNIQUE_PER_MODULE,
    MODULE_LABELS,
    RECORD_MODULES,
    SUBFORM_ROW_TYPES,
    TEXTAREA_LENGTHS,
    api_name_from_label,
    field_public,
)
from .records_api import simple_page, write_response
from .validation import RecordError

MAX_FIELDS_PER_CALL = 5
RESERVED = {"id", "select", "from", "where", "limit", "offset", "and", "or", "order", "by", "group", "not",
            "null", "like", "in", "between", "is"}
USER_TYPES = ("AllUsers", "ActiveUsers", "DeactiveUsers", "ConfirmedUsers", "NotConfirmedUsers",
              "DeletedUsers", "ActiveConfirmedUsers", "AdminUsers", "ActiveConfirmedAdmins", "CurrentUser")


# ---- users and org ------------------------------------------------------------------------------

def _user_matches(kind: str, user: dict[str, Any], me: str) -> bool:
    active: bool = user["status"] == "active"
    admin: bool = user["profile"]["name"] == "Administrator"
    matches: dict[str, bool] = {
        "AllUsers": True, "ActiveUsers": active, "DeactiveUsers": not active, "ConfirmedUsers": True,
        "NotConfirmedUsers": False, "DeletedUsers": False, "ActiveConfirmedUsers": active,
        "AdminUsers": admin, "ActiveConfirmedAdmins": admin and active, "CurrentUser": user["id"] == me,
    }
    return matches[kind]


@api("/crm/v8/users")
async def list_users(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.users.READ", "ZohoCRM.users.ALL")
    call.charge(1)
    params = request.query_params
    kind = params.get("type", "AllUsers")
    if kind not in USER_TYPES:
        raise invalid_param("type")
    users = [u for u in call.org.state.users.values() if _user_matches(kind, u, call.user_id)]
    if params.get("ids"):
        wanted = {i.strip() for i in params["ids"].split(",")}
        users = [u for u in users if u["id"] in wanted]
    return simple_page(call, users, "users")


@api("/crm/v8/users/{user_id}")
async def get_user(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.users.READ", "ZohoCRM.users.ALL")
    call.charge(1)
    user = call.org.state.users.get(request.path_params["user_id"])
    if user is None:
        return no_content()
    return json_response({"users": [user]})


@api("/crm/v8/org")
async def get_org(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.org.READ", "ZohoCRM.org.ALL")
    call.charge(1)
    org = {k: v for k, v in call.org.state.org.items() if k != "id_prefix"}
    return json_response({"org": [org]})


# ---- modules and layouts ------------------------------------------------------------------------

def _module_public(name: str) -> dict[str, Any]:
    singular, plural = MODULE_LABELS[name]
    record_module = name in RECORD_MODULES
    return {"api_name": name, "module_name": name, "singular_label": singular, "plural_label": plural,
            "id": module_id(name), "generated_type": "default", "api_supported": True,
            "creatable": record_module, "editable": record_module, "deletable": True, "viewable": True,
            "status": "visible", "visible": True, "modified_time": None,
            "profiles": [{"name": "Administrator", "id": "6421000000000000501"},
                         {"name": "Standard", "id": "6421000000000000502"}]}


@api("/crm/v8/settings/modules")
async def list_modules(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.settings.ALL", "ZohoCRM.settings.modules.READ", "ZohoCRM.settings.modules.ALL")
    call.charge(1)
    return json_response({"modules": [_module_public(m) for m in LISTED_MODULES]})


@api("/crm/v8/settings/modules/{module}")
async def get_module(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.settings.ALL", "ZohoCRM.settings.modules.READ", "ZohoCRM.settings.modules.ALL")
    call.charge(1)
    name = _listed_module(request.path_params["module"])
    return json_response({"modules": [_module_public(name)]})


def _listed_module(raw: str | None) -> str:
    if not raw:
        raise required_param("module")
    for name in LISTED_MODULES:
        if name.lower() == raw.lower():
            return name
    raise invalid_module()


def _public_fields(call: Call, module: str) -> list[dict[str, Any]]:
    return [field_public(f, module, {}) | {"id": f.get("id") or _std_field_id(module, f["api_name"])}
            for f in call.org.fields(module).values()]


def _std_field_id(module: str, api_name: str) -> str:
    return f"{int(module_id(module)) + 1000 + sum(ord(c) for c in api_name)}"


@api("/crm/v8/settings/fields")
async def list_fields(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.settings.ALL", "ZohoCRM.settings.fields.READ", "ZohoCRM.settings.fields.ALL")
    module = _listed_module(request.query_params.get("module"))
    call.charge(1)
    return json_response({"fields": _public_fields(call, module)})


@api("/crm/v8/settings/layouts")
async def list_layouts(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.settings.ALL", "ZohoCRM.settings.layouts.READ", "ZohoCRM.settings.layouts.ALL")
    module = _listed_module(request.query_params.get("module"))
    call.charge(1)
    singular = MODULE_LABELS[module][0]
    layout = {"id": f"{int(module_id(module)) + 500}", "name": "Standard", "api_name": "Standard__s",
              "status": "active", "visible": True, "created_time": None, "modified_time": None,
              "profiles": _module_public(module)["profiles"],
              "sections": [{"display_label": f"{singular} Information", "api_name": f"{singular}_Information",
                            "sequence_number": 1, "column_count": 2, "fields": _public_fields(call, module)}]}
    return json_response({"layouts": [layout]})


# ---- custom fields --------------------------------------------------------------------------------

def _field_error(code: str, message: str, index: int, api_name: str, **extra: Any) -> RecordError:
    return RecordError(code, message, {"api_name": api_name, "json_path": f"$.fields[{index}].{api_name}",
                                       **extra})


def _build_field(call: Call, module: str, spec: dict[str, Any], index: int, taken: set[str],
                 labels: set[str], *, in_subform: bool = False) -> dict[str, Any]:
    label = spec.get("field_label")
    if not isinstance(label, str) or not label.strip():
        raise _field_error("MANDATORY_NOT_FOUND", "required field not found", index, "field_label")
    label = label.strip()
    if len(label) > 50:
        raise _field_error("INVALID_DATA", "invalid data", index, "field_label", maximum_length=50)
    if label.lower() in labels:
        raise _field_error("DUPLICATE_DATA", "duplicate data", index, "field_label")
    data_type = spec.get("data_type")
    allowed = SUBFORM_ROW_TYPES if in_subform else tuple(CUSTOM_TYPES)
    if data_type not in allowed:
        raise _field_error("INVALID_DATA", "invalid data", index, "data_type")
    api_name = api_name_from_label(label, taken)
    if api_name.lower() in RESERVED:
        raise _field_error("RESERVED_KEYWORD_NOT_ALLOWED", "reserved keyword not allowed", index, "field_label")
    field: dict[str, Any] = {
        "api_name": api_name, "field_label": label, "data_type": data_type, "length": None,
        "system_mandatory": False, "read_only": False, "custom_field": True, "unique": False,
        "external": False, "pick_list_values": None, "lookup_module": None, "id": call.org.new_id(),
    }
    bounds = CUSTOM_TYPES.get(data_type)
    if bounds is not None:
        length = spec.get("length", bounds[2])
        if isinstance(length, bool) or not isinstance(length, int) or not bounds[0] <= length <= bounds[1]:
            raise _field_error("DEPENDENT_MISMATCH", "length is not valid for the data type", index, "length")
        field["length"] = length
    if data_type == "textarea":
        kind = (spec.get("textarea") or {}).get("type", "small")
        if kind not in TEXTAREA_LENGTHS:
            raise _field_error("INVALID_DATA", "invalid data", index, "textarea")
        field["length"] = TEXTAREA_LENGTHS[kind]
    if data_type in ("picklist", "multiselectpicklist"):
        values = spec.get("pick_list_values")
        if not isinstance(values, list) or not values:
            raise _field_error("MANDATORY_NOT_FOUND", "required field not found", index, "pick_list_values")
        shown: list[str] = []
        for value in values:
            text = value.get("actual_value") or value.get("display_value") if isinstance(value, dict) else None
            if not isinstance(text, str) or not text:
                raise _field_error("INVALID_DATA", "invalid data", index, "pick_list_values")
            if text.lower() in {s.lower() for s in shown}:
                raise _field_error("DUPLICATE_DATA", "duplicate data", index, "pick_list_values")
            shown.append(text)
        field["pick_list_values"] = shown
    if data_type == "lookup":
        target = ((spec.get("lookup") or {}).get("module") or {}).get("api_name")
        if target not in RECORD_MODULES or target == "Notes":
            raise _field_error("INVALID_DATA", "invalid data", index, "lookup")
        field["lookup_module"] = target
    if data_type == "userlookup":
        field["lookup_module"] = "Users"
    # ``"unique": {}`` or ``{"case_sensitive": false}`` asks for uniqueness; matching is always
    # case-insensitive in the emulator.
    if spec.get("unique") not in (None, False):
        field["unique"] = True
    if spec.get("external") not in (None, False):
        field["external"] = True
    if data_type == "subform":
        rows = (spec.get("subform") or {}).get("fields")
        if not isinstance(rows, list) or not rows:
            raise _field_error("MANDATORY_NOT_FOUND", "required field not found", index, "subform")
        row_taken: set[str] = set()
        row_labels: set[str] = set()
        built = []
        for row in rows:
            if not isinstance(row, dict):
                raise _field_error("INVALID_DATA", "invalid data", index, "subform")
            sub = _build_field(call, module, row, index, row_taken, row_labels, in_subform=True)
            row_taken.add(sub["api_name"])
            row_labels.add(sub["field_label"].lower())
            built.append(sub)
        field["subform_fields"] = built
    return field


def _check_limits(call: Call, module: str, field: dict[str, Any], index: int, existing: list[dict[str, Any]]) -> None:
    edition = call.emulator.config.edition
    custom = [f for f in existing if f.get("custom_field")]
    if len(custom) >= CUSTOM_FIELD_LIMIT[edition]:
        raise _field_error("LIMIT_EXCEEDED", "custom field limit reached for the edition", index, "field_label",
                           limit=CUSTOM_FIELD_LIMIT[edition])
    if field["unique"] and sum(1 for f in existing if f.get("unique")) >= MAX_UNIQUE_PER_MODULE:
        raise _field_error("LIMIT_EXCEEDED", "unique field limit reached", index, "unique",
                           limit=MAX_UNIQUE_PER_MODULE)
    if field["data_type"] == "subform":
        gate = SUBFORM_LIMIT[edition] if call.emulator.config.subform_edition_gate else 5
        if gate == 0:
            raise _field_error("NOT_ALLOWED", "subforms are not available in this edition", index, "data_type")
        if sum(1 for f in existing if f["data_type"] == "subform") >= gate:
            raise _field_error("LIMIT_EXCEEDED", "subform limit reached", index, "data_type", limit=gate)


@api("/crm/v8/settings/fields", write=True)
async def create_fields(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.settings.ALL", "ZohoCRM.settings.fields.CREATE", "ZohoCRM.settings.fields.ALL")
    module = _listed_module(request.query_params.get("module"))
    if module not in CUSTOM_FIELD_MODULES:
        raise ApiError(400, "NOT_ALLOWED", "custom fields cannot be created in this module", {"module": module})
    body = await call.json_body()
    specs = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(specs, list) or not specs:
        raise required_param("fields")
    if len(specs) > MAX_FIELDS_PER_CALL:
        raise limit_exceeded(MAX_FIELDS_PER_CALL, api_name="fields")
    call.charge(1)
    org = call.org
    results = []
    with org.transaction() as tx:
        for index, spec in enumerate(specs):
            try:
                results.append(_create_one(call, tx, module, spec, index))
            except RecordError as error:
                results.append(error.body)
    response = write_response(results, 201)
    return json_response({"fields": results}, response.status_code)


def _create_one(call: Call, tx: Tx, module: str, spec: Any, index: int) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise _field_error("INVALID_DATA", "invalid data", index, "fields")
    existing = list(call.org.fields(module).values())
    taken = {f["api_name"] for f in existing}
    labels = {f["field_label"].lower() for f in existing}
    field = _build_field(call, module, spec, index, taken, labels)
    _check_limits(call, module, field, index, existing)
    call.org.define_field(tx, module, field)
    return {"code": "SUCCESS", "details": {"id": field["id"]},
            "message": "field created", "status": "success"}


# ---- picklist updates -----------------------------------------------------------------------------

PICKLIST_TYPES = ("picklist", "multiselectpicklist")
_UPDATABLE_KEYS = {"id", "pick_list_values"}


def _field_by_id(call: Call, module: str, field_id: str) -> dict[str, Any] | None:
    return next((f for f in _public_fields(call, module) if f["id"] == field_id), None)


@api("/crm/v8/settings/fields/{field_id}")
async def get_field(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.settings.ALL", "ZohoCRM.settings.fields.READ", "ZohoCRM.settings.fields.ALL")
    module = _listed_module(request.query_params.get("module"))
    call.charge(1)
    field = _field_by_id(call, module, request.path_params["field_id"])
    if field is None:
        return no_content()
    return json_response({"fields": [field]})


@api("/crm/v8/settings/fields/{field_id}", write=True)
async def update_field(request: Request, call: Call) -> Response:
    """Add values to a picklist or multi-select picklist, standard or custom.

    The shape is our reading of Zoho's "Update Custom Field" API (the reference documents only
    field creation): ``{"fields": [{"id": ..., "pick_list_values": [...]}]}``; a value sent with
    its ``id`` is kept as it is, one without is added. Only additions are emulated: a value left out
    of the body stays (the real API's delete/rename semantics are not modelled), and any other field
    property in the body is refused. Answers like field creation, with ``"message": "field updated"``.
    """
    call.require_any("ZohoCRM.settings.ALL", "ZohoCRM.settings.fields.ALL", "ZohoCRM.settings.fields.UPDATE")
    module = _listed_module(request.query_params.get("module"))
    body = await call.json_body()
    specs = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(specs, list) or not specs:
        raise required_param("fields")
    if len(specs) > 1:
        raise limit_exceeded(1, api_name="fields")
    call.charge(1)
    try:
        with call.org.transaction() as tx:
            result = _update_picklist(call, tx, module, request.path_params["field_id"], specs[0])
    except RecordError as error:
        return json_response({"fields": [error.body]}, 400)
    return json_response({"fields": [result]})


def _update_picklist(call: Call, tx: Tx, module: str, field_id: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise _field_error("INVALID_DATA", "invalid data", 0, "fields")
    if "id" in spec and str(spec["id"]) != field_id:
        raise _field_error("INVALID_DATA", "the field id does not match the URL", 0, "id", id=str(spec["id"]))
    field = _field_by_id(call, module, field_id)
    if field is None:
        raise _field_error("INVALID_DATA", "invalid data", 0, "id", id=field_id)
    for key in spec:
        if key not in _UPDATABLE_KEYS:
            raise _field_error("INVALID_DATA", "only picklist values can be updated in the emulator", 0, key)
    if field["data_type"] not in PICKLIST_TYPES:
        raise _field_error("INVALID_DATA", "the field is not a picklist", 0, field["api_name"],
                           expected_data_type="picklist")
    values = spec.get("pick_list_values")
    if not isinstance(values, list) or not values:
        raise _field_error("MANDATORY_NOT_FOUND", "required field not found", 0, "pick_list_values")
    current = field["pick_list_values"]
    by_id = {v["id"]: v["actual_value"] for v in current}
    shown = {v["display_value"].lower() for v in current}
    added: list[str] = []
    for value in values:
        if not isinstance(value, dict):
            raise _field_error("INVALID_DATA", "invalid data", 0, "pick_list_values")
        if "id" in value:
            kept = by_id.get(str(value["id"]))
            if kept is None or value.get("display_value", kept) != kept or value.get("actual_value", kept) != kept:
                raise _field_error("INVALID_DATA", "invalid data", 0, "pick_list_values", id=str(value["id"]))
            continue
        display = value.get("display_value")
        actual = value.get("actual_value", display)
        if not isinstance(display, str) or not display.strip() or actual != display:
            # The emulator keeps one string per value; Zoho's separate actual values are not modelled.
            raise _field_error("INVALID_DATA", "invalid data", 0, "pick_list_values")
        if display.lower() in shown:
            raise _field_error("DUPLICATE_DATA", "duplicate data", 0, "pick_list_values", display_value=display)
        shown.add(display.lower())
        added.append(display)
    if added:
        call.org.set_picklist(tx, module, field["api_name"], [v["actual_value"] for v in current] + added)
    return {"code": "SUCCESS", "details": {"id": field_id}, "message": "field updated", "status": "success"}
