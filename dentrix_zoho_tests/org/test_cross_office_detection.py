"""Cross-office detection on hand-built staged offices: planted shared patients found with their basis,
near misses left alone, the report and the logs free of patient values."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.org import (
    POLICY_ENV,
    REPORT_NAME,
    CrossOfficeAuditError,
    CrossOfficePolicy,
    CrossOfficePolicyError,
    detect_cross_office,
    run_cross_office_audit,
)
from dentrix_zoho_tests.org.conftest import D, person, stage_patients

NORTH = [
    person(1, "Garcia", "Maria", D(1980, 3, 14), mobile="801-555-0101", email="maria.g@north.example"),
    person(2, "Hill", "Robert", D(1975, 7, 2), gender=1, mobile="801.555.0142"),
    person(3, "Smith", "Katherine", D(1990, 11, 30), email="kate.smith@mail.example"),
    person(4, "Nguyen", "Linh", D(1968, 1, 9)),
    person(5, "Tran", "An", D(2001, 5, 5), gender=1),
    person(6, "Tran", "An", D(2001, 5, 5), gender=1),  # the same office's own duplicate of 5
    # near misses
    person(10, "Park", "Jin", D(1985, 2, 2)),
    person(11, "Lee", "Sam", D(1970, 6, 6), gender=1),
    person(12, "Johnson", "Elizabeth", D(1960, 12, 12), mobile="801-555-0112", email="ej@north.example"),
    person(13, "Brown", "Ann", D(1999, 9, 9), email="shared@family.example"),
    person(14, "Cole", "Dana", None),
    person(15, "Young", "Kim", D(1955, 4, 4)),
    person(16, "Young", "Kim", D(1955, 4, 4)),
]
SOUTH = [
    person(101, "GARCIA", "Maria ", D(1980, 3, 14), mobile="(385) 555-0199", email="mg@south.example"),
    person(102, "Hill", "Bob", D(1975, 7, 2), gender=1, mobile="+1 801 555 0142"),
    person(103, "Smyth", "Kate", D(1990, 11, 30), email=" Kate.Smith@Mail.Example "),
    person(104, "Ngyuen", "Linh", D(1968, 1, 9)),
    person(105, "Tran", "An", D(2001, 5, 5), gender=1),
    person(110, "Park", "Jin", D(1985, 2, 3)),  # a day apart
    person(111, "Lee", "Sam", D(1970, 6, 6), gender=2),  # the other gender
    person(112, "Johnson", "Beth", D(1960, 12, 12), mobile="801-555-0999", email="beth@south.example"),
    person(113, "Garza", "Ann", D(1999, 9, 9), email="shared@family.example"),  # same e-mail, another surname
    person(114, "Cole", "Dana", None),  # no birth date: never compared
]
EAST = [person(204, "Nguyen", "Linh", D(1968, 1, 9))]
# Unrelated people sharing birth dates across offices: compared, never matched.
BULK_NORTH = [person(1000 + n, "Northman", "Alex", D(1940, 1, 1) + (D(1940, 1, 2) - D(1940, 1, 1)) * n,
                     gender=1 + n % 2) for n in range(150)]
BULK_SOUTH = [person(3000 + n, "Southwick", "Jo", D(1940, 1, 1) + (D(1940, 1, 2) - D(1940, 1, 1)) * n,
                     gender=1 + n % 2) for n in range(150)]

PLANTED_VALUES = sorted(
    {str(v).strip() for p in NORTH + SOUTH + EAST for k, v in p.items()
     if k in ("lastname", "firstname", "pager", "emailaddr") and v}
    | {f"{p['birthdate']:%Y-%m-%d}" for p in NORTH + SOUTH + EAST if p["birthdate"]}
    | {"Northman", "Southwick"}
)

EXPECTED_GROUPS = {
    ("north:patient:1", "south:patient:101"): ("name",),
    ("north:patient:2", "south:patient:102"): ("phone",),
    ("north:patient:3", "south:patient:103"): ("email",),
    ("east:patient:204", "north:patient:4", "south:patient:104"): ("name",),
    ("north:patient:5", "north:patient:6", "south:patient:105"): ("name",),
}


@pytest.fixture
def offices(tmp_path: Path) -> dict[str, Path]:
    north = stage_patients(tmp_path / "north.duckdb", {"north": NORTH + BULK_NORTH})
    # The single-file layout: two offices in one staging file, told apart by _office_id.
    south = stage_patients(tmp_path / "south.duckdb", {"south": SOUTH + BULK_SOUTH, "east": EAST})
    return {"north": north, "south": south, "east": south}


def test_planted_shared_patients_are_found_with_their_basis_and_near_misses_are_not(offices: dict[str, Path]) -> None:
    result = detect_cross_office(offices)
    assert {g.members: g.basis for g in result.groups} == EXPECTED_GROUPS
    by_members = {g.members: g for g in result.groups}
    three = by_members[("east:patient:204", "north:patient:4", "south:patient:104")]
    assert [(p.a, p.b) for p in three.pairs] == [
        ("east:patient:204", "north:patient:4"), ("east:patient:204", "south:patient:104"),
        ("north:patient:4", "south:patient:104")]
    assert three.offices == ("east", "north", "south") and three.mergeable
    twice = by_members[("north:patient:5", "north:patient:6", "south:patient:105")]
    assert not twice.mergeable and twice.repeated_offices == ("north",)
    # one office's own duplicates (5~6, 15~16) are never a pair here: that is the single-office audit's
    assert all(p.a.split(":")[0] != p.b.split(":")[0] for g in result.groups for p in g.pairs)
    counts = result.counts()
    assert counts["groups"] == 5 and counts["mergeable_groups"] == 4 and counts["unmergeable_groups"] == 1
    assert counts["candidate_pairs"] == 1 + 1 + 1 + 3 + 2
    assert (counts["pairs_by_name"], counts["pairs_by_phone"], counts["pairs_by_email"]) == (6, 1, 1)
    assert result.patients == {"east": 1, "north": len(NORTH) - 1 + 150, "south": len(SOUTH) - 1 + 150}
    # Blocks: the 150 bulk birth dates and the 7 planted ones two offices share (a day apart, another
    # gender, one office only or no birth date: no block). Pairs: one per bulk block, 10 planted.
    assert (counts["birth_date_blocks"], counts["pairs_compared"]) == (150 + 7, 150 + 10)
    # the merge map: mergeable groups only, by Source_System_ID
    members = result.merge_members()
    assert {m.source_id for m in members} == {s for g in EXPECTED_GROUPS if "north:patient:5" not in g for s in g}
    assert {m.office_id for m in members if m.source_id == "east:patient:204"} == {"east"}


def test_reading_a_few_rows_at_a_time_finds_the_same_groups(offices: dict[str, Path]) -> None:
    whole = detect_cross_office(offices)
    trickle = detect_cross_office(offices, chunk_rows=3)  # blocks straddle every chunk boundary
    assert [(g.key, g.members, g.pairs) for g in trickle.groups] == [(g.key, g.members, g.pairs) for g in whole.groups]
    assert trickle.counts() == whole.counts()


def test_group_keys_do_not_depend_on_the_office_order(offices: dict[str, Path]) -> None:
    forward = detect_cross_office(offices)
    backward = detect_cross_office(dict(reversed(list(offices.items()))))
    assert {g.members: g.key for g in forward.groups} == {g.members: g.key for g in backward.groups}


def test_report_lists_ids_and_basis_and_no_patient_value(
    offices: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    audit = run_cross_office_audit(offices, tmp_path / "org" / "reports", policy=CrossOfficePolicy.of("separate"))
    report = audit.path.read_text(encoding="utf-8")
    assert audit.path.name == REPORT_NAME
    assert stat.S_IMODE(audit.path.stat().st_mode) == 0o600
    assert "| `north:patient:2`, `south:patient:102` | phone | yes |" in report
    assert "| `north:patient:3`, `south:patient:103` | email | yes |" in report
    assert "`north:patient:5`, `north:patient:6`, `south:patient:105` | name | no: two records of `north` |" in report
    assert "`east:patient:204` ~ `south:patient:104` | name |" in report
    for near_miss in ("north:patient:10`", "south:patient:110", "south:patient:111", "south:patient:112",
                      "south:patient:113", "patient:14`", "patient:114", "north:patient:15"):
        assert near_miss not in report
    assert "Policy: **separate**" in report
    summary = json.dumps(audit.summary())
    for value in PLANTED_VALUES:
        assert value not in report, value
        assert value not in caplog.text, value
        assert value not in summary, value
    assert caplog.records  # the audit did log (counts)


def test_the_merge_policy_records_the_mergeable_groups_for_the_loads(offices: dict[str, Path], tmp_path: Path) -> None:
    with Ledger.for_home(tmp_path / "home") as ledger:
        run_cross_office_audit(offices, tmp_path / "reports", ledger=ledger, policy=CrossOfficePolicy.of("separate"))
        assert ledger.merge_groups() == {}  # `separate` changes nothing
        audit = run_cross_office_audit(offices, tmp_path / "reports", ledger=ledger, policy=CrossOfficePolicy.of("merge"))
        assert audit.recorded == 2 + 2 + 2 + 3
        groups = ledger.merge_groups("east")
        assert [[m.source_id for m in members] for members in groups.values()] == [
            ["east:patient:204", "north:patient:4", "south:patient:104"]]
        assert "north:patient:5" not in {m.source_id for ms in ledger.merge_groups().values() for m in ms}
        # a later audit replaces the groups, it does not add to them
        run_cross_office_audit({"north": offices["north"], "south": offices["south"]}, tmp_path / "reports",
                               ledger=ledger, policy=CrossOfficePolicy.of("merge"))
        assert sum(len(ms) for ms in ledger.merge_groups().values()) == 2 + 2 + 2 + 2
        with pytest.raises(ValueError, match="needs the ledger"):
            run_cross_office_audit(offices, tmp_path / "reports", policy=CrossOfficePolicy.of("merge"))


def test_an_office_that_cannot_be_read_is_named(offices: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CrossOfficeAuditError, match="office west: no staged snapshot at"):
        detect_cross_office({**offices, "west": tmp_path / "missing.duckdb"})
    empty = tmp_path / "empty.duckdb"
    import duckdb

    duckdb.connect(str(empty)).close()
    with pytest.raises(CrossOfficeAuditError, match="office west: .* has no staged dentrix.patient table"):
        detect_cross_office({**offices, "west": empty})
    single = detect_cross_office({"north": offices["north"]})
    assert single.groups == [] and single.counts()["offices"] == 1


def test_the_policy_setting_is_validated_and_names_the_variable() -> None:
    assert CrossOfficePolicy.from_env({}).policy == "separate"
    assert CrossOfficePolicy.from_env({POLICY_ENV: "  MERGE "}).merge
    with pytest.raises(CrossOfficePolicyError, match=rf"^{POLICY_ENV}: must be one of separate, merge, got 'joined'$"):
        CrossOfficePolicy.from_env({POLICY_ENV: "joined"})
