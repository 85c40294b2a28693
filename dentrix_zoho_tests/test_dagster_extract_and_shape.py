"""Stage, audit and shape the tiny practice through Dagster, in process: metadata holds counts, not patients."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.slow

from dentrix_zoho.defs.mapping.assets import mapping_assets, mapping_checks
from dentrix_zoho.defs.source.assets import audit_assets, staging_assets
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import WorkspaceResource
from dentrix_zoho.source.catalog import CATALOG


@pytest.fixture(scope="module")
def materialized(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dg.ExecuteInProcessResult, Path]:
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("DENTRIX_ZOHO_HOME", str(home))
    mp.setenv("DENTRIX_IMAGE_DIR", str(tiny_practice.parent / "practice_images"))
    mp.setenv("DENTRIX_PROVIDER_MAP", str(tiny_practice.parent / "practice_providers.yaml"))
    mp.setenv("DENTRIX_AS_OF", "2026-11-01")
    try:
        result = dg.materialize(
            [*staging_assets, *audit_assets, *mapping_assets, *mapping_checks],
            resources={
                "dentrix": DentrixSourceResource(source=f"sqlite:///{tiny_practice}"),
                "workspace": WorkspaceResource(home=str(home)),
            },
            raise_on_error=True,
        )
    finally:
        mp.undo()
    return result, home


def _metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, object]:
    mats = result.asset_materializations_for_node(key.to_python_identifier()) if False else [
        m for m in result.get_asset_materialization_events() if m.asset_key == key
    ]
    assert mats, key
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def test_every_object_staged_with_row_count(materialized: tuple[dg.ExecuteInProcessResult, Path]) -> None:
    result, _ = materialized
    for name in CATALOG:
        meta = _metadata(result, dg.AssetKey(["dentrix", name]))
        assert isinstance(meta["dagster/row_count"], int)


def test_audit_metadata_counts_only_and_report_is_private(materialized: tuple[dg.ExecuteInProcessResult, Path], tiny_practice: Path) -> None:
    result, home = materialized
    meta = _metadata(result, dg.AssetKey(["dentrix", "source_audit"]))
    assert meta["finding/orphan_rows"] > 0
    report = home / "reports" / "source_audit.md"
    assert report.exists() and (report.stat().st_mode & 0o077) == 0
    _assert_no_patient_values_in(result, tiny_practice)


def test_shaped_assets_published_with_counts(materialized: tuple[dg.ExecuteInProcessResult, Path]) -> None:
    result, _ = materialized
    contacts = _metadata(result, dg.AssetKey(["zoho_shaped", "contacts"]))
    assert contacts["dagster/row_count"] > 0
    assert contacts["balanced"] is True
    checks = result.get_asset_check_evaluations()
    assert any(c.check_name == "shaping_accounts_for_every_row" and c.passed for c in checks)


def _assert_no_patient_values_in(result: dg.ExecuteInProcessResult, practice: Path) -> None:
    """No last name, e-mail or phone of a patient appears in any event of the run."""
    import sqlite3

    with sqlite3.connect(practice) as con:
        values = {
            str(v).strip()
            for row in con.execute("SELECT lastname, emailaddr, pager FROM patient").fetchall()
            for v in row
            if v and len(str(v).strip()) >= 5
        }
    blob = json.dumps([str(e) for e in result.all_events])
    leaked = [v for v in values if v in blob]
    assert not leaked, f"{len(leaked)} patient values found in Dagster events"
