"""The ledger: procedures, insurance claims and payments, patient payments, adjustments, aging.

Money is kept in cents while generating so that every guarantor's aging buckets add up
exactly to the sum of ``fullproclog.amt`` over that guarantor. Patient payments are posted
on the GUARANTOR (patid = guarid), so patient-level sums do not give the family balance.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from dentrix_zoho.source.catalog import ChartStatus, ClaimStatus, DefType, ProcLogClass
from dentrix_zoho.source.synthetic.ids import Ids
from dentrix_zoho.source.synthetic.people import Person
from dentrix_zoho.source.synthetic.practice import InsurancePlan, Practice
from dentrix_zoho.source.synthetic.schema import TableSink
from dentrix_zoho.source.synthetic.timeline import Timeline

PPO_WRITE_OFF = 0.15
STALE_CLAIM_RATE = 0.02
STALE_CLAIM_DAYS = 730


@dataclass(frozen=True)
class PlannedProcedure:
    ada: str
    tooth_start: int = 0
    tooth_end: int = 0
    surfaces: str = ""


@dataclass
class GuarantorAccount:
    residuals: list[tuple[date, int]] = field(default_factory=list)  # (charge date, cents still owed)
    last_payment: tuple[date, int] | None = None
    last_insurance_payment: tuple[date, int] | None = None
    billed: bool = False


class LedgerBook:
    def __init__(
        self, rng: random.Random, practice: Practice, timeline: Timeline, sink: TableSink, ids: Ids,
        *, itemized_insurance: bool = False,
    ) -> None:
        self.rng = rng
        self.itemized_insurance = itemized_insurance
        self.practice = practice
        self.timeline = timeline
        self.sink = sink
        self.ids = ids
        self.accounts: dict[int, GuarantorAccount] = {}
        self.open_claim_ids: list[int] = []
        self.stale_claims: list[tuple[int, int, date]] = []  # (claimid, patid, created)
        self._benefits: dict[tuple[int, int], int] = {}  # (patid, year) -> cents paid by insurance
        self._deductible: dict[tuple[int, int], int] = {}
        self._payment_types = practice.definitions[DefType.PAYMENT_TYPE]
        self._adjustment_types = practice.definitions[DefType.ADJUSTMENT_TYPE]

    # -- rows --------------------------------------------------------------
    def _row(self, **values: object) -> int:
        proclogid = self.ids.next("proclogid")
        day = values["procdate"]
        assert isinstance(day, date)
        stamp = self.timeline.stamp(self.rng, day)
        row = {
            "proclogid": proclogid, "history": day < self.timeline.month_start, "createdate": stamp,
            "automodifiedtimestamp": stamp, "claimid": 0, "amtpriminspaid": 0.0, "amtsecinspaid": 0.0,
            "toothrangestart": 0, "toothrangeend": 0, "surfacestring": "", "checknum": "",
        }
        row.update(values)
        self.sink.add("fullproclog", row)
        return proclogid

    def _account(self, guarid: int) -> GuarantorAccount:
        account = self.accounts.get(guarid)
        if account is None:
            account = self.accounts[guarid] = GuarantorAccount()
        return account

    # -- a visit -------------------------------------------------------------
    def post_visit(self, person: Person, day: date, provid: str, procedures: list[PlannedProcedure]) -> list[int]:
        """Write the visit's procedures and what was paid for them; return the procedure proclogids."""
        rng = self.rng
        guarid = person.guarid
        account = self._account(guarid)
        fees = [round(self.practice.procedures[p.ada].fee * 100) for p in procedures]
        total = sum(fees)
        subscription = person.household.primary if person.priminsuredid else None
        insurance = [0] * len(procedures)
        write_off = 0
        claimid = 0
        write_offs = [round(fee * PPO_WRITE_OFF) for fee in fees] if self.itemized_insurance else []
        if subscription is not None:
            write_off = sum(write_offs) if write_offs else round(total * PPO_WRITE_OFF)
            insurance = self._insurance_estimate(person, day, subscription.plan, procedures, fees)
            claimid = self.ids.next("claimid")
        ins_total = sum(insurance)

        received: date | None = None
        if claimid:
            received = self._claim(claimid, person, day, provid, subscription.insuredid, subscription.plan.insid, total, ins_total)  # type: ignore[union-attr]

        proclogids = []
        for proc, fee, ins in zip(procedures, fees, insurance, strict=True):
            ref = self.practice.procedures[proc.ada]
            proclogids.append(
                self._row(
                    patid=person.patid, guarid=guarid, chartstatus=int(ChartStatus.COMPLETED_PROCEDURE),
                    proclogclass=int(ProcLogClass.PROCEDURE), procdate=day, proccodeid=ref.proccodeid,
                    claimid=claimid, provid=provid, amt=fee / 100, amtpriminspaid=(ins / 100 if received else 0.0),
                    toothrangestart=proc.tooth_start, toothrangeend=proc.tooth_end,
                    surfacestring=proc.surfaces, completiondate=day,
                )
            )
        owed = total
        if received is not None:
            checknum = f"{rng.randint(100000, 999999)}"
            # One line per claim, or one per procedure when the practice itemizes; same totals.
            lines = list(zip(insurance, write_offs, strict=True)) if write_offs else [(ins_total, write_off)]
            for paid, written_off in lines:
                self._row(
                    patid=person.patid, guarid=guarid, chartstatus=int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
                    proclogclass=int(ProcLogClass.INSURANCE_PAYMENT), procdate=received,
                    proccodeid=self._payment_types["Dental Insurance Check Payment"], claimid=claimid,
                    provid=provid, amt=-paid / 100, checknum=checknum, completiondate=received,
                )
                self._row(
                    patid=person.patid, guarid=guarid, chartstatus=int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
                    proclogclass=int(ProcLogClass.CREDIT_ADJUSTMENT), procdate=received,
                    proccodeid=self._adjustment_types["Insurance Write-Off (PPO)"], claimid=claimid,
                    provid=provid, amt=-written_off / 100, completiondate=received,
                )
            owed -= ins_total + write_off
            if ins_total and (account.last_insurance_payment is None or received >= account.last_insurance_payment[0]):
                account.last_insurance_payment = (received, ins_total)
        elif subscription is None and rng.random() < 0.03:
            discount = round(total * 0.1)
            self._row(
                patid=person.patid, guarid=guarid, chartstatus=int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
                proclogclass=int(ProcLogClass.CREDIT_ADJUSTMENT), procdate=day,
                proccodeid=self._adjustment_types[rng.choice(("Senior Discount", "Professional Courtesy"))],
                provid=provid, amt=-discount / 100, completiondate=day,
            )
            owed -= discount

        expected_patient_share = total - ins_total - write_off if subscription is not None else owed
        owed -= self._patient_payment(person, day, provid, expected_patient_share, account)
        if owed:
            account.residuals.append((day, owed))
        return proclogids

    def _insurance_estimate(self, person: Person, day: date, plan: InsurancePlan, procedures: list[PlannedProcedure], fees: list[int]) -> list[int]:
        key = (person.patid, day.year)
        used = self._benefits.get(key, 0)
        deductible_left = round(plan.deductible * 100) - self._deductible.get(key, 0)
        maximum = round(plan.annual_max * 100)
        paid = []
        for proc, fee in zip(procedures, fees, strict=True):
            coverage = self.practice.procedures[proc.ada].code.coverage
            allowed = fee - round(fee * PPO_WRITE_OFF)
            if coverage != "prev" and deductible_left > 0:
                applied = min(deductible_left, allowed)
                deductible_left -= applied
                self._deductible[key] = self._deductible.get(key, 0) + applied
                allowed -= applied
            amount = min(round(allowed * plan.coverage[coverage] / 100), max(0, maximum - used))
            used += amount
            paid.append(amount)
        self._benefits[key] = used
        return paid

    def _claim(self, claimid: int, person: Person, day: date, provid: str, insuredid: int, insid: int, total: int, ins_total: int) -> date | None:
        rng, tl = self.rng, self.timeline
        sent = day + timedelta(days=rng.randint(0, 2))
        received = day + timedelta(days=rng.randint(14, 45))
        # Claims nobody chased: sent, never answered. Older ones were closed out long ago.
        stale = (tl.as_of - day).days <= STALE_CLAIM_DAYS and rng.random() < STALE_CLAIM_RATE
        if sent > tl.as_of:
            status, sent_day, received_day = ClaimStatus.CREATED, None, None
        elif received > tl.as_of or stale:
            status, sent_day, received_day = ClaimStatus.SENT, sent, None
        else:
            status, sent_day, received_day = ClaimStatus.RECEIVED, sent, received
        if status != ClaimStatus.RECEIVED:
            self.open_claim_ids.append(claimid)
            if stale and sent_day is not None and (tl.as_of - day).days > 60:
                self.stale_claims.append((claimid, person.patid, day))
        last = received_day or sent_day or day
        self.sink.add(
            "claim",
            {
                "claimid": claimid, "patid": person.patid, "guarid": person.guarid, "insuredid": insuredid,
                "insid": insid, "provid": provid, "claimtype": 0, "status": int(status), "createdate": day,
                "sentdate": sent_day, "receiveddate": received_day, "totalbilled": total / 100,
                "totalreceived": (ins_total / 100) if received_day else 0.0,
                "automodifiedtimestamp": tl.stamp(rng, last),
            },
        )
        return received_day

    def _patient_payment(self, person: Person, day: date, provid: str, share: int, account: GuarantorAccount) -> int:
        """Post what the family paid toward ``share``; returns the cents paid (may exceed share: a credit)."""
        rng, tl = self.rng, self.timeline
        if share <= 0:
            return 0
        old = (tl.as_of - day).days > 120
        roll = rng.random()
        if roll < 0.55:
            paid_on = day
        elif roll < (0.98 if old else 0.88):
            paid_on = day + timedelta(days=rng.randint(10, 45))
        else:
            return 0
        if paid_on > tl.as_of:
            return 0
        amount = share
        if rng.random() < 0.01:
            amount = share + rng.randint(1, 50) * 100  # paid too much: the family has a credit
        kind = rng.choices(("Cash Payment", "Check Payment", "Credit Card Payment", "CareCredit Payment", "Online Payment"), weights=(10, 20, 55, 5, 10), k=1)[0]
        self._row(
            patid=person.guarid, guarid=person.guarid, chartstatus=int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
            proclogclass=int(ProcLogClass.PATIENT_PAYMENT), procdate=paid_on, proccodeid=self._payment_types[kind],
            provid=provid, amt=-amount / 100, checknum=f"{rng.randint(1001, 9999)}" if kind == "Check Payment" else "",
            completiondate=paid_on,
        )
        if account.last_payment is None or paid_on >= account.last_payment[0]:
            account.last_payment = (paid_on, amount)
        return amount

    def post_initial_balance(self, guarantor: Person, day: date, provid: str) -> None:
        """A balance carried over from the previous system, posted on the guarantor at conversion."""
        rng = self.rng
        account = self._account(guarantor.patid)
        amount = rng.randint(20, 600) * 100
        self._row(
            patid=guarantor.patid, guarid=guarantor.patid, chartstatus=int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
            proclogclass=int(ProcLogClass.CHARGE_ADJUSTMENT), procdate=day,
            proccodeid=self._adjustment_types["Initial Balance (+)"], provid=provid, amt=amount / 100, completiondate=day,
        )
        paid = self._patient_payment(guarantor, day, provid, amount, account)
        if amount - paid:
            account.residuals.append((day, amount - paid))

    def benefits_used(self, patid: int, year: int) -> tuple[float, float]:
        key = (patid, year)
        return self._benefits.get(key, 0) / 100, self._deductible.get(key, 0) / 100

    # -- aging -------------------------------------------------------------
    def write_aging(self) -> dict[int, float]:
        """One aging row per guarantor with ledger activity; returns each guarantor's balance."""
        tl, rng = self.timeline, self.rng
        billing = self.practice.definitions[DefType.BILLING_TYPE]
        balances: dict[int, float] = {}
        for guarid, account in self.accounts.items():
            buckets = [0, 0, 0, 0]
            for day, cents in account.residuals:
                age = (tl.as_of - day).days
                buckets[0 if age <= 30 else 1 if age <= 60 else 2 if age <= 90 else 3] += cents
            if buckets[3] >= 25_000 and rng.random() < 0.4:
                billing_type = billing["Send to Collections"]
            elif rng.random() < 0.1:
                billing_type = billing["Standard Billing - no finance charges"]
            else:
                billing_type = billing["Standard Billing - finance charges"]
            last_pay = account.last_payment
            last_ins = account.last_insurance_payment
            self.sink.add(
                "aging",
                {
                    "guarid": guarid, "aging0to30": buckets[0] / 100, "aging31to60": buckets[1] / 100,
                    "aging61to90": buckets[2] / 100, "aging91plus": buckets[3] / 100, "agingdate": tl.month_start,
                    "lastpaydate": last_pay[0] if last_pay else None, "lastpayamt": last_pay[1] / 100 if last_pay else 0.0,
                    "lastinspaydate": last_ins[0] if last_ins else None,
                    "lastinspayamt": last_ins[1] / 100 if last_ins else 0.0,
                    "lastbillingdate": tl.month_start - timedelta(days=1), "billingtype": billing_type,
                    "automodifiedtimestamp": tl.stamp(rng, tl.month_start),
                },
            )
            balances[guarid] = sum(buckets) / 100
        return balances
