"""Propose where unmapped source data should land in Zoho, with a confidence and a reason.

Inputs: the practice-defined fields (``custfield`` / ``custvalue``) that the spec's
``practice_fields`` does not list, and the columns of each stream's source object
that no field or query of the spec names. For each, candidate targets are the
module's existing Zoho fields plus "a new custom field"; each candidate is scored on

* name similarity (rapidfuzz token-set ratio of normalised labels, abbreviations expanded),
* synonyms (a hand list: ``pager`` ~ mobile, ``birthdate`` ~ date of birth ...),
* the profile of the values (e-mail, phone, date, number, yes/no, few distinct values),
* type compatibility between that profile (or the declared field type) and the candidate.

Offline, deterministic, no model download. The values are read to profile them and are
never written out: the proposal holds labels, types and counts only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import phonenumbers
import yaml
from rapidfuzz import fuzz

from dentrix_zoho.mapping.spec import MappingSpec, api_name_from_label

SENSITIVE_COLUMNS = frozenset({"ssn", "social_sec_num", "driverslicense", "patguid", "rxguid"})
SYSTEM_COLUMNS = frozenset({"_office_id", "_source_key", "_row_hash", "_snapshot_id", "automodifiedtimestamp",
                            "modified_time_stamp"})
CUSTOM_FIELD_MODULES = frozenset({"Contacts", "Leads", "Events", "Tasks", "Calls"})
# Dentrix's own keys and code slots mean nothing in the CRM.
INTERNAL_COLUMN = re.compile(r"^(.*id|.*guid|codetype\d+|codeid\d+|ptrcount|pinboard)$")
# Streams whose columns are not candidates (an audit trail; values pivoted by label).
NON_RECORD_KINDS = frozenset({"audit_only", "practice_field", "procedure_history", "ledger_pdf", "document"})

ABBREVIATIONS = {
    "hx": "history", "dob": "date of birth", "addr": "address", "ph": "phone", "tel": "telephone",
    "ins": "insurance", "emp": "employer", "pref": "preferred", "prefname": "preferred name",
    "num": "number", "no": "number", "mi": "middle initial", "dt": "date", "fname": "first name",
    "lname": "last name", "firstname": "first name", "lastname": "last name", "emailaddr": "email address",
    "zipcode": "zip code", "zip": "zip code", "birthdate": "birth date", "otherphone": "other phone",
    "workphone": "work phone", "homephone": "home phone", "chartnum": "chart number", "med": "medical",
    "prov": "provider", "provid": "provider", "amt": "amount", "lang": "language", "desc": "description",
    "descript": "description", "e-mail": "email", "cell": "mobile", "cellphone": "mobile phone",
    "pager": "mobile", "sms": "mobile", "fax": "fax", "ext": "extension", "appt": "appointment",
    "workext": "work extension", "famid": "family", "fampos": "family position",
}
# Groups of words that mean the same field; a hit counts like an exact name match.
SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset({"mobile", "mobile phone", "cell phone", "pager", "cell", "text number"}),
    frozenset({"email", "email address", "e mail"}),
    frozenset({"date of birth", "birth date", "birthday", "dob"}),
    frozenset({"home phone", "home telephone", "house phone", "residence phone"}),
    frozenset({"phone", "work phone", "business phone", "office phone", "telephone"}),
    frozenset({"other phone", "alternate phone", "alt phone", "second phone"}),
    frozenset({"secondary email", "alternate email", "other email", "second email"}),
    frozenset({"description", "notes", "comments", "remarks", "patient note"}),
    frozenset({"lead source", "referral source", "referred by", "how did you hear", "source"}),
    frozenset({"mailing street", "street", "address", "street address", "address line"}),
    frozenset({"mailing city", "city", "town"}),
    frozenset({"mailing zip", "mailing zip code", "zip code", "postal code", "zip", "postcode"}),
    frozenset({"mailing state", "state", "province", "region"}),
    frozenset({"salutation", "prefix", "honorific"}),
    frozenset({"title", "job title", "occupation", "position"}),
    frozenset({"email opt out", "no email", "do not email", "email opt-out"}),
    frozenset({"fax", "fax number", "facsimile"}),
    frozenset({"first name", "given name", "forename"}),
    frozenset({"last name", "surname", "family name"}),
)
# Which Zoho data types suit a profile; 1.0 = natural, lower = possible, absent = poor.
TYPE_FIT: dict[str, dict[str, float]] = {
    "email": {"email": 1.0, "text": 0.4},
    "phone": {"phone": 1.0, "text": 0.4},
    "date": {"date": 1.0, "datetime": 0.7, "text": 0.3},
    "datetime": {"datetime": 1.0, "date": 0.7, "text": 0.3},
    "number": {"double": 1.0, "currency": 0.9, "integer": 0.9, "percent": 0.6, "text": 0.4},
    "integer": {"integer": 1.0, "double": 0.8, "bigint": 0.9, "text": 0.4, "picklist": 0.3},
    "boolean": {"boolean": 1.0, "picklist": 0.5, "text": 0.2},
    "picklist": {"picklist": 1.0, "text": 0.6, "multiselectpicklist": 0.7, "boolean": 0.5},
    "text": {"text": 1.0, "textarea": 0.8, "picklist": 0.3},
    "long_text": {"textarea": 1.0, "text": 0.5},
}


@dataclass(frozen=True)
class ValueProfile:
    kind: str  # email | phone | date | datetime | number | integer | boolean | picklist | text | long_text | empty
    non_null: int
    distinct: int
    max_length: int
    top_values: tuple[str, ...] = ()  # only for low-cardinality lists (picklist candidates)


@dataclass(frozen=True)
class Candidate:
    module: str
    api_name: str
    label: str
    data_type: str
    new: bool = False
    length: int | None = None


@dataclass(frozen=True)
class FieldProposal:
    source: str  # "custfield:<label>" or "<object>.<column>"
    module: str
    target: str | None  # API name; None = do not migrate
    create: dict[str, Any] | None  # custom field to create (spec shape) when target is new
    transform: str
    confidence: float
    rationale: str
    profile: ValueProfile | None = None


@dataclass
class ProposedSection:
    spec_hash: str
    proposals: list[FieldProposal] = field(default_factory=list)

    def by_source(self) -> dict[str, FieldProposal]:
        return {p.source: p for p in self.proposals}

    def to_yaml(self) -> str:
        """A spec fragment to review and paste; confidence and rationale as comments."""
        out = [
            "# Proposed by `dentrix-zoho map propose`; review, then copy what you accept into",
            f"# mapping_specs/dentrix_to_zoho.yaml (proposed against spec {self.spec_hash[:12]}).",
        ]
        practice = [p for p in self.proposals if p.source.startswith("custfield:")]
        columns = [p for p in self.proposals if not p.source.startswith("custfield:")]
        if practice:
            out.append("practice_fields:")
            for p in practice:
                out.append(f"  # confidence {p.confidence:.2f}: {p.rationale}")
                entry = {"source": "fieldvalue", "target": p.target, "transform": p.transform,
                         "on_invalid": "drop_field"}
                out.append(f"  {_yaml_key(p.source.split(':', 1)[1])}: {_flow(entry)}")
        creates: dict[str, list[dict[str, Any]]] = {}
        for p in self.proposals:
            if p.create is not None:
                creates.setdefault(p.module, []).append(p.create)
        if creates:
            out.append("custom_fields:  # add to the module's existing list")
            for module, fields in sorted(creates.items()):
                out.append(f"  {module}:")
                out.extend(f"    - {_flow(f)}" for f in fields)
        if columns:
            out.append("uncovered_columns:  # add as fields of the stream reading this object")
            for p in columns:
                out.append(f"  # confidence {p.confidence:.2f}: {p.rationale}")
                entry = {"module": p.module, "target": p.target, "transform": p.transform}
                out.append(f"  {_yaml_key(p.source)}: {_flow(entry)}")
        return "\n".join(out) + "\n"


def _flow(value: dict[str, Any]) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _yaml_key(text: str) -> str:
    return yaml.safe_dump(text, default_style=None).strip().removesuffix("...").strip()


# -- normalising and profiling ---------------------------------------------

_WORDS = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Za-z][a-z]*|\d+")


def normalise(label: str) -> str:
    """``Last_Medical_Hx_Update`` / ``lastmedhx`` -> ``last medical history update``."""
    text = re.sub(r"\b[Ee][\s_-]?[Mm]ail", "Email", label)
    text = text.replace("_", " ").replace("-", " ").replace(".", " ").replace("#", " number ")
    words = [w.lower() for w in _WORDS.findall(text)]
    expanded: list[str] = []
    for w in words:
        expanded.extend(ABBREVIATIONS.get(w, w).split())
    return " ".join(expanded)


def _synonym_hit(a: str, b: str) -> bool:
    return any(a in group and b in group for group in SYNONYMS)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_DATE = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})$")
_BOOL = {"y", "n", "yes", "no", "true", "false", "t", "f", "x"}


def _is_phone(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or re.search(r"[A-Za-z]", text):
        return False
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(text, "US"))
    except phonenumbers.NumberParseException:
        return False


def profile_values(values: Iterable[Any], declared: str | None = None) -> ValueProfile:
    """Classify a column by the share of values matching each pattern (>= 80 % wins)."""
    texts: list[str] = []
    kinds: dict[str, int] = {}
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kind, text = "boolean", str(value)
        elif isinstance(value, dt.datetime):
            kind, text = ("date" if value.time() == dt.time() else "datetime"), value.isoformat()
        elif isinstance(value, dt.date):
            kind, text = "date", value.isoformat()
        elif isinstance(value, int):
            kind, text = "integer", str(value)
        elif isinstance(value, float):
            kind, text = "number", str(value)
        else:
            text = str(value).strip()
            if not text:
                continue
            low = text.lower()
            if _EMAIL.match(text):
                kind = "email"
            elif _DATE.match(text):
                kind = "date"
            elif low in _BOOL and len(low) <= 5:
                kind = "boolean"
            elif _NUMBER.match(text) and not (len(text) >= 7 and _is_phone(text)):
                kind = "integer" if "." not in text else "number"
            elif _is_phone(text):
                kind = "phone"
            else:
                kind = "text"
        texts.append(text)
        kinds[kind] = kinds.get(kind, 0) + 1
    n = len(texts)
    if n == 0:
        return ValueProfile("empty", 0, 0, 0)
    distinct = len(set(texts))
    max_len = max(len(t) for t in texts)
    kind, count = max(kinds.items(), key=lambda kv: kv[1])
    if count < 0.8 * n:
        kind = "text"
    if kind == "integer" and set(texts) <= {"0", "1"}:
        kind = "boolean"
    if kind == "integer" and len({len(t) for t in texts}) == 1 and len(texts[0]) >= 4:
        kind = "text"  # fixed-width digit strings (zip codes, member ids) are codes, not numbers
    if declared == "list" and kind != "boolean":
        kind = "picklist"
    elif declared == "date" and kind in {"text", "date"}:
        kind = "date"
    if kind == "text":
        if max_len > 255:
            kind = "long_text"
        elif declared != "text" and distinct <= 20 and n >= 3 * distinct:
            kind = "picklist"  # free text with few distinct values; a declared text field stays text
    top: tuple[str, ...] = ()
    if kind in {"picklist", "boolean"}:
        counts: dict[str, int] = {}
        for t in texts:
            counts[t] = counts.get(t, 0) + 1
        top = tuple(sorted(counts, key=lambda k: (-counts[k], k))[:25])
    return ValueProfile(kind, n, distinct, max_len, top)


# -- scoring ----------------------------------------------------------------


def name_score(source_label: str, candidate: Candidate) -> tuple[float, str]:
    a = normalise(source_label)
    best, how = 0.0, "name"
    for text in {normalise(candidate.label), normalise(candidate.api_name)}:
        if a == text or _synonym_hit(a, text):
            return 1.0, "synonym" if a != text else "same name"
        score = fuzz.token_set_ratio(a, text) / 100.0
        # token_set_ratio scores a one-word subset as 100 ("phone" in "home phone"): damp it
        if set(a.split()) != set(text.split()):
            score *= 0.85
        if score > best:
            best = score
    return best, how


def _new_field_type(profile: ValueProfile, declared: str | None) -> str:
    if declared == "list" or profile.kind == "picklist":
        return "picklist"
    if declared == "date":
        return "date"
    return {"email": "email", "phone": "phone", "date": "date", "datetime": "datetime", "number": "double",
            "integer": "integer", "boolean": "boolean", "long_text": "textarea"}.get(profile.kind, "text")


_TRANSFORM_FOR_TYPE = {
    "email": "email", "phone": "phone", "date": "date", "datetime": "datetime", "double": "currency",
    "currency": "currency", "integer": "integer", "boolean": "boolean", "textarea": "textarea",
    "picklist": "text", "text": "text",
}


def score_candidates(
    source_label: str, profile: ValueProfile, candidates: Sequence[Candidate], declared: str | None = None
) -> list[tuple[float, Candidate, str]]:
    """Candidates best first, with a one-line reason each."""
    scored: list[tuple[float, Candidate, str]] = []
    for cand in candidates:
        fit = TYPE_FIT.get(profile.kind, {}).get(cand.data_type, 0.1 if profile.kind != "empty" else 0.5)
        if cand.new:
            # A new field is named after the source: it fits by construction, but loses to a
            # good existing field, so that nothing is duplicated in Zoho.
            score = 0.62 + 0.1 * fit
            reason = f"no existing field fits; new {cand.data_type} field '{cand.label}'"
        else:
            name, how = name_score(source_label, cand)
            score = 0.65 * name + 0.35 * fit
            if name < 0.5:
                score *= 0.6
            reason = f"{how} {name:.2f} with {cand.api_name} ({cand.data_type}); values look {profile.kind}"
        scored.append((round(score, 4), cand, reason))
    scored.sort(key=lambda item: (-item[0], item[1].new, item[1].api_name))
    return scored


def _candidates(module: str, existing: Iterable[dict[str, Any]], label: str, profile: ValueProfile,
                declared: str | None, reserved: frozenset[str] = frozenset()) -> list[Candidate]:
    existing = list(existing)
    out = [
        Candidate(module, f["api_name"], f.get("field_label") or f["api_name"], f.get("data_type", "text"),
                  length=f.get("length"))
        for f in existing
        if f.get("data_type") not in {"lookup", "ownerlookup", "subform"} and not f.get("read_only")
        and f.get("api_name") != "Source_System_ID"
    ]
    if module in CUSTOM_FIELD_MODULES:
        new_type = _new_field_type(profile, declared)
        taken = reserved | {f["api_name"] for f in existing}
        if api_name_from_label(label) in taken:
            label = f"Dentrix {label}"  # never shadow a field the module already has
        out.append(Candidate(module, api_name_from_label(label), label, new_type, new=True))
    return out


def _create_body(cand: Candidate, profile: ValueProfile, list_values: Sequence[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"label": cand.label, "type": cand.data_type}
    if cand.data_type == "text":
        body["length"] = min(255, max(40, profile.max_length * 2))
    if cand.data_type == "textarea":
        body["length"] = 32000
    if cand.data_type == "picklist":
        body["picklist"] = list(list_values) or list(profile.top_values) or ["Other"]
    return body


def propose_one(
    source: str, label: str, module: str, values: Sequence[Any], existing: Sequence[dict[str, Any]],
    declared: str | None = None, list_values: Sequence[str] = (), reserved: frozenset[str] = frozenset(),
) -> FieldProposal:
    """Best target for one source field; ``reserved``: API names in use that are not candidates."""
    profile = profile_values(values, declared)
    candidates = _candidates(module, existing, label, profile, declared, reserved)
    ranked = score_candidates(label, profile, candidates, declared)
    score, best, reason = ranked[0]
    margin = score - ranked[1][0] if len(ranked) > 1 else score
    confidence = round(min(1.0, max(0.0, score * (0.8 + min(margin, 0.2)))), 2)
    create = _create_body(best, profile, list_values) if best.new else None
    transform = _TRANSFORM_FOR_TYPE.get(best.data_type, "text")
    return FieldProposal(source, module, best.api_name, create, transform, confidence, reason, profile)


def _reserved(existing_fields: dict[str, list[dict[str, Any]]], module: str) -> frozenset[str]:
    return frozenset(f["api_name"] for f in existing_fields.get(module, []))


def _declared_targets(spec: MappingSpec) -> set[str]:
    names: set[str] = set()
    for stream in spec.streams.values():
        names.update(f.target for f in stream.fields)
    names.update(f.target for f in spec.practice_fields.values())
    return names


def _covered_columns(spec: MappingSpec, obj: str) -> set[str]:
    covered: set[str] = set()
    for stream in spec.streams.values():
        if stream.object != obj:
            continue
        covered.update(stream.key)
        covered.update(re.findall(r"\b[a-z_][a-z0-9_]*\b", stream.query.replace("*", " ")))
        for f in stream.fields:
            if f.source:
                covered.add(f.source)
            if f.template:
                covered.update(re.findall(r"\{([a-z_0-9]+)", f.template))
        for link in stream.links:
            covered.add(link.key)
        if stream.parent_key:
            covered.add(stream.parent_key)
        if stream.owner_provider:
            covered.add(stream.owner_provider)
    return covered


def _table_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'dentrix' AND table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def propose(
    duckdb_conn: duckdb.DuckDBPyConnection,
    spec: MappingSpec,
    existing_fields: dict[str, list[dict[str, Any]]],
    *,
    office_id: str | None = None,
    sample_rows: int = 2000,
) -> ProposedSection:
    """Proposals for practice-defined fields and source columns the spec does not cover."""
    from dentrix_zoho.mapping.spec import spec_hash

    section = ProposedSection(spec_hash(spec))
    taken = _declared_targets(spec)
    office_filter = "" if office_id is None else " AND v._office_id = ?"
    params: list[Any] = [] if office_id is None else [office_id]
    tables = {r[0] for r in duckdb_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dentrix'").fetchall()}
    if {"custfield", "custvalue"} <= tables:
        fields = duckdb_conn.execute(
            "SELECT DISTINCT label, fieldtype, listvalues FROM dentrix.custfield WHERE label IS NOT NULL ORDER BY label"
        ).fetchall()
        for label, fieldtype, listvalues in fields:
            if label in spec.practice_fields:
                continue
            values = [r[0] for r in duckdb_conn.execute(
                "SELECT v.fieldvalue FROM dentrix.custvalue v JOIN dentrix.custfield f ON f.custfieldid = v.custfieldid "
                f"WHERE f.label = ?{office_filter} LIMIT {int(sample_rows)}", [label, *params]).fetchall()]
            declared = (fieldtype or "").strip().lower() or None
            list_values = [v.strip() for v in (listvalues or "").split("|") if v.strip()]
            existing = [f for f in existing_fields.get("Contacts", []) if f.get("api_name") not in taken]
            section.proposals.append(propose_one(f"custfield:{label}", label, "Contacts", values, existing,
                                                 declared, list_values, _reserved(existing_fields, "Contacts")))
    seen: set[str] = set()
    for stream in spec.streams.values():
        if (stream.object in seen or stream.object not in tables or stream.module not in CUSTOM_FIELD_MODULES
                or stream.kind in NON_RECORD_KINDS):
            continue
        seen.add(stream.object)
        covered = _covered_columns(spec, stream.object)
        existing = [f for f in existing_fields.get(stream.module, []) if f.get("api_name") not in taken]
        for column in _table_columns(duckdb_conn, stream.object):
            if column in covered or column in SYSTEM_COLUMNS:
                continue
            source = f"{stream.object}.{column}"
            if column in SENSITIVE_COLUMNS:
                section.proposals.append(FieldProposal(source, stream.module, None, None, "text", 0.95,
                                                       "sensitive identifier: do not migrate to the CRM"))
                continue
            if INTERNAL_COLUMN.match(column):
                section.proposals.append(FieldProposal(source, stream.module, None, None, "text", 0.8,
                                                       "internal Dentrix key or code slot: not migrated"))
                continue
            where = "" if office_id is None else " WHERE _office_id = ?"
            values = [r[0] for r in duckdb_conn.execute(
                f'SELECT "{column}" FROM dentrix."{stream.object}"{where} LIMIT {int(sample_rows)}', params
            ).fetchall()]
            if not any(v is not None and str(v).strip() for v in values):
                section.proposals.append(FieldProposal(source, stream.module, None, None, "text", 0.9,
                                                       "no values in the staged data: nothing to migrate"))
                continue
            section.proposals.append(propose_one(source, normalise(column).title(), stream.module, values,
                                                 existing, reserved=_reserved(existing_fields, stream.module)))
    return section
