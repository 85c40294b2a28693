"""Under ``merge`` a load of Contacts refuses to start unless the latest org-level audit covered its office:
through the real loader on the Zoho emulator, nothing reaches Zoho before the audit, an office the latest
audit left out is refused by name, and after the audit both offices load one Contact for the shared
patient. ``separate`` loads as before, audit or not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dentrix_zoho.org import POLICY_ENV, OrgAuditMissing, run_cross_office_audit
from dentrix_zoho_tests.org.merge_kit import MERGE, NORTH, OWN, SHARED, SOUTH, Org, running_org

pytestmark = pytest.mark.slow

PATIENT_VALUES = ("Garcia", "Maria", "801-555-0101", "1980")  # what the kit's shared patient is made of


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    with running_org(tmp_path) as made:
        yield made


def _records(org: Org) -> dict[str, int]:
    return {module: len(by_id) for module, by_id in org.records().items() if by_id}


def test_a_merge_load_before_the_audit_is_refused_and_sends_nothing(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLICY_ENV, "merge")
    calls_before = org.handle.usage()["calls"]
    with pytest.raises(OrgAuditMissing) as refused:
        org.load_office(NORTH)
    message = str(refused.value)
    assert "DENTRIX_CROSS_OFFICE_POLICY=merge" in message and "no org-level cross-office audit" in message
    assert "dentrix-zoho org-audit" in message and "cross_office_audit" in message and f"office {NORTH}" in message
    assert not any(value in message for value in PATIENT_VALUES)
    assert _records(org) == {}  # no Contact, nor anything after it
    assert org.handle.usage()["calls"] == calls_before  # not one call: the refusal comes before the first read

    # An audit that compared north alone (south not staged then, say): south is still refused, by name.
    run_cross_office_audit({NORTH: org.ducks[NORTH]}, org.reports, ledger=org.ledger, policy=MERGE)
    with pytest.raises(OrgAuditMissing, match=f"did not include office {SOUTH}"):
        org.load_office(SOUTH)
    assert _records(org) == {}

    org.audit()  # both offices: now they load, and the shared patient is one Contact
    org.load_office(NORTH)
    south = org.load_office(SOUTH)
    assert south["patients"].cross_office_joined == 1
    contacts = sorted(r["Source_System_ID"] for r in org.records()["Contacts"].values())
    assert contacts == sorted([SHARED[NORTH], OWN[NORTH], OWN[SOUTH]])


def test_separate_loads_without_an_audit_as_before(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POLICY_ENV, raising=False)
    assert org.ledger.latest_org_audit() is None
    org.load_office(NORTH)
    org.load_office(SOUTH)
    contacts = sorted(r["Source_System_ID"] for r in org.records()["Contacts"].values())
    assert contacts == sorted([SHARED[NORTH], OWN[NORTH], SHARED[SOUTH], OWN[SOUTH]])
