"""The emulator's state: in-memory tables, persisted as a compacted snapshot plus a write-ahead append log.

Every API call that changes state produces a list of *set-style* operations (put a whole record, delete
an id, define a field, ...), applies them in memory and appends them to ``journal.log`` as ONE line
before it answers. Nothing else runs in between (one event loop; no ``await`` inside a transaction), so
no client ever sees a write that is not journaled, and a SIGKILL leaves either the whole call or
nothing. Replaying is idempotent, which lets start-up (and a journal past 256 MB, and a reset) compact
the journal into ``state.json`` without a window where a crash loses data. A torn last line (power
loss) is discarded on replay. The journal is not fsynced: a killed process keeps what it wrote, a lost
machine may lose the last calls.

A field definition is stored as its own copy, without the engine's private keys (``_values``: the
picklist as a frozenset, which the engine adds to the definitions it caches): what is journaled and
snapshotted is what ``POST /settings/fields`` defined, and nothing the engine caches on it later can
make a line unwritable (a subform's picklist rows once did, and the call's fields were lost on restart).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

Op = list[Any]
STALE_TOKEN_SECONDS = 24 * 3600
COMPACT_AFTER_BYTES = 256 * 1024 * 1024


class Clock:
    """Wall clock plus an offset that tests move forward instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def _plain(value: Any) -> Any:
    """What orjson cannot write by itself: sets become sorted lists (never an unwritable journal line)."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"cannot journal a {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_plain)


def stored_field(field: dict[str, Any]) -> dict[str, Any]:
    """A field definition as it is kept and written: a copy (subform rows too) without private keys."""
    out = {k: v for k, v in field.items() if not k.startswith("_")}
    if isinstance(out.get("subform_fields"), list):
        out["subform_fields"] = [stored_field(row) if isinstance(row, dict) else row for row in out["subform_fields"]]
    return out


class State:
    """Every table the emulator keeps. Mutated only through :meth:`apply`."""

    def __init__(self) -> None:
        self.seq = 0
        self.org: dict[str, Any] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.custom_fields: dict[str, dict[str, dict[str, Any]]] = {}
        # module -> field api_name -> the field's whole picklist after a PATCH /settings/fields/{id}
        self.picklists: dict[str, dict[str, list[str]]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.grant_codes: dict[str, dict[str, Any]] = {}
        self.bulk_files: dict[str, dict[str, Any]] = {}
        self.bulk_jobs: dict[str, dict[str, Any]] = {}
        self.recycle_bin: dict[str, dict[str, dict[str, Any]]] = {}

    def apply(self, op: Op) -> None:
        kind = op[0]
        if kind == "put":
            self.records.setdefault(op[1], {})[op[2]["id"]] = op[2]
        elif kind == "del":
            self.records.get(op[1], {}).pop(op[2], None)
        elif kind == "field":
            # Its own copy: the operation stays as it was defined, whatever the engine caches on the state's.
            self.custom_fields.setdefault(op[1], {})[op[2]["api_name"]] = stored_field(op[2])
        elif kind == "picklist":
            self.picklists.setdefault(op[1], {})[op[2]] = op[3]
        elif kind == "user":
            self.users[op[1]["id"]] = op[1]
        elif kind == "org":
            self.org = op[1]
        elif kind == "rt":
            self.refresh_tokens[op[1]] = op[2]
        elif kind == "rt_del":
            self.refresh_tokens.pop(op[1], None)
        elif kind == "at":
            self.access_tokens[op[1]] = op[2]
        elif kind == "code":
            self.grant_codes[op[1]] = op[2]
        elif kind == "code_del":
            self.grant_codes.pop(op[1], None)
        elif kind == "bfile":
            self.bulk_files[op[1]] = op[2]
        elif kind == "bjob":
            self.bulk_jobs[op[1]] = op[2]
        elif kind == "bin":
            self.recycle_bin.setdefault(op[1], {})[op[2]["id"]] = op[2]
        elif kind == "reset":
            self.records.clear()
            self.custom_fields.clear()
            self.picklists.clear()
            self.bulk_files.clear()
            self.bulk_jobs.clear()
            self.recycle_bin.clear()
        else:  # pragma: no cover - a journal from a newer version
            raise ValueError(f"unknown journal operation {kind!r}")

    def to_json(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _TABLES}
        out["custom_fields"] = {module: {name: stored_field(f) for name, f in fields.items()}
                                for module, fields in self.custom_fields.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        state = cls()
        for name in _TABLES:
            if name in data:
                setattr(state, name, data[name])
        return state


def _written(op: Op) -> Op:
    return [op[0], op[1], stored_field(op[2])] if op[0] == "field" else op


_TABLES = (
    "seq", "org", "users", "records", "custom_fields", "picklists", "refresh_tokens", "access_tokens",
    "grant_codes", "bulk_files", "bulk_jobs", "recycle_bin",
)


class Store:
    """Owns the data directory: the snapshot, the journal and the attachment/upload files."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.files_dir = data_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_path = data_dir / "state.json"
        self.journal_path = data_dir / "journal.log"
        self.state = self._load()
        self._drop_stale_tokens()
        self.compact()
        self._journal_bytes = 0
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    @property
    def is_fresh(self) -> bool:
        return not self.state.org

    def next_id(self) -> str:
        self.state.seq += 1
        return f"{self.state.org.get('id_prefix', '6421000')}{self.state.seq:012d}"

    def commit(self, ops: list[Op]) -> None:
        """Journal one API call's operations as one line, then apply them."""
        if not ops:
            return
        self.commit_applied(ops)
        for op in ops:
            self.state.apply(op)

    def commit_applied(self, ops: list[Op]) -> None:
        """Journal operations the caller has already applied to memory (one line, one write)."""
        line = memoryview(dumps({"s": self.state.seq, "ops": [_written(op) for op in ops]}) + b"\n")
        self._journal_bytes += len(line)
        while line:
            line = line[os.write(self._fd, line):]
        if self._journal_bytes > COMPACT_AFTER_BYTES:
            self.compact()

    def close(self) -> None:
        os.close(self._fd)

    def file_path(self, file_id: str) -> Path:
        return self.files_dir / file_id

    def _load(self) -> State:
        state = State()
        if self.snapshot_path.exists():
            state = State.from_json(orjson.loads(self.snapshot_path.read_bytes()))
        if not self.journal_path.exists():
            return state
        good = 0
        with open(self.journal_path, "rb") as journal:
            for raw in journal:
                if not raw.endswith(b"\n"):
                    break
                try:
                    entry = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    break
                for op in entry["ops"]:
                    state.apply(op)
                state.seq = max(state.seq, entry["s"])
                good += len(raw)
        size = self.journal_path.stat().st_size
        if good != size:
            log.warning("discarding a torn journal tail of %d bytes", size - good)
        return state

    def _drop_stale_tokens(self) -> None:
        """Access tokens a day past expiry can never be used again; keep the snapshot small."""
        horizon = time.time() - STALE_TOKEN_SECONDS
        tokens = self.state.access_tokens
        self.state.access_tokens = {k: v for k, v in tokens.items() if v["expires_at"] > horizon}

    def compact(self) -> None:
        """Write the whole state to the snapshot and empty the journal (the fd is O_APPEND, so later
        writes land at the new end)."""
        self._journal_bytes = 0
        tmp = self.snapshot_path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(dumps(self.state.to_json()))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.snapshot_path)
        # Replaying the old journal over the new snapshot is harmless (set-style ops), so a crash
        # between the rename and this truncation loses nothing.
        with open(self.journal_path, "wb"):
            pass
