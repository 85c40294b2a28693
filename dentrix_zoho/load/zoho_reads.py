"""Reads the loader needs beyond the client's public calls: a parent's notes, and keyed pre-scans.

``ZohoClient`` has ``list_attachments`` but no per-parent notes listing; this goes through the
client's own transport (budget, retries, events) with the same path template Zoho documents.

Two reads choose their path from what the ledger knows, and the migration estimate (``plan``) asks
the same functions, so what it counts is what runs: the pre-scan for records we have no crosswalk
row for (:func:`pre_scan_path`: COQL ``in`` lookups, or one COQL read of this office's records),
and reconciliation's count of Notes (:func:`choose_notes_read`: the org's notes listing, or one
listing per parent of ours). Neither reads the whole org's module, so an office's cost does not grow
with the offices loaded before it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dentrix_zoho.load.readback import ReadBack, listing_calls, minimum_calls
from dentrix_zoho.zoho import OrgLimitsUnavailable, ZohoClient, ZohoError, limits
from dentrix_zoho.zoho.transport import CallSpec, body_json

V8 = "/crm/v8"
STAMP_FIELDS = ("Modified_Time", "Modified_By")
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Above this many records without a crosswalk row the pre-scan never uses COQL `in` lookups (50 ids
# a heavy call, one call at a time); at or below it, the cheaper of the two paths (pre_scan_path).
COQL_LOOKUP_MAX = 1_000
# Notes in the org the ledger does not know (staff's own, other integrations), as a share of the
# notes it does know: an assumption that only weighs the choice of read, never a count.
NOTES_NOT_OURS_SHARE = 0.10


def list_parent_notes(client: ZohoClient, module: str, record_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.transport.call(CallSpec(
            method="GET",
            path_template=f"{V8}/{{module}}/{{record_id}}/Notes",
            path_params={"module": module, "record_id": str(record_id)},
            module="Notes",
            params={"fields": "Note_Title,Note_Content,Parent_Id", "page": page, "per_page": limits.RECORDS_PER_PAGE},
        ))
        if response.status_code == 204:
            return rows
        payload = body_json(response)
        if response.status_code >= 300:
            raise ZohoError(f"GET {V8}/{{module}}/{{record_id}}/Notes: HTTP {response.status_code}",
                            status=response.status_code, code=payload.get("code"))
        rows += payload.get("data") or []
        if not (payload.get("info") or {}).get("more_records"):
            return rows
        page += 1


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def existing_by_key(
    client: ZohoClient, module: str, key_field: str, extra_fields: Iterable[str], values: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Records whose ``key_field`` is one of ``values``, by COQL ``in`` (50 a call)."""
    fields = [key_field, *extra_fields]
    if not all(_API_NAME.match(f) for f in [module, *fields]):
        raise ValueError("module and fields must be API names")
    wanted = list(dict.fromkeys(values))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), limits.COQL_IN_VALUES_MAX):
        chunk = wanted[start : start + limits.COQL_IN_VALUES_MAX]
        query = (f"select id, {', '.join(fields)} from {module} where {key_field} in "
                 f"({', '.join(_quote(v) for v in chunk)}) limit {min(len(chunk) * 2, limits.COQL_LIMIT_MAX)}")
        for row in client.coql(query):
            if row.get(key_field) is not None:
                found[str(row[key_field])] = row
    return found


def lookup_calls(unknown: int) -> int:
    """Calls of :func:`existing_by_key` for ``unknown`` values."""
    return math.ceil(unknown / limits.COQL_IN_VALUES_MAX) if unknown > 0 else 0


def lookup_credits(unknown: int) -> int:
    """Credits of :func:`existing_by_key`: it asks for twice the values it looks for (``limit 2n``)."""
    full, rest = divmod(max(unknown, 0), limits.COQL_IN_VALUES_MAX)
    return (full * limits.coql_credits(2 * limits.COQL_IN_VALUES_MAX)
            + (limits.coql_credits(2 * rest) if rest else 0))


def office_scan_calls(records: int, page: int = limits.COQL_LIMIT_MAX) -> int:
    """Calls of :func:`scan_office` when Zoho holds ``records`` of the office: pages until one comes back
    short, so one call even for none (and one more when the last page is exactly full)."""
    return max(records, 0) // page + 1


def office_scan_credits(records: int, page: int = limits.COQL_LIMIT_MAX) -> int:
    return office_scan_calls(records, page) * limits.coql_credits(page)


PreScanPath = Literal["lookup", "office_scan"]


def pre_scan_path(unknown: int, office_records: Callable[[], int]) -> PreScanPath:
    """How the pre-scan looks for ``unknown`` records without a crosswalk row: COQL ``in`` lookups, or
    one read of every record of this office in the module, whichever costs fewer credits (then calls).

    ``office_records``: this office's live crosswalk rows of the module (asked only when the answer
    matters). The scan is weighed as if every unknown record were in Zoho too, the most it can read.
    Both paths find the same records, so the choice changes only the cost.
    """
    if unknown <= 0:
        return "lookup"
    if unknown > COQL_LOOKUP_MAX:
        return "office_scan"
    lookup = (lookup_credits(unknown), lookup_calls(unknown))
    if lookup <= (office_scan_credits(0), office_scan_calls(0)):
        return "lookup"  # cheaper than the smallest scan: no need to count the office's records
    most = office_records() + unknown
    return "lookup" if lookup <= (office_scan_credits(most), office_scan_calls(most)) else "office_scan"


def _after(new: str, old: str) -> bool:
    if new.isdigit() and old.isdigit():
        return int(new) > int(old)
    return new > old


def scan_office(
    client: ZohoClient, module: str, key_field: str, extra_fields: Iterable[str], office_id: str, *,
    page: int = limits.COQL_LIMIT_MAX, offset_reach: int = limits.COQL_OFFSET_REACH,
) -> dict[str, dict[str, Any]]:
    """Every record of the module whose ``key_field`` starts with ``<office_id>:``, keyed by it.

    COQL ``like '<office>:%'`` in id order, ``page`` a call (LIMIT/OFFSET); past Zoho's offset reach the
    next pages start after the last id read (``id > last``; UNVERIFIED against Zoho: the emulator
    compares ids as quoted strings of one length). ``like`` is matched case-insensitively by the
    emulator, and Zoho does not document whether ``_`` (allowed in office ids) is a wildcard, so the
    pattern is left unescaped (it can only match more) and rows are kept by the exact prefix here.
    """
    fields = list(dict.fromkeys([key_field, *extra_fields]))
    if not all(_API_NAME.match(f) for f in [module, *fields]):
        raise ValueError("module and fields must be API names")
    if not 1 <= page <= limits.COQL_LIMIT_MAX or offset_reach < page:
        raise ValueError(f"page must be 1-{limits.COQL_LIMIT_MAX} and offset_reach at least page")
    prefix = f"{office_id}:"
    columns = ", ".join(["id", *(f for f in fields if f != "id")])
    found: dict[str, dict[str, Any]] = {}
    last: str | None = None
    while True:
        where = f"{key_field} like {_quote(prefix + '%')}"
        if last is not None:
            where = f"({where} and id > {_quote(last)})"
        offset = 0
        while True:
            rows = client.coql(f"select {columns} from {module} where {where} order by id asc "
                               f"limit {page} offset {offset}")
            for row in rows:
                key = row.get(key_field)
                if isinstance(key, str) and key.startswith(prefix):
                    found[key] = row
            if len(rows) < page:
                return found
            offset += page
            if offset + page > offset_reach:
                break
        newest = str(rows[-1].get("id") or "")
        if last is not None and not _after(newest, last):
            # Zoho did not honour ``id > last``: paging on would read the same records for ever.
            raise ZohoError(f"COQL {module}: paging by id did not move past the last id read")
        last = newest


def scan_by_key(client: ZohoClient, module: str, key_field: str, extra_fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every record of the module that carries ``key_field``, keyed by it (the whole org's module: only
    where COQL is refused)."""
    found: dict[str, dict[str, Any]] = {}
    for row in client.iter_records(module, [key_field, *extra_fields]):
        if row.get(key_field):
            found[str(row[key_field])] = row
    return found


def current_stamps(client: ZohoClient, module: str, zoho_ids: Iterable[str], *,
                   reader: ReadBack | None = None) -> dict[str, dict[str, Any]]:
    """``Modified_Time`` and ``Modified_By`` of records by id, for the human-edit checks.

    Multi-id GETs (``IDS_PER_GET`` ids a call, one credit, not a "complex" call) on worker threads,
    rather than COQL ``id in (...)``: 50 ids a call and held to the sub-concurrency of 10.
    """
    if not _API_NAME.match(module):
        raise ValueError("module must be an API name")
    wanted = [i for i in dict.fromkeys(str(z) for z in zoho_ids) if i.isdigit()]
    if not wanted:
        return {}
    return (reader or ReadBack(client)).read(module, wanted, STAMP_FIELDS)


@dataclass(frozen=True)
class PreImageFields:
    """How the pre-images of a module's records are read: ``names`` by multi-id GET, or ``whole`` (one
    GET by id a record) where a list cannot show what the restore must put back."""

    names: tuple[str, ...]
    whole: bool
    cut_in_lists: frozenset[str] = frozenset()  # values a list may have cut short: read again by id


def pre_image_fields(client: ZohoClient, module: str, handed: Mapping[str, str] | None = None) -> PreImageFields:
    """Every field a list GET returns for ``module``, not only those we write: the rollback's restore
    reads the whole record (GET by id) and empties each field its pre-image does not name, so a
    pre-image of the written fields alone would blank whatever else the record holds.

    ``handed``: the module's field types from schema set-up's hand-off (api name -> data type); only
    without it are they read from Zoho (a metadata call). A module with a field only GET by id
    returns (a subform such as the Contacts' insurance plans, a multi-select or multi-user lookup) is
    read whole: the update sends its subforms (rows, or ``[]`` that removes old ones), and a list GET
    would leave them out of the pre-image, so the restore could neither put rows back nor keep them.
    So is a module without field metadata (nothing tells what a list would miss). The hand-off keeps
    no textarea sub-type, so any textarea value as long as a list shows counts as possibly cut.
    """
    types = dict(handed) if handed is not None else None
    if types is None:
        try:
            types = {str(f["api_name"]): str(f.get("data_type")) for f in client.fields(module) if f.get("api_name")}
        except OrgLimitsUnavailable:
            raise  # never asked Zoho: not a module without metadata
        except ZohoError:
            types = {}
    by_id_only = {n for n, kind in types.items() if kind in limits.BY_ID_ONLY_TYPES}
    names = tuple(sorted(set(types) - by_id_only - {"id"}))
    long_text = frozenset(n for n, kind in types.items() if kind == "textarea")
    return PreImageFields(names, whole=bool(by_id_only) or not names, cut_in_lists=long_text)


def read_pre_images(client: ZohoClient, module: str, zoho_ids: Iterable[str], how: PreImageFields, *,
                    reader: ReadBack | None = None) -> dict[str, dict[str, Any]]:
    """The records as Zoho holds them now, ``IDS_PER_GET`` a call (``how.names`` in groups of
    ``FIELDS_PER_GET``), or one GET by id each where ``how.whole``; a rich-text value as long as a list
    shows is read again by id (the list cut it). Ids Zoho does not hold are absent.

    Record contents (patient data) only go back to the caller, for the ledger: nothing is logged.
    """
    if not _API_NAME.match(module):
        raise ValueError("module must be an API name")
    wanted = list(dict.fromkeys(str(z) for z in zoho_ids))
    if not wanted:
        return {}
    reader = reader or ReadBack(client)
    if how.whole:
        return reader.read(module, wanted, (), whole={z: "subform" for z in wanted})
    found = reader.read(module, wanted, how.names)
    cut = {z: "long_text" for z, record in found.items()
           if any(isinstance(record.get(n), str) and len(record[n]) >= limits.LIST_RICH_TEXT_CHARS
                  for n in how.cut_in_lists)}
    if cut:
        found.update(reader.read(module, list(cut), (), whole=cut))
    return found


def pre_image_read_calls(records: int, fields: int | None) -> int:
    """Calls of :func:`read_pre_images` for ``records`` records: multi-id GETs of ``fields`` fields, or
    (``fields`` None: a module read whole) one GET by id each. Long rich text is not counted (known
    only once read)."""
    if records <= 0:
        return 0
    return records if fields is None else minimum_calls(records, fields)


NotesPath = Literal["org_listing", "per_parent"]


@dataclass(frozen=True)
class NotesRead:
    """How reconciliation counts an office's notes in Zoho, and what each way would cost (counts only).

    Both ways count what Zoho lists (a duplicate an uncertain retry left shows), not our ids.
    """

    path: NotesPath
    org_notes: int  # live notes the ledger holds across all offices
    org_pages: int  # the org's listing for those alone: what the estimate counts for it
    org_pages_weighed: int  # with the margin for notes not ours: what the choice weighs
    parents: int  # parents of ours the ledger holds notes under
    parent_listings: int  # one listing per such parent, 200 a page

    @property
    def calls(self) -> int:
        """The calls of the chosen way, as far as the ledger knows."""
        return self.org_pages if self.path == "org_listing" else self.parent_listings

    def describe(self) -> str:
        return (f"{self.path}: {self.parent_listings} listings of {self.parents} parents against "
                f"{self.org_pages_weighed} pages of the org's notes ({self.org_notes} in the ledger, with "
                f"{NOTES_NOT_OURS_SHARE:.0%} more for notes not ours)")


def choose_notes_read(org_notes: int, children_per_parent: Iterable[int]) -> NotesRead:
    """The cheaper exact read of an office's notes: the org's notes listing (``GET /Notes``, admin only,
    every office's notes) or one listing per parent of ours that the ledger holds notes under (read in
    parallel). ``children_per_parent``: per such parent, the live notes of every office under it."""
    per_parent = list(children_per_parent)
    listings = sum(listing_calls(n) for n in per_parent)
    weighed = listing_calls(org_notes + math.ceil(org_notes * NOTES_NOT_OURS_SHARE))
    # A tie goes to the parents: their count does not rest on a guess, and they are read in parallel.
    path: NotesPath = "per_parent" if listings <= weighed else "org_listing"
    return NotesRead(path, org_notes, listing_calls(org_notes), weighed, len(per_parent), listings)
