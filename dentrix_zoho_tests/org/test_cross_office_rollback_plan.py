"""Rollback plans over shared Contacts, from the ledger alone (carried out against the emulator in
test_cross_office_end_to_end.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dentrix_zoho.ledger import Ledger, MergeCandidate
from dentrix_zoho.rollback.plan import plan_rollback

A, B = "north", "south"
PA, PB = "north:patient:1", "south:patient:7"


def join(ledger: Ledger, run: str) -> None:
    cand = MergeCandidate("patient", PB, "hb", "g", ((A, "patient", PA),))
    assert ledger.settle_merge(run, B, "Contacts", [cand])[0].action == "joined"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """North created the Contact z1 (and an event under it) in run ra; south's run rb joined it and made an
    event of its own; south's later run rb2 made another event."""
    with Ledger.for_home(tmp_path) as opened:
        ra = opened.start_run("full", A, run_id="ra")
        opened.record_write(ra, A, "patient", PA, "Contacts", "z1", "h", True, "t1")
        opened.record_write(ra, A, "appt", "north:appt:1", "Events", "e1", "h", True, "t1")
        opened.finish_run(ra, "succeeded")
        rb = opened.start_run("full", B, run_id="rb")
        join(opened, rb)
        opened.record_write(rb, B, "appt", "south:appt:7", "Events", "e7", "h", True, "t2")
        opened.finish_run(rb, "succeeded")
        rb2 = opened.start_run("delta", B, run_id="rb2")
        opened.record_write(rb2, B, "appt", "south:appt:8", "Events", "e8", "h", True, "t3")
        opened.finish_run(rb2, "succeeded")
        yield opened


def _steps(plan: object) -> list[tuple[str, str, list[str]]]:
    return [(s.op, s.module, s.zoho_ids) for s in plan.steps]  # type: ignore[attr-defined]


def test_one_office_s_rollback_releases_a_contact_the_other_still_owns(ledger: Ledger) -> None:
    north = plan_rollback(ledger, None, True, office_id=A)
    assert _steps(north) == [("delete", "Events", ["e1"]), ("release", "Contacts", ["z1"])]
    assert north.write_calls == 1 and north.credits == 1 + 1  # a release is no call, costs nothing
    assert "1 shared Contact(s) kept" in north.render() and "release  Contacts" in north.render()
    south = plan_rollback(ledger, None, True, office_id=B)
    assert _steps(south) == [("delete", "Events", ["e7", "e8"]), ("release", "Contacts", ["z1"])]
    assert plan_rollback(ledger, None, True).counts() == {("Events", "delete"): 3, ("Contacts", "delete"): 1}


def test_a_run_rollback_releases_only_what_that_run_joined(ledger: Ledger) -> None:
    assert _steps(plan_rollback(ledger, "rb2", False)) == [("delete", "Events", ["e8"])]
    assert _steps(plan_rollback(ledger, "rb", False)) == [("delete", "Events", ["e7"]), ("release", "Contacts", ["z1"])]
    assert _steps(plan_rollback(ledger, "ra", False)) == [("delete", "Events", ["e1"]), ("release", "Contacts", ["z1"])]


def test_after_one_release_the_other_office_is_the_last_owner(ledger: Ledger) -> None:
    [north_hold] = [h for h in ledger.shared_owners() if h.office_id == A]
    ledger.release_shared("rollback-n", "Contacts", [north_hold])
    ledger.mark_deleted("rollback-n", "Events", ["e1"])
    assert plan_rollback(ledger, None, True, office_id=A).is_empty  # north is done, the Contact is not its to delete
    south = plan_rollback(ledger, None, True, office_id=B)
    assert _steps(south) == [("delete", "Events", ["e7", "e8"]), ("delete", "Contacts", ["z1"])]
    [item] = south.steps[-1].items
    assert (item.source_id, item.expected_modified_time) == (PA, "t1")  # the record's own id and our last stamp
    assert "deleted with their last owner" in south.render()


def test_a_contact_that_existed_before_the_migration_is_never_deleted_by_a_joiner(tmp_path: Path) -> None:
    with Ledger.for_home(tmp_path) as ledger:
        ra = ledger.start_run("full", A, run_id="ra")
        ledger.record_write(ra, A, "patient", PA, "Contacts", "z1", "h", False, "t1")  # found in Zoho, updated
        join(ledger, ledger.start_run("full", B, run_id="rb"))
        [north_hold] = [h for h in ledger.shared_owners() if h.office_id == A]
        ledger.release_shared("rollback-n", "Contacts", [north_hold])
        assert _steps(plan_rollback(ledger, None, True, office_id=B)) == [("release", "Contacts", ["z1"])]
