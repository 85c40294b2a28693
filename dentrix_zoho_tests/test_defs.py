"""The Dagster definitions load, and their shape is pinned so a refactor cannot silently drop an asset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

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


# --- the asset graph, pinned -------------------------------------------------------------------------
# Every asset's key, group, kinds, owners, deps, partitions and checks. An intended change to the graph:
#   UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest dentrix_zoho_tests/test_defs.py -k "snapshot or partitioned_by_office"
# then review the diff of dentrix_zoho_tests/snapshots/asset_graph.json with the change.
SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"
# The same graph with an offices file: every asset and check partitioned by office.
OFFICES_SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph_offices.json"


def asset_graph_snapshot(defs: dg.Definitions | None = None) -> dict[str, object]:
    graph = (defs or load_defs()).resolve_asset_graph()
    assets: dict[str, object] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": None if node.partitions_def is None else str(node.partitions_def),
            "checks": sorted(c.name for c in node.check_keys),
            "check_partitions": sorted({str(graph.get_check_spec(c).partitions_def) for c in node.check_keys}),
            "has_description": bool(node.description),
        }
    return assets


def _matches(current: dict[str, object], snapshot: Path) -> None:
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    assert current == json.loads(snapshot.read_text(encoding="utf-8")), (
        "the asset graph changed: if intended, regenerate the snapshot (see SNAPSHOT above) and review its diff")


def test_asset_graph_matches_its_snapshot() -> None:
    _matches(asset_graph_snapshot(), SNAPSHOT)


OFFICES_YAML = """\
offices:
  north:
    dentrix: {url: "sqlite:///north.db"}
    time_zone: America/Denver
  south:
    dentrix: {odbc: "DSN=south;UID=dx", password_env: SOUTH_PWD}
    time_zone: America/Chicago
"""


@pytest.fixture()
def offices_defs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    from dentrix_zoho.definitions import build_definitions

    for name in [k for k in os.environ if k.startswith(("DENTRIX_", "ZOHO_"))]:
        monkeypatch.delenv(name)
    (tmp_path / "offices.yaml").write_text(OFFICES_YAML, encoding="utf-8")
    monkeypatch.setenv("DENTRIX_ZOHO_HOME", str(tmp_path))
    return build_definitions()


# The org level (one asset for every office) exists only with an offices file, unpartitioned.
ORG_ASSETS = {"dentrix_org/cross_office_audit"}


def test_with_an_offices_file_the_graph_is_the_same_partitioned_by_office(offices_defs: dg.Definitions) -> None:
    offices = asset_graph_snapshot(offices_defs)
    _matches(offices, OFFICES_SNAPSHOT)
    default = asset_graph_snapshot()
    assert set(offices) == set(default) | ORG_ASSETS and not ORG_ASSETS & set(default)
    partitioned = 'Dynamic partitions: "offices"'
    for key, node in offices.items():
        if key in ORG_ASSETS:
            continue
        assert node["partitions"] == partitioned, key  # type: ignore[index]
        assert node["check_partitions"] in ([], [partitioned]), key  # type: ignore[index]
        unpartitioned = {**node, "partitions": None, "check_partitions": [] if not node["checks"] else ["None"]}  # type: ignore[index, dict-item]
        assert unpartitioned == default[key], key


def test_with_an_offices_file_every_job_is_per_office(offices_defs: dg.Definitions) -> None:
    for job in ("stage_and_audit", "sample_migration", "full_migration", "delta_migration", "rollback_migration"):
        partitions = offices_defs.resolve_job_def(job).partitions_def
        assert isinstance(partitions, dg.DynamicPartitionsDefinition) and partitions.name == "offices", job
    repo = offices_defs.get_repository_def()
    assert sorted(s.name for s in repo.sensor_defs) == ["cutover_delta_sensor", "ledger_run_canceled_sensor",
                                                        "ledger_run_failure_sensor", "offices_sensor"]
    assert [s.job_name for s in repo.sensor_defs if s.name == "cutover_delta_sensor"] == ["delta_migration"]
    assert [s.job_name for s in repo.schedule_defs] == ["delta_migration"]
    # Each office writes its own DuckDB: no shared writer pool holds the offices back from each other.
    graph = offices_defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert "duckdb_writer" not in node.pools, key
        if key.path[0] == "zoho_load" and key.path[-1] != "mapping_approval":
            assert len(node.pools) == 1 and next(iter(node.pools)).startswith("zoho_api_"), key


def test_the_org_audit_reads_every_office_s_staged_patients_and_runs_in_a_job_of_its_own(
        offices_defs: dg.Definitions) -> None:
    graph = offices_defs.resolve_asset_graph()
    key = dg.AssetKey(["dentrix_org", "cross_office_audit"])
    node = graph.get(key)
    assert node.partitions_def is None and node.group_name == "dentrix_org" and not node.pools
    patient = dg.AssetKey(["dentrix", "patient"])
    assert node.parent_keys == {patient}
    assert isinstance(graph.get_partition_mapping(key, patient), dg.AllPartitionMapping)
    # Not upstream of any office's load: the per-office jobs never carry it.
    assert not graph.get(key).child_keys
    job = offices_defs.resolve_job_def("cross_office_audit")
    assert job.partitions_def is None
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == ORG_ASSETS
    for name in ("stage_and_audit", "sample_migration", "full_migration", "delta_migration"):
        selected = {k.to_user_string() for k in offices_defs.resolve_job_def(name).asset_layer.selected_asset_keys}
        assert not selected & ORG_ASSETS, name


def test_without_an_offices_file_there_is_no_org_level() -> None:
    defs = load_defs()
    assert not [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "dentrix_org"]
    assert "cross_office_audit" not in {job.name for job in defs.get_repository_def().get_all_jobs()}


def test_without_an_offices_file_nothing_is_partitioned() -> None:
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    assert all(graph.get(k).partitions_def is None for k in graph.get_all_asset_keys())
    assert {s.name for s in defs.get_repository_def().sensor_defs} == {"cutover_delta_sensor"}


def test_load_chain_reads_left_to_right() -> None:
    """The gates and the estimate sit once at the head; each later step waits only for the one before."""
    from dentrix_zoho.load import LOAD_ORDER

    graph = load_defs().resolve_asset_graph()
    head = {"zoho_load/mapping_approval", "zoho_load/owner_resolution", "zoho_plan/migration_estimate"}
    previous = None
    for name in LOAD_ORDER:
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(["zoho_load", name])).parent_keys}
        assert parents == (head if previous is None else {f"zoho_load/{previous}"}), name
        previous = name


def test_every_asset_and_check_says_what_it_does() -> None:
    graph = load_defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            assert node.description, key
            assert node.owners == ["team:migration"], key
    for spec in graph.asset_check_keys:
        assert graph.get_check_spec(spec).description, spec


@pytest.mark.slow
@pytest.mark.parametrize("with_offices", [False, True], ids=["one office", "offices file"])
def test_dagster_definitions_validate(with_offices: bool, tmp_path: Path) -> None:
    """What `dagster definitions validate` checks on a clean clone: the code location loads and validates."""
    exe = Path(sys.executable).parent / "dagster"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DENTRIX_", "DAGSTER_"))}
    if with_offices:
        (tmp_path / "offices.yaml").write_text(OFFICES_YAML, encoding="utf-8")
        env["DENTRIX_ZOHO_HOME"] = str(tmp_path)
    done = subprocess.run([str(exe), "definitions", "validate", "-m", "dentrix_zoho.definitions"],
                          cwd=Path(__file__).parent.parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
