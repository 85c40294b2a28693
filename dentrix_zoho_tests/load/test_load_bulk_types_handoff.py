"""A keyed step through Bulk Write takes the field types schema set-up handed off: no metadata read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dentrix_zoho.load import LoadContext, LoadOptions, load_all
from dentrix_zoho.mapping import load_spec
from dentrix_zoho.zoho import ZohoClient
from dentrix_zoho_tests.load.conftest import OFFICE

CONTACT_STEPS = ("responsible_parties", "patients")
FAST_POLL = {"bulk_poll_initial": 0.05, "bulk_poll_max": 0.2}


def _load(world: Any, schema: Any) -> tuple[list[Any], list[str | None]]:
    """The steps with a client of their own (as a Dagster load step has: nothing cached); the modules
    whose field metadata it read."""
    events: list[Any] = []
    client = ZohoClient(world.client.config, event_sink=events.append)
    try:
        run = world.ledger.start_run("full", OFFICE)
        ctx = LoadContext(world.duckdb_path, client, world.ledger, OFFICE, run, world.spec, world.owners, schema,
                          LoadOptions(write_path="bulk"))
        results = load_all(ctx, CONTACT_STEPS)
    finally:
        client.close()
    reads = [e.module for e in events if e.method == "GET" and e.path_template.endswith("/settings/fields")]
    return results, reads


def test_bulk_write_takes_the_handed_off_types_and_reads_them_only_when_absent(
        world_factory: Any, kit: Any, tmp_path: Path) -> None:
    duck = kit.build_small_world(tmp_path / "shaped.duckdb", tmp_path / "files")

    world = world_factory(duck, load_spec(), client=FAST_POLL)
    assert "Contacts" in world.schema.field_types
    results, reads = _load(world, world.schema)
    assert sum(r.bulk_rows for r in results) > 0  # rows did go through Bulk Write's CSV
    assert reads == []

    # A hand-off written before set-up kept the types: read from Zoho, once (the client caches them).
    world = world_factory(duck, load_spec(), client=FAST_POLL)
    results, reads = _load(world, dataclasses.replace(world.schema, field_types={}))
    assert sum(r.bulk_rows for r in results) > 0
    assert reads == ["Contacts"]
