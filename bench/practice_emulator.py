"""One emulator set up for a synthetic practice, as the migration benches need it.

The practice's provider map with a default owner, a Zoho user for each of its e-mails, and
an emulator with those users; the caller gets the emulator, the environment a ``ZohoConfig``
reads, and the provider map the owners are resolved from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

OWNER_EMAIL = "office.manager@dental.example.com"


class PracticeZoho(NamedTuple):
    emulator: Any  # zoho_emulator.testing's handle
    env: dict[str, str]  # what ZohoConfig.from_env reads
    provider_map: Any  # ProviderMap with the default owner
    users: int  # Zoho users the emulator knows: the owner and every mapped provider's e-mail


@contextlib.contextmanager
def practice_emulator(
    tmp: Path, provider_map: Path, *, edition: str, latency_ms: float
) -> Iterator[PracticeZoho]:
    """The emulator, its Zoho environment and the provider map for a practice whose provider map is ``provider_map``."""
    from dentrix_zoho.source.provider_map import ProviderMap, load_provider_map
    from dentrix_zoho.zoho_emulator.testing import running_emulator

    pmap = load_provider_map(provider_map)
    pmap = ProviderMap.model_validate({"providers": pmap.providers, "default_owner_email": OWNER_EMAIL})
    emails = [OWNER_EMAIL, *[v for v in pmap.providers.values() if v]]
    users = tmp / "users.yaml"
    users.write_text("users:\n" + "".join(f"  - {{first_name: U{i}, last_name: Staff, email: {e}}}\n"
                                          for i, e in enumerate(emails)), encoding="utf-8")
    with running_emulator(tmp / "zoho", edition=edition, users=1, latency_ms=latency_ms,
                          extra_args=["--users-file", str(users), "--token-mint-limit", "0"]) as emu:
        env = {"ZOHO_API_BASE": emu.base_url, "ZOHO_ACCOUNTS_URL": emu.base_url, "ZOHO_UPLOAD_URL": emu.base_url,
               "ZOHO_CLIENT_ID": emu.client_id, "ZOHO_CLIENT_SECRET": emu.client_secret,
               "ZOHO_REFRESH_TOKEN": emu.refresh_token, "ZOHO_EDITION": edition}
        yield PracticeZoho(emu, env, pmap, len(emails))
