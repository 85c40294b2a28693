"""Where the pipeline keeps its state: the staging DuckDB, the ledger, the reports."""


from pathlib import Path

import dagster as dg

from dentrix_zoho.settings import DEFAULT_HOME, DEFAULT_OFFICE
from dentrix_zoho.staging.store import StagingStore

DUCKDB_POOL = "duckdb_writer"


class WorkspaceResource(dg.ConfigurableResource):
    """The working folder (``DENTRIX_ZOHO_HOME``) and the office being migrated."""

    home: str = DEFAULT_HOME
    office_id: str = DEFAULT_OFFICE
    ledger_url: str | None = None

    @property
    def home_path(self) -> Path:
        path = Path(self.home).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def staging(self) -> StagingStore:
        return StagingStore(self.home_path / "staging.duckdb")

    @property
    def reports_dir(self) -> Path:
        path = self.home_path / "reports"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    @property
    def resolved_ledger_url(self) -> str:
        return self.ledger_url or f"sqlite:///{self.home_path / 'ledger.sqlite'}"
