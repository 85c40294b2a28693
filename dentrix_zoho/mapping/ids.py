"""The one place that spells a Source_System_ID.

Every Zoho record we write carries ``Source_System_ID`` (a unique custom
field); upserts key on it and the ledger's crosswalk maps it to the Zoho id.
The format is ``<office>:<source object>:<key>``, e.g. ``office-1:patient:123``;
a composite key joins its parts with ``-`` (``office-1:recallpending:55-2``).
"""

from __future__ import annotations

_FORBIDDEN = (":",)


def _part(value: object, what: str) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError(f"Source_System_ID: {what} is empty")
    if any(ch in text for ch in _FORBIDDEN):
        raise ValueError(f"Source_System_ID: {what} must not contain ':'")
    return text


def source_system_id(office_id: str, source_object: str, key: str | int | tuple[object, ...]) -> str:
    """``office-1:patient:123``; a tuple key becomes ``a-b``."""
    if isinstance(key, tuple):
        if not key:
            raise ValueError("Source_System_ID: empty composite key")
        key_text = "-".join(_part(k, "key part") for k in key)
    else:
        key_text = _part(key, "key")
    return f"{_part(office_id, 'office id')}:{_part(source_object, 'source object')}:{key_text}"


def split_source_system_id(value: str) -> tuple[str, str, str]:
    """Inverse of :func:`source_system_id` (key returned as text)."""
    parts = value.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError("not a Source_System_ID")
    return parts[0], parts[1], parts[2]
