"""Keep query strings out of httpx's own log lines.

httpx logs every request's full URL at INFO; a Zoho search URL can carry an
e-mail or a phone number (``/search?email=…``). This filter rewrites those
lines to the URL without its query, and is installed once per process.
"""

from __future__ import annotations

import logging
import threading

import httpx

_installed = False
_lock = threading.Lock()


class StripQueryFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                a.copy_with(query=None) if isinstance(a, httpx.URL) and a.query else a for a in record.args
            )
        return True


def install() -> None:
    global _installed
    with _lock:
        if not _installed:
            logging.getLogger("httpx").addFilter(StripQueryFilter())
            _installed = True
