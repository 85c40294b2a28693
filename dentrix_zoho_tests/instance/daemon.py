"""Start and stop a real `dagster-daemon run` on a test instance, with the gated code location."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dentrix_zoho_tests.instance.queue_defs import GATE_ENV

QUEUE_DEFS = Path(__file__).with_name("queue_defs.py")


def _daemon_binary() -> str:
    beside = Path(sys.executable).with_name("dagster-daemon")
    return str(beside) if beside.exists() else "dagster-daemon"


def make_gate(folder: Path, requests: Sequence[dict[str, Any]]) -> Path:
    """The folder the gated runs talk through, with the runs the sensor is to submit."""
    folder.mkdir()
    (folder / "requests.json").write_text(json.dumps(list(requests)))
    return folder


def started(gate: Path) -> set[str]:
    """The run ids whose op has started."""
    return {path.name.removeprefix("started-") for path in gate.glob("started-*")}


def release(gate: Path, run_id: str) -> None:
    (gate / f"release-{run_id}").touch()


@contextmanager
def running_daemon(home: Path, gate: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run` on the instance in ``home``, writing to ``log``. Its code server and the run
    processes it starts share its process group, which is ended (TERM, then KILL) on exit."""
    env = {**os.environ, "DAGSTER_HOME": str(home), GATE_ENV: str(gate)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_daemon_binary(), "run", "-f", str(QUEUE_DEFS), "--working-directory", str(QUEUE_DEFS.parent)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                continue


def log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_for(condition: Callable[[], bool], what: str, log: Path, bound_seconds: float = 240) -> None:
    """Poll ``condition`` until it holds; the bound only stops a broken test, it measures nothing."""
    deadline = time.monotonic() + bound_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}; daemon log:\n{log_tail(log)}")
        time.sleep(0.25)
