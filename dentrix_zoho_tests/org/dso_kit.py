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
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.mapping import approve_spec
from dentrix_zoho.org import POLICY_ENV
from dentrix_zoho.source.synthetic import PracticeFiles, generate_practice
from dentrix_zoho.zoho_emulator.testing import running_emulator

OWNER = "office.manager@dental.example.com"
OFFICES = {"north": (1, 7), "south": (2, 11)}  # office number and seed of each synthetic practice
PLANTED = 8  # south patients made the same people as north patients
IDENTITY = ("lastname", "firstname", "birthdate", "gender", "pager", "emailaddr")
ENV_CLEARED = ("DENTRIX_SOURCE", "DENTRIX_OFFICE_ID", "DENTRIX_IMAGE_DIR", "DENTRIX_PROVIDER_MAP",
               "DENTRIX_OFFICES_FILE", "DENTRIX_ZOHO_LEDGER_URL", "ZOHO_DC")


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
    home = base / "home"
    home.mkdir()
    entries, emails, dbs = [], {OWNER}, {}
    for office_id, (number, seed) in OFFICES.items():
        db = dbs[office_id] = base / f"{office_id}.db"
        generate_practice(db, scale="tiny", seed=seed, as_of=date(2026, 11, 1), office=number)
        files = PracticeFiles(db)
        providers = yaml.safe_load(files.provider_map.read_text(encoding="utf-8"))
        providers["default_owner_email"] = OWNER
        (base / f"{office_id}_providers.yaml").write_text(yaml.safe_dump(providers), encoding="utf-8")
        emails |= {e for e in providers["providers"].values() if e}
        entries.append(f"  {office_id}:\n    dentrix: {{url: 'sqlite:///{db}'}}\n"
                       f"    image_dir: {files.images_dir}\n    provider_map: {base / (office_id + '_providers.yaml')}\n"
                       "    time_zone: America/Chicago\n")
    plant_shared_patients(dbs["north"], dbs["south"], PLANTED)
    (home / "offices.yaml").write_text("offices:\n" + "".join(entries), encoding="utf-8")
    users = base / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [
        {"first_name": "User", "last_name": str(i), "email": e} for i, e in enumerate(sorted(emails))]}),
        encoding="utf-8")
    with running_emulator(base / "zoho", users=1, extra_args=["--users-file", str(users)]) as emu, \
            pytest.MonkeyPatch.context() as mp:
        for name in ENV_CLEARED:
            mp.delenv(name, raising=False)
        for key, value in {
            "DENTRIX_ZOHO_HOME": str(home), "DENTRIX_AS_OF": "2026-11-01", "ZOHO_EDITION": "enterprise",
            POLICY_ENV: "merge",
            "ZOHO_API_BASE": emu.base_url, "ZOHO_ACCOUNTS_URL": emu.base_url, "ZOHO_UPLOAD_URL": emu.base_url,
            "ZOHO_CLIENT_ID": emu.client_id, "ZOHO_CLIENT_SECRET": emu.client_secret,
            "ZOHO_REFRESH_TOKEN": emu.refresh_token,
        }.items():
            mp.setenv(key, value)
        from dentrix_zoho.definitions import build_definitions

        made = Dso(build_definitions(), home, emu, dbs)
        made.instance.add_dynamic_partitions("offices", list(OFFICES))
        for office in OFFICES:
            assert made.run("stage_and_audit", office).success, office
        with made.ledger as ledger:
            approve_spec(ledger, "pytest")  # the map (one for every office)
        yield made
