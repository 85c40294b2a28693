"""The minimum number of Zoho calls for a delta: the yardstick the delta load is held to."""

from __future__ import annotations

from datetime import datetime

from dentrix_zoho.cutover.minimum_calls import minimum_zoho_calls, module_of_from_spec, total_minimum_calls
from dentrix_zoho.cutover.summary import DeltaSummary, ObjectDelta


def delta(name: str, new: int = 0, changed: int = 0, deleted: int = 0) -> ObjectDelta:
    return ObjectDelta(name, "cursor", None, None, new + changed, 0, new, changed, deleted, 0, None, 0.0)


def summary(*objects: ObjectDelta) -> DeltaSummary:
    return DeltaSummary("delta-1", "office-1", datetime(2026, 11, 2), tuple(objects), 0.0)


def test_upserts_go_a_hundred_a_call_and_deletes_too() -> None:
    found = summary(
        delta("patient", new=150, changed=30),  # 180 contacts -> 2 upsert calls
        delta("custvalue", changed=20),  # same module: 200 -> still 2
        delta("appt", new=1, deleted=101),  # 1 upsert call, 2 delete calls
        delta("eattach", new=3),  # one file per call
        delta("fulldef", changed=5),  # a lookup list: no records of its own
    )
    calls = minimum_zoho_calls(found)
    assert set(calls) == {"Contacts", "Events", "Attachments"}
    assert (calls["Contacts"].upserts, calls["Contacts"].upsert_calls, calls["Contacts"].delete_calls) == (200, 2, 0)
    assert (calls["Events"].upsert_calls, calls["Events"].delete_calls) == (1, 2)
    assert calls["Attachments"].upsert_calls == 3
    assert total_minimum_calls(calls) == 8


def test_marking_deletions_rides_in_the_upsert_batches() -> None:
    calls = minimum_zoho_calls(summary(delta("appt", new=60, deleted=40)), deletion_policy="mark")
    assert (calls["Events"].upserts, calls["Events"].upsert_calls, calls["Events"].delete_calls) == (100, 1, 0)


def test_nothing_changed_needs_no_call() -> None:
    assert minimum_zoho_calls(summary(delta("patient"))) == {}


def test_the_module_map_can_come_from_the_mapping_spec() -> None:
    from dentrix_zoho.mapping.spec import load_spec

    module_of = module_of_from_spec(load_spec())
    assert module_of["patient"] == "Contacts" and module_of["appt"] == "Events"
    assert "appthist" not in module_of  # its deletions land on Events through appt
