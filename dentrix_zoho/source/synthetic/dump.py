"""A canonical, order-free dump of a synthetic practice, for determinism checks."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from dentrix_zoho.source.synthetic.images import MARKER
from dentrix_zoho.source.synthetic.paths import PracticeFiles


def canonical_dump(db_path: Path, *, include_images: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows sorted, the schema, and (optionally) the image folder's files with digests."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        dump: dict[str, list[tuple[Any, ...]]] = {"__schema__": schema}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            dump[table] = sorted(rows, key=repr)
    finally:
        conn.close()
    if include_images:
        folder = PracticeFiles(Path(db_path)).images_dir
        files = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER):
            size = path.stat().st_size
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if size < 1_000_000 else ""
            files.append((path.relative_to(folder).as_posix(), size, digest))
        dump["__images__"] = files
    return dump


def canonical_digest(db_path: Path, *, include_images: bool = True) -> str:
    """SHA-256 over the canonical dump: equal digests mean equal content."""
    digest = hashlib.sha256()
    for name, rows in sorted(canonical_dump(db_path, include_images=include_images).items()):
        digest.update(name.encode())
        for row in rows:
            digest.update(repr(row).encode())
    return digest.hexdigest()
