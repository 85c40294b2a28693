"""Value transforms: Dentrix value in, Zoho-formatted value out.

Each transform takes ``(value, args, ctx)`` and returns an :class:`Outcome`.
A value that cannot be made valid comes back with ``problem`` set (a reason
code, never the value); a value that was defaulted or altered comes back with
``flag`` set. The caller decides, per field and by the spec, whether a
problem holds the record back or drops the field; nothing is changed silently.

Invisible formatting characters (zero-width space/joiners, LRM/RLM, word joiner, a BOM inside
text, bidi embeddings, overrides and isolates; ``staging.rejects.INVISIBLE_CHARACTERS``) are
taken out by staging already, which names each value it cleaned (``invisible_characters_removed``
in the audit and the re-migration plan): every reader of the staged snapshot, duplicate checks
included, then compares the clean value. The identity transforms (``text``, ``name``,
``split_name``, ``phone``, ``email``) remove them again, before any test, so a value that reaches a
transform another way (a snapshot staged before staging cleaned, a template's constant text) is
held to the same rule: an e-mail or phone is validated as it will be sent, without them, and a
value that had some comes back flagged ``invisible_characters_removed`` (the shaping ``flags``
count it). ``textarea`` (notes, descriptions, addresses) removes only the bidi controls
(``staging.rejects.BIDI_CONTROLS``: they can make a note display otherwise than it reads) and
keeps ZWJ/ZWNJ, which emoji sequences and Indic or Persian spelling need, and LRM/RLM.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from nameparser import HumanName

from dentrix_zoho.mapping.spec import MappingSpec, ValueMap
from dentrix_zoho.staging.rejects import BIDI_CONTROLS, INVISIBLE_CHARACTERS


@dataclass(frozen=True)
class Context:
    time_zone: ZoneInfo
    phone_region: str = "US"
    as_of: dt.date = field(default_factory=dt.date.today)
    value_maps: Mapping[str, ValueMap] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: MappingSpec, as_of: dt.date) -> Context:
        return cls(
            time_zone=ZoneInfo(spec.practice.time_zone),
            phone_region=spec.practice.phone_region,
            as_of=as_of,
            value_maps=spec.value_maps,
        )


@dataclass(frozen=True)
class Outcome:
    value: Any
    problem: str | None = None
    flag: str | None = None


Transform = Callable[[Any, Mapping[str, Any], Context], Outcome]
TRANSFORMS: dict[str, Transform] = {}


def transform(name: str) -> Callable[[Transform], Transform]:
    def register(fn: Transform) -> Transform:
        TRANSFORMS[name] = fn
        return fn

    return register


def apply(name: str, value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    try:
        fn = TRANSFORMS[name]
    except KeyError:
        raise KeyError(f"unknown transform {name!r}") from None
    return fn(value, args, ctx)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


_SPACES = re.compile(r"\s+")
INVISIBLE_REMOVED = "invisible_characters_removed"


def _visible(value: Any, pattern: re.Pattern[str] = INVISIBLE_CHARACTERS) -> tuple[str, str | None]:
    """The text without invisible formatting characters, and the flag when some were removed."""
    raw = str(value)
    out = pattern.sub("", raw)
    return out, (INVISIBLE_REMOVED if out != raw else None)


def _flagged(outcome: Outcome, flag: str | None) -> Outcome:
    """``outcome`` with ``flag`` unless it has a problem or a flag of its own already."""
    if flag is None or outcome.problem is not None or outcome.flag is not None or outcome.value is None:
        return outcome
    return Outcome(outcome.value, flag=flag)


def _case(text: str, case: str | None) -> str:
    if case == "upper":
        return text.upper()
    if case == "lower":
        return text.lower()
    if case == "title":
        return text.title()
    return text


@transform("text")
def text(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """Trim, collapse runs of whitespace, optional case; invisible formatting characters removed."""
    if _blank(value):
        return Outcome(None)
    visible, flag = _visible(value)
    out = visible.strip()
    if not out:
        return Outcome(None)
    if args.get("collapse", True):
        out = _SPACES.sub(" ", out)
    return _flagged(Outcome(_case(out, args.get("case"))), flag)


@transform("textarea")
def textarea(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """Trim the ends, keep line breaks (normalised to \\n); bidi controls removed, ZWJ kept."""
    if _blank(value):
        return Outcome(None)
    visible, flag = _visible(value, BIDI_CONTROLS)
    out = visible.replace("\r\n", "\n").replace("\r", "\n").strip()
    return _flagged(Outcome(out or None), flag)


def _fix_case(part: str) -> str:
    # Dentrix data is often typed in capitals; mixed case is the patient's own spelling, keep it.
    if part.isupper() or part.islower():
        name = HumanName(part)
        name.capitalize(force=True)
        fixed = str(name)
        return fixed if fixed.replace(" ", "").lower() == part.replace(" ", "").lower() else part.title()
    return part


@transform("name")
def name(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """One personal-name part: trimmed, casing fixed when typed all upper/lower, invisible characters removed."""
    if _blank(value):
        return Outcome(None)
    visible, flag = _visible(value)
    raw = _SPACES.sub(" ", visible.strip())
    if not raw:
        return Outcome(None)
    if any(ch.isdigit() for ch in raw):
        return Outcome(None, problem="name_contains_digits")
    if not any(ch.isalpha() for ch in raw):
        return Outcome(None, problem="name_without_letters")
    return _flagged(Outcome(_fix_case(raw) if args.get("fix_case", True) else raw), flag)


@transform("split_name")
def split_name(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """A part (first / last / middle) of a whole name such as ``DOE, JANE`` (appt.patname)."""
    if _blank(value):
        return Outcome(None)
    part = args.get("part", "last")
    if part not in {"first", "last", "middle"}:
        raise ValueError(f"split_name: part must be first, last or middle, not {part!r}")
    visible, flag = _visible(value)
    raw = _SPACES.sub(" ", visible.strip())
    if not raw:
        return Outcome(None)
    if "," in raw:  # Dentrix writes 'LAST, FIRST MIDDLE'
        last, rest = (p.strip() for p in raw.split(",", 1))
        given = HumanName(rest)
        pieces = {"last": last, "first": given.first, "middle": given.middle}
    elif " " not in raw:  # one word is the surname: the front desk types that first
        pieces = {"last": raw, "first": "", "middle": ""}
    else:
        parsed = HumanName(raw)
        pieces = {"last": parsed.last, "first": parsed.first, "middle": parsed.middle}
    piece = pieces[part]
    if not piece:
        return Outcome(None)
    return _flagged(name(piece, {}, ctx), flag)


@transform("phone")
def phone(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """E.164 (``+13125550142``, `` x12`` kept for an extension). ``check``: valid (default) or possible."""
    if _blank(value):
        return Outcome(None)
    region = str(args.get("region", ctx.phone_region))
    visible, flag = _visible(value)  # validated as it is sent: without them
    if not visible.strip():
        return Outcome(None)
    try:
        number = phonenumbers.parse(visible.strip(), region)
    except phonenumbers.NumberParseException:
        return Outcome(None, problem="phone_unparseable")
    check = args.get("check", "valid")
    ok = (
        phonenumbers.is_possible_number(number)
        if check == "possible"
        else phonenumbers.is_valid_number(number)
    )
    if not ok:
        return Outcome(None, problem="phone_invalid")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # E.164 has no extension; keep the office's extension rather than lose it.
    return _flagged(Outcome(f"{e164} x{number.extension}" if number.extension else e164), flag)


@transform("email")
def email(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """Syntax only (no DNS); the domain is lower-cased; validated without invisible characters."""
    if _blank(value):
        return Outcome(None)
    visible, flag = _visible(value)
    if not visible.strip():
        return Outcome(None)
    try:
        result = validate_email(visible.strip(), check_deliverability=False)
    except EmailNotValidError:
        return Outcome(None, problem="email_invalid")
    return _flagged(Outcome(result.normalized), flag)


_DATE_TEXT = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
_US_DATE_TEXT = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text_value = str(value).strip()
    match = _DATE_TEXT.match(text_value)
    if match:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    us = _US_DATE_TEXT.match(text_value)  # typed by hand in Dentrix: MM/DD/YYYY
    if us:
        return dt.date(int(us[3]), int(us[1]), int(us[2]))
    raise ValueError("not a date")


@transform("date")
def date(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """``yyyy-MM-dd``. 9999-12-31 (Dentrix open end) -> empty; ``not_future`` and ``min_year`` checks."""
    if _blank(value):
        return Outcome(None)
    try:
        day = _as_date(value)
    except ValueError:  # also an impossible day such as 02/30/2020
        return Outcome(None, problem="date_unparseable")
    if day is None or day.year >= 9999:
        return Outcome(None)
    if day.year < int(args.get("min_year", 1880)):
        return Outcome(None, problem="date_before_min_year")
    if args.get("not_future") and day > ctx.as_of:
        return Outcome(None, problem="date_in_future")
    return Outcome(day.isoformat())


@transform("datetime")
def datetime(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """``yyyy-MM-ddTHH:mm:ss±HH:mm`` in the practice time zone (Dentrix stores local wall time)."""
    if _blank(value):
        return Outcome(None)
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip().replace("/", "-"))
        except ValueError:
            return Outcome(None, problem="datetime_unparseable")
    if moment.year >= 9999:
        return Outcome(None)
    if moment.year < int(args.get("min_year", 1880)):
        return Outcome(None, problem="date_before_min_year")
    local = (
        moment.replace(tzinfo=ctx.time_zone)
        if moment.tzinfo is None
        else moment.astimezone(ctx.time_zone)
    )
    return Outcome(local.isoformat(timespec="seconds"))


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidOperation
    return Decimal(str(value).strip().replace(",", "").replace("$", ""))


@transform("currency")
def currency(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """A number with 2 decimals; ``min`` rejects e.g. negative fees."""
    if _blank(value):
        return Outcome(None)
    try:
        amount = _decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return Outcome(None, problem="currency_unparseable")
    if "min" in args and amount < Decimal(str(args["min"])):
        return Outcome(None, problem="currency_below_min")
    if abs(amount) >= Decimal(10) ** 16:
        return Outcome(None, problem="currency_too_large")
    return Outcome(float(amount))


@transform("integer")
def integer(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    if _blank(value):
        return Outcome(None)
    try:
        number = _decimal(value)
    except (InvalidOperation, ValueError):
        return Outcome(None, problem="integer_unparseable")
    if number != number.to_integral_value():
        return Outcome(None, problem="integer_has_fraction")
    return Outcome(int(number))


_TRUE = {"1", "true", "t", "y", "yes"}
_FALSE = {"0", "false", "f", "n", "no"}


@transform("boolean")
def boolean(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    if value is None:
        return Outcome(args.get("default"))
    if isinstance(value, bool):
        return Outcome(value)
    text_value = str(value).strip().lower()
    if text_value in _TRUE:
        return Outcome(True)
    if text_value in _FALSE:
        return Outcome(False)
    return Outcome(None, problem="boolean_unparseable")


_CDT = re.compile(r"^D\d{4}$")


@transform("cdt_code")
def cdt_code(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """``D1110``: upper-cased, spaces dropped, the 'D' restored where an integrator stripped it."""
    if _blank(value):
        return Outcome(None)
    code = re.sub(r"[\s.\-]", "", str(value)).upper()
    if re.fullmatch(r"\d{4}", code):
        code = "D" + code
    if not _CDT.match(code):
        return Outcome(None, problem="cdt_code_invalid")
    return Outcome(code)


_PERMANENT = {str(n) for n in range(1, 33)}
_PRIMARY = {chr(c) for c in range(ord("A"), ord("T") + 1)}
_AREAS = {"UR", "UL", "LR", "LL", "U", "L", "UA", "LA"}


def _tooth_ok(tooth: str) -> bool:
    return tooth in _PERMANENT or tooth in _PRIMARY or tooth in _AREAS


@transform("tooth")
def tooth(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """Universal numbering: 1-32, primary A-T, or an area (UR, UL, LR, LL, U, L); ranges ``3-5``."""
    if _blank(value):
        return Outcome(None)
    raw = str(value).strip().upper().replace(" ", "")
    parts = [p.lstrip("0") or "0" if p.isdigit() else p for p in raw.split("-")]
    if len(parts) > 2 or not all(_tooth_ok(p) for p in parts):
        return Outcome(None, problem="tooth_invalid")
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return Outcome("-".join(parts))


_SURFACE_ORDER = "MODIBFL5"


@transform("surfaces")
def surfaces(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """Surface letters (M, O, D, I, B, F, L, 5) in a canonical order, duplicates removed."""
    if _blank(value):
        return Outcome(None)
    letters = re.sub(r"[\s,;/]", "", str(value)).upper()
    if any(ch not in _SURFACE_ORDER for ch in letters):
        return Outcome(None, problem="surface_invalid")
    return Outcome("".join(ch for ch in _SURFACE_ORDER if ch in letters))


def _map_key(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value).strip()


@transform("value_map")
def value_map(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    """Look the value up in ``value_maps[map]`` (case-insensitive); default with a flag if so configured."""
    vmap = ctx.value_maps[args["map"]]
    if _blank(value):
        return Outcome(vmap.default if args.get("default_for_empty", False) else None)
    key = _map_key(value)
    if key in vmap.values:
        return Outcome(vmap.values[key])
    lowered = {k.lower(): v for k, v in vmap.values.items()}
    if key.lower() in lowered:
        return Outcome(lowered[key.lower()], flag="mapped_ignoring_case")
    if vmap.default is None:
        return Outcome(None, problem="unmapped_value")
    return Outcome(vmap.default, flag="unmapped_value_defaulted" if vmap.flag_default else None)


@transform("constant")
def constant(value: Any, args: Mapping[str, Any], ctx: Context) -> Outcome:
    return Outcome(args.get("value", value))
