"""Where the pipeline keeps its state: the staging DuckDB, the ledger, the reports; and which office a run is for.

Every asset reaches its office's state through :meth:`WorkspaceResource.scope`, never through the
resource's own fields: without an offices file that is the one office of the environment, with
today's paths; with one, the office named by the run's partition key, whose staging DuckDB and
reports live in ``$DENTRIX_ZOHO_HOME/offices/<office>/``. So a run of one office has no path to
another office's files, and its ledger reads and writes carry its own office id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from dentrix_zoho.settings import DEFAULT_HOME, DEFAULT_OFFICE
from dentrix_zoho.staging.store import StagingStore

if TYPE_CHECKING:
    from dentrix_zoho.offices import DentrixConnectionSpec, Office

DUCKDB_POOL = "duckdb_writer"


def duckdb_pool(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    """The pool of an asset that writes DuckDB.

    One office: one staging file for every run, one writing process at a time (pool limit 1).
    Offices: each office writes its own file and runs one run at a time, so a shared pool
    would only hold the offices back from staging and shaping in parallel.
    """
    return DUCKDB_POOL if partitions_def is None else None

AnyContext = dg.AssetExecutionContext | dg.AssetCheckExecutionContext | dg.OpExecutionContext


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class OfficeScope:
    """One office's slice of the workspace, for one run: all an asset may touch."""

    office_id: str
    home_path: Path  # the office's own folder (the home itself without an offices file)
    resolved_ledger_url: str  # one ledger for every office, keyed by office id
    image_dir: Path | None = None
    provider_map: Path | None = None
    time_zone: str | None = None  # None: the mapping spec's practice time zone
    connection: DentrixConnectionSpec | None = None  # None: DENTRIX_SOURCE / the demo practice
    partitioned: bool = False

    @classmethod
    def of(cls, office: Office, ledger_url: str) -> OfficeScope:
        """The scope of an office of the offices file."""
        return cls(
            office_id=office.office_id,
            home_path=office.state_dir,
            resolved_ledger_url=ledger_url,
            image_dir=office.image_dir,
            provider_map=office.provider_map,
            time_zone=office.time_zone,
            connection=office.connection,
            partitioned=True,
        )

    @property
    def staging(self) -> StagingStore:
        self.home_path.mkdir(parents=True, exist_ok=True)
        return StagingStore(self.home_path / "staging.duckdb")

    @property
    def reports_dir(self) -> Path:
        return _private_dir(self.home_path / "reports")

    @property
    def image_root(self) -> Path:
        return self.image_dir or self.home_path / "images-not-configured"

    def today(self) -> dt.date:
        """The routing reference date: DENTRIX_AS_OF, else today where the office is."""
        from dentrix_zoho.settings import load_settings

        as_of = load_settings().as_of
        if as_of is not None:
            return as_of
        if self.time_zone:
            from zoneinfo import ZoneInfo

            return dt.datetime.now(ZoneInfo(self.time_zone)).date()
        return dt.date.today()


class WorkspaceResource(dg.ConfigurableResource):
    """The working folder (``DENTRIX_ZOHO_HOME``), the ledger, and the office or offices being migrated."""

    home: str = DEFAULT_HOME
    office_id: str = DEFAULT_OFFICE
    ledger_url: str | None = None
    offices_file: str | None = None  # set: every run is for one office of this file, named by its partition key

    @property
    def home_path(self) -> Path:
        path = Path(self.home).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_ledger_url(self) -> str:
        return self.ledger_url or f"sqlite:///{self.home_path / 'ledger.sqlite'}"

    @property
    def partitioned(self) -> bool:
        return self.offices_file is not None

    def _single_only(self, what: str) -> None:
        if self.partitioned:
            raise RuntimeError(f"{what} belongs to one office: use workspace.scope(context) with an offices file")

    @property
    def staging(self) -> StagingStore:
        self._single_only("the staging database")
        return StagingStore(self.home_path / "staging.duckdb")

    @property
    def reports_dir(self) -> Path:
        self._single_only("the reports folder")
        return _private_dir(self.home_path / "reports")

    def office(self, office_id: str) -> Office:
        """An office of the offices file, read now (the file may have changed since the code loaded)."""
        from dentrix_zoho.offices import OfficesError, read_offices_file

        if self.offices_file is None:
            raise RuntimeError("no offices file: there is one office, from the environment")
        try:
            return read_offices_file(Path(self.offices_file), self.home_path).get(office_id)
        except OfficesError as exc:
            raise dg.Failure(str(exc)) from None

    def scope(self, context: AnyContext | None = None, *, in_file: bool = True) -> OfficeScope:
        """The office this run is for, and its state.

        With an offices file the run must be for one partition (one office); ``in_file=False``
        lets an office removed from the file still be reached (its rollback needs only the ledger).
        """
        if not self.partitioned:
            if context is not None and context.has_partition_key:
                raise dg.Failure("this code location has no offices file, so its runs have no office partitions")
            from dentrix_zoho.settings import load_settings

            settings = load_settings()
            return OfficeScope(
                office_id=self.office_id,
                home_path=self.home_path,
                resolved_ledger_url=self.resolved_ledger_url,
                image_dir=settings.resolved_image_dir(),
                provider_map=settings.resolved_provider_map(),
            )
        if context is None or not context.has_partition_key:
            raise dg.Failure(
                "every run of this code location is for one office: launch it for one partition of 'offices' "
                "(a backfill launches one run per office)"
            )
        office_id = context.partition_key
        if not in_file:
            from dentrix_zoho.offices import check_office_id, office_state_dir

            check_office_id(office_id)
            return OfficeScope(office_id=office_id, home_path=office_state_dir(self.home_path, office_id),
                               resolved_ledger_url=self.resolved_ledger_url, partitioned=True)
        return OfficeScope.of(self.office(office_id), self.resolved_ledger_url)
