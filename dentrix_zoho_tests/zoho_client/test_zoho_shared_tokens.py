"""Clients built per asset share one access token: Zoho lets a refresh token mint only 10 per 10 minutes."""

from __future__ import annotations

from pathlib import Path

from dentrix_zoho.zoho import ZohoClient, ZohoConfig
from dentrix_zoho.zoho.auth import TokenCache
from dentrix_zoho.zoho_emulator.testing import running_emulator


def _config(base_url: str, client_id: str, secret: str, refresh: str) -> ZohoConfig:
    env = {
        "ZOHO_API_BASE": base_url,
        "ZOHO_ACCOUNTS_URL": base_url,
        "ZOHO_UPLOAD_URL": base_url,
        "ZOHO_CLIENT_ID": client_id,
        "ZOHO_CLIENT_SECRET": secret,
        "ZOHO_REFRESH_TOKEN": refresh,
        "ZOHO_EDITION": "enterprise",
    }
    return ZohoConfig.from_env(env)


def test_fifteen_clients_sharing_a_cache_mint_one_token(tmp_path: Path) -> None:
    cache = TokenCache()
    with running_emulator(tmp_path / "zoho") as emu:
        config = _config(emu.base_url, emu.client_id, emu.client_secret, emu.refresh_token)
        for _ in range(15):  # more than the emulator's 10-per-10-minutes minting limit
            with ZohoClient(config, token_cache=cache) as client:
                assert client.org()["zgid"]
        minted = sum(
            n for path, n in emu.usage()["calls"].items() if "oauth" in path
        )
    assert minted == 1


def test_clients_without_a_cache_each_mint(tmp_path: Path) -> None:
    with running_emulator(tmp_path / "zoho") as emu:
        config = _config(emu.base_url, emu.client_id, emu.client_secret, emu.refresh_token)
        for _ in range(3):
            with ZohoClient(config) as client:
                client.org()
        minted = sum(
            n for path, n in emu.usage()["calls"].items() if "oauth" in path
        )
    assert minted == 3
