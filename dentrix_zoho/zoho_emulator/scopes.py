"""OAuth scope checks (crm-oas v8.0/common.json securitySchemes). Scopes compare case-insensitively."""

from __future__ import annotations

from .errors import scope_mismatch

# Operation -> the scope operation words that grant it.
_GRANTS = {
    "READ": ("ALL", "READ"),
    "CREATE": ("ALL", "WRITE", "CREATE"),
    "UPDATE": ("ALL", "WRITE", "UPDATE"),
    "DELETE": ("ALL", "WRITE", "DELETE"),
}


def parse_scopes(raw: str) -> frozenset[str]:
    return frozenset(s.strip().lower() for s in raw.replace(",", " ").split() if s.strip())


def has_any(scopes: frozenset[str], *wanted: str) -> bool:
    return any(w.lower() in scopes for w in wanted)


def require_any(scopes: frozenset[str], *wanted: str) -> None:
    if not has_any(scopes, *wanted):
        raise scope_mismatch()


def require_module(scopes: frozenset[str], module: str, operation: str) -> None:
    """``ZohoCRM.modules.ALL`` or ``ZohoCRM.modules.{module}.{op}``; upsert asks for CREATE and UPDATE."""
    if "zohocrm.modules.all" in scopes:
        return
    ops = ("CREATE", "UPDATE") if operation == "UPSERT" else (operation,)
    for op in ops:
        if not any(f"zohocrm.modules.{module.lower()}.{g.lower()}" in scopes for g in _GRANTS[op]):
            raise scope_mismatch()


def require_settings(scopes: frozenset[str], area: str, operation: str) -> None:
    grants = ("ALL", "READ") if operation == "READ" else ("ALL", operation)
    wanted = ["ZohoCRM.settings.ALL"] + [f"ZohoCRM.settings.{area}.{g}" for g in grants]
    require_any(scopes, *wanted)
