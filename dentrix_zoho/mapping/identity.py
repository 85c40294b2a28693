"""Who is who: matching new-patient appointments to patients, spotting duplicate patients."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rapidfuzz import fuzz

PHONE_COLUMNS = ("pager", "home_phone", "workphone", "otherphone")


def norm(value: Any) -> str:
    """Lower case, single spaces: how names are compared."""
    return " ".join(str(value).lower().split()) if value else ""


def digits(value: Any) -> str:
    """The last ten digits of a phone as typed (formats differ), or "" if it is not one."""
    found = re.sub(r"\D", "", str(value or ""))
    return found[-10:] if len(found) >= 7 else ""


def same_person(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two patient rows with the same birth date (the caller groups by it): the same person
    when the gender agrees and the names are close, or the surname is close and the mobile
    or e-mail is the same (a re-entered patient with a respelled or nicknamed first name)."""
    if a.get("gender") != b.get("gender"):
        return False
    last = fuzz.ratio(norm(a.get("lastname")), norm(b.get("lastname")))
    first = fuzz.ratio(norm(a.get("firstname")), norm(b.get("firstname")))
    if last >= 80 and first >= 75:
        return True
    same_mobile = bool(digits(a.get("pager"))) and digits(a.get("pager")) == digits(b.get("pager"))
    same_email = bool(a.get("emailaddr")) and norm(a.get("emailaddr")) == norm(b.get("emailaddr"))
    return last >= 80 and (same_mobile or same_email)
