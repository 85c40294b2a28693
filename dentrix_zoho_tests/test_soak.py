"""The fault soak (``bench/soak.py``): its comparison can fail, and the small soak passes with kills that land.

The slow test runs ``python -m bench.soak --size small`` as a subprocess from the repository
root: the tiny practice migrated once into a clean emulator and once into a faulty one
(429/5xx/dropped connections) with every phase SIGKILLed and resumed; Zoho's records are then
compared record by record.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _snapshot() -> dict:
    return {"modules": {
        "Contacts": [
            {"id": "1", "Source_System_ID": "office-1:patient:1", "Last_Name": "A", "Modified_Time": "t1",
             "Owner": {"id": "u1", "name": "Owner"}},
            {"id": "2", "Source_System_ID": "office-1:patient:2", "Last_Name": "B", "Modified_Time": "t1",
             "Related_Party": {"id": "1", "name": "A"}},
        ],
        "Notes": [
            {"id": "10", "Note_Title": "Clinical note", "Note_Content": "text", "Parent_Id": {"id": "2"}},
        ],
        "Attachments": [
            {"id": "20", "File_Name": "x.pdf", "Size": "10", "Parent_Id": {"id": "1"}},
        ],
    }}


def _renumbered(snapshot: dict) -> dict:
    """The same records under other Zoho ids and times, as a second emulator would hold them."""
    out = copy.deepcopy(snapshot)
    for records in out["modules"].values():
        for record in records:
            record["id"] = "9" + record["id"]
            if "Modified_Time" in record:
                record["Modified_Time"] = "t2"
            for value in record.values():
                if isinstance(value, dict) and value.get("id", "").isdigit():
                    value["id"] = "9" + value["id"]
    return out


def test_compare_ignores_ids_and_times_and_follows_lookups() -> None:
    from bench.soak import compare

    result = compare(_snapshot(), _renumbered(_snapshot()), "Source_System_ID")
    assert result["totals"] == {"compared": 4, "lost": 0, "duplicated": 0, "extra": 0, "differing": 0}


def test_compare_counts_lost_duplicated_and_differing_records() -> None:
    from bench.soak import compare

    faulty = _renumbered(_snapshot())
    modules = faulty["modules"]
    modules["Notes"].append(dict(modules["Notes"][0], id="911"))  # the same note created twice
    del modules["Attachments"][0]  # a file never uploaded
    modules["Contacts"][1]["Related_Party"] = None  # a lookup lost
    result = compare(_snapshot(), faulty, "Source_System_ID")
    assert result["totals"] == {"compared": 4, "lost": 1, "duplicated": 1, "extra": 0, "differing": 1}
    assert result["examples"]["differing"] == ["Contacts office-1:patient:2: Related_Party"]
    assert result["differing_fields"] == {"Contacts.Related_Party": 1}
    # Keys name the record, never its content (a note's text is patient data).
    assert all("text" not in example for examples in result["examples"].values() for example in examples)


def test_an_empty_subform_equals_none_but_a_doubled_one_differs() -> None:
    from bench.soak import compare

    plan = {"Plan_Type": "Primary", "Carrier": "Delta"}
    clean = _snapshot()
    clean["modules"]["Contacts"][0]["Insurance_Plans"] = None
    clean["modules"]["Contacts"][1]["Insurance_Plans"] = [plan]
    faulty = _renumbered(clean)
    faulty["modules"]["Contacts"][0]["Insurance_Plans"] = []  # no rows either way: an update sent []
    assert compare(clean, faulty, "Source_System_ID")["totals"]["differing"] == 0
    faulty["modules"]["Contacts"][1]["Insurance_Plans"] = [plan, dict(plan)]  # a resend appended the rows
    result = compare(clean, faulty, "Source_System_ID")
    assert result["totals"]["differing"] == 1
    assert result["differing_fields"] == {"Contacts.Insurance_Plans": 1}


@pytest.mark.slow
def test_small_soak_loses_nothing_with_kills_in_every_phase(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--size", "small", "--seed", "3", "--kills", "1",
         "--out", str(tmp_path / "soak"), "--max-minutes", "8"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=560,
    )
    report_path = tmp_path / "soak" / "soak_report.json"
    assert report_path.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["error"] is None, report["error"]
    # Every phase but the map approval was killed at least once mid-way and then completed.
    for name, phase in report["phases"].items():
        assert phase["completed"], name
        if name not in ("approve", "simulate"):
            assert phase["kills"] >= 1, f"no kill landed in {name}"
    # Kills landed in API traffic, not only before it.
    assert sum(1 for p in report["phases"].values() for calls in p["kill_calls"] if calls > 0) >= 5
    assert report["faults_injected"].get("429", 0) > 0 and report["faults_injected"].get("drop", 0) > 0
    assert all(c["passed"] for c in report["accounting"]["faulty"].values()), report["accounting"]
    assert report["ledger_verify"]["faulty"]["ok"] and report["ledger_verify"]["clean"]["ok"]
    for checkpoint in ("after_load", "after_delta", "final"):
        comparison = report["comparison"][checkpoint]
        totals = comparison["totals"]
        assert totals["compared"] > 1000, checkpoint
        assert (totals["lost"], totals["duplicated"], totals["extra"], totals["differing"]) == (0, 0, 0, 0), (
            checkpoint, comparison.get("differing_fields"), comparison.get("examples"))
    assert proc.returncode == 0, report["verdict"]
