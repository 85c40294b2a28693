"""Zoho data centres: accounts, API and upload hosts (Zoho Accounts multi-DC: https://www.zoho.com/accounts/protocol/oauth/multi-dc.html)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

DataCentre = Literal["US", "EU", "IN", "AU", "JP", "CN", "CA", "SA"]
Environment = Literal["production", "sandbox", "developer"]

# dc -> (accounts server, top-level domain of the API hosts, upload host)
_DC_TABLE: dict[str, tuple[str, str, str]] = {
    "US": ("https://accounts.zoho.com", "com", "https://content.zohoapis.com"),
    "EU": ("https://accounts.zoho.eu", "eu", "https://content.zohoapis.eu"),
    "IN": ("https://accounts.zoho.in", "in", "https://content.zohoapis.in"),
    "AU": ("https://accounts.zoho.com.au", "com.au", "https://content.zohoapis.com.au"),
    "JP": ("https://accounts.zoho.jp", "jp", "https://content.zohoapis.jp"),
    "CN": ("https://accounts.zoho.com.cn", "com.cn", "https://content.zohoapis.com.cn"),
    "CA": ("https://accounts.zohocloud.ca", "ca", "https://upload.zohocloud.ca"),
    "SA": ("https://accounts.zoho.sa", "sa", "https://files.zoho.sa"),
}
DATA_CENTRES: tuple[str, ...] = tuple(_DC_TABLE)

_API_PREFIX: dict[str, str] = {"production": "www", "sandbox": "sandbox", "developer": "developer"}


@dataclass(frozen=True)
class ZohoUrls:
    """Base URLs without a trailing slash; the client appends the paths."""

    accounts_url: str
    api_base: str
    upload_url: str

    @property
    def token_url(self) -> str:
        return f"{self.accounts_url}/oauth/v2/token"


def dc_urls(dc: str, environment: str = "production") -> ZohoUrls:
    """The hosts of one data centre; sandbox and developer share its accounts server."""
    key = dc.strip().upper()
    if key not in _DC_TABLE:
        raise ValueError(f"unknown Zoho data centre {dc!r}; expected one of {', '.join(DATA_CENTRES)}")
    if environment not in _API_PREFIX:
        raise ValueError(
            f"unknown Zoho environment {environment!r}; expected production, sandbox or developer"
        )
    accounts, tld, upload = _DC_TABLE[key]
    return ZohoUrls(
        accounts_url=accounts,
        api_base=f"https://{_API_PREFIX[environment]}.zohoapis.{tld}",
        upload_url=upload,
    )


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, what: str) -> str:
    """Normalise a base URL and refuse plain HTTP to anything but loopback."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL, got {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"{what} must use https (plain http is allowed only on loopback): {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must not carry a query or fragment")
    return url
