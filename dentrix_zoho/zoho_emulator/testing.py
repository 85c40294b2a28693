"""Run the emulator as a subprocess for tests and demos.

``running_emulator(data_dir)`` starts ``python -m dentrix_zoho.zoho_emulator`` on a free loopback port,
waits until it answers, yields an :class:`EmulatorHandle`, and stops it on exit. The OAuth client it
accepts is the demo one (``config.DEMO_CLIENT_ID`` / ``DEMO_CLIENT_SECRET`` / ``DEMO_REFRESH_TOKEN``):
the helper clears ``ZOHO_CLIENT_ID``, ``ZOHO_CLIENT_SECRET`` and ``ZOHO_REFRESH_TOKEN`` in the child's
environment so a developer's real settings never leak into a test, unless ``credentials=`` passes
them explicitly (``{"ZOHO_CLIENT_ID": ..., ...}``). The handle carries the values in force.
The server's output goes to ``<data_dir>/emulator.log`` (method, path template, status, latency only).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN

START_TIMEOUT_SECONDS = 30.0
CREDENTIAL_VARS = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN")
PORT_ATTEMPTS = 3


class EmulatorStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class EmulatorHandle:
    base_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    args: list[str] = field(repr=False)
    _log: Any = field(default=None, repr=False)
    _http: httpx.Client | None = field(default=None, repr=False)
    _credentials: dict[str, str] = field(default_factory=dict, repr=False)

    # ---- admin endpoints ----------------------------------------------------------------------

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._http is None:
            self._http = httpx.Client(base_url=f"{self.base_url}/__emulator__", timeout=30)
        response = self._http.request(method, f"/{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "snapshot")
        return result

    def usage(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "usage")
        return result

    def reset(self) -> None:
        self._admin("POST", "reset")

    def set_faults(self, spec: str | None, seed: int | None = None) -> None:
        body: dict[str, Any] = {"faults": spec}
        if seed is not None:
            body["seed"] = seed
        self._admin("POST", "faults", json=body)

    def advance_clock(self, seconds: float) -> None:
        self._admin("POST", "advance-clock", params={"seconds": seconds})

    def grant_code(self, scope: str) -> str:
        """A one-time authorization code for ``scope`` (what the API console's Self Client gives)."""
        code: str = self._admin("POST", "grant-code", params={"scope": scope})["code"]
        return code

    # ---- process control ----------------------------------------------------------------------

    def start(self) -> None:
        self._log = open(self.data_dir / "emulator.log", "ab")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
        env.update(self._credentials)
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with httpx.Client(timeout=1) as probe:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.stop()
                    raise EmulatorStartError(f"emulator exited with {self.process.returncode}; "
                                             f"see {self.data_dir / 'emulator.log'}")
                try:
                    if probe.get(f"{self.base_url}/__emulator__/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise EmulatorStartError(f"emulator did not answer within {START_TIMEOUT_SECONDS:.0f}s")

    def stop(self, *, kill: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._http is not None:
            self._http.close()
            self._http = None

    def use_port(self, port: int) -> None:
        self.args[self.args.index("--port") + 1] = str(port)
        self.base_url = f"http://127.0.0.1:{port}"

    def restart(self, *, kill: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL with ``kill=True``) and start again on the same port and data."""
        self.stop(kill=kill)
        self.start()


@contextmanager
def running_emulator(data_dir: Path, *, edition: str = "enterprise", users: int = 5, latency_ms: float = 0,
                     faults: str | None = None, seed: int = 0, credits: int | None = None,
                     max_attachment_mb: int = 20, extra_args: Sequence[str] = (),
                     credentials: Mapping[str, str] | None = None) -> Iterator[EmulatorHandle]:
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [sys.executable, "-m", "dentrix_zoho.zoho_emulator", "--host", "127.0.0.1", "--port", str(port),
            "--edition", edition, "--users", str(users), "--data-dir", str(data_dir),
            "--latency-ms", str(latency_ms), "--seed", str(seed), "--max-attachment-mb", str(max_attachment_mb)]
    if faults:
        args += ["--faults", faults]
    if credits is not None:
        args += ["--credits", str(credits)]
    args += list(extra_args)
    chosen = {k: v for k, v in (credentials or {}).items() if k in CREDENTIAL_VARS and v}
    handle = EmulatorHandle(base_url=f"http://127.0.0.1:{port}",
                            client_id=chosen.get("ZOHO_CLIENT_ID", DEMO_CLIENT_ID),
                            client_secret=chosen.get("ZOHO_CLIENT_SECRET", DEMO_CLIENT_SECRET),
                            refresh_token=chosen.get("ZOHO_REFRESH_TOKEN", DEMO_REFRESH_TOKEN),
                            data_dir=data_dir, process=None, args=args,  # type: ignore[arg-type]
                            _credentials=chosen)
    for attempt in range(PORT_ATTEMPTS):
        try:
            handle.start()
            break
        except EmulatorStartError:
            # Another process may have taken the free port between our probe and the bind: try another.
            if attempt == PORT_ATTEMPTS - 1 or handle.process.returncode is None:
                raise
            handle.use_port(free_port())
    try:
        yield handle
    finally:
        handle.stop()
