"""Check a shaped record against Zoho's field metadata before anything is sent.

Checks: unknown field, JSON type, length, picklist value, date/datetime
format, mandatory fields. Problems are described by a *value class* (what
kind of value, how long), never by the value itself.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dentrix_zoho.mapping.metadata import FieldMeta

# Fields the contract puts in every record even where Zoho has no such field (Notes,
# Attachments); the loader strips them there.
RECORD_ONLY_KEYS = frozenset({"Source_System_ID"})

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./\-]{3,24}( x\d{1,6})?$")
_TEXT_TYPES = {"text", "textarea", "email", "phone", "website", "picklist", "bigint", "autonumber"}
_NUMBER_TYPES = {"integer", "currency", "double", "percent"}


@dataclass(frozen=True)
class Issue:
    field: str
    kind: str  # unknown_field | wrong_type | too_long | not_in_picklist | bad_format | mandatory_missing
    reason: str
    value_class: str
    limit: int | None = None


_BUCKETS = ((16, "1_16"), (64, "17_64"), (255, "65_255"), (2000, "256_2000"), (32000, "2001_32000"))


def _length_bucket(n: int) -> str:
    for bound, name in _BUCKETS:
        if n <= bound:
            return name
    return "gt_32000"


def value_class(value: Any) -> str:
    """A code for a value's kind and size, never its content (fits the ledger's quarantine
    ``value_class``: lower case, digits and underscores), e.g. ``email_like_len_17_64``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    text = str(value)
    stripped = text.strip()
    if not stripped:
        return "blank_text"
    if "@" in stripped:
        shape = "email_like" if _EMAIL.match(stripped) else "text_with_at"
    elif re.match(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}", stripped) or re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", stripped):
        shape = "date_like"
    elif re.fullmatch(r"[+\d ()./\-x]+", stripped) and any(c.isdigit() for c in stripped):
        shape = "digits"
    elif "\n" in stripped:
        shape = "multiline_text"
    else:
        shape = "text"
    return f"{shape}_len_{_length_bucket(len(text))}"


def _picklist_values(meta: FieldMeta) -> set[str]:
    values: set[str] = set()
    for entry in meta.get("pick_list_values", []) or []:
        for key in ("actual_value", "display_value"):
            if entry.get(key) is not None:
                values.add(str(entry[key]))
    return values


def check_value(api_name: str, value: Any, meta: FieldMeta | None) -> Issue | None:
    """The first problem of one value, or None."""
    if meta is None:
        return Issue(api_name, "unknown_field", "no such field in Zoho's metadata", value_class(value))
    if value is None:
        return None
    dtype = meta.get("data_type", "text")
    vclass = value_class(value)
    if dtype in _TEXT_TYPES or dtype in {"date", "datetime"}:
        if not isinstance(value, str):
            return Issue(api_name, "wrong_type", f"expected a string for {dtype}", vclass)
    if dtype in _NUMBER_TYPES and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return Issue(api_name, "wrong_type", f"expected a number for {dtype}", vclass)
    if dtype == "integer" and (not isinstance(value, int) or len(str(abs(value))) > 9):
        return Issue(api_name, "wrong_type", "expected an integer of at most 9 digits", vclass)
    if dtype == "boolean" and not isinstance(value, bool):
        return Issue(api_name, "wrong_type", "expected true/false", vclass)
    if dtype == "subform" and not isinstance(value, list):
        return Issue(api_name, "wrong_type", "expected a list of subform rows", vclass)
    if dtype == "date" and not _DATE.match(value):
        return Issue(api_name, "bad_format", "expected yyyy-MM-dd", vclass)
    if dtype == "datetime" and not _DATETIME.match(value):
        return Issue(api_name, "bad_format", "expected yyyy-MM-ddTHH:mm:ss+HH:mm", vclass)
    if dtype == "email" and not _EMAIL.match(value):
        return Issue(api_name, "bad_format", "not an e-mail address", vclass)
    if dtype == "phone" and not _PHONE.match(value):
        return Issue(api_name, "bad_format", "not a phone number", vclass)
    if dtype == "picklist" and value not in _picklist_values(meta):
        return Issue(api_name, "not_in_picklist", "value is not one of the picklist values", vclass)
    length = meta.get("length")
    if isinstance(value, str) and isinstance(length, int) and len(value) > length:
        return Issue(api_name, "too_long", f"longer than the field's {length} characters", vclass, length)
    if dtype == "currency" and abs(float(value)) >= 1e16:
        return Issue(api_name, "too_long", "more than 16 digits before the point", vclass)
    return None


def validate_record(
    record: dict[str, Any],
    fields: dict[str, FieldMeta],
    *,
    mandatory_satisfied_by_links: frozenset[str] = frozenset(),
) -> list[Issue]:
    """Every problem of a record: values first, then missing mandatory fields."""
    issues: list[Issue] = []
    for api_name, value in record.items():
        if api_name in RECORD_ONLY_KEYS and api_name not in fields:
            continue
        meta = fields.get(api_name)
        if meta is not None and meta.get("data_type") == "subform" and isinstance(value, list):
            issues.extend(_validate_subform(api_name, value, meta))
            continue
        issue = check_value(api_name, value, meta)
        if issue is not None:
            issues.append(issue)
    for api_name, meta in fields.items():
        if not meta.get("system_mandatory") or api_name in mandatory_satisfied_by_links:
            continue
        if meta.get("data_type") in {"lookup", "ownerlookup"}:
            continue  # lookups travel in links and are resolved by the loader
        value = record.get(api_name)
        if value is None or (isinstance(value, str) and not value.strip()):
            issues.append(Issue(api_name, "mandatory_missing", "mandatory field is empty", value_class(value)))
    return issues


def _validate_subform(api_name: str, rows: list[Any], meta: FieldMeta) -> list[Issue]:
    child_meta: dict[str, FieldMeta] = meta.get("subform_fields", {})
    issues: list[Issue] = []
    if len(rows) > 100:
        issues.append(Issue(api_name, "too_long", "more than 100 subform rows", "list", 100))
    for row in rows:
        if not isinstance(row, dict):
            issues.append(Issue(api_name, "wrong_type", "subform row is not an object", value_class(row)))
            continue
        for key, value in row.items():
            issue = check_value(key, value, child_meta.get(key)) if child_meta else None
            if issue is not None:
                issues.append(Issue(f"{api_name}.{key}", issue.kind, issue.reason, issue.value_class, issue.limit))
    return issues
