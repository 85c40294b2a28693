"""Schema set-up's metadata reads: the modules' at once, and their subforms handed to the load steps.

A load step builds its own Zoho client (a cold metadata cache): without the subforms in the schema
hand-off, every upsert step read its module's fields again before its first write.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dentrix_zoho.load import load_module, setup_schema
from dentrix_zoho.load.schema_setup import KEYED_MODULES
from dentrix_zoho.mapping import load_spec
from dentrix_zoho_tests.load.conftest import client_for
from dentrix_zoho_tests.load.test_load_subform_resends import PLANS, WANTED, guarantor, make_world, plans_of

FIELDS_READ = "GET /crm/v8/settings/fields"


def field_reads(handle: Any) -> int:
    return int(handle.usage()["calls"].get(FIELDS_READ, 0))


def test_schema_setup_reads_the_modules_at_once_and_keeps_their_subforms(emulator_factory: Any) -> None:
    handle = emulator_factory(latency_ms=50)  # long enough for the modules' calls to meet at the emulator
    with client_for(handle) as client:
        result = setup_schema(client, load_spec())
    assert handle.usage()["concurrency"]["max_seen"] > 1
    assert set(KEYED_MODULES) <= set(result.field_types)
    assert result.subform_names("Contacts") == ["Insurance_Plans"]
    assert all(result.subform_names(m) == [] for m in KEYED_MODULES if m != "Contacts")
    assert result.field_types["Contacts"][result.source_id_field("Contacts")] == "text"
    # Run again (fields exist): the same answer, one metadata read per module and nothing created.
    before = handle.usage()["calls"].get("POST /crm/v8/settings/fields", 0)
    with client_for(handle) as client:
        again = setup_schema(client, load_spec())
    assert again.field_types == result.field_types and again.api_names == result.api_names
    assert handle.usage()["calls"].get("POST /crm/v8/settings/fields", 0) == before


def test_an_update_reads_no_field_metadata_and_replaces_the_plans_once(tmp_path: Path, world_factory: Any,
                                                                        kit: Any) -> None:
    world = make_world(tmp_path, world_factory, kit, plans=PLANS[:1])
    assert load_module(world.context(), "responsible_parties").created == 1
    kit.build_small_world(world.duckdb_path, tmp_path / "files", tweak=guarantor(kit, PLANS))
    world.client = client_for(world.handle)  # as a Dagster step: a new client, nothing cached
    reads = field_reads(world.handle)
    # The record API only: choosing Bulk Write's rows still reads the field types (load/bulk_write.py).
    result = load_module(world.context(kind="delta", write_path="records"), "responsible_parties")
    assert (result.ok, result.updated, result.failed) == (1, 1, 0)
    assert plans_of(world, kit) == WANTED  # emptied first, then sent: not appended to the old one
    assert field_reads(world.handle) == reads


def test_a_hand_off_without_subforms_reads_them_from_zoho(tmp_path: Path, world_factory: Any, kit: Any) -> None:
    world = make_world(tmp_path, world_factory, kit, plans=PLANS[:1])
    assert load_module(world.context(), "responsible_parties").created == 1
    kit.build_small_world(world.duckdb_path, tmp_path / "files", tweak=guarantor(kit, PLANS))
    world.client = client_for(world.handle)
    world.schema = dataclasses.replace(world.schema, field_types={})  # written before set-up kept them
    reads = field_reads(world.handle)
    result = load_module(world.context(kind="delta", write_path="records"), "responsible_parties")
    assert (result.ok, result.updated, result.failed) == (1, 1, 0)
    assert plans_of(world, kit) == WANTED
    assert field_reads(world.handle) == reads + 1
