"""The cutover window: validation that names the key at fault, and open/closed by the clock."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dentrix_zoho.cutover.window import CutoverConfigError, CutoverWindow, load_cutover_window

MOUNTAIN = timezone(timedelta(hours=-7))
START = datetime(2026, 11, 27, 18, 0, tzinfo=MOUNTAIN)


def env(**overrides: str) -> dict[str, str]:
    base = {
        "DENTRIX_CUTOVER_START": "2026-11-27T18:00:00-07:00",
        "DENTRIX_CUTOVER_HOURS": "36",
        "DENTRIX_CUTOVER_POLL_SECONDS": "120",
        "DENTRIX_CUTOVER_DELETIONS": "mark",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v}


def test_the_window_loads_from_the_environment() -> None:
    window = load_cutover_window(env())
    assert window == CutoverWindow(start=START, length_hours=36, poll_interval_seconds=120, deletion_policy="mark")
    assert window.end == START + timedelta(hours=36)


def test_no_start_means_no_window() -> None:
    assert load_cutover_window(env(DENTRIX_CUTOVER_START="")) is None


def test_a_twelve_hour_window_is_refused_naming_the_variable() -> None:
    with pytest.raises(CutoverConfigError, match=r"DENTRIX_CUTOVER_HOURS: .*greater than or equal to 24"):
        load_cutover_window(env(DENTRIX_CUTOVER_HOURS="12"))


@pytest.mark.parametrize(
    ("overrides", "key", "why"),
    [
        ({"DENTRIX_CUTOVER_HOURS": "49"}, "DENTRIX_CUTOVER_HOURS", "less than or equal to 48"),
        ({"DENTRIX_CUTOVER_START": "2026-11-27T18:00:00"}, "DENTRIX_CUTOVER_START", "UTC offset"),
        ({"DENTRIX_CUTOVER_START": "next friday"}, "DENTRIX_CUTOVER_START", "datetime"),
        ({"DENTRIX_CUTOVER_DELETIONS": "purge"}, "DENTRIX_CUTOVER_DELETIONS", "'delete' or 'mark'"),
        ({"DENTRIX_CUTOVER_POLL_SECONDS": "5"}, "DENTRIX_CUTOVER_POLL_SECONDS", "greater than or equal to 30"),
    ],
)
def test_every_bad_value_names_its_variable(overrides: dict[str, str], key: str, why: str) -> None:
    with pytest.raises(CutoverConfigError) as err:
        load_cutover_window(env(**overrides))
    assert key in str(err.value) and why in str(err.value)


def test_yaml_errors_name_the_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "cutover.yaml"
    path.write_text("start: 2026-11-27T18:00:00-07:00\n# 12 hours is too short\nlength_hours: 12\n", encoding="utf-8")
    with pytest.raises(CutoverConfigError, match=rf"{re.escape(str(path))}:3: length_hours: .*24"):
        load_cutover_window({"DENTRIX_CUTOVER_FILE": str(path)})
    path.write_text("length_hours: 30\n", encoding="utf-8")
    with pytest.raises(CutoverConfigError, match=rf"{re.escape(str(path))}: start: Field required"):
        load_cutover_window({"DENTRIX_CUTOVER_FILE": str(path)})
    path.write_text("start: 2026-11-27T18:00:00-07:00\nlength_hours: 30\npoll: 60\n", encoding="utf-8")
    with pytest.raises(CutoverConfigError, match=rf"{re.escape(str(path))}:3: poll: Extra inputs"):
        load_cutover_window({"DENTRIX_CUTOVER_FILE": str(path)})


def test_a_yaml_window_loads(tmp_path: Path) -> None:
    path = tmp_path / "cutover.yaml"
    path.write_text("start: 2026-11-27T18:00:00-07:00\nlength_hours: 24\ndeletion_policy: delete\n", encoding="utf-8")
    window = load_cutover_window({"DENTRIX_CUTOVER_FILE": str(path)})
    assert window is not None and window.start == START and window.length_hours == 24


def test_state_is_closed_before_open_during_and_closed_after() -> None:
    window = CutoverWindow(start=START, length_hours=24)
    before = window.state(START - timedelta(minutes=90))
    assert not before.open and "opens at" in before.reason and "1h 30m" in before.reason
    assert window.state(START).open
    # Time zones do not matter, only the instant.
    assert window.state((START + timedelta(hours=23, minutes=59)).astimezone(timezone.utc)).open
    end = window.state(START + timedelta(hours=24))
    assert not end.open and "closed at" in end.reason
    with pytest.raises(ValueError, match="aware"):
        window.state(datetime(2026, 11, 28))
