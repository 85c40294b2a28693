"""The Dentrix source as a Dagster resource."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from dentrix_zoho.source.connection import DentrixConnection, SourceError, open_source

if TYPE_CHECKING:
    from dentrix_zoho.defs.workspace_resource import OfficeScope


class DentrixSourceResource(dg.ConfigurableResource):
    """A Dentrix database: SQLAlchemy URL or ODBC string, from ``DENTRIX_SOURCE``.

    When ``DENTRIX_SOURCE`` is unset the embedded default is the synthetic demo
    practice in the working folder (``make demo`` creates it). With an offices file
    each office brings its own connection (:meth:`open` with its scope) and these
    fields are not used.
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
    def open(self, office: OfficeScope | None = None) -> Iterator[DentrixConnection]:
        """The source of ``office`` when it has its own connection (offices file), else ``DENTRIX_SOURCE``.

        An office whose server cannot be reached, or refuses its credentials, fails its own run
        with a ``dg.Failure`` naming the office and the connection as written in the file; the
        password is never in it.
        """
        spec = office.connection if office is not None else None
        if spec is None:
            with open_source(self.resolved_source(), self.schema_name) as conn:
                yield conn
            return
        from dentrix_zoho.offices import OfficeConnectionError
        from dentrix_zoho.source.connection import parse_source

        assert office is not None
        shown = parse_source(spec.template).redacted()
        with contextlib.ExitStack() as stack:
            try:
                conn = stack.enter_context(open_source(spec.connection_string(), spec.schema_name))
            except (SourceError, OfficeConnectionError) as exc:
                raise dg.Failure(
                    description=f"office {office.office_id}: cannot open its Dentrix database ({shown}): "
                    f"{spec.scrub(str(exc))}",
                    metadata={"office": office.office_id, "error": type(exc).__name__},
                ) from None
            yield conn
