"""A sliding window of Zoho calls ahead of the ledger: one loop for upserts, Notes and Attachments.

Up to ``window`` batches are in flight on worker threads; as soon as one comes back
the next goes out, and only then is the finished one settled (written to the
ledger) on the caller's thread. So the calls never wait for the ledger, and only
the caller's thread touches it. Batches settle in completion order: each batch's
ledger record is self-contained, and what a kill leaves between an answer and its
settling is found again by the next run (upserts by the pre-scan, Notes and
Attachments by their send intents).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from dentrix_zoho.zoho import CreditsExhausted, RecordOutcome

B = TypeVar("B")
# What one call gives back: the per-record outcomes, and the CreditsExhausted that cut it short (or None).
Sent = tuple[list[RecordOutcome], CreditsExhausted | None]


def send_in_window(
    batches: Iterable[B],
    send: Callable[[B], Sent],
    settle: Callable[[B, Sent, float], None],
    *,
    window: int,
    name: str,
    before_send: Callable[[B], None] | None = None,
) -> None:
    """Send every batch, ``window`` at a time; ``settle(batch, sent, started)`` each on this thread.

    ``before_send`` runs on this thread just before a batch goes (the Notes' send intents).
    Credits running out stop what has not gone yet; what went is settled, then the
    ``CreditsExhausted`` is raised.
    """
    pending = iter(batches)
    stop: CreditsExhausted | None = None
    with ThreadPoolExecutor(max_workers=window, thread_name_prefix=name) as pool:
        in_flight: dict[Future[Sent], tuple[B, float]] = {}

        def refill() -> None:
            while stop is None and len(in_flight) < window:
                batch = next(pending, None)
                if batch is None:
                    return
                if before_send is not None:
                    before_send(batch)
                in_flight[pool.submit(send, batch)] = (batch, time.perf_counter())

        refill()
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            finished = [(*in_flight.pop(future), future.result()) for future in done]
            stop = stop or next((sent[1] for _, _, sent in finished if sent[1] is not None), None)
            refill()
            for batch, started, sent in finished:
                settle(batch, sent, started)
    if stop is not None:
        raise stop
