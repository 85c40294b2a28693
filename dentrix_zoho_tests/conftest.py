"""Fixtures shared across test areas."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

AS_OF = date(2026, 11, 1)
TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_practice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic Dentrix practice (about 200 patients), generated once per test session."""
    from dentrix_zoho.source.synthetic import generate_practice

    out = tmp_path_factory.mktemp("practice") / "practice.db"
    generate_practice(out, scale="tiny", seed=TINY_SEED, as_of=AS_OF)
    return out
