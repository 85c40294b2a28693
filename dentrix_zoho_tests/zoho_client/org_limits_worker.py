"""A process of its own against one Zoho org, for ``test_org_limits_processes.py``.

``python org_limits_worker.py '<json>'`` with ``mode``:

* ``calls``: a ``ZohoClient`` configured like a run (``org_limits_url``, ``org_key``), ``threads``
  threads each making ``rounds`` rounds of one heavy upsert (11 records) and one light call; prints
  one JSON line with what this process spent and saw.
* ``hold``: takes ``hold`` slots of the org directly, prints ``{"held": n}`` and sleeps until killed.
* ``minute``: a ``Transport`` configured like a run with ``calls_per_minute``, its org limits timed by
  real time run ``warp`` times faster from ``base``; ``threads`` threads each making ``calls`` light
  calls; prints the start times of its calls (the transport's events) and what its ceiling counted.
* ``reserve``: reserves ``ceiling`` calls of the org's minute at the fixed time ``now``, prints
  ``{"reserved": n}`` and sleeps until killed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any


def _calls(spec: dict[str, Any]) -> dict[str, Any]:
    from dentrix_zoho.zoho import ZohoClient, ZohoConfig

    config = ZohoConfig(**spec["config"])
    errors: list[str] = []
    written = 0
    lock = threading.Lock()
    with ZohoClient(config) as client:
        barrier = threading.Barrier(spec["threads"])

        def work(n: int) -> None:
            nonlocal written
            barrier.wait()
            try:
                for r in range(spec["rounds"]):
                    records = [
                        {"Last_Name": f"P{spec['tag']}-{n}-{r}-{i}", "Source_System_ID": f"{spec['tag']}:{n}:{r}:{i}"}
                        for i in range(11)
                    ]
                    outcomes = client.upsert("Contacts", records)
                    assert all(o.ok for o in outcomes)
                    client.users()
                    with lock:
                        written += len(records)
            except BaseException as exc:  # reported to the test, by class only
                errors.append(type(exc).__name__)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(spec["threads"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        transport = client.transport
        org = transport.org_limits
        summary = {
            "errors": errors,
            "written": written,
            "own_credits": client.budget.spent,
            "calls": transport.calls,
            "local_peak": transport.gates.peak,
            "waits": org.slots.waits if org is not None else None,
        }
    return summary


def _hold(spec: dict[str, Any]) -> None:
    from dentrix_zoho.zoho.org_limits import OrgLimits

    limits = OrgLimits(spec["url"], spec["org"], concurrency=spec["concurrency"], heavy_cap=spec["heavy_cap"],
                       lease_seconds=spec["lease_seconds"])
    for _ in range(spec["hold"]):
        limits.slots.acquire("all")
    print(json.dumps({"held": limits.slots.held, "holder": limits.slots.holder}), flush=True)
    while True:
        time.sleep(3600)


def _minute(spec: dict[str, Any]) -> dict[str, Any]:
    from dentrix_zoho.zoho import ZohoConfig
    from dentrix_zoho.zoho.events import ApiCallEvent
    from dentrix_zoho.zoho.limits import HEAVY_CALL_CAP
    from dentrix_zoho.zoho.org_limits import OrgLimits
    from dentrix_zoho.zoho.transport import CallSpec, Transport

    base, warp = spec["base"], spec["warp"]
    config = ZohoConfig(**spec["config"])
    assert config.org_limits_url is not None
    limits = OrgLimits(
        config.org_limits_url.get_secret_value(), config.pool_key, concurrency=config.concurrency,
        heavy_cap=HEAVY_CALL_CAP, rate_clock=lambda: base + (time.time() - base) * warp,
        rate_sleep=lambda seconds: time.sleep(seconds / warp), start_allowance=spec["allowance"],
    )
    events: list[ApiCallEvent] = []
    transport = Transport(config, event_sink=events.append, org_limits=limits)
    users = CallSpec(method="GET", path_template="/crm/v8/users", params={"type": "ActiveUsers"})
    errors: list[str] = []
    barrier = threading.Barrier(spec["threads"])

    def work() -> None:
        barrier.wait()
        try:
            for _ in range(spec["calls"]):
                assert transport.call(users).status_code == 200
        except BaseException as exc:  # reported to the test, by class only
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=work) for _ in range(spec["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ceiling = transport.org_minute
    assert ceiling is not None
    summary = {"errors": errors, "starts": [e.time for e in events if e.path_template == users.path_template],
               "started": ceiling.started, "waits": ceiling.waits}
    transport.close()
    limits.close()
    return summary


def _reserve(spec: dict[str, Any]) -> None:
    from dentrix_zoho.zoho.org_limits import OrgLimits

    limits = OrgLimits(spec["url"], spec["org"], concurrency=1, heavy_cap=1, rate_clock=lambda: spec["now"])
    reserved = limits.minute(spec["ceiling"]).reserve(spec["ceiling"])
    print(json.dumps({"reserved": reserved}), flush=True)
    while True:
        time.sleep(3600)


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec["mode"] == "hold":
        _hold(spec)
    elif spec["mode"] == "reserve":
        _reserve(spec)
    elif spec["mode"] == "minute":
        print(json.dumps(_minute(spec)), flush=True)
    else:
        print(json.dumps(_calls(spec)), flush=True)


if __name__ == "__main__":
    main()
