from __future__ import annotations

from pathlib import Path

import pytest

from dentrix_zoho.source.provider_map import load_provider_emails
from dentrix_zoho.source.synthetic import GenerationResult, PracticeFiles, SeedManifest


def test_manifest_file_round_trips(tiny_practice: GenerationResult) -> None:
    assert SeedManifest.read(tiny_practice.manifest_path) == tiny_practice.manifest


def test_manifest_read_names_the_file_on_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.seed.json"
    bad.write_text('{"seed": "x"}')
    with pytest.raises(ValueError, match="bad.seed.json"):
        SeedManifest.read(bad)


def test_sidecar_paths_derive_from_the_database_path(tiny_practice: GenerationResult) -> None:
    files = PracticeFiles(tiny_practice.db_path)
    assert (files.images_dir, files.manifest, files.provider_map) == (
        tiny_practice.images_dir, tiny_practice.manifest_path, tiny_practice.provider_map_path,
    )
    assert files.manifest.name == "practice.seed.json" and files.provider_map.name == "practice_providers.yaml"


def test_provider_map_sidecar_loads_with_the_pipeline_loader(tiny_practice: GenerationResult) -> None:
    emails = load_provider_emails(tiny_practice.provider_map_path)
    assert emails == tiny_practice.manifest.provider_emails
    assert not set(tiny_practice.manifest.unmapped_provider_ids) & set(emails)
