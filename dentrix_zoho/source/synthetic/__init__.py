"""A synthetic Dentrix G6/G7 practice (SQLite ``DentrixSQL`` stand-in) with seeded problems."""

from dentrix_zoho.source.synthetic.dump import canonical_digest, canonical_dump
from dentrix_zoho.source.synthetic.generator import GenerationResult, generate_practice
from dentrix_zoho.source.synthetic.manifest import SeedManifest
from dentrix_zoho.source.synthetic.paths import PracticeFiles

__all__ = [
    "GenerationResult",
    "PracticeFiles",
    "SeedManifest",
    "canonical_digest",
    "canonical_dump",
    "generate_practice",
]
