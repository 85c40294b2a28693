"""Hostile text in staging and shaping: control characters in free text, invisible formatting characters.

A stray control character in a twenty-year-old note must not NULL the note (it is removed, and the
removal named); in a name it still NULLs the value. Zero-width and bidi characters leave identity
fields (so twins compare equal and a name displays as it reads); free text keeps ZWJ but loses bidi
controls.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dentrix_zoho.mapping.identity import same_person
from dentrix_zoho.mapping.transforms import INVISIBLE_REMOVED, Context, apply
from dentrix_zoho.source.catalog import CATALOG
from dentrix_zoho.staging import rejects
from dentrix_zoho.staging.chunks import _may_hold_invisibles, chunk_rejects, chunk_schema, conform, is_free_text

OFFICE = "office-1"
AS_OF = dt.date(2026, 11, 1)
CTX = Context(time_zone=ZoneInfo("America/Chicago"))
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
BIDI = ("\u200e", "\u200f", *(chr(c) for c in range(0x202A, 0x202F)), *(chr(c) for c in range(0x2066, 0x206A)))


def _conform(object_name: str, rows: list[dict[str, Any]]) -> pa.Table:
    obj = CATALOG[object_name]
    names = list(obj.column_names)
    arrays = [pa.array([r.get(n) for r in rows]) for n in names]
    return conform(pa.Table.from_arrays(arrays, names=names), obj, chunk_schema(obj))


# -- staging, one chunk -------------------------------------------------------------------------------


def test_free_text_is_the_catalog_s_long_text_and_not_a_name_or_a_path() -> None:
    free = {(o.name, c.name) for o in CATALOG.values() for c in o.columns if is_free_text(c)}
    assert {("clinicalnote", "notetext"), ("fullnotes", "notetext"), ("v_patient", "note"),
            ("v_clinical_notes", "note_text"), ("rxrec", "notetext")} <= free
    assert not {("patient", "lastname"), ("patient", "emailaddr"), ("document", "path_cnum"),
                ("appt", "apptreason")} & free


def test_a_note_with_control_characters_keeps_its_text_less_them_and_names_the_removal() -> None:
    notes = ["Plain note", "Pt\x0bsays  \x1a\x00 pain\x07LL", "Trailing end-of-file\x1a", "\x00\x00"]
    conformed = _conform("clinicalnote", [{"cnotesid": i + 1, "notetext": t} for i, t in enumerate(notes)])
    assert conformed.column("notetext").to_pylist() == [
        "Plain note", "Pt says pain LL", "Trailing end-of-file", None]
    found = chunk_rejects(conformed)
    assert [(r.column, r.reason, r.value_class, r.key) for r in found] == [
        ("notetext", "control_characters_removed", "text with control characters", (str(k),)) for k in (2, 3, 4)]
    assert all(r.cleaned and not r.whole_row for r in found)
    assert "pain" not in rejects.encode(found).decode()


def test_a_name_with_a_control_character_is_still_nulled() -> None:
    conformed = _conform("patient", [{"patid": 1, "lastname": "Ann\x0babelle", "firstname": "Jo"}])
    assert conformed.column("lastname").to_pylist() == [None]
    assert conformed.column("firstname").to_pylist() == ["Jo"]
    (reject,) = chunk_rejects(conformed)
    assert (reject.column, reject.reason, reject.key, reject.cleaned) == (
        "lastname", "control_characters", ("1",), False)


def test_invisible_characters_leave_identity_fields_and_only_bidi_controls_leave_free_text() -> None:
    patients = _conform("patient", [
        {"patid": 1, "lastname": "Zwi\u200bcky\u200d", "emailaddr": "ann\u200b@example.com"},
        {"patid": 2, "lastname": "\u202eKcirtap\u200f", "pager": "\u202d312-555-0142\u202c"},
        {"patid": 3, "lastname": "\ufeffPlain", "firstname": "\u2060"},
        {"patid": 4, "lastname": "Caf\u00e9 \u2019s \u2014 \u00a9"},  # typographic, not invisible: untouched
    ])
    assert patients.column("lastname").to_pylist() == ["Zwicky", "Kcirtap", "Plain", "Caf\u00e9 \u2019s \u2014 \u00a9"]
    assert patients.column("emailaddr").to_pylist()[0] == "ann@example.com"
    assert patients.column("pager").to_pylist()[1] == "312-555-0142"
    assert patients.column("firstname").to_pylist()[2] is None  # nothing but an invisible character: empty
    assert sorted((r.key, r.column, r.reason) for r in chunk_rejects(patients)) == sorted(
        [(("1",), "lastname", "invisible_characters_removed"), (("1",), "emailaddr", "invisible_characters_removed"),
         (("2",), "lastname", "invisible_characters_removed"), (("2",), "pager", "invisible_characters_removed"),
         (("3",), "lastname", "invisible_characters_removed"), (("3",), "firstname", "invisible_characters_removed")])
    emoji = "\U0001f469\u200d\U0001f4bb"  # woman technologist: a ZWJ sequence
    notes = _conform("clinicalnote", [{"cnotesid": 1, "notetext": f"Allergy: none \u202enillicinep\u202c {emoji}"},
                                      {"cnotesid": 2, "notetext": f"Kept {emoji} a\u200bb \u200f"}])
    assert notes.column("notetext").to_pylist() == [
        f"Allergy: none nillicinep {emoji}", f"Kept {emoji} a\u200bb \u200f"]
    assert [(r.key, r.reason) for r in chunk_rejects(notes)] == [(("1",), "invisible_characters_removed")]


def test_a_key_is_never_cleaned() -> None:
    conformed = _conform("rsc", [{"rsctype": 1, "rscid": "DDS\u200b1"}])
    assert conformed.column("rscid").to_pylist() == ["DDS\u200b1"]
    assert chunk_rejects(conformed) == []


def test_the_arrow_and_python_character_sets_and_the_byte_screens_agree() -> None:
    every = [chr(c) for c in range(0x20, 0x3000) if not 0xD800 <= c < 0xE000] + ["\ufeff", "\ufffd"]
    chars = pa.array(every)
    arrow_all = {c for c, hit in zip(every, pc.match_substring_regex(chars, rejects.INVISIBLE_PATTERN).to_pylist())
                 if hit}
    arrow_bidi = {c for c, hit in zip(every, pc.match_substring_regex(chars, rejects.BIDI_PATTERN).to_pylist()) if hit}
    assert arrow_all == {c for c in every if rejects.INVISIBLE_CHARACTERS.fullmatch(c)} == {*ZERO_WIDTH, *BIDI}
    assert arrow_bidi == {c for c in every if rejects.BIDI_CONTROLS.fullmatch(c)} == set(BIDI) - {"\u200e", "\u200f"}
    # A screen that missed one would let it through untouched: each is seen alone in a chunk.
    assert all(_may_hold_invisibles(pa.array([f"x{c}y"]), free=False) for c in arrow_all)
    assert all(_may_hold_invisibles(pa.array([f"x{c}y"]), free=True) for c in arrow_bidi)
    assert not _may_hold_invisibles(pa.array(["it\u2019s \u201cfine\u201d \u2014 \u2026"]), free=False)


def test_a_clean_chunk_carries_no_rejects() -> None:
    conformed = _conform("clinicalnote", [{"cnotesid": 1, "notetext": "Line one\nLine\ttwo \u2019"}])
    assert rejects.METADATA_KEY not in (conformed.schema.metadata or {})
    assert conformed.column("notetext").to_pylist() == ["Line one\nLine\ttwo \u2019"]


# -- shaping transforms -------------------------------------------------------------------------------


@pytest.mark.parametrize(("transform", "value", "expected"), [
    ("email", "ann.lee\u200b@exa\ufeffmple.com", "ann.lee@example.com"),
    ("phone", "(312) 555\u200b-0142", "+13125550142"),
    ("name", "\u202eKcirtap\u202c", "Kcirtap"),
    ("name", "Zwi\u200bcky", "Zwicky"),
    ("split_name", "DOE\u200b, JANE", "Doe"),
    ("text", "Visit\u2066 for \u2069cleaning", "Visit for cleaning"),
])
def test_identity_transforms_validate_and_send_the_value_without_invisible_characters(
        transform: str, value: str, expected: str) -> None:
    outcome = apply(transform, value, {}, CTX)
    assert (outcome.value, outcome.problem, outcome.flag) == (expected, None, INVISIBLE_REMOVED)


def test_textarea_keeps_a_zwj_emoji_and_loses_a_bidi_override() -> None:
    emoji = "\U0001f469\u200d\U0001f4bb"
    outcome = apply("textarea", f"Note \u202eevil\u202c {emoji}\r\nnext", {}, CTX)
    assert (outcome.value, outcome.flag) == (f"Note evil {emoji}\nnext", INVISIBLE_REMOVED)
    assert apply("textarea", f"Clean {emoji}", {}, CTX).flag is None
    assert apply("email", "\u200b", {}, CTX).value is None and apply("email", "\u200b", {}, CTX).problem is None


# -- a practice staged, audited, shaped and planned ---------------------------------------------------


@pytest.fixture(scope="module")
def practice(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny practice with: a clinical note holding control characters; a patient's twin entered
    again (new patid, nickname, no mobile) with a zero-width space in the surname and the e-mail; a
    patient whose surname carries a bidi override; a name with a control character."""
    from dentrix_zoho.ledger import Ledger
    from dentrix_zoho.load.remigration import write_remigration_plan
    from dentrix_zoho.mapping import load_spec, shape_all
    from dentrix_zoho.source.audit import run_audit
    from dentrix_zoho.staging.stage_all import stage_objects

    folder = tmp_path_factory.mktemp("hostile_text")
    db = folder / "practice.db"
    shutil.copy(tiny_practice, db)
    with sqlite3.connect(db) as con:
        note_id, note_patid = con.execute(
            "SELECT cnotesid, patid FROM clinicalnote WHERE notetext IS NOT NULL ORDER BY cnotesid LIMIT 1").fetchone()
        twin, bidi, control = (r[0] for r in con.execute(
            "SELECT patid FROM patient WHERE status = 1 AND patid <> ? AND lastname IS NOT NULL AND birthdate IS NOT "
            "NULL AND patid = guarid ORDER BY patid LIMIT 3", [note_patid]).fetchall())
        con.execute("UPDATE clinicalnote SET notetext = ? WHERE cnotesid = ?",
                    ["Pt reports\x0bsensitivity LL\x1a", note_id])
        con.execute("UPDATE patient SET emailaddr = 'twin.hostile@example.com' WHERE patid = ?", [twin])
        new = 990_000 + twin
        con.execute("CREATE TEMP TABLE twin AS SELECT * FROM patient WHERE patid = ?", [twin])
        con.execute("UPDATE twin SET patid = ?, guarid = ?, patguid = ?, firstname = 'Zzyzx', pager = NULL, "
                    "lastname = substr(lastname, 1, 2) || char(8203) || substr(lastname, 3), "
                    "emailaddr = 'twin.hostile' || char(8203) || '@example.com'", [new, new, f"{{TWIN-{new}}}"])
        con.execute("INSERT INTO patient SELECT * FROM twin")
        con.execute("UPDATE patient SET lastname = char(8238) || 'Kcirtap' || char(8236) WHERE patid = ?", [bidi])
        con.execute("UPDATE patient SET lastname = 'Hos' || char(11) || 'tile' WHERE patid = ?", [control])
    staging = folder / "staging.duckdb"
    stage_objects(f"sqlite:///{db}", staging, office_id=OFFICE)
    audit = run_audit(staging, folder / "reports", image_root=None, provider_map=None)
    conn = duckdb.connect(str(staging))
    try:
        shape_all(conn, load_spec(), office_id=OFFICE, as_of=AS_OF, image_root=folder)
        staged = {r[0]: dict(zip(("patid", "lastname", "emailaddr", "pager", "gender", "firstname"), r))
                  for r in conn.execute("SELECT patid, lastname, emailaddr, pager, gender, firstname FROM "
                                        "dentrix.patient WHERE patid IN (?, ?, ?, ?)",
                                        [twin, new, bidi, control]).fetchall()}
        note = conn.execute("SELECT notetext FROM dentrix.clinicalnote WHERE cnotesid = ?", [note_id]).fetchone()[0]
        shaped_note = conn.execute("SELECT record FROM zoho_shaped.notes WHERE source_id = ?",
                                   [f"{OFFICE}:clinicalnote:{note_id}"]).fetchone()
        contacts = {sid: json.loads(rec) for sid, rec in conn.execute(
            "SELECT source_id, record FROM zoho_shaped.contacts WHERE source_id IN (?, ?, ?)",
            [f"{OFFICE}:patient:{p}" for p in (twin, new, bidi)]).fetchall()}
        all_rejects = rejects.office_rejects(conn, OFFICE, cleaned=True)
        shaping_rejects = rejects.office_rejects(conn, OFFICE)
    finally:
        conn.close()
    plan = write_remigration_plan(staging, Ledger(f"sqlite:///{folder / 'l.sqlite'}"), OFFICE, folder / "r")
    return {"note_id": note_id, "twin": twin, "new": new, "bidi": bidi, "control": control, "staged": staged,
            "note": note, "shaped_note": shaped_note, "contacts": contacts, "rejects": all_rejects,
            "shaping_rejects": shaping_rejects, "audit": audit, "plan": plan}


def test_the_staged_note_keeps_its_text_and_reaches_zoho_shaped(practice: dict[str, Any]) -> None:
    assert practice["note"] == "Pt reports sensitivity LL"
    assert practice["shaped_note"] is not None
    assert "Pt reports sensitivity LL" in json.loads(practice["shaped_note"][0])["Note_Content"]
    note_rejects = [r for r in practice["rejects"] if r["object_name"] == "clinicalnote"]
    assert [(r["source_key"], r["column_name"], r["reason"], r["value_class"]) for r in note_rejects] == [
        (str(practice["note_id"]), "notetext", "control_characters_removed", "text with control characters")]
    # Shaping sees only the NULLed values: the note is not an invalid one.
    assert not [r for r in practice["shaping_rejects"] if r["object_name"] == "clinicalnote"]
    control = [(r["column_name"], r["reason"]) for r in practice["shaping_rejects"]
               if r["object_name"] == "patient" and r["source_key"] == str(practice["control"])]
    assert control == [("lastname", "control_characters")]
    assert practice["staged"][practice["control"]]["lastname"] is None


def test_a_twin_with_zero_width_characters_matches_in_duplicate_detection(practice: dict[str, Any]) -> None:
    one, two = practice["staged"][practice["twin"]], practice["staged"][practice["new"]]
    assert two["lastname"] == one["lastname"] and two["emailaddr"] == one["emailaddr"] == "twin.hostile@example.com"
    assert same_person(one, two)  # surname and e-mail: the nickname and the missing mobile do not hide it
    contacts = practice["contacts"]
    first, second = contacts[f"{OFFICE}:patient:{practice['twin']}"], contacts[f"{OFFICE}:patient:{practice['new']}"]
    assert second["Last_Name"] == first["Last_Name"] and "\u200b" not in second["Last_Name"]
    assert second["Email"] == "twin.hostile@example.com"  # valid once the zero-width space is out


def test_a_bidi_override_is_gone_from_the_shaped_name(practice: dict[str, Any]) -> None:
    assert practice["contacts"][f"{OFFICE}:patient:{practice['bidi']}"]["Last_Name"] == "Kcirtap"


def test_the_audit_and_the_plan_list_cleaned_values_apart_and_without_values(practice: dict[str, Any]) -> None:
    audit, plan = practice["audit"], practice["plan"]
    assert audit.cleaned[("clinicalnote", "notetext", "control_characters_removed")] == 1
    assert audit.cleaned[("patient", "lastname", "invisible_characters_removed")] == 2
    assert not {k for k in audit.rejects if k[2] in rejects.CLEANED_REASONS}
    assert audit.rejects[("patient", "lastname", "control_characters")] == 1
    assert audit.findings["staging_cleaned"].count == sum(audit.cleaned.values())
    assert audit.summary()["staging_rejects"] == sum(audit.rejects.values())
    report = audit.path.read_text()
    assert "| `clinicalnote` | `notetext` | control_characters_removed | 1 |" in report
    lines = plan.csv_path.read_text().splitlines()
    note_line = next(line for line in lines if f"{OFFICE}:clinicalnote:{practice['note_id']}," in line)
    assert ",staging_cleaned:control_characters_removed,staging," in note_line and "nothing to do" in note_line
    assert plan.by_reason["staging_cleaned"] == len([r for r in practice["rejects"]
                                                     if r["reason"] in rejects.CLEANED_REASONS])
    markdown = plan.markdown_path.read_text()
    assert "## Values staging cleaned" in markdown
    for needle in ("sensitivity", "Kcirtap", "twin.hostile"):
        assert needle not in markdown and needle not in "\n".join(lines) and needle not in report
