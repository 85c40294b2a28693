"""Two offices migrated into one Zoho org (the emulator) as two partitions of the same jobs; one rolled back alone.

The jobs of ``build_definitions()`` with an offices file, run in process for one partition at a time:
each office's sample lands in Zoho with its own Source_System_IDs and its own reports folder, and the
whole rollback of one office (the partitioned rollback job) leaves every record of the other as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho_tests.offices.office_org import OFFICES, office_org

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dg.Definitions, Path, Any]]:
    with office_org(tmp_path_factory.mktemp("dso_migration")) as org:
        yield org.defs, org.home, org.emu


def _source_ids(emu: Any) -> dict[str, dict[str, Any]]:
    """Every record in the org by its Source_System_ID."""
    found: dict[str, dict[str, Any]] = {}
    for records in emu.snapshot()["modules"].values():
        for record in records:
            key = next((v for k, v in record.items() if k.startswith("Source_System_ID") and v), None)
            if key:
                found[str(key)] = record
    return found


def test_two_offices_migrate_as_partitions_and_one_rolls_back_alone(dso) -> None:  # type: ignore[no-untyped-def]
    defs, home, emu = dso
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("offices", list(OFFICES))
    job = defs.resolve_job_def("sample_migration")

    for office_id in OFFICES:
        result = job.execute_in_process(instance=instance, partition_key=office_id, raise_on_error=False)
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        assert result.success and not failed, (office_id, failed)
        assert {c.partition for c in result.get_asset_check_evaluations()} == {office_id}
        folder = home.resolve() / "offices" / office_id
        assert (folder / "reports" / f"diff_report_{office_id}.html").exists()
        assert (folder / "zoho_schema.json").exists() and (folder / "zoho_owners.json").exists()
    assert not (home / "staging.duckdb").exists() and not (home / "reports").exists()

    ledger = Ledger(f"sqlite:///{home / 'ledger.sqlite'}")
    records = _source_ids(emu)
    by_office = {office_id: {k: v for k, v in records.items() if k.startswith(f"{office_id}:")} for office_id in OFFICES}
    assert all(by_office.values()) and sum(map(len, by_office.values())) == len(records)
    keyed = ("Contacts", "Leads", "Events", "Tasks", "Calls")  # the modules upserted on Source_System_ID
    for office_id in OFFICES:
        ours = {r.source_id for r in ledger.crosswalk_rows(office_id=office_id, deleted=False) if r.zoho_module in keyed}
        assert ours and ours <= set(by_office[office_id]), office_id
    south_before = json.dumps(by_office["south"], sort_keys=True)

    rollback = defs.resolve_job_def("rollback_migration").execute_in_process(
        instance=instance, partition_key="north", raise_on_error=False,
        run_config={"ops": {"rollback": {"config": {"all_runs": True}}}})
    assert rollback.success
    after = _source_ids(emu)
    assert not [k for k in after if k.startswith("north:")]
    assert json.dumps({k: v for k, v in after.items() if k.startswith("south:")}, sort_keys=True) == south_before
    assert sum(ledger.counts("north").values()) == 0 and sum(ledger.counts("south").values()) > 0
