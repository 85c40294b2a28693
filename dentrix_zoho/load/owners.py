"""Providers -> Zoho users, by the e-mail the provider map gives (case-insensitive)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dentrix_zoho.source.provider_map import ProviderMap
from dentrix_zoho.zoho import ZohoClient

log = logging.getLogger(__name__)


def normalise_provider(provider_id: str | None) -> str:
    return (provider_id or "").strip().upper()


@dataclass
class OwnerResolution:
    user_ids: dict[str, str] = field(default_factory=dict)  # provider id -> Zoho user id
    unmatched: list[str] = field(default_factory=list)  # providers with no e-mail or no active user
    default_owner_id: str | None = None
    default_owner_configured: bool = False

    @property
    def blocking(self) -> bool:
        """Unmatched providers block the load unless a default owner resolves."""
        return bool(self.unmatched) and self.default_owner_id is None

    def owner_for(self, provider_id: str | None) -> str | None:
        return self.user_ids.get(normalise_provider(provider_id)) or self.default_owner_id

    def summary(self) -> dict[str, Any]:
        return {
            "matched": len(self.user_ids),
            "unmatched": len(self.unmatched),
            "default_owner_resolved": self.default_owner_id is not None,
            "default_owner_configured": self.default_owner_configured,
            "blocking": self.blocking,
        }


def resolve_owners(client: ZohoClient, provider_map: ProviderMap, provider_ids: Iterable[str]) -> OwnerResolution:
    """Match each provider's e-mail to an active Zoho user; the unmatched are listed by id only."""
    providers = sorted({normalise_provider(p) for p in provider_ids if normalise_provider(p)})
    emails = {p: provider_map.email_for(p) for p in providers}
    wanted = {str(e) for e in emails.values() if e}
    default_email = str(provider_map.default_owner_email) if provider_map.default_owner_email else None
    if default_email:
        wanted.add(default_email)
    users = client.resolve_users_by_email(wanted) if wanted else {}
    result = OwnerResolution(default_owner_configured=default_email is not None)
    for provider, email in emails.items():
        user = users.get(str(email).strip().lower()) if email else None
        if user and user.get("id"):
            result.user_ids[provider] = str(user["id"])
        else:
            result.unmatched.append(provider)
    if default_email:
        default = users.get(default_email.strip().lower())
        result.default_owner_id = str(default["id"]) if default and default.get("id") else None
    log.info("owners: %d providers matched, %d unmatched, default owner %s", len(result.user_ids),
             len(result.unmatched), "resolved" if result.default_owner_id else "none")
    return result


def shaped_provider_ids(duckdb_path: Path, office_id: str) -> list[str]:
    """Every provider a shaped record names as its owner (what ``resolve_owners`` needs)."""
    from dentrix_zoho.load.shaped import open_duckdb, table_exists
    from dentrix_zoho.mapping.outputs import MODULE_TABLES, OUTPUT_SCHEMA

    found: set[str] = set()
    with open_duckdb(duckdb_path) as con:
        for table in MODULE_TABLES.values():
            if not table_exists(con, table):
                continue
            rows = con.execute(
                f"SELECT DISTINCT json_extract_string(links, '$.Owner.provider_id') FROM {OUTPUT_SCHEMA}.{table} "
                "WHERE office_id = ?", [office_id]).fetchall()
            found |= {normalise_provider(r[0]) for r in rows if r[0]}
    return sorted(found)
