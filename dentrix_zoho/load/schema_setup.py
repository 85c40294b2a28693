"""Phase 2: create the custom fields the map needs and read back the API names Zoho assigned."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from dentrix_zoho.load.readback import run_concurrently
from dentrix_zoho.mapping import custom_fields, picklist_additions
from dentrix_zoho.mapping.spec import MappingSpec
from dentrix_zoho.zoho import BudgetExceeded, CreditsExhausted, OrgLimitsUnavailable, ZohoClient, ZohoError

log = logging.getLogger(__name__)

SOURCE_ID_LABEL = "Source System ID"
RUN_ID_LABEL = "Migration Run ID"
DELETED_LABEL = "Deleted In Dentrix"
# Every module we upsert into needs these: the unique key, the run stamp, and the flag the
# cutover's "mark" deletion policy sets on records deleted in Dentrix.
_REQUIRED = {
    SOURCE_ID_LABEL: {"field_label": SOURCE_ID_LABEL, "data_type": "text", "length": 100,
                      "unique": {"case_sensitive": False}},
    RUN_ID_LABEL: {"field_label": RUN_ID_LABEL, "data_type": "text", "length": 64},
    DELETED_LABEL: {"field_label": DELETED_LABEL, "data_type": "boolean"},
}
# Notes and Attachments take no custom fields; they are reconciled through the ledger instead.
KEYED_MODULES = ("Contacts", "Leads", "Events", "Tasks", "Calls")


@dataclass
class SchemaResult:
    """Per module, field label -> API name (subform children under the subform's API name)."""

    api_names: dict[str, dict[str, str]] = field(default_factory=dict)
    fields_requested: dict[str, int] = field(default_factory=dict)
    # Values the value maps need on standard picklists: those setup added, and those still missing
    # afterwards (the update was refused, e.g. no settings scope), for the admin to add in Setup.
    picklist_added: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    picklist_missing: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Per module set up, API name -> data type of every field as set-up read them, so that a load step
    # (a client of its own, nothing cached) need not read the module's metadata again: its subforms
    # (emptied before rows are re-sent, since Zoho appends subform rows) and the types Bulk Write's
    # CSV needs. A module missing here (a hand-off written before this was kept) is read from Zoho.
    field_types: dict[str, dict[str, str]] = field(default_factory=dict)

    def source_id_field(self, module: str) -> str:
        return self.api_names.get(module, {}).get(SOURCE_ID_LABEL, "Source_System_ID")

    def run_id_field(self, module: str) -> str:
        return self.api_names.get(module, {}).get(RUN_ID_LABEL, "Migration_Run_ID")

    def subform_names(self, module: str) -> list[str] | None:
        """The module's subform fields as set-up found them; None if set-up did not record the module."""
        types = self.field_types.get(module)
        return None if types is None else sorted(name for name, kind in types.items() if kind == "subform")

    def summary(self) -> dict[str, Any]:
        return {
            "modules": len(self.api_names),
            "fields": sum(len(v) for v in self.api_names.values()),
            "picklist_values_added": sum(len(v) for f in self.picklist_added.values() for v in f.values()),
            "picklist_values_missing": sum(len(v) for f in self.picklist_missing.values() for v in f.values()),
        }


def _wanted(spec: MappingSpec) -> dict[str, list[dict[str, Any]]]:
    wanted = {module: list(bodies) for module, bodies in custom_fields(spec).items()}
    for module in KEYED_MODULES:
        bodies = wanted.setdefault(module, [])
        labels = {str(b["field_label"]).casefold() for b in bodies}
        for label, body in _REQUIRED.items():
            if label.casefold() not in labels:
                bodies.insert(0, dict(body))
    return {m: b for m, b in wanted.items() if b}


def _subform_children(fields: list[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for f in fields:
        if str(f.get("data_type")) != "subform" or not f.get("api_name"):
            continue
        rows = (f.get("subform") or {}).get("fields") or f.get("subform_fields") or []
        out[str(f["api_name"])] = {
            str(r["field_label"]): str(r["api_name"]) for r in rows if r.get("field_label") and r.get("api_name")
        }
    return out


def field_types(fields: list[Mapping[str, Any]]) -> dict[str, str]:
    """API name -> data type of a module's fields, as Zoho lists them."""
    return {str(f["api_name"]): str(f.get("data_type")) for f in fields if f.get("api_name")}


def missing_picklist_values(client: ZohoClient, spec: MappingSpec) -> dict[str, dict[str, list[str]]]:
    missing: dict[str, dict[str, list[str]]] = {}
    for module, by_field in picklist_additions(spec).items():
        live = {str(f.get("api_name")): f for f in client.fields(module)}
        for api_name, values in by_field.items():
            present = {str(v.get("actual_value")) for v in (live.get(api_name) or {}).get("pick_list_values") or []}
            lacking = [v for v in values if v not in present]
            if lacking:
                missing.setdefault(module, {})[api_name] = lacking
    return missing


def add_missing_picklist_values(
    client: ZohoClient, missing: dict[str, dict[str, list[str]]]
) -> dict[str, dict[str, list[str]]]:
    """Add what ``missing`` lists, field by field; a field whose update fails is logged and skipped
    (it stays missing). Running out of credits stops the set-up like any other call would."""
    def one_module(module: str, by_field: dict[str, list[str]]) -> dict[str, list[str]]:
        # A module's fields one after the other: each update re-reads the module's fields.
        added: dict[str, list[str]] = {}
        for api_name, values in by_field.items():
            try:
                done = client.add_picklist_values(module, api_name, values)
            except (CreditsExhausted, BudgetExceeded, OrgLimitsUnavailable):
                raise
            except ZohoError as exc:
                log.warning("schema: could not add picklist values to %s.%s (%s)", module, api_name,
                            exc.code or exc.status)
                continue
            if done:
                added[api_name] = done
        return added

    per_module = run_concurrently([partial(one_module, module, by_field) for module, by_field in missing.items()],
                                  client.config.concurrency, name="zoho-picklists")
    return {module: added for module, added in zip(missing, per_module, strict=True) if added}


def _ensure_module(client: ZohoClient, module: str, bodies: list[dict[str, Any]]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """One module's fields ensured: label -> API name, and the module's fields as Zoho lists them now."""
    names = dict(client.ensure_schema(module, bodies))
    return names, client.fields(module)


def setup_schema(client: ZohoClient, spec: MappingSpec) -> SchemaResult:
    """Ensure every custom field on every module and the standard-picklist values the value maps
    use (both idempotent), and return the API names Zoho uses.

    Modules are independent of each other, so their metadata calls go at once (up to the client's
    concurrency, whose gates hold them within the org's limits); within a module they stay in order.
    Feed ``result.api_names`` to ``mapping.apply_api_names`` before shaping.
    """
    result = SchemaResult()
    wanted = _wanted(spec)
    done = run_concurrently([partial(_ensure_module, client, module, bodies) for module, bodies in wanted.items()],
                            client.config.concurrency, name="zoho-schema")
    for (module, bodies), (names, fields) in zip(wanted.items(), done, strict=True):
        for sub_name, children in _subform_children(fields).items():
            result.api_names.setdefault(sub_name, {}).update(children)
        result.api_names.setdefault(module, {}).update(names)
        result.fields_requested[module] = len(bodies)
        result.field_types[module] = field_types(fields)
    missing = missing_picklist_values(client, spec)
    if missing:
        result.picklist_added = add_missing_picklist_values(client, missing)
        # add_picklist_values refreshed the cached fields, so this re-check reads what Zoho has now.
        result.picklist_missing = missing_picklist_values(client, spec)
    if result.picklist_missing:
        log.warning(
            "schema: %d standard picklist values the map uses are still missing in Zoho; add them in Setup",
            result.summary()["picklist_values_missing"],
        )
    log.info("schema ready: %d modules, %d fields", len(result.api_names), result.summary()["fields"])
    return result
