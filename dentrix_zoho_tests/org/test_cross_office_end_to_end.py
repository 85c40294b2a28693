"""Policy ``merge`` end to end against the Zoho emulator: two offices share a patient, the org-level audit
groups them, the first office's load creates the Contact and the second's joins it (its children attach
to it), and rolling back one office keeps the Contact (and the other office's records byte for byte)
while the other still owns it; the last owner's rollback deletes it.

The loader's upsert step calls ``load.cross_office.split_for_merge`` itself: ``load_office`` below loads
every step with ``load_module`` under ``DENTRIX_CROSS_OFFICE_POLICY=merge``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load import LoadContext, LoadOptions, load_module, resolve_owners, setup_schema
from dentrix_zoho.load.context import LOAD_ORDER, LOAD_STEPS
from dentrix_zoho.load.reconcile import reconcile_accounting
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.org import POLICY_ENV, run_cross_office_audit
from dentrix_zoho.rollback.service import make_plan, new_rollback_run_id, run_rollback
from dentrix_zoho_tests.org.merge_kit import KIT, MERGE, NORTH, SHARED, SOUTH, build_office, children_of, office_records

pytestmark = pytest.mark.slow

class Org:
    """Two offices' DuckDB files, one emulator, one ledger, one client."""

    def __init__(self, handle: Any, root: Path) -> None:
        self.handle = handle
        self.ledger = Ledger(f"sqlite:///{root / 'ledger.sqlite'}")
        self.client = KIT.client_for(handle)
        self.spec = load_spec()
        self.schema = setup_schema(self.client, self.spec)
        self.owners = resolve_owners(self.client, KIT.provider_map(), ["DDS1"])
        self.ducks = {office: build_office(root / f"{office}.duckdb", office, root / f"files_{office}")
                      for office in (NORTH, SOUTH)}
        self.reports = root / "org" / "reports"

    def audit(self) -> None:
        audit = run_cross_office_audit(self.ducks, self.reports, ledger=self.ledger, policy=MERGE)
        assert [g.members for g in audit.result.groups] == [(SHARED[NORTH], SHARED[SOUTH])]

    def load_office(self, office: str, kind: str = "full") -> dict[str, Any]:
        run = self.ledger.start_run(kind, office)
        ctx = LoadContext(self.ducks[office], self.client, self.ledger, office, run, self.spec, self.owners,
                          self.schema, LoadOptions())
        results: dict[str, Any] = {}
        for name in LOAD_ORDER:
            result = load_module(ctx, name)
            assert result.failed == 0, (name, result.codes)
            results[name] = result
            if LOAD_STEPS[name].kind == "upsert":
                results[f"{name}.joined"] = result.cross_office_joined
        self.ledger.finish_run(run, "succeeded")
        return results

    def rollback(self, office: str | None) -> Any:
        plan = make_plan(self.ledger, None, True, office_id=office)
        result = run_rollback(plan, self.client, self.ledger, new_rollback_run_id())
        assert result.complete, result.summary()
        assert make_plan(self.ledger, None, True, office_id=office).is_empty
        return plan, result

    def records(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {module: {str(r["id"]): r for r in records} for module, records in self.handle.snapshot()["modules"].items()}

    def close(self) -> None:
        self.client.close()
        self.ledger.close()


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Org]:
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    monkeypatch.setenv(POLICY_ENV, "merge")

    users = KIT.write_users_file(tmp_path / "users.yaml")
    with running_emulator(tmp_path / "emu", extra_args=["--users-file", str(users)]) as handle:
        made = Org(handle, tmp_path)
        yield made
        made.close()


def _shared_contact(org: Org) -> str:
    row = org.ledger.lookup(NORTH, "patient", SHARED[NORTH])
    assert row is not None and not row.deleted
    return row.zoho_id


def test_one_contact_for_the_shared_patient_and_rolling_back_its_creator_keeps_it_for_the_other(org: Org) -> None:
    org.audit()
    north = org.load_office(NORTH)
    assert north["patients.joined"] == 0 and north["patients"].created == 2
    south = org.load_office(SOUTH)
    assert south["patients.joined"] == 1 and south["patients"].created == 1  # only its own patient was sent

    records = org.records()
    contacts = {r["Source_System_ID"]: zid for zid, r in records["Contacts"].items()}
    assert sorted(contacts) == [f"{NORTH}:patient:1", f"{NORTH}:patient:2", f"{SOUTH}:patient:8"]  # 3, not 4
    shared = _shared_contact(org)
    assert contacts[SHARED[NORTH]] == shared
    assert org.ledger.lookup(SOUTH, "patient", SHARED[SOUTH]).zoho_id == shared  # type: ignore[union-attr]
    # Both offices' children hang under the one Contact.
    assert children_of(records, shared) == {
        "Events": [f"{NORTH}:appt:10", f"{SOUTH}:appt:70"],
        "Notes": [f"{NORTH} note", f"{SOUTH} note"],
        "Attachments": [f"{NORTH}.jpg", f"{SOUTH}.jpg"],
    }
    # Every record of the joining office is accounted for: the joined patient counts as loaded.
    accounting = reconcile_accounting(org.ducks[SOUTH], org.ledger, SOUTH)
    assert accounting.passed, accounting.counts
    assert accounting.counts["modules"]["Contacts"]["loaded"] == 2
    # A second run of either office sends nothing and changes nothing.
    before = org.records()
    again = org.load_office(SOUTH, "delta")
    assert sum(r.sent for k, r in again.items() if not k.endswith(".joined")) == 0
    assert org.records() == before

    south_before = office_records(before, SOUTH)
    shared_before = json.dumps(before["Contacts"][shared], sort_keys=True)
    plan, result = org.rollback(NORTH)
    assert plan.counts()[("Contacts", "release")] == 1 and plan.counts()[("Contacts", "delete")] == 1
    assert result.released == 1 and result.deleted == 1 + 2 + 1 + 1  # its own patient, events, note, file
    after = org.records()
    assert json.dumps(after["Contacts"][shared], sort_keys=True) == shared_before  # kept, untouched
    assert office_records(after, SOUTH) == south_before  # the other office's records, byte for byte
    assert children_of(after, shared) == {"Events": [f"{SOUTH}:appt:70"], "Notes": [f"{SOUTH} note"],
                                           "Attachments": [f"{SOUTH}.jpg"]}
    assert not any(r.get("Source_System_ID") == f"{NORTH}:patient:2" for r in after["Contacts"].values())
    assert {(h.office_id, h.released) for h in org.ledger.shared_owners(zoho_ids=[shared])} == {(NORTH, True), (SOUTH, False)}
    assert org.ledger.lookup(NORTH, "patient", SHARED[NORTH]).deleted  # type: ignore[union-attr]

    # The last owner goes: its rollback deletes the Contact with its children.
    plan, result = org.rollback(SOUTH)
    assert plan.counts()[("Contacts", "delete")] == 2 and ("Contacts", "release") not in plan.counts()
    final = org.records()
    assert not final.get("Contacts") and not final.get("Events") and not final.get("Notes") and not final.get("Attachments")
    assert org.ledger.shared_owners(released=False) == []
    assert org.ledger.verify_chain().ok


def test_the_joining_office_rolls_back_and_rejoins_then_the_whole_org_rolls_back(org: Org) -> None:
    org.audit()
    org.load_office(NORTH)
    org.load_office(SOUTH)
    shared = _shared_contact(org)
    before = org.records()
    north_before = office_records(before, NORTH)  # the shared Contact carries north's Source_System_ID

    plan, result = org.rollback(SOUTH)
    assert plan.counts()[("Contacts", "release")] == 1
    assert result.released == 1 and result.deleted == 1 + 2 + 1 + 1
    after = org.records()
    assert office_records(after, NORTH) == north_before and not office_records(after, SOUTH)
    assert children_of(after, shared) == {"Events": [f"{NORTH}:appt:10"], "Notes": [f"{NORTH} note"],
                                           "Attachments": [f"{NORTH}.jpg"]}
    assert org.ledger.lookup(SOUTH, "patient", SHARED[SOUTH]) is None

    # South loads again: it joins the same Contact again, no second one.
    again = org.load_office(SOUTH)
    assert again["patients.joined"] == 1
    records = org.records()
    assert len(records["Contacts"]) == 3
    assert children_of(records, shared)["Events"] == [f"{NORTH}:appt:10", f"{SOUTH}:appt:70"]

    # The whole migration rolled back: nothing of ours is left.
    org.rollback(None)
    final = org.records()
    assert not any(final.get(m) for m in ("Contacts", "Events", "Notes", "Attachments"))
    assert org.ledger.shared_owners(released=False) == []
    assert org.ledger.verify_chain().ok
