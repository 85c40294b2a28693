from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import inspect

from dentrix_zoho.ledger import Ledger, LedgerError, QuarantineRow


def test_first_pre_image_per_run_wins_and_runs_keep_their_own(ledger: Ledger) -> None:
    original = {"id": "z1", "Last_Name": "Before", "Modified_Time": "2025-01-01T00:00:00+00:00"}
    after_r1 = {"id": "z1", "Last_Name": "AfterR1", "Modified_Time": "2026-01-01T00:00:00+00:00"}
    assert ledger.save_pre_image("r1", "Contacts", "z1", original) is True
    assert ledger.save_pre_image("r1", "Contacts", "z1", after_r1) is False
    assert ledger.save_pre_image("r2", "Contacts", "z1", after_r1) is True
    assert ledger.pre_image("r1", "Contacts", "z1") == original
    assert ledger.pre_image("r2", "Contacts", "z1") == after_r1
    assert ledger.pre_image("r3", "Contacts", "z1") is None
    refs = ledger.pre_image_refs()
    assert [(r.run_id, r.zoho_id) for r in refs] == [("r1", "z1"), ("r2", "z1")]
    assert [r.run_id for r in ledger.pre_image_refs("r2")] == ["r2"]
    ledger.mark_restored("rb", "Contacts", {"z1": ((refs[1].id,), None)})
    assert [r.run_id for r in ledger.pre_image_refs(restored=False)] == ["r1"]
    assert [r.restored_by_run for r in ledger.pre_image_refs(restored=True)] == ["rb"]


def test_quarantine_holds_classes_and_reasons_never_values(ledger: Ledger) -> None:
    field_names = {f.name for f in dataclasses.fields(QuarantineRow)}
    assert "value" not in field_names
    columns = {c["name"] for c in inspect(ledger.engine).get_columns("quarantine")}
    assert "value" not in columns

    rows = [
        QuarantineRow("r1", "o1", "patient", "12", "invalid_email", "e-mail fails validation", field="Email"),
        QuarantineRow("r1", "o1", "patient", "13", "too_long", "street longer than 250", field="Mailing_Street"),
        QuarantineRow("r2", "o1", "appt", "9", "orphan", "patient not loaded"),
    ]
    assert ledger.quarantine(rows) == 3
    stored = ledger.quarantine_rows("r1")
    assert [(q.source_id, q.value_class, q.status) for q in stored] == [
        ("12", "invalid_email", "open"),
        ("13", "too_long", "open"),
    ]
    assert ledger.resolve_quarantine([stored[0].id or 0]) == 1
    assert [q.source_id for q in ledger.quarantine_rows(status="open")] == ["13", "9"]


@pytest.mark.parametrize("value_class", ["jane.doe@example.com", "555 123 4567", "Too Long", ""])
def test_quarantine_refuses_value_like_classes(ledger: Ledger, value_class: str) -> None:
    with pytest.raises(LedgerError):
        ledger.quarantine([QuarantineRow("r", "o1", "patient", "1", value_class, "bad")])
    assert ledger.quarantine_rows() == []


def test_approvals(ledger: Ledger) -> None:
    assert not ledger.is_approved("h1")
    ledger.record_approval("h1", "consultant@example.org", "mapping_specs/office-1.yaml")
    assert ledger.is_approved("h1")
    assert not ledger.is_approved("h2")
    (approval,) = ledger.approvals()
    assert (approval.spec_hash, approval.approved_by, approval.spec_path) == (
        "h1",
        "consultant@example.org",
        "mapping_specs/office-1.yaml",
    )


def test_api_call_events_keep_counts_and_drop_other_keys(ledger: Ledger) -> None:
    record = ledger.api_call_recorder("r1")
    record(
        {
            "time": 1_767_225_600.0,
            "method": "POST",
            "path_template": "/crm/v8/{module}/upsert",
            "module": "Contacts",
            "record_count": 100,
            "http_status": 200,
            "credits": 10,
            "latency_s": 0.25,
            "outcome": "ok",
            "body": {"Last_Name": "Doe"},
        }
    )
    ledger.record_api_call("r2", {"method": "GET", "latency_ms": 12})
    (call,) = ledger.api_calls("r1")
    assert call["time"].startswith("2026-01-01T00:00:00")
    assert (call["method"], call["record_count"], call["credits"], call["latency_ms"]) == ("POST", 100, 10, 250)
    assert "body" not in call and "Doe" not in repr(call)
    assert len(ledger.api_calls()) == 2
