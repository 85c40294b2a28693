"""Families: patients, Non-Patient guarantors, shared addresses, insurance subscriptions.

Built clean first; ``dirt.py`` then damages a chosen few on purpose. Visit history is
planned here (first and last visit of each person) and played out in ``visits.py``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from dentrix_zoho.source.catalog import FamilyPosition, Gender, PatientStatus
from dentrix_zoho.source.synthetic import vocabulary as vocab
from dentrix_zoho.source.synthetic.contact_values import email_address, format_phone, phone_number
from dentrix_zoho.source.synthetic.practice import InsurancePlan, Practice
from dentrix_zoho.source.synthetic.timeline import Timeline, years_between


@dataclass(slots=True)
class Address:
    addrid: int
    street1: str
    street2: str
    city: vocab.City
    zipcode: str
    phone: str
    number: tuple[str, str, str] | None
    members: int = 0
    junk_phone: bool = False


@dataclass(slots=True)
class Subscription:
    insuredid: int
    plan: InsurancePlan
    subscriber: Person
    idnum: str


@dataclass(slots=True)
class Person:
    patid: int
    household: Household
    firstname: str
    lastname: str
    mi: str
    gender: int
    birthdate: date | None
    status: int
    fampos: int
    created: date
    # Planned care: None for Non-Patients.
    care_start: date | None
    care_end: date | None
    provid1: str
    provid2: str
    prefname: str = ""
    chartnum: str = ""
    ssn: str = ""
    email: str = ""
    mobile: str = ""
    mobile_number: tuple[str, str, str] | None = None
    workphone: str = ""
    workext: str = ""
    otherphone: str = ""
    empid: int = 0
    priminsuredid: int = 0
    secinsuredid: int = 0
    priminsrel: int = 0
    secinsrel: int = 0
    refid: int = 0
    refbyid: int = 0
    privacyflags: int = 0
    language: int = 0
    perio: bool = False
    patguid: str = ""
    is_subscriber: bool = False
    # Filled while visits are generated.
    first_visit: date | None = None
    last_visit: date | None = None
    missed: int = 0
    last_missed: date | None = None
    # Set by dirt.py.
    hard_deleted: bool = False
    duplicate_of: int | None = None
    junk_phone: bool = False

    @property
    def guarid(self) -> int:
        return self.household.guarantor.patid

    @property
    def address(self) -> Address:
        return self.household.address

    def age_on(self, day: date) -> int | None:
        if self.birthdate is None or self.birthdate > day:
            return None
        return years_between(self.birthdate, day)


@dataclass(slots=True)
class Household:
    address: Address
    members: list[Person] = field(default_factory=list)
    primary: Subscription | None = None
    secondary: Subscription | None = None

    @property
    def guarantor(self) -> Person:
        return self.members[0]


class PeopleBuilder:
    """Creates households until the practice has about the number of patients asked for."""

    def __init__(self, rng: random.Random, practice: Practice, timeline: Timeline) -> None:
        self.rng = rng
        self.practice = practice
        self.timeline = timeline
        self.households: list[Household] = []
        self.people: list[Person] = []
        self.addresses: list[Address] = []
        self.subscriptions: list[Subscription] = []
        self._next_patid = 1
        self._next_addrid = 1
        self._next_insuredid = 1

    # -- ids -------------------------------------------------------------
    def new_patid(self) -> int:
        patid, self._next_patid = self._next_patid, self._next_patid + 1
        return patid

    def new_address(self, city: vocab.City | None = None, *, with_phone: bool = True) -> Address:
        rng = self.rng
        city = city or rng.choices(vocab.CITIES, weights=[8] * 15 + [1] * 3, k=1)[0]
        if rng.random() < 0.45:
            street1 = f"{rng.randint(1, 48) * 50} {rng.choice(vocab.GRID_DIRECTIONS)} {rng.randint(1, 20) * 100} {rng.choice(vocab.GRID_DIRECTIONS)}"
        else:
            street1 = f"{rng.randint(10, 9999)} {rng.choice(vocab.STREET_NAMES)} {rng.choice(vocab.STREET_SUFFIXES)}"
        street2 = f"Apt {rng.randint(1, 40)}" if rng.random() < 0.08 else ""
        number = phone_number(rng, city.area_code) if with_phone and rng.random() < 0.85 else None
        zipcode = city.zipcode if rng.random() < 0.9 else f"{city.zipcode}-{rng.randint(1000, 9999)}"
        address = Address(
            self._next_addrid, street1, street2, city, zipcode,
            format_phone(rng, number) if number else "", number,
        )
        self._next_addrid += 1
        self.addresses.append(address)
        return address

    # -- households ------------------------------------------------------
    def build(self, target_people: int) -> None:
        while len(self.people) < target_people:
            self._household()

    def _household(self) -> None:
        rng, tl = self.rng, self.timeline
        kind = rng.choices(("single", "couple", "family", "single_parent"), weights=(40, 22, 30, 8), k=1)[0]
        standing = rng.choices(("active", "inactive", "archived"), weights=(74, 18, 8), k=1)[0]
        household = Household(self.new_address())
        lastname = rng.choice(vocab.UNICODE_LAST_NAMES) if rng.random() < 0.05 else rng.choice(vocab.LAST_NAMES)
        joined = tl.day_between(rng, tl.opened, tl.as_of - timedelta(days=20))
        care_end = self._care_end(standing, joined)
        dentist = self._dentist(standing)
        hygienist = rng.choice(self.practice.hygienists).rscid

        head_age = rng.randint(19, 88) if kind == "single" else rng.randint(26, 62)
        adults = [self._adult(household, lastname, head_age, joined, care_end, standing, dentist, hygienist)]
        if kind in ("couple", "family"):
            spouse_age = max(19, head_age + rng.randint(-6, 6))
            adults.append(self._adult(household, lastname, spouse_age, joined, care_end, standing, dentist, hygienist, spouse_of=adults[0]))
        # A guarantor who is not a patient here (pays for the family, treated elsewhere).
        if len(adults) == 2 and rng.random() < 0.12:
            self._make_non_patient(adults[0])
        elif kind == "single_parent" and rng.random() < 0.2:
            self._make_non_patient(adults[0])
        if kind in ("family", "single_parent"):
            youngest_parent = min(self._age(a) for a in adults)
            for _ in range(rng.choices((1, 2, 3, 4), weights=(35, 40, 18, 7), k=1)[0]):
                child_age = rng.randint(0, max(0, min(24, youngest_parent - 19)))
                self._child(household, lastname, child_age, joined, care_end, standing, dentist, hygienist)
        household.address.members = len(household.members)
        self._insure(household, standing)
        self.households.append(household)

    def _care_end(self, standing: str, joined: date) -> date:
        rng, tl = self.rng, self.timeline
        if standing == "active":
            back = rng.randint(0, 330) if rng.random() < 0.8 else rng.randint(330, 1000)
        elif standing == "inactive":
            back = rng.randint(2 * 365, 9 * 365)
        else:
            back = rng.randint(4 * 365, 11 * 365)
        return max(joined, tl.as_of - timedelta(days=back))

    def _dentist(self, standing: str) -> str:
        if standing != "active" and self.rng.random() < 0.3:
            return self.practice.retired_dentist.rscid
        return self.rng.choice(self.practice.dentists).rscid

    def _age(self, person: Person) -> int:
        assert person.birthdate is not None
        return years_between(person.birthdate, self.timeline.as_of)

    def _birthdate(self, age: int) -> date:
        return self.timeline.as_of - timedelta(days=age * 365 + self.rng.randint(1, 364))

    def _person(
        self, household: Household, first: str, last: str, gender: Gender, age: int, fampos: FamilyPosition,
        joined: date, care_end: date, standing: str, dentist: str, hygienist: str,
    ) -> Person:
        rng = self.rng
        birthdate = self._birthdate(age)
        # Children start care at about 3; nobody is seen before the family joined.
        first_visit = max(joined, birthdate + timedelta(days=3 * 365 + rng.randint(0, 400)))
        # Too young to have been seen yet: a patient on file without visits.
        care_start, care_last = (first_visit, care_end) if first_visit <= care_end else (None, None)
        status = {"active": PatientStatus.PATIENT, "inactive": PatientStatus.INACTIVE, "archived": PatientStatus.ARCHIVED}[standing]
        person = Person(
            patid=self.new_patid(), household=household, firstname=first, lastname=last,
            mi=rng.choice("ABCDEFGHJKLMNPRSTW") if rng.random() < 0.6 else "", gender=int(gender),
            birthdate=birthdate, status=int(status), fampos=int(fampos),
            created=(care_start or joined) - timedelta(days=rng.randint(0, 21)),
            care_start=care_start, care_end=care_last, provid1=dentist,
            provid2=hygienist if rng.random() < 0.8 else "",
        )
        person.patguid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        person.chartnum = f"{1000 + person.patid}"
        person.perio = age > 35 and rng.random() < 0.12
        if first in vocab.NICKNAMES and rng.random() < 0.25:
            person.prefname = vocab.NICKNAMES[first]
        household.members.append(person)
        self.people.append(person)
        return person

    def _first_name(self, gender: Gender) -> str:
        rng = self.rng
        if rng.random() < 0.04:
            return rng.choice(vocab.UNICODE_FIRST_NAMES)
        return rng.choice(vocab.FIRST_NAMES_MALE if gender == Gender.MALE else vocab.FIRST_NAMES_FEMALE)

    def _adult(
        self, household: Household, lastname: str, age: int, joined: date, care_end: date, standing: str,
        dentist: str, hygienist: str, spouse_of: Person | None = None,
    ) -> Person:
        rng = self.rng
        if spouse_of is None:
            gender = rng.choice((Gender.MALE, Gender.FEMALE))
        else:
            gender = Gender.FEMALE if spouse_of.gender == Gender.MALE else Gender.MALE
        fampos = FamilyPosition.SINGLE if spouse_of is None else FamilyPosition.MARRIED
        if spouse_of is not None:
            spouse_of.fampos = int(FamilyPosition.MARRIED)
        first = self._first_name(gender)
        person = self._person(household, first, lastname, gender, age, fampos, joined, care_end, standing, dentist, hygienist)
        city = household.address.city
        if rng.random() < 0.78:
            person.mobile_number = phone_number(rng, city.area_code)
            person.mobile = format_phone(rng, person.mobile_number)
        if rng.random() < 0.25:
            person.workphone = format_phone(rng, phone_number(rng, city.area_code), style="({a}){p}-{s}")
            person.workext = str(rng.randint(100, 4999)) if rng.random() < 0.4 else ""
        if rng.random() < 0.05:
            person.otherphone = format_phone(rng, phone_number(rng, city.area_code))
        if rng.random() < 0.68:
            person.email = email_address(rng, first, lastname)
        if rng.random() < 0.4:
            person.ssn = f"9{rng.randint(0, 99):02d}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
        if rng.random() < 0.08:
            person.privacyflags = rng.choice((1, 2, 3))
        if rng.random() < 0.05:
            person.language = 1
        if not household.members[:-1]:
            refs = self.practice.referral_sources
            if rng.random() < 0.65:
                person.refid = rng.choice(list(refs.values()))
        return person

    def _child(
        self, household: Household, lastname: str, age: int, joined: date, care_end: date, standing: str,
        dentist: str, hygienist: str,
    ) -> Person:
        rng = self.rng
        gender = rng.choice((Gender.MALE, Gender.FEMALE))
        child = self._person(household, self._first_name(gender), lastname, gender, age, FamilyPosition.CHILD, joined, care_end, standing, dentist, hygienist)
        parent = household.members[0]
        if age >= 13 and rng.random() < 0.3:
            child.mobile_number = phone_number(rng, household.address.city.area_code)
            child.mobile = format_phone(rng, child.mobile_number)
        if parent.email and rng.random() < 0.3:
            child.email = parent.email  # families share the parent's inbox
        if age >= 18 and rng.random() < 0.4:
            child.email = email_address(rng, child.firstname, lastname)
        if age >= 19 and standing == "active" and rng.random() < 0.4:
            child.status = int(PatientStatus.INACTIVE)  # grown up and moved away
        return child

    def _make_non_patient(self, person: Person) -> None:
        person.status = int(PatientStatus.NON_PATIENT)
        person.care_start = person.care_end = None
        person.provid2 = ""

    # -- insurance -------------------------------------------------------
    def _insure(self, household: Household, standing: str) -> None:
        rng = self.rng
        if standing == "archived" or rng.random() > 0.64:
            return
        adults = [m for m in household.members if m.fampos != FamilyPosition.CHILD]
        household.primary = self._subscribe(adults[0])
        if len(adults) > 1 and rng.random() < 0.14:
            household.secondary = self._subscribe(adults[1])
        for member in household.members:
            member.priminsuredid = household.primary.insuredid
            member.priminsrel = self._relation(member, household.primary.subscriber)
            if household.secondary is not None:
                member.secinsuredid = household.secondary.insuredid
                member.secinsrel = self._relation(member, household.secondary.subscriber)

    def _subscribe(self, subscriber: Person) -> Subscription:
        rng = self.rng
        plan = rng.choice(self.practice.plans)
        subscriber.is_subscriber = True
        subscriber.empid = plan.empid
        idnum = rng.choice((f"W{rng.randint(10**8, 10**9 - 1)}", f"{rng.randint(10**8, 10**9 - 1)}", f"U{rng.randint(10**7, 10**8 - 1)}01"))
        subscription = Subscription(self._next_insuredid, plan, subscriber, idnum)
        self._next_insuredid += 1
        self.subscriptions.append(subscription)
        return subscription

    @staticmethod
    def _relation(member: Person, subscriber: Person) -> int:
        if member is subscriber:
            return 0  # self
        return 2 if member.fampos == FamilyPosition.CHILD else 1  # child / spouse

    # -- later additions ---------------------------------------------------
    def reference_patients(self) -> None:
        """Some patients were referred by another (earlier) patient: refbyid."""
        rng = self.rng
        source = self.practice.referral_sources["Patient referral"]
        eligible = [p for p in self.people if not p.hard_deleted and p.duplicate_of is None]
        for person in eligible:
            if person.refid == source and person.patid > 50:
                referrer = eligible[rng.randrange(0, min(len(eligible), person.patid - 1))]
                if referrer.patid < person.patid:
                    person.refbyid = referrer.patid
