"""Counts of one shaping run: per source object (the accounting identity) and per Zoho module.

Counts and rule names only, never a value: safe for logs and Dagster metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ObjectAccount:
    staged: int = 0
    shaped: int = 0
    quarantined: int = 0
    skipped: int = 0
    out_of_sample: int = 0

    @property
    def balanced(self) -> bool:
        return self.staged == self.shaped + self.quarantined + self.skipped + self.out_of_sample


@dataclass
class ModuleCounts:
    valid: int = 0  # records in the module table that will be sent (a split note counts per part)
    quarantined: int = 0
    skipped: int = 0


@dataclass
class ShapeSummary:
    """Counts only: safe for logs and Dagster metadata."""

    office_id: str
    spec_hash: str
    as_of: str
    objects: dict[str, ObjectAccount] = field(default_factory=dict)
    modules: dict[str, ModuleCounts] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    skip_rules: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    missing_objects: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return all(acc.balanced for acc in self.objects.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "office_id": self.office_id,
            "spec_hash": self.spec_hash,
            "as_of": self.as_of,
            "balanced": self.balanced,
            "objects": {k: vars(v) | {"balanced": v.balanced} for k, v in sorted(self.objects.items())},
            "modules": {k: vars(v) for k, v in sorted(self.modules.items())},
            "quarantine_reasons": dict(sorted(self.quarantine_reasons.items())),
            "skip_rules": dict(sorted(self.skip_rules.items())),
            "flags": dict(sorted(self.flags.items())),
            "missing_objects": sorted(self.missing_objects),
        }

    def markdown(self) -> str:
        lines = [
            f"### Shaping of {self.office_id} (spec {self.spec_hash[:12]}, as of {self.as_of})",
            "",
            "| source object | staged | shaped | quarantined | skipped | out of sample | balanced |",
            "|---|---:|---:|---:|---:|---:|:-:|",
        ]
        for name, acc in sorted(self.objects.items()):
            lines.append(
                f"| {name} | {acc.staged} | {acc.shaped} | {acc.quarantined} | {acc.skipped} | "
                f"{acc.out_of_sample} | {'yes' if acc.balanced else 'NO'} |"
            )
        lines += ["", "| module | valid records | quarantined | skipped by rule |", "|---|---:|---:|---:|"]
        for name, mc in sorted(self.modules.items()):
            lines.append(f"| {name} | {mc.valid} | {mc.quarantined} | {mc.skipped} |")
        return "\n".join(lines)
