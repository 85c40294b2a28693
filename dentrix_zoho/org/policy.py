"""The cross-office policy: what the load does with a patient seen at several offices.

``separate`` (the default): every office record is a Contact of its own, with its own
``Source_System_ID``; nothing changes. ``merge``: one Contact per person the org-level audit
grouped; the first office to load it creates it, the others join it (docs/cross_office.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

POLICY_ENV = "DENTRIX_CROSS_OFFICE_POLICY"
POLICIES: tuple[str, ...] = ("separate", "merge")
PolicyName = Literal["separate", "merge"]


class CrossOfficePolicyError(ValueError):
    """The policy setting is not one we know, or the ledger's state does not allow it."""


class OrgAuditMissing(CrossOfficePolicyError):
    """A load under ``merge`` of an office the latest org-level audit did not cover: nothing was sent."""


class CrossOfficePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: PolicyName = "separate"

    @property
    def merge(self) -> bool:
        return self.policy == "merge"

    @classmethod
    def of(cls, value: str | None, *, setting: str = POLICY_ENV) -> CrossOfficePolicy:
        """From a setting's text (blank: the default); an error names the setting and the choices."""
        text = (value or "").strip().lower() or "separate"
        try:
            return cls(policy=text)  # type: ignore[arg-type]
        except ValidationError:
            raise CrossOfficePolicyError(
                f"{setting}: must be one of {', '.join(POLICIES)}, got {value!r}"
            ) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CrossOfficePolicy:
        env = os.environ if environ is None else environ
        return cls.of(env.get(POLICY_ENV))
