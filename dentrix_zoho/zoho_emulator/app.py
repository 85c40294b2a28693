"""The Starlette application: accounts, API, bulk and upload routes on one port, plus the admin routes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from . import admin_api, attachments_api, bulk_api, oauth, query_api, records_api, settings_api
from .api import Emulator, error_response
from .config import EmulatorConfig
from .errors import ApiError, invalid_url


def _routes() -> list[Route]:
    r = records_api
    s = settings_api
    a = admin_api
    v8 = "/crm/v8"
    return [
        Route("/oauth/v2/token", oauth.token, methods=["POST"]),
        Route("/oauth/v2/token/revoke", oauth.revoke, methods=["POST"]),
        Route("/__emulator__/snapshot", a.snapshot, methods=["GET"]),
        Route("/__emulator__/usage", a.usage, methods=["GET"]),
        Route("/__emulator__/reset", a.reset, methods=["POST"]),
        Route("/__emulator__/advance-clock", a.advance_clock, methods=["POST"]),
        Route("/__emulator__/faults", a.set_faults, methods=["POST"]),
        Route("/__emulator__/grant-code", a.grant_code, methods=["POST"]),
        Route("/__emulator__/health", a.health, methods=["GET"]),
        Route(f"{v8}/users", s.list_users, methods=["GET"]),
        Route(f"{v8}/users/{{user_id}}", s.get_user, methods=["GET"]),
        Route(f"{v8}/org", s.get_org, methods=["GET"]),
        Route(f"{v8}/settings/modules", s.list_modules, methods=["GET"]),
        Route(f"{v8}/settings/modules/{{module}}", s.get_module, methods=["GET"]),
        Route(f"{v8}/settings/fields", s.list_fields, methods=["GET"]),
        Route(f"{v8}/settings/fields", s.create_fields, methods=["POST"]),
        Route(f"{v8}/settings/fields/{{field_id}}", s.get_field, methods=["GET"]),
        Route(f"{v8}/settings/fields/{{field_id}}", s.update_field, methods=["PATCH"]),
        Route(f"{v8}/settings/layouts", s.list_layouts, methods=["GET"]),
        *query_api.ROUTES,
        *attachments_api.ROUTES,
        *bulk_api.ROUTES,
        Route(f"{v8}/{{module}}/upsert", r.upsert_records, methods=["POST"]),
        Route(f"{v8}/{{module}}/actions/count", r.count_records, methods=["GET"]),
        Route(f"{v8}/{{module}}/deleted", r.list_deleted, methods=["GET"]),
        Route(f"{v8}/{{module}}/{{record_id}}/Notes", r.list_record_notes, methods=["GET"]),
        Route(f"{v8}/{{module}}/{{record_id}}/Notes", r.insert_record_notes, methods=["POST"]),
        Route(f"{v8}/{{module}}", r.list_records, methods=["GET"]),
        Route(f"{v8}/{{module}}", r.insert_records, methods=["POST"]),
        Route(f"{v8}/{{module}}", r.update_records, methods=["PUT"]),
        Route(f"{v8}/{{module}}", r.delete_records, methods=["DELETE"]),
        Route(f"{v8}/{{module}}/{{record_id}}", r.get_record, methods=["GET"]),
        Route(f"{v8}/{{module}}/{{record_id}}", r.update_records, methods=["PUT"]),
        Route(f"{v8}/{{module}}/{{record_id}}", r.delete_records, methods=["DELETE"]),
        Route("/crm/{version}/{rest:path}", _old_version,
              methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]


async def _old_version(request: Request) -> Response:
    """Another API version (``/crm/v2/...``): the emulator speaks v8 only."""
    if request.path_params["version"] == "v8":
        # A v8 path no route took: a known path with another method, or no such path.
        if any(route.matches(request.scope)[0] == Match.PARTIAL for route in request.app.routes):
            return error_response(ApiError(405, "INVALID_REQUEST_METHOD",
                                           "The http request method type is not a valid one"))
        return error_response(invalid_url())
    return error_response(ApiError(400, "API_NOT_SUPPORTED", "api version is not supported",
                                   {"supported_version": 8}))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(ApiError(405, "INVALID_REQUEST_METHOD",
                                       "The http request method type is not a valid one"))
    return error_response(invalid_url())


def create_app(config: EmulatorConfig) -> Starlette:
    app = Starlette(routes=_routes(), exception_handlers={HTTPException: _http_error})
    app.state.emulator = Emulator(config)
    bulk_api.fail_interrupted_jobs(app.state.emulator)
    return app
