"""Through the real loader on the emulator, under ``merge``: north's run claims the shared patient, then
Dagster marks the run failed while its process still runs (the run-failure sensor releases the claim)
and south claims her. North's process must not send her: the patients step stops with ``ClaimLost``
before its batch goes, and there is one Contact of her (south's), which north's next run joins."""

from __future__ import annotations

from typing import Any

import pytest

from dentrix_zoho.ledger.shared import ClaimLost
from dentrix_zoho.load import cross_office, load_module, upserts
from dentrix_zoho.org.ended_runs import close_ended_run
from dentrix_zoho_tests.org.merge_kit import NORTH, OWN, SHARED, SOUTH, Org
from dentrix_zoho_tests.org.test_ended_runs_through_loader import _contacts

pytestmark = pytest.mark.slow


@pytest.fixture
def org(audited_merge_org: Org) -> Org:
    return audited_merge_org


def test_a_run_whose_claim_was_released_mid_step_does_not_send_her(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    north = org.context(NORTH)
    real_split = cross_office.split_for_merge

    def split_then_marked_failed(*args: Any, **kwargs: Any) -> Any:
        split = real_split(*args, **kwargs)
        if split.decisions:  # north claimed her; now Dagster gives up on the run and south loads
            monkeypatch.setattr(upserts, "split_for_merge", real_split)
            ended = close_ended_run(org.ledger, north.run_id, office_id=NORTH)
            assert (ended.released, ended.kept_in_doubt) == (1, 0)
            south = org.load_office(SOUTH)
            assert south["patients"].created == 2
        return split

    monkeypatch.setattr(upserts, "split_for_merge", split_then_marked_failed)
    with pytest.raises(ClaimLost):
        load_module(north, "patients")
    contacts = _contacts(org)
    assert SHARED[NORTH] not in contacts and SHARED[SOUTH] in contacts  # one Contact of her
    assert OWN[NORTH] not in contacts  # the batch did not go at all

    again = org.load_office(NORTH)  # the office's next run
    assert again["patients"].cross_office_joined == 1 and again["patients"].created == 1
    contacts = _contacts(org)
    assert sorted(contacts) == sorted([SHARED[SOUTH], OWN[SOUTH], OWN[NORTH]])
    assert org.ledger.verify_chain().ok
