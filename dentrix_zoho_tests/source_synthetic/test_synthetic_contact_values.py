"""Clean phone numbers and e-mails are valid; the junk ones are not (the audit relies on the split)."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from dentrix_zoho.source.synthetic import contact_values as cv
from dentrix_zoho.source.synthetic.vocabulary import CITIES, UNICODE_FIRST_NAMES, UNICODE_LAST_NAMES


def _valid_phone(text: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, "US"))
    except phonenumbers.NumberParseException:
        return False


@pytest.mark.parametrize("style", cv._FORMATS)
def test_every_clean_phone_format_is_a_valid_number(style: str) -> None:
    rng = random.Random(style)
    for city in CITIES:
        number = cv.phone_number(rng, city.area_code)
        text = cv.format_phone(rng, number, style=style)
        assert _valid_phone(text), text
        parsed = phonenumbers.parse(text, "US")
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == "+1" + "".join(number)


def test_every_junk_phone_is_invalid() -> None:
    rng = random.Random(1)
    seen = set()
    for _ in range(400):
        text = cv.junk_phone(rng, "801")
        seen.add(text if not any(ch.isdigit() for ch in text) else len(text))
        assert not _valid_phone(text), text
    assert len(seen) >= 6


def test_reformatted_phone_is_the_same_number_typed_differently() -> None:
    rng = random.Random(2)
    number = cv.phone_number(rng, "385")
    first = cv.format_phone(rng, number)
    second = cv.reformat_phone(rng, number, first)
    assert first != second
    e164 = {phonenumbers.format_number(phonenumbers.parse(t, "US"), phonenumbers.PhoneNumberFormat.E164) for t in (first, second)}
    assert len(e164) == 1


def test_clean_emails_validate_even_for_unicode_names() -> None:
    rng = random.Random(3)
    for first in UNICODE_FIRST_NAMES:
        for last in UNICODE_LAST_NAMES[:5]:
            validate_email(cv.email_address(rng, first, last), check_deliverability=False)


def test_every_junk_email_is_invalid() -> None:
    rng = random.Random(4)
    for _ in range(200):
        text = cv.junk_email(rng, "Renée", "O'Brien")
        with pytest.raises(EmailNotValidError):
            validate_email(text, check_deliverability=False)
