"""The accounts server: ``POST /oauth/v2/token`` and ``/oauth/v2/token/revoke`` (Zoho Accounts: https://www.zoho.com/accounts/protocol/oauth/self-client/authorization-code-flow.html).

Errors are HTTP 200 with ``{"error": ...}``, as Zoho answers them. Parameters come from the query string
or a form body. A refresh token mints at most ``token_mint_limit`` access tokens per 10 minutes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .api import Emulator, json_response
from .engine import new_token

MINT_WINDOW_SECONDS = 600
GRANT_CODE_TTL_SECONDS = 180


def _error(code: str, **extra: Any) -> Response:
    return json_response({"error": code, **extra}, 200)


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if "form" in content_type:
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _scope_words(scope: str) -> str:
    return " ".join(s.strip() for s in scope.replace(",", " ").split() if s.strip())


def _mint_allowed(emulator: Emulator, refresh_token: str) -> bool:
    limit = emulator.config.token_mint_limit
    if limit <= 0:
        return True
    now = emulator.clock.now()
    mints = emulator.token_mints.setdefault(refresh_token, deque())
    while mints and mints[0] <= now - MINT_WINDOW_SECONDS:
        mints.popleft()
    if len(mints) >= limit:
        return False
    mints.append(now)
    return True


def _issue_access_token(emulator: Emulator, refresh_token: str, grant: dict[str, Any]) -> dict[str, Any]:
    access = new_token()
    ttl = emulator.config.token_ttl
    emulator.org.store.commit([["at", access, {
        "user_id": grant["user_id"], "scope": grant["scope"], "refresh_token": refresh_token,
        "expires_at": emulator.clock.now() + ttl}]])
    return {"access_token": access, "scope": _scope_words(grant["scope"]),
            "api_domain": emulator.config.base_url, "token_type": "Bearer", "expires_in": ttl}


async def token(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    emulator.limits.calls["POST /oauth/v2/token"] += 1
    params = await _params(request)
    grant_type = params.get("grant_type")
    if grant_type not in ("refresh_token", "authorization_code"):
        return _error("unsupported_grant_type")
    if params.get("client_id") != emulator.config.client_id:
        return _error("invalid_client")
    if params.get("client_secret") != emulator.config.client_secret:
        return _error("invalid_client_secret")
    state = emulator.org.state
    if grant_type == "refresh_token":
        refresh = params.get("refresh_token", "")
        grant = state.refresh_tokens.get(refresh)
        if grant is None or grant["user_id"] not in state.users:
            return _error("invalid_code")
        if not _mint_allowed(emulator, refresh):
            return _error("Access Denied", error_description=(
                "You have made too many requests continuously. Please try again after some time."))
        return json_response(_issue_access_token(emulator, refresh, grant))
    code = params.get("code", "")
    grant = state.grant_codes.get(code)
    if grant is None or grant["expires_at"] <= emulator.clock.now():
        return _error("invalid_code")
    refresh = new_token()
    record = {"client_id": emulator.config.client_id, "user_id": grant["user_id"], "scope": grant["scope"],
              "created": emulator.clock.now()}
    emulator.org.store.commit([["code_del", code], ["rt", refresh, record]])
    body = _issue_access_token(emulator, refresh, record)
    return json_response({**body, "refresh_token": refresh})


async def revoke(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    params = await _params(request)
    refresh = params.get("token", "")
    if refresh not in emulator.org.state.refresh_tokens:
        return _error("invalid_code")
    ops: list[list[Any]] = [["rt_del", refresh]]
    ops += [["at", access, {**info, "expires_at": 0}]
            for access, info in emulator.org.state.access_tokens.items() if info.get("refresh_token") == refresh]
    emulator.org.store.commit(ops)
    return json_response({"status": "success"})


def issue_grant_code(emulator: Emulator, scope: str, user_id: str | None) -> str:
    """What the API console's Self Client "Generate Code" does: a one-time code, 3 minutes."""
    users = emulator.org.state.users
    owner = user_id if user_id in users else next(iter(users))
    code = new_token()
    emulator.org.store.commit([["code", code, {"user_id": owner, "scope": scope,
                                               "expires_at": emulator.clock.now() + GRANT_CODE_TTL_SECONDS}]])
    return code
