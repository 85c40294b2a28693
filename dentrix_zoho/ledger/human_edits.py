"""Did someone else write a Zoho record after our last write? One rule for loads, deletions and rollbacks.

The ledger keeps the ``Modified_Time`` Zoho stamped on our write. A different time now means
someone wrote since. Zoho stamps to the second, so where the times agree (or none was recorded)
``Modified_By`` decides: anyone but the integration user(s) we write as counts as a person.

A write of ours can land without the ledger hearing of it (killed between Zoho's answer and the
ledger write). Every write is announced first by a send intent in the audit log, so an intent
later than the crosswalk's last write of a record means "we may have written it since": then
``Modified_By`` alone decides, and a stamp left by our integration user is ours, not a person's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dentrix_zoho.ledger.ledger import Ledger
    from dentrix_zoho.ledger.models import CrosswalkRow


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
    recorded_modified_time: str | None,
    current: Mapping[str, Any],
    our_user_ids: Collection[str] = (),
    *,
    write_in_doubt: bool = False,
) -> bool | None:
    """True when someone else wrote the record after us, False when we were last, None when unknowable.

    ``write_in_doubt``: a write of ours went out after the one the ledger recorded (see
    :func:`writes_in_doubt`), so a later ``Modified_Time`` may be our own.
    """
    now = current.get("Modified_Time")
    same = same_instant(recorded_modified_time, None if now is None else str(now))
    if (same is not False or write_in_doubt) and our_user_ids:
        last_writer = modified_by_id(current)
        if last_writer is not None:
            return last_writer not in our_user_ids
    return None if same is None else not same


def writes_in_doubt(ledger: Ledger, rows: Iterable[CrosswalkRow]) -> set[str]:
    """Zoho ids of ``rows`` with a send intent later than the ledger's last write of them."""
    by_module: dict[str, list[CrosswalkRow]] = {}
    for row in rows:
        by_module.setdefault(row.zoho_module, []).append(row)
    doubtful: set[str] = set()
    for module, group in by_module.items():
        latest = ledger.latest_intents(module, [r.source_id for r in group])
        doubtful |= {r.zoho_id for r in group if _later(latest.get(r.source_id), r.last_written_at)}
    return doubtful


def _later(intent_time: str | None, written_at: str | None) -> bool:
    """Both are the ledger's own ISO-8601 UTC stamps (one clock, one format)."""
    if intent_time is None:
        return False
    if written_at is None:
        return True
    try:
        return datetime.fromisoformat(intent_time) > datetime.fromisoformat(written_at)
    except ValueError:
        return intent_time > written_at
