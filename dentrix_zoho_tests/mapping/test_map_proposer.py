"""The proposer ranks the right target first on a labelled set of practice-defined fields."""

from __future__ import annotations

import datetime as dt

import pytest

from dentrix_zoho.mapping import load_spec, propose
from dentrix_zoho.mapping.metadata import load_standard_fields
from dentrix_zoho.mapping.proposer import normalise, profile_values, propose_one

PHONES = ["(801)555-0142", "801-555-0199", "8015550123", "(385)555-0100"] * 5
EMAILS = ["ann@example.com", "bob.smith@example.net", "c.d@example.org"] * 5
US_DATES = ["03/15/2021", "11/02/2019", "07/04/2022", "01/30/2020"] * 5
NAMES = ["Walgreens Main St", "CVS Lehi", "Smith's Pharmacy", "Costco Pharmacy", "Harmons", "Rite Aid 12",
         "Fred Meyer", "Kroger 3", "Target Orem", "Walmart Provo", "Dixie Drug", "Bear Lake Rx", "Medicine Shoppe",
         "Lehi Drug", "Orem Drug", "Payson Rx", "Sandy Rx", "Ogden Rx", "Moab Rx", "Kanab Rx", "Nephi Rx", "Lake Rx"]

# (label, declared Dentrix field type, sample values, the right target; NEW = a new custom field)
NEW = "<new>"
LABELLED: list[tuple[str, str, list[str], str]] = [
    ("Preferred Language", "list", ["English", "Spanish", "English", "Tongan"] * 5, NEW),
    ("Emergency Contact", "text", ["Spouse", "Mother", "Father", "Sister", "Neighbor", "Friend", "Brother"] * 3, NEW),
    ("HIPAA Form Signed", "date", US_DATES, NEW),
    ("Preferred Pharmacy", "text", NAMES, NEW),
    ("Dental Anxiety", "list", ["None", "Mild", "Moderate", "Severe"] * 5, NEW),
    ("Last Medical Hx Update", "date", US_DATES, NEW),
    ("Spouse Name", "text", [f"Name{i}" for i in range(30)], NEW),
    ("Middle Initial", "text", list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), NEW),
    ("Insurance Renewal Month", "list", [str(m) for m in range(1, 13)] * 3, NEW),
    ("Cell Phone", "text", PHONES, "Mobile"),
    ("Text Number", "text", PHONES, "Mobile"),
    ("E-mail Address", "text", EMAILS, "Email"),
    ("Alternate Email", "text", EMAILS, "Secondary_Email"),
    ("Birthday", "date", US_DATES, "Date_of_Birth"),
    ("DOB", "date", US_DATES, "Date_of_Birth"),
    ("Home Tel", "text", PHONES, "Home_Phone"),
    ("Work Phone", "text", PHONES, "Phone"),
    ("Alt Phone", "text", PHONES, "Other_Phone"),
    ("Fax Number", "text", PHONES, "Fax"),
    ("Referred By", "list", ["Yelp", "Google", "Walk-in", "Mailer"] * 5, "Lead_Source"),
    ("Occupation", "text", ["Teacher", "Nurse", "Engineer", "Student", "Retired", "Farmer"] * 4, "Title"),
    ("Comments", "text", ["Prefers mornings; very anxious, offer nitrous and blankets. " * 6] * 5, "Description"),
    ("Postal Code", "text", ["84057", "84003", "84604", "83702"] * 5, "Mailing_Zip"),
    ("Do Not Email", "list", ["Y", "N", "N", "N"] * 5, "Email_Opt_Out"),
    ("Street Address", "text", [f"{n} N 300 E" for n in range(100, 130)], "Mailing_Street"),
]

# Written after the synonym list was tuned on LABELLED, and not tuned on: an honest figure.
HELD_OUT: list[tuple[str, str, list[str], str]] = [
    ("Mobile #", "text", PHONES, "Mobile"),
    ("Email 2", "text", EMAILS, "Secondary_Email"),
    ("Nickname", "text", [f"Nick{i}" for i in range(30)], NEW),
    ("City of Residence", "text", ["Orem", "Lehi", "Provo", "Sandy", "Draper", "Ogden"] * 4, "Mailing_City"),
    ("Allergies", "text", ["Penicillin", "Latex", "None", "Codeine", "Sulfa", "Aspirin", "Iodine"] * 3, NEW),
    ("Patient Notes", "text", ["Prefers mornings and text reminders; hard of hearing. " * 6] * 5, "Description"),
    ("Date of Last X-Ray", "date", US_DATES, NEW),
    ("Primary Phone", "text", PHONES, "Phone"),
    ("Employer", "text", [f"Company {i}" for i in range(30)], NEW),
    ("Salutation", "list", ["Mr.", "Mrs.", "Ms.", "Dr."] * 5, "Salutation"),
]


def _existing() -> list[dict]:
    return load_standard_fields()["Contacts"]


def _hit(label: str, declared: str, values: list[str], expected: str) -> bool:
    proposal = propose_one(f"custfield:{label}", label, "Contacts", values, _existing(), declared)
    if expected == NEW:
        return proposal.create is not None
    return proposal.create is None and proposal.target == expected


def test_precision_on_the_labelled_set(record_property) -> None:
    hits = [(label, _hit(label, declared, values, expected)) for label, declared, values, expected in LABELLED]
    precision = sum(ok for _, ok in hits) / len(hits)
    record_property("proposer_precision", precision)
    print(f"proposer precision (top-1) on {len(hits)} labelled fields: {precision:.2f}")
    misses = [label for label, ok in hits if not ok]
    assert precision >= 0.9, f"misses: {misses}"


def test_precision_on_held_out_fields(record_property) -> None:
    hits = [(label, _hit(label, declared, values, expected)) for label, declared, values, expected in HELD_OUT]
    precision = sum(ok for _, ok in hits) / len(hits)
    record_property("proposer_precision_held_out", precision)
    print(f"proposer precision (top-1) on {len(hits)} held-out fields: {precision:.2f}; "
          f"misses: {[label for label, ok in hits if not ok]}")
    assert precision >= 0.6


@pytest.mark.parametrize(("label", "declared", "values", "expected"), LABELLED[:6])
def test_the_synthetic_practices_fields_become_typed_custom_fields(label, declared, values, expected) -> None:
    proposal = propose_one(f"custfield:{label}", label, "Contacts", values, _existing(), declared,
                           list_values=("English", "Spanish") if declared == "list" else ())
    assert proposal.create is not None
    assert proposal.create["type"] == {"list": "picklist", "date": "date", "text": "text"}[declared]
    assert proposal.target == proposal.create["label"].replace(" ", "_")
    assert 0 < proposal.confidence <= 1
    assert proposal.rationale


def test_a_good_existing_field_beats_a_new_one_with_higher_confidence() -> None:
    good = propose_one("custfield:Cell Phone", "Cell Phone", "Contacts", PHONES, _existing(), "text")
    assert good.target == "Mobile" and good.transform == "phone"
    weak = propose_one("custfield:Spouse Name", "Spouse Name", "Contacts", NAMES, _existing(), "text")
    assert good.confidence > weak.confidence


def test_profiles() -> None:
    assert profile_values(EMAILS).kind == "email"
    assert profile_values(PHONES).kind == "phone"
    assert profile_values(US_DATES).kind == "date"
    assert profile_values([dt.date(2020, 1, 1)] * 3).kind == "date"
    assert profile_values(["1", "2", "30"]).kind == "integer"
    assert profile_values(["Y", "N", "Y"]).kind == "boolean"
    assert profile_values(["a", "b"] * 20).kind == "picklist"
    assert profile_values(["x" * 300]).kind == "long_text"
    assert profile_values([None, " "]).kind == "empty"
    mixed = profile_values(EMAILS[:3] + ["none", "refused", "n/a"])
    assert mixed.kind == "text"  # under 80 % e-mails: not an e-mail column


def test_normalise_expands_abbreviations() -> None:
    assert normalise("Last_Medical_Hx_Update") == "last medical history update"
    assert normalise("emailaddr") == "email address"
    assert normalise("PrefName") == "preferred name"


def test_propose_on_staged_tables(practice, office_id) -> None:
    conn = practice()
    spec = load_spec()
    existing = {m: list(f.values()) for m, f in __import__(
        "dentrix_zoho.mapping.metadata", fromlist=["field_metadata"]).field_metadata(spec).items()}
    section = propose(conn, spec, existing, office_id=office_id)
    by_source = section.by_source()
    colour = by_source["custfield:Favourite Colour"]
    assert colour.create is not None and colour.module == "Contacts"
    assert "custfield:Preferred Language" not in by_source        # already in the spec
    assert by_source["patient.ssn"].target is None                 # never migrated
    assert "patient.lastname" not in by_source                     # covered by the spec
    status = by_source.get("recallpending.status")
    assert status is not None and status.target == "Dentrix_Status"   # never shadows Tasks.Status
    text = section.to_yaml()
    assert "Favourite Colour" in text and "confidence" in text
    assert "blue" not in text                                      # values are profiled, never written
    import yaml

    parsed = yaml.safe_load(text)
    assert parsed["practice_fields"]["Favourite Colour"]["target"] == "Favourite_Colour"
