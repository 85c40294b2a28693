"""The audit log's hash chain: how an entry is hashed and how the chain is checked.

hash = sha256(canonical JSON of the entry's fields, seq and prev_hash). Any
change to a stored field, a deleted row, a swapped seq or a cut-off tail makes
``verify`` name the first entry where the chain no longer holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from dentrix_zoho.ledger.models import ChainReport

GENESIS_HASH = "0" * 64

# The fields covered by the hash, in the stored column names.
HASHED_FIELDS: tuple[str, ...] = (
    "seq",
    "run_id",
    "time",
    "operation",
    "module",
    "source_id",
    "zoho_id",
    "outcome",
    "code",
    "credits",
    "http_status",
    "prev_hash",
)


def canonical_json(values: Mapping[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(row: Mapping[str, Any]) -> str:
    payload = {name: row.get(name) for name in HASHED_FIELDS}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def verify_rows(rows: Iterable[Mapping[str, Any]], tip: tuple[int, str] | None) -> ChainReport:
    """Check stored rows, given in seq order, against each other and the tip."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    for row in rows:
        seq = int(row["seq"])
        if seq != expected_seq:
            return ChainReport(
                ok=False,
                entries=count,
                first_broken_seq=seq,
                reason=f"entry {expected_seq} is missing (seq jumps to {seq})",
            )
        if row["prev_hash"] != prev_hash:
            return ChainReport(False, count, seq, "prev_hash does not match the previous entry")
        if entry_hash(row) != row["hash"]:
            return ChainReport(False, count, seq, "entry content does not match its hash")
        prev_hash = row["hash"]
        expected_seq += 1
        count += 1

    last_seq = expected_seq - 1
    if tip is not None and (tip[0], tip[1]) != (last_seq, prev_hash):
        if tip[0] > last_seq:
            return ChainReport(
                False,
                count,
                last_seq + 1,
                f"log ends at entry {last_seq} but the tip records entry {tip[0]}",
            )
        return ChainReport(False, count, last_seq, "the recorded tip does not match the last entry")
    if tip is None and count:
        return ChainReport(False, count, last_seq, "entries exist but the chain tip is missing")
    return ChainReport(ok=True, entries=count)
