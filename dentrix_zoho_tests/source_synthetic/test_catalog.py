from __future__ import annotations

import re

import pytest

from dentrix_zoho.source.catalog import (
    BASE_MODIFIED,
    CATALOG,
    VIEW_MODIFIED,
    base_tables,
    catalog_object,
    views,
)

REQUIRED_TABLES = (
    "patient address employer inscarrier insured claim appt appthist fullproclog proccode recallpending "
    "recalltype clinicalnote fullnotes rxrec referral refacts rsc fulldef aging document docattach eattach "
    "contact options custfield custvalue"
).split()
REQUIRED_VIEWS = (
    "v_patient v_appt v_provider v_staff v_patient_insurance v_insurance_plans v_insured v_guarantor_balance "
    "v_clinical_notes v_rx_patient v_patient_recall v_employers v_appt_status_codes v_appointment_types "
    "v_practice_information"
).split()


def test_every_required_object_is_in_the_catalog() -> None:
    assert set(REQUIRED_TABLES) <= {o.name for o in base_tables()}
    assert set(REQUIRED_VIEWS) <= {o.name for o in views()}


def test_base_tables_come_before_views() -> None:
    kinds = [o.kind for o in CATALOG.values()]
    assert kinds == sorted(kinds, key=lambda k: k != "table")
    assert CATALOG == {o.name: o for o in CATALOG.values()}


def test_names_are_lower_case_identifiers() -> None:
    for obj in CATALOG.values():
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", obj.name)
        for col in obj.columns:
            assert re.fullmatch(r"[a-z_][a-z0-9_]*", col.name), (obj.name, col.name)
        assert len(set(obj.column_names)) == len(obj.columns)


def test_keys_are_non_optional_columns() -> None:
    for obj in CATALOG.values():
        assert obj.key
        for key in obj.key:
            assert not obj.column(key).optional, (obj.name, key)


def test_base_tables_carry_the_modified_timestamp() -> None:
    for obj in base_tables():
        assert obj.modified_column == BASE_MODIFIED
        assert obj.column(BASE_MODIFIED).type == "DATETIME"


def test_views_name_their_modified_column_only_when_they_have_it() -> None:
    for obj in views():
        has = VIEW_MODIFIED in obj.column_names
        assert obj.modified_column == (VIEW_MODIFIED if has else None), obj.name
    assert catalog_object("v_appt").modified_column == VIEW_MODIFIED
    assert catalog_object("v_patient").modified_column is None


def test_varchar_has_a_width_or_is_long_text_and_only_varchar_has_one() -> None:
    for obj in CATALOG.values():
        for col in obj.columns:
            if col.type != "VARCHAR":
                assert col.length is None, (obj.name, col.name)
            else:
                assert col.length is None or col.length > 0


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("patient", "patid lastname firstname birthdate status gender privacyflags guarid famid provid1 chartnum "
         "firstvisitdate lastvisitdate priminsuredid secinsuredid refid refbyid patguid addrid pager emailaddr"),
        ("address", "addrid street1 street2 city state zipcode phone"),
        ("appt", "apptid apptdate timehr timemin apptlen provid opid patid patname phone apptreason status "
         "appttype newpataddrid amt createdate brokendate"),
        ("appthist", "apptid parentapptid deletedflag status"),
        ("fullproclog", "proclogid patid guarid chartstatus proclogclass procdate proccodeid amt history"),
        ("fullnotes", "notetype noteid notetext"),
        ("fulldef", "deftype defid descript"),
        ("options", "optionsection optionkey optionvalue"),
        ("custfield", "custfieldid label fieldtype listvalues"),
        ("v_patient", "home_phone mobile_phone guar_id chart_num birth_date email pri_provider_id"),
        ("v_appt", "appointment_id appointment_date start_hour start_minute length patient_id status_id"),
    ],
)
def test_objects_have_the_columns_the_migration_reads(name: str, columns: str) -> None:
    assert set(columns.split()) <= set(catalog_object(name).column_names)


def test_surrogate_and_composite_keys() -> None:
    assert catalog_object("fullproclog").key == ("proclogid",)
    assert "our surrogate" in catalog_object("fullproclog").description
    assert catalog_object("fullnotes").key == ("notetype", "noteid")
    assert catalog_object("recallpending").key == ("patid", "recallid")


def test_version_dependent_columns_are_optional() -> None:
    optional = {(o.name, c.name) for o in CATALOG.values() for c in o.columns if c.optional}
    assert optional == {("v_appt", "addtnl_provider_id"), ("v_appt", "modified_date"), ("v_appt", "broken")}


def test_catalog_object_is_case_insensitive_and_accepts_the_schema_prefix() -> None:
    assert catalog_object("V_Appt_Status_Codes") is CATALOG["v_appt_status_codes"]
    assert catalog_object("admin.PATIENT") is CATALOG["patient"]


def test_unknown_object_error_lists_the_known_names() -> None:
    with pytest.raises(KeyError) as info:
        catalog_object("v_ledger")
    message = str(info.value)
    assert "v_ledger" in message and "v_patient" in message and "fullproclog" in message


def test_unknown_column_error_lists_the_columns() -> None:
    with pytest.raises(KeyError, match="lastname"):
        catalog_object("patient").column("surname")
