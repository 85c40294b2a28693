"""How big each synthetic practice is, and how many of each seeded problem it carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScaleName = Literal["tiny", "office", "large"]


@dataclass(frozen=True)
class ScaleSpec:
    patients: int  # rows in the patient table, roughly
    dentists: int
    hygienists: int
    operatories: int
    staff: int
    employers: int
    plans: int
    # Seeded problems that are counted rather than drawn at a rate (so tiny has some).
    hard_deleted_patients: int
    overlong_notes: int
    over_limit_files: int
    missing_files: int
    new_patient_appointments: int
    minimum_per_quirk: int  # floor for the rate-based problems (invalid e-mails, ...)
    # Insurance checks and PPO write-offs posted per procedure (Dentrix's "by procedure"
    # insurance payment entry, usual in group practices) rather than one line per claim:
    # the same money in more ledger rows.
    itemized_insurance: bool = False


SCALES: dict[ScaleName, ScaleSpec] = {
    "tiny": ScaleSpec(
        patients=200, dentists=2, hygienists=3, operatories=4, staff=3, employers=12, plans=10,
        hard_deleted_patients=2, overlong_notes=2, over_limit_files=2, missing_files=2,
        new_patient_appointments=6, minimum_per_quirk=2,
    ),
    "office": ScaleSpec(
        patients=8_000, dentists=3, hygienists=4, operatories=8, staff=5, employers=60, plans=45,
        hard_deleted_patients=6, overlong_notes=5, over_limit_files=4, missing_files=6,
        new_patient_appointments=36, minimum_per_quirk=3,
    ),
    "large": ScaleSpec(
        patients=50_000, dentists=8, hygienists=12, operatories=24, staff=12, employers=200,
        plans=140, hard_deleted_patients=20, overlong_notes=12, over_limit_files=8,
        missing_files=15, new_patient_appointments=150, minimum_per_quirk=5, itemized_insurance=True,
    ),
}
