"""The emulated org: state, field catalog, indexes and the record write rules shared by every route."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from .config import FULL_SCOPE, EmulatorConfig
from .metadata import MODULE_LABELS, STANDARD_FIELDS, SYSTEM_DUPLICATE_CHECK
from .store import Clock, Op, Store
from .users import seed_users
from .validation import Lookups, RecordError, validate_record

log = logging.getLogger(__name__)


def zoho_time(epoch: float) -> str:
    """Zoho's ``yyyy-MM-ddTHH:mm:ss±HH:mm``; the emulated org's time zone is UTC."""
    return _zoho_second(int(epoch))


@lru_cache(maxsize=256)
def _zoho_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class Tx:
    """One API call's writes: applied to memory at once (later records of a batch see earlier ones),
    journaled as one line when the call ends."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.ops: list[Op] = []

    def put(self, module: str, record: dict[str, Any]) -> None:
        self.apply(["put", module, record])

    def delete(self, module: str, record_id: str) -> None:
        self.apply(["del", module, record_id])

    def apply(self, op: Op) -> None:
        self.org.index_before(op)
        self.org.store.state.apply(op)
        self.org.index_after(op)
        self.ops.append(op)


class Org:
    def __init__(self, config: EmulatorConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.store = Store(config.data_dir)
        self.state = self.store.state
        # module -> field api_name -> normalised value -> ids, oldest first (a dict: O(1) removal)
        self.indexes: dict[str, dict[str, dict[Any, dict[str, None]]]] = {}
        self._fields_cache: dict[str, dict[str, dict[str, Any]]] = {}
        self._unique_cache: dict[str, list[str]] = {}
        self._mandatory_cache: dict[str, tuple[str, ...]] = {}
        self._bootstrap()
        self.rebuild_indexes()

    # ---- set-up -------------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        """Seed org and users in a fresh data dir; register the configured refresh token (first user)."""
        if self.store.is_fresh:
            prefix = str(1_000_000 + (self.config.seed * 7919 + 5_421_000) % 9_000_000)
            self.state.org = {"id_prefix": prefix}  # ids minted while seeding carry the prefix
            users = seed_users(self.config, self.store.next_id)
            org = self._org_record(prefix, users[0])
            self.store.commit([["org", org]] + [["user", u] for u in users])
        if self.config.refresh_token not in self.state.refresh_tokens:
            admin = next(iter(self.state.users.values()))
            self.store.commit([["rt", self.config.refresh_token, {
                "client_id": self.config.client_id, "user_id": admin["id"], "scope": FULL_SCOPE,
                "created": self.clock.now()}]])

    def _org_record(self, prefix: str, admin: dict[str, Any]) -> dict[str, Any]:
        zgid = str(int(prefix) * 10 + 3)[:9]
        return {
            "id_prefix": prefix, "id": self.store.next_id(), "zgid": zgid, "domain_name": f"org{zgid}",
            "company_name": "Emulated Dental Practice", "primary_email": admin["email"],
            "primary_zuid": admin["zuid"], "time_zone": "UTC", "iso_code": "USD", "currency": "US Dollar",
            "currency_symbol": "$", "currency_locale": "en_US", "country_code": "US", "country": "United States",
            "type": "production", "mc_status": False, "gapps_enabled": False, "privacy_settings": True,
            "license_details": {
                "paid": self.config.edition != "free", "paid_type": self.config.edition,
                "users_license_purchased": self.config.users, "trial_type": None, "trial_expiry": None,
                "paid_expiry": None,
            },
        }

    # ---- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        tx = Tx(self)
        try:
            yield tx
        finally:
            # Journal whatever was applied, even after an unexpected error, so memory and disk agree.
            if tx.ops:
                self.store.commit_applied(tx.ops)

    def new_id(self) -> str:
        return self.store.next_id()

    def now(self) -> float:
        return self.clock.now()

    # ---- users and lookups (the validation.Lookups protocol) -----------------------------------

    def active_user(self, user_id: str) -> dict[str, Any] | None:
        user = self.state.users.get(user_id)
        return user if user and user["status"] == "active" else None

    def record_name(self, module: str, record_id: str) -> str | None:
        record = self.state.records.get(module, {}).get(record_id)
        return None if record is None else display_name(module, record)

    def external_id(self, module: str, value: dict[str, Any]) -> str | None:
        """Lookups by external id need an ``X-EXTERNAL`` header; see :class:`ExternalLookups`."""
        return None

    def user_ref(self, user_id: str) -> dict[str, Any]:
        user = self.state.users[user_id]
        return {"name": user["full_name"], "id": user_id, "email": user["email"]}

    # ---- field catalog -------------------------------------------------------------------------

    def fields(self, module: str) -> dict[str, dict[str, Any]]:
        cached = self._fields_cache.get(module)
        if cached is None:
            cached = {}
            for field in STANDARD_FIELDS[module] + list(self.state.custom_fields.get(module, {}).values()):
                field = dict(field)
                changed = self.state.picklists.get(module, {}).get(field["api_name"])
                if changed is not None:
                    field["pick_list_values"] = list(changed)
                if field.get("pick_list_values"):
                    field["_values"] = frozenset(field["pick_list_values"])
                for row in field.get("subform_fields") or []:
                    if row.get("pick_list_values"):
                        row["_values"] = frozenset(row["pick_list_values"])
                cached[field["api_name"]] = field
            if module in ("Leads", "Contacts"):
                cached["Full_Name"] = {**STANDARD_FIELDS[module][0], "api_name": "Full_Name",
                                       "field_label": "Full Name", "data_type": "text", "length": 121,
                                       "read_only": True, "lookup_module": None}
            self._fields_cache[module] = cached
        return cached

    def define_field(self, tx: Tx, module: str, field: dict[str, Any]) -> None:
        tx.apply(["field", module, field])
        self.rebuild_indexes()

    def set_picklist(self, tx: Tx, module: str, api_name: str, values: list[str]) -> None:
        """Replace a field's picklist (standard or custom) with ``values``, the whole list."""
        tx.apply(["picklist", module, api_name, list(values)])
        self._forget_fields()

    def _forget_fields(self) -> None:
        self._fields_cache.clear()
        self._unique_cache.clear()
        self._mandatory_cache.clear()

    def mandatory_fields(self, module: str) -> tuple[str, ...]:
        cached = self._mandatory_cache.get(module)
        if cached is None:
            cached = tuple(n for n, f in self.fields(module).items() if f["system_mandatory"])
            self._mandatory_cache[module] = cached
        return cached

    def match_fields(self, module: str) -> list[str]:
        """Fields an upsert may match on: system duplicate-check fields, then unique/external fields."""
        names = list(SYSTEM_DUPLICATE_CHECK.get(module, ()))
        names += [n for n, f in self.fields(module).items() if (f.get("unique") or f.get("external"))
                  and n not in names]
        return names

    def unique_fields(self, module: str) -> list[str]:
        cached = self._unique_cache.get(module)
        if cached is None:
            cached = [n for n, f in self.fields(module).items() if f.get("unique") or f.get("external")]
            self._unique_cache[module] = cached
        return cached

    # ---- indexes -------------------------------------------------------------------------------

    def rebuild_indexes(self) -> None:
        self._forget_fields()
        self.indexes = {}
        for module in STANDARD_FIELDS:
            self.indexes[module] = {name: {} for name in self.match_fields(module)}
            for record in self.state.records.get(module, {}).values():
                self._index_add(module, record)

    def _index_add(self, module: str, record: dict[str, Any]) -> None:
        for name, index in self.indexes.get(module, {}).items():
            value = record.get(name)
            if value not in (None, ""):
                index.setdefault(_norm(value), {})[record["id"]] = None

    def _index_remove(self, module: str, record: dict[str, Any]) -> None:
        for name, index in self.indexes.get(module, {}).items():
            value = record.get(name)
            if value not in (None, ""):
                ids = index.get(_norm(value))
                if ids is not None and record["id"] in ids:
                    del ids[record["id"]]
                    if not ids:
                        del index[_norm(value)]

    def index_before(self, op: Op) -> None:
        if op[0] in ("put", "del"):
            record_id = op[2]["id"] if op[0] == "put" else op[2]
            old = self.state.records.get(op[1], {}).get(record_id)
            if old is not None:
                self._index_remove(op[1], old)

    def index_after(self, op: Op) -> None:
        if op[0] == "put":
            self._index_add(op[1], op[2])
        elif op[0] == "reset":
            self.rebuild_indexes()

    def find_first(self, module: str, field: str, value: Any, exclude: str | None = None) -> str | None:
        """The oldest record whose ``field`` equals ``value`` (case-insensitive), other than ``exclude``."""
        for record_id in self.indexes.get(module, {}).get(field, {}).get(_norm(value), ()):
            if record_id != exclude:
                return record_id
        return None

    # ---- record writes -------------------------------------------------------------------------

    def duplicate_error(self, module: str, field: str, existing_id: str, index: int) -> RecordError:
        existing = self.state.records[module][existing_id]
        owner = existing.get("Owner") or {}
        user = self.state.users.get(owner.get("id", ""), {})
        return RecordError("DUPLICATE_DATA", "duplicate data", {
            "api_name": field, "json_path": f"$.data[{index}].{field}", "more_records": False,
            "duplicate_record": {
                "Owner": {"name": owner.get("name"), "id": owner.get("id"), "zuid": user.get("zuid")},
                "module": {"api_name": module, "id": module_id(module)}, "id": existing_id,
            },
        })

    def check_unique(self, module: str, values: dict[str, Any], own_id: str | None, index: int) -> None:
        clashes = []
        for name in self.unique_fields(module):
            value = values.get(name)
            if value in (None, ""):
                continue
            other = self.find_first(module, name, value, exclude=own_id)
            if other is not None:
                clashes.append(self.duplicate_error(module, name, other, index))
        if len(clashes) == 1:
            raise clashes[0]
        if clashes:
            raise RecordError("MULTIPLE_OR_MULTI_ERRORS", "Multiple errors in the request",
                              {"errors": [c.body for c in clashes]})

    def insert(self, tx: Tx, module: str, payload: dict[str, Any], index: int, user_id: str,
               ctx: Lookups | None = None) -> dict[str, Any]:
        values = validate_record(payload, self.fields(module), index, ctx or self, None,
                                 self.mandatory_fields(module))
        self.check_unique(module, values, None, index)
        now = zoho_time(self.now())
        me = self.user_ref(user_id)
        record = {"id": self.new_id(), **values, "Created_Time": now, "Modified_Time": now,
                  "Created_By": me, "Modified_By": me}
        if record.get("Owner") is None:
            record["Owner"] = me
        self._derive(module, record)
        tx.put(module, record)
        return record

    def update(self, tx: Tx, module: str, record_id: str, payload: dict[str, Any], index: int,
               user_id: str, ctx: Lookups | None = None) -> dict[str, Any]:
        existing = self.state.records.get(module, {}).get(record_id)
        if existing is None:
            raise RecordError("INVALID_DATA", "the id given seems to be invalid",
                              {"api_name": "id", "json_path": f"$.data[{index}].id", "id": record_id})
        values = validate_record(payload, self.fields(module), index, ctx or self, existing,
                                 self.mandatory_fields(module))
        merged = {**existing, **values}
        self.check_unique(module, merged, record_id, index)
        merged["Modified_Time"] = zoho_time(self.now())
        merged["Modified_By"] = self.user_ref(user_id)
        if merged.get("Owner") is None:
            merged["Owner"] = existing.get("Owner")
        self._derive(module, merged)
        tx.put(module, merged)
        return merged

    def _derive(self, module: str, record: dict[str, Any]) -> None:
        if module in ("Leads", "Contacts"):
            parts = [record.get("First_Name"), record.get("Last_Name")]
            record["Full_Name"] = " ".join(p for p in parts if p)


class ExternalLookups:
    """The org's lookups plus lookups by external id, for a call with ``X-EXTERNAL: Module.Field[,...]``.

    A lookup value such as ``{"External_Patient_ID": "17"}`` resolves to the record of the lookup's
    module whose external field holds that value, when the header names ``Module.External_Patient_ID``.
    """

    def __init__(self, org: Org, header: str) -> None:
        self.org = org
        self.names = frozenset(part.strip() for part in header.split(",") if part.strip())

    def record_name(self, module: str, record_id: str) -> str | None:
        return self.org.record_name(module, record_id)

    def active_user(self, user_id: str) -> dict[str, Any] | None:
        return self.org.active_user(user_id)

    def new_id(self) -> str:
        return self.org.new_id()

    def field_for(self, module: str) -> str | None:
        """The external field the header names for ``module``, if it is one."""
        for name in self.names:
            head, _, field = name.partition(".")
            if head == module and self.org.fields(module).get(field, {}).get("external"):
                return field
        return None

    def external_id(self, module: str, value: dict[str, Any]) -> str | None:
        field = self.field_for(module)
        if field is None or field not in value:
            return None
        raw = value[field]
        found = self.org.find_first(module, field, raw) if isinstance(raw, str | int) else None
        return found or "0"  # "0" names no record: the lookup fails as a missing related record


def display_name(module: str, record: dict[str, Any]) -> str:
    if module in ("Leads", "Contacts"):
        return record.get("Full_Name") or record.get("Last_Name") or ""
    for key in ("Event_Title", "Subject", "Note_Title", "File_Name"):
        if key in record:
            return record[key] or ""
    return ""


def module_id(module: str) -> str:
    return f"{6421000000000002000 + list(MODULE_LABELS).index(module) * 7 + 175}"


def new_token() -> str:
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
