"""The command line: loopback only, option checking, the banner, and the old-version answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dentrix_zoho.zoho_emulator.cli import banner, is_loopback, zoho_emulator
from dentrix_zoho.zoho_emulator.config import DEMO_CLIENT_SECRET, EmulatorConfig, daily_credit_limit

from .conftest import Zoho


@pytest.mark.parametrize(("host", "expected"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                 ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False),
                                                 ("example.org", False)])
def test_loopback_detection(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_non_loopback_bind_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(zoho_emulator, ["--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "--allow-non-loopback" in result.output


def test_bad_fault_spec_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(zoho_emulator, ["--faults", "418=0.5", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "418=0.5" in result.output


def test_bad_users_file_names_the_file_and_key(tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    users.write_text("users:\n  - {first_name: A, last_name: B, email: not-an-email}\n")
    result = CliRunner().invoke(zoho_emulator, ["--users-file", str(users), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "users.yaml" in result.output and "users.0.email" in result.output


def test_banner_prints_demo_credentials_or_names_the_env_vars(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    config = EmulatorConfig(data_dir=tmp_path)
    monkeypatch.delenv("ZOHO_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("ZOHO_CLIENT_ID", "1000.MINE")
    monkeypatch.setenv("ZOHO_REFRESH_TOKEN", "1000.secret.refresh")
    config.load_credentials_from_env()
    text = banner(config)
    assert "http://127.0.0.1:8765" in text and "1000.MINE" in text and DEMO_CLIENT_SECRET in text
    assert "1000.secret.refresh" not in text and "$ZOHO_REFRESH_TOKEN" in text
    assert config.refresh_token == "1000.secret.refresh"


def test_credit_formula() -> None:
    assert daily_credit_limit("free", 50) == 5_000
    assert daily_credit_limit("professional", 10) == 55_000
    assert daily_credit_limit("enterprise", 10_000) == 5_000_000
    assert daily_credit_limit("ultimate", 10_000) == 20_050_000


def test_other_api_versions_are_not_supported(zoho: Zoho) -> None:
    response = zoho.http.get(f"{zoho.handle.base_url}/crm/v2/Contacts")
    assert response.status_code == 400 and response.json()["code"] == "API_NOT_SUPPORTED"


def test_running_emulator_moves_to_another_port_when_its_port_is_taken(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from dentrix_zoho.zoho_emulator import testing

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real_free_port = testing.free_port
        monkeypatch.setattr(testing, "free_port", lambda: next(ports, None) or real_free_port())
        with testing.running_emulator(tmp_path) as handle:
            assert not handle.base_url.endswith(f":{busy}")
            assert Zoho(handle).get("/org").status_code == 200
