"""Zoho CRM v8 client: configuration, limits, budgeting, retries, writes, metadata.

Domain code: no Dagster import here (the resource lives in ``dentrix_zoho.defs``).
"""

from dentrix_zoho.zoho.client import BudgetCheck, ZohoClient
from dentrix_zoho.zoho.config import ConfigError, ZohoConfig
from dentrix_zoho.zoho.errors import (
    AuthError,
    BudgetExceeded,
    CreditsExhausted,
    SchemaLimitExceeded,
    UncertainOutcome,
    ZohoError,
    ZohoUnavailable,
)
from dentrix_zoho.zoho.events import ApiCallEvent, EventSink
from dentrix_zoho.zoho.org_limits import OrgLimitsUnavailable
from dentrix_zoho.zoho.outcomes import RecordOutcome
from dentrix_zoho.zoho.planning import WritePathChoice

__all__ = [
    "ApiCallEvent",
    "AuthError",
    "BudgetCheck",
    "BudgetExceeded",
    "ConfigError",
    "CreditsExhausted",
    "EventSink",
    "OrgLimitsUnavailable",
    "RecordOutcome",
    "SchemaLimitExceeded",
    "UncertainOutcome",
    "WritePathChoice",
    "ZohoClient",
    "ZohoConfig",
    "ZohoError",
    "ZohoUnavailable",
]
