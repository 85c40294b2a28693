"""Driver rows to conformed Arrow chunks: the reader side of staging.

``ArrowChunker`` turns a driver's row tuples into Arrow, learning each column's type
from the data; ``conform`` trims CHAR padding, types timestamps and turns values that
do not convert into NULLs and ``staging.rejects`` rows. Both run in the reader
processes (``staging.readers``), off the one DuckDB writer (``staging.store``), which
imports this module and never the other way round.

Hostile text (``staging.rejects`` says why each way): in long free text (``is_free_text``)
control characters are replaced (a run by one space) and bidi controls removed; in every
other text column but a key, a control character NULLs the value and invisible formatting
characters are removed. Only a chunk whose UTF-8 buffer a byte screen flags is searched by
Arrow's regex, and only its marked rows are touched one by one (to name them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date as date_type
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from dentrix_zoho.source.catalog import CatalogColumn, CatalogObject
from dentrix_zoho.staging import rejects

# What a driver is assumed to return for a column it gave only NULLs for in the first
# chunk (``ArrowChunker``): the SQLite stand-in returns timestamps as ISO text.
DRIVER_ARROW_TYPES: dict[str, pa.DataType] = {
    "INTEGER": pa.int64(),
    "SMALLINT": pa.int64(),
    "VARCHAR": pa.string(),
    "DATETIME": pa.string(),
    "DECIMAL": pa.float64(),
    "BOOL": pa.bool_(),
}

# The Arrow type of every column of a chunk DuckDB reads (``conform``): text already
# trimmed of CHAR padding (blank is NULL) and timestamps already typed. Arrow does that
# two to five times faster than DuckDB's TRIM and timestamp cast, and it runs in the
# reader processes, beside the one DuckDB writer. Both drivers' values (text from
# sqlite3, datetime from ODBC) end as the same typed value, so the same row hash.
# Numbers are narrowed and money rounded by DuckDB (``_final_expr``).
CHUNK_ARROW_TYPES: dict[str, pa.DataType] = {
    **DRIVER_ARROW_TYPES,
    "DATETIME": pa.timestamp("us"),
}
# Marks a schema as conformed, so that a chunk is never trimmed twice (and a raw chunk
# whose columns happen to have the same types is never taken for a conformed one).
CONFORMED_MARK = {b"dentrix_zoho": b"conformed"}


def chunk_schema(obj: CatalogObject | Sequence[CatalogColumn]) -> pa.Schema:
    columns = obj.columns if isinstance(obj, CatalogObject) else obj
    return pa.schema([(c.name, CHUNK_ARROW_TYPES[c.type]) for c in columns], metadata=CONFORMED_MARK)


def _blank_to_null(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _padding_trimmed(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    # Spaces only, as c-tree pads CHAR columns (and as DuckDB's TRIM does): a note's
    # trailing line break is the note's own.
    return _blank_to_null(pc.ascii_trim(text, characters=" "))


def _duckdb_timestamps(text: pa.Array) -> pa.Array:
    """Timestamp text Arrow's ISO parser refuses ('2026-11-01 9:30') typed by DuckDB's own, laxer cast.

    ``TRY_CAST``: text that is no timestamp at all comes back NULL, for the caller to reject.
    """
    con = duckdb.connect()
    try:
        con.register("timestamp_text", pa.table({"v": text}))
        typed = con.sql("SELECT TRY_CAST(v AS TIMESTAMP) AS v FROM timestamp_text").to_arrow_table()
        return pc.cast(typed.column(0), pa.timestamp("us")).combine_chunks()
    finally:
        con.close()


# What the staged column can hold (``_final_expr`` narrows to it): a value outside is rejected.
_INTEGER_RANGE = {"SMALLINT": (-(2**15), 2**15 - 1), "INTEGER": (-(2**31), 2**31 - 1)}
_DECIMAL_LIMIT = 1e10  # DECIMAL(12,2)
_TRUE_TEXT = {"1", "true", "t", "yes", "y"}
_FALSE_TEXT = {"0", "false", "f", "no", "n"}


@dataclass
class _Bad:
    """Rows of one column of one chunk whose values did not convert (``rows``, staged NULL) or were
    cleaned (``cleaned``, staged less the characters removed): index -> (reason, value class)."""

    rows: dict[int, tuple[str, str]]
    cleaned: dict[int, tuple[str, str]] = field(default_factory=dict)

    def add(self, index: int, reason: str, value_class: str) -> None:
        self.rows.setdefault(index, (reason, value_class))

    def clean(self, index: int, reason: str, value_class: str) -> None:
        self.cleaned.setdefault(index, (reason, value_class))


def _nulled(array: pa.Array, rows: Iterable[int]) -> pa.Array:
    mask = [False] * len(array)
    for i in rows:
        mask[i] = True
    return pc.if_else(pa.array(mask, pa.bool_()), pa.scalar(None, array.type), array)


def _marked(mask: pa.Array | pa.ChunkedArray) -> list[int]:
    """Row indices where ``mask`` is true (NULL counts as false)."""
    return pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()


def _any(mask: pa.Array | pa.ChunkedArray) -> bool:
    return bool(pc.any(mask).as_py())


def _as_text(array: pa.Array | pa.ChunkedArray, bad: _Bad) -> pa.Array:
    """Any driver array -> UTF-8 text; bytes that are not UTF-8 become NULL and rejects.

    The SQLite stand-in's text arrives as bytes (``extract.iter_query``), so Arrow checks
    the UTF-8 of a whole chunk at once; only a chunk that fails is decoded value by value.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        try:
            return pc.cast(array, pa.string())
        except pa.ArrowInvalid:
            texts: list[str | None] = []
            for i, raw in enumerate(array.to_pylist()):
                if raw is None:
                    texts.append(None)
                    continue
                try:
                    texts.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    bad.add(i, rejects.INVALID_ENCODING, rejects.reject_value_class(raw))
                    texts.append(None)
            return pa.array(texts, pa.string())
    return pc.cast(array, pa.string())


# Declared widths up to this are c-tree CHAR fields, which cannot hold more: longer text is
# not what the column holds and is rejected. Wider ones (a view's VARCHAR(8193) note) are
# long text whose declared width is the view's, not the data's: staging keeps all of it,
# and shaping fits it to Zoho by the field's rule (split, truncate).
FIXED_WIDTH_MAX = 255


# Long free text: a note, a memo, an options blob. No declared width (LVARCHAR) or a view's
# wide VARCHAR. Not every column wider than a CHAR: the document paths are VARCHAR(261)
# (Windows' 260 and its NUL), whose every character matters as much as a name's; the
# narrowest note is the prescription's VARCHAR(501).
FREE_TEXT_MIN_WIDTH = 500


def is_free_text(column: CatalogColumn) -> bool:
    """Prose, where a character that is never text is removed rather than the value NULLed."""
    return column.type == "VARCHAR" and (column.length is None or column.length >= FREE_TEXT_MIN_WIDTH)


# Bytes that are C0 controls (but tab, LF, CR) or DEL map to 0: one C pass over a chunk's text.
_CONTROL_BYTES = bytes(0 if (b < 0x20 and b not in (9, 10, 13)) or b == 0x7F else 1 for b in range(256))


def _may_hold_controls(text: pa.Array) -> bool:
    """A cheap screen over the chunk's whole UTF-8 buffer (Arrow's regex costs six times a trim).

    True when a C0 control or DEL is there, or a 0xC2 lead byte (C1 controls are U+0080..U+009F;
    so are "©" or a no-break space, which the exact test that follows lets through).
    """
    data = text.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()
    return 0 in raw.translate(_CONTROL_BYTES) or b"\xc2" in raw


# UTF-8 of the invisible characters (``rejects.INVISIBLE_PATTERN``, ``rejects.BIDI_PATTERN``): all
# but the BOM start E2 80 or E2 81, so one literal first byte keeps Python's scan at memchr speed.
_INVISIBLE_BYTES = re.compile(rb"\xe2(?:\x80[\x8b-\x8f\xaa-\xae]|\x81[\xa0\xa6-\xa9])")
_BIDI_BYTES = re.compile(rb"\xe2(?:\x80[\xaa-\xae]|\x81[\xa6-\xa9])")
_BOM = "\ufeff".encode()


def _may_hold_invisibles(text: pa.Array, free: bool) -> bool:
    """A byte screen over the chunk's UTF-8 buffer, as ``_may_hold_controls`` (exact for these)."""
    data = text.buffers()[2]
    if data is None:
        return False
    raw = memoryview(data)  # searched in place: a note chunk's buffer is megabytes
    if free:
        return _BIDI_BYTES.search(raw) is not None
    return _INVISIBLE_BYTES.search(raw) is not None or re.search(_BOM, raw) is not None


def _invisibles_removed(text: pa.Array, free: bool, bad: _Bad) -> pa.Array:
    """Text less its invisible formatting characters, each value that had some named in ``bad.cleaned``."""
    if not _may_hold_invisibles(text, free):
        return text
    pattern = rejects.BIDI_PATTERN if free else rejects.INVISIBLE_PATTERN
    found = pc.match_substring_regex(text, pattern)
    if not _any(found):
        return text
    for i in _marked(found):
        bad.clean(i, rejects.INVISIBLE_CHARACTERS_REMOVED, "text with invisible formatting characters")
    return _padding_trimmed(pc.replace_substring_regex(text, pattern, ""))


def _checked_text(text: pa.Array, column: CatalogColumn, bad: _Bad, *, key: bool = False) -> pa.Array:
    """Trimmed text with control characters or beyond the column's width rejected (cheap screens first).

    In free text (not a key) control characters are replaced instead, a run by one space (see
    ``staging.rejects``), and the value staged. Outside a key, invisible formatting characters
    are removed (all of them, or only the bidi controls in free text).
    """
    free = is_free_text(column) and not key
    controls = pc.match_substring_regex(text, rejects.CONTROL_PATTERN) if _may_hold_controls(text) else None
    if controls is not None and free:
        if _any(controls):
            for i in _marked(controls):
                bad.clean(i, rejects.CONTROL_CHARACTERS_REMOVED, "text with control characters")
            text = _padding_trimmed(pc.replace_substring_regex(text, rejects.CONTROL_RUN_PATTERN, " "))
        controls = None
    fixed = column.length is not None and column.length <= FIXED_WIDTH_MAX
    # UTF-8 bytes are at least as many as characters: no value longer in bytes, none longer in characters.
    longest = pc.max(pc.binary_length(text)).as_py() if fixed and len(text) else None
    too_long = pc.greater(pc.utf8_length(text), column.length) if longest and longest > column.length else None
    if (controls is not None and _any(controls)) or (too_long is not None and _any(too_long)):
        for i in _marked(controls) if controls is not None else ():
            bad.add(i, rejects.CONTROL_CHARACTERS, "text with control characters")
        if too_long is not None:
            for i in _marked(too_long):
                bad.add(i, rejects.TOO_LONG, f"text longer than {column.length} characters")
        text = _nulled(text, bad.rows)
    # After the NULLing: a value already rejected is not also named as cleaned.
    return text if key else _invisibles_removed(text, free, bad)


def _parse_number(text: str, column: CatalogColumn) -> tuple[Any, str | None]:
    """One trimmed text value -> (number, None) or (None, reason)."""
    try:
        number = Decimal(text.replace(",", "")) if column.type == "DECIMAL" else None
        if number is None:
            whole = Decimal(text)
            if whole != whole.to_integral_value():
                return None, rejects.NOT_A_WHOLE_NUMBER
            if not -(2**63) <= whole < 2**63:
                return None, rejects.OUT_OF_RANGE
            return int(whole), None
        if not number.is_finite():
            return None, rejects.NOT_A_NUMBER
        return float(number), None
    except ArithmeticError:
        return None, rejects.NOT_A_NUMBER


def _parse_bool(value: Any) -> tuple[bool | None, str | None]:
    text = str(value).strip().lower()
    if text in _TRUE_TEXT:
        return True, None
    if text in _FALSE_TEXT:
        return False, None
    return None, rejects.NOT_A_BOOLEAN


def _values_one_by_one(raw: pa.Array, text: pa.Array, target: pa.DataType, column: CatalogColumn,
                       bad: _Bad) -> pa.Array:
    """The slow path for a chunk whose vectorised cast failed: each value parsed, the bad ones NULL."""
    originals = raw.to_pylist()
    values: list[Any] = []
    for i, value in enumerate(text.to_pylist()):
        if value is None or i in bad.rows:
            values.append(None)
            continue
        if column.type == "BOOL":
            parsed, reason = _parse_bool(value)
        else:
            parsed, reason = _parse_number(value, column)
        if reason is not None:
            bad.add(i, reason, rejects.reject_value_class(originals[i]))
        values.append(parsed)
    return pa.array(values, target)


def _in_range(array: pa.Array, column: CatalogColumn, bad: _Bad, originals: pa.Array) -> pa.Array:
    """Numbers the staged column cannot hold (checked by min/max first: the usual chunk has none) -> rejects."""
    if column.type in _INTEGER_RANGE:
        low, high = _INTEGER_RANGE[column.type]
        extremes = pc.min_max(array)
        if (extremes["min"].as_py() or 0) >= low and (extremes["max"].as_py() or 0) <= high:
            return array
        out = pc.or_(pc.less(array, low), pc.greater(array, high))
    elif column.type == "DECIMAL":
        extremes = pc.min_max(array)
        smallest, largest = extremes["min"].as_py() or 0.0, extremes["max"].as_py() or 0.0
        if -_DECIMAL_LIMIT < smallest and largest < _DECIMAL_LIMIT:  # False for a NaN, checked below
            return array
        out = pc.or_(pc.greater_equal(pc.abs(array), _DECIMAL_LIMIT), pc.is_nan(array))
    else:
        return array
    if not _any(out):
        return array
    for i in _marked(out):
        bad.add(i, rejects.OUT_OF_RANGE, rejects.reject_value_class(originals[i].as_py()))
    return _nulled(array, bad.rows)


def _conform_number(array: pa.Array, target: pa.DataType, column: CatalogColumn, bad: _Bad) -> pa.Array:
    if pa.types.is_integer(array.type) and column.type == "BOOL":
        extremes = pc.min_max(array)
        if (extremes["min"].as_py() or 0) >= 0 and (extremes["max"].as_py() or 0) <= 1:
            return pc.cast(array, target)
        not_01 = pc.invert(pc.is_in(array, pa.array([0, 1], array.type)))
        if _any(not_01):
            for i in _marked(not_01):
                bad.add(i, rejects.NOT_A_BOOLEAN, rejects.reject_value_class(array[i].as_py()))
            array = _nulled(array, bad.rows)
        return pc.cast(array, target)
    if array.type == target or (pa.types.is_integer(array.type) and pa.types.is_integer(target)):
        return _in_range(pc.cast(array, target), column, bad, array)
    if pa.types.is_floating(array.type) and pa.types.is_integer(target):
        fraction = pc.not_equal(array, pc.floor(array))
        if _any(fraction):
            for i in _marked(fraction):
                bad.add(i, rejects.NOT_A_WHOLE_NUMBER, "number with a fraction")
            array = _nulled(array, bad.rows)
        out = pc.or_(pc.less(array, -(2.0**63)), pc.greater_equal(array, 2.0**63))
        if _any(out):
            for i in _marked(out):
                bad.add(i, rejects.OUT_OF_RANGE, "number")
            array = _nulled(array, bad.rows)
        return _in_range(pc.cast(array, target), column, bad, array)
    if pa.types.is_string(array.type) or pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        # Text in a numeric column (SQLite is dynamically typed): trim, blank is NULL.
        text = _blank_to_null(pc.utf8_trim_whitespace(_as_text(array, bad)))
        try:
            if column.type == "BOOL":
                return _conform_number(pc.cast(text, pa.int64()), target, column, bad)
            typed = pc.cast(text, target)
            if pa.types.is_floating(target):  # text 'nan': min_max in _in_range would not see it
                for i in _marked(pc.is_nan(typed)):
                    bad.add(i, rejects.NOT_A_NUMBER, rejects.reject_value_class(array[i].as_py()))
                typed = _nulled(typed, bad.rows) if bad.rows else typed
            return _in_range(typed, column, bad, array)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            typed = _values_one_by_one(array, text, target, column, bad)
            return _in_range(typed, column, bad, array)
    try:
        return _in_range(pc.cast(array, target), column, bad, array)  # ODBC's Decimal, a bool as a number...
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        typed = _values_one_by_one(array, pc.cast(array, pa.string()), target, column, bad)
        return _in_range(typed, column, bad, array)


def _conform_column(
    array: pa.ChunkedArray | pa.Array, target: pa.DataType, column: CatalogColumn, bad: _Bad, *, key: bool = False
) -> pa.Array:
    """One driver column -> its chunk type; values that do not convert are NULL and recorded in ``bad``
    (``key``: the column is part of the object's key, whose text is never cleaned)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target)
    if column.type == "VARCHAR":
        return _checked_text(_padding_trimmed(_as_text(array, bad)), column, bad, key=key)
    if column.type == "DATETIME":
        if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
            return pc.cast(array, target)  # datetime or date values from an ODBC driver
        text = _padding_trimmed(_as_text(array, bad))
        try:
            return pc.cast(text, target)
        except pa.ArrowInvalid:
            typed = _duckdb_timestamps(text)
        failed = pc.and_(pc.is_valid(text), pc.is_null(typed))
        if _any(failed):
            for i in _marked(failed):
                bad.add(i, rejects.NOT_A_DATETIME, rejects.reject_value_class(text[i].as_py()))
        return typed
    return _conform_number(array, target, column, bad)


def _key_text(value: Any) -> str:
    """A key value as DuckDB's ``CAST(... AS VARCHAR)`` spells it in ``_source_key``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_conformed(table: pa.Table, schema: pa.Schema) -> bool:
    metadata = table.schema.metadata or {}
    return metadata.get(b"dentrix_zoho") == b"conformed" and table.schema.equals(schema, check_metadata=False)


def chunk_rejects(table: pa.Table) -> list[rejects.Reject]:
    """The rejects a conformed chunk carries (``conform``)."""
    return rejects.decode((table.schema.metadata or {}).get(rejects.METADATA_KEY))


def conform(table: pa.Table, obj: CatalogObject | Sequence[CatalogColumn], schema: pa.Schema) -> pa.Table:
    """A driver chunk -> ``schema`` (``chunk_schema``): text trimmed, blank NULL, timestamps typed.

    A value that does not convert to its column's type is NULL in the chunk and a
    ``Reject`` in the chunk's schema metadata (``chunk_rejects``), which rides with it
    through Arrow IPC; a row whose key does not convert is left out of the chunk, a
    whole-row reject. The usual chunk takes only vectorised casts and tests.
    """
    if is_conformed(table, schema):
        return table
    columns = obj.columns if isinstance(obj, CatalogObject) else obj
    key = obj.key if isinstance(obj, CatalogObject) else ()
    bads = [_Bad({}) for _ in columns]
    arrays = [
        _conform_column(table.column(i), schema.field(i).type, column, bads[i], key=column.name in key)
        for i, column in enumerate(columns)
    ]
    if not any(bad.rows or bad.cleaned for bad in bads):
        return pa.Table.from_arrays(arrays, schema=schema)
    found: list[rejects.Reject] = []
    key_index = [i for i, column in enumerate(columns) if column.name in key]
    unidentified: set[int] = set()
    for i in key_index:
        for row, (reason, klass) in sorted(bads[i].rows.items()):
            if row not in unidentified:
                unidentified.add(row)
                found.append(rejects.Reject(columns[i].name, reason, klass, None))
    ordered_key = [columns.index(next(c for c in columns if c.name == k)) for k in key] if key else []
    for i, column in enumerate(columns):
        if i in key_index:
            continue
        cleaned = {row: why for row, why in bads[i].cleaned.items() if row not in bads[i].rows}
        for row, (reason, klass) in sorted({**bads[i].rows, **cleaned}.items()):
            if row in unidentified:
                continue  # the row is rejected whole already
            key_parts = tuple(_key_text(arrays[k][row].as_py()) for k in ordered_key) if ordered_key else ()
            found.append(rejects.Reject(column.name, reason, klass, key_parts))
    conformed = pa.Table.from_arrays(arrays, schema=schema)
    if unidentified:
        keep = [row not in unidentified for row in range(conformed.num_rows)]
        conformed = conformed.filter(pa.array(keep, pa.bool_()))
    return conformed.replace_schema_metadata({**CONFORMED_MARK, rejects.METADATA_KEY: rejects.encode(found)})


def _arrow_type_for(column: CatalogColumn, sample: Any) -> pa.DataType | None:
    """The Arrow type for a column, from its catalog type and what this driver returns for it.

    Declaring the type up front is about three times faster than letting Arrow
    infer it from Python objects; None means "let Arrow infer".
    """
    if isinstance(sample, bool):
        return pa.bool_()
    if isinstance(sample, str):
        return pa.string()
    if isinstance(sample, (bytes, bytearray)):
        # The SQLite stand-in's text (``extract.iter_query``), or a BLOB: UTF-8 checked in ``conform``.
        return pa.binary()
    if isinstance(sample, Decimal):
        # c-treeACE's DECIMAL through ODBC; exact in Arrow, cast to float64 with the other drivers' money.
        return pa.decimal128(38, 6)
    if isinstance(sample, datetime):
        return pa.timestamp("us")
    if isinstance(sample, date_type):
        return pa.date32()
    if isinstance(sample, (int, float)):
        # SQLite's NUMERIC affinity stores 12.00 as the integer 12: money is always float here.
        return pa.float64() if column.type == "DECIMAL" or isinstance(sample, float) else pa.int64()
    return None


def _column_array(values: Sequence[Any], arrow_type: pa.DataType | None) -> pa.Array:
    if arrow_type is not None:
        try:
            return pa.array(values, type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # The SQLite stand-in is dynamically typed; a mixed column goes in as bytes, text as
        # UTF-8 and bytes as they came, for ``conform`` to convert or reject value by value.
        return pa.array([None if v is None else _as_bytes(v) for v in values], pa.binary())


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


class ArrowChunker:
    """Turns driver row tuples into Arrow tables, learning each column's type from the data."""

    def __init__(self, columns: Sequence[CatalogColumn]) -> None:
        self.columns = list(columns)
        self.names = [c.name for c in self.columns]
        self.types: list[pa.DataType | None] = [None] * len(self.columns)
        self.known = [False] * len(self.columns)

    def __call__(self, rows: Sequence[Sequence[Any]]) -> pa.Table:
        if not rows:
            return pa.table({name: pa.array([], pa.null()) for name in self.names})
        if not isinstance(rows[0], tuple):
            # pyodbc's Row is a sequence but not a tuple, which Arrow's struct conversion wants.
            rows = list(map(tuple, rows))
        if not all(self.known):
            self._learn(rows)
        # Row tuples straight into a struct array: Arrow walks them in C++, about twice as
        # fast as transposing in Python first.
        struct = pa.struct([pa.field(n, t) for n, t in zip(self.names, self.types)])  # type: ignore[arg-type]
        try:
            return pa.Table.from_batches([pa.RecordBatch.from_struct_array(pa.array(rows, type=struct))])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # a value of another type in this chunk: go column by column
        arrays = [_column_array(values, self.types[i]) for i, values in enumerate(zip(*rows, strict=True))]
        return pa.Table.from_arrays(arrays, names=self.names)

    def _learn(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Each column's type from its first non-NULL value in the first chunk."""
        for i, column in enumerate(self.columns):
            if self.known[i]:
                continue
            sample = next((row[i] for row in rows if row[i] is not None), None)
            learned = _arrow_type_for(column, sample) if sample is not None else None
            # NULL throughout the first chunk, or a value Arrow must infer: the catalog's plain
            # type from now on (a chunk that does not fit goes column by column, inferred).
            self.types[i], self.known[i] = learned or DRIVER_ARROW_TYPES[column.type], True
