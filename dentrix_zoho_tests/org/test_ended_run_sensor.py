"""The run-failure sensor and the audit guard through Dagster: two synthetic practices sharing planted
patients, ``build_definitions()`` with an offices file, the real ``full_migration`` of each office's partition
on one emulator and an ephemeral instance.

Before the org-level audit, north's full migration stops at its first Contacts step and nothing reaches Zoho.
After it, a north run whose patients step claimed the shared people fails (Zoho refuses the integration's
token); its ledger run stays ``running`` and would keep south waiting. The sensor, evaluated on that run,
marks it failed and releases the claims; south then makes those people's Contacts, and north's next run
joins them: one Contact per person.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import select

from dentrix_zoho.defs.load.sensors import CANCELED_SENSOR, FAILURE_SENSOR
from dentrix_zoho.ledger import MergeCandidate
from dentrix_zoho.ledger import schema as s
from dentrix_zoho_tests.org.dso_kit import Dso, dagster_org

pytestmark = pytest.mark.slow

PATIENTS = dg.AssetKey(["zoho_load", "patients"])


@pytest.fixture(scope="module")
def dso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dso]:
    with dagster_org(tmp_path_factory.mktemp("dso_ended_runs")) as made:
        yield made


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The steps' error messages, with what caused them (what the UI shows for a failed step)."""
    messages = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return " ".join(messages)


def _contacts(dso: Dso) -> dict[str, str]:
    """Source_System_ID -> Zoho id of every Contact in the org."""
    return {str(r.get("Source_System_ID")): key.split("/")[1] for key, r in dso.records().items()
            if key.startswith("Contacts/")}


def _claims(dso: Dso, run_id: str) -> list[str]:
    with dso.ledger as ledger, ledger.engine.connect() as conn:
        return sorted(r.source_id for r in conn.execute(select(s.merge_claims).where(s.merge_claims.c.run_id == run_id)))


def _south_would(dso: Dso, north_ids: list[str]) -> set[str]:
    """South's decisions now for its records grouped with ``north_ids`` (a dry run: nothing recorded)."""
    with dso.ledger as ledger:
        groups = {key: members for key, members in ledger.merge_groups("south").items()
                  if any(m.source_id in north_ids for m in members)}
        candidates = [MergeCandidate("patient", m.source_id, "h", key,
                                     tuple((o.office_id, o.source_object, o.source_id) for o in members if o != m))
                      for key, members in groups.items() for m in members if m.office_id == "south"]
        run = ledger.start_run("full", "south", run_id="south-probe")
        decisions = ledger.settle_merge(run, "south", "Contacts", candidates, dry_run=True)
        ledger.finish_run(run, "succeeded")
    return {d.code for d in decisions}


def _evaluate(dso: Dso, result: dg.ExecuteInProcessResult) -> Any:
    sensor = dso.defs.get_repository_def().get_sensor_def(FAILURE_SENSOR)
    with dg.build_run_status_sensor_context(
        sensor_name=FAILURE_SENSOR,
        dagster_instance=dso.instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"workspace": dso.defs.resources["workspace"]},
    ) as context:
        return sensor(context)


def test_the_sensors_are_on_by_default_beside_the_offices_sensors(dso: Dso) -> None:
    sensors = {d.name: d for d in dso.defs.get_repository_def().sensor_defs}
    for name in (FAILURE_SENSOR, CANCELED_SENSOR):
        assert sensors[name].default_status == dg.DefaultSensorStatus.RUNNING, name
        assert isinstance(sensors[name], dg.RunStatusSensorDefinition), name


def test_a_failed_run_s_claims_released_by_the_sensor_let_south_load_and_north_s_next_run_join(
        dso: Dso, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before the org-level audit: refused at the first Contacts step, nothing in Zoho.
    early = dso.run("full_migration", "north")
    assert not early.success
    message = _failure(early)
    assert "dentrix-zoho org-audit" in message and "cross_office_audit" in message, message
    assert _contacts(dso) == {}
    assert dso.run("cross_office_audit").success

    # North loads up to its responsible parties, then a run of the rest fails: Zoho refuses its token.
    graph = dso.defs.resolve_asset_graph()
    selected = set(dso.defs.resolve_job_def("full_migration").asset_layer.selected_asset_keys)
    later = dg.AssetSelection.assets(PATIENTS).downstream().resolve(graph) & selected
    assert dso.run("full_migration", "north", asset_selection=sorted(selected - later)).success
    monkeypatch.setenv("ZOHO_REFRESH_TOKEN", "revoked-by-the-zoho-admin")
    failed = dso.run("full_migration", "north", asset_selection=sorted(later))
    monkeypatch.setenv("ZOHO_REFRESH_TOKEN", dso.emu.refresh_token)
    assert not failed.success
    claimed = _claims(dso, failed.run_id)
    assert claimed and all(sid.startswith("north:patient:") for sid in claimed)
    with dso.ledger as ledger:
        assert ledger.run(failed.run_id).status == "running"  # type: ignore[union-attr]
    assert _south_would(dso, claimed) == {"WAITING"}  # south would hold these people back, run after run
    contacts_before = _contacts(dso)
    assert not set(claimed) & set(contacts_before)

    _evaluate(dso, failed)
    with dso.ledger as ledger:
        run = ledger.run(failed.run_id)
        assert run is not None and run.status == "failed" and run.finished_at is not None
        releases = sorted(e.source_id for e in ledger.audit_entries(failed.run_id)  # type: ignore[misc]
                          if e.operation == "cross_office_release")
        assert releases == claimed
    assert _claims(dso, failed.run_id) == []
    assert _south_would(dso, claimed) == {"CLAIMED"}
    _evaluate(dso, failed)  # a second tick on the same run changes nothing
    with dso.ledger as ledger:
        assert len([e for e in ledger.audit_entries(failed.run_id) if e.operation == "cross_office_release"]) == len(claimed)

    south = dso.run("full_migration", "south")
    assert south.success
    with dso.ledger as ledger:
        partners = {m.source_id for members in ledger.merge_groups().values() if any(x.source_id in claimed for x in members)
                    for m in members if m.office_id == "south"}
    assert partners and partners <= set(_contacts(dso))  # south made their Contacts

    retry = dso.run("full_migration", "north")  # the office's retry: a new run, resuming from the ledger
    assert retry.success
    contacts = _contacts(dso)
    assert not set(claimed) & set(contacts)  # no second Contact: north joined south's
    with dso.ledger as ledger:
        for sid in claimed:
            joined = ledger.lookup("north", "patient", sid)
            assert joined is not None and joined.zoho_id in {contacts[p] for p in partners}, sid
        assert ledger.verify_chain().ok
