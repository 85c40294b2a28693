"""A hostile practice migrated end to end: every mutated patient in Zoho exactly once, or named with
its reason; nothing crashes, nothing is duplicated, no hostile value reaches a log line or an error;
rollback --all leaves Zoho without our records.

The practice is the tiny one with ``make_hostile`` applied (``source/synthetic/hostile.py``): one kind
of hostility per chosen patient, each with the outcome it must reach in its manifest.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from dentrix_zoho.load import load_all
from dentrix_zoho.load.reconcile import (
    reconcile_accounting,
    reconcile_balances,
    reconcile_parents,
    reconcile_zoho_counts,
    zero_loss_gate,
)
from dentrix_zoho.load.remigration import plan_rows, write_remigration_plan
from dentrix_zoho.mapping import apply_api_names, approve_spec, load_spec, shape_all
from dentrix_zoho.mapping.approval import is_current_spec_approved
from dentrix_zoho.source.synthetic import generate_practice
from dentrix_zoho.source.synthetic.hostile import DEFAULT_KINDS, HostileManifest, hostile_manifest_path, make_hostile

pytestmark = pytest.mark.slow

OFFICE = "office-1"
AS_OF = dt.date(2026, 11, 1)
SEED = 7
# Every kind, those staging cannot convert included (it stages the row with the column NULL and a reject).
HOSTILE_KINDS = DEFAULT_KINDS
DETAIL_MODULES = ("Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments")


def _load_kit() -> Any:
    spec = importlib.util.spec_from_file_location("hostile_load_kit", Path(__file__).parent / "load" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KIT = _load_kit()


class _Capture(logging.Handler):
    """Every record at any level, formatted with its traceback, as one text to search."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from dentrix_zoho.source.audit import run_audit
    from dentrix_zoho.staging.stage_all import stage_objects
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    root = tmp_path_factory.mktemp("hostile")
    capture = _Capture()
    top = logging.getLogger()
    old_level = top.level
    top.addHandler(capture)
    top.setLevel(logging.DEBUG)
    errors: list[str] = []
    try:
        db = root / "practice.db"
        generate_practice(db, scale="tiny", seed=SEED, as_of=AS_OF)
        manifest = make_hostile(db, SEED, kinds=HOSTILE_KINDS)
        duck = root / "staging.duckdb"
        stage_objects(f"sqlite:///{db}", duck, office_id=OFFICE)
        run_audit(duck, root / "reports", image_root=db.parent / f"{db.stem}_images", provider_map=None)
        users = KIT.write_users_file(root / "users.yaml")
        with running_emulator(root / "emu", extra_args=["--users-file", str(users)]) as handle:
            world = KIT.World(handle, duck, root / "ledger.sqlite", load_spec())
            world.spec = apply_api_names(world.spec, world.schema.api_names)
            con = duckdb.connect(str(duck))
            try:
                summary = shape_all(con, world.spec, office_id=OFFICE, as_of=AS_OF,
                                    image_root=db.parent / f"{db.stem}_images", ledger_pdf_dir=root / "pdfs")
            finally:
                con.close()
            approve_spec(world.ledger, "hostile-test")
            assert is_current_spec_approved(world.ledger)
            ctx = world.context()
            results = load_all(ctx)
            world.ledger.finish_run(ctx.run_id, "succeeded")
            checks = [
                reconcile_accounting(duck, world.ledger, OFFICE),
                reconcile_zoho_counts(world.client, world.ledger, OFFICE, world.schema, recheck_seconds=0, attempts=1),
                reconcile_parents(world.client, world.ledger, OFFICE, world.schema),
                reconcile_balances(duck, world.client, world.ledger, OFFICE, world.schema),
            ]
            plan = write_remigration_plan(duck, world.ledger, OFFICE, root / "reports")
            rows = plan_rows(duck, world.ledger, OFFICE)
            loaded = handle.snapshot()
            crosswalk = {r.source_id: r.zoho_id for m in DETAIL_MODULES
                         for r in world.ledger.crosswalk_rows(module=m, office_id=OFFICE, deleted=False)}
            env = {"ZOHO_API_BASE": handle.base_url, "ZOHO_ACCOUNTS_URL": handle.base_url,
                   "ZOHO_CLIENT_ID": handle.client_id, "ZOHO_CLIENT_SECRET": handle.client_secret,
                   "ZOHO_REFRESH_TOKEN": handle.refresh_token, "ZOHO_EDITION": "enterprise", "ZOHO_USERS": "5",
                   "DENTRIX_ZOHO_LEDGER_URL": world.ledger_url, "DENTRIX_ZOHO_HOME": str(root / "home"),
                   "DENTRIX_OFFICE_ID": OFFICE}
            world.client.close()
            from dentrix_zoho.rollback.cli import rollback

            rolled = CliRunner().invoke(rollback, ["--all", "--yes"], env=env, catch_exceptions=False)
            after = handle.snapshot()
        con = duckdb.connect(str(duck), read_only=True)
        try:
            skipped = con.execute("SELECT source_id, rule FROM zoho_shaped.skipped WHERE office_id = ?",
                                  [OFFICE]).fetchall()
            problem_text = con.execute(
                "SELECT string_agg(concat_ws(' ', field, value_class, reason, rule), '\n') FROM ("
                "SELECT field, value_class, reason, rule FROM zoho_shaped.quarantine UNION ALL "
                "SELECT field, value_class, reason, rule FROM zoho_shaped.flags)").fetchone()[0] or ""
        finally:
            con.close()
    except Exception as exc:  # the exception's text is checked for leaks too
        errors.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        top.removeHandler(capture)
        top.setLevel(old_level)
    yield {
        "manifest": manifest, "summary": summary, "results": results, "checks": checks, "plan": plan,
        "rows": rows, "loaded": loaded, "after": after, "crosswalk": crosswalk, "rolled": rolled,
        "skipped": skipped, "logs": capture.lines, "problem_text": problem_text, "errors": errors, "db": db,
    }


def _sid(source_id: str) -> str:
    return f"{OFFICE}:{source_id}"


def _in_zoho(m: dict[str, Any], sid: str) -> int:
    """How many records of Zoho carry this source: by Source_System_ID where the module has it, and
    through the crosswalk (with a split note's parts) where it does not (Notes)."""
    modules = m["loaded"]["modules"]
    by_field = sum(1 for mod in DETAIL_MODULES for r in modules.get(mod, []) if r.get("Source_System_ID") == sid)
    if by_field:
        return by_field
    ids = {str(r["id"]) for mod in DETAIL_MODULES for r in modules.get(mod, [])}
    parts = [z for s, z in m["crosswalk"].items() if s == sid or s.startswith(f"{sid}-p")]
    return 1 if parts and all(str(z) in ids for z in parts) else 0


STAGING_REJECT = "staging_reject:"
STAGING_CLEANED = "staging_cleaned:"  # a value staged less control or invisible characters: the record went


def _outcome(m: dict[str, Any], sid: str) -> tuple[str, list[str]]:
    """The record's one outcome, and every reason the plan or a skip rule names for it. A staging
    reject is about one column (staged NULL): the record itself still went, was held or was skipped."""
    reasons = sorted({r["reason"] for r in m["rows"] if r["source_id"] == sid})
    held = [r for r in reasons if not r.startswith((STAGING_REJECT, STAGING_CLEANED))]
    rules = sorted({rule for s, rule in m["skipped"] if s == sid})
    found = _in_zoho(m, sid)
    if found and not held and not rules:
        return ("loaded" if found == 1 else f"in Zoho {found} times"), reasons
    if held and not found and not rules:
        return "quarantined", reasons
    if rules and not found and not held:
        return "skipped", reasons + rules
    return f"ambiguous (zoho={found}, plan={reasons}, skipped={rules})", reasons + rules


def test_the_manifest_names_each_kind_and_the_generator_is_deterministic(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    generate_practice(db, scale="tiny", seed=SEED, as_of=AS_OF)
    first = make_hostile(db, SEED)
    assert HostileManifest.read(hostile_manifest_path(db)) == first
    assert set(first.kinds) == set(DEFAULT_KINDS) and {m.kind for m in first.mutations} == set(DEFAULT_KINDS)
    assert len({m.patid for m in first.mutations}) == len(first.mutations)  # one kind per patient
    again = tmp_path / "q.db"
    generate_practice(again, scale="tiny", seed=SEED, as_of=AS_OF)
    assert make_hostile(again, SEED).mutations == first.mutations
    with pytest.raises(ValueError, match="unknown hostile kind"):
        make_hostile(again, SEED, kinds=["no_such_kind"])


def test_no_step_crashes_and_the_accounting_balances(migrated: dict[str, Any]) -> None:
    assert not migrated["errors"]
    assert migrated["summary"].balanced
    assert sum(r.failed for r in migrated["results"]) == 0
    checks = migrated["checks"]
    assert zero_loss_gate(checks).passed, [c.as_dict() for c in checks if not c.passed]


def test_each_mutated_patient_is_in_zoho_once_or_named_with_its_reason(migrated: dict[str, Any]) -> None:
    manifest: HostileManifest = migrated["manifest"]
    wrong: list[str] = []
    for mutation in manifest.mutations:
        cases = [(f"patient:{mutation.patid}", mutation.expected, mutation.reason)]
        if mutation.child is not None:
            cases.append((mutation.child.source_id, mutation.child.expected, mutation.child.reason))
        for source_id, expected, reason in cases:
            got, why = _outcome(migrated, _sid(source_id))
            if got != expected or (reason is not None and not any(w.startswith(reason) for w in why)):
                wrong.append(f"{mutation.kind} {source_id}: expected {expected} {reason or ''}, got {got} {why}")
    assert not wrong, "\n".join(wrong)


def test_no_source_system_id_twice_in_zoho(migrated: dict[str, Any]) -> None:
    modules = migrated["loaded"]["modules"]
    counts = Counter(r["Source_System_ID"] for mod in DETAIL_MODULES for r in modules.get(mod, [])
                     if r.get("Source_System_ID"))
    assert counts and not [s for s, n in counts.items() if n > 1]
    assert len(set(migrated["crosswalk"].values())) == len(migrated["crosswalk"])


def test_no_hostile_value_in_a_log_line_an_error_or_a_problem_row(migrated: dict[str, Any]) -> None:
    needles = {v for m in migrated["manifest"].mutations for v in m.values}
    assert len(needles) > 15
    assert len(migrated["logs"]) > 10  # the capture saw the run
    text = "\n".join([*migrated["logs"], *migrated["errors"], migrated["problem_text"]])
    plan_fields = "\n".join(f"{r['field']} {r['value_class']} {r['reason']}" for r in migrated["rows"])
    leaked = sorted(kind for m in migrated["manifest"].mutations for kind, v in ((m.kind, v) for v in m.values)
                    if v in text or v in plan_fields)
    assert not leaked, f"hostile values of these kinds reached a log line, an error or a problem row: {leaked}"


def test_rollback_all_leaves_zoho_without_our_records(migrated: dict[str, Any]) -> None:
    assert migrated["rolled"].exit_code == 0, migrated["rolled"].output
    modules = migrated["after"]["modules"]
    left = {mod: len(modules.get(mod, [])) for mod in DETAIL_MODULES if modules.get(mod)}
    assert not left, left
    assert sum(len(migrated["loaded"]["modules"].get(mod, [])) for mod in DETAIL_MODULES) > 1000


def test_the_demo_practice_command_makes_a_hostile_practice(tmp_path: Path) -> None:
    from dentrix_zoho.source.synthetic.cli import demo_practice

    out = tmp_path / "h.db"
    args = ["--out", str(out), "--scale", "tiny", "--seed", "3", "--as-of", "2026-11-01", "--hostile"]
    done = CliRunner().invoke(demo_practice, args)
    assert done.exit_code == 0, done.output
    manifest = HostileManifest.read(hostile_manifest_path(out))
    assert set(manifest.kinds) == set(DEFAULT_KINDS) and "hostile:" in done.output
    one = CliRunner().invoke(demo_practice, [*args[:-1], "--hostile-kind", "guarantor_loop_a_b"])
    assert one.exit_code == 0, one.output
    assert [m.kind for m in HostileManifest.read(hostile_manifest_path(out)).mutations] == ["guarantor_loop_a_b"] * 2
    bad = CliRunner().invoke(demo_practice, [*args[:-1], "--hostile-kind", "nope"])
    assert bad.exit_code == 2 and "unknown hostile kind" in bad.output


def test_values_staging_cleaned_reach_zoho_clean(migrated: dict[str, Any]) -> None:
    from dentrix_zoho.staging.rejects import INVISIBLE_CHARACTERS

    modules = migrated["loaded"]["modules"]
    people = {r.get("Source_System_ID"): r for mod in ("Contacts", "Leads") for r in modules.get(mod, [])}
    by_kind = {m.kind: m for m in migrated["manifest"].mutations}
    for kind in ("name_zero_width", "name_right_to_left_mark", "name_bidi_isolate", "name_bom_word_joiner",
                 "email_zero_width", "phone_bidi_override"):
        record = people[_sid(f"patient:{by_kind[kind].patid}")]
        assert not [k for k, v in record.items() if isinstance(v, str) and INVISIBLE_CHARACTERS.search(v)], kind
    assert people[_sid(f"patient:{by_kind['email_zero_width'].patid}")]["Email"] == "zw.hostile@example.com"
    assert people[_sid(f"patient:{by_kind['phone_bidi_override'].patid}")]["Mobile"] == "+13125550142"
    assert people[_sid(f"patient:{by_kind['name_right_to_left_mark'].patid}")]["Last_Name"] == "Kcirtap"
    notes = {str(r["id"]): r for r in modules.get("Notes", [])}
    expected = {"note_nul_bytes": "Hostile nul note", "note_control_chars": "Hostile [31mansi bell note",
                "note_bidi_override": "Allergy: none nillicinep \U0001f469\u200d\U0001f4bb"}
    for kind, text in expected.items():
        child = by_kind[kind].child
        assert child is not None
        note = notes[str(migrated["crosswalk"][_sid(child.source_id)])]
        assert text in note["Note_Content"], kind
