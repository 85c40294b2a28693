"""Record API or Bulk Write: the cheaper path for one batch, with the numbers that decided it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from dentrix_zoho.zoho import limits

BULK_ROWS_PER_SECOND = 500.0  # UNVERIFIED: Zoho publishes no Bulk Write throughput
BULK_CALLS_PER_JOB = 4  # upload, create, download, and the org lookup (once, counted per job to be safe)
NEAR_CREDITS = 0.10  # within 10 % the credits are "the same" and wall time decides


@dataclass(frozen=True)
class WritePathChoice:
    path: Literal["records", "bulk"]
    credits: int
    est_seconds: float
    reason: str
    records_credits: int
    records_seconds: float
    bulk_credits: int | None
    bulk_seconds: float | None


def choose_write_path(
    module: str,
    n_records: int,
    *,
    concurrency: int,
    latency_s: float,
    remaining_credits: int | None,
    poll_interval_s: float,
) -> WritePathChoice:
    """Fewer credits wins; near-equal credits, less wall time; a path that does not fit the budget loses."""
    calls = limits.write_calls(n_records)
    rec_credits = limits.write_credits(n_records)
    write_conc = max(1, min(concurrency, limits.HEAVY_CALL_CAP))
    rec_seconds = math.ceil(calls / write_conc) * latency_s

    def records(reason: str, bulk_credits: int | None = None, bulk_seconds: float | None = None):
        return WritePathChoice(
            "records", rec_credits, rec_seconds, reason, rec_credits, rec_seconds, bulk_credits, bulk_seconds
        )

    if n_records <= 0:
        return records("nothing to write")
    if module in limits.BULK_WRITE_UNSUPPORTED_MODULES:
        return records(
            f"Bulk Write does not support {module}; record API: {calls} calls, {rec_credits} credits"
        )

    jobs = limits.bulk_jobs(n_records)
    processing_s = n_records / BULK_ROWS_PER_SECOND
    polls = jobs * (1 + math.ceil(processing_s / jobs / max(poll_interval_s, 0.001)))
    bulk_credits = limits.bulk_write_credits(n_records) + jobs + polls  # + org lookup and status polls
    bulk_seconds = jobs * BULK_CALLS_PER_JOB * latency_s + processing_s + poll_interval_s * jobs
    numbers = (
        f"record API {calls} calls / {rec_credits} credits / ~{rec_seconds:.0f} s; "
        f"Bulk Write {jobs} job(s) / ~{bulk_credits} credits / ~{bulk_seconds:.0f} s"
    )

    def bulk(reason: str) -> WritePathChoice:
        return WritePathChoice(
            "bulk", bulk_credits, bulk_seconds, reason, rec_credits, rec_seconds, bulk_credits, bulk_seconds
        )

    if remaining_credits is not None and rec_credits > remaining_credits >= bulk_credits:
        return bulk(f"only Bulk Write fits the {remaining_credits} credits left: {numbers}")
    near = abs(rec_credits - bulk_credits) <= NEAR_CREDITS * max(rec_credits, bulk_credits)
    if (near and bulk_seconds < rec_seconds) or (not near and bulk_credits < rec_credits):
        return bulk(f"Bulk Write is cheaper: {numbers}")
    return records(f"record API is cheaper: {numbers}", bulk_credits, bulk_seconds)
