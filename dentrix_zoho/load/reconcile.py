"""Reconciliation: the functions the blocking asset checks call. Counts only; nothing reads upstream.

Each returns a :class:`CheckResult` (passed, counts, a short description).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from dentrix_zoho.ledger import CrosswalkRow, Ledger
from dentrix_zoho.load.context import LOAD_ORDER, LOAD_STEPS
from dentrix_zoho.load.schema_setup import KEYED_MODULES, SchemaResult
from dentrix_zoho.load.shaped import ShapedRow, open_duckdb, read_step_rows, table_exists
from dentrix_zoho.load.upserts import loaded_hashes
from dentrix_zoho.load.readback import ReadBack, ReadRequest, run_concurrently
from dentrix_zoho.load.zoho_reads import choose_notes_read, list_parent_notes
from dentrix_zoho.mapping.ids import source_system_id
from dentrix_zoho.mapping.outputs import OUTPUT_SCHEMA
from dentrix_zoho.zoho import ZohoClient, ZohoError, limits

log = logging.getLogger(__name__)

AGING_BUCKETS = ("aging0to30", "aging31to60", "aging61to90", "aging91plus")
CHILD_MODULES = ("Events", "Tasks", "Calls", "Notes", "Attachments")
CENT = Decimal("0.01")


@dataclass
class CheckResult:
    name: str
    passed: bool
    description: str
    counts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "description": self.description, "counts": self.counts}


def _office_rows(ledger: Ledger, office_id: str, module: str) -> list[CrosswalkRow]:
    return list(ledger.crosswalk_rows(module=module, office_id=office_id, deleted=False))


@dataclass(frozen=True)
class _Parents:
    """The Contacts and Leads whose children count for one office, as its lookups see them.

    Policy ``merge`` (docs/cross_office.md): a Contact this office joined is its parent too (one it
    created stays its own, released or not: its crosswalk row is live while the Contact lives). Other
    offices' children of a Contact the office shares are told apart by the ledger, since Notes and
    Attachments carry no Source_System_ID. Without shared Contacts this is the office's own rows.
    """

    ids: dict[str, set[str]]  # module -> Zoho ids
    shared: frozenset[str] = frozenset()  # the Contacts among them other offices may hang children under

    @property
    def all(self) -> set[str]:
        return set().union(*self.ids.values())


def _parents(ledger: Ledger, office_id: str) -> _Parents:
    ids = {m: {r.zoho_id for r in _office_rows(ledger, office_id, m)} for m in ("Contacts", "Leads")}
    holds = ledger.shared_owners(module="Contacts", office_id=office_id)  # none under `separate`
    if not holds:
        return _Parents(ids)
    ids["Contacts"] |= {h.zoho_id for h in holds if h.role == "joined" and not h.released}
    return _Parents(ids, frozenset({h.zoho_id for h in holds} & ids["Contacts"]))


def _open_quarantine(ledger: Ledger, office_id: str) -> set[tuple[str, str]]:
    return {(q.source_object, q.source_id) for q in ledger.quarantine_rows(status="open", office_id=office_id)}


# -- 1. accounting: shaped = loaded + quarantined + skipped -----------------------------------


def reconcile_accounting(
    duckdb_path: Path, ledger: Ledger, office_id: str, *, sample_source_ids: Iterable[str] | None = None
) -> CheckResult:
    """Per module: every shaped row is loaded (live crosswalk row with the current hash), or
    quarantined (shaping or load), and every staged row is shaped, quarantined or skipped by a
    named rule (the shaper's ``accounting`` table)."""
    sample = frozenset(sample_source_ids) if sample_source_ids is not None else None
    quarantined = _open_quarantine(ledger, office_id)
    counts: dict[str, Any] = {}
    pending_total = 0
    with open_duckdb(duckdb_path) as con:
        shape_q = _shape_quarantine(con, office_id)
        skipped = _shape_skipped(con, office_id)
        objects = _object_accounting(con, office_id)
        unbalanced = [name for name, a in objects.items()
                      if a["staged"] != a["shaped"] + a["quarantined"] + a["skipped"] + a["out_of_sample"]]
        for name in LOAD_ORDER:
            step = LOAD_STEPS[name]
            rows = read_step_rows(con, step, office_id, sample=sample)
            crosswalk = _crosswalk_for(ledger, office_id, rows)
            loaded = held = pending = 0
            for row in rows:
                x = crosswalk.get(row.source_id)
                if x is not None and not x.deleted and x.row_hash in loaded_hashes(row.row_hash):
                    loaded += 1
                elif (row.source_object, row.source_id) in quarantined or (
                        step.kind == "attachments" and row.file_status != "ok"):
                    held += 1
                else:
                    pending += 1
            module_counts = counts.setdefault(step.module, {"shaped": 0, "loaded": 0, "quarantined_at_load": 0,
                                                            "pending": 0})
            module_counts["shaped"] += len(rows)
            module_counts["loaded"] += loaded
            module_counts["quarantined_at_load"] += held
            module_counts["pending"] += pending
            pending_total += pending
    for module, c in counts.items():
        c["quarantined_at_shape"] = shape_q.get(module, 0)
    passed = pending_total == 0 and not unbalanced
    description = (
        "every shaped row is loaded or quarantined, and every staged row is accounted for"
        if passed else
        f"{pending_total} shaped rows neither loaded nor quarantined; {len(unbalanced)} source objects unbalanced"
    )
    return CheckResult("load_accounting", passed, description,
                       {"pending": pending_total, "unbalanced_objects": len(unbalanced), "modules": counts,
                        "skipped_by_rule": skipped, "objects": objects})


def _crosswalk_for(ledger: Ledger, office_id: str, rows: Sequence[ShapedRow]) -> dict[str, CrosswalkRow]:
    by_object: dict[str, list[str]] = {}
    for row in rows:
        by_object.setdefault(row.source_object, []).append(row.source_id)
    found: dict[str, CrosswalkRow] = {}
    for obj, sids in by_object.items():
        found.update(ledger.lookup_many(office_id, obj, sids))
    return found


def _shape_quarantine(con: duckdb.DuckDBPyConnection, office_id: str) -> dict[str, int]:
    if not table_exists(con, "quarantine"):
        return {}
    rows = con.execute(
        f"SELECT target_module, count(DISTINCT source_id) FROM {OUTPUT_SCHEMA}.quarantine WHERE office_id = ? "
        "GROUP BY target_module", [office_id]).fetchall()
    return {str(m): int(n) for m, n in rows}


def _shape_skipped(con: duckdb.DuckDBPyConnection, office_id: str) -> dict[str, int]:
    """Rows skipped by a named rule, per rule (the shaper's ``skipped`` table)."""
    if not table_exists(con, "skipped"):
        return {}
    rows = con.execute(
        f"SELECT rule, count(*) FROM {OUTPUT_SCHEMA}.skipped WHERE office_id = ? GROUP BY rule ORDER BY rule",
        [office_id]).fetchall()
    return {str(rule): int(n) for rule, n in rows}


def _object_accounting(con: duckdb.DuckDBPyConnection, office_id: str) -> dict[str, dict[str, int]]:
    """The shaper's per-object identity: staged = shaped + quarantined + skipped + out of sample."""
    if not table_exists(con, "accounting"):
        return {}
    rows = con.execute(
        f"SELECT source_object, staged, shaped, quarantined, skipped, out_of_sample FROM {OUTPUT_SCHEMA}.accounting "
        "WHERE office_id = ? ORDER BY source_object", [office_id]).fetchall()
    names = ("staged", "shaped", "quarantined", "skipped", "out_of_sample")
    return {str(r[0]): {n: int(v or 0) for n, v in zip(names, r[1:], strict=True)} for r in rows}


# -- 2. Zoho-side counts equal the ledger's ----------------------------------------------------


def reconcile_zoho_counts(
    client: ZohoClient,
    ledger: Ledger,
    office_id: str,
    schema: SchemaResult,
    *,
    modules: Sequence[str] = (*KEYED_MODULES, "Notes", "Attachments"),
    attempts: int = 3,
    recheck_seconds: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """What Zoho holds for this office equals what the ledger says we wrote, per module.

    Keyed modules are counted by COQL on ``Source_System_ID`` (this office's prefix), several at a
    time (independent reads; the client's gates hold them to Zoho's cap on heavy calls); Notes by the
    cheaper of the org's notes listing and one listing per parent of ours (``zoho_reads.choose_notes_read``);
    Attachments are listed per parent. Zoho's counts can lag fresh writes, so a mismatch is checked
    again before it fails.
    """
    counts: dict[str, dict[str, int]] = {}
    mismatched: list[str] = []
    keyed = [m for m in modules if m in KEYED_MODULES]
    for attempt in range(1, attempts + 1):
        mismatched = []
        expected = {m: len(_office_rows(ledger, office_id, m)) for m in modules}
        workers = min(client.config.concurrency, limits.HEAVY_CALL_CAP)
        listed = run_concurrently([(lambda m=m: _keyed_count(client, office_id, schema, m)) for m in keyed],
                                  workers, name="zoho-count")
        actual = dict(zip(keyed, listed, strict=True))
        for module in modules:  # Notes and Attachments read on worker threads of their own
            if module not in actual:
                actual[module] = _child_count(client, ledger, office_id, module)
        for module in modules:
            counts[module] = {"ledger": expected[module], "zoho": actual[module]}
            if expected[module] != actual[module]:
                mismatched.append(module)
        if not mismatched or attempt == attempts:
            break
        log.info("zoho counts differ for %d modules; checking again in %.0f s", len(mismatched), recheck_seconds)
        sleep(recheck_seconds)
    passed = not mismatched
    description = ("Zoho holds exactly the records the ledger says we wrote" if passed
                   else f"Zoho and the ledger disagree for {', '.join(mismatched)}")
    return CheckResult("zoho_counts", passed, description, {"modules": counts, "mismatched": len(mismatched)})


def _keyed_count(client: ZohoClient, office_id: str, schema: SchemaResult, module: str) -> int:
    field_name = schema.source_id_field(module)
    prefix = office_id + ":"
    try:
        quoted = prefix.replace("\\", "\\\\").replace("'", "\\'")
        rows = client.coql(f"select COUNT(id) from {module} where {field_name} like '{quoted}%'")
        if rows:
            value = next((v for k, v in rows[0].items() if "count" in k.lower()), None)
            if value is not None:
                return int(value)
    except ZohoError as exc:
        if exc.status not in (400, 404):
            raise
    return sum(1 for r in client.iter_records(module, [field_name])
               if str(r.get(field_name) or "").startswith(prefix))


@dataclass(frozen=True)
class _Children:
    """What the ledger holds of one child module (Notes, Attachments) for an office's count."""

    parents: _Parents
    per_parent: dict[str, int]  # parent of ours to list -> live children of every office under it
    others: int  # other offices' live children under the Contacts this office shares
    org_total: int | None  # live children of every office, when the pass read them all (else None)


def _children(ledger: Ledger, office_id: str, module: str) -> _Children:
    """Which parents of ours to list, and what each holds: one pass over the office's crosswalk rows of
    the module, or over every office's when the office shares Contacts (their children are listed too)."""
    seen = _parents(ledger, office_id)
    ours = seen.all
    listed: set[str] = set()  # parents of ours with a child of this office (or another's, when shared)
    under: dict[str, int] = {}
    others = total = 0
    every_office = bool(seen.shared)
    for r in ledger.crosswalk_rows(module=module, deleted=False, office_id=None if every_office else office_id):
        total += 1
        parent = r.parent_zoho_id
        if not parent:
            continue
        under[parent] = under.get(parent, 0) + 1
        if r.office_id == office_id:
            listed.add(parent)
        elif parent in seen.shared:
            listed.add(parent)
            others += 1
    wanted = {p: under[p] for p in sorted(listed & ours)}
    return _Children(seen, wanted, others, total if every_office else None)


def _org_total(ledger: Ledger, module: str) -> int:
    return sum(1 for _ in ledger.crosswalk_rows(module=module, deleted=False))


def _child_count(client: ZohoClient, ledger: Ledger, office_id: str, module: str) -> int:
    """Notes or Attachments under this office's parents, as Zoho lists them (not read by our ids: a
    duplicate an uncertain retry left shows), less other offices' children of shared Contacts."""
    known = _children(ledger, office_id, module)
    if module == "Notes":
        total = known.org_total if known.org_total is not None else _org_total(ledger, "Notes")
        choice = choose_notes_read(total, known.per_parent.values())
        log.info("zoho counts Notes: %s", choice.describe())
        if choice.path == "org_listing":
            ours = known.parents.all
            try:
                return sum(1 for n in client.iter_records("Notes", ["Parent_Id"])
                           if str((n.get("Parent_Id") or {}).get("id")) in ours) - known.others
            except ZohoError as exc:
                if exc.status not in (400, 403, 404):
                    raise
                log.info("zoho counts Notes: the org's notes cannot be listed (%s); listing %d parents",
                         exc.code, choice.parents)
    # Attachments have no other read than through their parent; Notes where that is cheaper (or the
    # org's notes cannot be listed). One listing per parent of ours that has children, on worker threads.
    by_parent = {pid: m for m, ids in known.parents.ids.items() for pid in ids}
    wanted = [(by_parent[pid], pid) for pid in known.per_parent]

    def lister(parent_module: str, parent_id: str) -> list[dict[str, Any]]:
        if module == "Notes":
            return list_parent_notes(client, parent_module, parent_id)
        return client.list_attachments(parent_module, parent_id)

    listed = run_concurrently([(lambda p=p: lister(*p)) for p in wanted], client.config.concurrency)
    return sum(len(children) for children in listed) - known.others


# -- 3. every child's parent resolves ---------------------------------------------------------


def reconcile_parents(
    client: ZohoClient, ledger: Ledger, office_id: str, schema: SchemaResult, *, read_back: bool = True
) -> CheckResult:
    """Every Event/Task/Call/Note/Attachment we wrote hangs off a live Contact or Lead of ours;
    with ``read_back``, the lookup Zoho holds (Who_Id / What_Id / Parent_Id) is checked too."""
    parents = _parents(ledger, office_id).all  # with the Contacts this office joined (policy merge)
    reader = ReadBack(client)
    counts: dict[str, dict[str, int]] = {}
    broken_total = 0
    activities = {m: _office_rows(ledger, office_id, m) for m in CHILD_MODULES if m not in ("Notes", "Attachments")}
    held_activities = reader.read_many([
        ReadRequest(m, {r.zoho_id for r in rows}, [schema.source_id_field(m), "Who_Id", "What_Id"])
        for m, rows in activities.items() if rows])[0] if read_back else {}
    for module in CHILD_MODULES:
        rows = _office_rows(ledger, office_id, module)
        broken = 0
        checked = 0
        if module in ("Notes", "Attachments"):
            broken += sum(1 for r in rows if r.parent_zoho_id not in parents)
            checked = len(rows)
            if read_back and module == "Notes" and rows:
                ids = {r.zoho_id: r for r in rows}
                try:
                    held = reader.read("Notes", ids, ["Parent_Id"])
                except ZohoError as exc:
                    if exc.status not in (400, 403, 404):
                        raise
                    held = {}
                for zoho_id, note in held.items():
                    if str((note.get("Parent_Id") or {}).get("id")) != ids[zoho_id].parent_zoho_id:
                        broken += 1
        elif rows:
            ids = {r.zoho_id for r in rows}
            if read_back:
                for rec in held_activities.get(module, {}).values():
                    checked += 1
                    who = (rec.get("Who_Id") or {}).get("id") or (rec.get("What_Id") or {}).get("id")
                    if str(who) not in parents:
                        broken += 1
                broken += len(ids) - checked  # in the ledger, not in Zoho
            else:
                checked = len(rows)
        counts[module] = {"checked": checked, "broken": broken}
        broken_total += broken
    passed = broken_total == 0
    description = ("every activity, note and attachment resolves to one of our Contacts or Leads" if passed
                   else f"{broken_total} children whose parent does not resolve")
    return CheckResult("parents_resolve", passed, description,
                       {"broken": broken_total, "modules": counts, "read_calls": reader.stats.calls})


# -- 4. balances -------------------------------------------------------------------------------


def reconcile_balances(
    duckdb_path: Path, client: ZohoClient, ledger: Ledger, office_id: str, schema: SchemaResult,
    *, balance_field: str | None = None,
) -> CheckResult:
    """The guarantors' balances in the source (sum of ``dentrix.aging`` buckets) equal the
    ``Balance_Due`` Zoho holds, plus what is held back (quarantined, skipped, out of the sample)."""
    with open_duckdb(duckdb_path) as con:
        if not table_exists(con, "aging", schema="dentrix"):
            return CheckResult("balances", True, "no aging table staged: nothing to reconcile", {"guarantors": 0})
        buckets = " + ".join(f"coalesce({b}, 0)" for b in AGING_BUCKETS)
        source = {
            source_system_id(office_id, "patient", int(guarid)): Decimal(str(total)).quantize(CENT)
            for guarid, total in con.execute(
                f"SELECT guarid, sum({buckets}) FROM dentrix.aging WHERE _office_id = ? AND guarid IS NOT NULL "
                "GROUP BY guarid", [office_id]).fetchall()
        }
        shaped_q = {r[0] for r in con.execute(
            f"SELECT DISTINCT source_id FROM {OUTPUT_SCHEMA}.quarantine WHERE office_id = ? AND source_object = 'patient'",
            [office_id]).fetchall()} if table_exists(con, "quarantine") else set()
        skipped = {r[0] for r in con.execute(
            f"SELECT source_id FROM {OUTPUT_SCHEMA}.skipped WHERE office_id = ? AND source_object = 'patient'",
            [office_id]).fetchall()} if table_exists(con, "skipped") else set()
        shaped = set()
        for table in ("contacts", "leads"):
            if table_exists(con, table):
                shaped |= {r[0] for r in con.execute(
                    f"SELECT source_id FROM {OUTPUT_SCHEMA}.{table} WHERE office_id = ?", [office_id]).fetchall()}
    held = {sid for obj, sid in _open_quarantine(ledger, office_id) if obj == "patient"} | shaped_q
    # Policy merge: a guarantor that joined another office's Contact is not sent; the Contact keeps the
    # creating office's Balance_Due (one Contact, not field-by-field survivorship: docs/cross_office.md).
    joined = {h.source_id for h in ledger.shared_owners(module="Contacts", office_id=office_id, released=False)
              if h.role == "joined" and h.source_object == "patient"}
    field_name = balance_field or schema.api_names.get("Contacts", {}).get("Balance Due", "Balance_Due")
    in_zoho: dict[str, Decimal] = {}
    ours = {r.zoho_id: r.source_id for r in _office_rows(ledger, office_id, "Contacts")}
    sid_field = schema.source_id_field("Contacts")
    reader = ReadBack(client)
    for zoho_id, rec in reader.read("Contacts", ours, [sid_field, field_name]).items():
        sid = ours.get(zoho_id)
        if sid is not None:
            in_zoho[sid] = Decimal(str(rec.get(field_name) or 0)).quantize(CENT)
    source_total = sum(source.values(), Decimal(0))
    zoho_total = sum((in_zoho.get(sid, Decimal(0)) for sid in source), Decimal(0))
    held_total = sum((v for sid, v in source.items() if sid in held), Decimal(0))
    skipped_total = sum((v for sid, v in source.items() if sid in skipped), Decimal(0))
    out_of_scope = sum((v for sid, v in source.items() if sid not in shaped | held | skipped), Decimal(0))
    joined_total = sum((v for sid, v in source.items() if sid in joined and sid not in held), Decimal(0))
    loaded = set(ours.values())
    on_leads = sum((v for sid, v in source.items()
                    if sid in shaped and sid not in loaded and sid not in held and sid not in joined), Decimal(0))
    mismatched = sum(1 for sid, v in source.items() if sid in in_zoho and in_zoho[sid] != v)
    accounted = zoho_total + held_total + skipped_total + out_of_scope + joined_total
    passed = accounted == source_total and mismatched == 0 and on_leads == 0
    counts = {
        "guarantors": len(source), "source_total": str(source_total), "zoho_total": str(zoho_total),
        "quarantined_total": str(held_total), "skipped_total": str(skipped_total),
        "out_of_scope_total": str(out_of_scope), "not_in_zoho_total": str(on_leads),
        "joined_total": str(joined_total), "guarantors_joined": len(joined & set(source)),
        "guarantors_mismatched": mismatched, "read_calls": reader.stats.calls,
    }
    description = ("source balances equal Balance_Due in Zoho plus what is held back" if passed else
                   f"balances differ: source {source_total}, Zoho {zoho_total}, held back {held_total + skipped_total}, "
                   f"{mismatched} guarantors differ")
    return CheckResult("balances", passed, description, counts)


# -- 5. the gate -------------------------------------------------------------------------------


def zero_loss_gate(results: Iterable[CheckResult]) -> CheckResult:
    checks = list(results)
    failed = [c.name for c in checks if not c.passed]
    passed = bool(checks) and not failed
    description = ("zero loss: every reconciliation passed" if passed
                   else f"not zero loss: {', '.join(failed) or 'no checks ran'}")
    return CheckResult("zero_loss", passed, description,
                       {"checks": len(checks), "failed": len(failed), **{c.name: c.passed for c in checks}})
