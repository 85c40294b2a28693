"""Record-level rules for rollback: what a restore sends, and how we tell
our own state from someone else's edit."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from dentrix_zoho.ledger.human_edits import modified_by_id, same_instant  # noqa: F401 - re-exported

# Fields Zoho sets itself; sending them back in an update is at best ignored.
SYSTEM_FIELDS: frozenset[str] = frozenset(
    {
        "Created_Time",
        "Modified_Time",
        "Created_By",
        "Modified_By",
        "Last_Activity_Time",
        "Last_Enriched_Time__s",
        "Tag",
    }
)


def _is_system(name: str) -> bool:
    # "$approval_state", "$editable" … and "Record_Status__s", "Locked__s" …
    return name.startswith("$") or name.endswith("__s") or name in SYSTEM_FIELDS


def restore_payload(
    pre_image: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
    read_only: Collection[str] = (),
) -> dict[str, Any]:
    """The update body that puts a record back to its pre-image.

    With the current record at hand:
    - subform rows we appended (present now, absent from the pre-image) are
      deleted explicitly, because Zoho appends rows without an id and keeps
      rows it is not told to delete;
    - pre-image rows whose id is gone (the migration emptied the subform and
      sent it again) are sent without an id: Zoho re-creates them, under new ids;
    - fields the record has now and the pre-image does not name (set by the
      migration; a pre-image read before a field existed) are emptied.
    """
    payload: dict[str, Any] = {}
    for name, value in pre_image.items():
        if name != "id" and (_is_system(name) or name in read_only):
            continue
        if isinstance(value, list) and _is_subform(value):
            rows = [_strip_system(row) for row in value]
            if current is not None:
                have = _row_ids(current.get(name))
                rows = [row if str(row.get("id")) in have else _without_id(row) for row in rows]
            extra = _row_ids(current.get(name) if current else None) - _row_ids(rows)
            value = rows + [{"id": row_id, "_delete": None} for row_id in sorted(extra)]
        payload[name] = value
    for name, value in (current or {}).items():
        if name in payload or name == "id" or _is_system(name) or name in read_only:
            continue
        if value not in (None, [], "", {}):
            payload[name] = [] if isinstance(value, list) else None
    payload["id"] = str(pre_image["id"])
    return payload


def matches_pre_image(current: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """True if the record already holds the restored values (a resumed restore)."""
    for name, wanted in payload.items():
        if name == "id":
            continue
        have = current.get(name)
        if isinstance(wanted, list) and _is_subform_payload(wanted):
            kept = [row for row in wanted if isinstance(row, dict) and "_delete" not in row]
            if not _same_rows(have, kept):
                return False
        elif _normalise(have) != _normalise(wanted):
            return False
    return True


def _is_subform(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(row, dict) for row in value) and any("id" in row for row in value)


def _is_subform_payload(value: list[Any]) -> bool:
    # Rows re-created without an id still make a subform.
    return bool(value) and all(isinstance(row, dict) for row in value)


def _same_rows(have: Any, wanted: list[dict[str, Any]]) -> bool:
    """Same rows by content: each wanted row matches one current row on the fields it sends
    (and on its id, when it has one); no current row is left over."""
    left = [row for row in have if isinstance(row, dict)] if isinstance(have, list) else []
    for row in wanted:
        match = next(
            (
                i
                for i, candidate in enumerate(left)
                if all(_normalise(candidate.get(k)) == _normalise(v) for k, v in row.items() if k != "id")
                and ("id" not in row or str(candidate.get("id")) == str(row["id"]))
            ),
            None,
        )
        if match is None:
            return False
        left.pop(match)
    return not left


def _without_id(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "id"}


def _row_ids(value: Any) -> set[str]:
    if not isinstance(value, list):
        return set()
    return {str(row["id"]) for row in value if isinstance(row, dict) and "id" in row}


def _strip_system(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name == "id" or not _is_system(name)}


def _normalise(value: Any) -> Any:
    # Lookups come back with extra keys (name, email); the id is what counts.
    if isinstance(value, Mapping) and "id" in value:
        return str(value["id"])
    return value
