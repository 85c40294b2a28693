"""Generate a synthetic Dentrix G6/G7 practice: a SQLite ``DentrixSQL`` with its image folder.

Tables come from the catalog (``dentrix_zoho.source.catalog``), the ``v_*`` views from
``views.py``; the extractor attaches the file as schema ``admin``. Everything derives from
``random.Random`` seeded with (seed, office, as_of), never the clock, so a run is
reproducible row for row (``dump.canonical_dump``).

Seeded on purpose, as a real Dentrix database has them:

* CHAR semantics: text padded with spaces to the column width on most rows (ids such as
  'DDS1 ' and 'OP1  ' on every row); over-long text cut at the width.
* Appointment start split into apptdate + timehr + timemin, with apptlen in minutes.
* Families sharing one address (addrid, ptrcount) and one guarantor (guarid, famid);
  minors whose responsible party is an adult parent; Non-Patient guarantors (status 2).
* Patient statuses 1-4; archived patients (4) have no insurance, recall or future appointment.
* Naming traps in the views: home phone = address.phone, mobile = patient.pager ...
* New-patient appointments with patid = 0, the name only in patname, an address at
  newpataddrid and a note in fullnotes (116); some match a patient entered later.
* Deleted appointments only in appthist (deletedflag = 1); broken appointments (brokendate).
* One ledger (fullproclog) for procedures (chartstatus 105), payments and adjustments
  (chartstatus 90, negative amounts), patient payments on the guarantor; balances only
  per guarantor (aging), equal to the guarantor's ledger sum; open and stale claims.
* Practice-defined ids (fulldef, recall types, document types, custom fields, procedure
  code ids) that differ between offices while the descriptions stay; patient ids overlap.
* Privacy-flag bitmasks; automodifiedtimestamp on every base-table row.
* Practice-defined custom fields (custfield/custvalue), including list values off the list.
* Images and documents on disk, referenced by relative path; a few over 20 MB (sparse),
  a few missing.
* Dirty data: invalid e-mails, phones in many formats and some junk, missing last names,
  unicode names, duplicate patients, birth dates in the future, blank and shared chart
  numbers, clinical notes over 32,000 characters, orphan appointments and notes of a
  hard-deleted patient, providers without e-mail (one left out of the provider map).

Every seeded problem is listed with its ids in the seed manifest (``manifest.py``).
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

from dentrix_zoho.source.catalog import (
    NoteType,
    PatientStatus,
    base_tables,
    views,
)
from dentrix_zoho.source.synthetic import vocabulary as vocab
from dentrix_zoho.source.synthetic.contact_values import format_phone, phone_number
from dentrix_zoho.source.synthetic.dirt import Dirt
from dentrix_zoho.source.synthetic.ids import Ids
from dentrix_zoho.source.synthetic.images import prepare_folder, write_images
from dentrix_zoho.source.synthetic.ledger import LedgerBook
from dentrix_zoho.source.synthetic.manifest import SeedManifest
from dentrix_zoho.source.synthetic.paths import PracticeFiles
from dentrix_zoho.source.synthetic.people import PeopleBuilder, Person
from dentrix_zoho.source.synthetic.practice import PROVIDER_EMAIL_DOMAIN, Practice, build_practice, write_practice
from dentrix_zoho.source.synthetic.scales import SCALES, ScaleName
from dentrix_zoho.source.synthetic.schema import (
    DENTRIX_VERSIONS,
    DentrixVersion,
    TableSink,
    create_key_index_sql,
    create_table_sql,
)
from dentrix_zoho.source.synthetic.timeline import Timeline, add_months
from dentrix_zoho.source.synthetic.views import create_view_sql
from dentrix_zoho.source.synthetic.visits import CareFacts, CareHistory

log = logging.getLogger(__name__)

OFF_LIST_RATE = 0.04


@dataclass(frozen=True)
class GenerationResult:
    db_path: Path
    images_dir: Path
    manifest_path: Path
    provider_map_path: Path
    manifest: SeedManifest

    @property
    def counts(self) -> dict[str, int]:
        return self.manifest.counts


def generate_practice(
    out: Path,
    scale: ScaleName,
    seed: int,
    as_of: date,
    office: int = 1,
    *,
    dentrix_version: DentrixVersion = "G7.4",
) -> GenerationResult:
    """Write the practice database at ``out`` and its sidecar files (see ``paths.PracticeFiles``).

    ``dentrix_version`` "G6.2" leaves out the catalog's optional (newer-version) columns.
    An existing database at ``out`` is replaced.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if office < 1:
        raise ValueError(f"office must be 1 or more, got {office}")
    if dentrix_version not in DENTRIX_VERSIONS:
        raise ValueError(f"unknown Dentrix version {dentrix_version!r}; choose one of {', '.join(DENTRIX_VERSIONS)}")
    files = PracticeFiles(Path(out))
    files.db.parent.mkdir(parents=True, exist_ok=True)
    prepare_folder(files.images_dir)
    files.partial_db.unlink(missing_ok=True)

    rng = random.Random(f"dentrix-zoho:{seed}:{office}:{as_of.isoformat()}")
    conn = sqlite3.connect(files.partial_db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        tables = list(base_tables())
        for obj in tables:
            conn.execute(create_table_sql(obj, dentrix_version))
        sink = TableSink(conn, tables, dentrix_version)
        run = _PracticeRun(rng, scale, seed, office, as_of, dentrix_version, sink)
        seeded = run.generate()
        sink.flush()
        conn.execute(
            "UPDATE referral SET totalrefby = (SELECT COUNT(*) FROM refacts r WHERE r.refid = referral.refid"
            " AND r.refbytype = 0 AND r.refactstype = 0) WHERE nonpersonflag = 1"
        )
        for obj in tables:
            conn.execute(create_key_index_sql(obj))
        for obj in views():
            conn.execute(create_view_sql(obj, dentrix_version))
        conn.execute("COMMIT")
    finally:
        conn.close()
    os.replace(files.partial_db, files.db)

    missing, over_limit = write_images(
        files.images_dir, run.care.images, random.Random(f"images:{seed}:{office}:{as_of.isoformat()}"),
        over_limit=run.spec.over_limit_files, missing=run.spec.missing_files,
    )
    _write_provider_map(files.provider_map, run.practice)
    manifest = SeedManifest(
        **seeded,
        counts=sink.counts(),
        image_count=len(run.care.images),
        missing_image_paths=missing,
        over_limit_image_paths=over_limit,
    )
    manifest.write(files.manifest)
    log.info("synthetic practice written: scale %s, office %d, %d base tables", scale, office, len(tables))
    return GenerationResult(files.db, files.images_dir, files.manifest, files.provider_map, manifest)


def provider_emails(practice: Practice) -> dict[str, str]:
    """The sample provider map: every provider but one gets an e-mail."""
    left_out = practice.unmapped_provider().trimmed_id
    return {
        p.trimmed_id: f"{p.trimmed_id.lower()}@{PROVIDER_EMAIL_DOMAIN}"
        for p in practice.providers
        if p.trimmed_id != left_out
    }


def _write_provider_map(path: Path, practice: Practice) -> None:
    left_out = practice.unmapped_provider().trimmed_id
    header = (
        f"# Provider map for the synthetic practice {practice.name!r} (office {practice.office}).\n"
        "# Dentrix keeps no provider e-mail; this file maps each Dentrix provider id (trimmed)\n"
        "# to the e-mail of the Zoho user who will own that provider's records.\n"
        f"# {left_out} is left out on purpose: an unmapped provider the audit must flag.\n"
    )
    body = yaml.safe_dump({"office": practice.office, "providers": provider_emails(practice)}, sort_keys=True)
    path.write_text(header + body, encoding="utf-8")


class _PracticeRun:
    """One generation: builds the people, plays their care, writes the remaining tables."""

    def __init__(
        self, rng: random.Random, scale: ScaleName, seed: int, office: int, as_of: date,
        version: DentrixVersion, sink: TableSink,
    ) -> None:
        self.rng = rng
        self.scale = scale
        self.spec = SCALES[scale]
        self.seed = seed
        self.office = office
        self.version = version
        self.sink = sink
        self.timeline = Timeline(as_of)
        self.practice = build_practice(rng, self.spec, office, self.timeline)
        self.ids = Ids(rxid=len(vocab.DRUGS) + 1)
        self.ledger = LedgerBook(
            rng, self.practice, self.timeline, sink, self.ids, itemized_insurance=self.spec.itemized_insurance
        )
        self.care = CareHistory(rng, self.practice, self.timeline, sink, self.ids, self.ledger)
        self.builder = PeopleBuilder(rng, self.practice, self.timeline)

    def generate(self) -> dict[str, object]:
        rng, tl = self.rng, self.timeline
        write_practice(self.sink, rng, self.practice, tl, self.version)
        self.builder.build(round(self.spec.patients * 0.99))
        dirt = Dirt(rng, self.builder, tl, self.spec.minimum_per_quirk)
        self.dirt_log = dirt.log
        dirt.hard_delete(self.spec.hard_deleted_patients)
        dirt.unicode_surnames()
        dirt.duplicate_patients()
        dirt.future_birthdates()
        dirt.missing_last_names()
        dirt.chart_numbers()
        dirt.invalid_emails()
        dirt.junk_phones()
        self.builder.reference_patients()

        people = self.builder.people
        by_patid = {p.patid: p for p in people}
        living = [p for p in people if not p.hard_deleted]
        overlong_pool = [p for p in living if p.care_start is not None and p.status == PatientStatus.PATIENT]
        overlong = {p.patid for p in rng.sample(overlong_pool, min(self.spec.overlong_notes, len(overlong_pool)))}
        facts: dict[int, CareFacts] = {}
        for person in people:
            facts[person.patid] = self.care.play(person, overlong_note=person.patid in overlong)
            if not person.hard_deleted:
                self.care.attachments(person, facts[person.patid])
        self._initial_balances()
        matches, new_appts = self._new_patient_appointments(living)
        for person in living:
            self._recalls(person, facts[person.patid])
        for _claimid, patid, created in self.ledger.stale_claims:
            person = by_patid[patid]
            self.care.journal(person, tl.day_between(rng, created + timedelta(days=45), tl.as_of), "insurance", person.provid1)
        balances = self.ledger.write_aging()
        for guarid, balance in balances.items():
            if balance > 200 and rng.random() < 0.5:
                guarantor = by_patid[guarid]
                self.care.journal(guarantor, tl.as_of - timedelta(days=rng.randint(0, 60)), "billing", guarantor.provid1)
        off_list = self._write_patients(living)
        self._write_addresses_and_insurance()

        def living_ids(predicate: Callable[[Person], bool]) -> list[int]:
            return [p.patid for p in living if predicate(p)]

        status_counts: dict[int, int] = {}
        for person in living:
            status_counts[person.status] = status_counts.get(person.status, 0) + 1
        shared = sum(1 for a in self.builder.addresses if a.members >= 2)
        return {
            "seed": self.seed, "scale": self.scale, "office": self.office, "as_of": tl.as_of,
            "dentrix_version": self.version, "practice_name": self.practice.name,
            "patient_status_counts": dict(sorted(status_counts.items())),
            "duplicate_patient_pairs": dirt.log.duplicate_pairs,
            "hard_deleted_patids": dirt.log.hard_deleted,
            "future_birthdate_patids": dirt.log.future_birthdates,
            "missing_last_name_patids": dirt.log.missing_last_names,
            "unicode_name_patids": living_ids(lambda p: _unusual_name(p.firstname) or _unusual_name(p.lastname)),
            "blank_chartnum_patids": dirt.log.blank_chartnums,
            "duplicate_chartnum_groups": dirt.log.duplicate_chartnums,
            "minors_with_responsible_party": [
                (p.patid, p.guarid) for p in living
                if p.guarid != p.patid and (age := p.age_on(tl.as_of)) is not None and age < 18
            ],
            "non_patient_guarantor_patids": living_ids(
                lambda p: p.status == PatientStatus.NON_PATIENT and p.household.guarantor is p and len(p.household.members) > 1
            ),
            "families_sharing_address": shared,
            "privacy_flag_patids": {p.patid: p.privacyflags for p in living if p.privacyflags},
            "invalid_email_patids": dirt.log.invalid_emails,
            "junk_phone_patids": living_ids(lambda p: p.junk_phone or p.address.junk_phone),
            "orphan_appt_ids": self.care.orphan_appt_ids,
            "orphan_note_ids": self.care.orphan_note_ids,
            "deleted_appt_ids": self.care.deleted_appt_ids,
            "new_patient_appt_ids": new_appts,
            "new_patient_appt_matches": matches,
            "overlong_note_ids": self.care.overlong_note_ids,
            "open_claim_ids": self.ledger.open_claim_ids,
            "stale_open_claim_ids": sorted(c for c, _, _ in self.ledger.stale_claims),
            "guarantor_balance_total": round(sum(balances.values()), 2),
            "custom_values_outside_list": off_list,
            "provider_emails": provider_emails(self.practice),
            "unmapped_provider_ids": [self.practice.unmapped_provider().trimmed_id],
            "definition_ids": {deftype.name: dict(entries) for deftype, entries in self.practice.definitions.items()},
        }

    # -- ledger extras -------------------------------------------------------------
    def _initial_balances(self) -> None:
        """Families converted from the previous system carry a starting balance on the guarantor."""
        rng, tl = self.rng, self.timeline
        converted = tl.opened + timedelta(days=365)
        pool = [h.guarantor for h in self.builder.households if not h.guarantor.hard_deleted and h.guarantor.created <= converted]
        count = min(len(pool), max(self.spec.minimum_per_quirk, round(0.3 * len(pool))))
        for guarantor in sorted(rng.sample(pool, count), key=lambda p: p.patid):
            self.ledger.post_initial_balance(guarantor, tl.opened + timedelta(days=rng.randint(0, 10)), self.practice.dentists[0].rscid)

    # -- new patients who have no patient row ------------------------------------------
    def _new_patient_appointments(self, living: list[Person]) -> tuple[list[tuple[int, int]], list[int]]:
        rng, tl = self.rng, self.timeline
        count = self.spec.new_patient_appointments
        involved = {pid for pair in self.dirt_log.duplicate_pairs for pid in pair}
        existing = {(p.lastname.casefold(), p.firstname.casefold()) for p in self.builder.people}
        pool = [p for p in living if p.status == PatientStatus.PATIENT and p.lastname and p.patid not in involved]
        matched_people = rng.sample(pool, min(len(pool), max(1, count // 3)))
        matches: list[tuple[int, int]] = []
        appt_ids: list[int] = []
        for index in range(count):
            apptid = self.ids.next("apptid")
            dentist = rng.choice(self.practice.dentists).rscid
            if index < len(matched_people):
                person = matched_people[index]
                address = self.builder.new_address(person.address.city, with_phone=False)
                address.street1 = person.address.street1
                name = f"{person.lastname}, {person.firstname}"
                phone = person.mobile or person.address.phone
                day = tl.as_of + timedelta(days=rng.randint(1, 45))
                matches.append((apptid, person.patid))
            else:
                address = self.builder.new_address()
                while True:
                    gender_pool = vocab.FIRST_NAMES_FEMALE if rng.random() < 0.5 else vocab.FIRST_NAMES_MALE
                    first, last = rng.choice(gender_pool), rng.choice(vocab.LAST_NAMES)
                    if (last.casefold(), first.casefold()) not in existing:
                        break
                existing.add((last.casefold(), first.casefold()))
                name = f"{last}, {first}"
                phone = format_phone(rng, phone_number(rng, address.city.area_code))
                future = rng.random() < 0.8
                day = tl.as_of + timedelta(days=rng.randint(0, 60)) if future else tl.as_of - timedelta(days=rng.randint(1, 90))
            source = rng.choice(list(self.practice.referral_sources))
            note = f"New pt call-in. Heard about us from: {source}. Wants cleaning and exam; has insurance card."
            self.care.new_patient_appointment(apptid, day, name, phone, address.addrid, dentist, note)
            appt_ids.append(apptid)
        return sorted(matches), appt_ids

    # -- recalls -------------------------------------------------------------------
    def _recalls(self, person: Person, facts: CareFacts) -> None:
        rng, tl = self.rng, self.timeline
        if person.status not in (PatientStatus.PATIENT, PatientStatus.INACTIVE) or facts.last_recare is None:
            return
        due_types = [("PERIO" if person.perio else "PROPHY", facts.last_recare, facts.future_apptid)]
        if facts.last_bwx is not None:
            due_types.append(("BWX", facts.last_bwx, 0))
        if facts.last_fmx is not None:
            due_types.append(("FMX", facts.last_fmx, 0))
        months = {name: m for name, _, m, _ in vocab.RECALL_TYPES}
        for name, prior, apptid in due_types:
            due = add_months(prior, months[name])
            self.sink.add(
                "recallpending",
                {
                    "recallid": self.practice.recall_ids[name], "patid": person.patid, "guarid": person.guarid,
                    "apptid": apptid, "setdate": facts.last_recare, "duedate": due, "priordate": prior,
                    "provtype": 0, "provid": facts.hygienist, "status": 0,
                    "automodifiedtimestamp": tl.stamp(rng, facts.last_recare),
                },
            )
            if name in ("PROPHY", "PERIO") and not apptid and due < tl.as_of - timedelta(days=30) and person.status == PatientStatus.PATIENT and rng.random() < 0.5:
                self.care.journal(person, tl.day_between(rng, due + timedelta(days=10), tl.as_of), "recall", facts.hygienist)

    # -- patients and what hangs off them ---------------------------------------------------
    def _write_patients(self, living: list[Person]) -> list[tuple[int, int]]:
        rng, tl, sink = self.rng, self.timeline, self.sink
        year = tl.as_of.year
        list_rows: list[dict[str, object]] = []
        for person in living:
            benefits, deductible = self.ledger.benefits_used(person.patid, year)
            changed = max(d for d in (person.created, person.last_visit, person.last_missed) if d is not None)
            if rng.random() < 0.03:
                changed = tl.as_of - timedelta(days=rng.randint(0, 14))
            adult = (person.age_on(tl.as_of) or 30) >= 18
            title = ""
            if adult and rng.random() < 0.5:
                title = rng.choice(("Mr.", "Mrs.", "Ms.", "Dr.")) if person.gender == 2 else rng.choice(("Mr.", "Dr."))
            sink.add(
                "patient",
                {
                    "patid": person.patid, "famid": person.guarid, "guarid": person.guarid,
                    "addrid": person.address.addrid, "lastname": person.lastname, "firstname": person.firstname,
                    "mi": person.mi, "prefname": person.prefname, "salutation": "", "title": title,
                    "chartnum": person.chartnum, "ssn": person.ssn, "gender": person.gender, "status": person.status,
                    "fampos": person.fampos, "birthdate": person.birthdate, "provid1": person.provid1,
                    "provid2": person.provid2, "isguar": person.household.guarantor is person,
                    "isheadofhouse": person.household.guarantor is person, "isinssubcriber": person.is_subscriber,
                    "empid": person.empid, "workphone": person.workphone, "workext": person.workext,
                    "pager": person.mobile, "otherphone": person.otherphone, "fax": "", "emailaddr": person.email,
                    "driverslicense": f"UT{rng.randint(100000000, 999999999)}" if adult and rng.random() < 0.1 else "",
                    "language": person.language, "privacyflags": person.privacyflags,
                    "firstvisitdate": person.first_visit, "lastvisitdate": person.last_visit,
                    "missedappt": person.missed, "lastmissedappt": person.last_missed, "refid": person.refid,
                    "refbyid": person.refbyid, "priminsuredid": person.priminsuredid,
                    "secinsuredid": person.secinsuredid, "priminsrel": person.priminsrel,
                    "secinsrel": person.secinsrel, "primbenefits": benefits if person.priminsuredid else 0.0,
                    "secbenefits": 0.0, "primdeductible": deductible if person.priminsuredid else 0.0,
                    "secdeductible": 0.0, "feesched": 1, "patguid": person.patguid,
                    "automodifiedtimestamp": tl.stamp(rng, changed),
                },
            )
            if rng.random() < 0.1:
                note_day = tl.stamp(rng, tl.day_between(rng, person.created, tl.as_of))
                sink.add(
                    "fullnotes",
                    {"notetype": int(NoteType.PATIENT_NOTE), "noteid": person.patid, "notedate": note_day, "notetext": rng.choice(vocab.PATIENT_NOTES), "automodifiedtimestamp": note_day},
                )
            # Referred by a referral source (refbytype 0) and/or by another patient (refbytype 1).
            for refid, refbytype in ((person.refid, 0), (person.refbyid, 1)):
                if refid:
                    sink.add(
                        "refacts",
                        {
                            "refactsid": self.ids.next("refactsid"), "refid": refid, "patid": person.patid,
                            "refactstype": 0, "refactdate": person.created, "refbytype": refbytype,
                            "automodifiedtimestamp": tl.stamp(rng, person.created),
                        },
                    )
            if person.first_visit is not None and rng.random() < 0.4:
                list_rows.extend(self._custom_values(person))
        settings_day = tl.stamp(rng, tl.opened)
        sink.add(
            "fullnotes",
            {"notetype": int(NoteType.CHART_NUMBER_SETTINGS), "noteid": 1, "notedate": settings_day, "notetext": vocab.CHART_NUMBER_SETTINGS, "automodifiedtimestamp": settings_day},
        )
        return self._write_custom_values(list_rows)

    def _custom_values(self, person: Person) -> list[dict[str, object]]:
        rng, tl = self.rng, self.timeline
        rows: list[dict[str, object]] = []
        assert person.first_visit is not None and person.last_visit is not None
        chances = {"Preferred Language": 0.6, "Emergency Contact": 0.5, "HIPAA Form Signed": 0.7, "Preferred Pharmacy": 0.3, "Dental Anxiety": 0.3, "Last Medical Hx Update": 0.4}
        for cf in self.practice.custom_fields:
            if rng.random() > chances[cf.label]:
                continue
            if cf.fieldtype == "list":
                value = cf.values[0] if rng.random() < 0.7 else rng.choice(cf.values)
            elif cf.fieldtype == "date":
                day = person.first_visit if cf.label == "HIPAA Form Signed" else person.last_visit
                value = day.strftime("%m/%d/%Y")
            else:
                value = rng.choice(vocab.CUSTOM_TEXT_VALUES[cf.label])
            rows.append({"patid": person.patid, "custfieldid": cf.custfieldid, "fieldvalue": value, "automodifiedtimestamp": tl.stamp(rng, person.last_visit)})
        return rows

    def _write_custom_values(self, rows: list[dict[str, object]]) -> list[tuple[int, int]]:
        """Write custom values, first typing a few list values that are not in the list."""
        rng = self.rng
        lists = {cf.custfieldid: cf for cf in self.practice.custom_fields if cf.fieldtype == "list"}
        list_rows = [r for r in rows if r["custfieldid"] in lists]
        count = min(len(list_rows), max(self.spec.minimum_per_quirk, round(OFF_LIST_RATE * len(list_rows))))
        off: list[tuple[int, int]] = []
        for row in rng.sample(list_rows, count):
            label = lists[row["custfieldid"]].label  # type: ignore[index]
            row["fieldvalue"] = rng.choice(vocab.OFF_LIST_VALUES[label])
            off.append((int(row["patid"]), int(row["custfieldid"])))  # type: ignore[arg-type]
        for row in rows:
            self.sink.add("custvalue", row)
        return sorted(off)

    def _write_addresses_and_insurance(self) -> None:
        rng, tl, sink = self.rng, self.timeline, self.sink
        for address in self.builder.addresses:
            sink.add(
                "address",
                {
                    "addrid": address.addrid, "street1": address.street1, "street2": address.street2,
                    "city": address.city.name, "state": address.city.state, "zipcode": address.zipcode,
                    "country": "", "phone": address.phone, "phoneext": "", "ptrcount": address.members,
                    "automodifiedtimestamp": tl.stamp(rng, tl.day_between(rng, tl.opened, tl.as_of)),
                },
            )
        for sub in self.builder.subscriptions:
            members = sum(1 for m in sub.subscriber.household.members if sub.insuredid in (m.priminsuredid, m.secinsuredid))
            sink.add(
                "insured",
                {
                    "insuredid": sub.insuredid, "insplanid": sub.plan.insid, "inspartyid": sub.subscriber.patid,
                    "idnum": sub.idnum, "instype": 0, "fambenefits": 0.0, "famdeductible": sub.plan.deductible * 3,
                    "ptrcount": members, "automodifiedtimestamp": tl.stamp(rng, sub.subscriber.created),
                },
            )


def _unusual_name(name: str) -> bool:
    """Anything beyond plain ASCII letters: accents, CJK, apostrophes, hyphens, spaces, periods."""
    return bool(name) and not (name.isascii() and name.isalpha())
