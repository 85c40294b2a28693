"""The practice's image folder: x-rays, photos and scanned documents referenced from the database.

Files are small with a real format header, except a few over the 20 MB upload limit
(written sparse: seek + one byte, so they cost no disk) and a few the database
references that are not on disk at all.
"""

from __future__ import annotations

import random
from pathlib import Path

from dentrix_zoho.source.synthetic.visits import ImageRef

MARKER = ".dentrix_zoho_synthetic"
UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024

_HEADERS = {
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80\x00\x00\x01\xe0\x08\x02\x00\x00\x00",
    "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
}
_TRAILERS = {"jpg": b"\xff\xd9", "png": b"\x00\x00\x00\x00IEND\xaeB`\x82", "pdf": b"\n%%EOF\n"}


def prepare_folder(folder: Path) -> None:
    """Create (or empty) the image folder; refuse to touch a folder we did not create."""
    if folder.exists():
        if not (folder / MARKER).exists():
            raise FileExistsError(
                f"{folder} exists and was not written by the synthetic practice generator; "
                "move it away or choose another --out"
            )
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by dentrix-zoho demo-practice; safe to delete\n")


def write_images(
    folder: Path, refs: list[ImageRef], rng: random.Random, *, over_limit: int, missing: int
) -> tuple[list[str], list[str]]:
    """Write every referenced file; return (missing paths, over-limit paths), both sorted."""
    big_candidates = [r for r in refs if r.kind in ("jpg", "pdf")]
    big = {r.relpath for r in rng.sample(big_candidates, min(over_limit, len(big_candidates)))}
    rest = [r for r in refs if r.relpath not in big]
    absent = {r.relpath for r in rng.sample(rest, min(missing, len(rest)))}
    for ref in refs:
        if ref.relpath in absent:
            continue
        path = folder / ref.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        header, trailer = _HEADERS[ref.kind], _TRAILERS[ref.kind]
        with path.open("wb") as handle:
            handle.write(header)
            if ref.relpath in big:
                size = UPLOAD_LIMIT_BYTES + rng.randint(1, 7 * 1024 * 1024)
                handle.seek(size - len(trailer))
            else:
                handle.write(rng.randbytes(rng.randint(200, 4000)))
            handle.write(trailer)
    return sorted(absent), sorted(big)
