"""A migration run that ended without finishing: its ledger run closed, its merge claims released.

A load step registers the ledger run under its Dagster run's id (``defs/load/assets.py``
``start_run(..., run_id=context.run.run_id)``) and only the reconciliation step finishes it. A
Dagster run that fails or is canceled before that leaves the ledger run ``running``, and under the
cross-office policy ``merge`` a group claimed by a ``running`` run keeps every other office waiting
for a Contact that run will never make (``ledger/shared.py``). The run-failure sensors
(``defs/load/sensors.py``) call :func:`close_ended_run` with the Dagster run's id.

Why this is safe beside Dagster's run retries: a retry is a new Dagster run, so a new ledger run;
only the ended run's own ledger row and the claims that run still holds are touched, in the ledger
transaction that deciders queue behind, so a retry that has claimed a group again keeps it however
late the sensor runs. A claim whose record's write is in doubt (announced, never answered) is kept,
and no other office takes it over, until the office's next run (the retry) adopts the Contact or sends
the record again. Without that, another office could make a second Contact of the person while the
first may already be in Zoho.

No Dagster here; counts and ids only in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dentrix_zoho.ledger import Ledger, LedgerError
from dentrix_zoho.load.cross_office import MERGED_MODULE

log = logging.getLogger(__name__)

# The ledger status an ended Dagster run leaves, and the code its claims' release carries in the audit log.
RELEASE_CODES = {"failed": "RUN_FAILED", "stopped": "RUN_STOPPED"}
# A rollback run resumes under its own id (rollback/service.py), which its own command settles.
MIGRATION_KINDS = frozenset({"sample", "full", "delta"})


@dataclass(frozen=True)
class EndedRun:
    """What closing one ended run did."""

    run_id: str
    office_id: str | None
    status: str | None  # the ledger run's status now; None: the run never reached a load step
    closed: bool  # this call moved it from running
    released: int  # merge claims released
    kept_in_doubt: int  # merge claims kept: a write of the claimed record is in doubt

    def counts(self) -> dict[str, object]:
        """Ids and counts only: safe for logs and Dagster's."""
        return {"ledger_run": self.status or "none", "closed": self.closed, "claims_released": self.released,
                "claims_kept_in_doubt": self.kept_in_doubt}


def close_ended_run(ledger: Ledger, run_id: str, *, office_id: str | None = None, status: str = "failed") -> EndedRun:
    """Close the ledger run ``run_id`` (if it is still running) as ``status`` (``failed`` or ``stopped``) and
    release the merge claims it holds. Idempotent: a second call changes nothing.

    ``office_id`` (the Dagster run's partition) must be the ledger run's office when given.
    """
    if status not in RELEASE_CODES:
        raise ValueError(f"an ended run is closed as one of {', '.join(sorted(RELEASE_CODES))}, not {status!r}")
    run = ledger.run(run_id)
    if run is None:
        log.info("ended run %s: no ledger run (it ended before its first load step)", run_id)
        return EndedRun(run_id, office_id, None, False, 0, 0)
    if office_id is not None and run.office_id != office_id:
        raise LedgerError(f"ledger run {run_id} is office {run.office_id}'s, not office {office_id}'s: left as it is")
    if run.kind not in MIGRATION_KINDS:
        log.info("ended run %s: a %s run, left to its own command", run_id, run.kind)
        return EndedRun(run_id, run.office_id, run.status, False, 0, 0)
    closed = run.status == "running"
    if closed:
        ledger.finish_run(run_id, status)
    released, kept = ledger.release_claims(run_id, MERGED_MODULE, code=RELEASE_CODES[status])
    ended = EndedRun(run_id, run.office_id, status if closed else run.status, closed, released, kept)
    log.info("ended run %s (office %s): %s", run_id, run.office_id, ended.counts())
    if kept:
        log.warning("ended run %s (office %s): %d merge claim(s) kept, their write in doubt: the office's next run "
                    "(a retry, or a new run) settles them; the other offices' records of those people wait until then",
                    run_id, run.office_id, kept)
    return ended
