"""Records checked against Zoho field metadata; problems described by class, never by value."""

from __future__ import annotations

import datetime as dt
import re

from dentrix_zoho.mapping import field_metadata, load_spec
from dentrix_zoho.mapping.records import Built, enforce_metadata, render_template, split_text
from dentrix_zoho.mapping.validation import check_value, validate_record, value_class

META = field_metadata(load_spec())


def kinds(record: dict, module: str = "Contacts") -> dict[str, str]:
    return {i.field: i.kind for i in validate_record(record, META[module])}


def test_a_good_contact_passes() -> None:
    assert kinds({"Last_Name": "Smith", "Email": "a@example.com", "Date_of_Birth": "1980-01-02",
                  "Phone": "+18015550123", "Gender": "Female", "Balance_Due": 12.5, "Do_Not_Call": False,
                  "Source_System_ID": "office-1:patient:1"}) == {}


def test_each_kind_of_problem() -> None:
    found = kinds({
        "Last_Name": "x" * 81,                    # too long (80)
        "Email": "not-an-email",                  # bad format
        "Date_of_Birth": "01/02/1980",            # bad format
        "Gender": "Robot",                        # not in picklist
        "Balance_Due": "12.50",                   # wrong type
        "Do_Not_Call": "yes",                     # wrong type
        "Shoe_Size": 42,                          # unknown field
    })
    assert found == {"Last_Name": "too_long", "Email": "bad_format", "Date_of_Birth": "bad_format",
                     "Gender": "not_in_picklist", "Balance_Due": "wrong_type", "Do_Not_Call": "wrong_type",
                     "Shoe_Size": "unknown_field"}


def test_mandatory_fields_per_module() -> None:
    assert kinds({}, "Contacts") == {"Last_Name": "mandatory_missing"}
    assert kinds({"Subject": "  "}, "Tasks") == {"Subject": "mandatory_missing"}
    assert set(kinds({}, "Calls")) == {"Subject", "Call_Type", "Call_Start_Time", "Call_Duration"}
    assert set(kinds({}, "Events")) == {"Event_Title", "Start_DateTime", "End_DateTime"}
    assert kinds({"Note_Content": "x"}, "Notes") == {}   # Parent_Id travels in links


def test_datetime_needs_an_offset_and_source_id_is_allowed_on_notes() -> None:
    assert kinds({"Event_Title": "t", "Start_DateTime": "2026-01-01T09:00:00", "End_DateTime":
                  "2026-01-01T10:00:00-07:00"}, "Events") == {"Start_DateTime": "bad_format"}
    assert kinds({"Note_Content": "x", "Source_System_ID": "office-1:rxrec:1"}, "Notes") == {}


def test_subform_rows_are_checked() -> None:
    found = kinds({"Last_Name": "S", "Insurance_Plans": [{"Plan_Type": "Tertiary", "Carrier": "c" * 50}]})
    assert found == {"Insurance_Plans.Plan_Type": "not_in_picklist"} or found == {
        "Insurance_Plans.Plan_Type": "not_in_picklist", "Insurance_Plans.Carrier": "too_long"}
    issues = validate_record({"Last_Name": "S", "Insurance_Plans": [{"Carrier": "c" * 50}] * 101}, META["Contacts"])
    assert {i.kind for i in issues} == {"too_long"}


def test_value_class_never_contains_the_value() -> None:
    secret = "jane.doe@example.com"
    assert value_class(secret) == "email_like_len_17_64"
    assert "jane" not in value_class(secret)
    assert value_class("(801) 555-0123") == "digits_len_1_16"
    assert value_class("2026-01-01") == "date_like_len_1_16"
    assert value_class("02/30/2020") == "date_like_len_1_16"
    assert value_class("a\nb") == "multiline_text_len_1_16"
    assert value_class("  ") == "blank_text"
    assert value_class(None) == "null"
    assert value_class(dt.date(2020, 1, 1)) == "date"
    assert value_class([1, 2]) == "list"
    assert value_class("x" * 40000) == "text_len_gt_32000"
    ledger_code = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # the ledger's quarantine value_class rule
    for sample in (secret, "x" * 40000, None, 3, [1], "a@b", "?"):
        assert ledger_code.match(value_class(sample))


def test_policy_truncates_drops_or_quarantines() -> None:
    built = Built({"Last_Name": "S", "Chart_Number": "X" * 30, "Mailing_City": "c" * 150, "Gender": "Robot"})
    enforce_metadata(built, META["Contacts"], {"Chart_Number": "truncate", "Mailing_City": "drop_field"})
    assert built.record["Chart_Number"] == "X" * 21
    assert "Mailing_City" not in built.record
    assert {(p.field, p.action) for p in built.flags} == {("Chart_Number", "truncated"), ("Mailing_City", "dropped")}
    assert [(p.field, p.reason) for p in built.quarantine] == [("Gender", "not_in_picklist")]
    assert check_value("Chart_Number", None, META["Contacts"]["Chart_Number"]) is None


def test_templates_drop_empty_lines_and_split_keeps_every_character() -> None:
    row = {"drug": "Amoxicillin", "sig": None, "day": dt.datetime(2026, 1, 2, 9, 5)}
    assert render_template("Rx: {drug}\nSig: {sig}\nOn {day:%Y-%m-%d %H:%M}", row) == "Rx: Amoxicillin\nOn 2026-01-02 09:05"
    assert render_template("{sig}", row) is None
    text = ("line of words\n" * 3000)
    parts = split_text(text, 1000)
    assert "".join(parts) == text
    assert all(len(p) <= 1000 for p in parts)
    assert split_text("x" * 2500, 1000) == ["x" * 1000, "x" * 1000, "x" * 500]
