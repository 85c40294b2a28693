"""Phone numbers and e-mail addresses as front desks type them: clean ones in many formats, and junk.

Every clean value parses as a valid US number (``phonenumbers``) or a valid address
(``email-validator``); every junk value does not. Tests hold both lists to that.
"""

from __future__ import annotations

import random
import unicodedata

# Exchange 555 keeps the numbers fictional while still valid for phonenumbers.
_CLEAN_FORMATS: tuple[tuple[str, int], ...] = (
    ("({a}){p}-{s}", 55),
    ("{a}-{p}-{s}", 15),
    ("{a}{p}{s}", 10),
    ("{a}.{p}.{s}", 5),
    ("1-{a}-{p}-{s}", 5),
    ("+1 {a} {p} {s}", 3),
    ("({a}) {p}-{s}", 5),
    ("({a}){p}-{s} x{x}", 2),
)
_FORMATS = tuple(f for f, _ in _CLEAN_FORMATS)
_FORMAT_WEIGHTS = tuple(w for _, w in _CLEAN_FORMATS)

JUNK_PHONES: tuple[str, ...] = (
    "555-{s}",  # no area code
    "000-000-0000",
    "none",
    "N/A",
    "call mom",
    "{a}-{p}-{s3}",  # a digit short
    "{a}{p}{s}99",  # two digits too many
    "111-111-1111",
    "see notes",
    "(   )   -",
)

_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")

JUNK_EMAILS: tuple[str, ...] = (
    "{u}@gmail",
    "{u}@@example.com",
    "{u} @example.com",
    "{u}@example..com",
    "{u}.example.com",
    "none",
    "refused",
    "{u}@.com",
    "no email",
    "{u}@example,com",
)


def phone_number(rng: random.Random, area_code: str) -> tuple[str, str, str]:
    """(area code, prefix, line) of a fictional but valid number."""
    return area_code, "555", f"{rng.randint(0, 9999):04d}"


def format_phone(rng: random.Random, number: tuple[str, str, str], *, style: str | None = None) -> str:
    area, prefix, line = number
    fmt = style or rng.choices(_FORMATS, weights=_FORMAT_WEIGHTS, k=1)[0]
    return fmt.format(a=area, p=prefix, s=line, x=rng.randint(2, 450))


def reformat_phone(rng: random.Random, number: tuple[str, str, str], current: str) -> str:
    """The same number typed another way (for duplicate patients)."""
    for _ in range(10):
        candidate = format_phone(rng, number)
        if candidate != current:
            return candidate
    return f"{number[0]}{number[1]}{number[2]}"


def junk_phone(rng: random.Random, area_code: str) -> str:
    template = rng.choice(JUNK_PHONES)
    line = f"{rng.randint(0, 9999):04d}"
    return template.format(a=area_code, p="555", s=line, s3=line[:3])


def ascii_fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def email_address(rng: random.Random, first: str, last: str) -> str:
    user_first = ascii_fold(first) or "pt"
    user_last = ascii_fold(last) or str(rng.randint(10, 99))
    style = rng.randint(0, 3)
    if style == 0:
        user = f"{user_first}.{user_last}"
    elif style == 1:
        user = f"{user_first[0]}{user_last}{rng.randint(1, 99)}"
    elif style == 2:
        user = f"{user_first}{user_last}"
    else:
        user = f"{user_last}.{user_first}{rng.randint(60, 99)}"
    return f"{user}@{rng.choice(_EMAIL_DOMAINS)}"


def junk_email(rng: random.Random, first: str, last: str) -> str:
    user = f"{ascii_fold(first) or 'pt'}{ascii_fold(last) or 'x'}"
    return rng.choice(JUNK_EMAILS).format(u=user)
