"""Per-record parsing, Bulk Write files and schema planning: pure functions."""

from __future__ import annotations

import io
import zipfile

import pytest

from dentrix_zoho.zoho import bulk
from dentrix_zoho.zoho.errors import SchemaLimitExceeded
from dentrix_zoho.zoho.metadata import plan_schema
from dentrix_zoho.zoho.outcomes import parse_write_response


def test_207_mixed_batch_parsed_per_record_without_values():
    payload = {
        "data": [
            {
                "code": "SUCCESS",
                "action": "update",
                "duplicate_field": "Source_System_ID",
                "details": {"id": "111", "Modified_By": {"name": "Dr Who", "id": "9"}},
                "message": "record updated",
                "status": "success",
            },
            {
                "code": "INVALID_DATA",
                "details": {
                    "api_name": "Email",
                    "json_path": "$.data[1].Email",
                    "expected_data_type": "email",
                },
                "message": "invalid data",
                "status": "error",
            },
            {
                "code": "DUPLICATE_DATA",
                "details": {
                    "api_name": "Email",
                    "duplicate_record": {
                        "Owner": {"name": "Pat", "id": "1"},
                        "module": {"api_name": "Contacts"},
                        "id": "77",
                    },
                },
                "message": "duplicate data",
                "status": "error",
            },
        ]
    }
    out = parse_write_response([10, 11, 12], payload, None)
    assert [o.index for o in out] == [10, 11, 12]
    assert out[0].ok and out[0].zoho_id == "111" and out[0].action == "update"
    assert "Modified_By" not in out[0].details
    assert not out[1].ok and out[1].code == "INVALID_DATA" and out[1].api_name == "Email"
    assert out[1].details["expected_data_type"] == "email"
    assert out[2].details["duplicate_record"] == {"id": "77", "module": "Contacts"}
    assert "Pat" not in repr(out[2])
    assert parse_write_response([1], {"code": "INVALID_DATA"}, None) is None
    assert parse_write_response([1, 2], {"data": [{}]}, None) is None


def test_multi_errors_name_the_first_field():
    payload = {
        "data": [
            {
                "code": "MULTIPLE_OR_MULTI_ERRORS",
                "status": "error",
                "message": "Multiple errors",
                "details": {
                    "errors": [
                        {"code": "DUPLICATE_DATA", "details": {"api_name": "Source_System_ID"}},
                        {"code": "DUPLICATE_DATA", "details": {"api_name": "Email"}},
                    ]
                },
            }
        ]
    }
    (out,) = parse_write_response([0], payload, "insert")
    assert out.api_name == "Source_System_ID"
    assert [e["api_name"] for e in out.details["errors"]] == ["Source_System_ID", "Email"]


def test_bulk_csv_flattens_lookups_and_lists():
    records = [
        {"Last_Name": "Ada", "Owner": {"id": "5"}, "Tags": ["a", "b"], "Opt_Out": True},
        {"Last_Name": "Bo, Jr", "Email": None},
    ]
    (file,) = bulk.build_files("Contacts", records)
    assert file.indices == [0, 1]
    with zipfile.ZipFile(io.BytesIO(file.zip_bytes)) as zf:
        text = zf.read(zf.namelist()[0]).decode()
    lines = text.splitlines()
    assert lines[0] == "Last_Name,Owner.id,Tags,Opt_Out,Email"
    assert lines[1] == "Ada,5,a;b,true,"
    assert lines[2] == '"Bo, Jr",,,,'
    with pytest.raises(ValueError, match="only lookups"):
        bulk.build_files("Contacts", [{"Address": {"street": "x"}}])


def test_bulk_files_split_at_record_cap(monkeypatch):
    monkeypatch.setattr(bulk, "BULK_WRITE_MAX_RECORDS", 3)
    files = bulk.build_files("Contacts", [{"Last_Name": str(i)} for i in range(8)], start_index=100)
    assert [f.indices for f in files] == [[100, 101, 102], [103, 104, 105], [106, 107]]


def test_bulk_result_rows_to_outcomes():
    csv_text = (
        "Last_Name,Source_System_ID,ID,STATUS,ERRORS\n"
        "Ada,S1,501,added,\n"
        "Bo,S2,502,updated,\n"
        ",S3,,skipped,MANDATORY_NOT_FOUND-Last_Name:DUPLICATE_DATA-Email\n"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("result.csv", csv_text)
    rows = bulk.read_result_csv(buf.getvalue())
    out = bulk.parse_result_rows([7, 8, 9, 10], rows)
    assert (out[0].ok, out[0].zoho_id, out[0].action) == (True, "501", "insert")
    assert (out[1].ok, out[1].action) == (True, "update")
    assert (out[2].ok, out[2].code, out[2].api_name) == (False, "MANDATORY_NOT_FOUND", "Last_Name")
    assert [e["code"] for e in out[2].details["errors"]] == ["MANDATORY_NOT_FOUND", "DUPLICATE_DATA"]
    assert out[3].code == "MISSING_RESULT" and out[3].index == 10


EXISTING = [
    {"field_label": "Last Name", "api_name": "Last_Name", "custom_field": False},
    {
        "field_label": "Source System ID",
        "api_name": "Source_System_ID",
        "custom_field": True,
        "unique": {"case_sensitive": False},
    },
]


def test_plan_schema_diffs_by_label():
    wanted = [
        {"field_label": "source system  id", "data_type": "text"},
        {"field_label": "Balance Due", "data_type": "currency"},
    ]
    plan = plan_schema("Contacts", EXISTING, wanted, "enterprise")
    assert plan.existing == {"source system  id": "Source_System_ID"}
    assert plan.labels_to_create == ["Balance Due"]


def test_plan_schema_refuses_over_edition_limits_naming_fields():
    wanted = [{"field_label": f"Custom {i}", "data_type": "text"} for i in range(10)]
    with pytest.raises(SchemaLimitExceeded) as info:
        plan_schema("Contacts", EXISTING, wanted, "standard")
    assert "allows 10 per module" in str(info.value) and "Custom 9" in str(info.value)
    assert len(info.value.fields) == 10
    with pytest.raises(SchemaLimitExceeded, match="Insurance Plans") as info:
        plan_schema(
            "Contacts", EXISTING, [{"field_label": "Insurance Plans", "data_type": "subform"}], "professional"
        )
    uniques = [
        {"field_label": "U1", "unique": {"case_sensitive": False}, "data_type": "text"},
        {"field_label": "U2", "unique": {"case_sensitive": True}, "data_type": "text"},
    ]
    with pytest.raises(SchemaLimitExceeded, match="U2"):
        plan_schema("Contacts", EXISTING, uniques, "enterprise")


def test_write_path_choice_by_credits_time_and_budget():
    from dentrix_zoho.zoho.planning import choose_write_path

    kwargs = {"concurrency": 20, "latency_s": 0.3, "remaining_credits": None, "poll_interval_s": 30.0}
    small = choose_write_path("Contacts", 2_000, **kwargs)
    assert (small.path, small.credits) == ("records", 200)
    assert small.records_seconds == 2 * 0.3  # 20 calls, 10 at a time (heavy-call cap)
    big = choose_write_path("Contacts", 60_000, **kwargs)
    # 3 jobs x (500 + upload + download) + the org lookup per job + 3 x (1 + 2) status polls
    assert big.path == "bulk" and big.bulk_credits == 3 * 502 + 3 + 9
    assert big.bulk_credits < big.records_credits == 6_000
    assert "3 job(s)" in big.reason
    # 5,000 records: 500 credits either way; near-equal credits, so the faster record API wins.
    even = choose_write_path("Contacts", 5_000, **kwargs)
    assert even.path == "records" and even.records_seconds < even.bulk_seconds
    # Only Bulk Write fits what is left of the day.
    tight = choose_write_path("Contacts", 5_500, **{**kwargs, "remaining_credits": 540})
    assert tight.path == "bulk" and "only Bulk Write fits the 540 credits left" in tight.reason
    assert choose_write_path("Events", 60_000, **kwargs).path == "records"
