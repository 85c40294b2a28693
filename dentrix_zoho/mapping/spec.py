"""The mapping spec: a pydantic model of ``mapping_specs/dentrix_to_zoho.yaml``.

The spec is the confirmed map a person approves. It says, per output stream
(one primary Dentrix object -> one Zoho module), which DuckDB query joins the
staged tables, which column feeds which Zoho API name through which transform,
what happens to a value that does not fit, which rows are skipped by a named
rule, the picklist value maps, the routing rules and the custom fields to
create. Errors name the file and the key path at fault.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SPEC_FILENAME = "dentrix_to_zoho.yaml"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ZOHO_MODULES = ("Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments")
# Zoho: letters, digits, underscores; starts with a letter; no "__"; no trailing "_".
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$")

KNOWN_TRANSFORMS = frozenset({
    "text", "textarea", "name", "split_name", "phone", "email", "date", "datetime", "currency",
    "integer", "boolean", "cdt_code", "tooth", "surfaces", "value_map", "constant",
})
QUERY_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
BUILTIN_PARAMS = frozenset({"as_of", "window_start"})

OnInvalid = Literal["quarantine", "drop_field", "truncate", "split"]
CustomType = Literal[
    "text", "textarea", "email", "phone", "integer", "currency", "double", "percent",
    "boolean", "date", "datetime", "picklist", "lookup", "subform", "website",
]


class SpecError(ValueError):
    """A spec file that does not parse or validate; the message names file and key path."""


def check_api_name(value: str) -> str:
    if not _API_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid Zoho API name (letters, digits, single underscores, "
            "starts with a letter; '__c' is Salesforce, not Zoho)"
        )
    return value


def api_name_from_label(label: str) -> str:
    """How Zoho derives a custom field's API name from its label (spaces -> '_', case kept).

    Punctuation handling is not documented, so it is dropped here and the
    caller must read back the name Zoho actually assigned (``apply_api_names``).
    """
    cleaned = re.sub(r"[^A-Za-z0-9 _]", "", label).strip()
    name = re.sub(r"[\s_]+", "_", cleaned).strip("_")
    if not name or not name[0].isalpha():
        name = f"Field_{name}".rstrip("_")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class FieldMap(_Strict):
    """One Zoho field: where its value comes from and how it is made fit."""

    target: str = Field(description="Zoho API name")
    source: str | None = Field(default=None, description="column of the stream query")
    template: str | None = Field(default=None, description="str.format template over the row")
    value: Any = Field(default=None, description="constant value")
    transform: str = "text"
    args: dict[str, Any] = Field(default_factory=dict)
    required: bool = False
    on_invalid: OnInvalid = Field(
        default="quarantine",
        description="what a value that does not fit does: hold the record back (quarantine), "
        "send it without this field (drop_field), cut it with a flag (truncate), or split "
        "it into parts (split, notes only); every case leaves a flag or quarantine row",
    )

    @field_validator("target")
    @classmethod
    def _target_is_api_name(cls, v: str) -> str:
        return check_api_name(v)

    @field_validator("transform")
    @classmethod
    def _known_transform(cls, v: str) -> str:
        if v not in KNOWN_TRANSFORMS:
            raise ValueError(f"unknown transform {v!r}; known: {', '.join(sorted(KNOWN_TRANSFORMS))}")
        return v

    @model_validator(mode="after")
    def _one_origin(self) -> FieldMap:
        origins = [o for o in (self.source, self.template) if o is not None]
        if len(origins) > 1:
            raise ValueError("give only one of source / template")
        if not origins and self.value is None:
            raise ValueError("give one of source / template / value")
        return self


class SkipRule(_Strict):
    """Rows matching ``when`` (a DuckDB boolean over the stream query) are skipped by name
    (under ``skip``) or quarantined by name (under ``quarantine``)."""

    name: str
    when: str
    reason: str


class LinkSpec(_Strict):
    """A lookup resolved by the loader from the crosswalk (by SOURCE id)."""

    field: str
    parent_object: str = Field(description="source object of the parent, e.g. patient")
    key: str = Field(description="column holding the parent's key")
    required: bool = True

    @field_validator("field")
    @classmethod
    def _field_is_api_name(cls, v: str) -> str:
        return check_api_name(v)


class StreamSpec(_Strict):
    """One primary Dentrix object shaped into one Zoho module."""

    object: str = Field(description="primary Dentrix object (the accounting unit)")
    module: Literal["Contacts", "Leads", "Events", "Tasks", "Calls", "Notes", "Attachments"]
    kind: Literal[
        "patient", "appointment", "recall", "journal", "note", "prescription",
        "procedure_history", "document", "ledger_pdf", "audit_only", "practice_field",
    ]
    key: list[str] = Field(min_length=1)
    query: str
    parent_key: str | None = Field(default=None, description="column with the owning patient id")
    fields: list[FieldMap] = Field(default_factory=list)
    links: list[LinkSpec] = Field(default_factory=list)
    skip: list[SkipRule] = Field(default_factory=list)
    quarantine: list[SkipRule] = Field(
        default_factory=list,
        description="rows matching `when` are held back (quarantined) with the rule's name as reason",
    )
    owner_provider: str | None = Field(default=None, description="column with the provider id")
    folded: bool = Field(default=False, description="many source rows fold into one record per parent")

    @field_validator("query")
    @classmethod
    def _select_only(cls, v: str) -> str:
        head = v.lstrip().split(None, 1)[0].upper() if v.strip() else ""
        if head not in {"SELECT", "WITH"}:
            raise ValueError("query must be a SELECT (or WITH ... SELECT)")
        return v


class CustomField(_Strict):
    """A custom field to create in Zoho (``POST /settings/fields``)."""

    label: str
    api_name: str | None = Field(default=None, description="expected; derived from label if empty")
    type: CustomType
    length: int | None = None
    picklist: list[str] = Field(default_factory=list)
    unique: bool = False
    lookup_module: str | None = None
    subform_fields: list[CustomField] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> CustomField:
        if self.api_name is None:
            self.api_name = api_name_from_label(self.label)
        check_api_name(self.api_name)
        limits = {"text": (1, 255), "email": (1, 100), "phone": (1, 30), "integer": (1, 9),
                  "currency": (1, 16), "percent": (1, 5), "double": (1, 18), "website": (1, 450)}
        if self.type in limits and self.length is not None:
            lo, hi = limits[self.type]
            if not lo <= self.length <= hi:
                raise ValueError(f"length {self.length} outside Zoho's {lo}-{hi} for {self.type}")
        if self.type == "textarea" and self.length not in (None, 2000, 32000, 50000):
            raise ValueError("textarea length must be 2000, 32000 or 50000")
        if self.type == "picklist" and not self.picklist:
            raise ValueError("a picklist needs picklist values")
        if self.type == "lookup" and not self.lookup_module:
            raise ValueError("a lookup needs lookup_module")
        if self.type == "subform" and not self.subform_fields:
            raise ValueError("a subform needs subform_fields")
        if self.type != "subform" and self.subform_fields:
            raise ValueError("only a subform has subform_fields")
        return self


class ValueMap(_Strict):
    """Source value -> Zoho value; ``default`` for the rest, ``flag_default`` to report them."""

    values: dict[str, Any]
    default: Any = None
    flag_default: bool = False
    flag_field: str | None = Field(default=None, description="boolean field set true when defaulted")


class PracticeSettings(_Strict):
    time_zone: str = "America/Chicago"
    phone_region: str = Field(default="US", min_length=2, max_length=2)
    currency: str = "USD"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class RoutingSpec(_Strict):
    """Patient -> Contact or Lead. The window is in months before ``as_of``."""

    leads_window_months: int = Field(default=18, ge=1, le=240)
    lead_status: dict[str, str] = Field(
        description="reason -> Lead_Status value; reasons: inactive, archived, no_recent_treatment"
    )
    keep_as_contact: list[Literal["responsible_party", "subscriber", "open_balance"]] = Field(
        default_factory=list,
        description="reasons that keep a patient a Contact whatever its activity",
    )
    lead_fields: dict[str, str | None] = Field(
        default_factory=dict,
        description="Contacts API name -> Leads API name (null: not carried on a Lead)",
    )

    @field_validator("lead_status")
    @classmethod
    def _reasons(cls, v: dict[str, str]) -> dict[str, str]:
        missing = {"inactive", "archived", "no_recent_treatment"} - set(v)
        if missing:
            raise ValueError(f"lead_status lacks {sorted(missing)}")
        return v


class InsuranceSpec(_Strict):
    """Primary/secondary plans; ``row_fields`` sources use ``{slot}`` (pri, sec)."""

    mode: Literal["subform", "flatten"] = "subform"
    subform_api_name: str = "Insurance_Plans"
    slots: dict[str, str] = Field(default_factory=lambda: {"pri": "Primary", "sec": "Secondary"})
    slot_present: str = Field(default="{slot}_carrier", description="column saying the slot is used")
    row_fields: list[FieldMap] = Field(default_factory=list)


class NotesSpec(_Strict):
    content_limit: int = Field(default=32000, ge=100)
    overflow: Literal["split", "quarantine"] = "split"


class AttachmentSpec(_Strict):
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)


class NewPatientLeadSpec(_Strict):
    """Leads for new-patient appointments (patid 0) that match no patient."""

    lead_status: str
    fields: list[FieldMap] = Field(min_length=1)


class MappingSpec(_Strict):
    version: Literal[1] = 1
    practice: PracticeSettings = Field(default_factory=PracticeSettings)
    routing: RoutingSpec
    insurance: InsuranceSpec = Field(default_factory=InsuranceSpec)
    notes: NotesSpec = Field(default_factory=NotesSpec)
    attachments: AttachmentSpec = Field(default_factory=AttachmentSpec)
    value_maps: dict[str, ValueMap] = Field(default_factory=dict)
    picklist_additions: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description="module -> standard picklist API name -> values the map needs (e.g. Other)",
    )
    custom_fields: dict[str, list[CustomField]] = Field(default_factory=dict)
    query_params: dict[str, int | str] = Field(
        default_factory=dict, description=":name placeholders in stream queries"
    )
    streams: dict[str, StreamSpec]
    new_patient_leads: NewPatientLeadSpec | None = None
    practice_fields: dict[str, FieldMap] = Field(
        default_factory=dict, description="practice-defined field label -> Contact field"
    )
    workflow_notes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_references(self) -> MappingSpec:
        for module in self.custom_fields:
            if module not in ZOHO_MODULES:
                raise ValueError(f"custom_fields: unknown module {module!r}")
        all_fields = [(f"streams.{n}", s.fields) for n, s in self.streams.items()]
        all_fields.append(("insurance.row_fields", self.insurance.row_fields))
        all_fields.append(("practice_fields", list(self.practice_fields.values())))
        if self.new_patient_leads is not None:
            all_fields.append(("new_patient_leads", self.new_patient_leads.fields))
        for where, fields in all_fields:
            for i, fmap in enumerate(fields):
                if fmap.transform == "value_map":
                    ref = fmap.args.get("map")
                    if ref not in self.value_maps:
                        raise ValueError(
                            f"{where}.fields.{i} ({fmap.target}): value map {ref!r} is not "
                            "defined under value_maps"
                        )
        known = BUILTIN_PARAMS | set(self.query_params)
        for name, stream in self.streams.items():
            texts = [stream.query] + [rule.when for rule in (*stream.skip, *stream.quarantine)]
            for text in texts:
                for param in QUERY_PARAM.findall(text):
                    if param not in known:
                        raise ValueError(
                            f"streams.{name}: query parameter :{param} is not defined under query_params"
                        )
        return self

    def stream_for(self, source_object: str) -> list[tuple[str, StreamSpec]]:
        return [(n, s) for n, s in self.streams.items() if s.object == source_object]

    def patient_objects(self) -> list[str]:
        """Source objects of the patient streams (Contacts or Leads by the routing rules)."""
        return sorted({s.object for s in self.streams.values() if s.kind == "patient"})

    def custom_field(self, module: str, api_name: str) -> CustomField | None:
        for cf in self.custom_fields.get(module, []):
            if cf.api_name == api_name:
                return cf
        return None


def repo_spec_dir() -> Path:
    """``mapping_specs/`` at the repository root (this file is dentrix_zoho/mapping/spec.py)."""
    return Path(__file__).resolve().parents[2] / "mapping_specs"


def packaged_spec_dir() -> Path:
    """The copy shipped inside the wheel (kept in sync by a test)."""
    return Path(__file__).resolve().parent / "default_spec"


def default_spec_path() -> Path:
    repo = repo_spec_dir() / SPEC_FILENAME
    return repo if repo.exists() else packaged_spec_dir() / SPEC_FILENAME


def _format_error(path: Path | str, exc: ValidationError) -> str:
    lines = [f"{path}: the mapping spec is not valid ({exc.error_count()} error(s))"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<top>"
        lines.append(f"  at {loc}: {err['msg']}")
    return "\n".join(lines)


def parse_spec(data: Any, origin: Path | str = "<spec>") -> MappingSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: the mapping spec must be a YAML mapping at the top level")
    try:
        return MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_error(origin, exc)) from None


# Specs parsed in this process, by (resolved path, SHA-256 of the text): a load step asks for the spec
# several times, and the YAML and validation are what cost. Keyed by content, so an edited file is read anew.
_PARSED_MAX = 8
_parsed: dict[tuple[str, str], MappingSpec] = {}
_parsed_lock = threading.Lock()


def load_spec(path: Path | str | None = None) -> MappingSpec:
    """Read and validate a spec (default: ``mapping_specs/dentrix_to_zoho.yaml``).

    Parsed once per process per file content; every caller gets a copy of its own, so what one changes
    (an office's time zone, Zoho's API names) never reaches another."""
    spec_path = Path(path) if path is not None else default_spec_path()
    text = spec_path.read_text(encoding="utf-8")
    key = (str(spec_path.resolve()), hashlib.sha256(text.encode("utf-8")).hexdigest())
    with _parsed_lock:
        parsed = _parsed.get(key)
    if parsed is None:
        try:
            data = yaml.load(text, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise SpecError(f"{spec_path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
        parsed = parse_spec(data, spec_path)
        with _parsed_lock:
            while len(_parsed) >= _PARSED_MAX:
                _parsed.pop(next(iter(_parsed)))
            _parsed[key] = parsed
    return parsed.model_copy(deep=True)


def canonical_json(spec: MappingSpec) -> str:
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def spec_hash(spec_or_path: MappingSpec | Path | str) -> str:
    """SHA-256 of the canonical (parsed, key-sorted) spec: comments and layout do not count."""
    spec = spec_or_path if isinstance(spec_or_path, MappingSpec) else load_spec(spec_or_path)
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()
