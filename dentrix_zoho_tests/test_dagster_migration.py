"""The migration jobs end to end through Dagster, against the emulator, on the tiny practice.

Sample first; the full job is stopped by the blocking approval gate until the
map is approved; after approval it loads everything; a re-run sends nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from dentrix_zoho.ledger import Ledger
from dentrix_zoho.mapping import approve_spec
from dentrix_zoho.source.synthetic import PracticeFiles
from dentrix_zoho.zoho_emulator.testing import running_emulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def migration_env(tiny_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dg.Definitions, Path, object]]:
    home = tmp_path_factory.mktemp("migration_home")
    files = PracticeFiles(tiny_practice)
    practice = home / "practice.db"  # our own copy: the delta test changes it
    shutil.copy(tiny_practice, practice)
    provider_map = home / "providers.yaml"
    shutil.copy(files.provider_map, provider_map)
    with provider_map.open("a", encoding="utf-8") as fh:
        fh.write("default_owner_email: office.manager@dental.example.com\n")
    users = home / "users.yaml"
    users.write_text(
        "users:\n"
        "  - {first_name: Office, last_name: Manager, email: office.manager@dental.example.com}\n"
        + "".join(
            f"  - {{first_name: {p}, last_name: Provider, email: {e}}}\n"
            for p, e in sorted(__import__("yaml").safe_load(files.provider_map.read_text())["providers"].items())
        ),
        encoding="utf-8",
    )
    mp = pytest.MonkeyPatch()
    with running_emulator(home / "zoho", users=1, extra_args=["--users-file", str(users)]) as emu:
        env = {
            "DENTRIX_ZOHO_HOME": str(home),
            "DENTRIX_SOURCE": f"sqlite:///{practice}",
            "DENTRIX_IMAGE_DIR": str(files.images_dir),
            "DENTRIX_PROVIDER_MAP": str(provider_map),
            "DENTRIX_AS_OF": "2026-11-01",
            "ZOHO_API_BASE": emu.base_url,
            "ZOHO_ACCOUNTS_URL": emu.base_url,
            "ZOHO_UPLOAD_URL": emu.base_url,
            "ZOHO_CLIENT_ID": emu.client_id,
            "ZOHO_CLIENT_SECRET": emu.client_secret,
            "ZOHO_REFRESH_TOKEN": emu.refresh_token,
            "ZOHO_EDITION": "enterprise",
        }
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("ZOHO_DC", raising=False)
        from dentrix_zoho.definitions import build_definitions

        try:
            yield build_definitions(), home, emu
        finally:
            mp.undo()


def _run(defs: dg.Definitions, name: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False)


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_sample_then_gate_then_full_then_nothing_to_send(migration_env) -> None:  # type: ignore[no-untyped-def]
    defs, home, emu = migration_env
    instance = dg.DagsterInstance.ephemeral()

    sample = _run(defs, "sample_migration", instance)
    assert sample.success
    assert (home / "reports" / "diff_report_office-1.html").exists()
    sample_contacts = len(emu.snapshot()["modules"].get("Contacts", []))
    assert 0 < sample_contacts < 200

    # Not approved yet: the blocking gate fails and no load step runs.
    gated = _run(defs, "full_migration", instance)
    assert not gated.success
    evaluations = {e.check_name: e.passed for e in gated.get_asset_check_evaluations()}
    assert evaluations.get("mapping_approved") is False
    assert not any(key.startswith("zoho_load/") and key != "zoho_load/mapping_approval"
                   and key not in ("zoho_load/schema_setup", "zoho_load/owner_resolution")
                   for key in _materialized(gated))
    assert len(emu.snapshot()["modules"].get("Contacts", [])) == sample_contacts

    approve_spec(Ledger(f"sqlite:///{home / 'ledger.sqlite'}"), "pytest")
    full = _run(defs, "full_migration", instance)
    assert full.success, [e.check_name for e in full.get_asset_check_evaluations() if not e.passed]
    checks = {e.check_name: e.passed for e in full.get_asset_check_evaluations()}
    assert checks["zero_loss"] and checks["balances"] and checks["parents"]
    after_full = emu.snapshot()
    assert len(after_full["modules"]["Contacts"]) > sample_contacts
    # The figures a data engineer charts over runs are numbers on the materializations, so the UI plots them.
    figures = {"/".join(e.asset_key.path): e.materialization.metadata for e in full.get_asset_materialization_events()}
    reconciliation = figures["zoho_load/reconciliation"]
    assert reconciliation["calls"].value > 0 and reconciliation["credits"].value >= reconciliation["calls"].value
    assert isinstance(reconciliation["seconds"].value, float)
    assert isinstance(figures["zoho_shaped/contacts"]["seconds"].value, float)
    assert isinstance(figures["zoho_shaped/contacts"]["quarantined"].value, int)
    contacts = figures["zoho_load/patients"]
    assert all(isinstance(contacts[k].value, (int, float)) for k in ("dagster/row_count", "credits", "seconds"))

    again = _run(defs, "full_migration", instance)
    assert again.success
    sent = [
        e.materialization.metadata["sent"].value
        for e in again.get_asset_materialization_events()
        if e.asset_key.path[0] == "zoho_load" and "sent" in e.materialization.metadata
    ]
    assert sent and all(n == 0 for n in sent)
    assert emu.snapshot()["modules"] == after_full["modules"]


def _write_calls(usage: dict) -> dict[str, int]:  # type: ignore[type-arg]
    """Write calls per endpoint (method + path template) from the emulator's usage counters."""
    return {k: v for k, v in usage["calls"].items() if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH")
            and "oauth" not in k and "coql" not in k}


def test_delta_sends_exactly_the_changes(migration_env) -> None:  # type: ignore[no-untyped-def]
    """One patient edited, one appointment added, one deleted: one upsert each and one delete, nothing else."""
    import sqlite3

    defs, home, emu = migration_env
    instance = dg.DagsterInstance.ephemeral()
    ledger = Ledger(f"sqlite:///{home / 'ledger.sqlite'}")
    events = [r for r in ledger.crosswalk_rows(module="Events", deleted=False) if r.source_object == "appt"]
    contacts = [r for r in ledger.crosswalk_rows(module="Contacts", deleted=False) if r.source_object == "patient"]
    assert events and contacts
    gone_appt = events[0].source_id.rsplit(":", 1)[1]
    stamp = "2026-11-26 12:00:00"
    with sqlite3.connect(home / "practice.db") as db:
        db.row_factory = sqlite3.Row
        # A patient without insurance: re-sending an insurance subform costs one more call (Zoho appends
        # subform rows, so the loader empties them first), which is needed but not what this test counts.
        uninsured = {str(r[0]) for r in db.execute(
            "SELECT patid FROM patient WHERE coalesce(priminsuredid, 0) = 0 AND coalesce(secinsuredid, 0) = 0")}
        edited_patid = next(c.source_id.rsplit(":", 1)[1] for c in contacts if c.source_id.rsplit(":", 1)[1] in uninsured)
        # A new e-mail touches only the Contact (a new name would also retitle the patient's events and notes).
        db.execute("UPDATE patient SET emailaddr = 'moved.away@example.org', automodifiedtimestamp = ? WHERE patid = ?",
                   [stamp, int(edited_patid)])
        template = dict(db.execute("SELECT * FROM appt WHERE patid = ? LIMIT 1", [int(edited_patid)]).fetchone()
                        or db.execute("SELECT * FROM appt WHERE patid <> 0 LIMIT 1").fetchone())
        template["apptid"] = db.execute("SELECT max(apptid) + 1 FROM appt").fetchone()[0]
        template["apptdate"] = "2026-12-01 00:00:00"
        template["automodifiedtimestamp"] = stamp
        db.execute(f"INSERT INTO appt ({', '.join(template)}) VALUES ({', '.join('?' * len(template))})",
                   list(template.values()))
        patid = db.execute("SELECT patid FROM appt WHERE apptid = ?", [int(gone_appt)]).fetchone()[0]
        db.execute("DELETE FROM appt WHERE apptid = ?", [int(gone_appt)])
        db.execute(
            "INSERT INTO appthist (apptid, parentapptid, patid, deletedflag, createflag, lastflag, automodifiedtimestamp) "
            "VALUES ((SELECT max(apptid) + 1 FROM appthist), ?, ?, 1, 0, 1, ?)",
            [int(gone_appt), patid, stamp],
        )
    approve_spec(ledger, "pytest")  # idempotent: the same spec stays approved
    before = _write_calls(emu.usage())
    delta = _run(defs, "delta_migration", instance)
    assert delta.success, [e.check_name for e in delta.get_asset_check_evaluations() if not e.passed]
    after = _write_calls(emu.usage())
    writes = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert sum(v for k, v in writes.items() if "upsert" in k) == 2, writes  # the patient, the new appointment
    assert sum(v for k, v in writes.items() if k.startswith("DELETE")) == 1, writes  # the deleted appointment
    assert sum(writes.values()) == 3, writes
    assert ledger.lookup("office-1", "appt", events[0].source_id).deleted


def test_a_person_edit_in_zoho_wins_over_a_delta(migration_env) -> None:  # type: ignore[no-untyped-def]
    """Someone edits a migrated Contact in Zoho; Dentrix then changes the same patient: not overwritten, reported."""
    import sqlite3

    import httpx

    defs, home, emu = migration_env
    instance = dg.DagsterInstance.ephemeral()
    ledger = Ledger(f"sqlite:///{home / 'ledger.sqlite'}")
    with sqlite3.connect(home / "practice.db") as db:
        uninsured = {str(r[0]) for r in db.execute(
            "SELECT patid FROM patient WHERE coalesce(priminsuredid, 0) = 0 AND coalesce(secinsuredid, 0) = 0")}
    target = next(r for r in ledger.crosswalk_rows(module="Contacts", deleted=False)
                  if r.source_object == "patient" and r.source_id.rsplit(":", 1)[1] in uninsured
                  and r.zoho_modified_time)
    patid = int(target.source_id.rsplit(":", 1)[1])

    # The office manager, a person with their own Zoho login, edits the Contact.
    with httpx.Client(base_url=emu.base_url, timeout=10) as http:
        token = http.post("/oauth/v2/token", data={
            "grant_type": "refresh_token", "client_id": emu.client_id, "client_secret": emu.client_secret,
            "refresh_token": emu.refresh_token}).json()["access_token"]
        users = http.get("/crm/v8/users", params={"type": "ActiveUsers"},
                         headers={"Authorization": f"Zoho-oauthtoken {token}"}).json()["users"]
        manager = next(u["id"] for u in users if u["email"] == "office.manager@dental.example.com")
        code = http.post("/__emulator__/grant-code", params={"scope": "ZohoCRM.modules.ALL", "user_id": manager})
        person = http.post("/oauth/v2/token", data={
            "grant_type": "authorization_code", "code": code.json()["code"], "client_id": emu.client_id,
            "client_secret": emu.client_secret}).json()["access_token"]
        emu.advance_clock(5)  # a person's edit comes later than our write
        edited = http.put("/crm/v8/Contacts", json={"data": [{"id": target.zoho_id, "Description": "called: moved"}]},
                          headers={"Authorization": f"Zoho-oauthtoken {person}"})
        assert edited.status_code == 200, edited.text

    with sqlite3.connect(home / "practice.db") as db:
        db.execute("UPDATE patient SET emailaddr = 'second.move@example.org', automodifiedtimestamp = "
                   "'2026-11-26 13:00:00' WHERE patid = ?", [patid])
    delta = _run(defs, "delta_migration", instance)
    assert delta.success, [e.check_name for e in delta.get_asset_check_evaluations() if not e.passed]

    record = next(r for r in emu.snapshot()["modules"]["Contacts"] if r["id"] == target.zoho_id)
    assert record.get("Description") == "called: moved"
    assert record.get("Email") != "second.move@example.org"
    held = [q for q in ledger.quarantine_rows() if q.source_id == target.source_id]
    assert held and held[-1].value_class == "human_edited"
    assert any(e.code == "HUMAN_EDITED" and e.source_id == target.source_id for e in ledger.audit_entries())
    plan = (home / "reports" / "remigration_plan_office-1.md").read_text()
    assert "a person changed this record in Zoho" in plan
