"""The load's split of an upsert step's rows under the cross-office policy (ledger only; the emulator
end to end is test_cross_office_end_to_end.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dentrix_zoho.ledger import Ledger, MergeMember
from dentrix_zoho.load.cross_office import JOINED_RULE, WAITING_CLASS, MergeMap, split_for_merge
from dentrix_zoho.load.ledger_io import LedgerWriter
from dentrix_zoho.load.shaped import ShapedRow
from dentrix_zoho.org import POLICY_ENV, CrossOfficePolicy, CrossOfficePolicyError

MERGE = CrossOfficePolicy.of("merge")
SEPARATE = CrossOfficePolicy.of("separate")


def row(sid: str, last: str = "Okafor", object_: str = "patient") -> ShapedRow:
    return ShapedRow(sid, object_, f"hash-{sid}", {"Last_Name": last, "Email": f"{last.lower()}@mail.example"}, {})


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger.for_home(tmp_path) as opened:
        members = [("g1", "north", "north:patient:1"), ("g1", "south", "south:patient:7"),
                   ("g2", "north", "north:patient:2"), ("g2", "south", "south:patient:8")]
        opened.replace_merge_groups([MergeMember(g, o, "patient", sid, "name") for g, o, sid in members],
                                    offices=("north", "south"))
        yield opened


def test_joined_rows_are_not_sent_waiting_rows_are_held_and_the_rest_go(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    north = ledger.start_run("full", "north", run_id="rn")
    ledger.record_write(north, "north", "patient", "north:patient:1", "Contacts", "z1", "h", True, None)
    ledger.settle_merge(north, "north", "Contacts", [MergeMap.load(ledger, "north").candidate(row("north:patient:2"))])  # type: ignore[list-item]
    south = ledger.start_run("full", "south", run_id="rs")
    writer = LedgerWriter(ledger, south, "south")
    rows = [row("south:patient:7", "Adeyemi"), row("south:patient:8", "Brannigan"), row("south:patient:9", "Castellanos"),
            row("south:guarantor:7", "Adeyemi", object_="guarantor")]
    caplog.set_level(logging.DEBUG)

    split = split_for_merge(writer, "Contacts", rows, policy=MERGE)
    assert [r.source_id for r in split.send] == ["south:patient:9", "south:guarantor:7"]
    assert split.joined == {"south:patient:7": "z1"}
    assert [r.source_id for r in split.waiting] == ["south:patient:8"]  # north's running load creates it
    counts = split.counts()
    assert (counts["sent"], counts[JOINED_RULE], counts[WAITING_CLASS]) == (2, 1, 1)
    assert counts["sent"] + counts[JOINED_RULE] + counts[WAITING_CLASS] == len(rows)  # every row accounted for
    [held] = ledger.quarantine_rows(south)
    assert (held.source_id, held.value_class, held.reason.split(":")[0]) == ("south:patient:8", WAITING_CLASS, WAITING_CLASS)
    for value in ("Adeyemi", "Brannigan", "Castellanos", "mail.example"):
        assert value not in caplog.text

    # North's Contact lands; south's next run joins it and the hold is resolved.
    ledger.record_write(north, "north", "patient", "north:patient:2", "Contacts", "z2", "h", True, None)
    ledger.finish_run(north, "succeeded")
    again = split_for_merge(LedgerWriter(ledger, "rs2", "south"), "Contacts", rows, policy=MERGE)
    assert again.joined == {"south:patient:7": "z1", "south:patient:8": "z2"} and not again.waiting
    assert [q.status for q in ledger.quarantine_rows(south)] == ["resolved"]


def test_other_modules_and_the_separate_policy_send_everything(ledger: Ledger) -> None:
    ledger.record_write("rn", "north", "patient", "north:patient:1", "Contacts", "z1", "h", True, None)
    rows = [row("south:patient:7")]
    writer = LedgerWriter(ledger, "rs", "south")
    assert split_for_merge(writer, "Leads", rows, policy=MERGE).send == rows
    assert split_for_merge(writer, "Contacts", rows, policy=SEPARATE).send == rows
    assert ledger.shared_owners() == []


def test_a_dry_run_writes_nothing(ledger: Ledger) -> None:
    ledger.record_write("rn", "north", "patient", "north:patient:1", "Contacts", "z1", "h", True, None)
    split = split_for_merge(LedgerWriter(ledger, "rs", "south"), "Contacts", [row("south:patient:7")], policy=MERGE,
                            dry_run=True)
    assert split.joined == {"south:patient:7": "z1"} and split.send == []
    assert ledger.shared_owners() == [] and ledger.quarantine_rows() == []


def test_switching_to_separate_over_joined_records_is_refused_with_the_setting_named(ledger: Ledger) -> None:
    ledger.record_write("rn", "north", "patient", "north:patient:1", "Contacts", "z1", "h", True, None)
    writer = LedgerWriter(ledger, "rs", "south")
    split_for_merge(writer, "Contacts", [row("south:patient:7")], policy=MERGE)
    with pytest.raises(CrossOfficePolicyError, match=rf"{POLICY_ENV}=separate, but office south has 1 record"):
        split_for_merge(writer, "Contacts", [row("south:patient:7")], policy=SEPARATE)
    # the creating office is not affected: its records are its own Contacts
    north = LedgerWriter(ledger, "rn2", "north")
    assert split_for_merge(north, "Contacts", [row("north:patient:1")], policy=SEPARATE).send


def test_the_policy_comes_from_the_environment(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.record_write("rn", "north", "patient", "north:patient:1", "Contacts", "z1", "h", True, None)
    writer = LedgerWriter(ledger, "rs", "south")
    monkeypatch.delenv(POLICY_ENV, raising=False)
    assert split_for_merge(writer, "Contacts", [row("south:patient:7")]).send  # default: separate
    monkeypatch.setenv(POLICY_ENV, "merge")
    assert split_for_merge(writer, "Contacts", [row("south:patient:7")]).joined == {"south:patient:7": "z1"}
    monkeypatch.setenv(POLICY_ENV, "fuse")
    with pytest.raises(CrossOfficePolicyError, match=POLICY_ENV):
        split_for_merge(writer, "Contacts", [row("south:patient:7")])
