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
    assert {job.name for job in repo.get_all_jobs()} >= {
        "stage_and_audit", "sample_migration", "full_migration", "delta_migration", "rollback_migration"}


def test_one_staging_asset_per_catalog_object_in_group_dentrix() -> None:
    graph = load_defs().resolve_asset_graph()
    staged = {key.path[1] for key in graph.get_all_asset_keys() if key.path[0] == "dentrix"}
    assert staged == set(CATALOG) | {"source_audit", "delta_changes"}
    for name in CATALOG:
        node = graph.get(dg.AssetKey(["dentrix", name]))
        assert node.group_name == "dentrix"
        assert node.pools == {"duckdb_writer"}


def test_audit_depends_on_every_staged_object() -> None:
    graph = load_defs().resolve_asset_graph()
    parents = graph.get(dg.AssetKey(["dentrix", "source_audit"])).parent_keys
    assert parents == {dg.AssetKey(["dentrix", name]) for name in CATALOG}


def test_jobs_select_what_they_should() -> None:
    defs = load_defs()

    def keys(job: str) -> set[str]:
        return {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys}

    sample, full, delta = keys("sample_migration"), keys("full_migration"), keys("delta_migration")
    load_steps = {f"zoho_load/{s}" for s in ("responsible_parties", "patients", "leads", "events", "tasks",
                                               "calls", "notes", "attachments", "ledger_pdfs", "reconciliation")}
    assert load_steps <= sample and load_steps <= full and load_steps <= delta
    # The approval gate is what the full and delta runs pass through; the sample does not wait for it.
    assert "zoho_load/mapping_approval" in full and "zoho_load/mapping_approval" in delta
    assert "zoho_load/mapping_approval" not in sample
    # Deletions only in the cutover window's delta runs; the sample only in the sample run.
    assert "zoho_load/deletions" in delta and "zoho_load/deletions" not in full | sample
    assert "zoho_shaped/migration_sample" in sample and "zoho_shaped/migration_sample" not in full | delta
    assert "zoho_reports/sample_diff_report" in sample
    assert "dentrix/delta_changes" in delta and not any(k.startswith("dentrix/") and k != "dentrix/delta_changes"
                                                        for k in delta)


def test_every_zoho_asset_shares_the_org_pool_and_duckdb_writers_share_theirs() -> None:
    graph = load_defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.path[0] == "dentrix" or key.path[-1] in ("migration_sample", "workflow_rebuild_reference"):
            assert node.pools == {"duckdb_writer"}, key
        elif key.path[0] == "zoho_load" and key.path[-1] != "mapping_approval":
            assert len(node.pools) == 1 and next(iter(node.pools)).startswith("zoho_api_"), key


def test_cutover_sensor_and_schedule_target_the_delta_job() -> None:
    repo = load_defs().get_repository_def()
    assert [s.job_name for s in repo.sensor_defs] == ["delta_migration"]
    assert [s.job_name for s in repo.schedule_defs] == ["delta_migration"]
