"""Start and stop a real `dagster-daemon run` on a test instance, with the gated code location."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dentrix_zoho_tests.instance.queue_defs import GATE_ENV

QUEUE_DEFS = Path(__file__).with_name("queue_defs.py")


def venv_binary(name: str) -> str:
    """A command installed beside this Python (the venv's), else as found on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


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


def process_tree(root: int) -> set[tuple[int, str]]:
    """``root``'s descendants as (pid, start time), read from /proc; the start time tells a process
    from a later one that reused its pid."""
    children: dict[int, list[int]] = {}
    started_at: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        started_at[pid] = fields[19]
    found: set[tuple[int, str]] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.add((pid, started_at[pid]))
        todo.extend(children.get(pid, []))
    return found


def _end_leftovers(tree: set[tuple[int, str]]) -> None:
    # The daemon starts its code server in a session of its own, so ending the daemon's process group
    # does not reach it; a code server still waiting on held runs would outlive the test.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid, start in tree if _start_time(pid) == start]
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in alive if _start_time(pid) is not None and not _zombie(pid)]
            time.sleep(0.1)
        if not alive:
            return


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


@contextmanager
def daemon_process(args: Sequence[str], env: Mapping[str, str], log: Path,
                   cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon ARGS`, writing to ``log``. On exit the daemon's process group is ended (TERM,
    then KILL), then whatever it started that is still alive (its code server and the run processes
    under it)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [venv_binary("dagster-daemon"), *args],
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        tree = process_tree(proc.pid)
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
        _end_leftovers(tree)


@contextmanager
def running_daemon(home: Path, gate: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run` on the instance in ``home`` with the gated code location (``daemon_process``)."""
    env = {**os.environ, "DAGSTER_HOME": str(home), GATE_ENV: str(gate)}
    with daemon_process(["run", "-f", str(QUEUE_DEFS), "--working-directory", str(QUEUE_DEFS.parent)],
                        env, log) as proc:
        yield proc


def log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_for(condition: Callable[[], bool], what: str, log: Path, bound_seconds: float = 240) -> None:
    """Poll ``condition`` until it holds; the bound only stops a broken test, it measures nothing."""
    deadline = time.monotonic() + bound_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}; daemon log:\n{log_tail(log)}")
        time.sleep(0.25)
