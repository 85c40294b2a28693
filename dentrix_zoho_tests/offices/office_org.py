"""Two synthetic offices as one DSO through Dagster: practices, offices file, one emulator, environment.

``office_org`` generates the practices (tiny, a seed and office number each), writes their provider
maps and the offices file, starts one Zoho emulator with every provider's user, points this process's
environment at them (undone on exit) and builds ``build_definitions()``. ``before_file`` may change the
practices first (the cross-office tests plant shared patients). Runs are the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from dentrix_zoho.source.synthetic import PracticeFiles, generate_practice
from dentrix_zoho.zoho_emulator.testing import running_emulator

OWNER = "office.manager@dental.example.com"
OFFICES = {"north": (1, 7), "south": (2, 11)}  # office number and seed of each synthetic practice
ENV_CLEARED = ("DENTRIX_SOURCE", "DENTRIX_OFFICE_ID", "DENTRIX_IMAGE_DIR", "DENTRIX_PROVIDER_MAP",
               "DENTRIX_OFFICES_FILE", "DENTRIX_ZOHO_LEDGER_URL", "ZOHO_DC")


@dataclass
class OfficeOrg:
    defs: dg.Definitions
    home: Path
    emu: Any
    dbs: dict[str, Path]


@contextmanager
def office_org(base: Path, *, env: dict[str, str] | None = None,
               before_file: Callable[[dict[str, Path]], Any] | None = None) -> Iterator[OfficeOrg]:
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
    if before_file is not None:
        before_file(dbs)
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
            "ZOHO_API_BASE": emu.base_url, "ZOHO_ACCOUNTS_URL": emu.base_url, "ZOHO_UPLOAD_URL": emu.base_url,
            "ZOHO_CLIENT_ID": emu.client_id, "ZOHO_CLIENT_SECRET": emu.client_secret,
            "ZOHO_REFRESH_TOKEN": emu.refresh_token, **(env or {}),
        }.items():
            mp.setenv(key, value)
        from dentrix_zoho.definitions import build_definitions

        yield OfficeOrg(build_definitions(), home, emu, dbs)
