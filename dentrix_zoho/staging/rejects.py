"""Staging rejects: source values that do not convert to their column's type.

Twenty years of hand-typed data hold a birth date typed as words, a fee with a letter
in it, a name pasted with control characters, a note saved in another encoding. Such a
value never fails its object: the row is staged with that column NULL, and a reject
names the row (``office:object:key``), the column, a reason code and the value's class
(``reject_value_class``), never the value, which may be a patient's.

The rejects of an object are written to ``staging_meta.rejects`` in the transaction
that stages the object, and replace that object's earlier ones (a delta replaces
those of the rows it changed). Shaping treats a rejected column as an invalid value of
every field mapped from it; the source audit counts them; the re-migration plan lists
them with what a person should do.

Reasons (``REASONS``):

* ``not_a_datetime``, ``not_a_number``, ``not_a_whole_number``, ``not_a_boolean``:
  text (or another type) where the catalog's type is expected (SQLite is dynamically
  typed: anything can sit in any column);
* ``out_of_range``: a number the column cannot hold (SMALLINT, INTEGER, DECIMAL(12,2));
* ``invalid_encoding``: bytes that are not UTF-8 text (another code page, or binary);
* ``control_characters``: C0/C1 control characters (tab, CR and LF are allowed: notes and
  addresses carry line breaks, and shaping normalises whitespace);
* ``too_long``: text longer than the column's declared width (``CatalogColumn.length``);
  the text is not cut, because a cut value is a wrong value nobody asked for.

Cleaned values (``CLEANED_REASONS``, ``Reject.cleaned``): the value IS staged, less characters
that are never text, and the record says so (same table, same naming, never the value).
Shaping does not see these as rejects (``office_rejects`` leaves them out unless asked); the
source audit counts them apart and the re-migration plan lists them as cleaned
(``staging_cleaned:<reason>``), with nothing for a person to do:

* ``control_characters_removed``: C0/C1 controls in long free text (``chunks.is_free_text``:
  a note, a memo). One stray vertical tab or DOS end-of-file mark in a twenty-year-old note
  must not make the whole note disappear from the migration. Each run of them becomes one
  space, not nothing: a control between two words (a vertical tab or form feed used as a
  line break, NULs between fields pasted in) would otherwise glue them into one word, and a
  space is what shaping's whitespace normalising settles anyway. In a short identity field
  (a name, a phone, an id) a control character still NULLs the value (``control_characters``):
  there every character is the value, and a guess would be a wrong value;
* ``invisible_characters_removed``: invisible formatting characters (``INVISIBLE_PATTERN`` in
  identity fields, only the bidi controls of ``BIDI_PATTERN`` in free text; why, beside them):
  a zero-width space in a surname makes it another surname to every duplicate check, and a
  bidi override makes a displayed name read other than it is. Staging is where this belongs:
  every reader of the staged snapshot (the audit's duplicate candidates, the cross-office
  match, new-patient matching, shaping, change detection) then compares the one clean value,
  where a fix in shaping alone would leave the others comparing the broken one. A key column
  is never cleaned: a key must name its row exactly as Dentrix holds it.

A value whose KEY column does not convert leaves its row without an identity: the row
cannot be named, staged or shaped. It is a whole-row reject (``whole_row``, no source
key), counted per object and column and listed in the re-migration plan, never a
silent drop and never a failed object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

META_SCHEMA = "staging_meta"
REJECTS_TABLE = f"{META_SCHEMA}.rejects"

NOT_A_DATETIME = "not_a_datetime"
NOT_A_NUMBER = "not_a_number"
NOT_A_WHOLE_NUMBER = "not_a_whole_number"
NOT_A_BOOLEAN = "not_a_boolean"
OUT_OF_RANGE = "out_of_range"
INVALID_ENCODING = "invalid_encoding"
CONTROL_CHARACTERS = "control_characters"
TOO_LONG = "too_long"
CONTROL_CHARACTERS_REMOVED = "control_characters_removed"
INVISIBLE_CHARACTERS_REMOVED = "invisible_characters_removed"
# The value was staged, cleaned: nothing was lost that was text (see the module docstring).
CLEANED_REASONS = (CONTROL_CHARACTERS_REMOVED, INVISIBLE_CHARACTERS_REMOVED)
REASONS = (NOT_A_DATETIME, NOT_A_NUMBER, NOT_A_WHOLE_NUMBER, NOT_A_BOOLEAN, OUT_OF_RANGE, INVALID_ENCODING,
           CONTROL_CHARACTERS, TOO_LONG, *CLEANED_REASONS)
# How the re-migration plan names a cleaned value (a NULLed one is ``mapping.records.STAGING_REJECT``).
STAGING_CLEANED = "staging_cleaned"

# The key in a conformed chunk's schema metadata that carries its rejects (JSON), so
# they travel with the chunk from a reader process to the writer in the same IPC message.
METADATA_KEY = b"dentrix_zoho.rejects"

# C0 controls but tab, LF and CR; DEL; C1 controls. For Python and for Arrow's RE2.
CONTROL_PATTERN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x{9f}]"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# A run of them with the spaces around it, which free text stages as one space (RE2).
CONTROL_RUN_PATTERN = r" *(?:[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x{9f}])+ *"

# Invisible formatting characters (RE2 for Arrow, and the same set for Python's ``re``):
# zero-width space, non-joiner and joiner, LRM/RLM, word joiner, a BOM inside text, and the bidi
# embeddings, overrides and isolates. Identity fields (names, e-mails, phones, codes) lose all
# of them: none is part of a name, and each makes a value unequal to its twin or display as
# something it is not. Free text loses only the bidi embeddings, overrides and isolates
# (U+202A..U+202E, U+2066..U+2069: they reorder how the text after them is shown, so a note can
# read otherwise than it is stored, the "Trojan Source" trick) and keeps ZWJ/ZWNJ (emoji
# sequences, Indic and Persian spelling), LRM/RLM (marks that cannot reorder letters, which
# right-to-left text needs beside numbers) and zero-width spaces (line-break hints).
INVISIBLE_PATTERN = r"[\x{200b}-\x{200f}\x{202a}-\x{202e}\x{2060}\x{2066}-\x{2069}\x{feff}]"
BIDI_PATTERN = r"[\x{202a}-\x{202e}\x{2066}-\x{2069}]"
INVISIBLE_CHARACTERS = re.compile("[\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_DATE_LIKE = re.compile(r"[0-9]{1,4}([-/. :][0-9a-zA-Z]{1,4}){1,6}[.0-9]*|[0-9]{6,8}")
_NUMBER_LIKE = re.compile(r"[-+$(]?[0-9., ]*[0-9][0-9., ]*[)%]?")


@dataclass(frozen=True)
class Reject:
    """One value that did not convert (``key`` None: the key itself did not, a whole-row reject)."""

    column: str
    reason: str
    value_class: str
    key: tuple[str, ...] | None

    @property
    def whole_row(self) -> bool:
        return self.key is None

    @property
    def cleaned(self) -> bool:
        """The value was staged (cleaned), not NULLed."""
        return self.reason in CLEANED_REASONS

    def to_json(self) -> list[Any]:
        return [self.column, self.reason, self.value_class, None if self.key is None else list(self.key)]

    @classmethod
    def from_json(cls, item: Sequence[Any]) -> Reject:
        column, reason, klass, key = item
        return cls(str(column), str(reason), str(klass), None if key is None else tuple(str(k) for k in key))


def encode(rejects: Sequence[Reject]) -> bytes:
    return json.dumps([r.to_json() for r in rejects], separators=(",", ":")).encode("utf-8")


def decode(blob: bytes | None) -> list[Reject]:
    return [Reject.from_json(item) for item in json.loads(blob)] if blob else []


def reject_value_class(value: Any) -> str:
    """What kind of value this is, in words that say nothing of the value itself."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            controls = sum(1 for b in raw if b < 0x20 and b not in (9, 10, 13))
            return "binary" if b"\x00" in raw or controls * 10 > len(raw) else "text in another encoding"
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "whole number"
    if isinstance(value, (float, Decimal)):
        return "number" if value == value else "not-a-number"  # NaN is not equal to itself
    if isinstance(value, (datetime, date)):
        return "date"
    text = str(value).strip()
    if not text:
        return "blank text"
    if _CONTROL.search(text):
        return "text with control characters"
    if _DATE_LIKE.fullmatch(text):
        return "date-like text"
    if _NUMBER_LIKE.fullmatch(text):
        return "number-like text"
    return "text"


def ensure_rejects_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {REJECTS_TABLE} (
            office_id VARCHAR, object_name VARCHAR, snapshot_id VARCHAR, source_key VARCHAR, column_name VARCHAR, reason VARCHAR, value_class VARCHAR,
            whole_row BOOLEAN, recorded_at TIMESTAMP)"""
    )


def record_rejects(
    con: duckdb.DuckDBPyConnection,
    rejects: Iterable[Reject],
    *,
    office_id: str,
    object_name: str,
    snapshot_id: str,
    only_keys: str | None = None,
    whole_rows: bool = True,
) -> int:
    """Replace ``object_name``'s rejects of this office with ``rejects``; runs in the caller's transaction.

    A full stage replaces them all (``only_keys`` None). A delta passes ``only_keys``, a
    query of the ``_source_key`` values it re-staged: only their rejects are replaced, and
    whole-row rejects (no key) only when ``whole_rows`` (the delta read the object whole).
    Returns the number of rejects recorded.
    """
    ensure_rejects_table(con)
    chosen = [r for r in rejects if whole_rows or not r.whole_row]
    if only_keys is None:
        con.execute(f"DELETE FROM {REJECTS_TABLE} WHERE office_id = ? AND object_name = ?", [office_id, object_name])
    else:
        con.execute(
            f"DELETE FROM {REJECTS_TABLE} WHERE office_id = ? AND object_name = ? AND "
            f"(source_key IN ({only_keys}){' OR whole_row' if whole_rows else ''})",
            [office_id, object_name],
        )
    rows = [
        [
            office_id, object_name, snapshot_id, None if r.key is None else ":".join(r.key),
            r.column, r.reason, r.value_class, r.whole_row,
        ]
        for r in chosen
    ]
    if only_keys is not None:
        keep = {k for (k,) in con.execute(only_keys).fetchall()}
        rows = [row for row in rows if row[3] is None or row[3] in keep]
    if rows:
        con.executemany(
            f"INSERT INTO {REJECTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)", rows
        )
    return len(rows)


def rejects_exist(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = 'rejects'", [META_SCHEMA]
        ).fetchone()[0]
    )


def _cleaned_sql() -> str:
    return "reason IN (" + ", ".join(f"'{r}'" for r in CLEANED_REASONS) + ")"


def office_rejects(con: duckdb.DuckDBPyConnection, office_id: str, *, cleaned: bool = False) -> list[dict[str, Any]]:
    """This office's rejects (no values: ids, columns, reasons, classes), object and key order.

    Only the values staged NULL, unless ``cleaned``: then the cleaned ones too (``Reject.cleaned``),
    which a caller tells apart by ``reason``. The default is what shaping wants: a cleaned value
    is a value, not an invalid one.
    """
    if not rejects_exist(con):
        return []
    which = "" if cleaned else f" AND NOT {_cleaned_sql()}"
    cursor = con.execute(
        f"SELECT object_name, source_key, column_name, reason, value_class, whole_row "
        f"FROM {REJECTS_TABLE} WHERE office_id = ?{which} ORDER BY object_name, source_key NULLS LAST, column_name",
        [office_id],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def counts_by_object(con: duckdb.DuckDBPyConnection, office_id: str | None = None) -> dict[str, int]:
    """Rejected values per object (whole-row rejects included, cleaned values not)."""
    if not rejects_exist(con):
        return {}
    where, params = ("WHERE office_id = ? AND", [office_id]) if office_id else ("WHERE", [])
    where += f" NOT {_cleaned_sql()}"
    return {
        name: int(n)
        for name, n in con.execute(
            f"SELECT object_name, count(*) FROM {REJECTS_TABLE} {where} GROUP BY 1 ORDER BY 1", params
        ).fetchall()
    }
