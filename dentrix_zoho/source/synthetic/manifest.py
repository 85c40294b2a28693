"""What the generator seeded, with ids, so that audit and mapping tests can check every problem is caught.

Written beside the database as ``<stem>.seed.json``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_VERSION = 1


class ManifestFile(BaseModel):
    """A manifest written as JSON beside a generated practice; ``what`` names it in a read error."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    what: ClassVar[str] = "manifest"

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Self:
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise ValueError(f"{path}: not a {cls.what}: {exc}") from None


class SeedManifest(ManifestFile):
    what: ClassVar[str] = "seed manifest"

    manifest_version: int = MANIFEST_VERSION
    seed: int
    scale: str
    office: int
    as_of: date
    dentrix_version: str
    practice_name: str

    counts: dict[str, int] = Field(description="rows per base table")
    patient_status_counts: dict[int, int] = Field(description="patient rows per status 1-4")

    # Identity
    duplicate_patient_pairs: list[tuple[int, int]] = Field(description="(original patid, duplicate patid)")
    hard_deleted_patids: list[int] = Field(description="patids with no patient row left")
    future_birthdate_patids: list[int]
    missing_last_name_patids: list[int]
    unicode_name_patids: list[int] = Field(description="non-ASCII letters, apostrophes or hyphens in a name")
    blank_chartnum_patids: list[int]
    duplicate_chartnum_groups: list[list[int]]
    minors_with_responsible_party: list[tuple[int, int]] = Field(description="(minor patid, guarantor patid)")
    non_patient_guarantor_patids: list[int] = Field(description="status 2 patients who are the guarantor of someone else")
    families_sharing_address: int = Field(description="addresses that two or more patients point at")
    privacy_flag_patids: dict[int, int] = Field(description="patid -> non-zero privacyflags")

    # Contact data
    invalid_email_patids: list[int]
    junk_phone_patids: list[int] = Field(description="a home (address), mobile or other phone that is not a number")

    # Orphans and history
    orphan_appt_ids: list[int] = Field(description="appointments whose patient row is gone")
    orphan_note_ids: list[int] = Field(description="clinical notes whose patient row is gone")
    deleted_appt_ids: list[int] = Field(description="parentapptid of appointments only in appthist, deletedflag 1")
    new_patient_appt_ids: list[int] = Field(description="appointments with patid 0")
    new_patient_appt_matches: list[tuple[int, int]] = Field(
        description="(apptid, patid): a patid-0 appointment whose patname/phone is an existing patient's"
    )

    # Clinical and financial
    overlong_note_ids: list[int] = Field(description="clinicalnote ids with more than 32,000 characters")
    open_claim_ids: list[int]
    stale_open_claim_ids: list[int] = Field(description="open claims sent over 60 days before as_of")
    guarantor_balance_total: float = Field(description="sum of aging buckets = sum of fullproclog.amt")
    custom_values_outside_list: list[tuple[int, int]] = Field(description="(patid, custfieldid) list values not in the list")

    # Providers
    provider_emails: dict[str, str] = Field(description="trimmed provider id -> e-mail, as in the provider map")
    unmapped_provider_ids: list[str]

    # Files
    image_count: int = Field(description="files referenced by eattach and document")
    missing_image_paths: list[str]
    over_limit_image_paths: list[str]

    # Practice Definitions of this office: deftype name -> {description: id}
    definition_ids: dict[str, dict[str, int]]

