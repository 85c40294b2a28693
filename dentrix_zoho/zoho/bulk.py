"""Bulk Write files: records to a zipped CSV, and the result CSV back to per-record outcomes.

Pure functions; the HTTP steps (upload, job, polling, download) live in the client.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dentrix_zoho.zoho.limits import BULK_WRITE_MAX_BYTES, BULK_WRITE_MAX_COLUMNS, BULK_WRITE_MAX_RECORDS
from dentrix_zoho.zoho.outcomes import RecordOutcome

_STATUS_ACTION = {"added": "insert", "updated": "update"}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(_cell(v) for v in value)  # multi-select picklists
    return str(value)


def _flatten(record: Mapping[str, Any]) -> dict[str, str]:
    """Lookups ``{"id": …}`` become ``Field.id`` columns, the form Bulk Write reads without mappings."""
    row: dict[str, str] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            if "id" in value:
                row[f"{key}.id"] = _cell(value["id"])
            else:
                raise ValueError(f"field {key!r}: only lookups ({{'id': ...}}) can be nested in a Bulk Write")
        else:
            row[key] = _cell(value)
    return row


@dataclass(frozen=True)
class BulkFile:
    indices: list[int]  # input positions, in CSV row order
    columns: list[str]
    zip_bytes: bytes
    csv_name: str


def build_files(module: str, records: Sequence[Mapping[str, Any]], start_index: int = 0) -> list[BulkFile]:
    """Split records into zipped CSVs within 25,000 rows, 25 MB and 200 columns each."""
    rows = [_flatten(r) for r in records]
    columns: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    if len(columns) > BULK_WRITE_MAX_COLUMNS:
        raise ValueError(f"{len(columns)} columns; Bulk Write takes at most {BULK_WRITE_MAX_COLUMNS}")
    files: list[BulkFile] = []
    chunk: list[int] = []
    buf, writer = _new_csv(columns)
    for pos, row in enumerate(rows):
        before = buf.tell()
        writer.writerow([row.get(c, "") for c in columns])
        # Leave room for zip overhead: an uncompressed CSV under the cap always zips under it.
        if chunk and (len(chunk) >= BULK_WRITE_MAX_RECORDS or buf.tell() > BULK_WRITE_MAX_BYTES - 4096):
            buf.seek(before)
            buf.truncate()
            files.append(_zip(module, len(files), columns, chunk, buf))
            chunk = []
            buf, writer = _new_csv(columns)
            writer.writerow([row.get(c, "") for c in columns])
        chunk.append(start_index + pos)
    if chunk:
        files.append(_zip(module, len(files), columns, chunk, buf))
    return files


def _new_csv(columns: list[str]) -> tuple[io.StringIO, Any]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    return buf, writer


def _zip(module: str, n: int, columns: list[str], indices: list[int], buf: io.StringIO) -> BulkFile:
    name = f"{module}_{n + 1}.csv"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, buf.getvalue().encode("utf-8"))
    return BulkFile(indices=list(indices), columns=list(columns), zip_bytes=out.getvalue(), csv_name=name)


def _parse_errors(text: str) -> tuple[str | None, str | None, list[dict[str, str]]]:
    """``MANDATORY_NOT_FOUND-Company,Last_Name:DUPLICATE_DATA-Email`` -> first code, first field, all."""
    found: list[dict[str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(":"))):
        code, _, cols = part.partition("-")
        names = [c.strip() for c in cols.split(",") if c.strip()] or [""]
        found.extend({"code": code.strip(), "api_name": name} for name in names)
    first = found[0] if found else {}
    return first.get("code") or None, first.get("api_name") or None, found


def read_result_csv(data: bytes) -> list[dict[str, str]]:
    """The result file, zipped or plain; keys upper-cased for the status columns."""
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            name = next(n for n in zf.namelist() if n.lower().endswith(".csv"))
            data = zf.read(name)
    text = data.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def job_status(status: Mapping[str, Any]) -> str:
    """A job's status, upper-cased, with the ``INPROGRESS`` spelling of some samples made ``IN PROGRESS``."""
    text = str(status.get("status", "")).strip().upper()
    return "IN PROGRESS" if text == "INPROGRESS" else text


def job_failure_code(status: Mapping[str, Any]) -> str:
    resources = status.get("resource") or [{}]
    first = resources[0] if isinstance(resources[0], Mapping) else {}
    code = first.get("code")
    return str(code) if code and str(code).upper() != "SUCCESS" else "BULK_JOB_FAILED"


def _missing(index: int) -> RecordOutcome:
    # Not in the result file: Zoho may or may not have written it; the upsert key makes a retry safe.
    return RecordOutcome(index=index, ok=False, code="MISSING_RESULT", message="no row in the result file",
                         uncertain=True)


def _row_outcome(index: int, raw: Mapping[str, str]) -> RecordOutcome:
    row = {k.strip().upper(): (v or "") for k, v in raw.items() if k}
    status = row.get("STATUS", "").strip().lower()
    zoho_id = row.get("ID", "").strip() or None
    if status in _STATUS_ACTION:
        return RecordOutcome(
            index=index, ok=True, zoho_id=zoho_id, action=_STATUS_ACTION[status], code="SUCCESS"  # type: ignore[arg-type]
        )
    code, api_name, errors = _parse_errors(row.get("ERRORS", ""))
    return RecordOutcome(
        index=index,
        ok=False,
        zoho_id=zoho_id,
        code=code or status.upper() or "UNPROCESSED",
        api_name=api_name,
        message=f"bulk write row {status or 'unprocessed'}",
        # 'unprocessed' (or a skip Zoho gives no reason for) says nothing about the record: try again.
        uncertain=code is None,
        details={"bulk_status": status, "errors": errors},
    )


def parse_result_rows(indices: Sequence[int], rows: Sequence[Mapping[str, str]]) -> list[RecordOutcome]:
    """Row ``k`` of the result is input row ``k`` of the uploaded CSV."""
    return [_row_outcome(index, rows[pos]) if pos < len(rows) else _missing(index)
            for pos, index in enumerate(indices)]


def parse_result_by_key(keys: Sequence[str], rows: Sequence[Mapping[str, str]], key_column: str) -> list[RecordOutcome]:
    """Outcome ``i`` is for ``keys[i]``, found by the value of ``key_column`` in the result (one of the
    first three columns Zoho copies into it), not by position: a result row that names no key we sent
    is ignored, a key with no row is uncertain."""
    wanted = key_column.strip().upper()
    by_key: dict[str, Mapping[str, str]] = {}
    for raw in rows:
        value = next((v for k, v in raw.items() if k and k.strip().upper() == wanted), None)
        if value:
            by_key.setdefault(value.strip(), raw)
    return [_row_outcome(i, by_key[key]) if key in by_key else _missing(i) for i, key in enumerate(keys)]
