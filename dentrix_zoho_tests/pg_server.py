"""A real, throw-away PostgreSQL server for tests: initdb into a temporary folder, pg_ctl start, stop, remove.

No mock: the ledger, Dagster's storage and the org budget are tested against the server Debian ships
(package ``postgresql``, which ``make system-deps`` installs). Debian keeps ``initdb`` and ``pg_ctl`` in
``/usr/lib/postgresql/<version>/bin``, off PATH, so both places are searched.

The server can be stopped and started again mid-test (same port, same data) to test what happens
when PostgreSQL goes away under a running migration and comes back.

Skips only where the server binaries are truly absent; under CI (``CI`` set) their absence fails,
because the Makefile installs them and a silent skip would hide a broken install step.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"  # the account Debian's package creates; PostgreSQL refuses to run as root
StopMode = Literal["smart", "fast", "immediate"]


class PgUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed on this machine."""


@dataclass(frozen=True)
class PgBinaries:
    initdb: Path
    pg_ctl: Path

    @property
    def version(self) -> str:
        out = subprocess.run([str(self.pg_ctl), "--version"], capture_output=True, text=True, check=True)
        return out.stdout.strip()


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,): the newest installed major version wins.
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_binaries() -> PgBinaries | None:
    """``initdb`` and ``pg_ctl`` from PATH, else from the newest ``/usr/lib/postgresql/<version>/bin``."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return PgBinaries(Path(initdb), Path(pg_ctl))
    candidates = sorted((Path(p) for p in glob.glob(DEBIAN_GLOB)), key=_version_key, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return PgBinaries(folder / "initdb", folder / "pg_ctl")
    return None


def require_binaries() -> PgBinaries:
    found = find_binaries()
    if found is None:
        raise PgUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) are neither on PATH nor under "
            f"{DEBIAN_GLOB}; `make system-deps` installs Debian's postgresql package"
        )
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as_root() -> bool:
    return os.geteuid() == 0


def _as_server_user(args: list[str]) -> list[str]:
    if _run_as_root():
        return ["runuser", "-u", SERVER_USER, "--", *args]
    return args


@dataclass
class PgServer:
    """One PostgreSQL cluster in its own temporary folder, listening on 127.0.0.1 only.

    ``user``/``password`` is the cluster's superuser; TCP connections must give the password
    (scram-sha-256), so a configuration that forgets to pass it fails here as it would in production.
    """

    binaries: PgBinaries
    base: Path
    user: str = "dentrix"
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    port: int = 0
    _running: bool = False

    @classmethod
    def create(cls, user: str = "dentrix") -> PgServer:
        binaries = require_binaries()
        # Not under pytest's tmp dir: its parents are private to root, and the server runs as postgres.
        base = Path(tempfile.mkdtemp(prefix="dentrix-zoho-pg-"))
        server = cls(binaries=binaries, base=base, user=user)
        try:
            server._initdb()
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise
        atexit.register(server.destroy)
        return server

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    @property
    def running(self) -> bool:
        return self._running

    def _initdb(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if _run_as_root():
            shutil.chown(self.base, SERVER_USER)
            shutil.chown(pwfile, SERVER_USER)
        pwfile.chmod(0o600)
        self._check(
            [
                str(self.binaries.initdb),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            "initdb",
        )
        pwfile.unlink()

    def start(self) -> None:
        """Start the server; on the first start pick a free port, later starts reuse it (same URLs)."""
        if self._running:
            return
        attempts = 1 if self.port else 3
        for attempt in range(attempts):
            port = self.port or _free_port()
            options = f"-p {port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
            done = subprocess.run(
                _as_server_user(
                    [str(self.binaries.pg_ctl), "-D", str(self.data_dir), "-o", options, "-l", str(self.log_file)]
                    + ["-w", "-t", "120", "start"]
                ),
                capture_output=True,
                text=True,
            )
            if done.returncode == 0:
                self.port = port
                self._running = True
                return
            if attempt == attempts - 1:
                raise RuntimeError(f"pg_ctl start failed ({done.returncode}): {done.stderr.strip()} {self._log_tail()}")

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server. ``immediate`` is a crash: connections drop at once, recovery runs at the next start."""
        if not self._running:
            return
        self._check([str(self.binaries.pg_ctl), "-D", str(self.data_dir), "-m", mode, "-w", "stop"], "pg_ctl stop")
        self._running = False

    def restart(self, mode: StopMode = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """A SQLAlchemy URL (``postgresql+psycopg://``); ``driver=""`` gives a plain libpq URL."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database (name: letters, digits, underscore) and return its SQLAlchemy URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and underscores")
        import psycopg

        with psycopg.connect(self.url(driver=""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _check(self, args: list[str], what: str) -> None:
        done = subprocess.run(_as_server_user(args), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip()} {self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\nserver log:\n" + "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def pg_server(user: str = "dentrix") -> Iterator[PgServer]:
    """A started throw-away server, stopped and removed on exit."""
    server = PgServer.create(user=user)
    try:
        server.start()
        yield server
    finally:
        server.destroy()
        atexit.unregister(server.destroy)
