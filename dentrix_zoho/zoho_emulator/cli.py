"""``dentrix-zoho zoho-emulator``: run the emulator on a loopback port."""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

import click

from .config import EDITIONS, EmulatorConfig
from .faults import FaultSpecError, parse_fault_spec
from .users import UsersFileError, load_users_file


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def banner(config: EmulatorConfig) -> str:
    def shown(var: str, value: str, secret: bool) -> str:
        if config.credentials_from_env.get(var):
            return f"(taken from ${var})" if secret else f"{value} (from ${var})"
        return value

    return "\n".join([
        f"Zoho CRM v8 emulator ({config.edition}, {config.users} users) at {config.base_url}",
        f"  accounts/API/upload base URL: {config.base_url}",
        f"  ZOHO_CLIENT_ID={shown('ZOHO_CLIENT_ID', config.client_id, False)}",
        f"  ZOHO_CLIENT_SECRET={shown('ZOHO_CLIENT_SECRET', config.client_secret, True)}",
        f"  ZOHO_REFRESH_TOKEN={shown('ZOHO_REFRESH_TOKEN', config.refresh_token, True)}",
        f"  data: {config.data_dir}",
    ])


@click.command("zoho-emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--edition", type=click.Choice(EDITIONS), default="enterprise", show_default=True)
@click.option("--users", default=5, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(0), help="Mean added per call.")
@click.option("--faults", default=None, help="e.g. 429=0.10,500=0.02,503=0.01,drop=0.01,slow=0.01")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--max-attachment-mb", default=20, show_default=True, type=click.IntRange(1))
@click.option("--token-ttl", default=3600, show_default=True, type=click.IntRange(1), help="Access token life (s).")
@click.option("--credits", default=None, type=click.IntRange(1), help="Override the daily credit limit.")
@click.option("--users-file", default=None, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--subform-edition-gate/--no-subform-edition-gate", default=True, show_default=True)
@click.option("--token-mint-limit", default=10, show_default=True, type=click.IntRange(0),
              help="Access tokens one refresh token may mint per 10 minutes (0: no limit).")
@click.option("--slow-seconds", default=2.0, show_default=True, type=click.FloatRange(0))
@click.option("--index-lag-seconds", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Search and COQL do not see a record until this long after its creation.")
@click.option("--allow-non-loopback", is_flag=True, help="Permit binding an address other than loopback.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def zoho_emulator(host: str, port: int, edition: str, users: int, data_dir: Path, latency_ms: float,
                  faults: str | None, seed: int, max_attachment_mb: int, token_ttl: int, credits: int | None,
                  users_file: Path | None, subform_edition_gate: bool, token_mint_limit: int,
                  slow_seconds: float, index_lag_seconds: float, allow_non_loopback: bool, log_level: str) -> None:
    """Run the local Zoho CRM v8 emulator (accounts, API and upload hosts on one port)."""
    if not is_loopback(host) and not allow_non_loopback:
        raise click.BadParameter(f"{host} is not a loopback address; pass --allow-non-loopback to bind it",
                                 param_hint="--host")
    try:
        parse_fault_spec(faults)
        if users_file:
            load_users_file(users_file)
    except (FaultSpecError, UsersFileError) as error:
        raise click.UsageError(str(error)) from None
    config = EmulatorConfig(
        data_dir=data_dir, host=host, port=port, edition=edition, users=users, latency_ms=latency_ms,
        faults=faults, seed=seed, max_attachment_mb=max_attachment_mb, token_ttl=token_ttl, credits=credits,
        users_file=users_file, subform_edition_gate=subform_edition_gate, token_mint_limit=token_mint_limit,
        slow_seconds=slow_seconds, index_lag_seconds=index_lag_seconds,
    )
    config.load_credentials_from_env()
    data_dir.mkdir(parents=True, exist_ok=True)
    serve(config, log_level)


def serve(config: EmulatorConfig, log_level: str) -> None:
    import uvicorn

    from .app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    click.echo(banner(config))
    sys.stdout.flush()
    uvicorn.run(app, host=config.host, port=config.port, workers=1, http="httptools", loop="uvloop",
                access_log=False, log_level="warning", lifespan="off")
