"""One batch's ledger records in one transaction (``Ledger.record_batch`` through ``LedgerWriter.commit``):
counted, all-or-nothing under a kill, refusals kept, the chain intact; the quarantine read by office."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from dentrix_zoho.ledger import AuditEntry, CrosswalkWrite, Ledger, QuarantineRow
from dentrix_zoho.load.ledger_io import BatchRecord, LedgerWriter
from dentrix_zoho.load.reconcile import _open_quarantine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    with Ledger(url) as opened:
        yield opened


def _begins(ledger: Ledger) -> list[int]:
    seen: list[int] = []
    event.listen(ledger.engine, "begin", lambda _conn: seen.append(1))
    return seen


def _batch(run: str, first: int, n: int, *, resolved: list[tuple[str, str]] = (),  # type: ignore[assignment]
           held: int | None = None) -> BatchRecord:
    batch = BatchRecord(resolved_sources=list(resolved))
    for i in range(first, first + n):
        batch.writes.append(CrosswalkWrite("patient", str(i), "Contacts", f"z{i}", f"h{i}", True))
        batch.audit.append(AuditEntry(run, "upsert", "Contacts", "ok", source_id=str(i), zoho_id=f"z{i}", credits=1))
        batch.resolved_sources.append(("patient", str(i)))
    if held is not None:
        batch.quarantine.append(QuarantineRow(run, "o1", "patient", str(held), "zoho_rejected", "zoho_rejected X"))
        batch.audit.append(AuditEntry(run, "upsert", "Contacts", "error", source_id=str(held), code="X"))
    return batch


def test_one_committed_batch_is_one_transaction(ledger: Ledger) -> None:
    run = ledger.start_run("full", "o1", run_id="r1")
    writer = LedgerWriter(ledger, run, "o1")
    writer.commit(_batch(run, 0, 5, held=99))  # the writer reads the office's open quarantine once, here
    begins = _begins(ledger)

    # crosswalk writes, audit entries, a new quarantine row and a resolution (99 loads now)
    writer.commit(_batch(run, 5, 100, resolved=[("patient", "99")], held=200))
    assert len(begins) == 1

    assert len(list(ledger.crosswalk_rows(office_id="o1"))) == 105
    assert {(q.source_id, q.status) for q in ledger.quarantine_rows(office_id="o1")} == {
        ("99", "resolved"), ("200", "open")}
    assert not writer.is_quarantined("patient", "99") and writer.is_quarantined("patient", "200")
    report = ledger.verify_chain()
    assert report.ok and report.entries == 5 + 1 + 100 + 1


def test_a_batch_keeps_the_crosswalk_refusals(ledger: Ledger) -> None:
    run = ledger.start_run("full", "o1", run_id="r1")
    writer = LedgerWriter(ledger, run, "o1")
    assert writer.commit(_batch(run, 0, 2)) == []
    batch = BatchRecord(writes=[
        CrosswalkWrite("patient", "7", "Contacts", "z0", "h", True),  # z0 is patient 0's
        CrosswalkWrite("patient", "1", "Leads", "L1", "h", True),  # patient 1 lives on as Contacts z1
        CrosswalkWrite("patient", "8", "Contacts", "z8", "h", True),
    ], audit=[AuditEntry(run, "upsert", "Contacts", "ok", source_id="8", zoho_id="z8")])
    refused = writer.commit(batch)
    assert refused == [
        "Contacts z0 already belongs to patient 0 (office o1); refused for patient 7",
        "Leads L1 would be a second record of a source row in Zoho as Contacts z1; refused for patient 1",
    ]
    rows = {r.source_id: (r.zoho_module, r.zoho_id) for r in ledger.crosswalk_rows(office_id="o1")}
    assert rows == {"0": ("Contacts", "z0"), "1": ("Contacts", "z1"), "8": ("Contacts", "z8")}
    assert ledger.verify_chain().ok


_KILLED_CHILD = textwrap.dedent("""
    import os, sys
    from sqlalchemy import event
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.load.ledger_io import LedgerWriter
    from dentrix_zoho_tests.ledger.test_ledger_batch import _batch

    ledger = Ledger(sys.argv[1])
    run = ledger.start_run("full", "o1", run_id="r1")
    writer = LedgerWriter(ledger, run, "o1")
    writer.commit(_batch(run, 0, 3, held=99))

    def die(conn, cursor, statement, *args):
        # the batch's last statement, its audit entries: everything before it is written, not committed
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_LOG"):
            os._exit(9)

    event.listen(ledger.engine, "before_cursor_execute", die)
    writer.commit(_batch(run, 3, 50, resolved=[("patient", "99")], held=200))
    sys.exit(0)  # not reached
""")


def test_a_kill_inside_a_batch_leaves_none_of_it(url: str) -> None:
    Ledger(url).close()
    child = subprocess.run([sys.executable, "-c", _KILLED_CHILD, url], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.returncode == 9, child.stderr[-2000:]
    with Ledger(url) as ledger:
        assert sorted(r.source_id for r in ledger.crosswalk_rows()) == ["0", "1", "2"]
        assert [(q.source_id, q.status) for q in ledger.quarantine_rows()] == [("99", "open")]
        report = ledger.verify_chain()
        assert report.ok and report.entries == 4  # the first batch's, none of the second's


# -- the quarantine by office ----------------------------------------------------------------------


def test_open_quarantine_is_read_by_office_in_sql(ledger: Ledger) -> None:
    ledger.quarantine([QuarantineRow("r1", "o1", "patient", str(i), "orphan", "orphan") for i in range(3)]
                      + [QuarantineRow("r2", "o2", "patient", str(i), "orphan", "orphan") for i in range(40)])
    reads: list[tuple[str, Any]] = []

    @event.listens_for(ledger.engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM quarantine" in statement:
            reads.append((statement, parameters))

    def office_filtered() -> bool:
        """The last read asked the database for one office's rows (not every office's, filtered here)."""
        statement, parameters = reads[-1]
        values = parameters.values() if isinstance(parameters, dict) else parameters
        return "quarantine.office_id = " in statement and "o1" in list(values)

    rows = ledger.quarantine_rows(status="open", office_id="o1")
    assert [(q.office_id, q.source_id) for q in rows] == [("o1", "0"), ("o1", "1"), ("o1", "2")]
    assert office_filtered()
    assert _open_quarantine(ledger, "o1") == {("patient", "0"), ("patient", "1"), ("patient", "2")}
    assert office_filtered()
    LedgerWriter(ledger, "r3", "o1").is_quarantined("patient", "0")
    assert office_filtered()
    assert len(ledger.quarantine_rows(office_id="o2")) == 40 and len(ledger.quarantine_rows()) == 43
    assert _open_quarantine(ledger, "o3") == set()
