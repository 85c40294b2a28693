"""A load under ``merge`` that fails after claiming the shared patient, through the real loader on the Zoho
emulator: closing its run (what the run-failure sensor does) lets the other office make her Contact and the
failed office's next run join it; when the failed run's write of her may have landed, the other office waits
for that next run instead, and there is still one Contact. Dagster itself: test_ended_run_sensor.py."""

from __future__ import annotations


import pytest

from dentrix_zoho.load import load_module
from dentrix_zoho.org.ended_runs import close_ended_run
from dentrix_zoho.zoho import ZohoError
from dentrix_zoho_tests.org.merge_kit import KIT, NORTH, OWN, SHARED, SOUTH, Org, children_of

pytestmark = pytest.mark.slow


@pytest.fixture
def org(audited_merge_org: Org) -> Org:
    return audited_merge_org


def _contacts(org: Org) -> dict[str, str]:
    return {r["Source_System_ID"]: zid for zid, r in org.records().get("Contacts", {}).items()}


def _claims(org: Org, run_id: str) -> list[tuple[str | None, str | None]]:
    return [(e.source_id, e.code) for e in org.ledger.audit_entries(run_id) if e.operation.startswith("cross_office_")]


def _south_decision(org: Org) -> tuple[str, str]:
    """What south's load would decide for her now (a dry run: nothing recorded)."""
    from dentrix_zoho.load.cross_office import MergeMap

    run = org.ledger.start_run("full", SOUTH, run_id="south-probe")
    candidate = MergeMap.load(org.ledger, SOUTH).groups[SHARED[SOUTH]]
    from dentrix_zoho.ledger import MergeCandidate

    [decision] = org.ledger.settle_merge(run, SOUTH, "Contacts", [
        MergeCandidate("patient", SHARED[SOUTH], "h", candidate[0], candidate[1])], dry_run=True)
    org.ledger.finish_run(run, "succeeded")
    return decision.action, decision.code


def test_a_load_failed_after_claiming_her_is_closed_south_makes_her_contact_and_north_s_next_run_joins(
        org: Org) -> None:
    failing = org.context(NORTH, client=KIT.client_for(org.handle, max_retries=1))
    org.handle.set_faults("503=1.0")  # Zoho down: the patients step's first read fails, after the split claimed her
    try:
        with pytest.raises(ZohoError):
            load_module(failing, "patients")
    finally:
        org.handle.set_faults(None)
        failing.client.close()
    assert _claims(org, failing.run_id) == [(SHARED[NORTH], "CLAIMED")]
    assert _contacts(org) == {}
    assert _south_decision(org) == ("wait", "WAITING")  # the run is 'running' in the ledger: south would wait forever

    ended = close_ended_run(org.ledger, failing.run_id, office_id=NORTH)
    assert (ended.status, ended.closed, ended.released, ended.kept_in_doubt) == ("failed", True, 1, 0)
    assert _south_decision(org) == ("send", "CLAIMED")

    south = org.load_office(SOUTH)
    assert south["patients"].created == 2 and south["patients"].cross_office_joined == 0
    north = org.load_office(NORTH)  # the office's retry: a new run, which resumes from the ledger
    assert north["patients"].cross_office_joined == 1 and north["patients"].created == 1
    contacts = _contacts(org)
    assert sorted(contacts) == sorted([SHARED[SOUTH], OWN[SOUTH], OWN[NORTH]])  # one Contact for her
    assert children_of(org.records(), contacts[SHARED[SOUTH]])["Events"] == [f"{NORTH}:appt:10", f"{SOUTH}:appt:70"]
    assert org.ledger.verify_chain().ok


def test_when_the_failed_run_s_write_of_her_may_have_landed_south_waits_for_north_s_next_run(org: Org) -> None:
    failing = org.context(NORTH, client=KIT.client_for(org.handle, max_retries=2))
    # The patients batch is applied, and every answer to it (the call and its two retries) is lost.
    org.handle.set_faults("drop@1,drop@2,drop@3")
    try:
        try:
            load_module(failing, "patients")
        except ZohoError:
            pass  # failing the step outright or holding the batch in doubt: either way the run ends unfinished
    finally:
        org.handle.set_faults(None)
        failing.client.close()
    assert SHARED[NORTH] in _contacts(org)  # in Zoho, and the ledger never heard of it
    assert org.ledger.lookup(NORTH, "patient", SHARED[NORTH]) is None

    ended = close_ended_run(org.ledger, failing.run_id, office_id=NORTH)
    assert (ended.closed, ended.released, ended.kept_in_doubt) == (True, 0, 1)
    assert _south_decision(org) == ("wait", "IN_DOUBT")
    south = org.load_office(SOUTH)  # her row waits (quarantined with a reason); south's own patient goes
    assert south["patients"].created == 1 and south["patients"].cross_office_joined == 0
    assert SHARED[SOUTH] not in _contacts(org)

    north = org.load_office(NORTH)  # north's next run takes the Contact its failed run made into the ledger
    assert north["patients"].failed == 0
    again = org.load_office(SOUTH, "delta")
    assert again["patients"].cross_office_joined == 1
    contacts = _contacts(org)
    assert sorted(contacts) == sorted([SHARED[NORTH], OWN[NORTH], OWN[SOUTH]])  # still one Contact for her
    assert children_of(org.records(), contacts[SHARED[NORTH]])["Events"] == [f"{NORTH}:appt:10", f"{SOUTH}:appt:70"]
