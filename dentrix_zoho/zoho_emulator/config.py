"""Emulator settings and the per-edition limits as Zoho documents them (API limits, Fields Meta Data, Subforms pages)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

EDITIONS = ("free", "standard", "professional", "enterprise", "ultimate")

# Daily credits: (base, per user, maximum or None for unlimited) [https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html].
_CREDITS = {
    "free": (5_000, 0, 5_000),
    "standard": (50_000, 250, 100_000),
    "professional": (50_000, 500, 3_000_000),
    "enterprise": (50_000, 1_000, 5_000_000),
    "ultimate": (50_000, 2_000, None),
}
CONCURRENCY = {"free": 5, "standard": 10, "professional": 15, "enterprise": 20, "ultimate": 25}
HEAVY_CONCURRENCY = 10
# Custom fields per module; Free is not listed in the reference (UNVERIFIED): we allow 5.
CUSTOM_FIELD_LIMIT = {"free": 5, "standard": 10, "professional": 155, "enterprise": 300, "ultimate": 500}
# Subform fields per module: 2 on Enterprise, 5 on Ultimate; none below Enterprise (gate on).
SUBFORM_LIMIT = {"free": 0, "standard": 0, "professional": 0, "enterprise": 2, "ultimate": 5}

DEMO_CLIENT_ID = "1000.EMULATORDEMOCLIENT0000000000000"
DEMO_CLIENT_SECRET = "emulator0demo0client0secret0000000000000000"
DEMO_REFRESH_TOKEN = "1000.emulatordemo00refresh00token.emulatordemo00refresh00token"
FULL_SCOPE = (
    "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL,ZohoCRM.users.ALL,ZohoCRM.org.ALL,ZohoCRM.bulk.ALL,"
    "ZohoCRM.coql.READ,ZohoSearch.securesearch.READ,ZohoFiles.files.ALL"
)


def daily_credit_limit(edition: str, users: int) -> int | None:
    base, per_user, maximum = _CREDITS[edition]
    total = base + per_user * users
    return total if maximum is None else min(total, maximum)


@dataclass
class EmulatorConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8765
    edition: str = "enterprise"
    users: int = 5
    latency_ms: float = 0.0
    faults: str | None = None
    seed: int = 0
    max_attachment_mb: int = 20
    token_ttl: int = 3600
    credits: int | None = None
    users_file: Path | None = None
    subform_edition_gate: bool = True
    token_mint_limit: int = 10
    slow_seconds: float = 2.0
    # Search and COQL leave out records created this many seconds ago or less (0: indexed at once).
    index_lag_seconds: float = 0.0
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    refresh_token: str = DEMO_REFRESH_TOKEN
    credentials_from_env: dict[str, bool] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def credit_limit(self) -> int | None:
        if self.credits is not None:
            return self.credits
        return daily_credit_limit(self.edition, self.users)

    def load_credentials_from_env(self) -> None:
        """Take the OAuth client the project's client reads, so one setting serves both."""
        for attr, var in (
            ("client_id", "ZOHO_CLIENT_ID"),
            ("client_secret", "ZOHO_CLIENT_SECRET"),
            ("refresh_token", "ZOHO_REFRESH_TOKEN"),
        ):
            value = os.environ.get(var)
            self.credentials_from_env[var] = bool(value)
            if value:
                setattr(self, attr, value)
