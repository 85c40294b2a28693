"""The Dentrix objects we read: the one description of their names, columns, keys and codes.

Column names are lower case exactly as Dentrix G6/G7 ``DentrixSQL`` spells them
(``admin.<name>``, as public integrator code reads them: the DDP SDK samples, the aKm Apps
``aKmDtxMySqlCreate.sql`` dump of a G6 ``DentrixSQL``, github.com/FluidicML/dentrix). Types are the
portable subset the extractor stages: ``VARCHAR(n)`` is a fixed-width CHAR on
c-treeACE (values arrive space-padded), ``length=None`` on a VARCHAR is a long
text (LVARCHAR) column, ``DECIMAL`` is money (12,2), ``BOOL`` is 0/1.

Where the reference is silent and a migration still needs a column, the column
is our assumption and the object's description says so. The synthetic practice
(``dentrix_zoho.source.synthetic``) builds its tables and views from this module,
so the two cannot drift apart.

Codes that the reference documents (or that we fixed for the synthetic practice
where it does not) are the ``IntEnum`` classes at the bottom of the module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

ColumnType = Literal["INTEGER", "SMALLINT", "VARCHAR", "DATETIME", "DECIMAL", "BOOL"]
ObjectKind = Literal["table", "view"]

BASE_MODIFIED = "automodifiedtimestamp"
VIEW_MODIFIED = "modified_time_stamp"


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: ColumnType
    length: int | None = None
    # True when the column exists only in some Dentrix versions; the extractor reads
    # NULL in its place when the database lacks it.
    optional: bool = False


@dataclass(frozen=True)
class CatalogObject:
    name: str
    kind: ObjectKind
    columns: tuple[CatalogColumn, ...]
    key: tuple[str, ...]
    modified_column: str | None
    description: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> CatalogColumn:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}; columns: {', '.join(self.column_names)}")


# ---------------------------------------------------------------------------
# A compact column notation keeps ~40 objects readable:
#   "name:I"  INTEGER        "name:S"  SMALLINT      "name:B"  BOOL
#   "name:T"  DATETIME       "name:M"  DECIMAL (money)
#   "name:V22" VARCHAR(22)   "name:V"  long text (VARCHAR, no fixed width)
#   a trailing "?" marks a column that only some Dentrix versions have.
# ---------------------------------------------------------------------------
_TYPE_CODES: dict[str, ColumnType] = {
    "I": "INTEGER",
    "S": "SMALLINT",
    "B": "BOOL",
    "T": "DATETIME",
    "M": "DECIMAL",
    "V": "VARCHAR",
}
_SPEC = re.compile(r"^([a-z_][a-z0-9_]*):([ISBTMV])(\d*)(\?)?$")


def _columns(spec: str) -> tuple[CatalogColumn, ...]:
    columns: list[CatalogColumn] = []
    for token in spec.split():
        match = _SPEC.match(token)
        if match is None:
            raise ValueError(f"bad catalog column spec {token!r}")
        name, code, width, optional = match.groups()
        if width and code != "V":
            raise ValueError(f"only VARCHAR takes a width: {token!r}")
        columns.append(
            CatalogColumn(name, _TYPE_CODES[code], int(width) if width else None, optional=bool(optional))
        )
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate column in spec: {spec!r}")
    return tuple(columns)


def _table(name: str, key: tuple[str, ...], columns: str, description: str) -> CatalogObject:
    cols = _columns(columns + f" {BASE_MODIFIED}:T")
    return _checked(CatalogObject(name, "table", cols, key, BASE_MODIFIED, " ".join(description.split())))


def _view(name: str, key: tuple[str, ...], columns: str, description: str) -> CatalogObject:
    cols = _columns(columns)
    modified = VIEW_MODIFIED if VIEW_MODIFIED in {c.name for c in cols} else None
    return _checked(CatalogObject(name, "view", cols, key, modified, " ".join(description.split())))


def _checked(obj: CatalogObject) -> CatalogObject:
    missing = [k for k in obj.key if k not in obj.column_names]
    if missing or not obj.key:
        raise ValueError(f"{obj.name}: key {obj.key} is not a subset of its columns")
    return obj


# Widths reused by many objects (v_patient's, per the reference).
_ADDRESS = "street1:V32 street2:V32 city:V27 state:V22 zipcode:V16"
_VIEW_ADDRESS = "address_line1:V32 address_line2:V32 city:V27 state:V22"
_DEF_LIST = f"{VIEW_MODIFIED}:T def_id:S descript:V53"

_BASE_TABLES: tuple[CatalogObject, ...] = (
    _table(
        "options",
        ("optionsection", "optionkey"),
        "optionsection:V41 optionkey:V41 optionvalue:V",
        """System options. The version probe reads optionkey='Data_Version', or the
        <InstalledVersion> element inside optionvalue where optionsection='SysReqWkstnData'.""",
    ),
    _table(
        "rsc",
        ("rsctype", "rscid"),
        f"rsctype:S rscid:V5 lastname:V22 firstname:V17 mi:V3 title:V22 practicename:V61 id1:V17 "
        f"{_ADDRESS} phone:V18 phoneext:V6 npi:V27 tin:V17 specialty:S feesched:S idnum:V17 "
        f"isnonperson:B inactive:B",
        """Resources: rsctype 0 = the practice (one row), 1 = provider, 2 = staff/user.
        rscid is a 5-character id ('DDS1 ', 'HYG1 '). No e-mail column: provider e-mails come
        from the provider map file. Address, phone, npi, tin and specialty (a fulldef id of
        deftype 25) are our assumption for what v_provider / v_practice_information read.""",
    ),
    _table(
        "fulldef",
        ("deftype", "defid"),
        "deftype:S defid:S descript:V53",
        """Practice Definitions: per-office lookup lists (see DefType). Ids differ from office to
        office; map by descript. Appointment status 'Complete' is the system id -106, type 0 is
        <NONE>. Deftype numbers other than 2 and 25 are our assumption.""",
    ),
    _table(
        "doccat",
        ("dcdoctypeid",),
        "dcdoctypeid:I name:V41",
        "Document Center document types (practice-defined, ids differ per office).",
    ),
    _table(
        "custfield",
        ("custfieldid",),
        "custfieldid:I label:V33 fieldtype:V5 listvalues:V255",
        """Practice-defined patient fields. Dentrix has no custom-field feature (integrators read
        such data from fullnotes and patalerts, e.g. the Pozative/Adit sync code): practices keep such data in notes and alerts. We model what a practice tracks this
        way as an explicit table, our assumption: fieldtype is 'text', 'list' or 'date';
        listvalues holds the allowed values of a list separated by '|'.""",
    ),
    _table(
        "custvalue",
        ("patid", "custfieldid"),
        "patid:I custfieldid:I fieldvalue:V255",
        """Values of practice-defined fields per patient (our assumption, see custfield).
        Dates are typed by hand as MM/DD/YYYY; list values may fall outside the list.""",
    ),
    _table(
        "address",
        ("addrid",),
        f"addrid:I {_ADDRESS} country:V22 phone:V18 phoneext:V6 ptrcount:S",
        """Postal addresses, shared by a family (ptrcount = how many patients point at it).
        phone is the HOME phone (v_patient.home_phone). New-patient appointments point here
        through appt.newpataddrid.""",
    ),
    _table(
        "employer",
        ("empid",),
        f"empid:I name:V33 {_ADDRESS} phone:V18 emptype:S",
        "Employers of subscribers; an insurance plan is carrier + employer group.",
    ),
    _table(
        "inscarrier",
        ("insid",),
        f"insid:I empid:I insconame:V33 groupname:V33 groupnum:V26 unionnum:V8 {_ADDRESS} "
        f"phone:V18 phoneext:V6 contact:V32 renewmon:S claimfmt:S instype:S payerid:V7 feesched:S "
        f"maxcovperson:M maxcovfam:M stddedperperson:M stddedperfam:M "
        f"prevcovpct:S basiccovpct:S majorcovpct:S donotbillinsflag:B",
        """Insurance plans: carrier name + employer group (groupnum), payer id, annual maximums
        and deductibles. Coverage percentages (prevcovpct, basiccovpct, majorcovpct) are our
        assumption: Dentrix keeps them in a coverage table outside the public schema.""",
    ),
    _table(
        "insured",
        ("insuredid",),
        "insuredid:I insplanid:I inspartyid:I idnum:V26 instype:S fambenefits:M famdeductible:M ptrcount:S",
        """Subscriptions: insplanid -> inscarrier.insid, inspartyid -> patient.patid of the
        subscriber, idnum = member/subscriber id. Patients point here via priminsuredid /
        secinsuredid. instype 0 = dental (our assumption).""",
    ),
    _table(
        "patient",
        ("patid",),
        "patid:I famid:I guarid:I addrid:I lastname:V22 firstname:V17 mi:V3 prefname:V17 "
        "salutation:V33 title:V11 chartnum:V21 ssn:V11 gender:S status:S fampos:S birthdate:T "
        "provid1:V5 provid2:V5 isguar:B isheadofhouse:B isinssubcriber:B empid:I "
        "workphone:V18 workext:V6 pager:V18 otherphone:V18 fax:V18 emailaddr:V61 "
        "driverslicense:V26 language:S privacyflags:S firstvisitdate:T lastvisitdate:T "
        "missedappt:S lastmissedappt:T refid:I refbyid:I priminsuredid:I secinsuredid:I "
        "priminsrel:S secinsrel:S primbenefits:M secbenefits:M primdeductible:M secdeductible:M "
        "feesched:S patguid:V37",
        """Patients, including Non-Patients (guarantors, subscribers). Home phone is
        address.phone; pager is the MOBILE phone. guarid = responsible party (the guarantor;
        = patid for adults paying their own), famid = the family (we use the guarantor's patid).
        status: see PatientStatus; gender 1 male, 2 female; privacyflags: see PrivacyFlag.
        refid -> referral.refid (referral source), refbyid -> patid of a referring patient
        (our reading). primbenefits/secbenefits = benefits used this plan year,
        primdeductible/secdeductible = deductible met (our reading of the deductible/benefit
        DECIMALs).""",
    ),
    _table(
        "claim",
        ("claimid",),
        "claimid:I patid:I guarid:I insuredid:I insid:I provid:V5 claimtype:S status:S "
        "createdate:T sentdate:T receiveddate:T totalbilled:M totalreceived:M",
        """Insurance claims, one per visit and insured. Only patid and totalreceived are
        documented; the rest is our assumption. status: see ClaimStatus (open = not received).
        claimtype 0 primary, 1 secondary.""",
    ),
    _table(
        "appt",
        ("apptid",),
        "apptid:I apptdate:T timehr:S timemin:S apptlen:S opid:V5 provid:V5 addlprov:V5 "
        "staffid:V5 patid:I patname:V42 phone:V18 apptreason:V62 status:S appttype:S amt:M "
        "apptbrokenclass:S brokendate:T apptflag:S newpataddrid:I refbytype:S refid:I "
        "labcaseappt:B pinboard:S codeid1:I codetype1:S codeid2:I codetype2:S codeid3:I "
        "codetype3:S codeid4:I codetype4:S createdate:T createdbyuserid:V5 modifieddate:T",
        """Appointments. Start = apptdate (date part) + timehr:timemin, apptlen in minutes.
        status -> fulldef appointment status ids (-106 = Complete); appttype -> fulldef
        appointment types (0 = <NONE>). patid = 0 for a new patient not yet entered: the name
        is only in patname ('LAST, FIRST'), the address at newpataddrid, a note in fullnotes
        (notetype 116, noteid = newpataddrid). Broken appointments carry brokendate. Deleted
        appointments are not here (see appthist). codeidN/codetypeN: codetype 1 -> the
        fullproclog.proclogid of a completed procedure, otherwise proccode.proccodeid (we carry
        the first four of Dentrix's twenty).""",
    ),
    _table(
        "appthist",
        ("apptid",),
        "apptid:I parentapptid:I modifieddate:T modifiedtime:I patid:I userid:V5 provid:V5 "
        "opid:V5 apptreason:V62 apptlen:S status:V8 appttype:V21 apptdate:T timehr:S timemin:S "
        "createflag:B lastflag:B deletedflag:B createddate:T createduserid:V5",
        """Appointment audit trail: apptid is the history row, parentapptid the appointment.
        A deleted appointment survives only here, as rows with deletedflag = 1. status and
        appttype are stored as TEXT (status truncated to 8 characters, e.g. 'EMERGENC').
        modifiedtime is HHMM as an integer (our assumption).""",
    ),
    _table(
        "proccode",
        ("proccodeid",),
        "proccodeid:I adacode:V11 abbrevdescript:V11 descript:V101 category:S treatmentarea:S",
        """Procedure codes: adacode is the CDT code ('D1110'). treatmentarea: see
        TreatmentArea (our assumption).""",
    ),
    _table(
        "feeschedule",
        ("proccodeid", "feeschedcategoryid"),
        "proccodeid:I feeschedcategoryid:S amt:M",
        "Fees per procedure code and fee schedule (1 = the office's standard fees).",
    ),
    _table(
        "fullproclog",
        ("proclogid",),
        "proclogid:I patid:I guarid:I chartstatus:S proclogclass:S procdate:T proccodeid:I "
        "claimid:I provid:V5 history:B amt:M amtpriminspaid:M amtsecinspaid:M createdate:T "
        "toothrangestart:S toothrangeend:S surfacestring:V7 checknum:V16 completiondate:T",
        """The ledger: completed procedures, payments and adjustments in one table. proclogid is
        our surrogate key (the public schema shows none). chartstatus 105 = completed
        procedure, 90 = payment or adjustment; proclogclass tells them apart (see ProcLogClass).
        Payments and credit adjustments have NEGATIVE amt; patient payments sit on the
        guarantor (patid = guarid). For payments and adjustments proccodeid holds the
        payment/adjustment type (a fulldef defid), our assumption. history = 1 after month-end
        (locked). The family balance is the sum of amt by guarid (= aging), not by patid.""",
    ),
    _table(
        "recalltype",
        ("recallid",),
        "recallid:S patid:I name:V14 descript:V32 unit:S qty:S provtype:S",
        """Continuing-care (recall) types, practice-defined (patid 0 = practice-wide):
        PROPHY, BWX, FMX, PERIO. Interval = qty units (unit: see IntervalUnit, our
        assumption). provtype 0 = hygienist, 1 = dentist (our assumption).""",
    ),
    _table(
        "recallpending",
        ("patid", "recallid"),
        "recallid:S patid:I guarid:I apptid:I setdate:T duedate:T priordate:T provtype:S "
        "provid:V5 status:S",
        """Pending recalls: one row per patient and recall type; apptid <> 0 when an
        appointment is already booked for it. Archived patients have none.""",
    ),
    _table(
        "clinicalnote",
        ("cnotesid",),
        "cnotesid:I patid:I provid:V5 createdatetime:T entrydatetime:T signatureid:I "
        "lockeddate:T notetext:V",
        """Clinical notes, about one per visit. notetext is long text (the aKm dump shows
        VARCHAR(8193); notes longer than Zoho's limits do occur).""",
    ),
    _table(
        "fullnotes",
        ("notetype", "noteid"),
        "notetype:S noteid:I notedate:T notetext:V",
        """Free-text notes keyed by (notetype, noteid = owning entity id): 3 patient note
        (noteid = patid), 13 chart-number settings (noteid 1), 49 office-journal text
        (noteid = contactid), 116 new-patient appointment note (noteid = appt.newpataddrid).""",
    ),
    _table(
        "rxrec",
        ("rxid",),
        "rxid:I patid:I provid:V5 drugname:V51 descript:V51 dispense:V51 dispenseaswritten:B "
        "refills:S sigtext:V152 notetext:V501 rxdate:T createdate:T istemplate:B isstandard:B rxguid:V37",
        "Prescriptions (G6.2/G7). patid = 0 with istemplate = 1 are the practice's templates.",
    ),
    _table(
        "referral",
        ("refid",),
        "refid:I reftype:S lastname:V22 firstname:V17 mi:V3 title:V11 specialtyid:S addrid:I "
        "email:V61 fax:V18 otherphone:V18 totalrefby:I totalrefto:I nonpersonflag:B",
        """Referral sources (nonpersonflag = 1, the source's name in lastname: 'Yelp',
        'Google', 'Walk-in' ...) and referred-to doctors (reftype 1).""",
    ),
    _table(
        "refacts",
        ("refactsid",),
        "refactsid:I refid:I patid:I refactstype:S refactdate:T refbytype:S",
        """Referral events: refactstype 0 = referred by, 1 = referred to; refbytype 0 =
        referral source (refid -> referral), 1 = another patient (refid -> patient.patid).
        Code values are our assumption.""",
    ),
    _table(
        "aging",
        ("guarid",),
        "guarid:I aging0to30:M aging31to60:M aging61to90:M aging91plus:M agingdate:T "
        "lastpaydate:T lastpayamt:M lastinspaydate:T lastinspayamt:M lastbillingdate:T billingtype:S",
        """Balances per GUARANTOR only (there is no patient-level balance). In the synthetic
        practice the four buckets add up to the sum of fullproclog.amt by guarid. billingtype
        -> fulldef billing types.""",
    ),
    _table(
        "document",
        ("docid",),
        "docid:I doctypeid:I descript:V62 pages:S createdate:T lockeddate:T docfmt:V5 path_cnum:V261",
        """Document Center documents (scans, PDFs); doctypeid -> doccat. The file lives outside
        the database: path_cnum is its path relative to the practice's image folder (our
        assumption that documents carry a path like eattach). Some files are missing or over
        the upload limit.""",
    ),
    _table(
        "docattach",
        ("attachid",),
        "attachid:I docid:I attachtotype:S attachtoentityid:I",
        "Links documents to entities: attachtotype 1 = patient (attachtoentityid = patid), our assumption.",
    ),
    _table(
        "eattach",
        ("eattachid",),
        "eattachid:I patid:I attachtype:S descript:V62 path_cnum:V261 attachdate:T",
        """Electronic attachments (x-rays, intraoral photos): metadata only, the image file
        sits in the image folder at path_cnum (relative path, forward slashes). attachtype:
        see AttachType (our assumption).""",
    ),
    _table(
        "contact",
        ("contactid",),
        "contactid:I contactdate:T contacttime:I patid:I provid:V5 title:V81 contacttype:S "
        "provtype:S datatype:S refid:I",
        """Office Journal: calls, letters, texts, e-mails. contacttime is HHMM as an integer
        (our assumption). contacttype: see ContactType. Longer text in fullnotes notetype 49.""",
    ),
)

_VIEWS: tuple[CatalogObject, ...] = (
    _view(
        "v_patient",
        ("patient_id",),
        "patient_id:I patient_guid:V37 last_name:V22 first_name:V17 mi:V3 preferred_name:V17 "
        "salutation:V33 title:V11 guar_id:I guar_guid:V37 " + _VIEW_ADDRESS + " zipcode:V16 "
        "home_phone:V18 work_phone:V18 work_ext:V6 other_phone:V18 mobile_phone:V18 "
        "chart_num:V21 social_sec_num:V11 pri_provider_id:V5 pri_provider_last_name:V22 "
        "pri_provider_first_name:V17 sec_provider_id:V5 sec_provider_last_name:V22 "
        "sec_provider_first_name:V17 gender:S status:S birth_date:T first_visit_date:T "
        "last_visit_date:T last_missed_appointment:T num_of_missed_appointments:S email:V61 "
        "fax:V18 note:V8191 privacy_flags:S employer_id:I primdentalinsuredid:I "
        "primmedicalinsuredid:I secdentalinsuredid:I secmedicalinsuredid:I driverslicense:V26",
        """Patients. Naming traps: home_phone = address.phone, mobile_phone = patient.pager,
        guar_id = guarid, chart_num = chartnum, birth_date = birthdate, email = emailaddr.
        No modified_time_stamp: read changes from patient.automodifiedtimestamp.""",
    ),
    _view(
        "v_appt",
        ("appointment_id",),
        f"{VIEW_MODIFIED}:T appointment_id:I appointment_date:T start_hour:S start_minute:S "
        "length:S operatory_id:V5 provider_id:V5 addtnl_provider_id:V5? patient_id:I "
        "patient_name:V42 patient_phone:V18 reason:V62 status_id:S amount:M broken_date:T "
        "create_date:T modified_date:T? broken:B?",
        """Appointments (G7 view over appt). addtnl_provider_id, modified_date and broken exist
        only in newer versions. Start = appointment_date + start_hour:start_minute; no type
        column (read appt.appttype).""",
    ),
    _view(
        "v_provider",
        ("provider_id",),
        "provider_id:V5 last_name:V22 first_name:V17 mi:V3 work_phone:V18 work_phone_ext:V6 "
        "tin:V17 npi:V27 " + _VIEW_ADDRESS + " zip_code:V16 specialty_id:S isnonperson:B inactive:B",
        "Providers (rsc rsctype 1). No e-mail: see the provider map.",
    ),
    _view(
        "v_staff",
        ("staff_id",),
        "staff_id:V5 last_name:V22 first_name:V17 mi:V3 title:V22 work_phone:V18 "
        "work_phone_ext:V6 " + _VIEW_ADDRESS + " zip_code:V16 isnonperson:B inactive:B",
        "Staff/users (rsc rsctype 2).",
    ),
    _view(
        "v_patient_insurance",
        ("patient_id",),
        f"{VIEW_MODIFIED}:T patient_id:I patient_guid:V37 last_name:V22 first_name:V17 "
        "primary_insured_id:I primary_insured_last_name:V22 primary_insured_first_name:V17 "
        "secondary_insured_id:I secondary_insured_last_name:V22 secondary_insured_first_name:V17 "
        "primary_insurance_carrier_id:I primary_insurance_carrier_name:V33 "
        "secondary_insurance_carrier_id:I secondary_insurance_carrier_name:V33",
        """Each patient's primary and secondary insurance: *_insured_id -> insured.insuredid,
        the names are the SUBSCRIBER's, *_carrier_id -> inscarrier.insid.""",
    ),
    _view(
        "v_insurance_plans",
        ("ins_id",),
        "ins_id:I ins_co_name:V33 group_name:V33 group_number:V26 union_number:V8 "
        + _VIEW_ADDRESS
        + " zipcode:V16 phone:V18 phone_ext:V6 contact:V32 renew_month:S last_update:T "
        "max_cov_person:M max_cov_fam:M std_ded_perperson:M std_ded_perfam:M "
        "do_not_bill_ins_flag:B payor_id:V7 employer_id:I",
        "Insurance plans (carrier + employer group), over inscarrier.",
    ),
    _view(
        "v_insured",
        ("insured_id",),
        "insured_id:I ins_plan_id:I ins_party_id:I ins_type:S id_num:V26",
        "Subscriptions: ins_party_id is the subscriber's patient_id, id_num the member id.",
    ),
    _view(
        "v_guarantor_balance",
        ("guar_id",),
        "guar_id:I guar_guid:V37 last_name:V22 first_name:V17 mi:V3 balance_0_30_days:M "
        "balance_31_60_days:M balance_61_90_days:M balance_91_plus_days:M "
        "last_payment_received_date:T last_payment_amount:M email:V61 mobile_phone:V18 "
        "birth_date:T status:S social_sec_num:V11 billing_type_description:V53",
        "The only balance view: aging per guarantor, with the guarantor's name and billing type.",
    ),
    _view(
        "v_clinical_notes",
        ("cnotes_id",),
        f"{VIEW_MODIFIED}:T cnotes_id:I patient_id:I patient_guid:V37 last_name:V22 "
        "first_name:V17 mi:V3 provider_id:V5 create_date_time_stamp:T entry_date_time_stamp:T "
        "note_text:V8193 note_locked:B",
        "Clinical notes with the patient's name (NULL when the patient row is gone).",
    ),
    _view(
        "v_rx_patient",
        ("rx_id",),
        "patient_id:I patient_guid:V37 last_name:V22 first_name:V17 mi:V3 rx_id:I rx_date:T "
        "provider_id:V5 drug_name:V51 description:V51 dispense:V51 refills:I sig:V152 "
        "aswritten:B note:V501",
        "Prescriptions written for patients (rxrec without the templates).",
    ),
    _view(
        "v_patient_recall",
        ("patient_id", "recall_type_id"),
        "patient_id:I patient_guid:V37 last_name:V22 first_name:V17 recall_type:V14 "
        "recall_description:V32 due_date:T recall_type_id:S prior_date:T prov_id:V5",
        "Pending recalls with the recall type's name (recalltype.name) and description.",
    ),
    _view(
        "v_employers",
        ("employer_id",),
        f"{VIEW_MODIFIED}:T employer_id:I employer_name:V33 " + _VIEW_ADDRESS + " zip_code:V16 phone:V18",
        "Employers.",
    ),
    _view(
        "v_appt_status_codes",
        ("defid",),
        "defid:S descript:V52",
        "Appointment statuses of this office (ids differ per office; -106 = Complete).",
    ),
    _view("v_appointment_types", ("def_id",), _DEF_LIST, "Appointment types of this office (0 = <NONE>)."),
    _view("v_billing_types", ("def_id",), _DEF_LIST, "Billing types of this office."),
    _view("v_payment_types", ("def_id",), _DEF_LIST, "Payment types of this office."),
    _view("v_adjustment_types", ("def_id",), _DEF_LIST, "Adjustment types of this office."),
    _view(
        "v_document_types",
        ("dc_doctype_id",),
        "dc_doctype_id:I doctype_desc:V42",
        "Document Center document types of this office.",
    ),
    _view(
        "v_practice_information",
        ("practice_name",),
        "practice_name:V61 " + _VIEW_ADDRESS + " zip_code:V16 phone:V18 phone_ext:V6",
        "The practice's name and address (one row).",
    ),
)

CATALOG: dict[str, CatalogObject] = {obj.name: obj for obj in (*_BASE_TABLES, *_VIEWS)}


def catalog_object(name: str) -> CatalogObject:
    """The catalog entry for a Dentrix object; names are case-insensitive as on c-treeACE."""
    key = name.strip().lower()
    if key.startswith("admin."):
        key = key[len("admin.") :]
    try:
        return CATALOG[key]
    except KeyError:
        raise KeyError(f"unknown Dentrix object {name!r}; known objects: {', '.join(CATALOG)}") from None


def base_tables() -> tuple[CatalogObject, ...]:
    return tuple(obj for obj in CATALOG.values() if obj.kind == "table")


def views() -> tuple[CatalogObject, ...]:
    return tuple(obj for obj in CATALOG.values() if obj.kind == "view")


# ---------------------------------------------------------------------------
# Codes. Reference-documented values are marked; the rest are the synthetic
# practice's choices where the reference lists no values.
# ---------------------------------------------------------------------------


class PatientStatus(IntEnum):
    PATIENT = 1  # active (reference)
    NON_PATIENT = 2  # guarantor or subscriber only (reference)
    INACTIVE = 3  # reference
    ARCHIVED = 4  # reference [INFERRED]; no insurance, recall or future appointments


class Gender(IntEnum):
    MALE = 1  # reference
    FEMALE = 2  # reference


class FamilyPosition(IntEnum):
    SINGLE = 1  # reference
    MARRIED = 2
    CHILD = 3
    OTHER = 4


class PrivacyFlag(IntEnum):
    """Bits of patient.privacyflags (reference [INFERRED])."""

    NO_VOICE_CALL = 1
    NO_TEXT_OR_EMAIL = 2


class DefType(IntEnum):
    """fulldef.deftype. 2 and 25 are in the reference; the others are ours."""

    MEDICAL_ALERT = 2
    BILLING_TYPE = 5
    PAYMENT_TYPE = 6
    ADJUSTMENT_TYPE = 7
    APPOINTMENT_STATUS = 11
    APPOINTMENT_TYPE = 12
    PROVIDER_SPECIALTY = 25


APPT_STATUS_COMPLETE = -106  # reference: system status, the same in every office
APPT_TYPE_NONE = 0  # reference: fixed <NONE>


class ChartStatus(IntEnum):
    PAYMENT_OR_ADJUSTMENT = 90  # reference [INFERRED]
    COMPLETED_PROCEDURE = 105  # reference [INFERRED]


class ProcLogClass(IntEnum):
    """fullproclog.proclogclass (values are ours; the reference lists none)."""

    PROCEDURE = 0
    PATIENT_PAYMENT = 1
    INSURANCE_PAYMENT = 2
    CREDIT_ADJUSTMENT = 3  # negative amt
    CHARGE_ADJUSTMENT = 4  # positive amt


class ClaimStatus(IntEnum):
    CREATED = 0  # open, not yet sent
    SENT = 1  # open, waiting for the carrier
    RECEIVED = 2  # closed, payment posted


class ContactType(IntEnum):
    """contact.contacttype: 3 and 5 are used for SMS and call logs (reference); which is which is ours."""

    LETTER = 1
    EMAIL = 2
    TEXT_MESSAGE = 3
    PHONE_CALL = 5


class NoteType(IntEnum):
    PATIENT_NOTE = 3  # reference
    CHART_NUMBER_SETTINGS = 13  # reference
    OFFICE_JOURNAL = 49  # reference
    NEW_PATIENT_APPOINTMENT = 116  # reference


class RscType(IntEnum):
    PRACTICE = 0  # reference
    PROVIDER = 1  # reference
    STAFF = 2  # reference


class IntervalUnit(IntEnum):
    DAYS = 1
    WEEKS = 2
    MONTHS = 3
    YEARS = 4


class AttachType(IntEnum):
    XRAY = 1
    INTRAORAL_PHOTO = 2
    SCANNED_DOCUMENT = 3


class TreatmentArea(IntEnum):
    MOUTH = 1
    TOOTH = 2
    SURFACE = 3
    QUADRANT = 4
