"""A local Zoho CRM v8 that behaves like the real API as Zoho documents it.

Sources: the Zoho CRM API v8 docs (https://www.zoho.com/crm/developer/docs/api/v8/: insert/upsert/search records, Notes, Attachments,
Subforms, Fields Meta Data, Bulk APIs, Query API, Status Codes), API limits
(https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html), Zoho Accounts OAuth (https://www.zoho.com/accounts/protocol/oauth/),
and Zoho's OpenAPI spec (github.com/zoho/crm-oas, ``v8.0/*.json``).

Run it with ``dentrix-zoho zoho-emulator --data-dir DIR`` (or ``python -m dentrix_zoho.zoho_emulator``);
tests use :func:`dentrix_zoho.zoho_emulator.testing.running_emulator`. It shares no code with the
project's Zoho client, so each checks the other. One loopback port serves the accounts host
(``/oauth/v2/token``), the API host (``/crm/v8/...``, ``/crm/bulk/v8/...``) and the upload host
(``/crm/v8/upload``); it refuses a non-loopback address without ``--allow-non-loopback``.

Credentials: the client id, secret and refresh token come from ``ZOHO_CLIENT_ID``,
``ZOHO_CLIENT_SECRET`` and ``ZOHO_REFRESH_TOKEN`` when set (the variables the client reads), else the
demo values in :mod:`.config` (``DEMO_CLIENT_ID`` ...), which the start-up banner prints. Values taken
from the environment are not echoed for the secret and refresh token (the banner names the variable).

Emulated
  * OAuth: ``refresh_token`` and ``authorization_code`` grants (form body or query string), revoke;
    token responses shaped like Zoho's with ``api_domain`` = the emulator's base URL; access tokens
    expire after ``--token-ttl`` (3 600 s); token errors are HTTP 200 ``{"error": ...}``
    (``invalid_client``, ``invalid_client_secret``, ``invalid_code``, ``unsupported_grant_type``).
    ``Authorization: Zoho-oauthtoken`` only; 401 ``AUTHENTICATION_FAILURE`` (missing header or other
    prefix), ``INVALID_TOKEN`` (unknown/expired), ``OAUTH_SCOPE_MISMATCH`` (scopes per the securitySchemes of crm-oas v8.0/common.json).
    Grant codes come from ``POST /__emulator__/grant-code?scope=...`` (the API console's Self Client).
  * Records for Leads, Contacts, Events, Tasks, Calls, Notes: list (``fields`` required, <= 50;
    ``per_page`` <= 200; ``page`` reaches 2 000 records, ``page_token`` 100 000; ``sort_by``/``sort_order``;
    ``ids``; ``cvid`` costs 3; ``If-Modified-Since``; 204 when empty), get by id (204 when absent),
    insert/update/upsert (<= 100 records, per-record results in input order; 201/200 all ok, 207 mixed,
    400 all failed; ``If-Unmodified-Since`` -> ``ALREADY_MODIFIED``, 412 when every record is stale),
    delete (<= 100 ids; Notes and Attachments of a deleted record go with it), ``/deleted`` (the
    recycle bin, 2 credits), count,
    search (criteria / email / phone / word, <= 10 criteria, 2 000 results), COQL, per-record Notes
    (``/{module}/{id}/Notes``), Attachments (multipart upload, list, download, delete; per-file limit
    ``--max-attachment-mb``, ``FILE_SIZE_MORE_THAN_ALLOWED_SIZE`` beyond it).
  * Validation from field metadata: mandatory fields, types (text, textarea, email, phone, website,
    date, datetime, integer, bigint, double, currency, percent, boolean, picklist, multi-select,
    lookup to an existing record, owner = an existing active user, ``What_Id`` with ``$se_module``,
    Participants (<= 50), Notes' v8 ``Parent_Id`` object, subform rows (<= 100, append / ``_delete`` /
    ``[]`` semantics)), lengths, unique fields (``DUPLICATE_DATA`` with ``duplicate_record``;
    ``MULTIPLE_OR_MULTI_ERRORS`` when several clash). Upsert matches on system duplicate-check fields
    (Leads/Contacts ``Email``) and unique/external fields only; other ``duplicate_check_fields`` entries
    are ignored, as the real API does. ``X-EXTERNAL: Module.Field`` (an external field) lets an update
    name its record, and a lookup its target (``{"Field": "value"}``), by external value.
  * Metadata: ``/settings/modules``, ``/settings/fields`` (GET, and POST of <= 5 custom fields with API
    names from labels, clash numbering ``Name1``, never ``__``), ``/settings/fields/{id}`` (GET; PATCH
    adds picklist values to a standard or custom (multi-select) picklist, in our reading of Zoho's
    "Update Custom Field" API: append only, ``DUPLICATE_DATA`` on a repeated display value),
    ``/settings/layouts`` (one standard layout), ``/users`` (types, paging), ``/org`` with ``zgid``. Custom fields per module by edition
    (Free 5 [our choice], Standard 10, Professional 155, Enterprise 300, Ultimate 500), <= 2 unique
    fields per module, subform fields (2 on Enterprise, 5 on Ultimate, none below unless
    ``--no-subform-edition-gate``). Custom fields are allowed on Leads, Contacts, Events, Tasks, Calls.
  * Limits: credits over a rolling 24 h window (edition x users formula, or ``--credits``), costs per
    the API limits page (writes 1 per 10 records, ``cvid`` 3, COQL 1/2/3 by LIMIT, Bulk Write job 500, else 1);
    concurrency per edition (5/10/15/20/25) and 10 for heavy calls (writes of > 10 records, ``cvid`` or
    ``sort_by`` lists, search, COQL); ``X-API-CREDITS-REMAINING`` once half the credits are used.
    Both limits answer 429 ``TOO_MANY_REQUESTS``; the message tells them apart:
    credits -> :data:`.errors.CREDITS_EXCEEDED_MESSAGE` ("Number of API requests for the 24 hour period
    is exceeded"), concurrency -> :data:`.errors.CONCURRENCY_EXCEEDED_MESSAGE` ("The concurrency limit of
    the user for the app is exceeded"), heavy cap -> the same text plus "(sub-concurrency limit of
    complex APIs)". Injected 429 faults carry the documentation's combined sentence.
  * Bulk Write: zipped CSV upload (``feature: bulk-write``, ``X-CRM-ORG`` = zgid; 25 MB; zip only),
    insert/update/upsert jobs with ``field_mappings`` / header API names, ``find_by``, ``ignore_empty``,
    ``default_value``, lookups by id or field; ADDED -> IN PROGRESS -> COMPLETED in the background;
    result zip with the first three columns + ID, STATUS, ERRORS; 25 000 rows, 200 columns; Notes,
    Events, Calls refused with ``MODULE_NOT_AVAILABLE``; 500 credits per job.
  * Realism knobs: ``--latency-ms`` (mean, uniform jitter 0.5x-1.5x, spent while the call holds its
    concurrency slots), ``--faults 429=..,500=..,502=..,503=..,drop=..,slow=..`` (seeded; see
    :mod:`.faults`; write faults land before or after the write; ``slow`` adds ``--slow-seconds``),
    ``--seed``. Latency and faults apply to API calls (``/crm/...``, upload, result download), not to
    the accounts or admin endpoints.
  * Request-level errors in Zoho's envelope: ``INVALID_MODULE``, ``INVALID_URL_PATTERN`` (404),
    ``INVALID_REQUEST_METHOD`` (405), ``REQUIRED_PARAM_MISSING``, ``LIMIT_EXCEEDED``,
    ``API_NOT_SUPPORTED`` for ``/crm/v2/...`` and other versions, ``INTERNAL_ERROR``.
  * State: in memory, journaled per call to ``DIR/journal.log`` and compacted into ``DIR/state.json``
    at start (see :mod:`.store`); a SIGKILL never leaves half a call. Files live in ``DIR/files``.
  * Admin (``/__emulator__/``, not Zoho-shaped, no auth): ``GET snapshot`` (every record of every
    module, sorted, plus custom field names), ``POST reset`` (records, custom fields, files, jobs and
    counters; users, org and tokens stay), ``GET usage``, ``POST advance-clock?seconds=N``,
    ``POST faults`` (``{"faults": spec, "seed": n}``), ``POST grant-code``, ``GET health``.

Choices where the reference is UNVERIFIED or silent
  * GET of a missing id answers 204; unknown names in ``fields`` are left out, not refused; unknown keys
    in a record are ignored; a picklist value not in the list is ``INVALID_DATA`` (stricter than v7's
    "new value" behaviour, so rehearsals catch unmapped values); datetimes need a ``±HH:mm`` offset;
    integers must be JSON numbers. The org's time zone is UTC (``+00:00``).
  * Upsert all-ok is 200; field creation all-ok 201; attachment upload 200; a refresh token mints at
    most 10 access tokens per 10 minutes (``--token-mint-limit``; ``{"error": "Access Denied"}``).
  * Upsert on a value shared by several records updates the oldest. Unique matching ignores case.
    Insert refuses only unique-field clashes: a repeated ``Email`` is stored (it is a duplicate-check
    field for upsert, not a unique one).
  * Count is never stale (the real service lags 1-10 minutes). Search is fresh unless
    ``--index-lag-seconds N``: then search and COQL leave out a record until N seconds after its
    ``Created_Time`` (Zoho: "Fresh records may return 204 until indexed"; that COQL reads the same
    index is our assumption, UNVERIFIED). Updated values are never stale. ``COUNT(id)`` works.
  * A credit is spent only by a call that passes auth and limits; a call that would cross the limit
    is refused whole. Credits, usage counters and the clock offset are not persisted across restarts.
  * Custom field API names: characters other than letters and digits become ``_`` (runs collapsed,
    trimmed); a name not starting with a letter gets ``Field_``. Subform fields are created with
    ``{"data_type": "subform", "subform": {"fields": [...]}}``.
  * Bulk Write: one resource per job; jobs run one at a time; a job cut off by a restart is FAILED.

Not emulated
  Accounts, Deals and other modules; custom modules; workflows, approvals, blueprints (``trigger`` is
  only counted); Bulk Read; composite API; clone, convert, tags; restoring from the recycle bin;
  custom views (any ``cvid`` lists all records); layout-specific mandatory rules;
  Bulk Write callbacks (never called: the emulator makes no outbound connections);
  COQL joins beyond ``Lookup.id``, GROUP BY and aggregates other than a lone ``COUNT``; multi-DC hosts
  and ``INVALID_HOST`` (every host name is accepted); profiles, roles and permissions beyond scopes.
"""

from dentrix_zoho.zoho_emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN

__all__ = ["DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "DEMO_REFRESH_TOKEN"]
