"""The Zoho CRM client as a Dagster resource, and the pool that shares one org's concurrency.

Thin on purpose: configuration in, ``ZohoClient`` out. Secrets come through
``dg.EnvVar`` so they never land in run config or the UI.

Pool: every asset that calls Zoho declares ``pool=zoho_pool_name(...)``. Set the
pool's limit on the Dagster instance (``dagster instance concurrency set
<pool> <slots>``) and the same number in ``pool_slots``: each op's client then
takes ``edition concurrency // pool_slots`` connections, so all runs against one
org together stay within the org's concurrency limit.

With the org's shared limiter (``ZOHO_ORG_LIMITS_URL``) the split is not needed: every
run may use the edition's whole concurrency, and the limiter keeps the sum of all runs'
calls within it (and their credits within the org's day); set the pool as wide as
``max_concurrent_runs`` then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from dentrix_zoho.zoho import EventSink, ZohoClient, ZohoConfig
from dentrix_zoho.zoho.auth import SHARED_TOKENS

POOL_PREFIX = "zoho_api_"


def zoho_pool_name(config: ZohoConfig) -> str:
    """``zoho_api_<org key>``: one pool per Zoho org (``ZOHO_ORG``, else a hash of API host and client id)."""
    return POOL_PREFIX + config.pool_key


def zoho_pool_name_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The pool name at definition time, before any resource is built; a fixed default without settings."""
    env = os.environ if environ is None else environ
    if env.get("ZOHO_ORG"):
        return POOL_PREFIX + "".join(ch if ch.isalnum() else "_" for ch in env["ZOHO_ORG"].lower())
    try:
        return zoho_pool_name(ZohoConfig.from_env(env))
    except ValueError:
        return POOL_PREFIX + "default"


class ZohoResource(dg.ConfigurableResource):
    """Zoho CRM v8 access for assets. Build with ``ZohoResource.from_env_vars()``."""

    client_id: str
    client_secret: str
    refresh_token: str
    dc: str | None = None
    environment: str = "production"
    api_base: str | None = None
    accounts_url: str | None = None
    upload_url: str | None = None
    edition: str = "enterprise"
    users: int = 1
    org_key: str | None = None
    max_concurrency: int | None = None
    pool_slots: int = Field(default=1, ge=1, description="the Dagster pool's limit for this org")
    calls_per_minute: int | None = None
    on_budget_exhausted: str = "stop"
    # The org's shared limiter; the URL may carry a password, so it only ever comes by EnvVar.
    org_limits_url: str | None = None
    org_credit_reserve: float | None = None
    org_lease_seconds: float | None = None

    @classmethod
    def from_env_vars(cls, **overrides: object) -> ZohoResource:
        """Every field bound to its ``ZOHO_*`` variable; only the three secrets are required."""
        optional = {
            "dc": "ZOHO_DC",
            "environment": "ZOHO_ENVIRONMENT",
            "api_base": "ZOHO_API_BASE",
            "accounts_url": "ZOHO_ACCOUNTS_URL",
            "upload_url": "ZOHO_UPLOAD_URL",
            "edition": "ZOHO_EDITION",
            "org_key": "ZOHO_ORG",
            "on_budget_exhausted": "ZOHO_ON_BUDGET_EXHAUSTED",
            "org_limits_url": "ZOHO_ORG_LIMITS_URL",
        }
        values: dict[str, object] = {
            "client_id": dg.EnvVar("ZOHO_CLIENT_ID"),
            "client_secret": dg.EnvVar("ZOHO_CLIENT_SECRET"),
            "refresh_token": dg.EnvVar("ZOHO_REFRESH_TOKEN"),
        }
        values.update({name: dg.EnvVar(var) for name, var in optional.items() if os.environ.get(var)})
        for name, var in (
            ("users", "ZOHO_USERS"),
            ("max_concurrency", "ZOHO_MAX_CONCURRENCY"),
            ("calls_per_minute", "ZOHO_CALLS_PER_MINUTE"),
        ):
            if os.environ.get(var):
                values[name] = dg.EnvVar.int(var)
        # Not secrets, and read here: Dagster's config has no float from the environment, and an
        # EnvVar placeholder cannot pass pool_slots' bound.
        for name, var, kind in (("pool_slots", "ZOHO_POOL_SLOTS", int),
                                ("org_credit_reserve", "ZOHO_ORG_CREDIT_RESERVE", float),
                                ("org_lease_seconds", "ZOHO_ORG_LEASE_SECONDS", float)):
            if os.environ.get(var):
                try:
                    values[name] = kind(os.environ[var])
                except ValueError:
                    raise ValueError(f"{var} must be a number, got {os.environ[var]!r}") from None
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def zoho_config(self) -> ZohoConfig:
        base = ZohoConfig(
            dc=self.dc,
            environment=self.environment,  # type: ignore[arg-type]
            api_base=self.api_base,
            accounts_url=self.accounts_url,
            upload_url=self.upload_url,
            client_id=self.client_id,
            client_secret=self.client_secret,  # type: ignore[arg-type]
            refresh_token=self.refresh_token,  # type: ignore[arg-type]
            edition=self.edition,  # type: ignore[arg-type]
            users=self.users,
            org_key=self.org_key,
            max_concurrency=self.max_concurrency,
            calls_per_minute=self.calls_per_minute,
            on_budget_exhausted=self.on_budget_exhausted,  # type: ignore[arg-type]
            org_limits_url=self.org_limits_url,  # type: ignore[arg-type]
            **{name: value for name, value in (("org_credit_reserve", self.org_credit_reserve),
                                               ("org_lease_seconds", self.org_lease_seconds)) if value is not None},
        )
        if self.org_limits_url:
            return base  # the shared limiter holds every run's calls together
        share = max(1, base.concurrency // self.pool_slots)
        return base.model_copy(update={"max_concurrency": share})

    @property
    def pool_name(self) -> str:
        return zoho_pool_name(self.zoho_config())

    def get_client(self, event_sink: EventSink | None = None) -> ZohoClient:
        # One access token per process for every asset's client: Zoho limits how many a refresh token mints.
        return ZohoClient(self.zoho_config(), event_sink, token_cache=SHARED_TOKENS)
