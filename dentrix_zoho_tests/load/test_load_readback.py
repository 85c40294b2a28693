"""Read-back in batches: the diff report, reconciliation and the human-edit checks read records many at a
time (GET /{module}?ids=…), counted from the client's API-call events against the emulator, and find
what one GET per record finds."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.load import LoadContext, LoadOptions, load_all
from dentrix_zoho.load import diff_report
from dentrix_zoho.load.readback import ReadBack
from dentrix_zoho.load.reconcile import reconcile_balances, reconcile_parents, reconcile_zoho_counts
from dentrix_zoho.load.zoho_reads import current_stamps
from dentrix_zoho.plan.counts import count_migration
from dentrix_zoho.plan.estimate import EstimateInputs, estimate_phases
from dentrix_zoho.zoho import ZohoClient, ZohoConfig, limits
from dentrix_zoho.zoho.events import ApiCallEvent

pytestmark = pytest.mark.slow
LIST = "/crm/v8/{module}"
BY_ID = "/crm/v8/{module}/{record_id}"
ATTACHMENTS = "/crm/v8/{module}/{record_id}/Attachments"


@pytest.fixture(scope="module")
def loaded(shaped_practice: Any, tmp_path_factory: pytest.TempPathFactory, kit: Any) -> Iterator[dict[str, Any]]:
    """The tiny practice loaded once into an emulator; tests read it back through counting clients."""
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    root = tmp_path_factory.mktemp("readback")
    users = kit.write_users_file(root / "users.yaml")
    with running_emulator(root / "emu", extra_args=["--users-file", str(users)]) as handle:
        world = kit.World(handle, shaped_practice.duckdb_path, root / "ledger.sqlite", shaped_practice.spec)
        load_all(world.context())
        yield {"world": world, "handle": handle}
        world.client.close()


class Counting:
    """A client on the loaded emulator whose every API call is kept (events carry no ids or values)."""

    def __init__(self, handle: Any) -> None:
        self.events: list[ApiCallEvent] = []
        self.client = ZohoClient(ZohoConfig(
            api_base=handle.base_url, accounts_url=handle.base_url, client_id=handle.client_id,
            client_secret=handle.client_secret, refresh_token=handle.refresh_token, edition="enterprise", users=5,
            backoff_base=0.002, backoff_cap=0.02), event_sink=self.events.append)

    def calls(self, path: str, method: str = "GET") -> Counter[str]:
        return Counter(str(e.module) for e in self.events if e.path_template == path and e.method == method
                       and e.outcome != "retry")

    def context(self, world: Any) -> LoadContext:
        return LoadContext(world.duckdb_path, self.client, world.ledger, "office-1", world.ledger.start_run("sample", "office-1"),
                           world.spec, world.owners, world.schema, LoadOptions())


def _ours(world: Any, module: str) -> list[Any]:
    return list(world.ledger.crosswalk_rows(module=module, office_id="office-1", deleted=False))


def _field_groups(client: ZohoClient, module: str) -> int:
    # The compared fields of a module are some of its fields: at most this many field groups per id chunk.
    return max(1, math.ceil(len(client.fields(module)) / limits.FIELDS_PER_GET))


class _OneGetPerRecord:
    """The reference: every record read alone with GET /{module}/{id}, one after another, as the diff
    report used to (attachments through the same listings per parent, as before)."""

    def __init__(self, reader: ReadBack) -> None:
        self.reader = reader
        self.wanted: dict[tuple[str, str], None] = {}
        self.parents: dict[tuple[str, str], None] = {}

    def add(self, module: str, zoho_id: str, fields: Any, whole: Any = None) -> None:
        self.wanted[(module, str(zoho_id))] = None

    def add_parent(self, parent: tuple[str, str]) -> None:
        self.parents[parent] = None

    def close(self) -> None:
        pass

    def finish(self) -> Any:
        client = self.reader.client
        records: dict[str, dict[str, dict[str, Any]]] = {}
        for module, zoho_id in self.wanted:
            record = client.get(module, zoho_id)
            if record is not None:
                records.setdefault(module, {})[zoho_id] = record
        return records, {p: client.list_attachments(*p) for p in self.parents}


def _emulator_calls(handle: Any) -> Counter[str]:
    """What the emulator itself counted, by route (token calls are not API calls)."""
    return Counter({k: v for k, v in handle.usage()["calls"].items() if "oauth" not in k and "__emulator__" not in k})


def test_the_estimate_predicts_the_read_back_the_emulator_counts(loaded: dict[str, Any], tmp_path: Path) -> None:
    """The estimate's reconciliation and diff-report phases, counted before the load from the shaped rows
    alone, against the calls the emulator answered for them: equal, route by route in total."""
    world, handle = loaded["world"], loaded["handle"]
    counts = count_migration(world.duckdb_path, "office-1")  # as the estimate sees it before the first run
    phases, _ = estimate_phases(counts, EstimateInputs.build(edition="enterprise", users=5, scope="sample"))
    predicted = Counter()
    for p in phases:
        predicted[p.phase] += p.calls
    assert predicted["diff report read-back"] > 0 and predicted["reconciliation"] > 0

    counting = Counting(handle)  # a fresh client, as the Dagster asset has: field metadata not cached
    before = _emulator_calls(handle)
    summary = diff_report.write_diff_report(counting.context(world), tmp_path / "report")
    used_diff = _emulator_calls(handle) - before
    assert summary.subform_reads > 0 and summary.attachment_listings > 0
    assert sum(used_diff.values()) == predicted["diff report read-back"], used_diff

    counting = Counting(handle)
    before = _emulator_calls(handle)
    reconcile_zoho_counts(counting.client, world.ledger, "office-1", world.schema, attempts=1, recheck_seconds=0)
    reconcile_parents(counting.client, world.ledger, "office-1", world.schema)
    reconcile_balances(world.duckdb_path, counting.client, world.ledger, "office-1", world.schema)
    used_recon = _emulator_calls(handle) - before
    assert sum(used_recon.values()) == predicted["reconciliation"], used_recon
    # and the client saw every call the emulator answered (the per-module counts below rest on it)
    api = [e for e in counting.events if e.outcome != "retry" and "oauth" not in e.path_template]
    assert len(api) == sum(used_recon.values())


def test_diff_report_reads_in_batches_and_finds_what_one_get_per_record_finds(
        loaded: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = loaded["world"]
    # A record changed in Zoho, so that the findings are not all "match".
    target = _ours(world, "Contacts")[0].zoho_id
    assert world.client.update("Contacts", [{"id": target, "First_Name": "Tampered"}])[0].ok

    batched = Counting(loaded["handle"])
    before = _emulator_calls(loaded["handle"])
    summary = diff_report.write_diff_report(batched.context(world), tmp_path / "batched")
    at_emulator = _emulator_calls(loaded["handle"]) - before
    assert summary.mismatches >= 1 and summary.records > 1_000, summary.summary()

    lists, singles = batched.calls(LIST), batched.calls(BY_ID)
    # The emulator answered exactly the calls the client reports per module.
    assert at_emulator[f"GET {LIST}"] == sum(lists.values())
    assert at_emulator[f"GET {BY_ID}"] == sum(singles.values())
    assert at_emulator[f"GET {ATTACHMENTS}"] == summary.attachment_listings
    for module in ("Contacts", "Leads", "Events", "Tasks", "Calls", "Notes"):
        n = len(_ours(world, module))
        assert n > 0, module
        allowed = math.ceil(n / limits.IDS_PER_GET) * _field_groups(batched.client, module)
        assert 0 < lists[module] <= allowed, (module, lists[module], allowed)
    # GET by id only for records with subform rows (insurance plans on Contacts), counted apart.
    assert set(singles) <= {"Contacts"} and singles["Contacts"] == summary.subform_reads > 0
    assert summary.list_reads == sum(lists.values())
    assert summary.read_calls_minimum <= summary.list_reads
    assert summary.attachment_listings == sum(batched.calls(ATTACHMENTS).values())

    reference = Counting(loaded["handle"])
    monkeypatch.setattr(diff_report, "ReadStream", _OneGetPerRecord)
    expected = diff_report.write_diff_report(reference.context(world), tmp_path / "reference")
    assert sum(reference.calls(BY_ID).values()) > 10 * sum(lists.values())  # the reference did read one by one
    assert summary.csv_path.read_bytes() == expected.csv_path.read_bytes()
    assert (summary.records, summary.fields_compared, summary.mismatches, summary.missing_in_zoho) == (
        expected.records, expected.fields_compared, expected.mismatches, expected.missing_in_zoho)


def test_reconciliation_reads_ours_in_batches(loaded: dict[str, Any]) -> None:
    world = loaded["world"]
    counting = Counting(loaded["handle"])
    before = _emulator_calls(loaded["handle"])
    parents = reconcile_parents(counting.client, world.ledger, "office-1", world.schema)
    balances = reconcile_balances(world.duckdb_path, counting.client, world.ledger, "office-1", world.schema)
    at_emulator = _emulator_calls(loaded["handle"]) - before
    assert parents.passed, parents.counts
    assert balances.passed, balances.counts
    lists = counting.calls(LIST)
    assert not counting.calls(BY_ID)
    assert at_emulator == Counter({f"GET {LIST}": sum(lists.values())})  # nothing but multi-id reads
    for module in ("Events", "Tasks", "Calls", "Notes"):
        assert 0 < lists[module] <= math.ceil(len(_ours(world, module)) / limits.IDS_PER_GET), module
    assert 0 < lists["Contacts"] <= math.ceil(len(_ours(world, "Contacts")) / limits.IDS_PER_GET)

    # A child whose parent lookup was changed in Zoho is found by the batched read.
    task = _ours(world, "Tasks")[0]
    lead = world.client.insert("Leads", [{"Last_Name": "Stranger", "Company": "Elsewhere"}])[0]
    assert lead.ok and lead.zoho_id
    moved = world.client.update("Tasks", [{"id": task.zoho_id, "What_Id": {"id": lead.zoho_id},
                                           "$se_module": "Leads", "Who_Id": None}])[0]
    assert moved.ok, moved
    try:
        broken = reconcile_parents(counting.client, world.ledger, "office-1", world.schema)
        assert not broken.passed and broken.counts["modules"]["Tasks"]["broken"] == 1
    finally:
        world.client.delete("Leads", [lead.zoho_id])

    counts = reconcile_zoho_counts(counting.client, world.ledger, "office-1", world.schema, attempts=1,
                                   recheck_seconds=0)
    assert counts.counts["modules"]["Attachments"]["ledger"] == counts.counts["modules"]["Attachments"]["zoho"]


def test_human_edit_checks_read_stamps_in_batches(loaded: dict[str, Any]) -> None:
    world = loaded["world"]
    rows = _ours(world, "Events")
    counting = Counting(loaded["handle"])
    stamps = current_stamps(counting.client, "Events", [r.zoho_id for r in rows])
    assert set(stamps) == {r.zoho_id for r in rows}
    assert all(stamps[r.zoho_id]["Modified_Time"] and stamps[r.zoho_id]["Modified_By"]["id"] for r in rows)
    assert counting.calls(LIST)["Events"] == math.ceil(len(rows) / limits.IDS_PER_GET)
    assert not counting.calls(BY_ID) and not counting.calls("/crm/v8/coql", "POST")
    # Same stamps as a GET by id of the same record.
    one = counting.client.get("Events", rows[0].zoho_id)
    assert one is not None and stamps[rows[0].zoho_id]["Modified_Time"] == one["Modified_Time"]


def test_a_long_read_back_reports_progress_on_the_callers_thread(
    loaded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dentrix_zoho.load.readback import ReadBack, ReadRequest
    from dentrix_zoho.progress import PROGRESS_PREFIX, reporting_to

    monkeypatch.setenv("DENTRIX_ZOHO_PROGRESS_SECONDS", "0.000001")  # every answered call is "10 s later"
    world = loaded["world"]
    counting = Counting(loaded["handle"])
    ids = [row.zoho_id for row in _ours(world, "Events")]
    lines: list[str] = []
    # The sink is the caller's (a context variable the worker threads do not see): the lines must still come.
    with reporting_to(lines.append):
        records, _ = ReadBack(counting.client, workers=4).read_many([ReadRequest("Events", ids, ("Subject",))])
    assert set(records["Events"]) == set(ids)
    calls = sum(counting.calls(LIST).values())  # the multi-id reads (not the field metadata before them)
    assert lines and all(line.startswith(PROGRESS_PREFIX + "read-back: ") for line in lines)
    assert f"{calls:,}/{calls:,} calls (100%)" in lines[-1]
