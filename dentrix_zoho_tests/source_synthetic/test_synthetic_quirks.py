"""Every seeded quirk is in the database, and the seed manifest names exactly the rows that carry it."""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime

import phonenumbers
import yaml
from email_validator import EmailNotValidError, validate_email
from rapidfuzz import fuzz

from dentrix_zoho.source.catalog import (
    APPT_STATUS_COMPLETE,
    ChartStatus,
    ClaimStatus,
    ContactType,
    DefType,
    NoteType,
    PatientStatus,
    ProcLogClass,
    base_tables,
    views,
)
from dentrix_zoho.source.synthetic import GenerationResult
from dentrix_zoho.source.synthetic.images import UPLOAD_LIMIT_BYTES


def _set(conn: sqlite3.Connection, sql: str) -> set:
    return {row[0] if len(row) == 1 else tuple(row) for row in conn.execute(sql)}


def _day(text: str | None) -> date | None:
    return None if text is None else datetime.strptime(text, "%Y-%m-%d %H:%M:%S").date()


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _valid_phone(text: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, "US"))
    except phonenumbers.NumberParseException:
        return False


# -- storage quirks ----------------------------------------------------------------


def test_text_is_space_padded_on_many_rows_but_not_all(db: sqlite3.Connection) -> None:
    lengths = [len(v) for (v,) in db.execute("SELECT lastname FROM patient WHERE TRIM(lastname) <> ''")]
    padded = sum(1 for n in lengths if n == 22)
    assert 0.5 * len(lengths) < padded < len(lengths)


def test_provider_and_operatory_ids_are_padded_five_character_ids(db: sqlite3.Connection) -> None:
    provids = _set(db, "SELECT DISTINCT provid FROM appt")
    assert provids and all(len(p) == 5 and p.endswith(" ") for p in provids)
    assert {p.strip()[:3] for p in provids} == {"DDS", "HYG"}
    assert all(len(o) == 5 for o in _set(db, "SELECT DISTINCT opid FROM appt"))
    assert "DDS1 " in _set(db, "SELECT rscid FROM rsc WHERE rsctype = 1")


def test_appointment_start_is_split_into_date_hour_minute_and_length(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT apptdate, timehr, timemin, apptlen FROM appt").fetchall()
    assert rows
    for apptdate, hour, minute, length in rows:
        assert apptdate.endswith(" 00:00:00")
        assert 7 <= hour <= 17 and minute % 10 == 0 and 0 <= minute < 60 and length > 0


def test_every_base_row_has_a_modified_timestamp_not_after_the_snapshot(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    limit = f"{tiny_practice.manifest.as_of.isoformat()} 23:59:59"
    for obj in base_tables():
        missing, late = db.execute(
            f"SELECT SUM(automodifiedtimestamp IS NULL), SUM(automodifiedtimestamp > ?) FROM {obj.name}", (limit,)
        ).fetchone()
        assert not missing and not late, obj.name
    for obj in views():
        if obj.modified_column:
            (missing,) = db.execute(f"SELECT COUNT(*) FROM {obj.name} WHERE {obj.modified_column} IS NULL").fetchone()
            assert missing == 0, obj.name


def test_view_naming_traps(db: sqlite3.Connection) -> None:
    row = db.execute(
        "SELECT v.home_phone, a.phone, v.mobile_phone, p.pager, v.chart_num, p.chartnum, v.email, p.emailaddr, "
        "v.guar_id, p.guarid, v.birth_date, p.birthdate FROM v_patient v JOIN patient p ON p.patid = v.patient_id "
        "JOIN address a ON a.addrid = p.addrid WHERE TRIM(a.phone) <> '' AND TRIM(p.pager) <> '' LIMIT 1"
    ).fetchone()
    assert row[0::2] == row[1::2]


# -- families and guarantors ---------------------------------------------------------------


def test_families_share_an_address_and_a_guarantor(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    shared = db.execute("SELECT addrid, COUNT(*), COUNT(DISTINCT guarid) FROM patient GROUP BY addrid HAVING COUNT(*) > 1").fetchall()
    assert len(shared) == tiny_practice.manifest.families_sharing_address
    assert all(guarantors == 1 for _, _, guarantors in shared)
    for addrid, members, _ in shared:
        (ptrcount,) = db.execute("SELECT ptrcount FROM address WHERE addrid = ?", (addrid,)).fetchone()
        assert ptrcount == members


def test_minors_have_an_adult_responsible_party(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    as_of = tiny_practice.manifest.as_of
    people = {patid: (_day(born), guarid) for patid, born, guarid in db.execute("SELECT patid, birthdate, guarid FROM patient")}
    minors = {
        (patid, guarid) for patid, (born, guarid) in people.items()
        if born is not None and born <= as_of and _age(born, as_of) < 18 and guarid != patid
    }
    assert minors == set(tiny_practice.manifest.minors_with_responsible_party)
    assert len(minors) >= 5
    for _, guarid in minors:
        born, own_guarantor = people[guarid]
        assert born is not None and born <= as_of and _age(born, as_of) >= 18
        assert own_guarantor == guarid


def test_non_patient_guarantors(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    rows = _set(db, "SELECT g.patid FROM patient g WHERE g.status = 2 AND EXISTS (SELECT 1 FROM patient p WHERE p.guarid = g.patid AND p.patid <> g.patid)")
    assert rows == set(tiny_practice.manifest.non_patient_guarantor_patids) and rows
    assert not _set(db, "SELECT patid FROM patient WHERE status = 2 AND (firstvisitdate IS NOT NULL OR lastvisitdate IS NOT NULL)")


def test_statuses_one_to_four_and_archived_patients_are_stripped(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    counts = dict(db.execute("SELECT status, COUNT(*) FROM patient GROUP BY status").fetchall())
    assert set(counts) == {1, 2, 3, 4}
    assert counts == tiny_practice.manifest.patient_status_counts
    archived = _set(db, "SELECT patid FROM patient WHERE status = 4")
    assert not _set(db, "SELECT patid FROM patient WHERE status = 4 AND (priminsuredid <> 0 OR secinsuredid <> 0)")
    assert not archived & _set(db, "SELECT patid FROM recallpending")
    as_of = tiny_practice.manifest.as_of.isoformat()
    assert not archived & _set(db, f"SELECT patid FROM appt WHERE apptdate >= '{as_of}'")


def test_privacy_flags_are_bitmasks(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    flags = dict(db.execute("SELECT patid, privacyflags FROM patient WHERE privacyflags <> 0").fetchall())
    assert flags == tiny_practice.manifest.privacy_flag_patids
    assert set(flags.values()) <= {1, 2, 3} and len(set(flags.values())) >= 2


# -- appointments ------------------------------------------------------------------------


def test_new_patient_appointments_have_no_patient_row(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    m = tiny_practice.manifest
    rows = db.execute("SELECT apptid, patname, newpataddrid FROM appt WHERE patid = 0").fetchall()
    assert {r[0] for r in rows} == set(m.new_patient_appt_ids)
    addresses = _set(db, "SELECT addrid FROM address")
    notes = _set(db, f"SELECT noteid FROM fullnotes WHERE notetype = {int(NoteType.NEW_PATIENT_APPOINTMENT)}")
    for _, patname, addrid in rows:
        assert "," in patname and addrid in addresses and addrid in notes
    names = {r[0]: r[1].strip() for r in rows}
    assert m.new_patient_appt_matches
    for apptid, patid in m.new_patient_appt_matches:
        last, first = db.execute("SELECT TRIM(lastname), TRIM(firstname) FROM patient WHERE patid = ?", (patid,)).fetchone()
        assert names[apptid] == f"{last}, {first}"
    unmatched = {names[a] for a in m.new_patient_appt_ids} - {names[a] for a, _ in m.new_patient_appt_matches}
    existing = {f"{last}, {first}" for last, first in db.execute("SELECT TRIM(lastname), TRIM(firstname) FROM patient")}
    assert unmatched and not unmatched & existing


def test_deleted_appointments_survive_only_in_history(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    deleted = _set(db, "SELECT parentapptid FROM appthist WHERE deletedflag = 1")
    assert deleted == set(tiny_practice.manifest.deleted_appt_ids) and deleted
    assert not deleted & _set(db, "SELECT apptid FROM appt")
    assert _set(db, "SELECT status FROM appthist") >= {"Complete", "??????"}


def test_completed_and_broken_appointments(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    as_of = tiny_practice.manifest.as_of.isoformat()
    (complete,) = db.execute(f"SELECT COUNT(*) FROM appt WHERE status = {APPT_STATUS_COMPLETE}").fetchone()
    assert complete > 0
    assert not _set(db, f"SELECT apptid FROM appt WHERE status = {APPT_STATUS_COMPLETE} AND apptdate >= '{as_of}'")
    broken = db.execute("SELECT COUNT(*), SUM(broken) FROM v_appt WHERE broken_date IS NOT NULL").fetchone()
    assert broken[0] > 0 and broken[0] == broken[1]
    statuses = {d.strip() for d in _set(db, "SELECT descript FROM v_appt_status_codes")}
    assert {"??????", "FIRM", "FIRM-E", "EMERGENCY", "HERE", "READY", "LMM", "LMP", "MULTI", "NOFLEX", "Complete"} <= statuses


def test_completed_appointment_codes_point_at_the_ledger(db: sqlite3.Connection) -> None:
    ledger = _set(db, "SELECT proclogid FROM fullproclog WHERE proclogclass = 0")
    codes = _set(db, "SELECT codeid1 FROM appt WHERE codetype1 = 1")
    assert codes and codes <= ledger
    proc_ids = _set(db, "SELECT proccodeid FROM proccode")
    assert _set(db, "SELECT codeid1 FROM appt WHERE codetype1 = 0 AND codeid1 <> 0") <= proc_ids


# -- ledger ---------------------------------------------------------------------------


def test_payments_and_adjustments_share_the_ledger_with_procedures(db: sqlite3.Connection) -> None:
    classes = dict(db.execute("SELECT proclogclass, chartstatus FROM fullproclog GROUP BY proclogclass, chartstatus").fetchall())
    assert classes == {
        int(ProcLogClass.PROCEDURE): int(ChartStatus.COMPLETED_PROCEDURE),
        int(ProcLogClass.PATIENT_PAYMENT): int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
        int(ProcLogClass.INSURANCE_PAYMENT): int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
        int(ProcLogClass.CREDIT_ADJUSTMENT): int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
        int(ProcLogClass.CHARGE_ADJUSTMENT): int(ChartStatus.PAYMENT_OR_ADJUSTMENT),
    }
    signs = dict(db.execute("SELECT proclogclass, MAX(amt) FROM fullproclog GROUP BY proclogclass").fetchall())
    assert signs[ProcLogClass.PATIENT_PAYMENT] < 0 and signs[ProcLogClass.CREDIT_ADJUSTMENT] <= 0
    assert signs[ProcLogClass.INSURANCE_PAYMENT] <= 0
    assert not _set(db, "SELECT proclogid FROM fullproclog WHERE proclogclass = 0 AND amt <= 0")
    assert not _set(db, "SELECT proclogid FROM fullproclog WHERE proclogclass = 1 AND patid <> guarid")


def test_balances_belong_to_the_guarantor(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    aging = {
        guarid: round(a + b + c + d, 2)
        for guarid, a, b, c, d in db.execute("SELECT guarid, aging0to30, aging31to60, aging61to90, aging91plus FROM aging")
    }
    ledger = dict(db.execute("SELECT guarid, ROUND(SUM(amt), 2) FROM fullproclog GROUP BY guarid").fetchall())
    assert aging.keys() == ledger.keys()
    assert all(abs(aging[g] - ledger[g]) < 0.011 for g in aging)
    assert abs(sum(aging.values()) - tiny_practice.manifest.guarantor_balance_total) < 0.05
    by_patid = dict(db.execute("SELECT patid, ROUND(SUM(amt), 2) FROM fullproclog GROUP BY patid").fetchall())
    assert any(abs(by_patid.get(g, 0.0) - total) > 0.01 for g, total in ledger.items())
    assert any(v > 0 for v in aging.values())


def test_procedures_use_cdt_codes_teeth_and_surfaces(db: sqlite3.Connection) -> None:
    codes = {c.strip() for c in _set(db, "SELECT adacode FROM proccode")}
    assert {"D0120", "D1110", "D0274", "D2391", "D2740", "D4341"} <= codes
    assert all(re.fullmatch(r"D\d{4}", c) for c in codes)
    assert not _set(db, "SELECT proccodeid FROM feeschedule WHERE amt <= 0")
    teeth = _set(db, "SELECT toothrangestart FROM fullproclog WHERE toothrangestart <> 0")
    assert teeth and teeth <= set(range(1, 33))
    surfaces = {s.strip() for s in _set(db, "SELECT surfacestring FROM fullproclog WHERE TRIM(surfacestring) <> ''")}
    assert surfaces and all(set(s) <= set("MODBLIF") for s in surfaces)


def test_open_claims(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    m = tiny_practice.manifest
    open_ids = _set(db, f"SELECT claimid FROM claim WHERE status <> {int(ClaimStatus.RECEIVED)}")
    assert open_ids == set(m.open_claim_ids) and open_ids
    assert not _set(db, f"SELECT claimid FROM claim WHERE status <> {int(ClaimStatus.RECEIVED)} AND receiveddate IS NOT NULL")
    assert set(m.stale_open_claim_ids) <= open_ids


# -- office definitions, recalls, referrals, journal ------------------------------------------


def test_recall_types_and_pending_recalls(db: sqlite3.Connection) -> None:
    names = {n.strip(): (unit, qty) for n, unit, qty in db.execute("SELECT name, unit, qty FROM recalltype")}
    assert {"PROPHY", "BWX", "FMX", "PERIO"} <= names.keys()
    assert names["PROPHY"][1] == 6
    recall_names = {r.strip() for r in _set(db, "SELECT recall_type FROM v_patient_recall")}
    assert {"PROPHY", "BWX"} <= recall_names


def test_referral_sources(db: sqlite3.Connection) -> None:
    sources = {n.strip() for n in _set(db, "SELECT lastname FROM referral WHERE nonpersonflag = 1")}
    assert {"Yelp", "Google", "Patient referral", "Insurance directory", "Walk-in", "Mailer"} <= sources
    assert _set(db, "SELECT refid FROM patient WHERE refid <> 0") <= _set(db, "SELECT refid FROM referral")


def test_office_journal(db: sqlite3.Connection) -> None:
    types = _set(db, "SELECT contacttype FROM contact")
    assert {int(ContactType.TEXT_MESSAGE), int(ContactType.PHONE_CALL)} <= types
    for (hhmm,) in db.execute("SELECT contacttime FROM contact"):
        assert 0 <= hhmm // 100 <= 23 and 0 <= hhmm % 100 <= 59
    assert _set(db, f"SELECT noteid FROM fullnotes WHERE notetype = {int(NoteType.OFFICE_JOURNAL)}") <= _set(db, "SELECT contactid FROM contact")


def test_custom_fields_with_values(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    fields = {fid: (ftype.strip(), listvalues.strip()) for fid, ftype, listvalues in db.execute("SELECT custfieldid, fieldtype, listvalues FROM custfield")}
    assert {t for t, _ in fields.values()} == {"text", "list", "date"}
    off_list = set()
    for patid, fid, value in db.execute("SELECT patid, custfieldid, fieldvalue FROM custvalue"):
        ftype, allowed = fields[fid]
        if ftype == "list" and value.strip() not in allowed.split("|"):
            off_list.add((patid, fid))
        if ftype == "date":
            datetime.strptime(value.strip(), "%m/%d/%Y")
    assert off_list == set(tiny_practice.manifest.custom_values_outside_list) and off_list


def test_definition_ids_in_the_manifest_match_the_database(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    for deftype in DefType:
        rows = {d.strip(): i for i, d in db.execute("SELECT defid, descript FROM fulldef WHERE deftype = ?", (int(deftype),))}
        assert rows == tiny_practice.manifest.definition_ids[deftype.name]


# -- dirty data ------------------------------------------------------------------------


def test_invalid_emails_are_exactly_the_seeded_ones(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    invalid = set()
    for patid, email in db.execute("SELECT patid, TRIM(emailaddr) FROM patient WHERE TRIM(emailaddr) <> ''"):
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError:
            invalid.add(patid)
    assert invalid == set(tiny_practice.manifest.invalid_email_patids) and invalid


def test_junk_phones_are_exactly_the_seeded_ones(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    junk = set()
    formats = set()
    rows = db.execute("SELECT p.patid, a.phone, p.pager, p.workphone, p.otherphone FROM patient p JOIN address a ON a.addrid = p.addrid")
    for patid, *phones in rows:
        for phone in (p.strip() for p in phones if p and p.strip()):
            formats.add(re.sub(r"\d", "9", phone))
            if not _valid_phone(phone):
                junk.add(patid)
    assert junk == set(tiny_practice.manifest.junk_phone_patids) and junk
    assert len(formats) >= 6  # many ways of typing a phone number


def test_missing_last_names(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    assert _set(db, "SELECT patid FROM patient WHERE TRIM(lastname) = ''") == set(tiny_practice.manifest.missing_last_name_patids)
    assert tiny_practice.manifest.missing_last_name_patids


def test_unicode_names(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    flagged = set(tiny_practice.manifest.unicode_name_patids)
    assert flagged
    for patid, first, last in db.execute("SELECT patid, TRIM(firstname), TRIM(lastname) FROM patient"):
        plain = all(not n or (n.isascii() and n.isalpha()) for n in (first, last))
        assert plain == (patid not in flagged), patid
    names = " ".join(f for (f,) in db.execute("SELECT firstname || lastname FROM patient"))
    assert "'" in names and "-" in names and any(ord(ch) > 0x3000 for ch in names)


def test_duplicate_patients(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    pairs = tiny_practice.manifest.duplicate_patient_pairs
    assert pairs
    for original, copy in pairs:
        a = db.execute("SELECT TRIM(lastname), TRIM(firstname), birthdate, addrid FROM patient WHERE patid = ?", (original,)).fetchone()
        b = db.execute("SELECT TRIM(lastname), TRIM(firstname), birthdate, addrid FROM patient WHERE patid = ?", (copy,)).fetchone()
        assert a and b and original != copy
        assert a[2] == b[2] and a[3] != b[3]
        assert fuzz.ratio(a[0].casefold(), b[0].casefold()) >= 75


def test_birth_dates_in_the_future(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    as_of = tiny_practice.manifest.as_of.isoformat()
    assert _set(db, f"SELECT patid FROM patient WHERE birthdate > '{as_of} 23:59:59'") == set(tiny_practice.manifest.future_birthdate_patids)
    assert tiny_practice.manifest.future_birthdate_patids


def test_blank_and_shared_chart_numbers(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    m = tiny_practice.manifest
    assert _set(db, "SELECT patid FROM patient WHERE TRIM(chartnum) = ''") == set(m.blank_chartnum_patids)
    shared = db.execute(
        "SELECT GROUP_CONCAT(patid) FROM patient WHERE TRIM(chartnum) <> '' GROUP BY TRIM(chartnum) HAVING COUNT(*) > 1"
    ).fetchall()
    assert sorted(sorted(int(x) for x in g.split(",")) for (g,) in shared) == m.duplicate_chartnum_groups
    assert m.duplicate_chartnum_groups


def test_clinical_notes_longer_than_zoho_allows(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    long_ids = _set(db, "SELECT cnotesid FROM clinicalnote WHERE LENGTH(notetext) > 32000")
    assert long_ids == set(tiny_practice.manifest.overlong_note_ids) and long_ids


def test_orphans_of_a_hard_deleted_patient(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    m = tiny_practice.manifest
    patients = _set(db, "SELECT patid FROM patient")
    assert m.hard_deleted_patids and not set(m.hard_deleted_patids) & patients
    orphan_appts = _set(db, "SELECT apptid FROM appt WHERE patid <> 0 AND patid NOT IN (SELECT patid FROM patient)")
    orphan_notes = _set(db, "SELECT cnotesid FROM clinicalnote WHERE patid NOT IN (SELECT patid FROM patient)")
    assert orphan_appts == set(m.orphan_appt_ids) and orphan_appts
    assert orphan_notes == set(m.orphan_note_ids) and orphan_notes
    for table, column in (("fullproclog", "patid"), ("recallpending", "patid"), ("contact", "patid"), ("eattach", "patid"), ("insured", "inspartyid"), ("aging", "guarid")):
        assert not _set(db, f"SELECT {column} FROM {table} WHERE {column} NOT IN (SELECT patid FROM patient)"), table


# -- providers and files ---------------------------------------------------------------


def test_provider_map_leaves_one_provider_out(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    assert "email" not in {row[1] for row in db.execute("PRAGMA table_info(rsc)")}
    providers = {p.strip() for p in _set(db, "SELECT rscid FROM rsc WHERE rsctype = 1")}
    mapping = yaml.safe_load(tiny_practice.provider_map_path.read_text())["providers"]
    assert set(mapping) == providers - set(tiny_practice.manifest.unmapped_provider_ids)
    assert mapping == tiny_practice.manifest.provider_emails
    assert len(tiny_practice.manifest.unmapped_provider_ids) == 1
    assert mapping["DDS1"] == "dds1@dental.example.com"


def test_image_files_beside_the_database(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    m = tiny_practice.manifest
    folder = tiny_practice.images_dir
    assert folder == tiny_practice.db_path.parent / f"{tiny_practice.db_path.stem}_images"
    paths = {p.strip() for p in _set(db, "SELECT path_cnum FROM eattach UNION SELECT path_cnum FROM document")}
    assert len(paths) == m.image_count
    assert set(m.missing_image_paths) <= paths and set(m.over_limit_image_paths) <= paths
    assert m.missing_image_paths and m.over_limit_image_paths
    for rel in paths:
        assert not rel.startswith("/") and ".." not in rel and "\\" not in rel
        target = folder / rel
        if rel in m.missing_image_paths:
            assert not target.exists()
        elif rel in m.over_limit_image_paths:
            assert target.stat().st_size > UPLOAD_LIMIT_BYTES
        else:
            assert 0 < target.stat().st_size < 1_000_000
    jpg = next(p for p in paths if p.endswith(".jpg") and p not in m.missing_image_paths)
    assert (folder / jpg).read_bytes()[:3] == b"\xff\xd8\xff"


def test_manifest_counts_match_the_tables(db: sqlite3.Connection, tiny_practice: GenerationResult) -> None:
    for obj in base_tables():
        (count,) = db.execute(f"SELECT COUNT(*) FROM {obj.name}").fetchone()
        assert tiny_practice.manifest.counts[obj.name] == count, obj.name
    assert tiny_practice.manifest.counts["patient"] >= 180
    assert tiny_practice.manifest_path.name == "practice.seed.json"


def test_patient_status_codes(db: sqlite3.Connection) -> None:
    assert _set(db, "SELECT status FROM patient") == {s.value for s in PatientStatus}


def test_itemized_insurance_posting_puts_the_same_money_in_more_ledger_rows(
    tiny_practice: GenerationResult, tmp_path, monkeypatch
) -> None:
    """The large scale posts insurance checks and write-offs per procedure (group practices do)."""
    import dataclasses

    from dentrix_zoho.source.synthetic import generate_practice
    from dentrix_zoho.source.synthetic import generator as generator_module
    from dentrix_zoho.source.synthetic.scales import SCALES

    assert SCALES["large"].itemized_insurance and not SCALES["office"].itemized_insurance
    itemized = dict(SCALES, tiny=dataclasses.replace(SCALES["tiny"], itemized_insurance=True))
    monkeypatch.setattr(generator_module, "SCALES", itemized)
    result = generate_practice(tmp_path / "itemized.db", "tiny", tiny_practice.manifest.seed, tiny_practice.manifest.as_of)
    payment, write_off = int(ProcLogClass.INSURANCE_PAYMENT), int(ProcLogClass.CREDIT_ADJUSTMENT)

    def lines_per_claim(conn: sqlite3.Connection, proclogclass: int) -> dict[int, tuple[int, float]]:
        sql = ("SELECT claimid, count(*), ROUND(SUM(amt), 2) FROM fullproclog WHERE proclogclass = ? "
               "AND claimid > 0 GROUP BY claimid")
        return {claim: (n, total) for claim, n, total in conn.execute(sql, (proclogclass,))}

    per_claim = sqlite3.connect(f"file:{tiny_practice.db_path}?mode=ro", uri=True)
    by_procedure = sqlite3.connect(f"file:{result.db_path}?mode=ro", uri=True)
    try:
        assert all(n == 1 for n, _ in lines_per_claim(per_claim, payment).values())
        paid = lines_per_claim(by_procedure, payment)
        procedures = lines_per_claim(by_procedure, int(ProcLogClass.PROCEDURE))
        received = dict(by_procedure.execute("SELECT claimid, totalreceived FROM claim WHERE receiveddate IS NOT NULL"))
        assert paid and paid.keys() == received.keys()
        # One insurance line and one write-off per procedure on the claim, paying what the claim received.
        assert all(paid[c][0] == procedures[c][0] for c in paid)
        assert lines_per_claim(by_procedure, write_off).keys() >= paid.keys()
        assert any(n > 1 for n, _ in paid.values())
        assert all(abs(-paid[c][1] - received[c]) < 0.011 for c in paid)
        # Every guarantor's balance still equals its aging.
        aging = dict(by_procedure.execute(
            "SELECT guarid, ROUND(aging0to30 + aging31to60 + aging61to90 + aging91plus, 2) FROM aging"
        ).fetchall())
        ledger = dict(by_procedure.execute("SELECT guarid, ROUND(SUM(amt), 2) FROM fullproclog GROUP BY guarid").fetchall())
        assert aging.keys() == ledger.keys() and all(abs(aging[g] - ledger[g]) < 0.011 for g in aging)
    finally:
        per_claim.close()
        by_procedure.close()
