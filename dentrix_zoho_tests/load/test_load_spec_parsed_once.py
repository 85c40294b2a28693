"""The mapping spec is parsed once per process per file content, however many load steps ask for it;
each office still gets its own overlays (time zone, Zoho's API names)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dentrix_zoho.defs.load.resources import build_load_context
from dentrix_zoho.defs.load.state import save_owners, save_schema
from dentrix_zoho.defs.workspace_resource import OfficeScope
from dentrix_zoho.defs.zoho_resource import ZohoResource
from dentrix_zoho.ledger import Ledger
from dentrix_zoho.load import OwnerResolution, SchemaResult
from dentrix_zoho.mapping import spec as spec_module
from dentrix_zoho.mapping.spec import default_spec_path, load_spec, spec_hash

STEPS = 6


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every YAML + pydantic parse load_spec makes (the real parse, counted)."""
    seen: list[str] = []
    real = spec_module.parse_spec

    def counted(data: Any, origin: Path | str = "<spec>") -> Any:
        seen.append(str(origin))
        return real(data, origin)

    monkeypatch.setattr(spec_module, "parse_spec", counted)
    monkeypatch.setattr(spec_module, "_parsed", {}, raising=False)  # nothing parsed yet in this "process"
    return seen


def _office(tmp_path: Path, office_id: str, time_zone: str, ledger_url: str) -> OfficeScope:
    home = tmp_path / office_id
    home.mkdir()
    schema = SchemaResult(api_names={"Contacts": {"Chart Number": f"Chart_Number_{office_id}"}})
    save_schema(home, schema)
    save_owners(home, OwnerResolution(user_ids={"DDS1": "u1"}))
    return OfficeScope(office_id=office_id, home_path=home, resolved_ledger_url=ledger_url, time_zone=time_zone,
                       partitioned=True)


def test_n_load_steps_of_two_offices_parse_the_spec_once(parses: list[str], tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    offices = [_office(tmp_path, "o1", "America/Denver", ledger_url),
               _office(tmp_path, "o2", "America/New_York", ledger_url)]
    zoho = ZohoResource(client_id="1000.X", client_secret="s", refresh_token="t", api_base="http://127.0.0.1:9",
                        accounts_url="http://127.0.0.1:9")
    contexts = []
    with Ledger(ledger_url) as ledger:
        for step in range(STEPS):
            office = offices[step % 2]
            # build_load_context reads only the run's id from Dagster's context
            run = SimpleNamespace(run=SimpleNamespace(run_id=f"run-{step}"))
            ctx = build_load_context(run, office, zoho, ledger, scope="full")  # type: ignore[arg-type]
            contexts.append(ctx)
            ctx.client.close()
            spec_hash(load_spec())  # what the load assets also ask for (the run's spec hash)
    assert parses == [str(default_spec_path())]

    # each office's overlays (its time zone, the API names its schema set-up read back), on its own copy
    for ctx in contexts:
        assert ctx.spec.practice.time_zone == {"o1": "America/Denver", "o2": "America/New_York"}[ctx.office_id]
        chart = ctx.spec.custom_field("Contacts", f"Chart_Number_{ctx.office_id}")
        assert chart is not None and chart.label == "Chart Number"
    base = load_spec()
    assert base.practice.time_zone == "America/Chicago"
    assert base.custom_field("Contacts", "Chart_Number") is not None
    assert len(parses) == 1


def test_a_changed_file_is_parsed_again_and_copies_stay_apart(parses: list[str], tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    text = default_spec_path().read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    first = load_spec(path)
    first.practice.time_zone = "Pacific/Honolulu"  # a caller changing its copy
    second = load_spec(path)
    assert second.practice.time_zone != "Pacific/Honolulu"
    assert len(parses) == 1
    path.write_text(text + "\n# reviewed\n", encoding="utf-8")  # same spec, new content: read anew
    assert load_spec(path) == second
    assert len(parses) == 2
