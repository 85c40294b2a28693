from __future__ import annotations

from dentrix_zoho.rollback.records import matches_pre_image, modified_by_id, restore_payload, same_instant

PRE_IMAGE = {
    "id": 5725767000000524157,
    "Last_Name": "Boyle",
    "Owner": {"id": "111", "name": "Dr A"},
    "Modified_Time": "2025-05-10T01:10:47-07:00",
    "Modified_By": {"id": "111", "name": "Dr A"},
    "Created_Time": "2025-05-10T01:10:47-07:00",
    "$approval_state": "approved",
    "Record_Status__s": "Available",
    "Full_Name": "Pat Boyle",
    "Insurance": [{"id": "r1", "Carrier": "Old", "$row_state": "x"}],
}


def test_restore_payload_sends_back_writable_fields_and_drops_rows_we_added() -> None:
    current = {**PRE_IMAGE, "Insurance": [{"id": "r1", "Carrier": "Old"}, {"id": "r2", "Carrier": "New"}]}
    payload = restore_payload(PRE_IMAGE, current, read_only={"Full_Name"})
    assert payload == {
        "id": "5725767000000524157",
        "Last_Name": "Boyle",
        "Owner": {"id": "111", "name": "Dr A"},
        "Insurance": [{"id": "r1", "Carrier": "Old"}, {"id": "r2", "_delete": None}],
    }
    assert "Insurance" in restore_payload(PRE_IMAGE) and "Full_Name" in restore_payload(PRE_IMAGE)


def test_matches_pre_image_compares_values_lookup_ids_and_subform_rows() -> None:
    payload = restore_payload(PRE_IMAGE, None)
    now = {
        "id": "5725767000000524157",
        "Last_Name": "Boyle",
        "Owner": {"id": "111", "email": "a@x.org"},
        "Full_Name": "Pat Boyle",
        "Insurance": [{"id": "r1", "Carrier": "Old"}],
    }
    assert matches_pre_image(now, payload)
    assert not matches_pre_image({**now, "Last_Name": "Other"}, payload)
    assert not matches_pre_image({**now, "Owner": {"id": "222"}}, payload)
    assert not matches_pre_image({**now, "Insurance": [{"id": "r1"}, {"id": "r2"}]}, payload)


def test_same_instant_reads_offsets() -> None:
    assert same_instant("2026-01-01T10:00:00+00:00", "2026-01-01T02:00:00-08:00") is True
    assert same_instant("2026-01-01T10:00:00+00:00", "2026-01-01T10:00:01+00:00") is False
    assert same_instant("2026-01-01T10:00:00+00:00", None) is False
    assert same_instant(None, "2026-01-01T10:00:00+00:00") is None
    assert same_instant("garbled", "garbled") is True
    assert modified_by_id({"Modified_By": {"id": 42, "name": "x"}}) == "42"
    assert modified_by_id({}) is None


def test_restore_recreates_rows_whose_ids_are_gone_and_empties_fields_the_migration_added() -> None:
    # The migration emptied the subform and sent it again (new row ids) and set fields the pre-image lacks.
    current = {
        "id": "5725767000000524157",
        "Last_Name": "Boyle-Migrated",
        "Owner": {"id": "111"},
        "Modified_By": {"id": "999"},
        "Migration_Run_ID": "R1",
        "Related_Party": {"id": "77", "name": "Guarantor"},
        "Insurance_Plans": [{"id": "n1", "Carrier": "Delta"}],
        "Insurance": [{"id": "r9", "Carrier": "New"}],
        "Full_Name": "Pat Boyle-Migrated",
        "Description": None,
    }
    payload = restore_payload(PRE_IMAGE, current, read_only={"Full_Name"})
    assert payload["Insurance"] == [{"Carrier": "Old"}, {"id": "r9", "_delete": None}]
    assert (payload["Migration_Run_ID"], payload["Related_Party"], payload["Insurance_Plans"]) == (None, None, [])
    assert "Description" not in payload and "Full_Name" not in payload and "Modified_By" not in payload

    # Zoho re-created the row under a new id: the record holds its pre-image again.
    after = {**current, "Last_Name": "Boyle", "Migration_Run_ID": None, "Related_Party": None,
             "Insurance_Plans": [], "Insurance": [{"id": "r10", "Carrier": "Old"}]}
    assert matches_pre_image(after, payload)
    assert not matches_pre_image({**after, "Insurance": [{"id": "r10", "Carrier": "Old"}, {"id": "r11"}]}, payload)
    assert not matches_pre_image({**after, "Insurance": [{"id": "r10", "Carrier": "Other"}]}, payload)
    assert not matches_pre_image({**after, "Migration_Run_ID": "R1"}, payload)
