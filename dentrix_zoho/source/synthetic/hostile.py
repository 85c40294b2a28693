"""A hostile practice: a generated one with chosen patients damaged on purpose, one kind each.

``make_hostile(db_path, seed)`` mutates a practice the generator wrote (plain SQL against
the SQLite stand-in) and writes ``<stem>.hostile.json`` beside it: for each mutated patient
its patid, the kind of hostility, the outcome the migration must reach ("loaded": in Zoho
exactly once; "quarantined": named in the re-migration plan with a reason starting with
``reason``; "skipped": named by a skip rule) and, where the damage is in a child row (an
appointment, a note), that row's source id and outcome. ``values`` are the hostile strings
written, so that a test can prove none of them reaches a log line or an error message.

Some kinds put values in the source that staging cannot convert (text in a DATETIME column,
invalid UTF-8, binary, control characters in a name, text longer than its column): staging stages the
row with that column NULL and names it in its rejects (``staging_reject:<reason>`` in the
re-migration plan), and shaping applies the field's ``on_invalid``. Others put characters that are
never text in a value (control characters in a note, zero-width and bidi characters): staging
stages the value without them and the plan names it as cleaned (``staging_cleaned:<reason>``).
For a record that still goes, ``reason`` names that plan row.

Deterministic: the same practice and seed choose the same patients and write the same bytes.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from dentrix_zoho.source.synthetic.manifest import ManifestFile, SeedManifest
from dentrix_zoho.source.synthetic.paths import PracticeFiles

HOSTILE_MANIFEST_VERSION = 1
Outcome = Literal["loaded", "quarantined", "skipped"]
# Far from any patid, appointment or note id the generator hands out.
NOWHERE_ID = 987_654_321
NEW_PATID_BASE = 900_000


class ChildOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_id: str  # office-free: "<object>:<key>", e.g. "appt:1234"
    expected: Outcome
    reason: str | None = None  # as HostileMutation.reason


class HostileMutation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    patid: int
    kind: str
    expected: Outcome
    # quarantined / skipped: prefix of a reason (or skip rule) expected; loaded: a field-level
    # reason the re-migration plan must name besides (a staging reject of one column)
    reason: str | None = None
    child: ChildOutcome | None = None
    values: list[str] = []  # hostile strings written (synthetic data), for leak checks


class HostileManifest(ManifestFile):
    what: ClassVar[str] = "hostile-practice manifest"

    manifest_version: int = HOSTILE_MANIFEST_VERSION
    seed: int
    kinds: list[str]
    mutations: list[HostileMutation]


def hostile_manifest_path(db_path: Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(f"{db_path.stem}.hostile.json")


# -- the kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    patid: int
    appt_id: int | None
    note_id: int | None


Mutate = Callable[[sqlite3.Connection, Sequence[Patient], random.Random], HostileMutation | list[HostileMutation]]


@dataclass(frozen=True)
class Kind:
    name: str
    mutate: Mutate
    patients: int = 1  # how many patients the kind takes (a guarantor loop takes two or three)
    needs: str = ""  # "appt" | "note": the patient must have one


KINDS: dict[str, Kind] = {}


def _kind(name: str, *, patients: int = 1, needs: str = "") -> Callable[[Mutate], Mutate]:
    def register(fn: Mutate) -> Mutate:
        KINDS[name] = Kind(name, fn, patients, needs)
        return fn

    return register


def _set(conn: sqlite3.Connection, table: str, key: str, key_value: int, **columns: object) -> None:
    assignments = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", [*columns.values(), key_value])


def _patient_field(name: str, column: str, value: str | None, expected: Outcome, reason: str | None = None,
                   needles: Iterable[str] = ()) -> None:
    def mutate(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
        _set(conn, "patient", "patid", ps[0].patid, **{column: value})
        return HostileMutation(patid=ps[0].patid, kind=name, expected=expected, reason=reason, values=list(needles))

    _kind(name)(mutate)


# Mandatory field: Last_Name.
_patient_field("last_name_empty", "lastname", "", "quarantined", "required_value_missing")
_patient_field("last_name_null", "lastname", None, "quarantined", "required_value_missing")
_patient_field("last_name_whitespace", "lastname", " \t  \u00a0 ", "quarantined", "required_value_missing")
_patient_field("last_name_emoji_only", "lastname", "\U0001f9b7\U0001f9b7", "quarantined", "name_without_letters",
               ["\U0001f9b7\U0001f9b7"])
_patient_field("last_name_digits", "lastname", "Smith2000", "quarantined", "name_contains_digits", ["Smith2000"])
_patient_field("last_name_300_chars", "lastname", "Hostilename" * 27 + "abc", "quarantined", "staging_reject:too_long",
               ["Hostilename" * 3])
# Quotes, semicolons and SQL-looking text: carried as they are, never executed.
# Within lastname's CHAR width (22): a longer value is a staging reject, not SQL-looking text.
_patient_field("last_name_sql", "lastname", "O'; DROP TABLE pat;--", "loaded", None,
               ["DROP TABLE pat;"])
_patient_field("first_name_quotes", "firstname", "Ro\"b'); DELETE;--", "loaded", None,  # within CHAR(17)
               ["'); DELETE;--"])
# Non-Latin and odd Unicode.
_patient_field("name_chinese", "lastname", "欧阳娜娜", "loaded", None, ["欧阳娜娜"])
_patient_field("name_arabic", "lastname", "عبد الرحمن", "loaded", None, ["عبد الرحمن"])
_patient_field("name_devanagari", "lastname", "श्रीवास्तव", "loaded", None, ["श्रीवास्तव"])
_patient_field("name_emoji", "firstname", "Zoë\U0001f600", "loaded", None, ["Zoë\U0001f600"])
# Invisible formatting characters: staging removes them (the plan names the value as cleaned) and the
# patient goes; the e-mail and phone are valid once they are out.
_CLEANED = "staging_cleaned:invisible_characters_removed"
_patient_field("name_zero_width", "lastname", "Zwi\u200bcky\u200d", "loaded", _CLEANED, ["Zwi\u200bcky"])
_patient_field("name_right_to_left_mark", "lastname", "\u202eKcirtap\u200f", "loaded", _CLEANED, ["\u202eKcirtap"])
_patient_field("name_bidi_isolate", "firstname", "\u2067Hostilia\u2069", "loaded", _CLEANED, ["\u2067Hostilia"])
_patient_field("name_bom_word_joiner", "lastname", "\ufeffHost\u2060ile", "loaded", _CLEANED, ["Host\u2060ile"])
_patient_field("email_zero_width", "emailaddr", "zw.hostile\u200b@exam\u200cple.com", "loaded", _CLEANED,
               ["zw.hostile\u200b@"])
_patient_field("phone_bidi_override", "pager", "\u202d312-555-01\u200b42\u202c", "loaded", _CLEANED,
               ["01\u200b42"])
# Broken contact data: the field is dropped (flagged), the patient goes.
_patient_field("email_comma_list", "emailaddr", "ann.hostile@example.com, bob.hostile@example.org", "loaded",
               None, ["ann.hostile@example.com"])
_patient_field("email_broken", "emailaddr", "hostile@@example..com", "loaded", None, ["hostile@@example"])
_patient_field("email_sql", "emailaddr", "x'@example.com; DROP TABLE rsc", "loaded", None, ["DROP TABLE rsc"])
_patient_field("phone_letters", "pager", "CALL-ME-HOSTILE", "loaded", None, ["CALL-ME-HOSTILE"])
_patient_field("phone_too_short", "workphone", "12", "loaded", None)
_patient_field("phone_sql", "otherphone", "555';--", "loaded", None, ["555';--"])
# Impossible birth dates (a valid DATETIME value, out of range): the field is dropped, flagged.
_patient_field("birth_date_1800", "birthdate", "1800-01-01 00:00:00", "loaded")
_patient_field("birth_date_2999", "birthdate", "2999-12-31 00:00:00", "loaded")
# Values staging cannot convert: staged NULL and named as a staging reject; the field is dropped.
_patient_field("birth_date_text", "birthdate", "born in the spring", "loaded", "staging_reject:not_a_datetime",
               ["born in the spring"])
_patient_field("birth_date_feb_30", "birthdate", "2001-02-30 00:00:00", "loaded", "staging_reject:not_a_datetime")
# Codes outside their lists.
_patient_field("status_unknown", "status", 9, "quarantined", "unmapped_value")  # type: ignore[arg-type]
_patient_field("famid_nowhere", "famid", NOWHERE_ID, "loaded")  # type: ignore[arg-type]


@_kind("patient_note_1mb")
def _patient_note_1mb(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
    """A 1 MB patient note (fullnotes type 3 -> Description): cut to Zoho's length, flagged."""
    text = ("Hostile patient note line. " * 40 + "\n") * 950
    conn.execute("DELETE FROM fullnotes WHERE notetype = 3 AND noteid = ?", [ps[0].patid])
    conn.execute("INSERT INTO fullnotes (notetype, noteid, notetext) VALUES (3, ?, ?)", [ps[0].patid, text])
    return HostileMutation(patid=ps[0].patid, kind="patient_note_1mb", expected="loaded",
                           values=["Hostile patient note line."])


# -- guarantor and family references -------------------------------------------------------------


@_kind("guarantor_self")
def _guarantor_self(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
    _set(conn, "patient", "patid", ps[0].patid, guarid=ps[0].patid, isguar=1)
    return HostileMutation(patid=ps[0].patid, kind="guarantor_self", expected="loaded")


@_kind("guarantor_nowhere")
def _guarantor_nowhere(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
    _set(conn, "patient", "patid", ps[0].patid, guarid=NOWHERE_ID)
    return HostileMutation(patid=ps[0].patid, kind="guarantor_nowhere", expected="loaded")


@_kind("guarantor_negative")
def _guarantor_negative(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
    _set(conn, "patient", "patid", ps[0].patid, guarid=-7)
    return HostileMutation(patid=ps[0].patid, kind="guarantor_negative", expected="loaded")


def _loop(name: str, size: int) -> None:
    def mutate(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> list[HostileMutation]:
        for here, there in zip(ps, [*ps[1:], ps[0]], strict=True):
            _set(conn, "patient", "patid", here.patid, guarid=there.patid, status=1)
        return [HostileMutation(patid=p.patid, kind=name, expected="loaded") for p in ps]

    _kind(name, patients=size)(mutate)


_loop("guarantor_loop_a_b", 2)
_loop("guarantor_loop_a_b_c", 3)


# -- duplicated rows and keys ----------------------------------------------------------------------


@_kind("duplicate_patid_row")
def _duplicate_patid(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
    """Two patient rows with one patid (c-tree does not enforce the key): neither can be told right."""
    conn.execute("DROP INDEX IF EXISTS ix_patient_key")
    conn.execute("INSERT INTO patient SELECT * FROM patient WHERE patid = ?", [ps[0].patid])
    conn.execute("UPDATE patient SET firstname = ? WHERE rowid = last_insert_rowid()", ["Twinhostile"])
    return HostileMutation(patid=ps[0].patid, kind="duplicate_patid_row", expected="quarantined",
                           reason="duplicate_source_key", values=["Twinhostile"])


@_kind("duplicate_person_new_patid")
def _duplicate_person(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> list[HostileMutation]:
    """The same person entered again under a new patid: both go, the later flagged as a possible duplicate."""
    new = NEW_PATID_BASE + ps[0].patid
    conn.execute("INSERT INTO patient SELECT * FROM patient WHERE patid = ?", [ps[0].patid])
    conn.execute("UPDATE patient SET patid = ?, guarid = ?, patguid = ? WHERE rowid = last_insert_rowid()",
                 [new, new, f"{{HOSTILE-{new}}}"])
    return [HostileMutation(patid=ps[0].patid, kind="duplicate_person_new_patid", expected="loaded"),
            HostileMutation(patid=new, kind="duplicate_person_new_patid", expected="loaded")]


@_kind("duplicate_appt_row", needs="appt")
def _duplicate_appt(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
    conn.execute("DROP INDEX IF EXISTS ix_appt_key")
    conn.execute("INSERT INTO appt SELECT * FROM appt WHERE apptid = ?", [ps[0].appt_id])
    return HostileMutation(patid=ps[0].patid, kind="duplicate_appt_row", expected="loaded",
                           child=ChildOutcome(source_id=f"appt:{ps[0].appt_id}", expected="quarantined",
                                              reason="duplicate_source_key"))


# -- appointments ------------------------------------------------------------------------------------


def _appt(name: str, reason: str | None, expected: Outcome = "quarantined", **columns: object) -> None:
    def mutate(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
        _set(conn, "appt", "apptid", ps[0].appt_id or 0, **columns)
        return HostileMutation(patid=ps[0].patid, kind=name, expected="loaded",
                               child=ChildOutcome(source_id=f"appt:{ps[0].appt_id}", expected=expected, reason=reason))

    _kind(name, needs="appt")(mutate)


_appt("appt_time_25_70", "appointment_time_impossible", timehr=25, timemin=70)
_appt("appt_negative_length", "appointment_time_impossible", apptlen=-30)
_appt("appt_reason_sql", None, "loaded", apptreason="'); DELETE FROM appt; --")
_appt("appt_date_text", "staging_reject:not_a_datetime", apptdate="next tuesday-ish")


# -- clinical notes ----------------------------------------------------------------------------------


def _note(name: str, text: str | bytes, expected: Outcome, reason: str | None, needles: Iterable[str] = (),
          *, sql_value: str = "?") -> None:
    def mutate(conn: sqlite3.Connection, ps: Sequence[Patient], rng: random.Random) -> HostileMutation:
        conn.execute(f"UPDATE clinicalnote SET notetext = {sql_value} WHERE cnotesid = ?", [text, ps[0].note_id])
        return HostileMutation(patid=ps[0].patid, kind=name, expected="loaded", values=list(needles),
                               child=ChildOutcome(source_id=f"clinicalnote:{ps[0].note_id}", expected=expected,
                                                  reason=reason))

    _kind(name, needs="note")(mutate)


_note("note_1mb", ("Hostile clinical note sentence. " * 30 + "\n") * 1100, "loaded", None,
      ["Hostile clinical note sentence."])
_note("note_whitespace_only", " \n\t \r\n   ", "skipped", "empty_clinical_note")
_note("note_sql", "Pt said '); DROP TABLE clinicalnote; -- and left", "loaded", None, ["DROP TABLE clinicalnote"])
# Control characters in a note: staging removes them (a run becomes one space) and the note goes,
# named in the plan as cleaned; a bidi override leaves a note the same way (a ZWJ emoji stays).
_note("note_nul_bytes", "Hostile\x00nul\x00note", "loaded", "staging_cleaned:control_characters_removed",
      ["nul\x00note", "Hostile\x00"])
_note("note_control_chars", "Hostile\x1b[31mansi\x07bell\x0bnote", "loaded",
      "staging_cleaned:control_characters_removed", ["ansi\x07bell"])
_note("note_bidi_override", "Allergy: none \u202enillicinep\u202c \U0001f469\u200d\U0001f4bb", "loaded",
      "staging_cleaned:invisible_characters_removed", ["\u202enillicinep"])
# Staging rejects these notes' text (staged NULL): the note is then empty and skipped by that rule.
_note("note_invalid_utf8", b"Hostile \xff\xfe broken \xc3\x28 utf8", "skipped", "staging_reject:invalid_encoding",
      sql_value="CAST(? AS TEXT)")
_note("note_binary_blob", bytes(range(256)) * 64, "skipped", "staging_reject:invalid_encoding")

DEFAULT_KINDS = tuple(KINDS)


# -- choosing the patients ---------------------------------------------------------------------------


def _clean_patients(conn: sqlite3.Connection, seed_manifest: SeedManifest | None) -> list[Patient]:
    """Patients (status 1) or inactive ones (3) who are nobody's guarantor and carry none of the
    generator's own damage, with their first appointment and clinical note."""
    dirty: set[int] = set()
    if seed_manifest is not None:
        m = seed_manifest
        for pair in m.duplicate_patient_pairs:
            dirty.update(pair)
        for group in m.duplicate_chartnum_groups:
            dirty.update(group)
        for ids in (m.hard_deleted_patids, m.future_birthdate_patids, m.missing_last_name_patids,
                    m.unicode_name_patids, m.blank_chartnum_patids, m.non_patient_guarantor_patids,
                    m.invalid_email_patids, m.junk_phone_patids):
            dirty.update(ids)
    rows = conn.execute(
        "SELECT p.patid, "
        "  (SELECT min(a.apptid) FROM appt a WHERE a.patid = p.patid), "
        "  (SELECT min(c.cnotesid) FROM clinicalnote c WHERE c.patid = p.patid AND c.notetext IS NOT NULL) "
        "FROM patient p WHERE p.status IN (1, 3) "
        "AND NOT EXISTS (SELECT 1 FROM patient d WHERE d.guarid = p.patid AND d.patid <> p.patid) "
        "ORDER BY p.patid"
    ).fetchall()
    return [Patient(int(r[0]), r[1], r[2]) for r in rows if int(r[0]) not in dirty]


def _assign(kinds: Sequence[Kind], pool: list[Patient], rng: random.Random) -> list[tuple[Kind, list[Patient]]]:
    """Kinds needing a child row first (fewer patients have one), each patient used once."""
    free = list(pool)
    rng.shuffle(free)
    chosen: list[tuple[Kind, list[Patient]]] = []
    for kind in sorted(kinds, key=lambda k: (not k.needs, k.name)):
        fits = [p for p in free if (kind.needs != "appt" or p.appt_id) and (kind.needs != "note" or p.note_id)]
        if len(fits) < kind.patients:
            raise ValueError(f"hostile practice: too few clean patients left for kind {kind.name!r} "
                             f"({len(pool)} candidates for {len(kinds)} kinds); use a larger practice")
        picked = fits[: kind.patients]
        for p in picked:
            free.remove(p)
        chosen.append((kind, picked))
    return chosen


def make_hostile(db_path: Path, seed: int, kinds: Iterable[str] | None = None) -> HostileManifest:
    """Mutate the practice at ``db_path`` in place (one transaction) and write its hostile manifest.

    ``kinds``: the kinds to apply (default ``DEFAULT_KINDS``: every kind).
    """
    db_path = Path(db_path)
    wanted = list(DEFAULT_KINDS if kinds is None else kinds)
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown hostile kind(s) {unknown}; known: {', '.join(KINDS)}")
    files = PracticeFiles(db_path)
    seed_manifest = SeedManifest.read(files.manifest) if files.manifest.exists() else None
    rng = random.Random(f"dentrix-zoho:hostile:{seed}")
    conn = sqlite3.connect(db_path, isolation_level=None)
    mutations: list[HostileMutation] = []
    try:
        conn.execute("BEGIN")
        pool = _clean_patients(conn, seed_manifest)
        for kind, patients in _assign([KINDS[k] for k in wanted], pool, rng):
            made = kind.mutate(conn, patients, rng)
            mutations.extend(made if isinstance(made, list) else [made])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    mutations.sort(key=lambda m: (m.kind, m.patid))
    manifest = HostileManifest(seed=seed, kinds=sorted(wanted), mutations=mutations)
    manifest.write(hostile_manifest_path(db_path))
    return manifest
