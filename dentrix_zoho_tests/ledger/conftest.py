from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dentrix_zoho.ledger import Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.for_home(tmp_path) as opened:
        yield opened
