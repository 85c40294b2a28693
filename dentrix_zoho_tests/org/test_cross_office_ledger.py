"""Co-ownership in the ledger: create or join, claims between offices loading at once, what lookups see,
the schema step from version 1."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from dentrix_zoho.ledger import Ledger, LedgerError, MergeCandidate, MergeMember
from dentrix_zoho.ledger import schema as s

A, B, C = "north", "south", "east"
PA, PB, PC = "north:patient:1", "south:patient:7", "east:patient:3"
GROUP = "g-1"


def candidate(office_sid: str, row_hash: str = "h") -> MergeCandidate:
    members = {A: PA, B: PB, C: PC}
    office = office_sid.split(":")[0]
    others = tuple((o, "patient", sid) for o, sid in sorted(members.items()) if o != office)
    return MergeCandidate("patient", office_sid, row_hash, GROUP, others)


def create(ledger: Ledger, run: str, office: str, sid: str, zoho_id: str) -> None:
    ledger.record_write(run, office, "patient", sid, "Contacts", zoho_id, "h", True, "2026-01-01T00:00:00+00:00")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger.for_home(tmp_path) as opened:
        opened.replace_merge_groups([MergeMember(GROUP, o, "patient", sid, "name") for o, sid in ((A, PA), (B, PB), (C, PC))],
                                    offices=(A, B, C))
        yield opened


def test_the_first_office_claims_and_creates_a_later_one_joins(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="ra")
    [first] = ledger.settle_merge(ra, A, "Contacts", [candidate(PA)])
    assert (first.action, first.code) == ("send", "CLAIMED")
    create(ledger, ra, A, PA, "z1")  # the upsert went through
    ledger.finish_run(ra, "succeeded")

    rb = ledger.start_run("full", B, run_id="rb")
    [joined] = ledger.settle_merge(rb, B, "Contacts", [candidate(PB, "hb")])
    assert (joined.action, joined.code, joined.zoho_id) == ("joined", "JOINED", "z1")
    holds = {(h.office_id, h.role, h.run_id, h.released) for h in ledger.shared_owners(zoho_ids=["z1"])}
    assert holds == {(A, "created", "ra", False), (B, "joined", "rb", False)}
    # Children of the joined patient find the shared Contact like any parent of their office.
    row = ledger.lookup(B, "patient", PB)
    assert row is not None and (row.zoho_id, row.row_hash, row.created_by_run, row.deleted) == ("z1", "hb", None, False)
    assert ledger.lookup(A, "patient", PA).zoho_id == "z1"  # type: ignore[union-attr]
    # The join is in the hash-chained audit log; ids and codes only.
    [entry] = [e for e in ledger.audit_entries(rb) if e.operation == "cross_office_join"]
    assert (entry.source_id, entry.zoho_id, entry.code, entry.credits) == (PB, "z1", "JOINED", 0)
    assert ledger.verify_chain().ok

    # The next run of B: still joined, its new hash kept (the accounting compares it); no second audit entry.
    rb2 = ledger.start_run("delta", B, run_id="rb2")
    [again] = ledger.settle_merge(rb2, B, "Contacts", [candidate(PB, "hb2")])
    assert (again.action, again.code) == ("joined", "STILL_JOINED")
    assert ledger.lookup(B, "patient", PB).row_hash == "hb2"  # type: ignore[union-attr]
    assert not [e for e in ledger.audit_entries(rb2) if e.operation == "cross_office_join"]
    # The creator's next run sends as before: it is the record's writer.
    [creator] = ledger.settle_merge("ra2", A, "Contacts", [candidate(PA)])
    assert (creator.action, creator.code) == ("send", "CREATOR")
    # A third office joins the same Contact, found through the group.
    [third] = ledger.settle_merge(ledger.start_run("full", C, run_id="rc"), C, "Contacts", [candidate(PC)])
    assert (third.action, third.zoho_id) == ("joined", "z1")
    assert ledger.count_shared_holds(A) == 1 and ledger.count_shared_holds(B, role="joined") == 1


def test_an_office_waits_while_another_office_s_running_load_creates_the_contact(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="ra")
    assert ledger.settle_merge(ra, A, "Contacts", [candidate(PA)])[0].code == "CLAIMED"
    rb = ledger.start_run("full", B, run_id="rb")
    [wait] = ledger.settle_merge(rb, B, "Contacts", [candidate(PB)])
    assert (wait.action, wait.code, wait.claimed_by_office) == ("wait", "WAITING", A)
    assert ledger.shared_owners() == []
    # A's load ends without a Contact (its row refused): the claim is stale and B takes it over.
    ledger.finish_run(ra, "failed")
    [took] = ledger.settle_merge(rb, B, "Contacts", [candidate(PB)])
    assert (took.action, took.code) == ("send", "CLAIMED")
    assert [e.code for e in ledger.audit_entries(rb) if e.operation == "cross_office_claim"] == ["TAKEN_OVER"]
    create(ledger, rb, B, PB, "z9")
    ledger.finish_run(rb, "succeeded")
    # A's next run joins B's Contact rather than make a second one.
    [joined] = ledger.settle_merge(ledger.start_run("delta", A, run_id="ra2"), A, "Contacts", [candidate(PA)])
    assert (joined.action, joined.zoho_id) == ("joined", "z9")


def test_two_contacts_made_before_the_merge_are_never_merged(ledger: Ledger) -> None:
    create(ledger, ledger.start_run("full", A, run_id="ra"), A, PA, "z1")
    create(ledger, ledger.start_run("full", B, run_id="rb"), B, PB, "z2")
    [ambiguous] = ledger.settle_merge(ledger.start_run("full", C, run_id="rc"), C, "Contacts", [candidate(PC)])
    assert (ambiguous.action, ambiguous.code) == ("send", "AMBIGUOUS")
    assert ledger.shared_owners() == []


def test_a_dry_run_decides_the_same_and_writes_nothing(ledger: Ledger) -> None:
    create(ledger, ledger.start_run("full", A, run_id="ra"), A, PA, "z1")
    before = list(ledger.audit_entries())
    [would] = ledger.settle_merge("rb", B, "Contacts", [candidate(PB)], dry_run=True)
    assert (would.action, would.zoho_id) == ("joined", "z1")
    [claim] = ledger.settle_merge("rc-dry", C, "Contacts", [candidate(PC)], dry_run=True)
    assert claim.action == "joined"
    assert ledger.shared_owners() == [] and list(ledger.audit_entries()) == before
    with ledger.engine.connect() as conn:
        assert conn.execute(select(s.merge_claims)).first() is None


def test_a_released_hold_reads_as_gone_and_a_reload_rejoins(ledger: Ledger) -> None:
    ra = ledger.start_run("full", A, run_id="ra")
    create(ledger, ra, A, PA, "z1")
    rb = ledger.start_run("full", B, run_id="rb")
    ledger.settle_merge(rb, B, "Contacts", [candidate(PB)])
    holds = {h.office_id: h for h in ledger.shared_owners(zoho_ids=["z1"])}
    # A rolls back while B still owns the Contact: A's hold ends, the Contact stays.
    assert ledger.release_shared("rollback-1", "Contacts", [holds[A]]) == 1
    assert ledger.lookup(A, "patient", PA).deleted  # type: ignore[union-attr]
    assert not ledger.lookup(B, "patient", PB).deleted  # type: ignore[union-attr]
    # A loads again: it is the record's creator, back as an owner.
    [back] = ledger.settle_merge("ra2", A, "Contacts", [candidate(PA)])
    assert (back.action, back.code) == ("send", "CREATOR")
    assert not ledger.lookup(A, "patient", PA).deleted  # type: ignore[union-attr]
    # B rolls back, then loads again: it joins again, under its new run.
    assert ledger.release_shared("rollback-2", "Contacts", [holds[B]]) == 1
    assert ledger.lookup(B, "patient", PB) is None
    [rejoined] = ledger.settle_merge("rb2", B, "Contacts", [candidate(PB)])
    assert (rejoined.action, rejoined.code) == ("joined", "REJOINED")
    assert {h.office_id: h.run_id for h in ledger.shared_owners(released=False)} == {A: "ra2", B: "rb2"}
    # The Contact is deleted (its last owner's rollback): every hold on it ends with it.
    ledger.mark_deleted("rollback-3", "Contacts", ["z1"])
    assert ledger.shared_owners(released=False) == []
    assert ledger.lookup(B, "patient", PB) is None and ledger.lookup(A, "patient", PA).deleted  # type: ignore[union-attr]


def test_one_record_in_two_groups_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="more than one group"):
        ledger.replace_merge_groups([MergeMember("g1", A, "patient", PA, "name"), MergeMember("g2", A, "patient", PA, "name")],
                                    offices=(A,))
    assert len(ledger.merge_groups()[GROUP]) == 3  # the failed replacement changed nothing


def test_a_version_1_ledger_gets_the_new_tables_and_older_code_is_kept_out(tmp_path: Path) -> None:
    with Ledger.for_home(tmp_path) as made:
        with made.engine.begin() as conn:
            for table in (s.shared_owners, s.merge_claims, s.merge_groups):
                table.drop(conn)
            conn.execute(update(s.ledger_meta).where(s.ledger_meta.c.key == "schema_version").values(value="1"))
    with Ledger.for_home(tmp_path) as upgraded:
        with upgraded.engine.connect() as conn:
            version = conn.execute(select(s.ledger_meta.c.value).where(s.ledger_meta.c.key == "schema_version")).scalar()
        assert version == str(s.SCHEMA_VERSION) and s.SCHEMA_VERSION >= 2
        assert upgraded.shared_owners() == [] and upgraded.merge_groups() == {}
        with upgraded.engine.begin() as conn:
            conn.execute(update(s.ledger_meta).where(s.ledger_meta.c.key == "schema_version")
                         .values(value=str(s.SCHEMA_VERSION + 1)))
    with pytest.raises(LedgerError, match=f"schema version {s.SCHEMA_VERSION + 1} is newer than this code"):
        Ledger.for_home(tmp_path)


def _race(url: str) -> list[str]:
    """Two offices' loads (two Ledger objects: separate pools and locks, like two processes) settle the same
    person at once, many times; returns the codes, one pair per round."""
    codes: list[str] = []
    with Ledger(url) as first, Ledger(url) as second:
        for n in range(15):
            key = f"race-{n}"
            first.replace_merge_groups([MergeMember(key, A, "patient", f"{PA}{n}", "name"),
                                        MergeMember(key, B, "patient", f"{PB}{n}", "name")], offices=(A, B))
            ra = first.start_run("full", A, run_id=f"ra{n}")
            rb = second.start_run("full", B, run_id=f"rb{n}")
            got: dict[str, str] = {}
            start = threading.Barrier(2)

            def settle(ledger: Ledger, office: str, sid: str, other: tuple[str, str], run: str) -> None:
                start.wait()
                cand = MergeCandidate("patient", sid, "h", key, ((other[0], "patient", other[1]),))
                got[office] = ledger.settle_merge(run, office, "Contacts", [cand])[0].code

            threads = [threading.Thread(target=settle, args=(first, A, f"{PA}{n}", (B, f"{PB}{n}"), ra)),
                       threading.Thread(target=settle, args=(second, B, f"{PB}{n}", (A, f"{PA}{n}"), rb))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            codes.append("".join(sorted((got[A][0], got[B][0]))))  # C(laimed) and W(aiting)
        with first.engine.begin() as conn:
            conn.execute(delete(s.merge_claims))
    return codes


def test_two_offices_loading_the_same_person_at_once_make_one_claim_on_sqlite(tmp_path: Path) -> None:
    assert set(_race(f"sqlite:///{tmp_path / 'ledger.sqlite'}")) == {"CW"}


def test_two_offices_loading_the_same_person_at_once_make_one_claim_on_postgresql(pg_database: str) -> None:
    assert set(_race(pg_database)) == {"CW"}
