"""Run a load in its own process and SIGKILL it after N API calls (test helper, not a test).

    python crash_runner.py CONFIG_JSON

CONFIG_JSON names the DuckDB file, the ledger URL, the emulator's base URL and credentials,
the run id, ``kill_after`` (API calls counted from the start of the load; 0 = never),
``kill_match`` (count only calls whose "METHOD path_template module" contains it) and
``users_domain`` for the provider map; optional ``steps`` (load steps, default all) and ``client``
(ZohoConfig overrides). The kill lands right after a response arrived and
before the loader could tell the ledger: the worst moment.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def main(config_path: str) -> int:
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.load import LoadContext, LoadOptions, load_all, resolve_owners, setup_schema
    from dentrix_zoho.mapping import apply_api_names, load_spec
    from dentrix_zoho.source.provider_map import ProviderMap
    from dentrix_zoho.zoho import ApiCallEvent, ZohoClient, ZohoConfig

    cfg: dict[str, Any] = json.loads(Path(config_path).read_text(encoding="utf-8"))
    armed = {"on": False, "calls": 0}
    kill_after = int(cfg.get("kill_after") or 0)

    match = str(cfg.get("kill_match") or "")

    def sink(event: ApiCallEvent) -> None:
        if not armed["on"] or match not in f"{event.method} {event.path_template} {event.module}":
            return
        armed["calls"] += 1
        if kill_after and armed["calls"] >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    client = ZohoClient(ZohoConfig(
        api_base=cfg["base_url"], accounts_url=cfg["base_url"], client_id=cfg["client_id"],
        client_secret=cfg["client_secret"], refresh_token=cfg["refresh_token"], edition="enterprise", users=5,
        backoff_base=0.002, backoff_cap=0.02, max_retries=12, **cfg.get("client", {}),
    ), sink)
    spec = load_spec()
    schema = setup_schema(client, spec)
    spec = apply_api_names(spec, schema.api_names)
    domain = cfg["users_domain"]
    providers = ProviderMap.model_validate({
        "providers": {p: f"{p.lower()}@{domain}" for p in ("DDS1", "DDS2", "HYG1")},
        "default_owner_email": f"office@{domain}",
    })
    owners = resolve_owners(client, providers, cfg["providers"])
    ledger = Ledger(cfg["ledger_url"])
    run_id = ledger.start_run("full", cfg["office_id"], run_id=cfg["run_id"])
    ctx = LoadContext(Path(cfg["duckdb_path"]), client, ledger, cfg["office_id"], run_id, spec, owners, schema,
                      LoadOptions(parallel_batches=int(cfg.get("parallel_batches", 4))))
    armed["on"] = True
    results = load_all(ctx, tuple(cfg["steps"])) if cfg.get("steps") else load_all(ctx)
    print(json.dumps({r.step: {"sent": r.sent, "ok": r.ok, "failed": r.failed} for r in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
