"""Cutover: change detection against the staged snapshot and the 24-48 h delta window (no Dagster here)."""

from dentrix_zoho.cutover.changes import (
    DEFAULT_DELTA_OBJECTS,
    DEFAULT_LOOKBACK,
    ChangeDetectionError,
    detect_and_apply_changes,
)
from dentrix_zoho.cutover.minimum_calls import MinimumCalls, minimum_zoho_calls
from dentrix_zoho.cutover.probe import change_fingerprint, fingerprint_changed
from dentrix_zoho.cutover.summary import DeltaSummary, ObjectDelta
from dentrix_zoho.cutover.window import CutoverConfigError, CutoverWindow, WindowState, load_cutover_window

__all__ = [
    "DEFAULT_DELTA_OBJECTS",
    "DEFAULT_LOOKBACK",
    "ChangeDetectionError",
    "CutoverConfigError",
    "CutoverWindow",
    "DeltaSummary",
    "MinimumCalls",
    "ObjectDelta",
    "WindowState",
    "change_fingerprint",
    "detect_and_apply_changes",
    "fingerprint_changed",
    "load_cutover_window",
    "minimum_zoho_calls",
]
