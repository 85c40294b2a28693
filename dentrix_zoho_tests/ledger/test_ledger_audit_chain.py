from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from dentrix_zoho.ledger import AuditEntry, Ledger, LedgerError


def _entries(run: str, n: int, start: int = 0) -> list[AuditEntry]:
    return [
        AuditEntry(
            run,
            "upsert",
            "Contacts",
            "ok",
            source_id=str(i),
            zoho_id=f"z{i}",
            code="SUCCESS",
            credits=1,
            http_status=200,
        )
        for i in range(start, start + n)
    ]


def _filled(ledger: Ledger, n: int = 10) -> None:
    run = ledger.start_run("full", "o1")
    ledger.append_audit_many(_entries(run, n))


def test_an_untouched_chain_verifies(ledger: Ledger) -> None:
    assert ledger.verify_chain().ok and ledger.verify_chain().entries == 0
    _filled(ledger, 10)
    seqs = ledger.append_audit_many(_entries("r", 3, 100))
    assert seqs == [11, 12, 13]
    report = ledger.verify_chain()
    assert (report.ok, report.entries, report.first_broken_seq) == (True, 13, None)
    entries = list(ledger.audit_entries())
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))


def test_a_changed_outcome_breaks_the_chain_at_that_entry(ledger: Ledger) -> None:
    _filled(ledger)
    with ledger.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET outcome = 'error' WHERE seq = 6"))
    report = ledger.verify_chain()
    assert (report.ok, report.first_broken_seq, report.entries) == (False, 6, 5)
    assert "hash" in (report.reason or "")


def test_a_deleted_middle_entry_shows_as_a_gap(ledger: Ledger) -> None:
    _filled(ledger)
    with ledger.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    report = ledger.verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, 5)
    assert "4 is missing" in (report.reason or "")


def test_reordered_entries_break_the_chain(ledger: Ledger) -> None:
    _filled(ledger)
    with ledger.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = -1 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = 4"))
        conn.execute(text("UPDATE audit_log SET seq = 4 WHERE seq = -1"))
    report = ledger.verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, 3)


def test_a_rehashed_entry_still_breaks_the_link_after_it(ledger: Ledger) -> None:
    # A forger who recomputes one entry's hash breaks its successor's prev_hash.
    from dentrix_zoho.ledger.chain import entry_hash

    _filled(ledger)
    with ledger.engine.begin() as conn:
        row = dict(conn.execute(text("SELECT * FROM audit_log WHERE seq = 2")).mappings().one())
        row["credits"] = 99
        conn.execute(text("UPDATE audit_log SET credits = 99, hash = :h WHERE seq = 2"), {"h": entry_hash(row)})
    report = ledger.verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, 3)


def test_a_cut_off_tail_is_detected(ledger: Ledger) -> None:
    _filled(ledger)
    with ledger.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 9"))
    report = ledger.verify_chain()
    assert (report.ok, report.first_broken_seq, report.entries) == (False, 9, 8)


def test_audit_entries_refuse_free_text(ledger: Ledger) -> None:
    with pytest.raises(LedgerError):
        ledger.append_audit(AuditEntry("r", "insert", "Contacts", "ok", code="Jane Doe called"))
    with pytest.raises(LedgerError):
        ledger.append_audit(AuditEntry("r", "Insert something", "Contacts", "ok"))
    with pytest.raises(LedgerError):
        ledger.append_audit(AuditEntry("r", "insert", "Contacts", "fine"))
    assert ledger.verify_chain().entries == 0


def test_eight_threads_appending_keep_the_chain(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for batch in range(10):
                if batch % 2:
                    ledger.append_audit(_entries(f"t{k}", 1)[0])
                else:
                    ledger.append_audit_many(_entries(f"t{k}", 5, batch * 10))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = ledger.verify_chain()
    assert report.ok and report.entries == 8 * (5 * 5 + 5)
    assert [e.seq for e in ledger.audit_entries()] == list(range(1, 241))


BATCHES_PER_PROCESS = 100  # enough interleaving that a missing write lock shows


def _append_from_process(url: str, tag: str) -> None:
    ledger = Ledger(url)
    for batch in range(BATCHES_PER_PROCESS):
        ledger.append_audit_many(_entries(tag, 4, batch * 4))
    ledger.close()


def test_two_processes_appending_keep_the_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    Ledger(url).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_from_process, args=(url, f"p{i}")) for i in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    report = Ledger(url).verify_chain()
    assert report.ok and report.entries == 2 * BATCHES_PER_PROCESS * 4
