"""The fewest Zoho calls a delta can be sent with: the yardstick the delta load is measured against.

Per module: ``ceil(new + changed / 100)`` upserts (Attachments go one file a call) and
``ceil(deleted / 100)`` deletes (Zoho deletes up to 100 ids a call). Under the
``mark`` deletion policy a deletion is an update instead, so it rides in the upsert
batches. Objects the mapping sends nowhere (lookup lists, ``address``...) count for
nothing here: their effect reaches Zoho through the records that refer to them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dentrix_zoho.cutover.summary import DeltaSummary
from dentrix_zoho.cutover.window import DeletionPolicy

RECORDS_PER_CALL = 100
ONE_PER_CALL_MODULES = frozenset({"Attachments"})

# The primary object of each stream in mapping_specs/dentrix_to_zoho.yaml (streams.*.object -> module).
DEFAULT_MODULE_OF: dict[str, str] = {
    "patient": "Contacts",
    "custvalue": "Contacts",
    "appt": "Events",
    "recallpending": "Tasks",
    "contact": "Calls",
    "clinicalnote": "Notes",
    "rxrec": "Notes",
    "fullproclog": "Notes",
    "aging": "Attachments",
    "document": "Attachments",
    "eattach": "Attachments",
}


@dataclass(frozen=True)
class MinimumCalls:
    module: str
    upserts: int  # records to create or update (marked deletions included under "mark")
    deletes: int  # records to delete (0 under "mark")
    upsert_calls: int
    delete_calls: int

    @property
    def calls(self) -> int:
        return self.upsert_calls + self.delete_calls


def module_of_from_spec(spec: Any) -> dict[str, str]:
    """``{object: module}`` from a loaded ``MappingSpec`` (its streams' primary objects)."""
    return {stream.object: stream.module for stream in spec.streams.values() if stream.object != "appthist"}


def minimum_zoho_calls(
    summary: DeltaSummary,
    module_of: Mapping[str, str] = DEFAULT_MODULE_OF,
    *,
    deletion_policy: DeletionPolicy = "delete",
) -> dict[str, MinimumCalls]:
    """The minimum number of Zoho write calls per module for the changes in ``summary``."""
    upserts: dict[str, int] = {}
    deletes: dict[str, int] = {}
    for delta in summary.objects:
        module = module_of.get(delta.object_name)
        if module is None:
            continue
        upserts[module] = upserts.get(module, 0) + delta.new + delta.changed
        if deletion_policy == "mark":
            upserts[module] += delta.deleted
        else:
            deletes[module] = deletes.get(module, 0) + delta.deleted
    result: dict[str, MinimumCalls] = {}
    for module in sorted(set(upserts) | set(deletes)):
        per_call = 1 if module in ONE_PER_CALL_MODULES else RECORDS_PER_CALL
        up, down = upserts.get(module, 0), deletes.get(module, 0)
        if up or down:
            result[module] = MinimumCalls(
                module=module,
                upserts=up,
                deletes=down,
                upsert_calls=math.ceil(up / per_call),
                delete_calls=math.ceil(down / RECORDS_PER_CALL),
            )
    return result


def total_minimum_calls(calls: Mapping[str, MinimumCalls]) -> int:
    return sum(c.calls for c in calls.values())
