"""Fixtures for the load layer: the emulator with named users, a staged and shaped tiny practice,
and hand-built ``zoho_shaped`` tables for the focused tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load import children, load_module, upserts
from dentrix_zoho.load import LoadContext, LoadOptions, OwnerResolution, SchemaResult, resolve_owners, setup_schema
from dentrix_zoho.mapping import apply_api_names, load_spec, shape_all
from dentrix_zoho.mapping.outputs import ensure_tables, replace_office_rows, row_hash
from dentrix_zoho.source.provider_map import ProviderMap
from dentrix_zoho.zoho import ZohoClient, ZohoConfig

OFFICE = "office-1"
AS_OF = dt.date(2026, 11, 1)
DOMAIN = "wasatchdental.com"
USERS = ("Admin", "DDS1", "DDS2", "HYG1", "Office")


def write_users_file(path: Path, names: tuple[str, ...] = USERS) -> Path:
    lines = ["users:"] + [f"  - {{first_name: {n}, last_name: Staff, email: {n.lower()}@{DOMAIN}}}" for n in names]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def provider_map(default: bool = True) -> ProviderMap:
    # HYG2 has a user e-mail that Zoho does not know; DDS3 has no e-mail at all.
    providers = {"DDS1": f"dds1@{DOMAIN}", "DDS2": f"DDS2@{DOMAIN.upper()}", "HYG1": f"hyg1@{DOMAIN}",
                 "HYG2": f"hyg2@{DOMAIN}", "DDS3": None}
    return ProviderMap.model_validate(
        {"providers": providers, "default_owner_email": f"office@{DOMAIN}" if default else None})


def client_for(handle: Any, **overrides: Any) -> ZohoClient:
    settings: dict[str, Any] = {
        "api_base": handle.base_url, "accounts_url": handle.base_url, "client_id": handle.client_id,
        "client_secret": handle.client_secret, "refresh_token": handle.refresh_token, "edition": "enterprise",
        "users": 5, "backoff_base": 0.002, "backoff_cap": 0.02, "max_retries": 12,
    }
    settings.update(overrides)
    return ZohoClient(ZohoConfig(**settings))


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    users = write_users_file(tmp_path / "users.yaml")
    with contextlib.ExitStack() as stack:
        count = 0

        def start(**kwargs: Any) -> Any:
            nonlocal count
            count += 1
            extra = ["--users-file", str(users), *kwargs.pop("extra_args", ())]
            return stack.enter_context(running_emulator(tmp_path / f"emu{count}", extra_args=extra, **kwargs))

        yield start


@pytest.fixture
def emulator(emulator_factory: Callable[..., Any]) -> Any:
    return emulator_factory()


# -- the tiny practice, staged and shaped once per session --------------------------------------


class ShapedPractice:
    def __init__(self, root: Path, duckdb_path: Path, schema: SchemaResult, spec: Any, images: Path) -> None:
        self.root = root
        self.duckdb_path = duckdb_path
        self.schema = schema
        self.spec = spec
        self.images = images


@pytest.fixture(scope="session")
def shaped_practice(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> ShapedPractice:
    from dentrix_zoho.staging.stage_all import stage_objects
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    root = tmp_path_factory.mktemp("shaped")
    duck = root / "staging.duckdb"
    stage_objects(f"sqlite:///{tiny_practice}", duck, office_id=OFFICE)
    spec = load_spec()
    users = write_users_file(root / "users.yaml")
    with running_emulator(root / "emu", extra_args=["--users-file", str(users)]) as handle:
        client = client_for(handle)
        schema = setup_schema(client, spec)
        client.close()
    spec = apply_api_names(spec, schema.api_names)
    images = tiny_practice.parent / f"{tiny_practice.stem}_images"
    con = duckdb.connect(str(duck))
    try:
        shape_all(con, spec, office_id=OFFICE, as_of=AS_OF, image_root=images, ledger_pdf_dir=root / "pdfs")
    finally:
        con.close()
    return ShapedPractice(root, duck, schema, spec, images)


# -- a load context against an emulator ---------------------------------------------------------


class World:
    """One emulator, one ledger, one client: what a test loads into."""

    def __init__(self, handle: Any, duckdb_path: Path, ledger_path: Path, spec: Any, **client_overrides: Any) -> None:
        self.handle = handle
        self.duckdb_path = duckdb_path
        self.ledger_url = f"sqlite:///{ledger_path}"
        self.ledger = Ledger(self.ledger_url)
        self.client = client_for(handle, **client_overrides)
        self.spec = spec
        self.schema = setup_schema(self.client, spec)
        self.owners: OwnerResolution = resolve_owners(self.client, provider_map(), ["DDS1", "DDS2", "DDS3", "HYG1", "HYG2"])

    def context(self, run_id: str | None = None, kind: str = "full", **options: Any) -> LoadContext:
        run = self.ledger.start_run(kind, OFFICE, run_id=run_id)
        return LoadContext(self.duckdb_path, self.client, self.ledger, OFFICE, run, self.spec, self.owners,
                           self.schema, LoadOptions(**options))


@pytest.fixture
def world_factory(emulator_factory: Callable[..., Any], tmp_path: Path) -> Callable[..., World]:
    count = 0

    def make(duckdb_path: Path, spec: Any, **kwargs: Any) -> World:
        nonlocal count
        count += 1
        client_overrides = kwargs.pop("client", {})
        handle = emulator_factory(**kwargs)
        return World(handle, duckdb_path, tmp_path / f"ledger{count}.sqlite", spec, **client_overrides)

    return make


# -- hand-built shaped tables -------------------------------------------------------------------


def sid(obj: str, key: object) -> str:
    return f"{OFFICE}:{obj}:{key}"


def module_row(obj: str, key: object, record: dict[str, Any], links: dict[str, Any], **extra: Any) -> dict[str, Any]:
    source_id = sid(obj, key)
    record = {**record, "Source_System_ID": source_id}
    return {"source_id": source_id, "source_object": obj, "office_id": OFFICE, "row_hash": row_hash(record, links),
            "record": record, "links": links, **extra}


def contact_link(patid: int) -> dict[str, Any]:
    return {"module": "Contacts", "source_id": sid("patient", patid)}


def build_small_world(path: Path, files: Path, *, tweak: Callable[[dict[str, list[dict[str, Any]]]], None] | None = None) -> Path:
    """Two families, their appointments, notes and files (one file missing, one too large)."""
    files.mkdir(parents=True, exist_ok=True)
    (files / "xray1.jpg").write_bytes(b"\xff\xd8" + b"x" * 2000)
    (files / "big.tif").write_bytes(b"0")  # the shaper marked it over_limit: never read
    tables: dict[str, list[dict[str, Any]]] = {
        "contacts": [
            module_row("patient", 1, {"Last_Name": "Guarantor", "First_Name": "Gail", "Balance_Due": 120.5,
                                       "Insurance_Plans": [{"Plan_Type": "Primary", "Carrier": "Delta Dental"}]},
                       {"Owner": {"provider_id": "DDS1"}}, tier=0),
            module_row("patient", 2, {"Last_Name": "Minor", "First_Name": "Max", "Balance_Due": 0},
                       {"Owner": {"provider_id": "DDS2"}, "Related_Party": contact_link(1)}, tier=1),
            module_row("patient", 3, {"Last_Name": "Solo", "First_Name": "Sam"},
                       {"Owner": {"provider_id": "DDS3"}}, tier=1),
        ],
        "events": [
            module_row("appt", 10, {"Event_Title": "Prophy", "Start_DateTime": "2026-11-20T09:30:00-06:00",
                                    "End_DateTime": "2026-11-20T10:30:00-06:00"},
                       {"Who_Id": contact_link(2), "Owner": {"provider_id": "HYG1"}}),
            module_row("appt", 11, {"Event_Title": "Exam", "Start_DateTime": "2026-11-21T09:30:00-06:00",
                                    "End_DateTime": "2026-11-21T10:00:00-06:00"},
                       {"Who_Id": contact_link(3), "Owner": {"provider_id": "DDS1"}}),
        ],
        "notes": [
            module_row("clinicalnote", 20, {"Note_Title": "Clinical note 1", "Note_Content": "Perio charting done."},
                       {"Parent_Id": contact_link(2), "Owner": {"provider_id": "DDS1"}}),
            module_row("clinicalnote", 21, {"Note_Title": "Clinical note 2", "Note_Content": "Crown seated."},
                       {"Parent_Id": contact_link(3)}),
        ],
        "attachments": [
            module_row("eattach", 30, {"File_Name": "xray1.jpg", "Size": "2002"}, {"Parent_Id": contact_link(2)},
                       file_path=str(files / "xray1.jpg"), size_bytes=2002, file_status="ok",
                       parent=contact_link(2)),
            module_row("eattach", 31, {"File_Name": "gone.jpg"}, {"Parent_Id": contact_link(3)},
                       file_path=str(files / "gone.jpg"), size_bytes=None, file_status="missing",
                       parent=contact_link(3)),
            module_row("eattach", 32, {"File_Name": "big.tif", "Size": "25000000"}, {"Parent_Id": contact_link(1)},
                       file_path=str(files / "big.tif"), size_bytes=25_000_000, file_status="over_limit",
                       parent=contact_link(1)),
        ],
    }
    if tweak is not None:
        tweak(tables)
    return write_shaped_tables(path, OFFICE, tables)


def canonical(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Zoho's records without ids, times, run stamps or owners' ids: lookups by the target's source id."""
    modules = snapshot["modules"]
    key_of: dict[str, str] = {}
    for records in modules.values():
        for r in records:
            if r.get("Source_System_ID"):
                key_of[str(r["id"])] = str(r["Source_System_ID"])
    drop = {"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By", "Migration_Run_ID", "$file_id",
            "Last_Activity_Time"}

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            if "id" in value and len(value) <= 4 and set(value) <= {"id", "name", "module", "email", "zuid"}:
                if "email" in value:
                    return {"user": str(value["email"]).lower()}
                return {"ref": key_of.get(str(value["id"]), "?")}
            # an emptied subform ([]) and one never sent hold the same: no rows
            return {k: clean(v) for k, v in sorted(value.items()) if k not in drop and v not in (None, [])}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    out: dict[str, Any] = {}
    for module, records in modules.items():
        rows = [json.dumps(clean(r), sort_keys=True, default=str) for r in records]
        out[module] = sorted(rows)
    return out


class Kit:
    OFFICE = OFFICE
    AS_OF = AS_OF
    sid = staticmethod(sid)
    build_small_world = staticmethod(build_small_world)
    module_row = staticmethod(module_row)
    contact_link = staticmethod(contact_link)
    canonical = staticmethod(canonical)
    provider_map = staticmethod(provider_map)
    client_for = staticmethod(client_for)
    World = World
    write_users_file = staticmethod(write_users_file)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit


@pytest.fixture
def small_world(tmp_path: Path, world_factory: Callable[..., World]) -> World:
    duck = build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files")
    return world_factory(duck, load_spec())


@pytest.fixture
def copy_duckdb(tmp_path: Path) -> Callable[[Path], Path]:
    def copy(path: Path) -> Path:
        target = tmp_path / f"copy_{path.name}"
        shutil.copy(path, target)
        return target

    return copy


def write_shaped_tables(path: Path, office: str, tables: dict[str, list[dict[str, Any]]]) -> Path:
    """The office's rows of each shaped table (``zoho_shaped.<table>``) in the DuckDB at ``path``."""
    con = duckdb.connect(str(path))
    try:
        ensure_tables(con)
        for table, rows in tables.items():
            replace_office_rows(con, table, office, rows)
    finally:
        con.close()
    return path


# -- kills between Zoho's answer and the ledger write ---------------------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs in this process's load."""


@pytest.fixture
def killer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``killer(module)``: the next ledger commit of a batch of that Zoho module dies."""
    real = {"upserts": upserts.commit, "children": children.commit}

    def arm(module: str) -> None:
        def dying(ctx: Any, writer: Any, batch: Any, result: Any, step: Any) -> None:
            if step.module == module:
                disarm()
                raise Killed
            real["upserts"](ctx, writer, batch, result, step)

        monkeypatch.setattr(upserts, "commit", dying)
        monkeypatch.setattr(children, "commit", dying)

    def disarm() -> None:
        monkeypatch.setattr(upserts, "commit", real["upserts"])
        monkeypatch.setattr(children, "commit", real["children"])

    yield arm
    disarm()


def zoho_by_sid(world: Any, module: str) -> dict[str, dict[str, Any]]:
    records = world.handle.snapshot()["modules"].get(module, [])
    keys = [r["Source_System_ID"] for r in records if r.get("Source_System_ID")]
    assert len(keys) == len(set(keys)), f"{module}: a Source_System_ID twice"
    return {r["Source_System_ID"]: r for r in records if r.get("Source_System_ID")}


def load_parents(ctx: Any) -> None:
    for step in ("responsible_parties", "patients"):
        load_module(ctx, step)
