"""Reading the objects of one staging run: readers work ahead of the one DuckDB writer.

A staging run reads many objects, most of them small. Reading them one after the
other, each started only once DuckDB has committed the one before, leaves the
source idle while DuckDB works and DuckDB idle while the source is read; per
object that gap (commit, swap, the next statement's start) costs more than the
whole fetch of a few thousand rows. So the run's reads are planned up front as
tasks (a whole object, or a key-range slice of a large table keyed by one
integer) and handed to readers that keep going while the writer loads: the
writer takes the objects in order, the readers are already on the next ones.

Readers are processes (``DENTRIX_EXTRACT_WORKERS``, default 2), each with its own
source connection for the whole run. Why processes: turning driver row tuples
into Arrow costs about half as much as the fetch itself, and both hold the GIL,
so one Python process can never stage faster than about two thirds of its raw
fetch rate however well DuckDB overlaps. A reader conforms each chunk (trimmed,
timestamps typed: ``chunks.conform``) and sends it as an Arrow IPC stream through a
pipe; the parent decodes it without copying and stays the only DuckDB writer, so
the staged rows and hashes are exactly those of one connection. With one worker
there are no processes: a thread reads over the caller's own connection.

Order and memory: tasks are handed out in the writer's order from one queue, so
a reader takes a task of the next object only when every task of this one is
taken. What arrives waits in a per-object buffer in the parent (a thread per pipe
fills it) within one read-ahead budget (``READ_AHEAD_BYTES``) over all objects;
a chunk of the object being loaded is always let in when its buffer is empty, so
a reader blocked on the budget never holds what the writer waits for. Memory is
bounded by the budget and the chunk size, whatever the tables' sizes, and the run
cannot deadlock.

Errors: a task that fails fails its object only (the writer rolls that object
back and goes on); a reader that cannot connect or dies fails every object not
yet loaded. Messages are the operator-worded ``SourceError`` texts, never the
password. The connection string travels to reader processes as a process
argument in memory, never on a command line.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import re
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import pyarrow as pa

from dentrix_zoho.source.catalog import CatalogObject
from dentrix_zoho.source.connection import DentrixConnection, SourceError, open_source
from dentrix_zoho.source.extract import (
    ColumnPlan,
    KeySlice,
    integer_key,
    iter_query,
    key_bounds,
    plan_columns,
    select_statement,
    slice_statement,
    split_key_range,
)
from dentrix_zoho.staging.chunks import ArrowChunker, chunk_schema, conform

log = logging.getLogger(__name__)

WORKERS_ENV = "DENTRIX_EXTRACT_WORKERS"
DEFAULT_WORKERS = 2
# A table keyed by one integer is split into key-range slices, so that every reader can
# work on it, once its key span reaches this; below, a whole object is one reader's task.
PARALLEL_MIN_ROWS = 50_000
SLICES_PER_WORKER = 4
# Measured on fullproclog: 5,000-row chunks stage about 8 % faster than 10,000 and 15 % faster
# than 20,000 (a chunk that stays in the processor's cache converts faster, and DuckDB starts
# sooner); the caller's chunk_rows remains the upper bound.
WORKER_CHUNK_ROWS = 5_000
# Arrow bytes read ahead of the writer, over all objects: enough for the readers to
# stay busy on the next objects while DuckDB loads and commits one (a reader that
# waits for room is a reader not reading), and the bound on the run's memory
# whatever the tables' sizes.
READ_AHEAD_BYTES = 64 << 20

_BATCH, _TASK_DONE, _ERROR, _FATAL, _DONE = b"B", b"T", b"E", b"F", b"D"
_INDEX = struct.Struct(">I")


def extract_workers(environ: dict[str, str] | None = None) -> int:
    """Reader processes per staging run, from ``DENTRIX_EXTRACT_WORKERS`` (1 = one connection, no processes).

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


@dataclass(frozen=True)
class ObjectRead:
    """How one object is read in this run: its SELECT list, and whole or in key-range slices."""

    obj: CatalogObject
    plan: ColumnPlan
    key: str | None = None
    slices: tuple[KeySlice, ...] = ()

    @property
    def parts(self) -> int:
        return len(self.slices) or 1


def plan_read(source: DentrixConnection, obj: CatalogObject, *, workers: int) -> ObjectRead:
    """Probe ``obj``'s columns and decide whether it is worth slicing; raises ``SourceError``."""
    plan = plan_columns(source, obj)
    key = integer_key(obj) if workers > 1 else None
    bounds = key_bounds(source, obj, key) if key else None
    if key and bounds and bounds[1] - bounds[0] + 1 >= PARALLEL_MIN_ROWS:
        return ObjectRead(obj, plan, key, tuple(split_key_range(bounds[0], bounds[1], workers * SLICES_PER_WORKER)))
    return ObjectRead(obj, plan)


class _Stopped(Exception):
    """The run was closed while a reader was still sending."""


Emit = Callable[[bytes, int, "pa.Table | str | None"], None]


def _read_tasks(
    conn: DentrixConnection,
    reads: Sequence[ObjectRead],
    next_task: Callable[[], tuple[int, int] | None],
    emit: Emit,
    chunk_rows: int,
) -> None:
    """A reader's loop: take ``(object index, part)`` tasks until None, emit each chunk, then the task's end."""
    while (task := next_task()) is not None:
        index, part = task
        read = reads[index]
        try:
            if read.key is None:
                sql, params = select_statement(conn, read.obj, read.plan, since=False), ()
            else:
                sql, params = slice_statement(conn, read.obj, read.plan, read.key, read.slices[part])
            to_arrow = ArrowChunker(read.obj.columns)
            schema = chunk_schema(read.obj)
            what = f"reading {conn.qualified(read.obj.name)}"
            for rows in iter_query(conn, sql, params, chunk_rows=chunk_rows, what=what):
                emit(_BATCH, index, conform(to_arrow(rows), read.obj, schema))
        except _Stopped:
            raise
        except Exception as exc:  # noqa: BLE001 - this object fails; the reader goes on with the next
            emit(_ERROR, index, str(object_error(read.obj.name, exc)))
            continue
        emit(_TASK_DONE, index, None)


_PROGRAMMING_ERRORS = (AttributeError, NameError, ImportError, TypeError)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def describe_error(exc: BaseException) -> str:
    """An error as one line for the operator: ``SourceError`` as worded, any other with quoted values blanked.

    Driver, Arrow and DuckDB errors quote the value they could not convert ("Failed to
    parse string: '2026-13-01'"), and the value may be a patient's.
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, SourceError):
        return text
    if isinstance(exc, _PROGRAMMING_ERRORS):
        return f"{exc.__class__.__name__}: {first}"  # names in our code, not values
    return f"{exc.__class__.__name__}: " + _QUOTED.sub("'…'", first)


def object_error(object_name: str, exc: Exception) -> SourceError:
    """Why one object could not be staged: a ``SourceError`` as worded, anything else named, without values."""
    if isinstance(exc, SourceError):
        return exc
    return SourceError(f"staging {object_name} failed: {describe_error(exc)}")


def _start_method() -> str:
    # fork starts a reader in milliseconds (everything is imported already); the child
    # touches only its own source connection and Arrow, then leaves with os._exit.
    # Where fork does not exist (Windows) spawn re-imports, which costs a few tenths.
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _reader_process(
    source: str, schema: str, reads: Sequence[ObjectRead], tasks: Any, out: Connection, chunk_rows: int
) -> None:
    """Reader process: its own connection, tasks from the shared queue, chunks as Arrow IPC through ``out``."""
    # A forked reader shares its parent's memory page by page until it writes to a page;
    # the cyclic collector walking the parent's objects would write to (copy) all of them,
    # and the row tuples it keeps being woken for hold no cycles.
    gc.disable()

    def emit(kind: bytes, index: int, body: pa.Table | str | None) -> None:
        if isinstance(body, pa.Table):
            sink = pa.BufferOutputStream()
            sink.write(kind + _INDEX.pack(index))
            with pa.ipc.new_stream(sink, body.schema) as writer:
                writer.write_table(body)
            out.send_bytes(sink.getvalue())
        else:
            out.send_bytes(kind + _INDEX.pack(index) + (body or "").encode("utf-8", "replace"))

    try:
        # A reader that cannot connect, or dies, fails every object not yet loaded.
        with open_source(source, schema) as conn:
            _read_tasks(conn, reads, tasks.get, emit, chunk_rows)
        emit(_DONE, 0, None)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        try:
            emit(_FATAL, 0, describe_error(exc))
        except OSError:
            pass
    finally:
        out.close()


_END_OF_TASK = object()


class StagingReads:
    """The chunks of a run's objects, read ahead by ``workers`` readers; take them with ``chunks(i)`` in order.

    Readers start when this is made, from the caller's thread and before DuckDB runs
    a statement (a fork from inside a DuckDB callback would copy a process in the
    middle of a query); ``close`` stops them.
    """

    def __init__(
        self,
        source: DentrixConnection,
        reads: Sequence[ObjectRead],
        *,
        workers: int,
        chunk_rows: int,
    ) -> None:
        self.reads = list(reads)
        self.workers = workers
        # Everything read and not yet loaded, per object, under one lock.
        self.buffers: list[deque[Any]] = [deque() for _ in self.reads]
        self.buffered_bytes = 0
        self.current = 0  # the object the writer is loading
        self.changed = threading.Condition()
        self.discarded = [False] * len(self.reads)
        self.stop = threading.Event()
        self.fatal: SourceError | None = None
        self.processes: list[Any] = []
        self.threads: list[threading.Thread] = []
        self.closed = False
        tasks = [(index, part) for index, read in enumerate(self.reads) for part in range(read.parts)]
        try:
            if workers == 1:
                self._start_thread(source, tasks, chunk_rows)
            else:
                self._start_processes(source, tasks, min(chunk_rows, WORKER_CHUNK_ROWS))
        except BaseException:
            self.close()
            raise

    # --- readers ----------------------------------------------------------------------------

    def _start_thread(self, source: DentrixConnection, tasks: list[tuple[int, int]], chunk_rows: int) -> None:
        pending = iter(tasks)

        def emit(kind: bytes, index: int, body: pa.Table | str | None) -> None:
            self._route(kind, index, body)

        def run() -> None:
            try:
                _read_tasks(source, self.reads, lambda: next(pending, None), emit, chunk_rows)
            except _Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - every object still to load fails with it
                self._fail(describe_error(exc))

        thread = threading.Thread(target=run, name="extract", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _start_processes(self, source: DentrixConnection, tasks: list[tuple[int, int]], chunk_rows: int) -> None:
        ctx = multiprocessing.get_context(_start_method())
        task_queue = ctx.SimpleQueue()
        for task in tasks:
            task_queue.put(task)
        for _ in range(self.workers):
            task_queue.put(None)
        for number in range(self.workers):
            parent_end, child_end = ctx.Pipe(duplex=False)
            process = ctx.Process(
                target=_reader_process,
                args=(source.locator.raw, source.schema, self.reads, task_queue, child_end, chunk_rows),
                name=f"extract-{number}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self.processes.append(process)
            receiver = threading.Thread(
                target=self._receive, args=(parent_end, process), name=f"receive-{number}", daemon=True
            )
            receiver.start()
            self.threads.append(receiver)

    def _receive(self, pipe: Connection, process: Any) -> None:
        """Parent thread per reader process: decode its messages into the objects' queues."""
        try:
            while not self.stop.is_set():
                try:
                    message = pipe.recv_bytes()
                except (EOFError, OSError):
                    process.join(timeout=5)
                    self._fail(f"an extract reader process stopped unexpectedly (exit code {process.exitcode})")
                    return
                kind, (index,) = message[:1], _INDEX.unpack_from(message, 1)
                body = memoryview(message)[1 + _INDEX.size:]
                if kind == _BATCH:
                    self._route(kind, index, pa.ipc.open_stream(pa.py_buffer(body)).read_all())
                elif kind in (_TASK_DONE, _ERROR):
                    self._route(kind, index, bytes(body).decode("utf-8", "replace"))
                elif kind == _FATAL:
                    self._fail(bytes(body).decode("utf-8", "replace"))
                    return
                else:
                    return
        except _Stopped:
            pass
        finally:
            pipe.close()

    def _route(self, kind: bytes, index: int, body: pa.Table | str | None) -> None:
        """Buffer what a reader sent for object ``index``, waiting while the read-ahead budget is spent.

        The object being loaded is always let in when its buffer is empty, so the
        writer never waits on a budget that later objects fill.
        """
        item: Any = body if kind == _BATCH else _END_OF_TASK if kind == _TASK_DONE else SourceError(str(body))
        size = body.nbytes if isinstance(body, pa.Table) else 0
        with self.changed:
            while not self.discarded[index]:
                if self.stop.is_set():
                    raise _Stopped
                fits = self.buffered_bytes + size <= READ_AHEAD_BYTES
                if fits or (index <= self.current and not self.buffers[index]):
                    self.buffers[index].append(item)
                    self.buffered_bytes += size
                    self.changed.notify_all()
                    return
                self.changed.wait(timeout=0.5)

    def _fail(self, message: str) -> None:
        with self.changed:
            if self.fatal is None:
                self.fatal = SourceError(message)
            self.changed.notify_all()

    # --- the writer's side ------------------------------------------------------------------

    def _take(self, index: int) -> Any:
        with self.changed:
            if self.current != index:
                self.current = index
                self.changed.notify_all()
            buffer = self.buffers[index]
            while not buffer:
                if self.fatal is not None:
                    raise self.fatal
                self.changed.wait(timeout=0.5)
            item = buffer.popleft()
            if isinstance(item, pa.Table):
                self.buffered_bytes -= item.nbytes
                self.changed.notify_all()
            return item

    def chunks(self, index: int) -> Iterator[pa.Table]:
        """Every chunk of object ``index``; raises its ``SourceError`` if a reader failed on it."""
        remaining = self.reads[index].parts
        try:
            while remaining:
                item = self._take(index)
                if item is _END_OF_TASK:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            if remaining:
                self.discard(index)

    def discard(self, index: int) -> None:
        """The writer gave up on object ``index``: drop whatever still arrives for it."""
        with self.changed:
            self.discarded[index] = True
            buffer = self.buffers[index]
            self.buffered_bytes -= sum(item.nbytes for item in buffer if isinstance(item, pa.Table))
            buffer.clear()
            self.changed.notify_all()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop.set()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        with self.changed:
            self.changed.notify_all()  # a receiver waiting for room sees the stop
        for thread in self.threads:
            thread.join()
        for process in self.processes:
            process.join()
