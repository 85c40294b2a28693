"""The load's steps: which slice of which ``zoho_shaped`` table goes to which Zoho module, in what order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["upsert", "notes", "attachments"]


@dataclass(frozen=True)
class LoadStep:
    """One step of the load: a slice of one ``zoho_shaped`` table going to one Zoho module."""

    name: str
    module: str
    table: str
    kind: Kind
    where: str = "TRUE"  # SQL over the shaped table's columns


LOAD_STEPS: dict[str, LoadStep] = {
    step.name: step
    for step in (
        LoadStep("responsible_parties", "Contacts", "contacts", "upsert", "tier = 0"),
        LoadStep("patients", "Contacts", "contacts", "upsert", "coalesce(tier, 1) <> 0"),
        LoadStep("leads", "Leads", "leads", "upsert"),
        LoadStep("events", "Events", "events", "upsert"),
        LoadStep("tasks", "Tasks", "tasks", "upsert"),
        LoadStep("calls", "Calls", "calls", "upsert"),
        LoadStep("notes", "Notes", "notes", "notes"),
        LoadStep("attachments", "Attachments", "attachments", "attachments", "source_object <> 'aging'"),
        LoadStep("ledger_pdfs", "Attachments", "attachments", "attachments", "source_object = 'aging'"),
    )
}
# Parents before children: responsible parties -> patients -> leads -> activities -> notes -> files.
LOAD_ORDER: tuple[str, ...] = tuple(LOAD_STEPS)


def steps_for(name: str) -> list[LoadStep]:
    """A step by name, or every step of a Zoho module (``"Contacts"``) in load order."""
    if name in LOAD_STEPS:
        return [LOAD_STEPS[name]]
    steps = [s for s in LOAD_STEPS.values() if s.module == name]
    if not steps:
        raise ValueError(f"unknown load step or module {name!r}; steps: {', '.join(LOAD_ORDER)}")
    return steps
