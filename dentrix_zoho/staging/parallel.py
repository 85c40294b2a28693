"""Range-partitioned extraction: several reader processes, one DuckDB writer.

Why processes: turning driver row tuples into Arrow costs about half as much as
the fetch itself, and both need the GIL, so one Python process can never stage
faster than about two thirds of its raw fetch rate, however well DuckDB overlaps.
Each worker process opens its own connection, reads key-range slices of the
table with the same plain ANSI ``SELECT`` (``WHERE <key> >= ? AND <key> < ?``),
converts and conforms the rows to the object's raw Arrow schema, and sends each
chunk as an Arrow IPC stream through a pipe. The parent stays the only DuckDB
writer: it decodes the streams (no copy) and feeds them to ``load_chunks``, so
typing, trimming and hashing are exactly those of the single-connection path.

Slices are handed out from a shared queue, so a worker that finishes early takes
the next one; there are a few more slices than workers. Rows arrive in no fixed
order (tables have no order); every key lands in exactly one slice.

Memory stays bounded: a worker holds one chunk (and part of another in its pipe),
the parent's queue ``2 * workers`` chunks. A thread per pipe drains it into that
queue so the workers keep reading while DuckDB digests a chunk; reading the pipes
directly from DuckDB's side was measured slower (a pipe holds less than a chunk).

Only tables keyed by a single integer column are sliced (views on c-treeACE are
joins whose range predicate may not reach an index), and only when the key span
is at least ``PARALLEL_MIN_ROWS``: below that, starting processes and connections
costs more than it saves.

The source's connection string travels to the workers as a process argument in
memory (never on a command line), and a worker's error comes back as the same
operator-worded ``SourceError`` text the single path raises.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

import pyarrow as pa

from dentrix_zoho.source.catalog import CatalogObject
from dentrix_zoho.source.connection import DentrixConnection, SourceError, open_source
from dentrix_zoho.source.extract import ColumnPlan, KeySlice, iter_query, slice_statement

log = logging.getLogger(__name__)

WORKERS_ENV = "DENTRIX_EXTRACT_WORKERS"
DEFAULT_WORKERS = 2
PARALLEL_MIN_ROWS = 50_000
SLICES_PER_WORKER = 4
# Measured on fullproclog: 5,000-row chunks stage about 8 % faster than 10,000 and 15 % faster
# than 20,000 (a chunk that stays in the processor's cache converts faster, and DuckDB starts
# sooner); the caller's chunk_rows remains the upper bound.
WORKER_CHUNK_ROWS = 5_000

_BATCH, _ERROR, _DONE = b"B", b"E", b"D"


def extract_workers(environ: dict[str, str] | None = None) -> int:
    """Reader processes per large table, from ``DENTRIX_EXTRACT_WORKERS`` (1 = one connection, no processes).

    Two by default: on the SQLite stand-in and on a c-treeACE server two readers
    roughly double the rate at which rows reach DuckDB, while a practice server that
    also serves a dozen workstations hardly notices a second reader after hours.
    """
    env = os.environ if environ is None else environ
    text = (env.get(WORKERS_ENV) or "").strip()
    if not text:
        return DEFAULT_WORKERS
    try:
        value = int(text)
    except ValueError:
        raise SourceError(f"{WORKERS_ENV} must be a whole number of reader processes, got {text!r}") from None
    if not 1 <= value <= 16:
        raise SourceError(f"{WORKERS_ENV} must be between 1 and 16, got {value}")
    return value


def _start_method() -> str:
    # fork starts a reader in milliseconds (everything is imported already); the child
    # touches only its own source connection and Arrow, then leaves with os._exit.
    # Where fork does not exist (Windows) spawn re-imports, which costs a few tenths.
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _read_slices(
    source: str,
    schema: str,
    obj: CatalogObject,
    plan: ColumnPlan,
    key: str,
    tasks: Any,
    out: Connection,
    chunk_rows: int,
) -> None:
    """Worker process: read slices from ``tasks`` until a None, send each chunk as Arrow IPC bytes."""
    from dentrix_zoho.staging.store import ArrowChunker, conform, raw_schema

    # A forked worker shares its parent's memory page by page until it writes to a page;
    # the cyclic collector walking the parent's objects would write to (copy) all of them,
    # and the row tuples it keeps being woken for hold no cycles.
    gc.disable()
    try:
        to_arrow = ArrowChunker(obj.columns)
        arrow_schema = raw_schema(obj)
        with open_source(source, schema) as conn:
            while (key_slice := tasks.get()) is not None:
                sql, params = slice_statement(conn, obj, plan, key, key_slice)
                what = f"reading {conn.qualified(obj.name)}"
                for rows in iter_query(conn, sql, params, chunk_rows=chunk_rows, what=what):
                    table = conform(to_arrow(rows), obj.columns, arrow_schema)
                    sink = pa.BufferOutputStream()
                    sink.write(_BATCH)
                    with pa.ipc.new_stream(sink, arrow_schema) as writer:
                        writer.write_table(table)
                    out.send_bytes(sink.getvalue())
        out.send_bytes(_DONE)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        message = str(exc) if isinstance(exc, SourceError) else f"{exc.__class__.__name__}: {exc}"
        try:
            out.send_bytes(_ERROR + message.encode("utf-8", "replace"))
        except OSError:
            pass
    finally:
        out.close()


class ParallelRead:
    """Arrow tables of ``obj`` (conformed to its raw schema) read by ``workers`` processes, in arrival order.

    The processes start when this is made, from the caller's thread and before DuckDB
    runs (a fork from inside a DuckDB callback would copy a process in the middle of
    a query); ``close`` stops them, and iterating to the end closes too.
    """

    def __init__(
        self,
        source: DentrixConnection,
        obj: CatalogObject,
        plan: ColumnPlan,
        key: str,
        slices: Sequence[KeySlice],
        *,
        workers: int,
        chunk_rows: int,
    ) -> None:
        ctx = multiprocessing.get_context(_start_method())
        tasks = ctx.SimpleQueue()
        for key_slice in slices:
            tasks.put(key_slice)
        for _ in range(workers):
            tasks.put(None)
        self.workers = workers
        self.arrived: queue.Queue[pa.Table | BaseException | None] = queue.Queue(maxsize=2 * workers)
        self.stop = threading.Event()
        self.processes: list[Any] = []
        self.receivers: list[threading.Thread] = []
        self.closed = False
        try:
            for number in range(workers):
                parent_end, child_end = ctx.Pipe(duplex=False)
                process = ctx.Process(
                    target=_read_slices,
                    args=(source.locator.raw, source.schema, obj, plan, key, tasks, child_end,
                          min(chunk_rows, WORKER_CHUNK_ROWS)),
                    name=f"extract-{obj.name}-{number}",
                    daemon=True,
                )
                process.start()
                child_end.close()
                self.processes.append(process)
                receiver = threading.Thread(
                    target=_receive,
                    args=(parent_end, process, self.arrived, self.stop),
                    name=f"receive-{obj.name}-{number}",
                    daemon=True,
                )
                receiver.start()
                self.receivers.append(receiver)
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[pa.Table]:
        try:
            finished = 0
            while finished < self.workers:
                item = self.arrived.get()
                if item is None:
                    finished += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop.set()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        while any(r.is_alive() for r in self.receivers):
            try:
                self.arrived.get(timeout=0.05)  # unblock a receiver waiting on a full queue
            except queue.Empty:
                pass
        for process in self.processes:
            process.join()


def _receive(pipe: Connection, process: Any, arrived: queue.Queue, stop: threading.Event) -> None:
    """Parent thread per worker: decode its IPC messages into the shared queue (None when it is done)."""

    def put(item: pa.Table | BaseException | None) -> None:
        while not stop.is_set():
            try:
                arrived.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    try:
        while not stop.is_set():
            try:
                message = pipe.recv_bytes()
            except (EOFError, OSError):
                process.join(timeout=5)
                put(SourceError(f"an extract worker stopped unexpectedly (exit code {process.exitcode})"))
                return
            kind, body = message[:1], memoryview(message)[1:]
            if kind == _BATCH:
                put(pa.ipc.open_stream(pa.py_buffer(body)).read_all())
            elif kind == _ERROR:
                put(SourceError(bytes(body).decode("utf-8", "replace")))
                return
            else:
                put(None)
                return
    finally:
        pipe.close()

