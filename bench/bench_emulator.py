"""Benchmark: write calls per second the Zoho emulator sustains at zero latency.

Starts the emulator as a subprocess on loopback (``running_emulator``), then drives it from several
threads, each with its own httpx connection, posting 100-record insert and upsert calls to Contacts
for a fixed time. Request bodies are encoded once up front so the measurement is of the emulator,
not of the client's JSON encoding. Prints calls/s, records/s and the ratio against the 200 calls/s target,
plus the emulator's own CPU time per call (from /proc), which tells what it could sustain on an idle
core when other work on the machine shares the two cores (the load average is printed too).

    python -m bench.bench_emulator [--seconds 10] [--threads 8]     (also run by ``python -m bench``)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

from dentrix_zoho.zoho_emulator.testing import running_emulator

TARGET_CALLS_PER_SECOND = 200
RECORDS_PER_CALL = 100


def _bodies(worker: int) -> list[bytes]:
    bodies = []
    for variant in range(4):
        records = [{"Last_Name": f"Bench{worker}-{variant}-{i}", "First_Name": "Pat",
                    "Email": f"w{worker}v{variant}r{i}@bench.example", "Phone": "+1 555 0100",
                    "Mailing_City": "Springfield", "Date_of_Birth": "1980-05-01", "Lead_Source": "Web Download",
                    "Description": "synthetic benchmark record"} for i in range(RECORDS_PER_CALL)]
        bodies.append(orjson.dumps({"data": records, "trigger": [], "duplicate_check_fields": ["Email"]}))
    return bodies


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(seconds: float, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, running_emulator(
            Path(tmp), credits=10**9) as emulator:
        token = httpx.post(f"{emulator.base_url}/oauth/v2/token", data={
            "grant_type": "refresh_token", "client_id": emulator.client_id,
            "client_secret": emulator.client_secret, "refresh_token": emulator.refresh_token}).json()["access_token"]
        headers = {"Authorization": f"Zoho-oauthtoken {token}", "Content-Type": "application/json"}
        counts = [0] * threads
        failures = [0] * threads
        stop = time.monotonic() + seconds

        def worker(index: int) -> None:
            bodies = _bodies(index)
            with httpx.Client(base_url=f"{emulator.base_url}/crm/v8", headers=headers, timeout=30) as http:
                n = 0
                while time.monotonic() < stop:
                    path = "/Contacts" if n % 2 == 0 else "/Contacts/upsert"
                    response = http.post(path, content=bodies[n % len(bodies)])
                    if response.status_code in (200, 201):
                        counts[index] += 1
                    else:
                        failures[index] += 1
                    n += 1

        cpu_before = _cpu_seconds(emulator.process.pid)
        started = time.monotonic()
        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.monotonic() - started
        cpu = _cpu_seconds(emulator.process.pid) - cpu_before
        calls = sum(counts)
        rate = calls / elapsed
        usage = emulator.usage()
        print(f"emulator write benchmark: {threads} threads, {elapsed:.1f}s, {RECORDS_PER_CALL} records per call")
        print(f"  calls: {calls} ok, {sum(failures)} failed; max concurrency seen {usage['concurrency']['max_seen']}")
        print(f"  {rate:.0f} calls/s ({rate * RECORDS_PER_CALL:.0f} records/s)")
        print(f"  ratio to the {TARGET_CALLS_PER_SECOND} calls/s target: {rate / TARGET_CALLS_PER_SECOND:.2f}")
        if calls:
            per_cpu = calls / cpu if cpu else float("inf")
            print(f"  emulator CPU: {cpu:.1f}s, {cpu / calls * 1000:.2f} ms per call = {per_cpu:.0f} calls per "
                  f"CPU-second (ratio {per_cpu / TARGET_CALLS_PER_SECOND:.2f}); "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        return rate


def main(argv: list[str] | None = None) -> int:
    """0 when the emulator sustained the target in this run (the ``python -m bench`` convention)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv or [])  # the bench runner calls main() with no arguments
    return 0 if run(args.seconds, args.threads) >= TARGET_CALLS_PER_SECOND else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
