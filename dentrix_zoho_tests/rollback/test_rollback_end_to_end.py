"""Rollback end to end against the Zoho emulator, on the tiny synthetic practice.

Before any migration a person creates a few Contacts that "existed before" (their
Source_System_ID matches patients the migration upserts, so it updates them and keeps
pre-images). The emulator snapshot taken then is the state every rollback must return to.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from click.testing import CliRunner, Result

from dentrix_zoho.load import load_all, select_sample
from dentrix_zoho.rollback.cli import rollback
from dentrix_zoho.rollback.service import make_plan
from dentrix_zoho.zoho import ZohoClient

pytestmark = pytest.mark.slow

OFFICE = "office-1"
AS_OF = dt.date(2026, 11, 1)
FULL_SCOPE = "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL,ZohoCRM.users.READ,ZohoCRM.org.READ"
RUNNER = Path(__file__).with_name("rollback_crash_runner.py")


def _load_kit() -> Any:
    """The load tests' conftest, by path: its World, users file and session fixture are reused as they are."""
    spec = importlib.util.spec_from_file_location(
        "rollback_e2e_load_kit", Path(__file__).parents[1] / "load" / "conftest.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KIT = _load_kit()
# The tiny practice staged and shaped once per session, exactly as the load tests have it.
shaped_practice = KIT.shaped_practice


# -- comparing emulator states ---------------------------------------------------------------------

# Zoho stamps every write, a restore included, with its time and writer; nothing else may differ.
STAMPED_BY_ZOHO = frozenset({"Modified_Time", "Modified_By"})


def _content(value: Any) -> Any:
    """A snapshot value with empty fields dropped and subform rows compared without their ids.

    Empty: Zoho has no "absent" field (every field reads back, null when empty), while the emulator
    stores only the keys it was sent; a restore that empties a field the migration filled leaves
    ``null`` (or ``[]`` for a subform) where the key used to be missing. Subform row ids: the
    migration empties a record's subforms before re-sending them (Zoho would otherwise append
    duplicates), so the original rows are gone; a restore can re-create them, and Zoho gives
    re-created rows new ids. Their content must be equal.
    """
    if isinstance(value, dict):
        return {k: _content(v) for k, v in value.items() if v not in (None, [])}
    if isinstance(value, list):
        rows = [_content(v) for v in value]
        if rows and all(isinstance(r, dict) for r in rows):
            return sorted((json.dumps({k: v for k, v in r.items() if k != "id"}, sort_keys=True) for r in rows))
        return rows
    return value


def org_state(snapshot: dict[str, Any]) -> dict[str, Any]:
    modules = {
        module: {str(r["id"]): _content({k: v for k, v in r.items() if k not in STAMPED_BY_ZOHO}) for r in records}
        for module, records in snapshot["modules"].items()
        if records
    }
    return {"modules": modules, "custom_fields": snapshot["custom_fields"]}


def assert_same_org(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Equal record by record; on failure say where (ids and field names only)."""
    g, w = org_state(got), org_state(want)
    assert g["custom_fields"] == w["custom_fields"]
    for module in sorted(set(g["modules"]) | set(w["modules"])):
        have, expect = g["modules"].get(module, {}), w["modules"].get(module, {})
        extra, missing = sorted(set(have) - set(expect)), sorted(set(expect) - set(have))
        assert not extra and not missing, f"{module}: {len(extra)} left over, {len(missing)} missing"
        for zoho_id, record in expect.items():
            differing = sorted(k for k in set(record) | set(have[zoho_id]) if record.get(k) != have[zoho_id].get(k))
            assert not differing, f"{module} {zoho_id}: fields differ: {differing}"


# -- a migration against one emulator --------------------------------------------------------------


class Migration:
    """One emulator, its ledger and clients; records a person made before the migration."""

    def __init__(self, handle: Any, shaped: Any, root: Path) -> None:
        self.handle = handle
        self.shaped = shaped
        self.world = KIT.World(handle, shaped.duckdb_path, root / "ledger.sqlite", shaped.spec)
        self.ledger = self.world.ledger
        self.person = self._person_client()
        self.env = {
            "ZOHO_API_BASE": handle.base_url,
            "ZOHO_ACCOUNTS_URL": handle.base_url,
            "ZOHO_CLIENT_ID": handle.client_id,
            "ZOHO_CLIENT_SECRET": handle.client_secret,
            "ZOHO_REFRESH_TOKEN": handle.refresh_token,
            "ZOHO_EDITION": "enterprise",
            "ZOHO_USERS": "5",
            "DENTRIX_ZOHO_LEDGER_URL": self.world.ledger_url,
        }
        self.seeded: dict[str, str] = {}  # source id -> zoho id

    def _person_client(self) -> ZohoClient:
        """A second OAuth user (the front desk), as a person editing in Zoho would be."""
        users = {u["email"]: u["id"] for u in self.world.client.users("ActiveUsers")}
        person_id = users["office@wasatchdental.com"]
        with httpx.Client(base_url=self.handle.base_url, timeout=10) as http:
            code = http.post("/__emulator__/grant-code", params={"scope": FULL_SCOPE, "user_id": person_id})
            minted = http.post(
                "/oauth/v2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code.json()["code"],
                    "client_id": self.handle.client_id,
                    "client_secret": self.handle.client_secret,
                },
            )
        refresh = minted.json()["refresh_token"]
        return KIT.client_for(self.handle, refresh_token=refresh)

    def patients(self) -> list[str]:
        con = duckdb.connect(str(self.shaped.duckdb_path), read_only=True)
        try:
            rows = con.execute(
                "SELECT source_id FROM zoho_shaped.contacts WHERE office_id = ? AND coalesce(tier, 1) <> 0 "
                "ORDER BY source_id",
                [OFFICE],
            ).fetchall()
        finally:
            con.close()
        return [r[0] for r in rows]

    def sample(self, size: int = 8) -> frozenset[str]:
        con = duckdb.connect(str(self.shaped.duckdb_path), read_only=True)
        try:
            return frozenset(select_sample(con, size, office_id=OFFICE, as_of=AS_OF, spec=self.shaped.spec))
        finally:
            con.close()

    def seed(self, source_ids: list[str]) -> None:
        """Contacts the practice had in Zoho before the migration, made by a person."""
        sid_field = self.world.schema.source_id_field("Contacts")
        subforms = [f["api_name"] for f in self.world.client.fields("Contacts") if f.get("data_type") == "subform"]
        records: list[dict[str, Any]] = []
        for n, sid in enumerate(source_ids):
            record: dict[str, Any] = {
                "Last_Name": f"Before{n}",
                "First_Name": "Existing",
                "Phone": f"+1801555{n:04d}",
                "Description": "entered by the front desk before the migration",
                sid_field: sid,
            }
            if n == 0:
                # Insurance rows the practice keyed in by hand; the migration replaces them.
                assert "Insurance_Plans" in subforms
                record["Insurance_Plans"] = [{"Plan_Type": "Primary", "Carrier": "Carrier Keyed By Hand"},
                                             {"Plan_Type": "Secondary", "Carrier": "Second Carrier"}]
            records.append(record)
        outcomes = self.person.insert("Contacts", records)
        assert all(o.ok for o in outcomes), [o.code for o in outcomes]
        self.seeded = {sid: str(o.zoho_id) for sid, o in zip(source_ids, outcomes, strict=True)}

    def load(self, kind: str, sample: frozenset[str] | None = None) -> str:
        ctx = self.world.context(kind=kind, sample_source_ids=sample)
        results = load_all(ctx)
        assert sum(r.failed for r in results) == 0
        self.ledger.finish_run(ctx.run_id, "succeeded")
        return str(ctx.run_id)

    def cli(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(rollback, list(args), env=self.env, input=input, catch_exceptions=False)

    def close(self) -> None:
        self.person.close()
        self.world.client.close()
        self.ledger.close()


@pytest.fixture
def migration(shaped_practice: Any, tmp_path: Path) -> Iterator[Migration]:
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    users = KIT.write_users_file(tmp_path / "users.yaml")
    with running_emulator(tmp_path / "emu", extra_args=["--users-file", str(users)]) as handle:
        made = Migration(handle, shaped_practice, tmp_path)
        yield made
        made.close()


def _seed_in_and_out_of_sample(m: Migration) -> tuple[frozenset[str], list[str]]:
    sample = m.sample()
    patients = m.patients()
    inside = sorted(s for s in patients if s in sample)[:2]
    outside = [s for s in patients if s not in sample][:2]
    m.seed(inside + outside)
    return sample, inside + outside


# -- the tests ---------------------------------------------------------------------------------------


def test_rollback_of_the_sample_then_of_everything_returns_the_org_to_its_state_before(
    migration: Migration,
) -> None:
    m = migration
    sample, seeded = _seed_in_and_out_of_sample(m)
    before = m.handle.snapshot()

    sample_run = m.load("sample", sample)
    imaged = {ref.zoho_id for ref in m.ledger.pre_image_refs(sample_run)}
    assert imaged == {m.seeded[sid] for sid in seeded[:2]}  # the two seeded inside the sample were updated

    migrated = m.handle.snapshot()
    dry = m.cli("--run", sample_run, "--dry-run")
    assert dry.exit_code == 0, dry.output
    shown = {" ".join(line.split()[:2]) for line in _lines(dry.output)}
    assert {"restore Contacts", "delete Contacts", "delete Events", "delete Notes", "delete Attachments"} <= shown
    declined = m.cli("--run", sample_run, input="n\n")
    assert declined.exit_code == 1 and "Carry out this rollback?" in declined.output
    assert m.handle.snapshot() == migrated  # neither a dry run nor a declined one changes anything
    assert not m.ledger.runs(kind="rollback")

    credits_before = m.handle.usage()["credits"]["used_total"]
    done = m.cli("--run", sample_run, "--yes")
    assert done.exit_code == 0, done.output
    assert_same_org(m.handle.snapshot(), before)
    # The plan's cost is what Zoho charged, but for the two metadata reads (current user, fields).
    planned_credits = int(next(line for line in _lines(dry.output) if line.startswith("total")).split()[-1])
    charged = m.handle.usage()["credits"]["used_total"] - credits_before
    assert charged == planned_credits + 2
    # The rollback recorded itself: a ledger run, and every API call it made.
    [first_rollback] = m.ledger.runs(kind="rollback")
    assert first_rollback.status == "succeeded"
    assert (first_rollback.notes or "").startswith(f"rollback of {sample_run}:")
    assert sum(c["credits"] or 0 for c in m.ledger.api_calls(first_rollback.run_id)) == charged

    # The full migration, then everything rolled back by the Dagster job.
    full_run = m.load("full")
    restored_later = {ref.zoho_id for ref in m.ledger.pre_image_refs(full_run)}
    assert restored_later == set(m.seeded.values())  # all four updated again, with fresh pre-images
    result = _run_dagster_job(m, {"all_runs": True})
    assert result.success
    [materialized] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = materialized.event_specific_data.metadata  # type: ignore[union-attr]
    assert metadata["result.restored"].value == len(seeded)
    assert metadata["result.deleted"].value > 1000 and metadata["result.human_edits"].value == 0
    assert_same_org(m.handle.snapshot(), before)

    assert m.ledger.verify_chain().ok
    assert make_plan(m.ledger, None, True).is_empty
    kinds = [(r.kind, r.status) for r in m.ledger.runs(kind="rollback")]
    assert kinds == [("rollback", "succeeded"), ("rollback", "succeeded")]


def _run_dagster_job(m: Migration, config: dict[str, Any]) -> Any:
    from dentrix_zoho.defs.rollback.jobs import rollback_migration_job
    from dentrix_zoho.defs.workspace_resource import WorkspaceResource
    from dentrix_zoho.defs.zoho_resource import ZohoResource

    resources = {
        "workspace": WorkspaceResource(home=str(Path(m.handle.data_dir).parent / "home"), office_id=OFFICE,
                                       ledger_url=m.world.ledger_url),
        "zoho": ZohoResource(client_id=m.handle.client_id, client_secret=m.handle.client_secret,
                             refresh_token=m.handle.refresh_token, api_base=m.handle.base_url,
                             accounts_url=m.handle.base_url, users=5),
    }
    return rollback_migration_job.execute_in_process(
        run_config={"ops": {"rollback": {"config": config}}}, resources=resources, raise_on_error=False
    )


def test_a_rollback_killed_midway_resumes_to_the_same_end_state(migration: Migration, tmp_path: Path) -> None:
    m = migration
    sample, _ = _seed_in_and_out_of_sample(m)
    before = m.handle.snapshot()
    run = m.load("sample", sample)
    planned = make_plan(m.ledger, None, True)
    deletes = sum(1 for step in planned.steps if step.op == "delete" and not step.per_record)
    assert deletes >= 3

    # Killed right after Zoho applied the second batch delete, before the ledger heard of it.
    killed = _killed_rollback(m, tmp_path, ["--all", "--yes"], kill_after_deletes=2)
    assert killed.returncode == -9, killed.stderr[-2000:]
    [stuck] = m.ledger.runs(kind="rollback")
    assert stuck.status == "running"
    assert m.handle.snapshot()["modules"] != before["modules"]

    resumed = m.cli("--all", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert f"Resuming rollback run {stuck.run_id}" in resumed.output
    assert_same_org(m.handle.snapshot(), before)
    [finished] = m.ledger.runs(kind="rollback")
    assert (finished.run_id, finished.status) == (stuck.run_id, "succeeded")
    # What the killed process deleted was found gone, not deleted twice.
    codes = [e.code for e in m.ledger.audit_entries(stuck.run_id) if e.operation == "delete"]
    assert codes.count("ALREADY_GONE") >= 1
    assert m.ledger.verify_chain().ok
    assert make_plan(m.ledger, run, False).is_empty and make_plan(m.ledger, None, True).is_empty


def _killed_rollback(m: Migration, tmp_path: Path, args: list[str], kill_after_deletes: int) -> Any:
    config = tmp_path / "runner.json"
    config.write_text(json.dumps({"args": args, "kill_after_deletes": kill_after_deletes}), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(RUNNER), str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **m.env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def test_a_record_a_person_edited_after_our_write_is_reported_and_skipped(migration: Migration) -> None:
    m = migration
    sample, seeded = _seed_in_and_out_of_sample(m)
    before = m.handle.snapshot()
    run = m.load("sample", sample)

    created = next(
        row.zoho_id
        for row in m.ledger.crosswalk_rows(created_by_run=run, module="Contacts")
        if row.zoho_id not in m.seeded.values()
    )
    pre_existing = m.seeded[seeded[0]]
    for zoho_id in (created, pre_existing):
        [outcome] = m.person.update("Contacts", [{"id": zoho_id, "Description": "changed by the front desk"}])
        assert outcome.ok
    edited = {zoho_id: _record(m, zoho_id) for zoho_id in (created, pre_existing)}

    skipped = m.cli("--run", run, "--yes")
    assert skipped.exit_code == 1, skipped.output
    lines = _lines(skipped.output)
    assert "human edit, skipped delete Contacts 1" in lines
    assert "human edit, skipped restore Contacts 1" in lines
    assert "human edits 2 (2 skipped)" in skipped.output
    for zoho_id, record in edited.items():  # neither overwritten nor deleted
        assert _record(m, zoho_id) == record
    rollback_run = m.ledger.runs(kind="rollback")[-1].run_id
    flagged = {(e.zoho_id, e.code) for e in m.ledger.audit_entries(rollback_run) if e.outcome == "skipped"}
    assert flagged == {(created, "HUMAN_EDITED"), (pre_existing, "HUMAN_EDITED")}
    # Everything else of the run is gone or restored; the two wait for a decision.
    remaining = make_plan(m.ledger, run, False)
    assert {item.zoho_id for step in remaining.steps for item in step.items} == {created, pre_existing}

    # The Dagster job sees the same two, and fails rather than report a rollback as done.
    dry = _run_dagster_job(m, {"run_id": run, "dry_run": True})
    assert dry.success and dry.output_for_node("rollback")["delete.Contacts"] == 1
    refused = _run_dagster_job(m, {"run_id": run})
    assert not refused.success
    [failure] = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "left work undone" in str(failure.event_specific_data.error.message)  # type: ignore[union-attr]
    assert _record(m, created) == edited[created]

    forced = m.cli("--run", run, "--yes", "--policy", "force")
    assert forced.exit_code == 0, forced.output
    forced_rows = {"human edit, forced delete Contacts 1", "human edit, forced restore Contacts 1"}
    assert forced_rows <= set(_lines(forced.output))
    forced_run = m.ledger.runs(kind="rollback")[-1].run_id
    overwritten = {(e.zoho_id, e.code) for e in m.ledger.audit_entries(forced_run) if e.operation == "human_edit"}
    assert overwritten == {(created, "FORCED_DELETE"), (pre_existing, "FORCED_RESTORE")}
    assert_same_org(m.handle.snapshot(), before)


def _lines(output: str) -> list[str]:
    return [" ".join(line.split()) for line in output.splitlines()]


def _record(m: Migration, zoho_id: str) -> dict[str, Any] | None:
    found = [r for r in m.handle.snapshot()["modules"].get("Contacts", []) if r["id"] == zoho_id]
    return copy.deepcopy(found[0]) if found else None


def test_the_zoho_adapter_reads_stamps_in_one_call_and_counts_a_vanished_record_as_gone(tmp_path: Path) -> None:
    from dentrix_zoho.rollback import ALREADY_GONE_CODES
    from dentrix_zoho.rollback.adapter import ZohoRollbackWriter
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    with running_emulator(tmp_path / "emu") as handle:
        client = KIT.client_for(handle)
        writer = ZohoRollbackWriter(client)
        made = client.insert("Contacts", [{"Last_Name": f"Adapter{i}", "Phone": "+18015550000"} for i in range(3)])
        ids = [str(o.zoho_id) for o in made]
        me = writer.current_user_id()
        assert me is not None

        calls = client.transport.calls
        stamps = writer.fetch("Contacts", [*ids, "6421000000009999999"], ["Modified_Time", "Modified_By"])
        assert client.transport.calls == calls + 1 and set(stamps) == set(ids)
        assert all(rec["Modified_By"]["id"] == me and rec["Modified_Time"] for rec in stamps.values())
        assert "Last_Name" not in stamps[ids[0]]  # only what was asked for
        full = writer.fetch("Contacts", ids[:1], ["Last_Name", "Modified_Time", "Modified_By"])
        assert full[ids[0]]["Last_Name"] == "Adapter0" and full[ids[0]]["Created_Time"]

        [restored] = writer.update("Contacts", [{"id": ids[0], "Last_Name": "Restored"}])
        assert restored.ok and restored.zoho_id == ids[0]
        first = writer.delete("Contacts", ids[1:])
        assert [(o.zoho_id, o.ok) for o in first] == [(ids[1], True), (ids[2], True)]
        again = writer.delete("Contacts", ids[1:])
        assert [o.zoho_id for o in again] == ids[1:] and not any(o.ok for o in again)
        assert all(o.code in ALREADY_GONE_CODES for o in again)  # a vanished record counts as deleted
        missing = writer.delete_attachment("Contacts", ids[1], "6421000000009999998")
        assert not missing.ok and missing.code in ALREADY_GONE_CODES
        assert writer.read_only_fields(["Contacts"])["Contacts"] >= {"Modified_Time", "Created_By"}
        client.close()
