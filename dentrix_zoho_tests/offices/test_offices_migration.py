"""Two offices migrated into one Zoho org (the emulator) as two partitions of the same jobs; one rolled back alone.

The jobs of ``build_definitions()`` with an offices file, run in process for one partition at a time:
each office's sample lands in Zoho with its own Source_System_IDs and its own reports folder, and the
whole rollback of one office (the partitioned rollback job) leaves every record of the other as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.source.synthetic import PracticeFiles, generate_practice
from dentrix_zoho.zoho_emulator.testing import running_emulator

pytestmark = pytest.mark.slow

OWNER = "office.manager@dental.example.com"
OFFICES = {"north": (1, 7), "south": (2, 11)}  # office number and seed of each synthetic practice


@pytest.fixture(scope="module")
def dso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dg.Definitions, Path, Any]]:
    base = tmp_path_factory.mktemp("dso_migration")
    home = base / "home"
    home.mkdir()
    entries, emails = [], {OWNER}
    for office_id, (number, seed) in OFFICES.items():
        db = base / f"{office_id}.db"
        generate_practice(db, scale="tiny", seed=seed, as_of=date(2026, 11, 1), office=number)
        files = PracticeFiles(db)
        providers = yaml.safe_load(files.provider_map.read_text(encoding="utf-8"))
        providers["default_owner_email"] = OWNER
        (base / f"{office_id}_providers.yaml").write_text(yaml.safe_dump(providers), encoding="utf-8")
        emails |= {e for e in providers["providers"].values() if e}
        entries.append(f"  {office_id}:\n    dentrix: {{url: 'sqlite:///{db}'}}\n"
                       f"    image_dir: {files.images_dir}\n    provider_map: {base / (office_id + '_providers.yaml')}\n"
                       "    time_zone: America/Chicago\n")
    (home / "offices.yaml").write_text("offices:\n" + "".join(entries), encoding="utf-8")
    users = base / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [
        {"first_name": "User", "last_name": str(i), "email": e} for i, e in enumerate(sorted(emails))]}),
        encoding="utf-8")
    mp = pytest.MonkeyPatch()
    with running_emulator(base / "zoho", users=1, extra_args=["--users-file", str(users)]) as emu:
        for name in ("DENTRIX_SOURCE", "DENTRIX_OFFICE_ID", "DENTRIX_IMAGE_DIR", "DENTRIX_PROVIDER_MAP",
                     "DENTRIX_OFFICES_FILE", "DENTRIX_ZOHO_LEDGER_URL", "ZOHO_DC"):
            mp.delenv(name, raising=False)
        for key, value in {
            "DENTRIX_ZOHO_HOME": str(home), "DENTRIX_AS_OF": "2026-11-01", "ZOHO_EDITION": "enterprise",
            "ZOHO_API_BASE": emu.base_url, "ZOHO_ACCOUNTS_URL": emu.base_url, "ZOHO_UPLOAD_URL": emu.base_url,
            "ZOHO_CLIENT_ID": emu.client_id, "ZOHO_CLIENT_SECRET": emu.client_secret,
            "ZOHO_REFRESH_TOKEN": emu.refresh_token,
        }.items():
            mp.setenv(key, value)
        from dentrix_zoho.definitions import build_definitions

        try:
            yield build_definitions(), home, emu
        finally:
            mp.undo()


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
