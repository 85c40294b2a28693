"""The Dagster definitions load, and their shape is pinned so a refactor cannot silently drop an asset."""

from __future__ import annotations

import dagster as dg

from dentrix_zoho.source.catalog import CATALOG


def load_defs() -> dg.Definitions:
    from dentrix_zoho.definitions import defs

    return defs


def test_definitions_load_and_resolve() -> None:
    defs = load_defs()
    repo = defs.get_repository_def()
    assert {job.name for job in repo.get_all_jobs()} >= {"stage_and_audit"}


def test_one_staging_asset_per_catalog_object_in_group_dentrix() -> None:
    graph = load_defs().resolve_asset_graph()
    staged = {key.path[1] for key in graph.get_all_asset_keys() if key.path[0] == "dentrix"}
    assert staged == set(CATALOG) | {"source_audit"}
    for name in CATALOG:
        node = graph.get(dg.AssetKey(["dentrix", name]))
        assert node.group_name == "dentrix"
        assert node.pools == {"duckdb_writer"}


def test_audit_depends_on_every_staged_object() -> None:
    graph = load_defs().resolve_asset_graph()
    parents = graph.get(dg.AssetKey(["dentrix", "source_audit"])).parent_keys
    assert parents == {dg.AssetKey(["dentrix", name]) for name in CATALOG}
