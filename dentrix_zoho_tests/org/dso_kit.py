"""Two synthetic practices that share planted patients, as one DSO through Dagster.

``dagster_org`` writes an offices file for them, starts one Zoho emulator, points the environment at it
(policy ``merge``), builds ``build_definitions()``, adds both offices' partitions to an ephemeral Dagster
instance (never entered: no process-wide state outlives it), stages both offices (``stage_and_audit``)
and approves the map. The org-level audit and the loads are the caller's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.mapping import approve_spec
from dentrix_zoho.org import POLICY_ENV
from dentrix_zoho_tests.offices.office_org import OFFICES, office_org

PLANTED = 8  # south patients made the same people as north patients
IDENTITY = ("lastname", "firstname", "birthdate", "gender", "pager", "emailaddr")


def plant_shared_patients(north: Path, south: Path, count: int) -> list[tuple[int, int]]:
    """Give ``count`` recently seen adult south patients the identity of as many north patients; (north, south) patids."""
    pick = ("SELECT patid, " + ", ".join(IDENTITY) + " FROM patient WHERE patid = guarid AND status = 1 "
            "AND birthdate IS NOT NULL AND lastvisitdate >= '2025-09-01' ORDER BY patid LIMIT ?")
    with sqlite3.connect(north) as db:
        people = db.execute(pick, [count]).fetchall()
    with sqlite3.connect(south) as db:
        targets = [r[0] for r in db.execute(pick, [count]).fetchall()]
        assert len(people) == len(targets) == count
        for (_, *identity), patid in zip(people, targets, strict=True):
            db.execute("UPDATE patient SET " + ", ".join(f"{c} = ?" for c in IDENTITY) + " WHERE patid = ?",
                       [*identity, patid])
    return [(p[0], t) for p, t in zip(people, targets, strict=True)]


@dataclass
class Dso:
    defs: dg.Definitions
    home: Path
    emu: Any
    dbs: dict[str, Path]
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)
    runs: dict[str, dg.ExecuteInProcessResult] = field(default_factory=dict)

    @property
    def ledger(self) -> Ledger:
        return Ledger(f"sqlite:///{self.home / 'ledger.sqlite'}")

    def run(self, job: str, office: str | None = None, **kwargs: Any) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance, partition_key=office, raise_on_error=False, **kwargs)

    def staging(self, office: str) -> Path:
        return self.home.resolve() / "offices" / office / "staging.duckdb"

    def records(self) -> dict[str, dict[str, Any]]:
        """Every record in the org by module/id."""
        return {f"{module}/{r['id']}": r for module, records in self.emu.snapshot()["modules"].items() for r in records}


@contextmanager
def dagster_org(base: Path) -> Iterator[Dso]:
    with office_org(base, env={POLICY_ENV: "merge"},
                    before_file=lambda dbs: plant_shared_patients(dbs["north"], dbs["south"], PLANTED)) as org:
        made = Dso(org.defs, org.home, org.emu, org.dbs)
        made.instance.add_dynamic_partitions("offices", list(OFFICES))
        for office in OFFICES:
            assert made.run("stage_and_audit", office).success, office
        with made.ledger as ledger:
            approve_spec(ledger, "pytest")  # the map (one for every office)
        yield made
