"""Phase 4's delta window in Dagster: the cutover sensor and its schedule alternative (thin)."""

from dentrix_zoho.defs.cutover.schedules import build_cutover_schedule
from dentrix_zoho.defs.cutover.sensors import build_cutover_sensor

__all__ = ["build_cutover_schedule", "build_cutover_sensor"]
