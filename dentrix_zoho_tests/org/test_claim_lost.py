"""A run marked ended while its process still runs must not send a Contact whose merge claim it lost.

The run-status sensors release an ended run's claims (``org/ended_runs.py``) unless the write is in
doubt (an intent). A process Dagster gave up on may still be alive: if it announced its batch after
the release, another office may already have claimed and sent the person. ``announce_claimed``
checks the claims in the intent's own transaction, so either the release comes first (the intent is
refused: ``ClaimLost``, nothing announced, nothing sent) or the intent does (the release keeps the
claim as in doubt). SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from dentrix_zoho.ledger import AuditEntry, Ledger
from dentrix_zoho.ledger.ledger import INTENT_OPERATION
from dentrix_zoho.ledger.shared import ClaimLost
from dentrix_zoho.org.ended_runs import close_ended_run
from dentrix_zoho_tests.org.test_ended_runs import A, B, PA, PB, decide


@pytest.fixture
def ledger(grouped_ledger: Ledger) -> Ledger:
    return grouped_ledger


def claim(ledger: Ledger, run: str, sid: str) -> str:
    return decide(ledger, run, sid)[1]


def intent(run: str, sid: str) -> AuditEntry:
    return AuditEntry(run, INTENT_OPERATION, "Contacts", "uncertain", source_id=sid)


def intents(ledger: Ledger, run: str) -> list[str | None]:
    return [e.source_id for e in ledger.audit_entries(run) if e.operation == INTENT_OPERATION]


def test_an_intent_after_the_release_is_refused_and_the_other_office_keeps_the_person(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="run-a")
    assert claim(ledger, ra, PA) == "CLAIMED"
    close_ended_run(ledger, ra, office_id=A)  # Dagster marked it failed; its process goes on
    rb = ledger.start_run("full", B, run_id="run-b")
    assert claim(ledger, rb, PB) == "CLAIMED"

    with pytest.raises(ClaimLost) as lost:
        ledger.announce_claimed([intent(ra, PA), intent(ra, "north:patient:2")], A, [PA])
    assert PA not in str(lost.value) and "1 of the 1" in str(lost.value)  # counts, never a patient
    assert intents(ledger, ra) == []  # not even the unclaimed row of the batch: the batch does not go
    assert ledger.announce_claimed([intent(rb, PB)], B, [PB])  # the claimant announces as usual
    assert intents(ledger, rb) == [PB]
    assert ledger.verify_chain().ok


def test_an_intent_before_the_release_keeps_the_claim_in_doubt(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="run-a")
    claim(ledger, ra, PA)
    assert len(ledger.announce_claimed([intent(ra, PA), intent(ra, "north:patient:2")], A, [PA])) == 2
    ended = close_ended_run(ledger, ra, office_id=A)
    assert (ended.released, ended.kept_in_doubt) == (0, 1)  # the Contact may be in Zoho: nobody takes over
    rb = ledger.start_run("full", B, run_id="run-b")
    assert claim(ledger, rb, PB) == "IN_DOUBT"


def test_rows_without_a_claim_announce_as_before(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="run-a")
    assert len(ledger.announce_claimed([intent(ra, "north:patient:2")], A, [])) == 1
    assert ledger.announce_claimed([], A, [PA]) == []
