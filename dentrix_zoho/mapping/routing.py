"""Patient -> Contact or Lead.

A patient is a Contact unless inactive, archived, or without treatment (procedure,
appointment or visit) inside the routing window (18 months by default); then a Lead
whose ``Lead_Status`` says why. Responsible parties, insurance subscribers and people
with an open balance stay Contacts when the spec says so (``keep_as_contact``):
other Contacts point at them, or they owe money.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dentrix_zoho.mapping.spec import QUERY_PARAM, MappingSpec, RoutingSpec

INACTIVE = 3
ARCHIVED = 4


@dataclass(frozen=True)
class Route:
    module: str  # Contacts | Leads
    reason: str | None  # for Leads: inactive | archived | no_recent_treatment; Contacts: why kept


def window_start(as_of: dt.date, months: int) -> dt.date:
    """``as_of`` minus ``months`` calendar months (day clamped to the month's length)."""
    total = as_of.year * 12 + (as_of.month - 1) - months
    year, month = divmod(total, 12)
    day = min(as_of.day, calendar.monthrange(year, month + 1)[1])
    return dt.date(year, month + 1, day)


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


def route_patient(row: Mapping[str, Any], routing: RoutingSpec, as_of: dt.date) -> Route:
    keep = {
        "responsible_party": bool(row.get("is_responsible_party")),
        "subscriber": bool(row.get("is_subscriber")),
        "open_balance": bool(row.get("balance")),
    }
    for reason in routing.keep_as_contact:
        if keep[reason]:
            return Route("Contacts", reason)
    status = row.get("status")
    if status == INACTIVE:
        return Route("Leads", "inactive")
    if status == ARCHIVED:
        return Route("Leads", "archived")
    last = _as_date(row.get("last_activity"))
    if status != 2 and (last is None or last < window_start(as_of, routing.leads_window_months)):
        return Route("Leads", "no_recent_treatment")
    return Route("Contacts", None)


def substitute_query_params(spec: MappingSpec, text: str, as_of: dt.date) -> str:
    """Put the spec's query parameters (and ``as_of``, ``window_start``) into a stream's SQL as literals."""
    params: dict[str, Any] = dict(spec.query_params)
    params["as_of"] = as_of
    params["window_start"] = window_start(as_of, spec.routing.leads_window_months)

    def literal(match: re.Match[str]) -> str:
        value = params[match[1]]
        if isinstance(value, dt.date):
            return f"DATE '{value.isoformat()}'"
        if isinstance(value, int):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"

    return QUERY_PARAM.sub(literal, text)
