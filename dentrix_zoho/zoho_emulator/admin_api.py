"""Admin endpoints under ``/__emulator__/`` (deliberately not shaped like Zoho's; no auth: loopback only)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .api import Emulator, json_response
from .config import FULL_SCOPE
from .faults import FaultSpecError
from .oauth import issue_grant_code


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def canonical_snapshot(emulator: Emulator) -> dict[str, Any]:
    """Every record of every module, sorted by id, keys sorted (orjson does that on output)."""
    records = emulator.org.state.records
    modules = {m: [records[m][i] for i in sorted(records[m])] for m in sorted(records) if records[m]}
    fields = {m: sorted(f) for m, f in sorted(emulator.org.state.custom_fields.items()) if f}
    return {"modules": modules, "custom_fields": fields}


async def snapshot(request: Request) -> Response:
    body = orjson.dumps(canonical_snapshot(_emulator(request)), option=orjson.OPT_SORT_KEYS)
    return Response(body, media_type="application/json")


async def usage(request: Request) -> Response:
    emulator = _emulator(request)
    body = emulator.limits.snapshot()
    body["triggers"] = dict(sorted(emulator.triggers.items()))
    body["clock_offset_seconds"] = emulator.clock.offset
    body["faults"] = emulator.faults.spec
    return json_response(body)


async def reset(request: Request) -> Response:
    """Drop every record, custom field, upload and bulk job; users, org and tokens stay."""
    emulator = _emulator(request)
    emulator.org.store.commit([["reset"]])
    emulator.org.store.compact()
    emulator.org.rebuild_indexes()
    for path in emulator.org.store.files_dir.iterdir():
        path.unlink()
    emulator.limits.reset_counters()
    emulator.triggers.clear()
    return json_response({"status": "reset"})


async def advance_clock(request: Request) -> Response:
    emulator = _emulator(request)
    try:
        seconds = float(request.query_params.get("seconds", ""))
    except ValueError:
        return json_response({"error": "seconds must be a number"}, 400)
    emulator.clock.advance(seconds)
    return json_response({"offset_seconds": emulator.clock.offset, "now": emulator.clock.now()})


async def set_faults(request: Request) -> Response:
    emulator = _emulator(request)
    raw = await request.body()
    spec: str | None
    if raw:
        body = orjson.loads(raw)
        spec = body.get("faults")
        seed = int(body.get("seed", emulator.config.seed))
    else:
        spec = request.query_params.get("spec") or None
        seed = int(request.query_params.get("seed", emulator.config.seed))
    try:
        emulator.faults.replace(spec, seed)
    except FaultSpecError as error:
        return json_response({"error": str(error)}, 400)
    return json_response({"faults": spec, "seed": seed})


async def grant_code(request: Request) -> Response:
    """Like the API console's Self Client: mint a one-time authorization code for a scope."""
    emulator = _emulator(request)
    scope = request.query_params.get("scope", FULL_SCOPE)
    code = issue_grant_code(emulator, scope, request.query_params.get("user_id"))
    return json_response({"code": code, "scope": scope})


async def health(request: Request) -> Response:
    emulator = _emulator(request)
    return json_response({"status": "ok", "base_url": emulator.config.base_url, "edition": emulator.config.edition})
