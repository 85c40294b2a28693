"""The practice itself: definitions, providers, codes, plans, referral sources, custom fields.

Practice Definitions and other practice-defined ids are drawn per OFFICE (not per seed):
office 1 numbers each list 1, 2, 3 ...; any other office gets the same descriptions
under different ids, as real offices do after years of separate setup.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dentrix_zoho.source.catalog import (
    APPT_STATUS_COMPLETE,
    DefType,
    IntervalUnit,
    RscType,
)
from dentrix_zoho.source.synthetic import vocabulary as vocab
from dentrix_zoho.source.synthetic.scales import ScaleSpec
from dentrix_zoho.source.synthetic.schema import DentrixVersion, TableSink
from dentrix_zoho.source.synthetic.timeline import Timeline

PROVIDER_EMAIL_DOMAIN = "dental.example.com"  # reserved (RFC 2606) and accepted by e-mail validators
DATA_VERSIONS: dict[str, str] = {"G6.2": "G6.2.21", "G7.4": "G7.4.17"}
PRACTICE_NAMES = {1: "Wasatch Family Dental", 2: "Timpanogos Smiles", 3: "Canyon View Dental"}

# Where each practice-defined list draws its ids from (c-tree SMALLINT, small positive ids).
_DEFINITION_LISTS: dict[DefType, tuple[tuple[str, ...], int]] = {
    DefType.APPOINTMENT_STATUS: (vocab.APPOINTMENT_STATUSES, 60),
    DefType.APPOINTMENT_TYPE: (vocab.APPOINTMENT_TYPES, 99),
    DefType.BILLING_TYPE: (vocab.BILLING_TYPES, 40),
    DefType.PAYMENT_TYPE: (vocab.PAYMENT_TYPES, 40),
    DefType.ADJUSTMENT_TYPE: (vocab.ADJUSTMENT_TYPES, 40),
    DefType.MEDICAL_ALERT: (vocab.MEDICAL_ALERTS, 40),
    DefType.PROVIDER_SPECIALTY: (vocab.SPECIALTIES, 30),
}


def pad_id(text: str) -> str:
    """Provider, operatory and staff ids are CHAR(5): always padded, in every row."""
    return text.ljust(5)


def office_ids(office: int, count: int, highest: int, list_name: str) -> list[int]:
    """Ids for a practice-defined list: 1..count in office 1, a different draw elsewhere."""
    canonical = list(range(1, count + 1))
    if office == 1:
        return canonical
    ids = random.Random(f"office-ids:{list_name}:{office}").sample(range(1, highest + 1), count)
    if ids == canonical:
        ids = ids[1:] + ids[:1]
    return ids


@dataclass(frozen=True)
class Provider:
    rscid: str
    kind: Literal["DDS", "HYG"]
    lastname: str
    firstname: str
    inactive: bool

    @property
    def trimmed_id(self) -> str:
        return self.rscid.strip()


@dataclass(frozen=True)
class ProcRef:
    proccodeid: int
    code: vocab.ProcedureCode
    fee: float


@dataclass(frozen=True)
class InsurancePlan:
    insid: int
    empid: int
    carrier: vocab.Carrier
    groupnum: str
    coverage: dict[str, int]  # "prev" / "basic" / "major" -> percent
    annual_max: float
    deductible: float


@dataclass(frozen=True)
class CustomField:
    custfieldid: int
    label: str
    fieldtype: str
    values: tuple[str, ...]


@dataclass
class Practice:
    office: int
    name: str
    definitions: dict[DefType, dict[str, int]]
    providers: list[Provider]
    staff: list[str]
    operatories: list[str]
    procedures: dict[str, ProcRef]
    recall_ids: dict[str, int]
    referral_sources: dict[str, int]
    referred_to: list[int]
    employers: list[int]
    plans: list[InsurancePlan]
    custom_fields: list[CustomField]
    document_types: dict[str, int]

    @property
    def dentists(self) -> list[Provider]:
        return [p for p in self.providers if p.kind == "DDS" and not p.inactive]

    @property
    def hygienists(self) -> list[Provider]:
        return [p for p in self.providers if p.kind == "HYG" and not p.inactive]

    @property
    def retired_dentist(self) -> Provider:
        return next(p for p in self.providers if p.inactive)

    def status_id(self, descript: str) -> int:
        return self.definitions[DefType.APPOINTMENT_STATUS][descript]

    def type_id(self, descript: str) -> int:
        return self.definitions[DefType.APPOINTMENT_TYPE][descript]

    def unmapped_provider(self) -> Provider:
        """The one provider the sample provider map leaves out: the last active hygienist."""
        return self.hygienists[-1]


def build_practice(
    rng: random.Random, spec: ScaleSpec, office: int, timeline: Timeline
) -> Practice:
    definitions: dict[DefType, dict[str, int]] = {}
    for deftype, (names, highest) in _DEFINITION_LISTS.items():
        ids = office_ids(office, len(names), highest, deftype.name)
        definitions[deftype] = dict(zip(names, ids, strict=True))
    definitions[DefType.APPOINTMENT_STATUS]["Complete"] = APPT_STATUS_COMPLETE

    providers = [
        Provider(pad_id(f"DDS{i}"), "DDS", rng.choice(vocab.LAST_NAMES), rng.choice(vocab.FIRST_NAMES_FEMALE + vocab.FIRST_NAMES_MALE), False)
        for i in range(1, spec.dentists + 1)
    ]
    providers += [
        Provider(pad_id(f"HYG{i}"), "HYG", rng.choice(vocab.LAST_NAMES), rng.choice(vocab.FIRST_NAMES_FEMALE), False)
        for i in range(1, spec.hygienists + 1)
    ]
    # A retired dentist still owns old patients and old appointments.
    providers.append(Provider(pad_id(f"DDS{spec.dentists + 1}"), "DDS", rng.choice(vocab.LAST_NAMES), "Harold", True))

    fee_factor = 1.0 if office == 1 else random.Random(f"fees:{office}").uniform(0.92, 1.12)
    code_ids = office_ids(office, len(vocab.PROCEDURE_CODES), 2_000, "proccode")
    procedures = {
        code.ada: ProcRef(pid, code, float(round(code.fee * fee_factor)))
        for pid, code in zip(code_ids, vocab.PROCEDURE_CODES, strict=True)
    }
    recall_ids = dict(zip((r[0] for r in vocab.RECALL_TYPES), office_ids(office, len(vocab.RECALL_TYPES), 30, "recall"), strict=True))
    referral_ids = office_ids(office, len(vocab.REFERRAL_SOURCES) + len(vocab.REFERRED_TO_DOCTORS), 200, "referral")
    referral_sources = dict(zip(vocab.REFERRAL_SOURCES, referral_ids, strict=False))
    referred_to = referral_ids[len(vocab.REFERRAL_SOURCES) :]
    employers = list(range(1, spec.employers + 1))
    plans = []
    for insid in range(1, spec.plans + 1):
        carrier = rng.choice(vocab.CARRIERS)
        plans.append(
            InsurancePlan(
                insid=insid,
                empid=rng.choice(employers),
                carrier=carrier,
                groupnum=f"{rng.randint(10_000, 9_999_999):07d}",
                coverage={"prev": rng.choice((100, 100, 90, 80)), "basic": rng.choice((80, 80, 70, 50)), "major": rng.choice((50, 50, 60, 40))},
                annual_max=float(rng.choice((1000, 1200, 1500, 1500, 2000, 2500))),
                deductible=float(rng.choice((0, 50, 50, 75, 100))),
            )
        )
    custom_ids = office_ids(office, len(vocab.CUSTOM_FIELDS), 50, "custfield")
    custom_fields = [
        CustomField(cid, label, ftype, values)
        for cid, (label, ftype, values) in zip(custom_ids, vocab.CUSTOM_FIELDS, strict=True)
    ]
    doc_ids = office_ids(office, len(vocab.DOCUMENT_TYPES), 80, "doccat")
    return Practice(
        office=office,
        name=PRACTICE_NAMES.get(office, f"Synthetic Dental Office {office}"),
        definitions=definitions,
        providers=providers,
        staff=[pad_id(f"{role}{i}") for i, role in enumerate(("FD", "OM", "DA", "FD", "DA", "BK") * 2, start=1)][: spec.staff],
        operatories=[pad_id(f"OP{i}") for i in range(1, spec.operatories + 1)],
        procedures=procedures,
        recall_ids=recall_ids,
        referral_sources=referral_sources,
        referred_to=referred_to,
        employers=employers,
        plans=plans,
        custom_fields=custom_fields,
        document_types=dict(zip(vocab.DOCUMENT_TYPES, doc_ids, strict=True)),
    )


def write_practice(
    sink: TableSink, rng: random.Random, practice: Practice, timeline: Timeline, version: DentrixVersion
) -> None:
    """Rows of the reference tables: options, rsc, fulldef, codes, plans, referral, custom fields."""
    setup_day = timeline.opened
    setup = timeline.stamp(rng, setup_day)

    def recently() -> datetime:
        return timeline.stamp(rng, timeline.day_between(rng, timeline.opened, timeline.as_of))

    data_version = DATA_VERSIONS[version]
    sink.add("options", {"optionsection": "General", "optionkey": "Data_Version", "optionvalue": data_version, "automodifiedtimestamp": setup})
    sink.add(
        "options",
        {
            "optionsection": "SysReqWkstnData",
            "optionkey": "FRONTDESK1",
            "optionvalue": f"<SysReq><InstalledVersion>{data_version}</InstalledVersion><OS>Windows 10 Pro</OS></SysReq>",
            "automodifiedtimestamp": recently(),
        },
    )
    sink.add("options", {"optionsection": "Practice", "optionkey": "OfficeNumber", "optionvalue": str(practice.office), "automodifiedtimestamp": setup})

    city = vocab.CITIES[(practice.office - 1) % len(vocab.CITIES)]
    office_phone = f"({city.area_code})555-{1000 + practice.office:04d}"
    sink.add(
        "rsc",
        {
            "rsctype": int(RscType.PRACTICE), "rscid": "", "practicename": practice.name,
            "id1": f"{practice.office:03d}-{rng.randint(100000, 999999)}",
            "street1": f"{rng.randint(10, 990) * 10} N Main St", "street2": "Suite 100", "city": city.name,
            "state": city.state, "zipcode": city.zipcode, "phone": office_phone, "phoneext": "",
            "tin": f"87-{rng.randint(1000000, 9999999)}", "isnonperson": True, "inactive": False,
            "automodifiedtimestamp": setup,
        },
    )
    specialties = practice.definitions[DefType.PROVIDER_SPECIALTY]
    for provider in practice.providers:
        sink.add(
            "rsc",
            {
                "rsctype": int(RscType.PROVIDER), "rscid": provider.rscid, "lastname": provider.lastname,
                "firstname": provider.firstname, "mi": rng.choice("ABCDEJKLMRS"),
                "title": "DDS" if provider.kind == "DDS" else "RDH", "city": city.name,
                "state": city.state, "zipcode": city.zipcode, "phone": office_phone,
                "phoneext": str(rng.randint(10, 40)), "npi": f"1{rng.randint(100_000_000, 999_999_999)}",
                "tin": f"87-{rng.randint(1000000, 9999999)}",
                "specialty": specialties["General Dentist" if provider.kind == "DDS" else "Hygienist"],
                "feesched": 1, "idnum": f"UT{rng.randint(10000, 99999)}", "isnonperson": False,
                "inactive": provider.inactive, "automodifiedtimestamp": recently(),
            },
        )
    for staff_id in practice.staff:
        sink.add(
            "rsc",
            {
                "rsctype": int(RscType.STAFF), "rscid": staff_id, "lastname": rng.choice(vocab.LAST_NAMES),
                "firstname": rng.choice(vocab.FIRST_NAMES_FEMALE), "title": {"FD": "Front Desk", "OM": "Office Manager", "DA": "Dental Assistant", "BK": "Billing"}[staff_id[:2]],
                "phone": office_phone, "isnonperson": False, "inactive": False, "automodifiedtimestamp": recently(),
            },
        )
    for deftype, entries in practice.definitions.items():
        for descript, defid in entries.items():
            sink.add("fulldef", {"deftype": int(deftype), "defid": defid, "descript": descript, "automodifiedtimestamp": setup})
    for name, docid in practice.document_types.items():
        sink.add("doccat", {"dcdoctypeid": docid, "name": name, "automodifiedtimestamp": setup})
    for cf in practice.custom_fields:
        sink.add(
            "custfield",
            {"custfieldid": cf.custfieldid, "label": cf.label, "fieldtype": cf.fieldtype, "listvalues": "|".join(cf.values), "automodifiedtimestamp": setup},
        )
    for ref in practice.procedures.values():
        sink.add(
            "proccode",
            {
                "proccodeid": ref.proccodeid, "adacode": ref.code.ada, "abbrevdescript": ref.code.abbrev,
                "descript": ref.code.descript, "category": ref.code.category, "treatmentarea": ref.code.area,
                "automodifiedtimestamp": setup,
            },
        )
        sink.add("feeschedule", {"proccodeid": ref.proccodeid, "feeschedcategoryid": 1, "amt": ref.fee, "automodifiedtimestamp": recently()})
    for name, descript, months, provtype in vocab.RECALL_TYPES:
        sink.add(
            "recalltype",
            {
                "recallid": practice.recall_ids[name], "patid": 0, "name": name, "descript": descript,
                "unit": int(IntervalUnit.MONTHS), "qty": months, "provtype": provtype, "automodifiedtimestamp": setup,
            },
        )
    for name, refid in practice.referral_sources.items():
        sink.add(
            "referral",
            {"refid": refid, "reftype": 0, "lastname": name, "nonpersonflag": True, "addrid": 0, "totalrefby": 0, "totalrefto": 0, "automodifiedtimestamp": setup},
        )
    for refid, (last, first, specialty) in zip(practice.referred_to, vocab.REFERRED_TO_DOCTORS, strict=True):
        sink.add(
            "referral",
            {
                "refid": refid, "reftype": 1, "lastname": last, "firstname": first, "title": "DDS",
                "specialtyid": specialties[vocab.SPECIALTIES[specialty - 1]], "addrid": 0,
                "email": f"{first.lower()}.{last.lower()}@example.org", "fax": f"(801)555-{rng.randint(2000, 2999)}",
                "totalrefby": 0, "totalrefto": rng.randint(3, 60), "nonpersonflag": False, "automodifiedtimestamp": recently(),
            },
        )
    for empid in practice.employers:
        emp_city = rng.choice(vocab.CITIES)
        sink.add(
            "employer",
            {
                "empid": empid, "name": vocab.EMPLOYER_NAMES[(empid - 1) % len(vocab.EMPLOYER_NAMES)]
                + ("" if empid <= len(vocab.EMPLOYER_NAMES) else f" #{empid}"),
                "street1": f"{rng.randint(1, 99) * 100} {rng.choice(vocab.STREET_NAMES)} {rng.choice(vocab.STREET_SUFFIXES)}",
                "city": emp_city.name, "state": emp_city.state, "zipcode": emp_city.zipcode,
                "phone": f"({emp_city.area_code})555-{rng.randint(3000, 3999)}", "emptype": 0, "automodifiedtimestamp": recently(),
            },
        )
    for plan in practice.plans:
        sink.add(
            "inscarrier",
            {
                "insid": plan.insid, "empid": plan.empid, "insconame": plan.carrier.name,
                "groupname": f"{plan.carrier.plan_type} Group {plan.empid}", "groupnum": plan.groupnum,
                "unionnum": "", "street1": f"PO Box {rng.randint(1000, 99999)}", "city": "Salt Lake City",
                "state": "UT", "zipcode": "84130", "phone": plan.carrier.phone, "contact": "Provider Services",
                "renewmon": rng.choice((1, 1, 1, 7, 10)), "claimfmt": 1, "instype": 0, "payerid": plan.carrier.payer_id,
                "feesched": 1, "maxcovperson": plan.annual_max, "maxcovfam": 0.0, "stddedperperson": plan.deductible,
                "stddedperfam": plan.deductible * 3, "prevcovpct": plan.coverage["prev"], "basiccovpct": plan.coverage["basic"],
                "majorcovpct": plan.coverage["major"], "donotbillinsflag": False, "automodifiedtimestamp": recently(),
            },
        )
    # Prescription templates take rxid 1..len(DRUGS); patients' prescriptions follow.
    for rxid, drug in enumerate(vocab.DRUGS, start=1):
        sink.add(
            "rxrec",
            {
                "rxid": rxid, "patid": 0, "provid": practice.dentists[0].rscid, "drugname": drug.name,
                "descript": drug.descript, "dispense": drug.dispense, "dispenseaswritten": False,
                "refills": drug.refills, "sigtext": drug.sig, "notetext": "", "rxdate": setup_day,
                "createdate": setup_day + timedelta(days=rng.randint(0, 30)), "istemplate": True,
                "isstandard": True, "rxguid": "", "automodifiedtimestamp": setup,
            },
        )
