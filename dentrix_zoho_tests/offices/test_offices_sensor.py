"""The offices sensor: partitions follow the file, but an office with records in Zoho keeps its partition."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from dentrix_zoho.defs.offices import OFFICES_PARTITIONS_NAME, build_offices_sensor
from dentrix_zoho.defs.workspace_resource import WorkspaceResource
from dentrix_zoho.ledger import Ledger
from dentrix_zoho.offices import OfficesError


def offices_yaml(path: Path, *ids: str) -> None:
    path.write_text("offices:\n" + "".join(
        f"  {office_id}:\n    dentrix: {{url: 'sqlite:///{office_id}.db'}}\n    time_zone: UTC\n" for office_id in ids
    ), encoding="utf-8")


class Offices:
    """The sensor against a real ephemeral instance and a real (SQLite) ledger."""

    def __init__(self, tmp_path: Path) -> None:
        self.file = tmp_path / "offices.yaml"
        self.home = tmp_path / "home"
        self.instance = dg.DagsterInstance.ephemeral()
        self.workspace = WorkspaceResource(home=str(self.home), offices_file=str(self.file))
        self.ledger = Ledger(self.workspace.resolved_ledger_url)
        self.sensor = build_offices_sensor()

    def tick(self, *, apply: bool = True) -> dg.SensorResult:  # the evaluation data
        context = dg.build_sensor_context(instance=self.instance, resources={"workspace": self.workspace})
        data = self.sensor.evaluate_tick(context)
        if apply:
            for request in data.dynamic_partitions_requests or []:
                if isinstance(request, dg.AddDynamicPartitionsRequest):
                    self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
                else:
                    for key in request.partition_keys:
                        self.instance.delete_dynamic_partition(request.partitions_def_name, key)
        return data

    @property
    def partitions(self) -> list[str]:
        return sorted(self.instance.get_dynamic_partitions(OFFICES_PARTITIONS_NAME))

    def migrated(self, office_id: str, zoho_id: str) -> str:
        run_id = self.ledger.start_run("full", office_id)
        self.ledger.record_write(run_id, office_id, "patient", f"{office_id}:patient:1", "Contacts", zoho_id,
                                 row_hash="h", created=True, zoho_modified_time="2026-11-01T10:00:00+00:00")
        self.ledger.finish_run(run_id, "succeeded")
        return run_id


@pytest.fixture()
def offices(tmp_path: Path) -> Offices:
    return Offices(tmp_path)


def _requests(data: object) -> list[tuple[str, list[str]]]:
    return [("add" if isinstance(r, dg.AddDynamicPartitionsRequest) else "delete", list(r.partition_keys))
            for r in data.dynamic_partitions_requests or []]  # type: ignore[attr-defined]


def test_new_offices_get_partitions_and_a_second_tick_changes_nothing(offices: Offices) -> None:
    offices_yaml(offices.file, "north", "south")
    assert _requests(offices.tick()) == [("add", ["north", "south"])]
    assert offices.partitions == ["north", "south"]
    again = offices.tick()
    assert _requests(again) == [] and "2 office partition(s) in step" in (again.skip_message or "")


def test_a_removed_office_with_records_in_zoho_keeps_its_partition_until_rolled_back(offices: Offices) -> None:
    offices_yaml(offices.file, "north", "south")
    offices.tick()
    offices.migrated("south", "5001")

    # Both leave the file, east joins: north (nothing in Zoho) goes, south (a Contact in Zoho) stays.
    offices_yaml(offices.file, "east")
    assert _requests(offices.tick()) == [("add", ["east"]), ("delete", ["north"])]
    assert offices.partitions == ["east", "south"]
    held = offices.tick()
    assert _requests(held) == []
    assert "kept the partition of office south" in (held.skip_message or "")
    assert "dentrix-zoho rollback --office south --all" in (held.skip_message or "")

    # Another office's records do not hold south's partition, nor do south's hold another's.
    offices.migrated("east", "5002")
    # Once south is rolled back (its Contact deleted, as the rollback marks it), the partition goes.
    offices.ledger.mark_deleted("rollback-test", "Contacts", ["5001"])
    assert _requests(offices.tick()) == [("delete", ["south"])]
    assert offices.partitions == ["east"]


def test_a_broken_file_fails_the_tick_and_leaves_the_partitions(offices: Offices) -> None:
    offices_yaml(offices.file, "north")
    offices.tick()
    offices.file.write_text("offices:\n  north:\n    dentrix: {url: 'sqlite:///n.db'}\n    time_zone: UTC\n"
                            "  north:\n    dentrix: {url: 'sqlite:///m.db'}\n    time_zone: UTC\n", encoding="utf-8")
    with pytest.raises(OfficesError, match=r"offices.yaml:5: duplicate office id 'north': also at line 2"):
        offices.tick()
    assert offices.partitions == ["north"]
