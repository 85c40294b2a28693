"""Realistic damage, applied on purpose to a chosen few, and recorded for the seed manifest.

Hard-deleted patients are chosen first (they must not carry any other problem, since
their patient row will not exist); duplicates next; then the rate-based problems.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from dentrix_zoho.source.catalog import FamilyPosition, PatientStatus
from dentrix_zoho.source.synthetic import vocabulary as vocab
from dentrix_zoho.source.synthetic.contact_values import format_phone, junk_email, junk_phone, phone_number, reformat_phone
from dentrix_zoho.source.synthetic.people import Household, PeopleBuilder, Person
from dentrix_zoho.source.synthetic.timeline import Timeline

INVALID_EMAIL_RATE = 0.03
MISSING_LAST_NAME_RATE = 0.006
FUTURE_BIRTHDATE_RATE = 0.005
JUNK_PHONE_RATE = 0.02
BLANK_CHART_RATE = 0.01
DUPLICATE_CHART_RATE = 0.003
DUPLICATE_PATIENT_RATE = 0.01


@dataclass
class DirtLog:
    hard_deleted: list[int] = field(default_factory=list)
    duplicate_pairs: list[tuple[int, int]] = field(default_factory=list)
    future_birthdates: list[int] = field(default_factory=list)
    invalid_emails: list[int] = field(default_factory=list)
    missing_last_names: list[int] = field(default_factory=list)
    blank_chartnums: list[int] = field(default_factory=list)
    duplicate_chartnums: list[list[int]] = field(default_factory=list)


class Dirt:
    def __init__(self, rng: random.Random, builder: PeopleBuilder, timeline: Timeline, minimum: int) -> None:
        self.rng = rng
        self.builder = builder
        self.timeline = timeline
        self.minimum = minimum
        self.log = DirtLog()

    def _count(self, rate: float, pool: int) -> int:
        return min(pool, max(self.minimum, round(rate * pool)))

    def _pick(self, pool: list[Person], count: int) -> list[Person]:
        chosen = self.rng.sample(pool, min(count, len(pool)))
        chosen.sort(key=lambda p: p.patid)
        return chosen

    def _living(self) -> list[Person]:
        return [p for p in self.builder.people if not p.hard_deleted]

    # -- identity problems ------------------------------------------------------
    def unicode_surnames(self) -> None:
        """Make sure a few families carry an apostrophe, a hyphen, an accent and a CJK surname."""
        households = [
            h for h in self.builder.households
            if not any(m.hard_deleted for m in h.members) and h.members[0].lastname.isascii()
        ]
        for household, surname in zip(self.rng.sample(households, min(4, len(households))), ("O'Brien", "Smith-Jones", "Müller", "王"), strict=False):
            for member in household.members:
                member.lastname = surname

    def hard_delete(self, count: int) -> None:
        """Patients removed outright: their appointments and clinical notes stay behind as orphans."""
        pool = [
            p for p in self.builder.people
            if len(p.household.members) == 1 and p.status == PatientStatus.PATIENT and p.household.primary is None
            and p.care_start is not None and p.care_end is not None and (p.care_end - p.care_start).days > 200
        ]
        for person in self._pick(pool, count):
            person.hard_deleted = True
            self.log.hard_deleted.append(person.patid)

    def duplicate_patients(self) -> None:
        """The same person entered twice: a new patid, a new household, small differences."""
        rng, tl = self.rng, self.timeline
        pool = [
            p for p in self._living()
            if p.status == PatientStatus.PATIENT and p.fampos != FamilyPosition.CHILD and p.care_start is not None
            and p.lastname and (p.mobile or p.address.phone)
        ]
        for original in self._pick(pool, self._count(DUPLICATE_PATIENT_RATE, len(pool))):
            address = self.builder.new_address(original.address.city, with_phone=False)
            address.street1 = _restyle_street(original.address.street1)
            if original.address.number is not None and rng.random() < 0.5:
                address.number = original.address.number
                address.phone = reformat_phone(rng, original.address.number, original.address.phone)
            household = Household(address)
            created = tl.day_between(rng, max(original.created, tl.as_of - timedelta(days=500)), tl.as_of - timedelta(days=5))
            visits = rng.random() < 0.6
            copy = Person(
                patid=self.builder.new_patid(), household=household, firstname=_respell_first(rng, original.firstname),
                lastname=_respell_last(rng, original.lastname), mi=original.mi if rng.random() < 0.5 else "",
                gender=original.gender, birthdate=original.birthdate, status=int(PatientStatus.PATIENT),
                fampos=int(FamilyPosition.SINGLE), created=created,
                care_start=created + timedelta(days=rng.randint(1, 4)) if visits else None,
                care_end=min(tl.as_of - timedelta(days=1), created + timedelta(days=rng.randint(4, 200))) if visits else None,
                provid1=original.provid1, provid2=original.provid2,
            )
            if copy.care_start is not None and copy.care_end is not None and copy.care_start > copy.care_end:
                copy.care_start = copy.care_end = None
            copy.patguid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
            copy.chartnum = f"{1000 + copy.patid}"
            copy.email = original.email if rng.random() < 0.6 else ""
            if original.mobile_number is not None:
                copy.mobile_number = original.mobile_number
                copy.mobile = reformat_phone(rng, original.mobile_number, original.mobile)
            elif rng.random() < 0.5:
                copy.mobile_number = phone_number(rng, address.city.area_code)
                copy.mobile = format_phone(rng, copy.mobile_number)
            copy.duplicate_of = original.patid
            household.members.append(copy)
            address.members = 1
            self.builder.households.append(household)
            self.builder.people.append(copy)
            self.log.duplicate_pairs.append((original.patid, copy.patid))

    def _identity_pool(self) -> list[Person]:
        involved = {pid for pair in self.log.duplicate_pairs for pid in pair}
        return [p for p in self._living() if p.patid not in involved]

    def future_birthdates(self) -> None:
        """Birth dates typed with the wrong century or year: after the snapshot date."""
        rng, as_of = self.rng, self.timeline.as_of
        # Not a guarantor of others: a guarantor must stay an adult for the minors' sake.
        pool = [p for p in self._identity_pool() if p.birthdate is not None and (p.household.guarantor is not p or len(p.household.members) == 1)]
        for person in self._pick(pool, self._count(FUTURE_BIRTHDATE_RATE, len(pool))):
            assert person.birthdate is not None
            year = as_of.year + rng.randint(1, 70)
            person.birthdate = _with_year(person.birthdate, year)
            self.log.future_birthdates.append(person.patid)

    def missing_last_names(self) -> None:
        pool = [p for p in self._identity_pool() if p.lastname]
        for person in self._pick(pool, self._count(MISSING_LAST_NAME_RATE, len(pool))):
            person.lastname = ""
            self.log.missing_last_names.append(person.patid)

    def chart_numbers(self) -> None:
        """Blank chart numbers, and a few chart numbers shared by two patients."""
        rng = self.rng
        pool = self._living()
        for person in self._pick(pool, self._count(BLANK_CHART_RATE, len(pool))):
            person.chartnum = ""
            self.log.blank_chartnums.append(person.patid)
        blank = set(self.log.blank_chartnums)
        rest = [p for p in pool if p.patid not in blank]
        pairs = self._pick(rest, 2 * self._count(DUPLICATE_CHART_RATE, len(rest)))
        rng.shuffle(pairs)
        for first, second in zip(pairs[::2], pairs[1::2], strict=False):
            second.chartnum = first.chartnum
            self.log.duplicate_chartnums.append(sorted((first.patid, second.patid)))
        self.log.duplicate_chartnums.sort()

    # -- contact problems ------------------------------------------------------
    def invalid_emails(self) -> None:
        pool = [p for p in self._living() if p.email]
        for person in self._pick(pool, self._count(INVALID_EMAIL_RATE, len(pool))):
            person.email = junk_email(self.rng, person.firstname, person.lastname)
            self.log.invalid_emails.append(person.patid)

    def junk_phones(self) -> None:
        """Junk in a patient's mobile phone, and in a few families' home phone (address.phone)."""
        rng = self.rng
        pool = [p for p in self._living() if p.mobile]
        for person in self._pick(pool, self._count(JUNK_PHONE_RATE, len(pool))):
            person.mobile = junk_phone(rng, person.address.city.area_code)
            person.junk_phone = True
        households = [
            h for h in self.builder.households
            if h.address.phone and not any(m.hard_deleted for m in h.members)
        ]
        count = min(len(households), max(1, round(JUNK_PHONE_RATE / 2 * len(households))))
        for household in rng.sample(households, count):
            household.address.phone = junk_phone(rng, household.address.city.area_code)
            household.address.junk_phone = True


def _with_year(day: date, year: int) -> date:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February
        return day.replace(year=year, day=28)


def _restyle_street(street: str) -> str:
    for short, long in (("St", "Street"), ("Ave", "Avenue"), ("Dr", "Drive"), ("Ln", "Lane"), ("Rd", "Road"), (" N ", " North "), (" S ", " South ")):
        if street.endswith(f" {short}"):
            return street[: -len(short)] + long
        if short.startswith(" ") and short in street:
            return street.replace(short, long, 1)
    return street.upper()


def _respell_first(rng: random.Random, first: str) -> str:
    if first in vocab.NICKNAMES and rng.random() < 0.6:
        return vocab.NICKNAMES[first]
    return _typo(rng, first) if rng.random() < 0.5 else first.upper()


def _respell_last(rng: random.Random, last: str) -> str:
    roll = rng.random()
    if roll < 0.4:
        return last
    if roll < 0.8:
        return _typo(rng, last)
    return last.upper()


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 3:
        return word + word[-1:]
    i = rng.randint(1, len(word) - 2)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swap two letters
    return word[:i] + word[i + 1 :]  # drop a letter
