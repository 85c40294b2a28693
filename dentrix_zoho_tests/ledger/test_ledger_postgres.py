"""The same ledger on PostgreSQL: a real throw-away server (dentrix_zoho_tests/pg_server.py), its own database."""

from __future__ import annotations

import threading

from dentrix_zoho.ledger import AuditEntry, CrosswalkWrite, Ledger, QuarantineRow


def test_the_ledger_works_on_postgresql(pg_database: str) -> None:
    with Ledger(pg_database) as ledger, Ledger(pg_database) as second_process:
        run = ledger.start_run("full", "o1", run_id="pg-r1")
        ledger.record_writes(
            run, "o1", [CrosswalkWrite("patient", str(i), "Contacts", f"z{i}", f"h{i}", True) for i in range(2_000)]
        )
        r2 = ledger.start_run("delta", "o1", run_id="pg-r2")
        ledger.record_write(r2, "o1", "patient", "1", "Contacts", "z1", "new", False, "2026-01-01T00:00:00+00:00")
        row = ledger.lookup("o1", "patient", "1")
        assert row is not None and (row.created_by_run, row.last_run_id) == ("pg-r1", "pg-r2")
        hashes = {str(i): f"h{i}" for i in range(2_000)} | {"1": "h1", "x": "h"}
        assert ledger.changed_rows("o1", "patient", hashes) == {"1", "x"}
        big = {str(i): f"h{i}" for i in range(6_000)}
        assert ledger.changed_rows("o1", "patient", big) == {"1"} | {str(i) for i in range(2_000, 6_000)}

        def append(target: Ledger, tag: str) -> None:
            for _ in range(20):
                target.append_audit_many(
                    [AuditEntry(tag, "upsert", "Contacts", "ok", source_id=str(i), credits=1) for i in range(5)]
                )

        # Two Ledger objects stand for two processes: separate pools, separate locks.
        threads = [
            threading.Thread(target=append, args=(target, tag))
            for target, tag in ((ledger, "a"), (second_process, "b"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report = ledger.verify_chain()
        assert report.ok and report.entries == 200

        assert ledger.save_pre_image(run, "Contacts", "z5", {"id": "z5", "Phone": "1"})
        assert not ledger.save_pre_image(run, "Contacts", "z5", {"id": "z5", "Phone": "2"})
        assert ledger.pre_image(run, "Contacts", "z5") == {"id": "z5", "Phone": "1"}
        ledger.quarantine([QuarantineRow(run, "o1", "patient", "9", "invalid_email", "fails validation")])
        ledger.record_approval("spec", "me")
        assert ledger.is_approved("spec") and len(ledger.quarantine_rows(run)) == 1
        ledger.mark_deleted("rb", "Contacts", ["z7"])
        assert ledger.counts("o1") == {"patient": 1_999}
        summaries = {s.run.run_id: s for s in ledger.run_summaries()}
        assert summaries["pg-r1"].records_created == 2_000
