"""Planning custom-field creation: what is missing, and whether the edition allows it.

Fields are matched by ``field_label`` (case- and space-insensitive): Zoho
derives the API name from the label and may suffix it on a clash, so the label
is the only stable key we send; the API name is read back afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dentrix_zoho.zoho import limits
from dentrix_zoho.zoho.errors import SchemaLimitExceeded


def label_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _is_subform(spec: Mapping[str, Any]) -> bool:
    return str(spec.get("data_type", "")).lower() == "subform"


def _is_unique(spec: Mapping[str, Any]) -> bool:
    unique = spec.get("unique")
    return bool(unique) and unique is not False


@dataclass(frozen=True)
class SchemaPlan:
    existing: dict[str, str] = field(default_factory=dict)  # label -> api_name, already there
    to_create: list[dict[str, Any]] = field(default_factory=list)

    @property
    def labels_to_create(self) -> list[str]:
        return [str(f["field_label"]) for f in self.to_create]


def plan_schema(
    module: str,
    existing_fields: Sequence[Mapping[str, Any]],
    wanted: Sequence[Mapping[str, Any]],
    edition: limits.Edition,
) -> SchemaPlan:
    """Diff wanted against existing; raise ``SchemaLimitExceeded`` naming the fields that do not fit."""
    by_label = {
        label_key(str(f.get("field_label", ""))): str(f.get("api_name"))
        for f in existing_fields
        if f.get("field_label") and f.get("api_name")
    }
    existing: dict[str, str] = {}
    to_create: list[dict[str, Any]] = []
    seen: set[str] = set()
    for spec in wanted:
        label = spec.get("field_label")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{module}: every field needs a field_label, got {dict(spec)!r:.80}")
        key = label_key(label)
        if key in seen:
            raise ValueError(f"{module}: field_label {label!r} is listed twice")
        seen.add(key)
        if key in by_label:
            existing[label] = by_label[key]
        else:
            to_create.append(dict(spec))

    new_fields = [f for f in to_create if not _is_subform(f)]
    new_subforms = [f for f in to_create if _is_subform(f)]
    new_unique = [f for f in to_create if _is_unique(f)]
    field_cap = limits.CUSTOM_FIELDS_PER_MODULE[edition]
    subform_cap = limits.SUBFORMS_PER_MODULE[edition]
    unique_cap = limits.UNIQUE_FIELDS_PER_MODULE
    checks = [
        (
            "custom fields",
            sum(1 for f in existing_fields if f.get("custom_field") and not _is_subform(f)),
            new_fields,
            field_cap,
            f"the {edition} edition allows {field_cap} per module",
        ),
        (
            "subforms",
            sum(1 for f in existing_fields if _is_subform(f)),
            new_subforms,
            subform_cap,
            f"the {edition} edition allows {subform_cap}",
        ),
        (
            "unique fields",
            sum(1 for f in existing_fields if _is_unique(f)),
            new_unique,
            unique_cap,
            f"Zoho allows {unique_cap} per module",
        ),
    ]
    problems: list[str] = []
    at_fault: list[str] = []
    for what, now, new, cap, rule in checks:
        if new and now + len(new) > cap:
            names = [str(f["field_label"]) for f in new]
            at_fault += names
            problems.append(
                f"{now} {what} exist and {len(new)} more are needed, but {rule}: {', '.join(names)}"
            )
    if problems:
        raise SchemaLimitExceeded(f"{module}: " + "; ".join(problems), fields=at_fault)
    return SchemaPlan(existing=existing, to_create=to_create)


def batches_of(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


PICKLIST_TYPES = frozenset({"picklist", "multiselectpicklist"})


@dataclass(frozen=True)
class PicklistPlan:
    to_add: list[str] = field(default_factory=list)
    # Wanted values whose display value exists with other letter case: Zoho refuses them as
    # duplicates, yet a record sending the wanted spelling would still be refused.
    case_clashes: list[str] = field(default_factory=list)

    def body(self, existing_field: Mapping[str, Any]) -> dict[str, Any]:
        """The ``PATCH /settings/fields/{id}`` body: every current value by its ``id`` (so a
        replace-style reading of the API keeps them), then the new ones."""
        kept = [
            {"id": v["id"], "display_value": v.get("display_value"), "actual_value": v.get("actual_value")}
            for v in existing_field.get("pick_list_values") or []
            if v.get("id")
        ]
        new = [{"display_value": v, "actual_value": v} for v in self.to_add]
        return {"fields": [{"id": str(existing_field["id"]), "pick_list_values": kept + new}]}


def plan_picklist_additions(module: str, existing_field: Mapping[str, Any], wanted: Sequence[str]) -> PicklistPlan:
    """Which of ``wanted`` the picklist lacks (by exact actual value), in order, without repeats."""
    api_name = existing_field.get("api_name")
    if str(existing_field.get("data_type")) not in PICKLIST_TYPES:
        raise ValueError(f"{module}.{api_name} is a {existing_field.get('data_type')} field, not a picklist")
    values = existing_field.get("pick_list_values") or []
    actual = {str(v.get("actual_value")) for v in values}
    shown = {str(v.get("display_value")).casefold() for v in values}
    to_add: list[str] = []
    clashes: list[str] = []
    for value in dict.fromkeys(wanted):
        if value in actual:
            continue
        if value.casefold() in shown or value.casefold() in {v.casefold() for v in to_add}:
            clashes.append(value)
        else:
            to_add.append(value)
    return PicklistPlan(to_add=to_add, case_clashes=clashes)
