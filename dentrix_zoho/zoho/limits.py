"""Every Zoho CRM limit the client relies on, in one place.

Sources, Zoho's public documentation (each section below names its page):
  * API limits and credits: https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html
    (also https://www.zoho.com/crm/help/api/api-limits.html);
  * records: https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html, https://www.zoho.com/crm/developer/docs/api/v8/upsert-records.html, https://www.zoho.com/crm/developer/docs/api/v8/search-records.html;
  * metadata: https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html, https://www.zoho.com/crm/developer/docs/api/v8/modules-api.html; subforms: "Subforms" in https://www.zoho.com/crm/developer/docs/api/v8/;
  * Bulk Write: "Bulk APIs" in https://www.zoho.com/crm/developer/docs/api/v8/ and https://www.zoho.com/crm/developer/docs/api/v6/bulk-write/limitations.html;
  * Zoho's OpenAPI spec: github.com/zoho/crm-oas, ``v8.0/*.json`` (record.json, fields.json, bulk_write.json).
Where Zoho publishes no number the value here is our conservative choice and says so (UNVERIFIED).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Edition = Literal["free", "standard", "professional", "enterprise", "ultimate"]
EDITIONS: tuple[Edition, ...] = ("free", "standard", "professional", "enterprise", "ultimate")

# Marketing names that Zoho uses for the same API tier.
EDITION_ALIASES: dict[str, Edition] = {
    "starter": "standard",
    "zoho_one": "enterprise",
    "zohoone": "enterprise",
    "crm_plus": "ultimate",
    "crmplus": "ultimate",
}

# --- credits per rolling 24 h (API limits page) -------------------------------
CREDITS_BASE = 50_000
CREDITS_PER_USER: dict[Edition, int] = {
    "free": 0,
    "standard": 250,
    "professional": 500,
    "enterprise": 1_000,
    "ultimate": 2_000,
}
CREDITS_MAXIMUM: dict[Edition, int | None] = {
    "free": 5_000,
    "standard": 100_000,
    "professional": 3_000_000,
    "enterprise": 5_000_000,
    "ultimate": None,  # unlimited
}
FREE_EDITION_CREDITS = 5_000

# --- API access per edition (API limits page) --------------------------------
# "API access exists in all editions, including Free" (zoho.com/crm/help/api/api-limits.html).
# Kept as a table so that an edition without it (an older plan, a future one) is one line here and
# the migration estimate answers "cannot run" for it.
API_ACCESS: dict[Edition, bool] = {edition: True for edition in EDITIONS}

# --- concurrency (API limits page) ---------------------------------------------
CONCURRENCY: dict[Edition, int] = {
    "free": 5,
    "standard": 10,
    "professional": 15,
    "enterprise": 20,
    "ultimate": 25,
}
# "Sub-concurrency" for complex calls, the same for every edition: search, COQL,
# and insert/update/upsert of more than 10 records.
HEAVY_CALL_CAP = 10
HEAVY_WRITE_THRESHOLD = 10

# Per-minute ceilings a migration plan may promise the customer, so the practice's own
# integrations keep headroom; not Zoho limits. Used when ZOHO_CALLS_PER_MINUTE=plan.
PLAN_CALLS_PER_MINUTE: dict[Edition, int] = {
    "free": 100,
    "standard": 500,
    "professional": 2_500,
    "enterprise": 10_000,
    "ultimate": 10_000,
}

# --- per-call caps (insert/upsert records pages, API limits page) --------------
RECORDS_PER_WRITE = 100
IDS_PER_DELETE = 100
RECORDS_PER_PAGE = 200
PAGE_PARAM_REACH = 2_000  # beyond this, page_token
PAGE_TOKEN_REACH = 100_000
FIELDS_PER_GET = 50
# GET /{module}?ids=a,b,c: Zoho documents the parameter but no number for it. 100 is the
# documented cap of its twin on DELETE /{module}?ids= and of every write call (UNVERIFIED for GET).
IDS_PER_GET = 100
# "Rich-text fields are cut to 500 characters in lists" (GET /{module}, developer docs v8 get-records).
LIST_RICH_TEXT_CHARS = 500
# Field types a list GET never returns: only GET /{module}/{id} has subforms, multi-select lookups
# and multi-user lookups.
BY_ID_ONLY_TYPES = frozenset({"subform", "multiselectlookup", "multiuserlookup"})
SEARCH_REACH = 2_000
SEARCH_CRITERIA_MAX = 10
COQL_LIMIT_MAX = 2_000
COQL_OFFSET_REACH = 100_000  # LIMIT/OFFSET paging reaches this far (v7 COQL limitations)
COQL_IN_VALUES_MAX = 50
NOTES_PER_CALL = 100
USERS_PER_PAGE = 200

# --- metadata (Fields Meta Data, Subforms pages) -------------------------------
FIELDS_PER_CREATE_CALL = 5
UNIQUE_FIELDS_PER_MODULE = 2
CUSTOM_FIELDS_PER_MODULE: dict[Edition, int] = {
    "free": 5,  # UNVERIFIED: Zoho publishes no Free number; kept small on purpose
    "standard": 10,
    "professional": 155,
    "enterprise": 300,
    "ultimate": 500,
}
# Zoho names Enterprise/Zoho One (2) and Ultimate/CRM Plus (5); lower editions
# are treated as having none, so the mapping flattens the subform into fields.
SUBFORMS_PER_MODULE: dict[Edition, int] = {
    "free": 0,
    "standard": 0,
    "professional": 0,
    "enterprise": 2,
    "ultimate": 5,
}
SUBFORM_ROWS_PER_RECORD = 100

# --- files and bulk (Attachments, Bulk Write limitations pages) ----------------
ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
BULK_WRITE_MAX_RECORDS = 25_000
BULK_WRITE_MAX_BYTES = 25 * 1024 * 1024
BULK_WRITE_MAX_COLUMNS = 200
BULK_WRITE_UNSUPPORTED_MODULES = frozenset({"Notes", "Attachments", "Events", "Calls"})

# --- credits per call (API limits page) ----------------------------------------
CREDITS_PER_WRITE_RECORDS = 10  # 1 credit per 10 records of insert/update/upsert
CREDITS_BULK_WRITE = 500
CREDITS_BULK_READ = 50
CREDITS_CVID_GET = 3
CREDITS_DELETED_IDS = 2
CREDITS_DEFAULT = 1


def normalise_edition(value: str) -> Edition:
    key = value.strip().lower().replace(" ", "_").replace("-", "_")
    key = EDITION_ALIASES.get(key, key)
    if key not in EDITIONS:
        raise ValueError(f"unknown Zoho edition {value!r}; expected one of {', '.join(EDITIONS)}")
    return key  # type: ignore[return-value]


def daily_credits(edition: Edition, users: int, addon_credits: int = 0) -> int | None:
    """Credits per rolling 24 h: min(edition maximum, 50,000 + users x per-user + add-ons);
    ``None`` means unlimited. Free is a flat 5,000 that add-ons do not raise
    (zoho.com/crm/help/api/api-limits.html)."""
    if edition == "free":
        return FREE_EDITION_CREDITS
    total = CREDITS_BASE + max(users, 0) * CREDITS_PER_USER[edition] + max(addon_credits, 0)
    cap = CREDITS_MAXIMUM[edition]
    return total if cap is None else min(total, cap)


def edition_concurrency(edition: Edition) -> int:
    return CONCURRENCY[edition]


def write_call_credits(n_records: int) -> int:
    """Credits of one insert/update/upsert call of ``n_records`` (<= 100)."""
    return max(1, math.ceil(n_records / CREDITS_PER_WRITE_RECORDS))


def is_heavy_write(n_records: int) -> bool:
    return n_records > HEAVY_WRITE_THRESHOLD


def coql_credits(limit: int) -> int:
    if limit <= 200:
        return 1
    if limit <= 1_000:
        return 2
    return 3


def write_calls(n_records: int, per_call: int = RECORDS_PER_WRITE) -> int:
    return math.ceil(n_records / per_call) if n_records > 0 else 0


def write_credits(n_records: int, per_call: int = RECORDS_PER_WRITE) -> int:
    """Credits for writing ``n_records`` through the record API in full batches."""
    full, rest = divmod(n_records, per_call)
    return full * write_call_credits(per_call) + (write_call_credits(rest) if rest else 0)


def bulk_jobs(n_records: int) -> int:
    return math.ceil(n_records / BULK_WRITE_MAX_RECORDS) if n_records > 0 else 0


def bulk_write_credits(n_records: int) -> int:
    """Each job: initialise (500) plus one upload call and one result download.

    Status polls are counted separately by the caller (they cost 1 each).
    """
    return bulk_jobs(n_records) * (CREDITS_BULK_WRITE + 2)


@dataclass(frozen=True)
class PlannedOperation:
    """One line of a load plan: ``kind`` of call and how many records/calls it covers."""

    # insert | update | upsert | notes | delete | bulk_write | list | get | search | coql
    # | attachment | users | metadata | org | count
    kind: str
    count: int


_WRITE_KINDS = frozenset({"insert", "update", "upsert", "notes"})
_PER_CALL_KINDS = frozenset({"get", "search", "users", "metadata", "attachment", "org", "count"})


def operation_credits(op: PlannedOperation) -> int:
    if op.count <= 0:
        return 0
    if op.kind in _WRITE_KINDS:
        return write_credits(op.count)
    if op.kind == "delete":
        return write_calls(op.count, IDS_PER_DELETE) * CREDITS_DEFAULT
    if op.kind == "bulk_write":
        return bulk_write_credits(op.count)
    if op.kind == "list":
        return write_calls(op.count, RECORDS_PER_PAGE) * CREDITS_DEFAULT
    if op.kind == "coql":
        return op.count * coql_credits(COQL_LIMIT_MAX)
    if op.kind in _PER_CALL_KINDS:
        return op.count * CREDITS_DEFAULT
    raise ValueError(f"unknown operation kind {op.kind!r}")


def estimate_credits(
    plan: Iterable[PlannedOperation] | Mapping[str, int],
) -> int:
    """Credits a load plan will spend: ``{"upsert": 12000, "notes": 800}`` or operations."""
    ops = (
        [PlannedOperation(kind, count) for kind, count in plan.items()]
        if isinstance(plan, Mapping)
        else list(plan)
    )
    return sum(operation_credits(op) for op in ops)
