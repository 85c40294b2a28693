"""The office scale lands near its targets (generated once; takes about 15 s)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dentrix_zoho.source.synthetic import generate_practice


@pytest.mark.slow
def test_office_scale_counts_are_within_ten_percent(tmp_path: Path) -> None:
    result = generate_practice(tmp_path / "office.db", "office", 2024, date(2025, 5, 1))
    counts = result.counts
    for table, target in (("patient", 8_000), ("appt", 60_000), ("fullproclog", 250_000)):
        assert 0.9 * target <= counts[table] <= 1.1 * target, (table, counts[table])
    m = result.manifest
    assert len(m.over_limit_image_paths) == 4 and len(m.missing_image_paths) == 6
    assert len(m.overlong_note_ids) == 5 and len(m.hard_deleted_patids) == 6
    assert len(m.duplicate_patient_pairs) >= 30 and len(m.invalid_email_patids) >= 60
