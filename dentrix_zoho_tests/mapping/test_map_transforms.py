"""Every transform's edge cases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from dentrix_zoho.mapping.spec import KNOWN_TRANSFORMS, ValueMap
from dentrix_zoho.mapping.transforms import TRANSFORMS, Context, apply

CTX = Context(
    time_zone=ZoneInfo("America/Denver"),
    phone_region="US",
    as_of=dt.date(2026, 11, 1),
    value_maps={
        "gender": ValueMap(values={"1": "Male", "2": "Female"}, default="Unknown"),
        "strict": ValueMap(values={"A": "Alpha"}),
        "source": ValueMap(values={"Yelp": "Web Research"}, default="Other", flag_default=True),
    },
)


def run(name: str, value, **args):
    return apply(name, value, args, CTX)


def test_the_spec_knows_exactly_the_registered_transforms() -> None:
    assert set(TRANSFORMS) == set(KNOWN_TRANSFORMS)


@pytest.mark.parametrize(("value", "args", "expected"), [
    ("  Orem  ", {}, "Orem"),
    ("SALT   LAKE\tCITY", {"case": "title"}, "Salt Lake City"),
    ("ut", {"case": "upper"}, "UT"),
    ("a  b", {"collapse": False}, "a  b"),
    ("   ", {}, None),
    (None, {}, None),
    (42, {}, "42"),
])
def test_text(value, args, expected) -> None:
    assert run("text", value, **args).value == expected


def test_textarea_keeps_lines_and_normalises_breaks() -> None:
    assert run("textarea", "  line1\r\nline2\rline3  ").value == "line1\nline2\nline3"


@pytest.mark.parametrize(("value", "expected"), [
    ("SMITH", "Smith"),
    ("mcdonald", "McDonald"),
    ("O'BRIEN", "O'Brien"),
    ("Smith-Jones", "Smith-Jones"),      # mixed case is the patient's own spelling
    ("van der Berg", "van der Berg"),
    ("García-López", "García-López"),
    ("王", "王"),
    ("  Ann  ", "Ann"),
    ("", None),
])
def test_name(value, expected) -> None:
    assert run("name", value).value == expected


def test_name_problems() -> None:
    assert run("name", "J0hn").problem == "name_contains_digits"
    assert run("name", "--").problem == "name_without_letters"


def test_split_name_reads_dentrix_patname() -> None:
    assert run("split_name", "DOE, JANE", part="last").value == "Doe"
    assert run("split_name", "DOE, JANE", part="first").value == "Jane"
    assert run("split_name", "DOE", part="first").value is None
    with pytest.raises(ValueError):
        run("split_name", "DOE, JANE", part="nick")


@pytest.mark.parametrize(("value", "expected"), [
    ("(801)555-0123", "+18015550123"),
    ("801.555.0123", "+18015550123"),
    ("1-801-555-0123", "+18015550123"),
    ("+1 801 555 0123", "+18015550123"),
    ("(801)555-0123 x42", "+18015550123 x42"),
])
def test_phone_to_e164(value, expected) -> None:
    assert run("phone", value).value == expected


@pytest.mark.parametrize(("value", "problem"), [
    ("555-0123", "phone_invalid"),        # no area code
    ("000-000-0000", "phone_invalid"),
    ("801-555-012", "phone_invalid"),     # a digit short
    ("call mom", "phone_unparseable"),
    ("N/A", "phone_unparseable"),
])
def test_phone_junk(value, problem) -> None:
    outcome = run("phone", value)
    assert outcome.value is None and outcome.problem == problem


def test_phone_region_is_configurable() -> None:
    assert run("phone", "020 7946 0018", region="GB").value == "+442079460018"
    assert run("phone", "555-0123", check="possible").problem is None


@pytest.mark.parametrize(("value", "ok"), [
    ("ann.smith@example.com", True), ("Ann@EXAMPLE.com", True),
    ("ann@gmail", False), ("ann@@example.com", False), ("ann @example.com", False),
    ("ann@example..com", False), ("none", False), ("ann@example,com", False),
])
def test_email_syntax_only(value, ok) -> None:
    outcome = run("email", value)
    assert (outcome.problem is None) == ok
    if ok:
        assert outcome.value.endswith("@example.com")


@pytest.mark.parametrize(("value", "args", "expected", "problem"), [
    (dt.datetime(1980, 1, 2, 0, 0), {}, "1980-01-02", None),
    (dt.date(1980, 1, 2), {}, "1980-01-02", None),
    ("1980/01/02", {}, "1980-01-02", None),
    ("03/15/2021", {}, "2021-03-15", None),
    ("02/30/2020", {}, None, "date_unparseable"),
    ("yesterday", {}, None, "date_unparseable"),
    (dt.datetime(9999, 12, 31), {}, None, None),
    (dt.datetime(1899, 12, 30), {"min_year": 1900}, None, "date_before_min_year"),
    (dt.date(2030, 1, 1), {"not_future": True}, None, "date_in_future"),
    (dt.date(2030, 1, 1), {}, "2030-01-01", None),
])
def test_date(value, args, expected, problem) -> None:
    outcome = run("date", value, **args)
    assert (outcome.value, outcome.problem) == (expected, problem)


def test_datetime_uses_the_practice_zone_across_dst() -> None:
    assert run("datetime", dt.datetime(2026, 1, 15, 9, 30)).value == "2026-01-15T09:30:00-07:00"
    assert run("datetime", dt.datetime(2026, 7, 15, 9, 30)).value == "2026-07-15T09:30:00-06:00"
    aware = dt.datetime(2026, 7, 15, 15, 30, tzinfo=dt.UTC)
    assert run("datetime", aware).value == "2026-07-15T09:30:00-06:00"
    assert run("datetime", "2026-07-15 09:30:00").value == "2026-07-15T09:30:00-06:00"
    assert run("datetime", "soon").problem == "datetime_unparseable"
    assert run("datetime", dt.datetime(9999, 12, 31)).value is None


@pytest.mark.parametrize(("value", "args", "expected", "problem"), [
    (Decimal("105.005"), {}, 105.01, None),
    ("$1,250.00", {}, 1250.0, None),
    (-50, {}, -50.0, None),
    (-50, {"min": 0}, None, "currency_below_min"),
    ("abc", {}, None, "currency_unparseable"),
    (True, {}, None, "currency_unparseable"),
    (Decimal("1e17"), {}, None, "currency_too_large"),
])
def test_currency(value, args, expected, problem) -> None:
    outcome = run("currency", value, **args)
    assert (outcome.value, outcome.problem) == (expected, problem)


def test_integer_and_boolean() -> None:
    assert run("integer", "80").value == 80
    assert run("integer", Decimal("80.0")).value == 80
    assert run("integer", "80.5").problem == "integer_has_fraction"
    assert run("integer", "x").problem == "integer_unparseable"
    assert run("boolean", 1).value is True
    assert run("boolean", "N").value is False
    assert run("boolean", None, default=False).value is False
    assert run("boolean", "maybe").problem == "boolean_unparseable"


@pytest.mark.parametrize(("value", "expected", "problem"), [
    ("D1110", "D1110", None), (" d1110 ", "D1110", None), ("1110", "D1110", None), ("D 2391", "D2391", None),
    ("D-0120", "D0120", None), ("X99", None, "cdt_code_invalid"), ("D11100", None, "cdt_code_invalid"),
])
def test_cdt_code(value, expected, problem) -> None:
    outcome = run("cdt_code", value)
    assert (outcome.value, outcome.problem) == (expected, problem)


@pytest.mark.parametrize(("value", "expected", "problem"), [
    (3, "3", None), ("03", "3", None), ("3-5", "3-5", None), ("5-5", "5", None), ("a", "A", None),
    ("UR", "UR", None), ("33", None, "tooth_invalid"), ("0", None, "tooth_invalid"), ("1-2-3", None, "tooth_invalid"),
    ("U", "U", None), ("Z", None, "tooth_invalid"),
])
def test_tooth(value, expected, problem) -> None:
    outcome = run("tooth", value)
    assert (outcome.value, outcome.problem) == (expected, problem)


@pytest.mark.parametrize(("value", "expected", "problem"), [
    ("om", "MO", None), ("MOD", "MOD", None), ("D,O,M", "MOD", None), ("bb", "B", None), ("5", "5", None),
    ("MX", None, "surface_invalid"),
])
def test_surfaces(value, expected, problem) -> None:
    outcome = run("surfaces", value)
    assert (outcome.value, outcome.problem) == (expected, problem)


def test_value_map() -> None:
    assert run("value_map", 1, map="gender").value == "Male"
    assert run("value_map", 1.0, map="gender").value == "Male"
    assert run("value_map", 9, map="gender").value == "Unknown"          # default, not flagged
    assert run("value_map", 9, map="gender").flag is None
    assert run("value_map", None, map="gender").value is None
    assert run("value_map", None, map="gender", default_for_empty=True).value == "Unknown"
    recased = run("value_map", "yelp", map="source")
    assert (recased.value, recased.flag) == ("Web Research", "mapped_ignoring_case")
    flagged = run("value_map", "Drive by", map="source")
    assert (flagged.value, flagged.flag) == ("Other", "unmapped_value_defaulted")
    assert run("value_map", "B", map="strict").problem == "unmapped_value"


def test_unknown_transform_is_an_error() -> None:
    with pytest.raises(KeyError, match="unknown transform"):
        run("teleport", "x")
