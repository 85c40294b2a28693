"""Turning a shaped row's ``links`` (source ids) into Zoho lookups (ids), from the ledger's crosswalk."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load.owners import OwnerResolution
from dentrix_zoho.load.shaped import ShapedRow
from dentrix_zoho.mapping.ids import split_source_system_id

# Links a record cannot go without: an activity or note with no parent is a loss.
REQUIRED_LINKS = frozenset({"Who_Id", "What_Id", "Parent_Id"})
PARENT_MODULES = ("Contacts", "Leads")


def _source_object(source_id: str) -> str:
    try:
        return split_source_system_id(source_id)[1]
    except ValueError:
        return ""


class ParentIndex:
    """Source id -> live Zoho id, looked up in the crosswalk in bulk and cached.

    A source id names its object (``office:patient:7``), but the crosswalk files a row under the
    Dentrix object it came from, which can differ (a new-patient Lead made from an appointment is
    ``office:appt_new_patient:9`` under ``appt``); ids not found by their own object are looked up
    in one scan of this office's live Contacts and Leads.
    """

    def __init__(self, ledger: Ledger, office_id: str) -> None:
        self.ledger = ledger
        self.office_id = office_id
        self._ids: dict[str, str | None] = {}
        self._scanned: dict[str, str] | None = None

    def _scan(self) -> dict[str, str]:
        if self._scanned is None:
            self._scanned = {
                row.source_id: row.zoho_id
                for module in PARENT_MODULES
                for row in self.ledger.crosswalk_rows(module=module, office_id=self.office_id, deleted=False)
            }
        return self._scanned

    def prime(self, source_ids: Iterable[str]) -> None:
        wanted = [s for s in set(source_ids) if s not in self._ids]
        by_object: dict[str, list[str]] = {}
        for sid in wanted:
            by_object.setdefault(_source_object(sid), []).append(sid)
        missing: list[str] = []
        for obj, sids in by_object.items():
            rows = self.ledger.lookup_many(self.office_id, obj, sids)
            for sid in sids:
                row = rows.get(sid)
                self._ids[sid] = None if row is None or row.deleted else row.zoho_id
                if row is None:
                    missing.append(sid)
        if missing:
            scanned = self._scan()
            for sid in missing:
                self._ids[sid] = scanned.get(sid)

    def set(self, source_id: str, zoho_id: str) -> None:
        self._ids[source_id] = zoho_id

    def get(self, source_id: str) -> str | None:
        if source_id not in self._ids:
            self.prime([source_id])
        return self._ids.get(source_id)


@dataclass
class Resolved:
    fields: dict[str, Any] = field(default_factory=dict)  # API name -> value to send
    missing_required: list[str] = field(default_factory=list)
    dropped_optional: list[str] = field(default_factory=list)
    # dropped links whose target is not known to be held back: worth another try next run
    retry_links: bool = False
    owner_unresolved: bool = False
    parent: tuple[str, str] | None = None  # (module, zoho id) of a note's or attachment's parent

    @property
    def complete(self) -> bool:
        return not self.missing_required and not self.dropped_optional


def resolve_links(row: ShapedRow, parents: ParentIndex, owners: OwnerResolution, *, notes_shape: bool = False,
                  held_back: Callable[[str], bool] = lambda sid: False) -> Resolved:
    out = Resolved()
    for name, link in row.links.items():
        if not isinstance(link, dict):
            continue
        if name == "Owner":
            provider = link.get("provider_id")
            user = owners.owner_for(provider)
            if user:
                out.fields["Owner"] = {"id": user}
            elif provider:
                out.owner_unresolved = True
            continue
        sid = link.get("source_id")
        module = str(link.get("module") or "")
        zoho_id = parents.get(str(sid)) if sid else None
        if zoho_id is None:
            if name in REQUIRED_LINKS:
                out.missing_required.append(name)
            else:
                out.dropped_optional.append(name)
                out.retry_links = out.retry_links or not (sid and held_back(str(sid)))
            continue
        if name == "Parent_Id":
            out.parent = (module, zoho_id)
            if notes_shape:
                out.fields["Parent_Id"] = {"module": {"api_name": module}, "id": zoho_id}
        elif name == "What_Id":
            out.fields["What_Id"] = {"id": zoho_id}
            out.fields["$se_module"] = module
        else:
            out.fields[name] = {"id": zoho_id}
    return out
