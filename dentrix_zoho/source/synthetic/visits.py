"""A patient's care played out: appointments, history, procedures, notes, prescriptions, journal.

Each person gets a first (new-patient) visit, recare visits about twice a year until the
end of their care, restorative and emergency visits in between, a few broken and deleted
appointments, and, for active patients, a booked future appointment.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from dentrix_zoho.source.catalog import (
    APPT_STATUS_COMPLETE,
    APPT_TYPE_NONE,
    AttachType,
    ContactType,
    DefType,
    NoteType,
    PatientStatus,
)
from dentrix_zoho.source.synthetic import vocabulary as vocab
from dentrix_zoho.source.synthetic.ids import Ids
from dentrix_zoho.source.synthetic.ledger import LedgerBook, PlannedProcedure
from dentrix_zoho.source.synthetic.people import Person
from dentrix_zoho.source.synthetic.practice import Practice
from dentrix_zoho.source.synthetic.schema import TableSink
from dentrix_zoho.source.synthetic.timeline import Timeline, add_months, weekday_on_or_after

ZOHO_NOTE_LIMIT = 32_000
BROKEN_RATE = 0.05
DELETED_RATE = 0.02
RESTORATIVE_RATE = 0.27
HISTORY_DAYS = 730  # appthist keeps about two years

_RECARE_MONTHS = (5, 6, 6, 6, 6, 7, 8, 9, 12, 12, 14, 18)
_PERIO_MONTHS = (3, 3, 4, 4, 6)
_POSTERIOR = (*range(1, 6), *range(12, 22), *range(28, 33))
_ANTERIOR = (*range(6, 12), *range(22, 28))
_QUADRANTS = ((1, 8), (9, 16), (17, 24), (25, 32))
_SURFACE_COUNT = {"D2140": 1, "D2150": 2, "D2330": 1, "D2391": 1, "D2392": 2, "D2393": 3}
_PAIN_CODES = frozenset({"D7140", "D7210", "D3330", "D3310", "D6010"})
_FUTURE_STATUSES = (("??????", 35), ("FIRM", 25), ("FIRM-E", 10), ("LMM", 10), ("LMP", 5), ("MULTI", 5), ("NOFLEX", 8), ("EMERGENCY", 2))
_TODAY_STATUSES = ("HERE", "READY", "FIRM", "??????")
_CONTACT_TYPES = {"text": ContactType.TEXT_MESSAGE, "call": ContactType.PHONE_CALL, "letter": ContactType.LETTER, "email": ContactType.EMAIL}


@dataclass
class Visit:
    day: date
    kind: str  # new_patient | hygiene | perio | restorative | emergency


@dataclass
class ImageRef:
    relpath: str
    kind: str  # jpg | png | pdf


@dataclass
class CareFacts:
    """What later steps (recalls, images, journal) need to know about one person's care."""

    last_recare: date | None = None
    last_bwx: date | None = None
    last_fmx: date | None = None
    xray: tuple[date, str] | None = None
    crowns: list[date] = field(default_factory=list)
    future_apptid: int = 0
    future_day: date | None = None
    hygienist: str = ""


class CareHistory:
    def __init__(
        self, rng: random.Random, practice: Practice, timeline: Timeline, sink: TableSink, ids: Ids, ledger: LedgerBook
    ) -> None:
        self.rng = rng
        self.practice = practice
        self.timeline = timeline
        self.sink = sink
        self.ids = ids
        self.ledger = ledger
        self.images: list[ImageRef] = []
        # Seeded-problem bookkeeping for the manifest.
        self.orphan_appt_ids: list[int] = []
        self.orphan_note_ids: list[int] = []
        self.overlong_note_ids: list[int] = []
        self.deleted_appt_ids: list[int] = []
        self._type_names = {v: k for k, v in practice.definitions[DefType.APPOINTMENT_TYPE].items()}

    # -- planning ------------------------------------------------------------
    def plan(self, person: Person) -> list[Visit]:
        rng, tl = self.rng, self.timeline
        if person.care_start is None or person.care_end is None:
            return []
        end = min(person.care_end, tl.as_of - timedelta(days=1))
        visits = [Visit(weekday_on_or_after(person.care_start), "new_patient")]
        recare = "perio" if person.perio else "hygiene"
        months = _PERIO_MONTHS if person.perio else _RECARE_MONTHS
        day = person.care_start
        while True:
            day = add_months(day, rng.choice(months)) + timedelta(days=rng.randint(-10, 10))
            if day > end:
                break
            visits.append(Visit(weekday_on_or_after(day), recare))
            if rng.random() < RESTORATIVE_RATE:
                visits.append(Visit(weekday_on_or_after(day + timedelta(days=rng.randint(7, 35))), "restorative"))
            if rng.random() < 0.03:
                visits.append(Visit(weekday_on_or_after(day + timedelta(days=rng.randint(20, 150))), "emergency"))
        visits = [v for v in visits if v.day <= end]
        visits.sort(key=lambda v: v.day)
        unique: list[Visit] = []
        for visit in visits:
            if not unique or unique[-1].day != visit.day:
                unique.append(visit)
        return unique

    # -- playing -------------------------------------------------------------
    def play(self, person: Person, *, overlong_note: bool) -> CareFacts:
        rng = self.rng
        facts = CareFacts(hygienist=person.provid2 or rng.choice(self.practice.hygienists).rscid)
        visits = self.plan(person)
        for index, visit in enumerate(visits):
            if rng.random() < BROKEN_RATE:
                self._broken(person, visit)
            self._completed(person, visit, facts, overlong=overlong_note and index == len(visits) - 1)
            if not person.hard_deleted and rng.random() < DELETED_RATE:
                self._deleted(person, visit.day)
        if self._wants_future_appointment(person, visits):
            self._future(person, visits, facts)
        return facts

    def _wants_future_appointment(self, person: Person, visits: list[Visit]) -> bool:
        if person.hard_deleted or person.status != PatientStatus.PATIENT or not visits:
            return False
        if (self.timeline.as_of - visits[-1].day).days > 400:
            return False
        return self.rng.random() < 0.72

    def _age_at(self, person: Person, day: date) -> int:
        if person.birthdate is None or person.birthdate >= day:
            return 30
        return (day - person.birthdate).days // 365

    def procedures(self, person: Person, visit: Visit, facts: CareFacts) -> list[PlannedProcedure]:
        rng = self.rng
        age = self._age_at(person, visit.day)
        child = age < 14
        prophy = "D1120" if child else "D1110"
        procs: list[PlannedProcedure] = []
        if visit.kind == "new_patient":
            procs = [PlannedProcedure("D0150"), PlannedProcedure("D0210" if age >= 12 else "D0274"), PlannedProcedure(prophy)]
            if child:
                procs.append(PlannedProcedure("D1206"))
        elif visit.kind in ("hygiene", "perio"):
            procs = [PlannedProcedure("D0120")] if visit.kind == "hygiene" or rng.random() < 0.5 else []
            procs.append(PlannedProcedure("D4910" if visit.kind == "perio" else prophy))
            if age >= 6 and (facts.last_bwx is None or (visit.day - facts.last_bwx).days > 330):
                procs.append(PlannedProcedure("D0274"))
            elif age >= 18 and facts.last_fmx is not None and (visit.day - facts.last_fmx).days > 5 * 365:
                procs.append(PlannedProcedure("D0210"))
            if child and rng.random() < 0.7:
                procs.append(PlannedProcedure("D1206"))
            if 6 <= age <= 14 and rng.random() < 0.15:
                tooth = rng.choice((3, 14, 19, 30))
                procs.append(PlannedProcedure("D1351", tooth, tooth, "O"))
        elif visit.kind == "restorative":
            codes = [c for c, _ in vocab.RESTORATIVE_CODES]
            weights = [w for _, w in vocab.RESTORATIVE_CODES]
            for ada in dict.fromkeys(rng.choices(codes, weights=weights, k=rng.choice((1, 1, 2, 2, 3)))):
                procs.append(self._toothed(ada))
        else:  # emergency
            tooth = rng.choice(_POSTERIOR)
            procs = [PlannedProcedure("D0140"), PlannedProcedure("D0220", tooth, tooth)]
            procs.append(PlannedProcedure("D9110") if rng.random() < 0.6 else PlannedProcedure("D7140", tooth, tooth))
        return procs

    def _toothed(self, ada: str) -> PlannedProcedure:
        rng = self.rng
        if ada in ("D4341", "D4342"):
            start, end = rng.choice(_QUADRANTS)
            return PlannedProcedure(ada, start, end)
        if ada in ("D9944", "D5110"):
            return PlannedProcedure(ada)
        tooth = rng.choice(_ANTERIOR if ada in ("D2330", "D3310") else _POSTERIOR)
        count = _SURFACE_COUNT.get(ada, 0)
        surfaces = ""
        if count:
            letters = "MIDFL" if tooth in _ANTERIOR else "MODBL"
            chosen = set(rng.sample(letters, count))
            surfaces = "".join(ch for ch in vocab.SURFACES if ch in chosen)
        return PlannedProcedure(ada, tooth, tooth, surfaces)

    def _provider(self, person: Person, visit: Visit, facts: CareFacts) -> str:
        if visit.kind in ("hygiene", "perio"):
            return facts.hygienist
        return person.provid1

    def _appt_type(self, visit: Visit, procs: list[PlannedProcedure]) -> int:
        rng = self.rng
        if rng.random() < 0.05:
            return APPT_TYPE_NONE
        if visit.kind == "new_patient":
            name = "New Patient"
        elif visit.kind == "hygiene":
            name = "Hygiene Recare"
        elif visit.kind == "perio":
            name = "Perio Maintenance"
        elif visit.kind == "emergency":
            name = "Emergency"
        elif any(p.ada in ("D2740", "D2750", "D6010") for p in procs):
            name = rng.choice(("High Production", "Crown Seat"))
        else:
            name = rng.choice(("Medium Production", "Low Production", "General"))
        return self.practice.type_id(name)

    def _slot(self, visit: Visit, procs: list[PlannedProcedure]) -> tuple[int, int, int]:
        rng = self.rng
        length = {"new_patient": 90, "hygiene": 60, "perio": 60, "emergency": 30}.get(visit.kind)
        if length is None:
            length = 90 if any(p.ada in ("D2740", "D2750", "D3330", "D6010") for p in procs) else rng.choice((40, 60, 60, 80))
        hour = rng.randint(7, 16)
        minute = rng.choice((0, 0, 0, 10, 20, 30, 30, 40, 50))
        return hour, minute, length

    # -- appointment rows ------------------------------------------------------
    def _appt_row(
        self, apptid: int, person: Person | None, day: date, slot: tuple[int, int, int], provid: str, status: int,
        appttype: int, procs: list[PlannedProcedure], *, created: date, modified: datetime, codes: list[tuple[int, int]],
        broken: date | None = None, name: str | None = None, phone: str | None = None, newpataddrid: int = 0,
    ) -> None:
        rng = self.rng
        hour, minute, length = slot
        row: dict[str, object] = {
            "apptid": apptid, "apptdate": day, "timehr": hour, "timemin": minute, "apptlen": length,
            "opid": rng.choice(self.practice.operatories), "provid": provid,
            "addlprov": person.provid1 if person is not None and provid != person.provid1 and rng.random() < 0.5 else "",
            "staffid": rng.choice(self.practice.staff), "patid": person.patid if person is not None else 0,
            "patname": name if name is not None else f"{person.lastname}, {person.firstname}",  # type: ignore[union-attr]
            "phone": phone if phone is not None else (person.mobile or person.address.phone),  # type: ignore[union-attr]
            "apptreason": ", ".join(self.practice.procedures[p.ada].code.abbrev for p in procs),
            "status": status, "appttype": appttype,
            "amt": sum(self.practice.procedures[p.ada].fee for p in procs),
            "apptbrokenclass": 1 if broken else 0, "brokendate": broken, "apptflag": 0,
            "newpataddrid": newpataddrid, "refbytype": 0, "refid": 0,
            "labcaseappt": any(p.ada in ("D2740", "D2750", "D5110") for p in procs), "pinboard": 0,
            "createdate": created, "createdbyuserid": rng.choice(self.practice.staff),
            "modifieddate": modified.date(), "automodifiedtimestamp": modified,
        }
        for i, (codeid, codetype) in enumerate(codes[:4], start=1):
            row[f"codeid{i}"] = codeid
            row[f"codetype{i}"] = codetype
        for i in range(len(codes) + 1, 5):
            row[f"codeid{i}"] = 0
            row[f"codetype{i}"] = 0
        self.sink.add("appt", row)

    def _history(
        self, parent: int, person: Person | None, day: date, slot: tuple[int, int, int], provid: str, reason: str,
        statuses: list[tuple[datetime, str]], appttype: int, created: date, *, deleted: bool = False,
    ) -> None:
        """appthist rows for one appointment: one per change, the last flagged lastflag (and deletedflag)."""
        rng = self.rng
        user = rng.choice(self.practice.staff)
        for i, (when, status_text) in enumerate(statuses):
            last = i == len(statuses) - 1
            self.sink.add(
                "appthist",
                {
                    "apptid": self.ids.next("appthistid"), "parentapptid": parent, "modifieddate": when.date(),
                    "modifiedtime": when.hour * 100 + when.minute, "patid": person.patid if person else 0,
                    "userid": user, "provid": provid, "opid": rng.choice(self.practice.operatories),
                    "apptreason": reason, "apptlen": slot[2], "status": status_text,
                    "appttype": self._type_names.get(appttype, "<NONE>"), "apptdate": day, "timehr": slot[0],
                    "timemin": slot[1], "createflag": i == 0, "lastflag": last, "deletedflag": deleted and last,
                    "createddate": created, "createduserid": user, "automodifiedtimestamp": when,
                },
            )

    def _created(self, person: Person, day: date) -> date:
        earliest = min(person.created, day)
        return max(earliest, day - timedelta(days=self.rng.randint(1, 200)))

    def _completed(self, person: Person, visit: Visit, facts: CareFacts, *, overlong: bool) -> None:
        rng, tl = self.rng, self.timeline
        procs = self.procedures(person, visit, facts)
        provid = self._provider(person, visit, facts)
        slot = self._slot(visit, procs)
        apptid = self.ids.next("apptid")
        created = self._created(person, visit.day)
        if person.hard_deleted:
            proclogids: list[int] = []
            self.orphan_appt_ids.append(apptid)
        else:
            proclogids = self.ledger.post_visit(person, visit.day, provid, procs)
        codes = [(pid, 1) for pid in proclogids] or [(self.practice.procedures[p.ada].proccodeid, 0) for p in procs]
        finished = tl.stamp(rng, visit.day, not_before=datetime.combine(visit.day, time(slot[0], slot[1])))
        appttype = self._appt_type(visit, procs)
        self._appt_row(apptid, person, visit.day, slot, provid, APPT_STATUS_COMPLETE, appttype, procs, created=created, modified=finished, codes=codes)
        if (tl.as_of - visit.day).days <= HISTORY_DAYS:
            opened = tl.stamp(rng, created)
            reason = ", ".join(self.practice.procedures[p.ada].code.abbrev for p in procs)
            self._history(apptid, person, visit.day, slot, provid, reason, [(opened, rng.choice(("??????", "FIRM"))), (max(opened, finished), "Complete")], appttype, created)
        self._update_facts(person, visit, procs, facts)
        if rng.random() < 0.95 or overlong:
            self._clinical_note(person, visit, slot, provid, overlong=overlong)
        if not person.hard_deleted:
            self._prescriptions(person, visit, procs)
            if (tl.as_of - visit.day).days <= HISTORY_DAYS and rng.random() < 0.4:
                self.journal(person, visit.day - timedelta(days=rng.randint(1, 3)), "reminder", provid)

    def _update_facts(self, person: Person, visit: Visit, procs: list[PlannedProcedure], facts: CareFacts) -> None:
        codes = {p.ada for p in procs}
        if person.first_visit is None:
            person.first_visit = visit.day
        person.last_visit = visit.day
        if visit.kind in ("hygiene", "perio", "new_patient"):
            facts.last_recare = visit.day
        if "D0274" in codes:
            facts.last_bwx = visit.day
            facts.xray = (visit.day, "BWX")
        if "D0210" in codes:
            facts.last_fmx = visit.day
            facts.xray = (visit.day, "FMX")
        if "D0330" in codes:
            facts.xray = (visit.day, "PANO")
        if codes & {"D2740", "D2750"}:
            facts.crowns.append(visit.day)

    def _broken(self, person: Person, visit: Visit) -> None:
        rng, tl = self.rng, self.timeline
        day = weekday_on_or_after(visit.day - timedelta(days=rng.randint(7, 21)))
        if day < person.created or day >= tl.as_of:
            return
        procs = self.procedures(person, visit, CareFacts())
        provid = self._provider(person, visit, CareFacts(hygienist=person.provid2 or rng.choice(self.practice.hygienists).rscid))
        apptid = self.ids.next("apptid")
        if person.hard_deleted:
            self.orphan_appt_ids.append(apptid)
        status = self.practice.status_id(rng.choice(("FIRM", "??????", "LMM")))
        codes = [(self.practice.procedures[p.ada].proccodeid, 0) for p in procs]
        self._appt_row(
            apptid, person, day, self._slot(visit, procs), provid, status, self._appt_type(visit, procs), procs,
            created=self._created(person, day), modified=tl.stamp(rng, day), codes=codes, broken=day,
        )
        person.missed += 1
        person.last_missed = day

    def _deleted(self, person: Person, near: date) -> None:
        """An appointment someone deleted: it exists only in appthist (deletedflag = 1)."""
        rng, tl = self.rng, self.timeline
        apptid = self.ids.next("apptid")
        day = weekday_on_or_after(near + timedelta(days=rng.randint(-30, 30)))
        created = max(person.created, day - timedelta(days=rng.randint(5, 60)))
        opened = tl.stamp(rng, min(created, tl.as_of))
        removed = tl.stamp(rng, min(day, tl.as_of), not_before=opened)
        self._history(
            apptid, person, day, (rng.randint(8, 16), 0, 60), person.provid1, "PerEval, Pro-Adlt",
            [(opened, "??????"), (removed, rng.choice(("??????", "FIRM", "LMM")))],
            self.practice.type_id("Hygiene Recare"), created, deleted=True,
        )
        self.deleted_appt_ids.append(apptid)

    def _future(self, person: Person, visits: list[Visit], facts: CareFacts) -> None:
        rng, tl = self.rng, self.timeline
        recare = "perio" if person.perio else "hygiene"
        kind = recare if rng.random() < 0.85 else "restorative"
        day = add_months(facts.last_recare or visits[-1].day, 6 if kind != "perio" else 3)
        if day <= tl.as_of:
            day = tl.as_of + timedelta(days=rng.choice((0, 0, 1, 2, 3, 7)) if rng.random() < 0.15 else rng.randint(1, 120))
        day = weekday_on_or_after(day)
        visit = Visit(day, kind)
        procs = self.procedures(person, visit, facts)
        provid = self._provider(person, visit, facts)
        slot = self._slot(visit, procs)
        apptid = self.ids.next("apptid")
        created = max(person.created, min(tl.as_of, visits[-1].day))
        status_name = rng.choice(_TODAY_STATUSES) if day == tl.as_of else rng.choices(
            [s for s, _ in _FUTURE_STATUSES], weights=[w for _, w in _FUTURE_STATUSES], k=1
        )[0]
        changed = tl.stamp(rng, tl.day_between(rng, max(created, tl.as_of - timedelta(days=14)), tl.as_of))
        appttype = self._appt_type(visit, procs)
        codes = [(self.practice.procedures[p.ada].proccodeid, 0) for p in procs]
        self._appt_row(apptid, person, day, slot, provid, self.practice.status_id(status_name), appttype, procs, created=created, modified=changed, codes=codes)
        reason = ", ".join(self.practice.procedures[p.ada].code.abbrev for p in procs)
        opened = tl.stamp(rng, created)
        self._history(apptid, person, day, slot, provid, reason, [(opened, "??????"), (max(opened, changed), status_name)], appttype, created)
        facts.future_apptid, facts.future_day = apptid, day
        for _ in range(rng.choice((0, 1, 1, 2))):
            self.journal(person, tl.day_between(rng, max(created, tl.as_of - timedelta(days=10)), tl.as_of), "reminder", provid)

    # -- notes, prescriptions, journal ---------------------------------------------
    def _clinical_note(self, person: Person, visit: Visit, slot: tuple[int, int, int], provid: str, *, overlong: bool) -> None:
        rng, tl = self.rng, self.timeline
        parts = [rng.choice(vocab.NOTE_OPENERS[visit.kind])]
        parts += rng.sample(vocab.NOTE_BODIES, rng.randint(2, 5))
        parts.append(rng.choice(vocab.NOTE_CLOSERS))
        text = " ".join(p for p in parts if p)
        cnotesid = self.ids.next("cnotesid")
        if overlong:
            target = ZOHO_NOTE_LIMIT + rng.randint(1, 12_000)
            addenda = []
            while len(text) + sum(len(a) + 1 for a in addenda) <= target:
                addenda.append(f"Addendum {len(addenda) + 1}: " + " ".join(rng.sample(vocab.NOTE_BODIES, 6)))
            text = "\n".join([text, *addenda])
            self.overlong_note_ids.append(cnotesid)
        if person.hard_deleted:
            self.orphan_note_ids.append(cnotesid)
        start = datetime.combine(visit.day, time(slot[0], slot[1]))
        created = min(start + timedelta(minutes=slot[2]), tl.end_of_day)
        entered = min(created + timedelta(minutes=rng.randint(0, 60 * 20)), tl.end_of_day)
        locked = entered + timedelta(days=1)
        locked_at = locked if locked <= tl.end_of_day else None
        self.sink.add(
            "clinicalnote",
            {
                "cnotesid": cnotesid, "patid": person.patid, "provid": provid, "createdatetime": created,
                "entrydatetime": entered, "signatureid": cnotesid if locked_at and rng.random() < 0.6 else 0,
                "lockeddate": locked_at, "notetext": text, "automodifiedtimestamp": locked_at or entered,
            },
        )

    def _prescriptions(self, person: Person, visit: Visit, procs: list[PlannedProcedure]) -> None:
        rng = self.rng
        codes = {p.ada for p in procs}
        drugs: list[vocab.Drug] = []
        if codes & _PAIN_CODES and rng.random() < 0.6:
            drugs.append(vocab.DRUGS[3])
            if rng.random() < 0.5:
                drugs.append(vocab.DRUGS[0])
            if rng.random() < 0.15:
                drugs.append(vocab.DRUGS[4])
        if codes & {"D4341", "D4342"} and rng.random() < 0.4:
            drugs.append(vocab.DRUGS[5])
        for drug in drugs:
            self.sink.add(
                "rxrec",
                {
                    "rxid": self.ids.next("rxid"), "patid": person.patid, "provid": person.provid1,
                    "drugname": drug.name, "descript": drug.descript, "dispense": drug.dispense,
                    "dispenseaswritten": rng.random() < 0.1, "refills": drug.refills, "sigtext": drug.sig,
                    "notetext": "Pt informed of side effects." if rng.random() < 0.2 else "", "rxdate": visit.day,
                    "createdate": visit.day, "istemplate": False, "isstandard": False,
                    "rxguid": str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper(),
                    "automodifiedtimestamp": self.timeline.stamp(rng, visit.day),
                },
            )

    def journal(self, person: Person, day: date, topic: str, provid: str) -> None:
        """One Office Journal entry (call, text, letter, e-mail), sometimes with longer text."""
        rng, tl = self.rng, self.timeline
        day = min(day, tl.as_of)
        title, channel = rng.choice(vocab.CONTACT_TITLES[topic])
        contacttype = _CONTACT_TYPES[channel]
        when = tl.stamp(rng, day)
        contactid = self.ids.next("contactid")
        self.sink.add(
            "contact",
            {
                "contactid": contactid, "contactdate": day, "contacttime": when.hour * 100 + when.minute,
                "patid": person.patid, "provid": provid, "title": title,
                "contacttype": int(contacttype), "provtype": 0, "datatype": 0, "refid": 0,
                "automodifiedtimestamp": when,
            },
        )
        if rng.random() < 0.25:
            self.sink.add(
                "fullnotes",
                {
                    "notetype": int(NoteType.OFFICE_JOURNAL), "noteid": contactid, "notedate": when,
                    "notetext": rng.choice(("Left voicemail, asked pt to call back.", "Spoke with pt, confirmed.", "No answer, mailbox full.", "Pt will call back after checking work schedule.", "Sent via patient portal.")),
                    "automodifiedtimestamp": when,
                },
            )

    # -- images and documents ------------------------------------------------------
    def attachments(self, person: Person, facts: CareFacts) -> None:
        rng, tl = self.rng, self.timeline
        patid = person.patid
        folder = f"{patid // 1000:03d}/{patid}"
        if facts.xray is not None and (tl.as_of - facts.xray[0]).days <= 3 * 365:
            eattachid = self.ids.next("eattachid")
            relpath = f"xray/{folder}/{eattachid}_{facts.xray[1]}.jpg"
            self._eattach(eattachid, patid, AttachType.XRAY, f"{facts.xray[1]} radiographs", relpath, facts.xray[0], "jpg")
        for day in facts.crowns[-1:]:
            if rng.random() < 0.5:
                eattachid = self.ids.next("eattachid")
                relpath = f"photo/{folder}/{eattachid}_intraoral.png"
                self._eattach(eattachid, patid, AttachType.INTRAORAL_PHOTO, "Intraoral photo, crown prep", relpath, day, "png")
        if person.first_visit is not None and rng.random() < 0.15:
            self._document(patid, "Consent Form", "Consent for treatment", person.first_visit, f"docs/{folder}", "pdf")
        if person.is_subscriber and person.first_visit is not None and rng.random() < 0.2:
            self._document(patid, "Insurance Card", "Insurance card front/back", person.first_visit, f"docs/{folder}", "jpg")

    def _eattach(self, eattachid: int, patid: int, kind: AttachType, descript: str, relpath: str, day: date, ext: str) -> None:
        self.sink.add(
            "eattach",
            {
                "eattachid": eattachid, "patid": patid, "attachtype": int(kind), "descript": descript,
                "path_cnum": relpath, "attachdate": day, "automodifiedtimestamp": self.timeline.stamp(self.rng, day),
            },
        )
        self.images.append(ImageRef(relpath, ext))

    def _document(self, patid: int, doctype: str, descript: str, day: date, folder: str, ext: str) -> None:
        docid = self.ids.next("docid")
        relpath = f"{folder}/{docid}.{ext}"
        stamp = self.timeline.stamp(self.rng, day)
        self.sink.add(
            "document",
            {
                "docid": docid, "doctypeid": self.practice.document_types[doctype], "descript": descript,
                "pages": self.rng.randint(1, 3) if ext == "pdf" else 1, "createdate": stamp, "lockeddate": stamp,
                "docfmt": ext.upper(), "path_cnum": relpath, "automodifiedtimestamp": stamp,
            },
        )
        self.sink.add(
            "docattach",
            {"attachid": self.ids.next("attachid"), "docid": docid, "attachtotype": 1, "attachtoentityid": patid, "automodifiedtimestamp": stamp},
        )
        self.images.append(ImageRef(relpath, ext))

    # -- new patients without a patient row --------------------------------------------
    def new_patient_appointment(
        self, apptid: int, day: date, name: str, phone: str, addrid: int, provid: str, note: str
    ) -> None:
        rng, tl = self.rng, self.timeline
        visit = Visit(day, "new_patient")
        procs = [PlannedProcedure("D0150"), PlannedProcedure("D0210"), PlannedProcedure("D1110")]
        created = tl.day_between(rng, min(day, tl.as_of) - timedelta(days=30), min(day, tl.as_of))
        status = "??????" if day >= tl.as_of else rng.choice(("??????", "FIRM"))
        slot = self._slot(visit, procs)
        codes = [(self.practice.procedures[p.ada].proccodeid, 0) for p in procs]
        stamp = tl.stamp(rng, created)
        self._appt_row(
            apptid, None, day, slot, provid, self.practice.status_id(status), self.practice.type_id("New Patient"),
            procs, created=created, modified=stamp, codes=codes, name=name, phone=phone, newpataddrid=addrid,
        )
        self.sink.add(
            "fullnotes",
            {"notetype": int(NoteType.NEW_PATIENT_APPOINTMENT), "noteid": addrid, "notedate": stamp, "notetext": note, "automodifiedtimestamp": stamp},
        )
