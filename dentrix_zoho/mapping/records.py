"""Build one Zoho record from one query row: transforms, then metadata checks, then policy.

The outcome of a row is one of: a record (possibly with flags: a field truncated,
dropped or defaulted) or a quarantine (the record is held back). Every flag and
every quarantine carries a value class and a reason code, never the value.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dentrix_zoho.mapping.metadata import FieldMeta
from dentrix_zoho.mapping.spec import FieldMap
from dentrix_zoho.mapping.transforms import Context, apply
from dentrix_zoho.mapping.validation import Issue, validate_record, value_class


@dataclass(frozen=True)
class Problem:
    """A flag (the record went on) or a quarantine reason (it did not)."""

    field: str
    value_class: str
    reason: str
    rule: str
    action: str  # quarantine | dropped | truncated | defaulted | split


@dataclass
class Built:
    record: dict[str, Any]
    flags: list[Problem] = field(default_factory=list)
    quarantine: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.quarantine


class _Blank(string.Formatter):
    """str.format where a missing/None value renders empty (and its format spec is ignored)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return ""
        return super().format_field(value, format_spec)


_FORMATTER = _Blank()
_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)(?::[^}]*)?\}")


def render_template(template: str, row: Mapping[str, Any]) -> str | None:
    """Fill a template; lines whose placeholders are all empty are dropped (``Sig: `` lines)."""
    lines = []
    for line in template.split("\n"):
        names = _PLACEHOLDER.findall(line)
        if names and all(row.get(n) is None or str(row.get(n)).strip() == "" for n in names):
            continue
        lines.append(_FORMATTER.vformat(line, (), _RowView(row)))
    text = "\n".join(lines).strip()
    return text or None


class _RowView(dict):  # type: ignore[type-arg]
    def __init__(self, row: Mapping[str, Any]) -> None:
        super().__init__(row)

    def __missing__(self, key: str) -> None:
        raise KeyError(f"template names column {key!r} which the stream query does not return")


def raw_value(fmap: FieldMap, row: Mapping[str, Any], slot: str | None = None) -> Any:
    if fmap.template is not None:
        return render_template(fmap.template, row)
    if fmap.source is not None:
        column = fmap.source.format(slot=slot) if slot else fmap.source
        if column not in row:
            raise KeyError(f"field {fmap.target}: column {column!r} is not returned by the stream query")
        return row[column]
    return fmap.value


STAGING_REJECT = "staging_reject"

# A staged column staging had to NULL: column -> (reason, value class) (``staging.rejects``).
Rejected = Mapping[str, tuple[str, str]]


def _rejected_source(fmap: FieldMap, rejected: Rejected, slot: str | None) -> tuple[str, str] | None:
    """The staging reject of a column this field is made from, if any."""
    if fmap.source is not None:
        return rejected.get(fmap.source.format(slot=slot) if slot else fmap.source)
    if fmap.template is not None:
        return next((rejected[n] for n in _PLACEHOLDER.findall(fmap.template) if n in rejected), None)
    return None


def transform_fields(
    fields: Iterable[FieldMap], row: Mapping[str, Any], ctx: Context, built: Built, slot: str | None = None,
    rejected: Rejected | None = None,
) -> None:
    """Apply each field's transform; problems become flags or quarantine by ``on_invalid``.

    A field made from a column staging rejected (``rejected``) is an invalid value like any
    other: reason ``staging_reject:<reason>``, settled by the field's ``on_invalid``.
    """
    for fmap in fields:
        reject = _rejected_source(fmap, rejected, slot) if rejected else None
        if reject is not None:
            problem = Problem(fmap.target, reject[1], f"{STAGING_REJECT}:{reject[0]}", "staging:reject", "")
            if fmap.on_invalid == "quarantine" or fmap.required:
                built.quarantine.append(_with(problem, "quarantine"))
            else:
                built.flags.append(_with(problem, "dropped"))
            continue
        raw = raw_value(fmap, row, slot)
        outcome = apply(fmap.transform, raw, {**fmap.args, "value": fmap.value}, ctx)
        if outcome.problem is not None:
            problem = Problem(fmap.target, value_class(raw), outcome.problem, f"transform:{fmap.transform}", "")
            if fmap.on_invalid == "quarantine" or fmap.required:
                built.quarantine.append(_with(problem, "quarantine"))
            else:
                built.flags.append(_with(problem, "dropped"))
            continue
        if outcome.flag is not None:
            built.flags.append(
                Problem(fmap.target, value_class(raw), outcome.flag, f"transform:{fmap.transform}", "defaulted")
            )
            flag_field = _flag_field(fmap, ctx) if outcome.flag == "unmapped_value_defaulted" else None
            if flag_field:
                built.record[flag_field] = True
        if outcome.value is None:
            if fmap.required:
                built.quarantine.append(
                    Problem(fmap.target, value_class(raw), "required_value_missing", "required", "quarantine")
                )
            continue
        built.record[fmap.target] = outcome.value


def _flag_field(fmap: FieldMap, ctx: Context) -> str | None:
    if fmap.transform != "value_map":
        return None
    vmap = ctx.value_maps.get(fmap.args.get("map", ""))
    return vmap.flag_field if vmap is not None else None


def _with(problem: Problem, action: str) -> Problem:
    return Problem(problem.field, problem.value_class, problem.reason, problem.rule, action)


def enforce_metadata(
    built: Built,
    fields_meta: dict[str, FieldMeta],
    policy: Mapping[str, str],
) -> None:
    """Check the record against Zoho's metadata; fix by policy (truncate / drop) or quarantine."""
    for issue in validate_record(built.record, fields_meta):
        _resolve(built, issue, policy.get(issue.field.split(".")[0], "quarantine"))


def _resolve(built: Built, issue: Issue, on_invalid: str) -> None:
    rule = f"metadata:{issue.kind}"
    top = issue.field.split(".")[0]
    if issue.kind == "too_long" and on_invalid == "truncate" and issue.limit and top == issue.field:
        value = built.record[issue.field]
        built.record[issue.field] = value[: issue.limit].rstrip() if isinstance(value, str) else value
        built.flags.append(Problem(issue.field, issue.value_class, issue.kind, rule, "truncated"))
        return
    if issue.kind in {"too_long", "bad_format", "not_in_picklist", "wrong_type"} and on_invalid in {
        "drop_field", "truncate"
    } and top == issue.field:
        built.record.pop(issue.field, None)
        built.flags.append(Problem(issue.field, issue.value_class, issue.kind, rule, "dropped"))
        return
    built.quarantine.append(Problem(issue.field, issue.value_class, issue.kind, rule, "quarantine"))


def split_text(text: str, limit: int) -> list[str]:
    """Cut a long text into parts of at most ``limit`` characters, at a line or word break if
    one is near, so that no character is lost; the caller labels the parts."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", limit // 2, limit)
        if cut <= 0:
            cut = rest.rfind(" ", limit // 2, limit)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut])
        rest = rest[cut:]
    parts.append(rest)
    return parts
