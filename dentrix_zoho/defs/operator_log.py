"""What a person at the console sees of a Dagster run, and where the rest goes.

Dagster's own event stream (step starts, outputs, type checks: hundreds of DEBUG lines a
run) goes to a log file. The console gets one line per step as it finishes (its assets'
rows, and calls, credits, quarantined where the step reports them, and the time it took),
every progress line (``dentrix_zoho.progress``), warnings, failed checks and failures.
``verbose`` brings the whole stream back to the console.

Everything here is what the steps already put in their log lines and metadata: counts
only, never a record's value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from dentrix_zoho.progress import PROGRESS_PREFIX

FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"
# Materialization metadata summed per step for its console line: (metadata key, label).
STEP_FIGURES: tuple[tuple[str, str], ...] = (
    ("dagster/row_count", "rows"),
    ("api_calls", "calls"),
    ("credits", "credits"),
    ("quarantined", "quarantined"),
)


def _number(value: Any) -> float | None:
    raw = getattr(value, "value", value)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return raw


def _figures(totals: Mapping[str, float]) -> str:
    parts = [f"{int(totals[key]):,} {label}" for key, label in STEP_FIGURES if key in totals]
    return ", ".join(parts)


class OperatorConsole(logging.Handler):
    """The console's few lines, from the records Dagster hands its loggers."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        super().__init__(level=logging.DEBUG)
        self._echo = echo
        self._steps: dict[str, dict[str, Any]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.line_for(record)
        except Exception:  # a console glitch must never fail a run; the file has the record
            return
        if line:
            self._echo(line)

    def line_for(self, record: logging.LogRecord) -> str | None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        if event is None:
            message = str(meta.get("orig_message") or record.getMessage())
            if message.startswith(PROGRESS_PREFIX):
                return "    " + message[len(PROGRESS_PREFIX):]
            if record.levelno >= logging.WARNING:
                return f"  {record.levelname.lower()}: {step}: {message}"
            return None
        kind = event.event_type_value
        data = event.event_specific_data
        if kind == "ASSET_MATERIALIZATION":
            materialization = data.materialization
            entry = self._steps.setdefault(step, {"assets": [], "totals": {}})
            entry["assets"].append(materialization.asset_key.to_user_string())
            for key, _label in STEP_FIGURES:
                number = _number(materialization.metadata.get(key))
                if number is not None:
                    entry["totals"][key] = entry["totals"].get(key, 0) + number
            return None
        if kind == "ASSET_CHECK_EVALUATION" and not data.passed:
            return (f"  check failed: {data.asset_key.to_user_string()}:{data.check_name}"
                    + (f": {data.description}" if data.description else ""))
        if kind == "STEP_SUCCESS":
            entry = self._steps.pop(step, {"assets": [], "totals": {}})
            assets = entry["assets"]
            name = assets[0] if len(assets) == 1 else f"{step} ({len(assets)} assets)" if assets else step
            figures = _figures(entry["totals"])
            return f"  {name}: {figures + ', ' if figures else ''}{data.duration_ms / 1000:.1f}s"
        if kind == "STEP_FAILURE":
            error = getattr(data, "error", None)
            message = (error.message.strip().splitlines() or ["failed"])[0] if error is not None else "failed"
            return f"  FAILED {step}: {message}"
        if kind == "STEP_SKIPPED":
            return f"  skipped {step} (something upstream failed or a blocking check did not pass)"
        return None


def operator_logger(log_file: Path, echo: Callable[[str], None], *, verbose: bool = False) -> dg.LoggerDefinition:
    """A Dagster logger: the whole event stream into ``log_file``, the operator's lines to ``echo``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)

    @dg.logger(description="The whole event stream to a file; a few lines per step to the console.")
    def _operator(_init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("dentrix_zoho.operator", level=logging.DEBUG)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter(FILE_FORMAT))
        logger.addHandler(to_file)
        if verbose:
            everything = logging.StreamHandler()
            everything.setFormatter(logging.Formatter(FILE_FORMAT))
            logger.addHandler(everything)
        else:
            logger.addHandler(OperatorConsole(echo))
        return logger

    return _operator


def python_logs_to(log_file: Path, *, level: int = logging.INFO) -> logging.Handler:
    """The domain code's Python loggers into the same file (the loader's per-batch lines, the client's)."""
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    # httpx logs every request's URL at INFO: a search URL carries its criteria. Not in the file.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    return handler
