"""The Dentrix source as a Dagster resource."""


import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from dentrix_zoho.source.connection import DentrixConnection, SourceError, open_source


class DentrixSourceResource(dg.ConfigurableResource):
    """A Dentrix database: SQLAlchemy URL or ODBC string, from ``DENTRIX_SOURCE``.

    When ``DENTRIX_SOURCE`` is unset the embedded default is the synthetic demo
    practice in the working folder (``make demo`` creates it).
    """

    source: str | None = None
    schema_name: str = "admin"
    demo_practice_path: str | None = None

    def resolved_source(self) -> str:
        if self.source:
            return self.source
        if self.demo_practice_path and Path(self.demo_practice_path).exists():
            return f"sqlite:///{Path(self.demo_practice_path).resolve()}"
        raise SourceError(
            "DENTRIX_SOURCE is not set and there is no demo practice at "
            f"{self.demo_practice_path}: set DENTRIX_SOURCE, or run "
            "`dentrix-zoho demo-practice --out <that path>` (make demo does it)"
        )

    @contextlib.contextmanager
    def open(self) -> Iterator[DentrixConnection]:
        with open_source(self.resolved_source(), self.schema_name) as conn:
            yield conn
