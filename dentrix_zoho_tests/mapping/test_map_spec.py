"""The spec file: validation errors name the key path; hashing; metadata consistency."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dentrix_zoho.mapping import apply_api_names, custom_fields, field_metadata, load_spec, spec_hash
from dentrix_zoho.mapping.spec import (
    SpecError,
    api_name_from_label,
    packaged_spec_dir,
    parse_spec,
    repo_spec_dir,
)

REPO_SPEC = repo_spec_dir() / "dentrix_to_zoho.yaml"


def _raw() -> dict:
    return yaml.safe_load(REPO_SPEC.read_text(encoding="utf-8"))


def test_default_spec_loads_and_covers_every_design_row() -> None:
    spec = load_spec()
    objects = {s.object for s in spec.streams.values()}
    # DESIGN object map: patient, appointments (+ history), recalls, procedures/ledger, notes,
    # prescriptions, documents/images, office journal, practice-defined fields.
    assert {"patient", "appt", "appthist", "recallpending", "fullproclog", "aging", "clinicalnote", "rxrec",
            "document", "eattach", "contact", "custvalue"} <= objects
    modules = {s.module for s in spec.streams.values()}
    assert modules == {"Contacts", "Events", "Tasks", "Calls", "Notes", "Attachments"}
    assert spec.routing.leads_window_months == 18
    assert spec.value_maps["referral_source"].default == "Other"
    assert spec.value_maps["referral_source"].flag_default


def test_packaged_copy_matches_the_repository_spec() -> None:
    for name in ("dentrix_to_zoho.yaml", "zoho_standard_fields.json"):
        assert (packaged_spec_dir() / name).read_bytes() == (repo_spec_dir() / name).read_bytes(), (
            f"copy mapping_specs/{name} to dentrix_zoho/mapping/default_spec/"
        )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["streams"]["patients"]["fields"][0].update(transform="shout"),
         "streams.patients.fields.0.transform"),
        (lambda d: d["streams"]["patients"]["fields"][0].update(target="Last_Name__c"),
         "streams.patients.fields.0.target"),
        (lambda d: d["routing"].update(leads_window_months=0), "routing.leads_window_months"),
        (lambda d: d["routing"]["lead_status"].pop("archived"), "routing.lead_status"),
        (lambda d: d["practice"].update(time_zone="Mars/Olympus"), "practice.time_zone"),
        (lambda d: d["streams"]["appointments"].update(query="DELETE FROM appt"), "streams.appointments.query"),
        (lambda d: d["custom_fields"]["Contacts"].append({"label": "X", "type": "text", "length": 300}),
         "custom_fields.Contacts"),
        (lambda d: d["custom_fields"]["Contacts"].append({"label": "Y", "type": "picklist"}),
         "custom_fields.Contacts"),
        (lambda d: d["streams"]["recalls"]["fields"][3]["args"].update(map="nope"), "value map 'nope'"),
        (lambda d: d["streams"]["appointments"].update(query="SELECT * FROM appt WHERE x = :nowhere"),
         ":nowhere"),
        (lambda d: d.update(surprise=1), "surprise"),
    ],
)
def test_spec_errors_name_the_key_path(mutate, expected: str, tmp_path: Path) -> None:
    data = _raw()
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nrouting: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"broken\.yaml: line \d+"):
        load_spec(path)


def test_non_mapping_top_level_is_refused() -> None:
    with pytest.raises(SpecError, match="top level"):
        parse_spec(["a", "b"])


def test_hash_ignores_layout_but_not_content(tmp_path: Path) -> None:
    original = spec_hash(REPO_SPEC)
    reformatted = tmp_path / "same.yaml"
    reformatted.write_text("# a comment\n" + yaml.safe_dump(_raw(), sort_keys=True), encoding="utf-8")
    assert spec_hash(reformatted) == original
    data = _raw()
    data["routing"]["leads_window_months"] = 24
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert spec_hash(changed) != original
    assert spec_hash(load_spec()) == original


def test_every_target_exists_in_its_module_metadata() -> None:
    spec = load_spec()
    meta = field_metadata(spec)
    for name, stream in spec.streams.items():
        for fmap in stream.fields:
            assert fmap.target in meta[stream.module], f"{name}: {fmap.target} not a {stream.module} field"
    for label, fmap in spec.practice_fields.items():
        assert fmap.target in meta["Contacts"], label
    subform = meta["Contacts"][spec.insurance.subform_api_name]["subform_fields"]
    for fmap in spec.insurance.row_fields:
        assert fmap.target in subform


def test_every_contact_field_has_a_place_on_a_lead() -> None:
    spec = load_spec()
    leads = field_metadata(spec)["Leads"]
    patients = spec.streams["patients"]
    for fmap in patients.fields:
        renamed = spec.routing.lead_fields.get(fmap.target, fmap.target)
        assert renamed is None or renamed in leads, f"{fmap.target} -> {renamed} is not a Leads field"
    for status in spec.routing.lead_status.values():
        assert status in {v["actual_value"] for v in leads["Lead_Status"]["pick_list_values"]}


def test_custom_fields_are_in_zohos_post_shape() -> None:
    bodies = custom_fields(load_spec())
    contacts = {b["field_label"]: b for b in bodies["Contacts"]}
    assert contacts["Source System ID"] == {"field_label": "Source System ID", "data_type": "text", "length": 100,
                                            "unique": {"case_sensitive": False}}
    assert contacts["Gender"]["pick_list_values"][0] == {"display_value": "Male", "actual_value": "Male"}
    assert contacts["Related Party"]["lookup"]["module"] == {"api_name": "Contacts"}
    subform = contacts["Insurance Plans"]
    assert subform["data_type"] == "subform"
    assert {f["field_label"] for f in subform["subform"]["fields"]} >= {"Plan Type", "Carrier", "Annual Maximum"}
    for module, fields in bodies.items():
        assert all("__" not in b["field_label"] for b in fields), module


def test_api_name_from_label_follows_zohos_rule() -> None:
    assert api_name_from_label("Source System ID") == "Source_System_ID"
    assert api_name_from_label("Last Medical Hx Update") == "Last_Medical_Hx_Update"
    assert api_name_from_label("Patient ID#") == "Patient_ID"
    assert api_name_from_label("2nd Phone") == "Field_2nd_Phone"


def test_apply_api_names_rewrites_targets_links_and_subform() -> None:
    spec = load_spec()
    renamed = apply_api_names(spec, {
        "Contacts": {"Chart Number": "Chart_Number1", "Related Party": "Related_Party_Contact",
                     "Insurance Plans": "Insurance_Plans1"},
        "Insurance_Plans1": {"Carrier": "Carrier_Name"},
    })
    targets = {f.target for f in renamed.streams["patients"].fields}
    assert "Chart_Number1" in targets and "Chart_Number" not in targets
    assert renamed.streams["patients"].links[0].field == "Related_Party_Contact"
    assert renamed.insurance.subform_api_name == "Insurance_Plans1"
    subform = renamed.custom_field("Contacts", "Insurance_Plans1")
    assert subform is not None and "Carrier_Name" in {c.api_name for c in subform.subform_fields}
    assert spec.streams["patients"].fields[3].target == "Chart_Number"  # the original is untouched
    with pytest.raises(ValueError, match="not a valid Zoho API name"):
        apply_api_names(spec, {"Contacts": {"Chart Number": "Chart_Number__c"}})


def test_apply_api_names_reaches_practice_fields_leads_and_subform_rows() -> None:
    renamed = apply_api_names(load_spec(), {
        "Contacts": {"Gender": "Gender1", "Preferred Language": "Pref_Language", "Insurance Plans": "Plans",
                     "Chart Number": "Chart_No"},
        "Leads": {"Gender": "Gender2", "Date of Birth": "Birth_Date"},
        "Plans": {"Carrier": "Carrier1"},
    })
    assert renamed.practice_fields["Preferred Language"].target == "Pref_Language"
    assert renamed.routing.lead_fields["Gender1"] == "Gender2"          # Contacts name -> Leads name
    assert renamed.routing.lead_fields["Plans"] is None
    assert renamed.routing.lead_fields["Date_of_Birth"] == "Birth_Date"  # renamed on Leads only
    assert renamed.routing.lead_fields["Chart_No"] == "Chart_Number"     # renamed on Contacts only
    assert renamed.insurance.subform_api_name == "Plans"
    assert renamed.insurance.row_fields[0].target == "Carrier1"
    meta = field_metadata(renamed)
    assert "Gender1" in meta["Contacts"] and "Gender2" in meta["Leads"] and "Birth_Date" in meta["Leads"]


def test_live_metadata_overrides_the_shipped_file() -> None:
    spec = load_spec()
    live = {"Contacts": [{"api_name": "Last_Name", "data_type": "text", "length": 20, "system_mandatory": True}]}
    assert field_metadata(spec, live)["Contacts"]["Last_Name"]["length"] == 20
    assert field_metadata(spec)["Contacts"]["Last_Name"]["length"] == 80
    assert "Other" in {v["actual_value"] for v in field_metadata(spec)["Contacts"]["Lead_Source"]["pick_list_values"]}
