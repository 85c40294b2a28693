"""Did someone else write a Zoho record after our last write? One rule for loads, deletions and rollbacks.

The ledger keeps the ``Modified_Time`` Zoho stamped on our write. A different time now means
someone wrote since. Zoho stamps to the second, so where the times agree (or none was recorded)
``Modified_By`` decides: anyone but the integration user(s) we write as counts as a person.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any


def same_instant(recorded: str | None, current: str | None) -> bool | None:
    """Whether two Modified_Time stamps are the same moment; None if unknown."""
    if recorded is None:
        return None
    if current is None:
        return False
    try:
        return datetime.fromisoformat(recorded) == datetime.fromisoformat(current)
    except ValueError:
        return recorded == current


def modified_by_id(record: Mapping[str, Any]) -> str | None:
    value = record.get("Modified_By")
    if isinstance(value, Mapping):
        found = value.get("id")
        return None if found is None else str(found)
    return None


def edited_since_our_write(
    recorded_modified_time: str | None, current: Mapping[str, Any], our_user_ids: Collection[str] = ()
) -> bool | None:
    """True when someone else wrote the record after us, False when we were last, None when unknowable."""
    now = current.get("Modified_Time")
    same = same_instant(recorded_modified_time, None if now is None else str(now))
    if same is not False and our_user_ids:
        last_writer = modified_by_id(current)
        if last_writer is not None:
            return last_writer not in our_user_ids
    return None if same is None else not same
