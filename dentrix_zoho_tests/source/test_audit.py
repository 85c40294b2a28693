"""The source audit finds every problem the synthetic practice seeded, and its metadata is counts only."""

from __future__ import annotations

from pathlib import Path

import pytest

from dentrix_zoho.source.audit import run_audit
from dentrix_zoho.source.provider_map import load_provider_emails
from dentrix_zoho.source.synthetic import PracticeFiles, SeedManifest
from dentrix_zoho.staging.stage_all import stage_objects


@pytest.fixture(scope="module")
def audited(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    files = PracticeFiles(tiny_practice)
    home = tmp_path_factory.mktemp("audit")
    stage_objects(f"sqlite:///{tiny_practice}", home / "staging.duckdb", office_id="office-1")
    result = run_audit(
        home / "staging.duckdb",
        home / "reports",
        image_root=files.images_dir,
        provider_map=load_provider_emails(files.provider_map),
    )
    return result, SeedManifest.read(files.manifest)


def _ids(result, name: str) -> set[str]:  # type: ignore[no-untyped-def]
    return set(result.findings[name].ids)


def test_orphans_found_exactly(audited) -> None:  # type: ignore[no-untyped-def]
    result, manifest = audited
    ids = _ids(result, "orphan_rows")
    assert {f"appt:{i}" for i in manifest.orphan_appt_ids} <= ids
    assert {f"clinicalnote:{i}" for i in manifest.orphan_note_ids} <= ids
    assert manifest.orphan_appt_ids and manifest.orphan_note_ids


def test_every_seeded_duplicate_pair_is_a_candidate(audited) -> None:  # type: ignore[no-untyped-def]
    result, manifest = audited
    candidates = _ids(result, "duplicate_patient_candidates")
    seeded = {f"{min(a, b)}~{max(a, b)}" for a, b in manifest.duplicate_patient_pairs}
    assert seeded and seeded <= candidates


def test_unmapped_providers_are_flagged(audited) -> None:  # type: ignore[no-untyped-def]
    result, manifest = audited
    assert set(manifest.unmapped_provider_ids) == {p.strip() for p in _ids(result, "providers_without_email")}


def test_open_claims_listed(audited) -> None:  # type: ignore[no-untyped-def]
    result, manifest = audited
    assert {str(i) for i in manifest.open_claim_ids} == _ids(result, "open_claims")


def test_missing_and_over_limit_images_found(audited) -> None:  # type: ignore[no-untyped-def]
    result, manifest = audited
    assert result.findings["image_files_missing"].count == len(manifest.missing_image_paths) > 0
    assert result.findings["image_files_over_limit"].count == len(manifest.over_limit_image_paths) > 0


def test_practice_fields_history_and_version_signals(audited) -> None:  # type: ignore[no-untyped-def]
    result, manifest = audited
    assert result.findings["practice_defined_fields"].count > 0
    assert result.findings["appointment_history_years"].count >= 1
    assert "deleted (appthist only)" in result.findings["appointment_history_years"].note
    assert result.version_signals  # Data_Version or InstalledVersion from admin.options
    assert result.object_counts["patient"] == manifest.counts["patient"]


def test_report_is_private_and_summary_is_counts_only(audited) -> None:  # type: ignore[no-untyped-def]
    result, _ = audited
    assert (result.path.stat().st_mode & 0o077) == 0
    assert all(isinstance(v, int) for v in result.summary().values())
