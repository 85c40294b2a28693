"""Reading our records back from Zoho many at a time, on worker threads within the org's concurrency.

The diff report, the reconciliation checks and the human-edit checks read records by id. One
``GET /{module}?ids=…&fields=…`` takes ``IDS_PER_GET`` ids and ``FIELDS_PER_GET`` fields, costs one
credit, and is not one of Zoho's "complex" calls (COQL is: 50 ``in`` values a call, sub-concurrency
10), so it is the cheap way to read records by id. What a list GET cannot show is read one record at a
time with ``GET /{module}/{id}``, and counted apart: subforms, multi-select and multi-user lookups
(only GET by id returns them), and rich text longer than a list shows.

The calls go out ``workers`` at a time (the client's gates still hold every call to the edition's
concurrency, shared with any other caller of the client). Counts only in :class:`ReadStats`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dentrix_zoho.progress import Progress
from dentrix_zoho.zoho import OrgLimitsUnavailable, ZohoClient, ZohoError, limits

T = TypeVar("T")


@dataclass
class ReadStats:
    """Read-back calls, by kind. ``minimum`` is what batched reads of these records must cost at least."""

    records: int = 0  # records asked for by id
    list_calls: int = 0  # GET /{module}?ids=… calls
    subform_reads: int = 0  # GET /{module}/{id}: the record has a subform or multi-lookup to compare
    long_text_reads: int = 0  # GET /{module}/{id}: a rich-text value longer than lists show
    attachment_listings: int = 0  # GET /{parent}/{id}/Attachments: the only read of attachments
    fallback_reads: int = 0  # GET /{module}/{id} because the list GET was refused (403)
    # Fewest multi-id GETs for the records read by list: per module ceil(records / IDS_PER_GET) x
    # ceil(fields / FIELDS_PER_GET). The reads by id (subform, long text) come on top, counted apart.
    minimum: int = 0
    by_module: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return (self.list_calls + self.subform_reads + self.long_text_reads + self.attachment_listings
                + self.fallback_reads)

    def add(self, module: str, **counts: int) -> None:
        mine = self.by_module.setdefault(module, {})
        for name, n in counts.items():
            setattr(self, name, getattr(self, name) + n)
            mine[name] = mine.get(name, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(self).items()} | {"calls": self.calls}


def minimum_calls(records: int, fields: int) -> int:
    """Fewest multi-id GETs that read ``records`` records' ``fields`` fields."""
    if records <= 0:
        return 0
    return math.ceil(records / limits.IDS_PER_GET) * max(1, math.ceil(fields / limits.FIELDS_PER_GET))


# The rules by which reads become calls, shared by the reads themselves and by the migration
# estimate (``plan``), which counts the same calls before anything is read.


def read_names(fields: Iterable[str]) -> list[str]:
    """The field names a multi-id GET asks for: ``id`` comes anyway and system keys (``$se_module``)
    are not fields (Zoho sends them with the lookup they qualify)."""
    return sorted({f for f in fields if f != "id" and not f.startswith("$")}) or ["id"]


def field_groups(names: Sequence[str]) -> list[list[str]]:
    """``FIELDS_PER_GET`` names a call: each group is one multi-id GET of the same ids."""
    return [list(names[s : s + limits.FIELDS_PER_GET]) for s in range(0, len(names), limits.FIELDS_PER_GET)]


def id_chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[s : s + limits.IDS_PER_GET]) for s in range(0, len(ids), limits.IDS_PER_GET)]


def whole_read_reason(expected: Mapping[str, Any], by_id_only: Collection[str],
                      rich_text: Collection[str]) -> str | None:
    """Why a record with these expected values must be read by id (``subform`` / ``long_text``), or None:
    a field only GET by id returns, or a rich-text value longer than lists show."""
    if set(expected) & set(by_id_only):
        return "subform"
    for name in set(expected) & set(rich_text):
        value = expected[name]
        if isinstance(value, str) and len(value) > limits.LIST_RICH_TEXT_CHARS:
            return "long_text"
    return None


def listing_calls(children: int) -> int:
    """Calls of one parent's listing (attachments, notes): pages of ``RECORDS_PER_PAGE``, and one call
    even when the parent has none (Zoho answers 204)."""
    return max(1, math.ceil(children / limits.RECORDS_PER_PAGE))


def run_concurrently(tasks: Sequence[Callable[[], T]], workers: int, name: str = "zoho-read",
                     progress: Progress | None = None) -> list[T]:
    """Each task's result, in the tasks' order; ``workers`` at a time. The first error is raised.

    ``progress`` advances on the caller's thread as results are collected (its sink is the caller's).
    """
    if not tasks:
        return []
    results: list[T] = []
    if workers <= 1 or len(tasks) == 1:
        for task in tasks:
            results.append(task())
            if progress is not None:
                progress.advance(1)
        return results
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks)), thread_name_prefix=name) as pool:
        futures = [pool.submit(task) for task in tasks]
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress.advance(1)
        return results


@dataclass(frozen=True)
class ReadRequest:
    """Records of one module by id: ``fields`` by multi-id GET, ids in ``whole`` (id -> reason) by id."""

    module: str
    ids: Iterable[str]
    fields: Collection[str]
    whole: Mapping[str, str] = field(default_factory=dict)


class ReadBack:
    """Batched, concurrent reads of records by id through one client; counts every call it makes."""

    def __init__(self, client: ZohoClient, *, workers: int | None = None) -> None:
        concurrency = client.config.concurrency
        self.client = client
        self.workers = max(1, min(workers or concurrency, concurrency))
        self.stats = ReadStats()
        self._lock = threading.Lock()
        self._field_types: dict[str, dict[str, dict[str, Any]]] = {}

    # -- what a list GET cannot show ---------------------------------------------------------

    def _fields(self, module: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            cached = self._field_types.get(module)
        if cached is None:
            try:
                cached = {str(f["api_name"]): f for f in self.client.fields(module) if f.get("api_name")}
            except OrgLimitsUnavailable:
                raise  # never asked: not an org without metadata
            except ZohoError:
                cached = {}  # no metadata (Notes on some orgs): nothing is known to be by-id only
            with self._lock:
                self._field_types[module] = cached
        return cached

    def prefetch_fields(self, modules: Iterable[str]) -> None:
        """Field metadata of several modules at once (one call each, concurrently)."""
        wanted = [m for m in dict.fromkeys(modules) if m not in self._field_types]
        run_concurrently([(lambda m=m: self._fields(m)) for m in wanted], self.workers, "zoho-metadata")

    def list_fields(self, module: str) -> frozenset[str]:
        """Fields of ``module`` a multi-id list GET can show (all but the by-id-only ones)."""
        return frozenset(n for n, f in self._fields(module).items() if f.get("data_type") not in limits.BY_ID_ONLY_TYPES)

    def by_id_only_fields(self, module: str) -> frozenset[str]:
        """Fields of ``module`` only GET by id returns (subforms, multi-select and multi-user lookups)."""
        return frozenset(n for n, f in self._fields(module).items() if f.get("data_type") in limits.BY_ID_ONLY_TYPES)

    def rich_text_fields(self, module: str) -> frozenset[str]:
        return frozenset(n for n, f in self._fields(module).items()
                         if f.get("data_type") == "textarea" and (f.get("textarea") or {}).get("type") == "rich_text")

    def needs_get_by_id(self, module: str, expected: Mapping[str, Any]) -> str | None:
        """Why a record with these expected values must be read whole (``subform`` / ``long_text``), or None."""
        return whole_read_reason(expected, self.by_id_only_fields(module), self.rich_text_fields(module))

    # -- reads ---------------------------------------------------------------------------------

    def read(
        self,
        module: str,
        ids: Iterable[str],
        fields: Collection[str],
        *,
        whole: Mapping[str, str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """``module``'s records by id (absent when Zoho does not hold them).

        ``fields`` are read by multi-id GETs; ids in ``whole`` (id -> ``subform`` or ``long_text``)
        are read one by one with GET by id, which returns every field.
        """
        return self.read_many([ReadRequest(module, ids, fields, whole or {})])[0][module]

    def read_many(
        self, requests: Sequence[ReadRequest], attachment_parents: Iterable[tuple[str, str]] = ()
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[tuple[str, str], list[dict[str, Any]]]]:
        """Every request's records (by module, then id) and each parent's attachment listing, all the
        calls in one pool so that no module waits for another's last call."""
        tasks: list[Callable[[], Any]] = []
        owners: list[str | tuple[str, str]] = []  # the module (or the listed parent) of each task
        for request in requests:
            module, whole = request.module, dict(request.whole)
            wanted = list(dict.fromkeys(str(i) for i in request.ids))
            listed = [i for i in wanted if i not in whole]
            names = read_names(request.fields)
            chunks, groups = id_chunks(listed), field_groups(names)
            for chunk in chunks:
                for group in groups:
                    tasks.append(lambda m=module, c=chunk, g=group: self._many(m, c, g))
                    owners.append(module)
            singles = [i for i in wanted if i in whole]
            for zoho_id in singles:
                tasks.append(lambda m=module, i=zoho_id: self._one(m, i))
                owners.append(module)
            reasons = [whole[i] for i in singles]
            self.stats.add(module, records=len(wanted), list_calls=len(chunks) * len(groups),
                           subform_reads=reasons.count("subform"), long_text_reads=reasons.count("long_text"),
                           minimum=minimum_calls(len(listed), len(names)))
        parents = list(dict.fromkeys(attachment_parents))
        for parent in parents:
            tasks.append(lambda p=parent: self.client.list_attachments(*p))
            owners.append(parent)
        if parents:
            self.stats.add("Attachments", attachment_listings=len(parents))
        records: dict[str, dict[str, dict[str, Any]]] = {r.module: {} for r in requests}
        listings: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # A line at least every 10 s of a long read-back: calls answered of those planned.
        progress = Progress("read-back", len(tasks), unit="calls")
        for owner, part in zip(owners, run_concurrently(tasks, self.workers, progress=progress), strict=True):
            if isinstance(owner, tuple):
                listings[owner] = part
                continue
            for zoho_id, record in part.items():
                records[owner].setdefault(zoho_id, {}).update(record)
        return records, listings

    def _many(self, module: str, ids: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
        try:
            return self.client.get_many(module, ids, names)
        except ZohoError as exc:
            # A list the user may not read (GET /Notes is admin-only): the same records one by one.
            if exc.status != 403:
                raise
        found: dict[str, dict[str, Any]] = {}
        for zoho_id in ids:
            found.update(self._one(module, zoho_id))
        with self._lock:
            self.stats.fallback_reads += len(ids)
        return found

    def _one(self, module: str, zoho_id: str) -> dict[str, dict[str, Any]]:
        record = self.client.get(module, zoho_id)
        return {} if record is None else {zoho_id: record}

    def attachments(self, parents: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Each parent's attachment listing (Zoho reads attachments only through their parent)."""
        return self.read_many([], parents)[1]


class ReadBatches:
    """How records handed in one by one become calls, as :class:`ReadStream` sends them: each module's
    ids ``IDS_PER_GET`` at a time once that many are waiting (with the union of the fields those records
    compare, in ``FIELDS_PER_GET`` groups), a record that must be read whole by id at once, each parent's
    listing once. Subclasses say what a call does; every call is counted in ``stats``."""

    def __init__(self, stats: ReadStats) -> None:
        self.stats = stats
        self._waiting: dict[str, list[tuple[str, Collection[str]]]] = {}
        self._seen: set[tuple[str, str]] = set()
        self._parents: set[tuple[str, str]] = set()
        self._fields: dict[str, set[str]] = {}
        self._listed: dict[str, int] = {}

    def add(self, module: str, zoho_id: str, fields: Collection[str], whole: str | None = None) -> None:
        """Read ``zoho_id``'s ``fields`` (or, with ``whole`` = the reason, the whole record by id)."""
        key = (module, str(zoho_id))
        if key in self._seen:
            return
        self._seen.add(key)
        if whole is not None:
            self._one(module, str(zoho_id))
            self.stats.add(module, records=1, subform_reads=int(whole == "subform"),
                           long_text_reads=int(whole == "long_text"))
            return
        waiting = self._waiting.setdefault(module, [])
        waiting.append((str(zoho_id), fields))
        if len(waiting) >= limits.IDS_PER_GET:
            self._send(module)

    def add_parent(self, parent: tuple[str, str]) -> None:
        if parent not in self._parents:
            self._parents.add(parent)
            self._listing(parent)
            self.stats.add("Attachments", attachment_listings=1)

    def _send(self, module: str) -> None:
        chunk, self._waiting[module] = self._waiting[module], []
        ids = [zoho_id for zoho_id, _ in chunk]
        names = read_names(f for _, fields in chunk for f in fields)
        self._fields.setdefault(module, set()).update(names)
        groups = field_groups(names)
        for group in groups:
            self._many(module, ids, group)
        self._listed[module] = self._listed.get(module, 0) + len(ids)
        self.stats.add(module, records=len(ids), list_calls=len(groups))

    def _flush(self) -> None:
        for module in [m for m, waiting in self._waiting.items() if waiting]:
            self._send(module)

    def _count_minimum(self) -> None:
        for module, n in self._listed.items():
            self.stats.add(module, minimum=minimum_calls(n, len(self._fields.get(module, ()))))

    # what a call does
    def _one(self, module: str, zoho_id: str) -> None:
        raise NotImplementedError

    def _many(self, module: str, ids: list[str], names: list[str]) -> None:
        raise NotImplementedError

    def _listing(self, parent: tuple[str, str]) -> None:
        raise NotImplementedError


class ReadTally(ReadBatches):
    """The calls :class:`ReadStream` would make for the same records in the same order, made by no one:
    the migration estimate counts the diff report's read-back with it before anything is in Zoho."""

    def __init__(self) -> None:
        super().__init__(ReadStats())

    def _one(self, module: str, zoho_id: str) -> None:
        pass

    def _many(self, module: str, ids: list[str], names: list[str]) -> None:
        pass

    def _listing(self, parent: tuple[str, str]) -> None:
        pass

    def finish(self) -> ReadStats:
        self._flush()
        self._count_minimum()
        return self.stats


class ReadStream(ReadBatches):
    """Reads handed in record by record while the caller is still working out the rest (the batching of
    :class:`ReadBatches`), sent on ``reader``'s workers as soon as a call is full. ``finish`` sends what is
    left and returns what :meth:`ReadBack.read_many` would. Only the caller's thread calls ``add``/``finish``.
    """

    def __init__(self, reader: ReadBack) -> None:
        super().__init__(reader.stats)
        self.reader = reader
        self._pool = ThreadPoolExecutor(max_workers=reader.workers, thread_name_prefix="zoho-read")
        self._futures: list[tuple[str | tuple[str, str], Future[Any]]] = []

    def _one(self, module: str, zoho_id: str) -> None:
        self._futures.append((module, self._pool.submit(self.reader._one, module, zoho_id)))

    def _many(self, module: str, ids: list[str], names: list[str]) -> None:
        self._futures.append((module, self._pool.submit(self.reader._many, module, ids, names)))

    def _listing(self, parent: tuple[str, str]) -> None:
        self._futures.append((parent, self._pool.submit(self.reader.client.list_attachments, *parent)))

    def close(self) -> None:
        """Give up: wait for what is in flight, send nothing more."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def finish(self) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[tuple[str, str], list[dict[str, Any]]]]:
        self._flush()
        records: dict[str, dict[str, dict[str, Any]]] = {}
        listings: dict[tuple[str, str], list[dict[str, Any]]] = {}
        progress = Progress("read-back", len(self._futures), unit="calls")
        try:
            for owner, future in self._futures:
                part = future.result()
                progress.advance(1)
                if isinstance(owner, tuple):
                    listings[owner] = part
                    continue
                found = records.setdefault(owner, {})
                for zoho_id, record in part.items():
                    found.setdefault(zoho_id, {}).update(record)
        finally:
            self.close()
        self._count_minimum()
        return records, listings
