"""The ``v_*`` views of the synthetic DentrixSQL, defined over its base tables.

Each view is a list of (output column, expression) and a FROM clause, so that the
view of an older Dentrix version can leave out the columns it lacks. Tables are
referenced unqualified: a SQLite view can only see objects in its own file, and
the extractor attaches the file as schema ``admin``.

The naming traps are deliberate and match Dentrix: ``home_phone`` is the family
address's phone, ``mobile_phone`` is ``patient.pager``, ``guar_id`` is ``guarid``,
``chart_num`` is ``chartnum``, ``birth_date`` is ``birthdate``, ``email`` is
``emailaddr``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dentrix_zoho.source.catalog import CatalogObject, DefType, NoteType, RscType
from dentrix_zoho.source.synthetic.schema import DentrixVersion, present_columns


@dataclass(frozen=True)
class ViewDefinition:
    columns: tuple[tuple[str, str], ...]  # (output column, SQL expression)
    from_sql: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


def _cols(*pairs: str) -> tuple[tuple[str, str], ...]:
    """'output_column=sql expression' strings -> (output column, expression) pairs."""
    result = []
    for pair in pairs:
        out, expr = pair.split("=", 1)
        result.append((out.strip(), expr.strip()))
    return tuple(result)


def _definition_list(deftype: DefType) -> ViewDefinition:
    return ViewDefinition(
        _cols("modified_time_stamp=d.automodifiedtimestamp", "def_id=d.defid", "descript=d.descript"),
        f"fulldef d WHERE d.deftype = {int(deftype)}",
    )


def _rsc_address(prefix: str = "r") -> tuple[str, ...]:
    return (
        f"address_line1={prefix}.street1",
        f"address_line2={prefix}.street2",
        f"city={prefix}.city",
        f"state={prefix}.state",
        f"zip_code={prefix}.zipcode",
    )


VIEW_DEFINITIONS: dict[str, ViewDefinition] = {
    "v_patient": ViewDefinition(
        _cols(
            "patient_id=p.patid", "patient_guid=p.patguid", "last_name=p.lastname",
            "first_name=p.firstname", "mi=p.mi", "preferred_name=p.prefname",
            "salutation=p.salutation", "title=p.title", "guar_id=p.guarid", "guar_guid=g.patguid",
            "address_line1=a.street1", "address_line2=a.street2", "city=a.city", "state=a.state",
            "zipcode=a.zipcode", "home_phone=a.phone", "work_phone=p.workphone",
            "work_ext=p.workext", "other_phone=p.otherphone", "mobile_phone=p.pager",
            "chart_num=p.chartnum", "social_sec_num=p.ssn", "pri_provider_id=p.provid1",
            "pri_provider_last_name=r1.lastname", "pri_provider_first_name=r1.firstname",
            "sec_provider_id=p.provid2", "sec_provider_last_name=r2.lastname",
            "sec_provider_first_name=r2.firstname", "gender=p.gender", "status=p.status",
            "birth_date=p.birthdate", "first_visit_date=p.firstvisitdate",
            "last_visit_date=p.lastvisitdate", "last_missed_appointment=p.lastmissedappt",
            "num_of_missed_appointments=p.missedappt", "email=p.emailaddr", "fax=p.fax",
            "note=n.notetext", "privacy_flags=p.privacyflags", "employer_id=p.empid",
            "primdentalinsuredid=p.priminsuredid", "primmedicalinsuredid=0",
            "secdentalinsuredid=p.secinsuredid", "secmedicalinsuredid=0",
            "driverslicense=p.driverslicense",
        ),
        "patient p"
        " LEFT JOIN address a ON a.addrid = p.addrid"
        " LEFT JOIN patient g ON g.patid = p.guarid"
        f" LEFT JOIN rsc r1 ON r1.rsctype = {int(RscType.PROVIDER)} AND r1.rscid = p.provid1"
        f" LEFT JOIN rsc r2 ON r2.rsctype = {int(RscType.PROVIDER)} AND r2.rscid = p.provid2"
        f" LEFT JOIN fullnotes n ON n.notetype = {int(NoteType.PATIENT_NOTE)} AND n.noteid = p.patid",
    ),
    "v_appt": ViewDefinition(
        _cols(
            "modified_time_stamp=a.automodifiedtimestamp", "appointment_id=a.apptid",
            "appointment_date=a.apptdate", "start_hour=a.timehr", "start_minute=a.timemin",
            "length=a.apptlen", "operatory_id=a.opid", "provider_id=a.provid",
            "addtnl_provider_id=a.addlprov", "patient_id=a.patid", "patient_name=a.patname",
            "patient_phone=a.phone", "reason=a.apptreason", "status_id=a.status", "amount=a.amt",
            "broken_date=a.brokendate", "create_date=a.createdate", "modified_date=a.modifieddate",
            "broken=CASE WHEN a.brokendate IS NULL THEN 0 ELSE 1 END",
        ),
        "appt a",
    ),
    "v_provider": ViewDefinition(
        _cols(
            "provider_id=r.rscid", "last_name=r.lastname", "first_name=r.firstname", "mi=r.mi",
            "work_phone=r.phone", "work_phone_ext=r.phoneext", "tin=r.tin", "npi=r.npi",
            *_rsc_address(), "specialty_id=r.specialty", "isnonperson=r.isnonperson",
            "inactive=r.inactive",
        ),
        f"rsc r WHERE r.rsctype = {int(RscType.PROVIDER)}",
    ),
    "v_staff": ViewDefinition(
        _cols(
            "staff_id=r.rscid", "last_name=r.lastname", "first_name=r.firstname", "mi=r.mi",
            "title=r.title", "work_phone=r.phone", "work_phone_ext=r.phoneext", *_rsc_address(),
            "isnonperson=r.isnonperson", "inactive=r.inactive",
        ),
        f"rsc r WHERE r.rsctype = {int(RscType.STAFF)}",
    ),
    "v_patient_insurance": ViewDefinition(
        _cols(
            "modified_time_stamp=p.automodifiedtimestamp", "patient_id=p.patid",
            "patient_guid=p.patguid", "last_name=p.lastname", "first_name=p.firstname",
            "primary_insured_id=p.priminsuredid", "primary_insured_last_name=s1.lastname",
            "primary_insured_first_name=s1.firstname", "secondary_insured_id=p.secinsuredid",
            "secondary_insured_last_name=s2.lastname", "secondary_insured_first_name=s2.firstname",
            "primary_insurance_carrier_id=c1.insid", "primary_insurance_carrier_name=c1.insconame",
            "secondary_insurance_carrier_id=c2.insid",
            "secondary_insurance_carrier_name=c2.insconame",
        ),
        "patient p"
        " LEFT JOIN insured i1 ON i1.insuredid = p.priminsuredid"
        " LEFT JOIN patient s1 ON s1.patid = i1.inspartyid"
        " LEFT JOIN inscarrier c1 ON c1.insid = i1.insplanid"
        " LEFT JOIN insured i2 ON i2.insuredid = p.secinsuredid"
        " LEFT JOIN patient s2 ON s2.patid = i2.inspartyid"
        " LEFT JOIN inscarrier c2 ON c2.insid = i2.insplanid",
    ),
    "v_insurance_plans": ViewDefinition(
        _cols(
            "ins_id=c.insid", "ins_co_name=c.insconame", "group_name=c.groupname",
            "group_number=c.groupnum", "union_number=c.unionnum", "address_line1=c.street1",
            "address_line2=c.street2", "city=c.city", "state=c.state", "zipcode=c.zipcode",
            "phone=c.phone", "phone_ext=c.phoneext", "contact=c.contact", "renew_month=c.renewmon",
            "last_update=c.automodifiedtimestamp", "max_cov_person=c.maxcovperson",
            "max_cov_fam=c.maxcovfam", "std_ded_perperson=c.stddedperperson",
            "std_ded_perfam=c.stddedperfam", "do_not_bill_ins_flag=c.donotbillinsflag",
            "payor_id=c.payerid", "employer_id=c.empid",
        ),
        "inscarrier c",
    ),
    "v_insured": ViewDefinition(
        _cols(
            "insured_id=i.insuredid", "ins_plan_id=i.insplanid", "ins_party_id=i.inspartyid",
            "ins_type=i.instype", "id_num=i.idnum",
        ),
        "insured i",
    ),
    "v_guarantor_balance": ViewDefinition(
        _cols(
            "guar_id=ag.guarid", "guar_guid=g.patguid", "last_name=g.lastname",
            "first_name=g.firstname", "mi=g.mi", "balance_0_30_days=ag.aging0to30",
            "balance_31_60_days=ag.aging31to60", "balance_61_90_days=ag.aging61to90",
            "balance_91_plus_days=ag.aging91plus", "last_payment_received_date=ag.lastpaydate",
            "last_payment_amount=ag.lastpayamt", "email=g.emailaddr", "mobile_phone=g.pager",
            "birth_date=g.birthdate", "status=g.status", "social_sec_num=g.ssn",
            "billing_type_description=b.descript",
        ),
        "aging ag"
        " LEFT JOIN patient g ON g.patid = ag.guarid"
        f" LEFT JOIN fulldef b ON b.deftype = {int(DefType.BILLING_TYPE)} AND b.defid = ag.billingtype",
    ),
    "v_clinical_notes": ViewDefinition(
        _cols(
            "modified_time_stamp=c.automodifiedtimestamp", "cnotes_id=c.cnotesid",
            "patient_id=c.patid", "patient_guid=p.patguid", "last_name=p.lastname",
            "first_name=p.firstname", "mi=p.mi", "provider_id=c.provid",
            "create_date_time_stamp=c.createdatetime", "entry_date_time_stamp=c.entrydatetime",
            "note_text=c.notetext", "note_locked=CASE WHEN c.lockeddate IS NULL THEN 0 ELSE 1 END",
        ),
        "clinicalnote c LEFT JOIN patient p ON p.patid = c.patid",
    ),
    "v_rx_patient": ViewDefinition(
        _cols(
            "patient_id=r.patid", "patient_guid=p.patguid", "last_name=p.lastname",
            "first_name=p.firstname", "mi=p.mi", "rx_id=r.rxid", "rx_date=r.rxdate",
            "provider_id=r.provid", "drug_name=r.drugname", "description=r.descript",
            "dispense=r.dispense", "refills=r.refills", "sig=r.sigtext",
            "aswritten=r.dispenseaswritten", "note=r.notetext",
        ),
        "rxrec r LEFT JOIN patient p ON p.patid = r.patid WHERE r.istemplate = 0",
    ),
    "v_patient_recall": ViewDefinition(
        _cols(
            "patient_id=rp.patid", "patient_guid=p.patguid", "last_name=p.lastname",
            "first_name=p.firstname", "recall_type=rt.name", "recall_description=rt.descript",
            "due_date=rp.duedate", "recall_type_id=rp.recallid", "prior_date=rp.priordate",
            "prov_id=rp.provid",
        ),
        "recallpending rp"
        " JOIN recalltype rt ON rt.recallid = rp.recallid"
        " LEFT JOIN patient p ON p.patid = rp.patid",
    ),
    "v_employers": ViewDefinition(
        _cols(
            "modified_time_stamp=e.automodifiedtimestamp", "employer_id=e.empid",
            "employer_name=e.name", *_rsc_address("e"), "phone=e.phone",
        ),
        "employer e",
    ),
    "v_appt_status_codes": ViewDefinition(
        _cols("defid=d.defid", "descript=d.descript"),
        f"fulldef d WHERE d.deftype = {int(DefType.APPOINTMENT_STATUS)}",
    ),
    "v_appointment_types": _definition_list(DefType.APPOINTMENT_TYPE),
    "v_billing_types": _definition_list(DefType.BILLING_TYPE),
    "v_payment_types": _definition_list(DefType.PAYMENT_TYPE),
    "v_adjustment_types": _definition_list(DefType.ADJUSTMENT_TYPE),
    "v_document_types": ViewDefinition(
        _cols("dc_doctype_id=d.dcdoctypeid", "doctype_desc=d.name"),
        "doccat d",
    ),
    "v_practice_information": ViewDefinition(
        _cols(
            "practice_name=r.practicename", *_rsc_address(), "phone=r.phone",
            "phone_ext=r.phoneext",
        ),
        f"rsc r WHERE r.rsctype = {int(RscType.PRACTICE)}",
    ),
}


def create_view_sql(obj: CatalogObject, version: DentrixVersion) -> str:
    """CREATE VIEW for a catalog view, with only the columns ``version`` has."""
    definition = VIEW_DEFINITIONS[obj.name]
    wanted = {c.name for c in present_columns(obj, version)}
    select = ",\n  ".join(f"{expr} AS {name}" for name, expr in definition.columns if name in wanted)
    return f"CREATE VIEW {obj.name} AS SELECT\n  {select}\nFROM {definition.from_sql}"
