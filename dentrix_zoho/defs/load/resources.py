"""What load assets share: the ledger, the Zoho client wired to it, and the load context."""

import time
from pathlib import Path
from typing import Any

import dagster as dg

from dentrix_zoho.defs.mapping.assets import SAMPLE_TABLE, office_spec
from dentrix_zoho.defs.load.state import load_owners, load_schema
from dentrix_zoho.defs.workspace_resource import OfficeScope
from dentrix_zoho.defs.zoho_resource import ZohoResource
from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load import LoadContext, LoadOptions, SchemaResult, api_call_sink
from dentrix_zoho.mapping import apply_api_names, load_spec
from dentrix_zoho.zoho import ZohoClient


def open_ledger(office: OfficeScope) -> Ledger:
    """The one ledger of every office; what a run reads and writes in it carries its office's id."""
    return Ledger(office.resolved_ledger_url)


class CallTally:
    """Calls and credits of one step's client, for the step's numeric metadata (the UI plots them)."""

    def __init__(self) -> None:
        self.calls = 0
        self.credits = 0
        self._started = time.perf_counter()

    def count(self, event: Any) -> None:
        self.calls += 1
        self.credits += int(getattr(event, "credits", 0) or 0)

    def metadata(self) -> dict[str, float | int]:
        return {"calls": self.calls, "credits": self.credits, "seconds": round(time.perf_counter() - self._started, 3)}


def zoho_client(zoho: ZohoResource, ledger: Ledger, run_id: str, tally: CallTally | None = None) -> ZohoClient:
    """Every API call of this run lands in the ledger's api_calls table (ids and counts only)."""
    sink = api_call_sink(ledger, run_id)
    if tally is None:
        return zoho.get_client(event_sink=sink)

    def both(event: Any) -> None:
        tally.count(event)
        sink(event)

    return zoho.get_client(event_sink=both)


def sample_ids(office: OfficeScope) -> frozenset[str] | None:
    with office.staging.connect(read_only=True) as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'zoho_shaped' "
            "AND table_name = 'sample_patients'"
        ).fetchone()[0]
        if not exists:
            return None
        return frozenset(r[0] for r in con.execute(f"SELECT source_id FROM {SAMPLE_TABLE}").fetchall())


def build_load_context(
    context: dg.AssetExecutionContext,
    office: OfficeScope,
    zoho: ZohoResource,
    ledger: Ledger,
    *,
    scope: str,
) -> LoadContext:
    home = office.home_path
    schema = load_schema(home)
    owners = load_owners(home)
    if schema is None or owners is None:
        raise dg.Failure(
            "schema setup and owner resolution have not run in this working folder: "
            "materialize zoho_load/schema_setup and zoho_load/owner_resolution first"
        )
    spec = apply_api_names(office_spec(load_spec(), office), schema.api_names)
    options = LoadOptions(sample_source_ids=sample_ids(office) if scope == "sample" else None)
    return LoadContext(
        duckdb_path=office.staging.path,
        client=zoho_client(zoho, ledger, context.run.run_id),
        ledger=ledger,
        office_id=office.office_id,
        run_id=context.run.run_id,
        spec=spec,
        owners=owners,
        schema=schema,
        options=options,
    )


def reports_dir(office: OfficeScope) -> Path:
    return office.reports_dir


__all__ = ["CallTally", "SchemaResult", "build_load_context", "open_ledger", "reports_dir", "sample_ids", "zoho_client"]
