"""One tiny synthetic practice per test session (generation takes about a second)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date

import pytest

from dentrix_zoho.source.synthetic import GenerationResult, generate_practice

AS_OF = date(2025, 3, 14)
SEED = 11


@pytest.fixture(scope="session")
def tiny_practice(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    out = tmp_path_factory.mktemp("tiny") / "practice.db"
    return generate_practice(out, "tiny", SEED, AS_OF)


@pytest.fixture(scope="session")
def tiny_office2(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    out = tmp_path_factory.mktemp("tiny2") / "office2.db"
    return generate_practice(out, "tiny", SEED, AS_OF, office=2)


@pytest.fixture()
def db(tiny_practice: GenerationResult) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{tiny_practice.db_path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()
