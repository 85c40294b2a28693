"""Client configuration, read from ``ZOHO_*`` environment variables.

Either a data centre (``ZOHO_DC`` plus ``ZOHO_ENVIRONMENT``) or explicit hosts
(``ZOHO_API_BASE``, ``ZOHO_ACCOUNTS_URL``, ``ZOHO_UPLOAD_URL``); explicit hosts
win, which is how the emulator is reached (all three are its base URL).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dentrix_zoho.zoho import limits
from dentrix_zoho.zoho.datacentres import ZohoUrls, check_base_url, dc_urls
from dentrix_zoho.zoho.org_limits import check_url

ENV_VARS: dict[str, str] = {
    "dc": "ZOHO_DC",
    "environment": "ZOHO_ENVIRONMENT",
    "api_base": "ZOHO_API_BASE",
    "accounts_url": "ZOHO_ACCOUNTS_URL",
    "upload_url": "ZOHO_UPLOAD_URL",
    "client_id": "ZOHO_CLIENT_ID",
    "client_secret": "ZOHO_CLIENT_SECRET",
    "refresh_token": "ZOHO_REFRESH_TOKEN",
    "edition": "ZOHO_EDITION",
    "users": "ZOHO_USERS",
    "org_key": "ZOHO_ORG",
    "max_concurrency": "ZOHO_MAX_CONCURRENCY",
    "calls_per_minute": "ZOHO_CALLS_PER_MINUTE",
    "on_budget_exhausted": "ZOHO_ON_BUDGET_EXHAUSTED",
    "credit_reserve": "ZOHO_CREDIT_RESERVE",
    "connect_timeout": "ZOHO_CONNECT_TIMEOUT",
    "read_timeout": "ZOHO_READ_TIMEOUT",
    "org_limits_url": "ZOHO_ORG_LIMITS_URL",
    "org_credit_reserve": "ZOHO_ORG_CREDIT_RESERVE",
    "org_lease_seconds": "ZOHO_ORG_LEASE_SECONDS",
}


class ConfigError(ValueError):
    """A ``ZOHO_*`` setting is missing or wrong; the message names the variable."""


class ZohoConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dc: str | None = Field(default=None, description="US, EU, IN, AU, JP, CN, CA or SA")
    environment: Literal["production", "sandbox", "developer"] = "production"
    api_base: str | None = None
    accounts_url: str | None = Field(default=None, description="without /oauth/v2/token")
    upload_url: str | None = Field(default=None, description="Bulk Write uploads; defaults to the API base")
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    edition: limits.Edition = "enterprise"
    users: int = Field(default=1, ge=0)
    org_key: str | None = Field(default=None, description="names the Dagster pool; defaults to a hash")
    max_concurrency: int | None = Field(default=None, ge=1, description="capped at the edition's")
    calls_per_minute: int | None = Field(
        default=None, ge=1,
        description="a ceiling on calls started in any rolling minute, promised to the customer; 'plan' for "
        "the edition's default. With org_limits_url it holds for the org: every run of it together, counted "
        "in that database; unset: per process",
    )
    on_budget_exhausted: Literal["pause", "stop"] = "stop"
    credit_reserve: int = Field(default=0, ge=0, description="credits left untouched for the org's own use")
    daily_credits_override: int | None = Field(
        default=None, ge=0, description="add-ons or a negotiated limit"
    )
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    token_timeout: float = Field(default=20.0, gt=0, description="bounds a token refresh, waiters included")
    max_retries: int = Field(default=6, ge=0)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_cap: float = Field(default=30.0, ge=0)
    credit_wait_seconds: float = Field(default=900.0, gt=0, description="pause step while credits are gone")
    max_credit_wait_seconds: float = Field(default=26 * 3600.0, ge=0)
    bulk_poll_initial: float = Field(default=1.0, gt=0)
    bulk_poll_max: float = Field(default=30.0, gt=0)
    bulk_timeout: float = Field(default=3 * 3600.0, gt=0)
    org_limits_url: SecretStr | None = Field(
        default=None,
        description="a database every run against this org shares (postgresql+psycopg://... or sqlite:///...) "
        "for the org's concurrency, credits and ZOHO_CALLS_PER_MINUTE; unset: this process's own gates, "
        "budget and ceiling. Every run of "
        "the org must give the same ZOHO_ORG (the key its slots and credits are filed under), and "
        "ZOHO_MAX_CONCURRENCY then caps the org's total, not one process's",
    )
    org_credit_reserve: float = Field(
        default=0.20, ge=0.0, lt=1.0,
        description="with org_limits_url: share of the daily credits left to the org's other integrations",
    )
    org_lease_seconds: float = Field(
        default=30.0, ge=1.0, description="with org_limits_url: how soon a killed process's slots come back"
    )

    @field_validator("org_limits_url", mode="after")
    @classmethod
    def _org_limits_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        check_url(value.get_secret_value().strip())  # its message never repeats the URL (a password)
        return SecretStr(value.get_secret_value().strip())

    @field_validator("org_credit_reserve", mode="before")
    @classmethod
    def _percent(cls, value: object) -> object:
        """``20%`` or ``0.2``."""
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100
            except ValueError:
                raise ValueError("expected a share such as 20% or 0.2") from None
        return value

    @field_validator("edition", mode="before")
    @classmethod
    def _edition(cls, value: object) -> object:
        return limits.normalise_edition(value) if isinstance(value, str) else value

    @field_validator("calls_per_minute", mode="before")
    @classmethod
    def _calls_per_minute(cls, value: object, info: ValidationInfo) -> object:
        """``plan`` takes the edition's promised ceiling from ``limits.PLAN_CALLS_PER_MINUTE``."""
        if isinstance(value, str) and value.strip().lower() == "plan":
            edition = info.data.get("edition")
            if edition is None:
                raise ValueError("'plan' needs a valid ZOHO_EDITION")
            return limits.PLAN_CALLS_PER_MINUTE[edition]
        return value

    @field_validator("dc", mode="before")
    @classmethod
    def _dc(cls, value: object) -> object:
        return value.strip().upper() or None if isinstance(value, str) else value

    @model_validator(mode="after")
    def _hosts(self) -> ZohoConfig:
        if self.dc is None and not (self.api_base and self.accounts_url):
            raise ValueError("set ZOHO_DC, or both ZOHO_API_BASE and ZOHO_ACCOUNTS_URL")
        self.urls()  # validates the table lookup and the https rule
        return self

    def urls(self) -> ZohoUrls:
        table = dc_urls(self.dc, self.environment) if self.dc else None
        api = self.api_base or (table.api_base if table else None)
        accounts = self.accounts_url or (table.accounts_url if table else None)
        assert api and accounts  # guaranteed by _hosts
        api = check_base_url(api, "ZOHO_API_BASE")
        accounts = check_base_url(accounts, "ZOHO_ACCOUNTS_URL")
        if accounts.endswith("/oauth/v2/token"):
            accounts = accounts[: -len("/oauth/v2/token")]
        if self.upload_url:
            upload = check_base_url(self.upload_url, "ZOHO_UPLOAD_URL")
        elif table and not self.api_base:
            upload = table.upload_url
        else:
            upload = api
        return ZohoUrls(accounts_url=accounts, api_base=api, upload_url=upload)

    @property
    def concurrency(self) -> int:
        cap = limits.edition_concurrency(self.edition)
        return min(self.max_concurrency or cap, cap)

    @property
    def daily_credits(self) -> int | None:
        if self.daily_credits_override is not None:
            return self.daily_credits_override
        return limits.daily_credits(self.edition, self.users)

    @property
    def org_credit_reserve_credits(self) -> int:
        """The org reserve in credits (0 when the daily limit is unlimited)."""
        daily = self.daily_credits
        return 0 if daily is None else int(daily * self.org_credit_reserve)

    @property
    def pool_key(self) -> str:
        """A stable, secret-free key for the org: the configured one or a hash of host and client."""
        if self.org_key:
            return "".join(ch if ch.isalnum() else "_" for ch in self.org_key.lower())
        digest = hashlib.sha256(f"{self.urls().api_base}|{self.client_id}".encode()).hexdigest()
        return digest[:12]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> ZohoConfig:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is not None and raw.strip() != "":
                values[name] = raw.strip()
        values.update(overrides)
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else ""
                var = ENV_VARS.get(key, key or "ZOHO_*")
                problems.append(f"{var}: {err['msg']}")
            raise ConfigError("invalid Zoho configuration: " + "; ".join(problems)) from None
