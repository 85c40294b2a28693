"""The migration estimate's numbers against hand-computed ones, the verdicts, and bad input."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.plan.counts import MigrationCounts, NothingShaped, StepCounts, count_migration
from dentrix_zoho.plan.estimate import EstimateInputError, EstimateInputs, estimate_migration
from dentrix_zoho.zoho import limits

OFFICE = "office-1"
EDITIONS = ("free", "standard", "professional", "enterprise", "ultimate")


def test_counts_of_the_hand_built_office(office_home: Any) -> None:
    counts = count_migration(office_home() / "staging.duckdb", OFFICE)
    by_step = {s.step: s for s in counts.steps}
    assert (by_step["responsible_parties"].creates, by_step["patients"].creates) == (1, 2)
    assert by_step["patients"].bulk_carriable == [2]  # no subform, no date-time: one flat CSV holds them
    assert by_step["responsible_parties"].bulk_carriable == [0]  # the insurance subform needs the record API
    assert by_step["events"].creates == 2 and by_step["notes"].creates == 2
    assert (by_step["attachments"].creates, by_step["attachments"].held_back) == (1, 2)  # missing, over the limit
    assert by_step["leads"].shaped == 0 and by_step["ledger_pdfs"].shaped == 0


# Hand count for the office above, scope full, first run, custom fields already created:
#   owner resolution: 1 users page                                                     1 call
#   responsible parties, patients, events: a COQL pre-scan, one upsert call each (1, 2, 2 records:
#     1 credit each); Bulk Write's row test takes the field types schema set-up handed off, so no
#     field metadata read                                                              3 x 2 calls
#   notes: one call of 2 notes; attachments: one upload (the two held-back files go nowhere)   2 calls
#   reconciliation (load.reconcile): a COQL COUNT for each of the 5 keyed modules, one page of the
#     org's notes (2 notes under 2 parents: one page beats two listings), one attachment listing
#     (patient 2, the only parent with a file), one multi-id read of the 2 events and one of the
#     2 notes; no aging staged, so no balance read                                     9 calls
# Every call costs 1 credit here (no write call carries more than 10 records).
HAND_CALLS = 1 + 6 + 2 + 9
# owners, pre-scans and the notes page: one call at a time
SEQUENTIAL = 1 + 3 + 1
# the five write/upload phases, the 5 COUNTs together (at most 10 heavy calls at once), the three
# reconciliation reads, one round each
PARALLEL_ROUNDS = 5 + 1 + 3


@pytest.mark.parametrize("edition", EDITIONS)
def test_hand_built_office_on_each_edition(office_home: Any, edition: str) -> None:
    counts = count_migration(office_home() / "staging.duckdb", OFFICE)
    inputs = EstimateInputs.build(edition=edition, users=5, latency_ms=100)
    estimate = estimate_migration(counts, inputs)
    assert estimate.calls == HAND_CALLS and estimate.credits == HAND_CALLS
    assert estimate.wall_seconds == pytest.approx((SEQUENTIAL + PARALLEL_ROUNDS) * 0.1)
    daily = {"free": 5_000, "standard": 50_000 + 5 * 250, "professional": 50_000 + 5 * 500,
             "enterprise": 50_000 + 5 * 1_000, "ultimate": 50_000 + 5 * 2_000}[edition]
    assert inputs.daily_credits == daily and inputs.usable_credits_per_day == int(daily * 0.8)
    assert inputs.usable_concurrency == {"free": 5, "standard": 10, "professional": 15, "enterprise": 20,
                                         "ultimate": 25}[edition]
    assert (estimate.verdict, estimate.verdict_text, estimate.days, estimate.exit_code) == (
        "fits", "fits in one day", 1, 0)
    modules = {m.module: m for m in estimate.modules}
    assert modules["Contacts"].records == 3 and modules["Contacts"].path == "records"
    assert modules["Attachments"].held_back == 2 and modules["Notes"].bulk_credits is None
    # Bulk Write for the 2 patients: one job (500 to create it, upload, download, polls) + the guarantor's call
    assert modules["Contacts"].bulk_credits is not None and modules["Contacts"].bulk_credits > 500
    assert estimate.cheapest_credits == estimate.credits  # the record API is the cheaper path everywhere here


NOTES_PER_PARENT = 5  # the hand-built counts below hang their notes 5 to a patient


def _counts(events: int = 0, uploads: int = 0, notes: int = 0) -> MigrationCounts:
    steps = [
        StepCounts("events", "Events", "upsert", shaped=events, creates=events, lacking=0,
                   waves=[events] if events else [], bulk_carriable=[0] if events else []),
        StepCounts("notes", "Notes", "notes", shaped=notes, creates=notes, waves=[notes] if notes else []),
        StepCounts("attachments", "Attachments", "attachments", shaped=uploads, creates=uploads,
                   waves=[uploads] if uploads else []),
    ]
    return MigrationCounts(OFFICE, "full", steps, note_children=[NOTES_PER_PARENT] * (notes // NOTES_PER_PARENT))


@pytest.mark.parametrize("edition,heavy,light", [("free", 5, 5), ("standard", 10, 10), ("professional", 10, 15),
                                                 ("enterprise", 10, 20), ("ultimate", 10, 25)])
def test_wall_time_follows_the_edition_and_the_cap_on_heavy_calls(edition: str, heavy: int, light: int) -> None:
    estimate = estimate_migration(_counts(events=2_500, uploads=100), EstimateInputs.build(edition=edition,
                                                                                           latency_ms=200))
    phases = {p.phase: p for p in estimate.phases if p.step}
    assert (phases["record writes"].calls, phases["record writes"].credits) == (25, 250)
    assert phases["record writes"].seconds == pytest.approx(math.ceil(25 / heavy) * 0.2)
    assert phases["uploads"].seconds == pytest.approx(math.ceil(100 / light) * 0.2)


# Reconciliation of N notes and nothing else: 5 COUNTs, the org's notes 200 a page (N/5 parents would be
# more listings), our notes 100 ids a read.
def _reconcile_notes(n: int) -> int:
    return 5 + max(1, math.ceil(n / 200)) + math.ceil(n / 100)


def test_several_days_on_a_small_budget_pause_or_refuse() -> None:
    counts = _counts(notes=50_000)
    # 500 calls of 100 notes (10 credits each), one users page, reconciliation 5 + 250 + 500 calls
    hand = 500 * 10 + 1 + _reconcile_notes(50_000)
    paused = estimate_migration(counts, EstimateInputs.build(edition="free", on_budget_exhausted="pause"))
    assert paused.credits == hand and paused.calls == 500 + 1 + _reconcile_notes(50_000)
    assert paused.inputs.usable_credits_per_day == 4_000  # Free: 5,000 less the 20 % reserve
    assert paused.verdict == "needs_days" and paused.days == math.ceil(hand / 4_000) == 2
    assert paused.verdict_text.startswith("needs 2 days: run with pause") and paused.exit_code == 3
    assert not paused.refused_by_policy
    stopped = estimate_migration(counts, EstimateInputs.build(edition="free", on_budget_exhausted="stop"))
    assert stopped.refused_by_policy and stopped.exit_code == 2
    assert "ZOHO_ON_BUDGET_EXHAUSTED is stop" in stopped.verdict_text and "set it to pause" in stopped.verdict_text
    # the same migration fits one day of Standard's credits
    assert estimate_migration(counts, EstimateInputs.build(edition="standard")).verdict == "fits"


def test_more_than_thirty_days_cannot_run_and_names_the_settings() -> None:
    counts = _counts(events=1_300_000)
    # writes, users page (no field metadata: Bulk Write does not take Events); reconciliation: 5 COUNTs,
    # no notes to list (no parent of ours holds one), the events read back 100 ids a call
    hand = 13_000 * 10 + 1 + 5 + 13_000
    estimate = estimate_migration(counts, EstimateInputs.build(edition="free", on_budget_exhausted="pause"))
    assert estimate.credits == hand
    assert estimate.verdict == "cannot_run" and estimate.exit_code == 2
    assert estimate.days == math.ceil(hand / 4_000) > 30
    for setting in ("--users / ZOHO_USERS", "--addon-credits / ZOHO_ADDON_CREDITS", "--edition / ZOHO_EDITION",
                    "--reserve / ZOHO_PLAN_RESERVE"):
        assert setting in estimate.verdict_text
    # add-ons lift the limit: Professional with 10 users and 1M add-on credits fits in one day
    rich = EstimateInputs.build(edition="professional", users=10, addon_credits=1_000_000)
    assert rich.daily_credits == 50_000 + 10 * 500 + 1_000_000
    assert estimate_migration(counts, rich).verdict == "fits"


def test_an_edition_without_api_access_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(limits.API_ACCESS, "standard", False)
    estimate = estimate_migration(_counts(events=10), EstimateInputs.build(edition="standard"))
    assert estimate.verdict == "cannot_run" and "no API access" in estimate.verdict_text
    assert "--edition / ZOHO_EDITION" in estimate.verdict_text


def test_every_edition_has_api_access_as_zoho_documents() -> None:
    assert all(limits.API_ACCESS[e] for e in EDITIONS)


@pytest.mark.parametrize("values,setting", [
    ({"users": 0}, "--users / ZOHO_USERS"),
    ({"users": -3}, "--users / ZOHO_USERS"),
    ({"users": 250_000}, "--users / ZOHO_USERS"),
    ({"reserve": 0.95}, "--reserve / ZOHO_PLAN_RESERVE"),
    ({"reserve": -0.1}, "--reserve / ZOHO_PLAN_RESERVE"),
    ({"addon_credits": -1}, "--addon-credits / ZOHO_ADDON_CREDITS"),
    ({"latency_ms": 0}, "--latency-ms / ZOHO_LATENCY_MS"),
    ({"edition": "gold"}, "--edition / ZOHO_EDITION"),
])
def test_bad_input_names_the_setting(values: dict[str, Any], setting: str) -> None:
    with pytest.raises(EstimateInputError) as err:
        EstimateInputs.build(**values)
    assert setting in str(err.value)
    if "edition" in values:
        assert all(e in str(err.value) for e in EDITIONS)


def test_inputs_from_the_environment_and_aliases() -> None:
    inputs = EstimateInputs.from_env({"ZOHO_EDITION": "Zoho One", "ZOHO_USERS": "12", "ZOHO_PLAN_RESERVE": "0.5",
                                      "ZOHO_MAX_CONCURRENCY": "50"}, users=None, latency_ms=150)
    assert (inputs.edition, inputs.users, inputs.reserve, inputs.latency_ms) == ("enterprise", 12, 0.5, 150)
    assert inputs.usable_concurrency == 20  # an override above the edition's is capped
    with pytest.raises(EstimateInputError, match="--users / ZOHO_USERS"):
        EstimateInputs.from_env({"ZOHO_USERS": "many"})


def test_nothing_shaped_says_what_to_run_first(tmp_path: Path) -> None:
    import duckdb

    duckdb.connect(str(tmp_path / "staging.duckdb")).close()
    with pytest.raises(NothingShaped, match="dentrix-zoho stage"):
        count_migration(tmp_path / "staging.duckdb", OFFICE)


# The same office as a sample of its three patients: the load and reconciliation as above, and the diff
# report's read-back (load.diff_report): the field metadata of the six modules it compares (one call
# each), the guarantor by id (insurance subform rows: only GET by id returns them), patients 2 and 3 in
# one multi-id GET, the 2 events in one, the 2 notes in one, and patient 2's attachments listed once.
HAND_DIFF_CALLS = 6 + 1 + 1 + 1 + 1 + 1


@pytest.mark.parametrize("edition", EDITIONS)
def test_sample_scope_adds_the_diff_reports_read_back(office_home: Any, edition: str) -> None:
    sample = {f"{OFFICE}:patient:{n}" for n in (1, 2, 3)}
    counts = count_migration(office_home() / "staging.duckdb", OFFICE, scope="sample", sample=sample)
    estimate = estimate_migration(counts, EstimateInputs.build(edition=edition, users=5, scope="sample"))
    phases = estimate.by_phase()
    assert phases["diff report read-back"]["calls"] == phases["diff report read-back"]["credits"] == HAND_DIFF_CALLS
    assert estimate.calls == HAND_CALLS + HAND_DIFF_CALLS
    reads = counts.diff_reads
    assert (reads.records, reads.list_calls, reads.subform_reads, reads.attachment_listings) == (7, 3, 1, 1)
    assert reads.minimum == 3  # the multi-id GETs are the fewest possible
    assert estimate.verdict == "fits"


def test_the_human_edit_check_reads_stamps_100_ids_a_call() -> None:
    """A re-run of 250 changed events we wrote before: their Modified_Time/By by 3 multi-id GETs, and once
    who we are; then 3 update calls (25 credits for 250 records)."""
    step = StepCounts("events", "Events", "upsert", shaped=250, updates=250, stamped_updates=250,
                      waves=[250], bulk_carriable=[0])
    estimate = estimate_migration(MigrationCounts(OFFICE, "full", [step], in_zoho={"Events": 250},
                                                  in_office={"Events": 250}),
                                  EstimateInputs.build(edition="enterprise"))
    check = [p for p in estimate.phases if p.phase == "human-edit check"]
    assert sum(p.calls for p in check) == sum(p.credits for p in check) == math.ceil(250 / limits.IDS_PER_GET) + 1
    assert not any(p.heavy for p in check)  # a multi-id GET is not one of Zoho's "complex" calls
    writes = [p for p in estimate.phases if p.phase == "record writes"]
    assert (sum(p.calls for p in writes), sum(p.credits for p in writes)) == (3, 25)
    # reconciliation reads the office's 250 events back: 3 multi-id GETs
    recon = [p for p in estimate.phases if p.phase == "reconciliation" and p.module == "Events"]
    assert sum(p.calls for p in recon) == 1 + 3  # its COUNT and the parent-lookup reads


# -- the reads that choose their path, as the loader and reconciliation choose it (load.zoho_reads) ----


def _events_step(lacking: int) -> StepCounts:
    return StepCounts("events", "Events", "upsert", shaped=lacking, creates=lacking, lacking=lacking,
                      waves=[lacking], bulk_carriable=[0])


def _pre_scan(estimate: Any) -> tuple[int, int]:
    phases = [p for p in estimate.phases if p.phase == "pre-scan"]
    return sum(p.calls for p in phases), sum(p.credits for p in phases)


@pytest.mark.parametrize("lacking,office,expected", [
    (100, 0, (2, 2)),  # two `in` lookups of 50 (limit 100: 1 credit each) beat the smallest office read (3)
    (120, 0, (1, 3)),  # three lookups (3 credits) against one office read of 2,000 (3 credits, one call)
    (1_100, 0, (1, 3)),  # a fresh office: one COQL read of its records, however many other offices there are
    (800, 50_000, (16, 16)),  # a large office's few unknown rows: lookups, not 26 pages of its records
    (1_200, 50_000, (26, 78)),  # above COQL_LOOKUP_MAX: the office's 50,000 records, 2,000 a call
    (1_200, 4_000, (3, 9)),  # a last page that comes back exactly full is followed by one more call
])
def test_the_pre_scan_costs_what_the_office_holds_not_the_org(lacking: int, office: int,
                                                              expected: tuple[int, int]) -> None:
    for org in (office, office + 2_400_000):  # the rest of the org does not change it
        counts = MigrationCounts(OFFICE, "full", [_events_step(lacking)], in_zoho={"Events": org},
                                 in_office={"Events": office})
        assert _pre_scan(estimate_migration(counts, EstimateInputs.build(edition="enterprise"))) == expected


def test_a_later_step_of_the_module_reuses_the_office_read() -> None:
    """responsible parties then patients, both Contacts: one office read serves both; the patients' own
    choice counts the responsible parties created just before."""
    steps = [StepCounts("responsible_parties", "Contacts", "upsert", shaped=1_500, creates=1_500, lacking=1_500,
                        waves=[1_500], bulk_carriable=[0]),
             StepCounts("patients", "Contacts", "upsert", shaped=1_500, creates=1_500, lacking=1_500,
                        waves=[1_500], bulk_carriable=[0])]
    estimate = estimate_migration(MigrationCounts(OFFICE, "full", steps), EstimateInputs.build(edition="enterprise"))
    scans = [(p.step, p.calls) for p in estimate.phases if p.phase == "pre-scan"]
    assert scans == [("responsible_parties", 1)]


def test_notes_are_counted_by_the_cheaper_of_the_org_listing_and_a_listing_per_parent() -> None:
    from dentrix_zoho.load.zoho_reads import choose_notes_read

    notes = StepCounts("notes", "Notes", "notes", shaped=300, creates=300, waves=[300], bulk_carriable=[0])
    # An office of 30 patients with 10 notes each, in an org whose other offices hold 7,200 notes:
    # 30 parallel listings, not 38 pages of the org's notes (7,500 and 10 % more for notes not ours).
    small = MigrationCounts(OFFICE, "full", [notes], in_zoho={"Notes": 7_200}, note_children=[10] * 30)
    choice = choose_notes_read(small.zoho_after("Notes"), small.note_children)
    assert (choice.path, choice.calls, choice.org_pages_weighed) == ("per_parent", 30, math.ceil(8_250 / 200))
    # The same office alone in the org: one page of the org's notes (with the margin, 2 pages weighed)
    alone = MigrationCounts(OFFICE, "full", [notes], note_children=[10] * 30)
    choice = choose_notes_read(alone.zoho_after("Notes"), alone.note_children)
    assert (choice.path, choice.calls) == ("org_listing", 2)
    for counts, calls, parallel in ((small, 30, True), (alone, 2, False)):
        estimate = estimate_migration(counts, EstimateInputs.build(edition="enterprise"))
        # reconciliation's Notes: the count's read, then the parent-lookup reads of our 300 notes by id
        recon = [p for p in estimate.phases if p.phase == "reconciliation" and p.module == "Notes"]
        assert [(p.calls, p.parallel) for p in recon] == [(calls, parallel), (3, True)]
    # A tie goes to the parents (no guess in their count, read in parallel); none of ours: no call at all
    tie = choose_notes_read(360, [180, 180])  # 2 listings against 2 pages (396 notes weighed)
    assert (tie.parent_listings, tie.org_pages_weighed, tie.path) == (2, 2, "per_parent")
    assert choose_notes_read(360, [120, 120, 120]).path == "org_listing"
    assert choose_notes_read(10_000, []).calls == 0

