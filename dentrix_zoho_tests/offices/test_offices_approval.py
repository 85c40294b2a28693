"""Map approval per office through Dagster: an approval for north opens north's full load and not south's.

Two synthetic offices as partitions of ``build_definitions()``'s jobs, run in process against the Zoho
emulator. Approvals of another spec (the map before an edit) open nobody; north's own approval opens
north; south's full load (job and ad-hoc step) is refused naming the command that opens it, and nothing of
south reaches Zoho; an approval for every office then opens south too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dentrix_zoho.defs.load.assets import APPROVAL_KEY, load_key
from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load import LOAD_ORDER
from dentrix_zoho.mapping import approve_spec, spec_hash
from dentrix_zoho_tests.offices.office_org import OFFICES, office_org

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dg.Definitions, Path, Any]]:
    with office_org(tmp_path_factory.mktemp("dso_approval")) as org:
        yield org.defs, org.home, org.emu


def _office_records(emu: Any, office_id: str) -> int:
    """Records in the org whose Source_System_ID names the office."""
    return sum(1 for records in emu.snapshot()["modules"].values() for record in records
               if any(k.startswith("Source_System_ID") and str(v or "").startswith(f"{office_id}:")
                      for k, v in record.items()))


def _gate(result: dg.ExecuteInProcessResult) -> tuple[bool, str]:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "mapping_approved"]
    return evaluation.passed, evaluation.description or ""


def _loaded_steps(result: dg.ExecuteInProcessResult) -> set[str]:
    steps = {load_key(name) for name in LOAD_ORDER}
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key in steps}


def test_an_office_approval_opens_that_office_alone_and_one_for_every_office_opens_the_rest(dso) -> None:  # type: ignore[no-untyped-def]
    defs, home, emu = dso
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("offices", list(OFFICES))
    full = defs.resolve_job_def("full_migration")
    ledger = Ledger(f"sqlite:///{home / 'ledger.sqlite'}")
    current = spec_hash(Path(__file__).parents[2] / "mapping_specs" / "dentrix_to_zoho.yaml")

    # Approvals of the map as it was before an edit (another hash), for every office and for north: void.
    ledger.record_approval("0" * 64, "Dr. Avery")
    ledger.record_approval("0" * 64, "Pat Reviewer", office_id="north")
    gate_only = full.execute_in_process(instance=instance, partition_key="north", raise_on_error=False,
                                        asset_selection=[APPROVAL_KEY])
    passed, description = _gate(gate_only)
    assert not passed and "dentrix-zoho map approve --office north --by NAME" in description, description

    assert approve_spec(ledger, "Pat Reviewer", office_id="north") == current
    north = full.execute_in_process(instance=instance, partition_key="north", raise_on_error=False)
    failed = [e.check_name for e in north.get_asset_check_evaluations() if not e.passed]
    assert north.success and not failed, failed
    passed, description = _gate(north)
    assert passed and "the office's own approval by Pat Reviewer" in description, description
    assert _loaded_steps(north) == set(LOAD_ORDER)
    assert _office_records(emu, "north") > 0 and _office_records(emu, "south") == 0

    south = full.execute_in_process(instance=instance, partition_key="south", raise_on_error=False)
    assert not south.success
    passed, description = _gate(south)
    assert not passed and "not approved for office south" in description
    assert "dentrix-zoho map approve --office south --by NAME" in description, description
    assert _loaded_steps(south) == set()
    assert _office_records(emu, "south") == 0

    # A load step materialized on its own (no blocking check before it) refuses too, before any write.
    first = load_key(LOAD_ORDER[0])
    adhoc = full.execute_in_process(instance=instance, partition_key="south", raise_on_error=False,
                                    asset_selection=[first])
    assert not adhoc.success
    [failure] = [e for e in adhoc.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message if failure.step_failure_data.error else ""
    assert "not approved for office south" in message and "map approve --office south --by NAME" in message, message
    assert _office_records(emu, "south") == 0
    assert [r for r in ledger.runs() if r.office_id == "south"] == []  # no load run started for south

    approve_spec(ledger, "Dr. Avery")  # every office
    south = full.execute_in_process(instance=instance, partition_key="south", raise_on_error=False)
    failed = [e.check_name for e in south.get_asset_check_evaluations() if not e.passed]
    assert south.success and not failed, failed
    passed, description = _gate(south)
    assert passed and "approval for every office by Dr. Avery" in description, description
    assert _loaded_steps(south) == set(LOAD_ORDER) and _office_records(emu, "south") > 0
    passed, description = _gate(full.execute_in_process(instance=instance, partition_key="north",
                                                        asset_selection=[APPROVAL_KEY]))
    assert passed and "the office's own approval" in description  # north's own still names it
    ledger.close()
