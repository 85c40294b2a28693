"""Zoho field metadata: the standard fields we ship, the custom fields the spec creates.

``custom_fields(spec)`` gives the bodies for ``POST /settings/fields`` (the
client's ``ensure_schema`` takes them and answers label -> api_name);
``apply_api_names`` rewrites the spec to the names Zoho assigned;
``field_metadata`` is what validation checks every shaped record against.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from dentrix_zoho.mapping.spec import CustomField, MappingSpec, check_api_name, repo_spec_dir, packaged_spec_dir

STANDARD_FIELDS_FILENAME = "zoho_standard_fields.json"
FieldMeta = dict[str, Any]


def standard_fields_path() -> Path:
    repo = repo_spec_dir() / STANDARD_FIELDS_FILENAME
    return repo if repo.exists() else packaged_spec_dir() / STANDARD_FIELDS_FILENAME


def load_standard_fields(path: Path | None = None) -> dict[str, list[FieldMeta]]:
    data = json.loads((path or standard_fields_path()).read_text(encoding="utf-8"))
    return {module: fields for module, fields in data.items() if not module.startswith("_")}


def _zoho_field_body(cf: CustomField) -> dict[str, Any]:
    body: dict[str, Any] = {"field_label": cf.label, "data_type": cf.type}
    if cf.length is not None and cf.type != "textarea":
        body["length"] = cf.length
    if cf.type == "textarea":
        body["textarea"] = {"type": "small" if cf.length == 2000 else "large"}
    if cf.picklist:
        body["pick_list_values"] = [{"display_value": v, "actual_value": v} for v in cf.picklist]
    if cf.unique:
        body["unique"] = {"case_sensitive": False}
    if cf.type == "lookup":
        body["lookup"] = {"module": {"api_name": cf.lookup_module}, "display_label": cf.label}
    if cf.type == "subform":
        body["subform"] = {"fields": [_zoho_field_body(child) for child in cf.subform_fields]}
    return body


def custom_fields(spec: MappingSpec) -> dict[str, list[dict[str, Any]]]:
    """Per module, the custom fields in Zoho's own ``POST /settings/fields`` shape."""
    return {module: [_zoho_field_body(cf) for cf in fields] for module, fields in spec.custom_fields.items()}


def picklist_additions(spec: MappingSpec) -> dict[str, dict[str, list[str]]]:
    """Values the value maps need on *standard* picklists (e.g. Lead_Source "Other")."""
    return copy.deepcopy(spec.picklist_additions)


def apply_api_names(spec: MappingSpec, mapping: dict[str, dict[str, str]]) -> MappingSpec:
    """A copy of the spec using the API names Zoho actually assigned (label -> api_name per module).

    Subform children are looked up under the subform's own API name as module.
    """
    new = spec.model_copy(deep=True)
    renames: dict[str, dict[str, str]] = {}

    def rename(module: str, cf: CustomField) -> None:
        assigned = mapping.get(module, {}).get(cf.label)
        if assigned is None or assigned == cf.api_name:
            return
        check_api_name(assigned)
        renames.setdefault(module, {})[cf.api_name or ""] = assigned
        cf.api_name = assigned

    for module, fields in new.custom_fields.items():
        for cf in fields:
            old_subform_name = cf.api_name
            rename(module, cf)
            for child in cf.subform_fields:
                rename(cf.api_name or "", child)
                if old_subform_name != cf.api_name:
                    rename(old_subform_name or "", child)
    contacts, leads = renames.get("Contacts", {}), renames.get("Leads", {})
    subform = new.insurance.subform_api_name
    for fmap in new.insurance.row_fields:
        fmap.target = renames.get(contacts.get(subform, subform), {}).get(fmap.target, fmap.target)
    new.insurance.subform_api_name = contacts.get(subform, subform)
    for stream in new.streams.values():
        table = renames.get(stream.module, {})
        for fmap in stream.fields:
            fmap.target = table.get(fmap.target, fmap.target)
        for link in stream.links:
            link.field = table.get(link.field, link.field)
    for fmap in new.practice_fields.values():
        fmap.target = contacts.get(fmap.target, fmap.target)
    if new.new_patient_leads is not None:
        for fmap in new.new_patient_leads.fields:
            fmap.target = leads.get(fmap.target, fmap.target)
    # Contact name -> Lead name. A field carried to Leads under its own name needs an entry once
    # Zoho named it differently on either side.
    original = new.routing.lead_fields
    lead_fields = {contacts.get(src, src): (leads.get(dst, dst) if dst is not None else None)
                   for src, dst in original.items()}
    for old_name in sorted(set(contacts) | set(leads)):
        if old_name not in original:
            lead_fields.setdefault(contacts.get(old_name, old_name), leads.get(old_name, old_name))
    new.routing.lead_fields = lead_fields
    for vmap in new.value_maps.values():
        if vmap.flag_field is not None:
            if contacts.get(vmap.flag_field, vmap.flag_field) != leads.get(vmap.flag_field, vmap.flag_field):
                raise ValueError(f"{vmap.flag_field}: Zoho named it differently on Contacts and Leads; "
                                 "align the names in Zoho before loading")
            vmap.flag_field = contacts.get(vmap.flag_field, vmap.flag_field)
    return new


def _custom_meta(cf: CustomField) -> FieldMeta:
    meta: FieldMeta = {
        "api_name": cf.api_name,
        "field_label": cf.label,
        "data_type": cf.type,
        "custom_field": True,
        "system_mandatory": False,
        "unique": cf.unique,
    }
    if cf.length is not None:
        meta["length"] = cf.length
    elif cf.type == "textarea":
        meta["length"] = 32000
    if cf.picklist:
        meta["pick_list_values"] = [{"display_value": v, "actual_value": v} for v in cf.picklist]
    if cf.type == "subform":
        meta["subform_fields"] = {child.api_name: _custom_meta(child) for child in cf.subform_fields}
    return meta


def field_metadata(
    spec: MappingSpec,
    live: dict[str, list[FieldMeta]] | None = None,
    standard: dict[str, list[FieldMeta]] | None = None,
) -> dict[str, dict[str, FieldMeta]]:
    """module -> api_name -> field metadata: shipped standard fields, the spec's custom
    fields and picklist additions, overridden by live metadata where given."""
    merged: dict[str, dict[str, FieldMeta]] = {}
    for module, fields in (standard or load_standard_fields()).items():
        merged[module] = {f["api_name"]: copy.deepcopy(f) for f in fields}
    for module, cfs in spec.custom_fields.items():
        table = merged.setdefault(module, {})
        for cf in cfs:
            table[cf.api_name or ""] = _custom_meta(cf)
    for module, fields_values in spec.picklist_additions.items():
        for api_name, values in fields_values.items():
            meta = merged.get(module, {}).get(api_name)
            if meta is None:
                continue
            present = {v["actual_value"] for v in meta.get("pick_list_values", [])}
            meta.setdefault("pick_list_values", []).extend(
                {"display_value": v, "actual_value": v} for v in values if v not in present
            )
    for module, fields in (live or {}).items():
        table = merged.setdefault(module, {})
        for f in fields:
            table[f["api_name"]] = copy.deepcopy(f)
    return merged
