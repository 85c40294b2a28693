"""The DuckDB staging store: every Dentrix object as a typed, trimmed, hashed table."""

from dentrix_zoho.staging.store import StageResult, StagingStore

__all__ = ["StageResult", "StagingStore"]
