"""The same (seed, as_of, office) gives the same practice, row for row and file for file."""

from __future__ import annotations

from pathlib import Path

from dentrix_zoho.source.synthetic import GenerationResult, canonical_digest, canonical_dump, generate_practice


def test_same_seed_gives_the_same_content(tiny_practice: GenerationResult, tmp_path: Path) -> None:
    m = tiny_practice.manifest
    again = generate_practice(tmp_path / "again.db", "tiny", m.seed, m.as_of, m.office)
    assert canonical_dump(again.db_path) == canonical_dump(tiny_practice.db_path)
    assert again.manifest == m
    assert again.provider_map_path.read_text() == tiny_practice.provider_map_path.read_text()


def test_a_different_seed_gives_different_content(tiny_practice: GenerationResult, tmp_path: Path) -> None:
    m = tiny_practice.manifest
    other = generate_practice(tmp_path / "other.db", "tiny", m.seed + 1, m.as_of, m.office)
    first, second = canonical_dump(tiny_practice.db_path), canonical_dump(other.db_path)
    assert first["patient"] != second["patient"]
    assert first["fullproclog"] != second["fullproclog"]
    assert first["__schema__"] == second["__schema__"]


def test_regenerating_in_place_replaces_the_practice(tmp_path: Path, tiny_practice: GenerationResult) -> None:
    m = tiny_practice.manifest
    out = tmp_path / "p.db"
    generate_practice(out, "tiny", m.seed + 5, m.as_of)
    generate_practice(out, "tiny", m.seed, m.as_of)
    assert canonical_digest(out) == canonical_digest(tiny_practice.db_path)
    assert not (tmp_path / "p.db.partial").exists()
