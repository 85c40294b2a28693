"""The same ledger on PostgreSQL: a throw-away cluster started with initdb.

Skips where PostgreSQL's server binaries or the psycopg driver are absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dentrix_zoho.ledger import AuditEntry, CrosswalkWrite, Ledger, QuarantineRow

pytest.importorskip("psycopg")

INITDB = shutil.which("initdb")
PG_CTL = shutil.which("pg_ctl")


def _as_server_user(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if not (INITDB and PG_CTL):
        pytest.skip("initdb/pg_ctl not installed")
    # Not under pytest's tmp dir: its parents are private to root, and the
    # server runs as the postgres user.
    base = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    port = _free_port()
    subprocess.run(
        _as_server_user([INITDB, "-D", str(data), "-U", "ledger", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_server_user([PG_CTL, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://ledger@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([PG_CTL, "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_the_ledger_works_on_postgresql(pg_url: str) -> None:
    with Ledger(pg_url) as ledger, Ledger(pg_url) as second_process:
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
