"""The field-level diff report after the sample: every migrated record read back from Zoho and
compared, field by field, with what the shaped row says it should hold (HTML + CSV, owner-only).

It also lists the source columns the map does not carry and the links that failed (providers
without a Zoho user, related parties that did not resolve, carriers that did not arrive).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dentrix_zoho.ledger import CrosswalkRow
from dentrix_zoho.load.context import LOAD_ORDER, LOAD_STEPS, LoadContext, LoadStep
from dentrix_zoho.load.links import ParentIndex, resolve_links
from dentrix_zoho.load.readback import ReadBack, ReadStream
from dentrix_zoho.load.reports_io import private_dir, write_private
from dentrix_zoho.load.shaped import ShapedRow, open_duckdb, read_step_rows, table_exists
from dentrix_zoho.load.upserts import crosswalk_by_source, prepare
from dentrix_zoho.mapping.outputs import OUTPUT_SCHEMA
from dentrix_zoho.mapping.spec import MappingSpec

CSV_COLUMNS = ("module", "source_id", "zoho_id", "field", "expected", "actual", "status")
_TEMPLATE_NAME = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTERNAL = frozenset({"_office_id", "_source_key", "_row_hash", "_snapshot_id"})
# Fields Zoho sets or we stamp per run: not part of the mapped content.
_NOT_COMPARED = frozenset({"Migration_Run_ID"})


@dataclass
class DiffSummary:
    """Counts only; the values are in the files."""

    html_path: Path
    csv_path: Path
    records: int = 0
    fields_compared: int = 0
    mismatches: int = 0
    missing_in_zoho: int = 0  # records in the crosswalk that Zoho no longer has
    not_loaded: int = 0  # rows in scope with no Zoho record (quarantined or pending)
    unmapped_source_fields: int = 0
    failed_links: int = 0
    by_module: dict[str, dict[str, int]] = field(default_factory=dict)
    # Read-back calls (counts): multi-id GETs, GETs by id for records with a subform (or rich text
    # longer than lists show), attachment listings per parent, and the fewest multi-id GETs possible.
    read_calls: int = 0
    list_reads: int = 0
    subform_reads: int = 0
    long_text_reads: int = 0
    attachment_listings: int = 0
    read_calls_minimum: int = 0

    @property
    def clean(self) -> bool:
        return self.mismatches == 0 and self.missing_in_zoho == 0

    def summary(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self).items()} | {"clean": self.clean}


# -- comparing values --------------------------------------------------------------------------


def _as_instant(text: str) -> dt.datetime | None:
    if "T" not in text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def same(expected: Any, actual: Any) -> bool:
    """Equal as Zoho means it: lookups by id, numbers by value, datetimes by instant."""
    if expected in (None, "", []) and actual in (None, "", [], False) and not isinstance(expected, bool):
        return True
    if isinstance(expected, dict):
        if "id" in expected:
            return isinstance(actual, dict) and str(actual.get("id")) == str(expected["id"])
        if not isinstance(actual, dict):
            return False
        return all(same(v, actual.get(k)) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return False
        return all(same(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return bool(expected) == bool(actual) and isinstance(actual, bool) == isinstance(expected, bool)
    number_e, number_a = _as_number(expected), _as_number(actual)
    if number_e is not None and number_a is not None and not (isinstance(expected, str) and isinstance(actual, str)):
        return abs(number_e - number_a) < 0.005
    if isinstance(expected, str) and isinstance(actual, str):
        when_e, when_a = _as_instant(expected), _as_instant(actual)
        if when_e is not None and when_a is not None:
            return when_e == when_a
        return expected.replace("\r\n", "\n") == actual.replace("\r\n", "\n")
    return expected == actual


def _show(value: Any) -> str:
    if isinstance(value, dict) and set(value) <= {"id", "name", "email"} and "id" in value:
        return f"id {value['id']}"
    return "" if value is None else str(value)


# -- what the map does not carry ---------------------------------------------------------------


def unmapped_source_fields(con: Any, spec: MappingSpec) -> dict[str, list[str]]:
    """Per source object: staged columns no field, key, link, skip rule or query expression uses."""
    out: dict[str, list[str]] = {}
    for stream in spec.streams.values():
        if not table_exists(con, stream.object, schema="dentrix"):
            continue
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'dentrix' AND table_name = ? "
            "ORDER BY ordinal_position", [stream.object]).fetchall()]
        used: set[str] = set(stream.key) | {stream.parent_key or "", stream.owner_provider or ""}
        used |= {link.key for link in stream.links}
        for fmap in stream.fields:
            if fmap.source:
                used.add(fmap.source)
            if fmap.template:
                used |= set(_TEMPLATE_NAME.findall(fmap.template))
        # Columns the query or a skip or quarantine rule names (beyond `x.*`) feed derived fields or decide.
        text = stream.query + " " + " ".join(rule.when for rule in (*stream.skip, *stream.quarantine))
        used |= set(_IDENT.findall(text.replace(".*", "")))
        if stream.kind == "patient":
            used |= {f.source.format(slot=s) for f in spec.insurance.row_fields if f.source
                     for s in spec.insurance.slots}
        unmapped = sorted(c for c in columns if c not in used and c not in _INTERNAL)
        if unmapped:
            out.setdefault(stream.object, [])
            out[stream.object] = sorted(set(out[stream.object]) | set(unmapped))
    return out


# -- the report --------------------------------------------------------------------------------


@dataclass
class _Line:
    module: str
    source_id: str
    zoho_id: str
    field: str
    expected: str
    actual: str
    status: str  # match | mismatch | missing_in_zoho | not_loaded


def _expected(ctx: LoadContext, step: LoadStep, row: ShapedRow, parents: ParentIndex) -> dict[str, Any]:
    resolved = resolve_links(row, parents, ctx.owners, notes_shape=step.kind == "notes")
    if step.kind == "upsert":
        payload = prepare(ctx, step, row, resolved)
        return {k: v for k, v in payload.items() if k not in _NOT_COMPARED and k != ctx.run_id_field(step.module)}
    if step.kind == "notes":
        return {k: row.record.get(k) for k in ("Note_Title", "Note_Content")} | {
            k: v for k, v in resolved.fields.items() if k == "Parent_Id"}
    expected = {"File_Name": row.record.get("File_Name"), "Size": row.record.get("Size")}
    if resolved.parent is not None:
        expected["Parent_Id"] = {"id": resolved.parent[1]}
    return expected


@dataclass
class _StepPlan:
    """One step's rows with their crosswalk row (None: not loaded) and what Zoho should hold."""

    step: LoadStep
    rows: list[tuple[ShapedRow, CrosswalkRow | None, dict[str, Any]]]


def _plan_step(ctx: LoadContext, step: LoadStep, rows: list[ShapedRow], parents: ParentIndex,
               stream: ReadStream) -> _StepPlan:
    """The step's expected values, each loaded record handed to ``stream`` as soon as it is known.

    Records go by multi-id GETs of the fields they compare; a record whose expected values include
    a subform (or rich text longer than lists show) is read by id, since only GET by id returns it
    whole. Attachments are read through their parents' listings.
    """
    crosswalk = crosswalk_by_source(ctx, rows)
    parents.prime(t for r in rows for t in r.link_source_ids())
    planned: list[tuple[ShapedRow, CrosswalkRow | None, dict[str, Any]]] = []
    for row in rows:
        x = crosswalk.get(row.source_id)
        if x is None or x.deleted:
            planned.append((row, None, {}))
            continue
        expected = _expected(ctx, step, row, parents)
        planned.append((row, x, expected))
        if step.kind == "attachments":
            if x.parent_zoho_id and x.parent_module:
                stream.add_parent((x.parent_module, x.parent_zoho_id))
        else:
            stream.add(step.module, x.zoho_id, expected, stream.reader.needs_get_by_id(step.module, expected))
    return _StepPlan(step, planned)


Actual = dict[str, dict[tuple[str, str], dict[str, Any]]]


def _actual(planned: list[_StepPlan], records: dict[str, dict[str, dict[str, Any]]],
            listings: dict[tuple[str, str], list[dict[str, Any]]]) -> Actual:
    """Every loaded record of the plan as Zoho holds it, by step kind and (module, Zoho id)."""
    actual: Actual = {"upsert": {}, "notes": {}, "attachments": {}}
    for plan in planned:
        kind, module = plan.step.kind, plan.step.module
        for _row, x, _expected_values in plan.rows:
            if x is None:
                continue
            if kind != "attachments":
                found = records.get(module, {}).get(x.zoho_id)
            else:
                found = _attachment(x, listings)
            if found is not None:
                actual[kind][(module, x.zoho_id)] = found
    return actual


def _attachment(x: CrosswalkRow, listings: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any] | None:
    if not (x.parent_zoho_id and x.parent_module):
        return None
    parent = (x.parent_module, x.parent_zoho_id)
    found = next((a for a in listings.get(parent, []) if str(a.get("id")) == x.zoho_id), None)
    # Listed under this parent, so this is its parent (the listing does not repeat Parent_Id).
    return None if found is None else {**found, "Parent_Id": {"id": parent[1]}}


def _failed_links(ctx: LoadContext) -> list[dict[str, str]]:
    links = [{"kind": "provider_without_user", "subject": p, "detail": "no active Zoho user with the mapped e-mail"}
             for p in ctx.owners.unmatched]
    with open_duckdb(ctx.duckdb_path) as con:
        if table_exists(con, "flags"):
            for obj, sid, fld, reason in con.execute(
                f"SELECT source_object, source_id, field, reason FROM {OUTPUT_SCHEMA}.flags WHERE office_id = ? "
                "AND (rule LIKE 'link:%' OR reason LIKE 'related_party%' OR lower(field) LIKE '%carrier%') "
                "ORDER BY source_object, source_id", [ctx.office_id]).fetchall():
                links.append({"kind": str(reason), "subject": f"{obj} {sid}", "detail": str(fld or "")})
    return links


def write_diff_report(ctx: LoadContext, reports_dir: Path, *, steps: tuple[str, ...] = LOAD_ORDER) -> DiffSummary:
    """Read back every record in scope (the context's sample, or everything) and compare."""
    folder = private_dir(Path(reports_dir))
    summary = DiffSummary(folder / f"diff_report_{ctx.office_id}.html", folder / f"diff_report_{ctx.office_id}.csv")
    parents = ParentIndex(ctx.ledger, ctx.office_id)
    lines: list[_Line] = []
    with open_duckdb(ctx.duckdb_path) as con:
        rows_by_step = {name: read_step_rows(con, LOAD_STEPS[name], ctx.office_id,
                                             sample=ctx.options.sample_source_ids) for name in steps}
        unmapped = unmapped_source_fields(con, ctx.spec)
    reader = ReadBack(ctx.client, workers=ctx.calls_in_flight)
    reader.prefetch_fields({LOAD_STEPS[name].module for name in steps if LOAD_STEPS[name].kind != "attachments"})
    # The reads go out while the later steps' expected values are still being worked out.
    stream = ReadStream(reader)
    try:
        planned = [_plan_step(ctx, LOAD_STEPS[name], rows_by_step[name], parents, stream) for name in steps]
    except BaseException:
        stream.close()
        raise
    actual = _actual(planned, *stream.finish())
    for plan in planned:
        step = plan.step
        counts = summary.by_module.setdefault(step.module, Counter())  # type: ignore[arg-type]
        for row, x, expected in plan.rows:
            if x is None:
                summary.not_loaded += 1
                counts["not_loaded"] += 1
                lines.append(_Line(step.module, row.source_id, "", "*", "", "", "not_loaded"))
                continue
            have_record = actual.get(plan.step.kind, {}).get((step.module, x.zoho_id))
            summary.records += 1
            counts["records"] += 1
            if have_record is None:
                summary.missing_in_zoho += 1
                counts["missing_in_zoho"] += 1
                lines.append(_Line(step.module, row.source_id, x.zoho_id, "*", "", "", "missing_in_zoho"))
                continue
            for fname, want in sorted(expected.items()):
                have = have_record.get(fname)
                ok = same(want, have)
                summary.fields_compared += 1
                counts["fields"] += 1
                if not ok:
                    summary.mismatches += 1
                    counts["mismatches"] += 1
                lines.append(_Line(step.module, row.source_id, x.zoho_id, fname, _show(want), _show(have),
                                   "match" if ok else "mismatch"))
    stats = reader.stats
    summary.read_calls, summary.list_reads, summary.subform_reads = stats.calls, stats.list_calls, stats.subform_reads
    summary.long_text_reads, summary.attachment_listings = stats.long_text_reads, stats.attachment_listings
    summary.read_calls_minimum = stats.minimum
    failed_links = _failed_links(ctx)
    summary.failed_links = len(failed_links)
    summary.unmapped_source_fields = sum(len(v) for v in unmapped.values())
    summary.by_module = {m: dict(c) for m, c in summary.by_module.items()}
    _write_csv(summary.csv_path, lines)
    _write_html(summary, lines, unmapped, failed_links, ctx.office_id)
    return summary


def _write_csv(path: Path, lines: list[_Line]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow([line.module, line.source_id, line.zoho_id, line.field, line.expected, line.actual, line.status])
    write_private(path, buffer.getvalue())


def _write_html(summary: DiffSummary, lines: list[_Line], unmapped: dict[str, list[str]],
                failed_links: list[dict[str, str]], office_id: str) -> None:
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Field-level diff, office {e(office_id)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;vertical-align:top}"
        ".mismatch,.missing_in_zoho{background:#fdd}.not_loaded{background:#ffd}</style></head><body>",
        f"<h1>Field-level diff: office {e(office_id)}</h1>",
        f"<p>{summary.records} records read back, {summary.fields_compared} fields compared, "
        f"<b>{summary.mismatches} mismatches</b>, {summary.missing_in_zoho} missing in Zoho, "
        f"{summary.not_loaded} rows not loaded, {summary.unmapped_source_fields} unmapped source fields, "
        f"{summary.failed_links} failed links.</p>",
        f"<p>Read back in {summary.read_calls} calls: {summary.list_reads} multi-record reads "
        f"(at least {summary.read_calls_minimum} needed), {summary.subform_reads} subform reads (records with "
        "subform rows: only a read by id returns them), "
        f"{summary.long_text_reads} long rich-text reads, {summary.attachment_listings} attachment listings "
        "(one per parent).</p>",
        "<h2>By module</h2><table><tr><th>module</th><th>records</th><th>fields</th><th>mismatches</th>"
        "<th>missing in Zoho</th><th>not loaded</th></tr>",
    ]
    for module, c in summary.by_module.items():
        out.append(f"<tr><td>{e(module)}</td><td>{c.get('records', 0)}</td><td>{c.get('fields', 0)}</td>"
                   f"<td>{c.get('mismatches', 0)}</td><td>{c.get('missing_in_zoho', 0)}</td>"
                   f"<td>{c.get('not_loaded', 0)}</td></tr>")
    out.append("</table><h2>Differences</h2><table><tr><th>module</th><th>source id</th><th>field</th>"
               "<th>expected</th><th>in Zoho</th><th>status</th></tr>")
    for line in lines:
        if line.status != "match":
            out.append(f"<tr class='{line.status}'><td>{e(line.module)}</td><td>{e(line.source_id)}</td>"
                       f"<td>{e(line.field)}</td><td>{e(line.expected)}</td><td>{e(line.actual)}</td>"
                       f"<td>{line.status}</td></tr>")
    out.append("</table><h2>Failed links</h2><table><tr><th>kind</th><th>subject</th><th>detail</th></tr>")
    out += [f"<tr><td>{e(f['kind'])}</td><td>{e(f['subject'])}</td><td>{e(f['detail'])}</td></tr>"
            for f in failed_links]
    out.append("</table><h2>Source fields the map does not carry</h2><table><tr><th>object</th><th>columns</th></tr>")
    out += [f"<tr><td>{e(obj)}</td><td>{e(', '.join(cols))}</td></tr>" for obj, cols in sorted(unmapped.items())]
    out.append("</table><h2>Every mapped value</h2><table><tr><th>module</th><th>source id</th><th>field</th>"
               "<th>expected</th><th>in Zoho</th><th>status</th></tr>")
    out += [f"<tr class='{line.status}'><td>{e(line.module)}</td><td>{e(line.source_id)}</td><td>{e(line.field)}</td>"
            f"<td>{e(line.expected)}</td><td>{e(line.actual)}</td><td>{line.status}</td></tr>" for line in lines]
    out.append("</table></body></html>")
    write_private(summary.html_path, "\n".join(out))
