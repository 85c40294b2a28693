"""The cutover window: the 24-48 hours after the full run during which Dentrix changes are picked up.

Configured in a small YAML file (``DENTRIX_CUTOVER_FILE``) or in the environment::

    DENTRIX_CUTOVER_START=2026-11-27T18:00:00-07:00   # ISO 8601, with a UTC offset
    DENTRIX_CUTOVER_HOURS=36                          # 24 to 48
    DENTRIX_CUTOVER_POLL_SECONDS=300                  # how often the sensor looks
    DENTRIX_CUTOVER_DELETIONS=delete                  # delete | mark

The YAML file uses the field names (``start``, ``length_hours``,
``poll_interval_seconds``, ``deletion_policy``). Errors name the file and line,
or the environment variable, at fault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DeletionPolicy = Literal["delete", "mark"]

MIN_HOURS = 24
MAX_HOURS = 48
DEFAULT_POLL_SECONDS = 300

ENV_FILE = "DENTRIX_CUTOVER_FILE"
ENV_KEYS: dict[str, str] = {
    "start": "DENTRIX_CUTOVER_START",
    "length_hours": "DENTRIX_CUTOVER_HOURS",
    "poll_interval_seconds": "DENTRIX_CUTOVER_POLL_SECONDS",
    "deletion_policy": "DENTRIX_CUTOVER_DELETIONS",
}


class CutoverConfigError(ValueError):
    """The cutover window configuration is wrong; the message names the key at fault."""


@dataclass(frozen=True)
class WindowState:
    open: bool
    reason: str


class CutoverWindow(BaseModel):
    """When the delta pickup runs, how often it polls, and what a Dentrix deletion does in Zoho."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime = Field(description="When the window opens (ISO 8601 with a UTC offset).")
    length_hours: float = Field(
        default=MAX_HOURS, ge=MIN_HOURS, le=MAX_HOURS, description="How long the window stays open."
    )
    poll_interval_seconds: int = Field(
        default=DEFAULT_POLL_SECONDS, ge=30, le=6 * 3600, description="Minimum time between two sensor looks."
    )
    deletion_policy: DeletionPolicy = Field(
        default="delete",
        description="delete: delete the Zoho record; mark: keep it and mark it deleted in Dentrix.",
    )

    @field_validator("start")
    @classmethod
    def _start_has_a_time_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "must carry a UTC offset (e.g. 2026-11-27T18:00:00-07:00): Dentrix keeps local time "
                "and a window without a zone would open at the wrong hour"
            )
        return value

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.length_hours)

    def state(self, now: datetime) -> WindowState:
        if now.tzinfo is None:
            raise ValueError("now must be time-zone aware")
        if now < self.start:
            return WindowState(False, f"the cutover window opens at {self.start.isoformat()} (in {_span(self.start - now)})")
        if now >= self.end:
            return WindowState(False, f"the cutover window closed at {self.end.isoformat()} ({_span(now - self.end)} ago)")
        return WindowState(True, f"the cutover window is open until {self.end.isoformat()} ({_span(self.end - now)} left)")


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _messages(exc: ValidationError, where: Mapping[str, str], prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else "<top>"
        lines.append(f"{where.get(key, prefix + key)}: {err['msg']}")
    return "; ".join(lines)


def window_from_mapping(data: Mapping[str, Any], *, origin: str = "<config>") -> CutoverWindow:
    try:
        return CutoverWindow.model_validate(dict(data))
    except ValidationError as exc:
        raise CutoverConfigError(f"invalid cutover window: {_messages(exc, {}, f'{origin}: ')}") from None


def window_from_env(environ: Mapping[str, str] | None = None) -> CutoverWindow | None:
    """The window from ``DENTRIX_CUTOVER_*``; None when ``DENTRIX_CUTOVER_START`` is unset."""
    env = os.environ if environ is None else environ
    if not (env.get(ENV_KEYS["start"]) or "").strip():
        return None
    data = {field: env[var].strip() for field, var in ENV_KEYS.items() if (env.get(var) or "").strip()}
    try:
        return CutoverWindow.model_validate(data)
    except ValidationError as exc:
        raise CutoverConfigError(f"invalid cutover window: {_messages(exc, ENV_KEYS)}") from None


def window_from_yaml(path: Path | str) -> CutoverWindow:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CutoverConfigError(f"{path}: cannot read the cutover window file ({exc.strerror})") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise CutoverConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise CutoverConfigError(f"{path}: the cutover window must be a YAML mapping of {', '.join(ENV_KEYS)}")
    lines: dict[str, str] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            lines[str(key_node.value)] = f"{path}:{key_node.start_mark.line + 1}: {key_node.value}"
    try:
        return CutoverWindow.model_validate(data)
    except ValidationError as exc:
        raise CutoverConfigError(f"invalid cutover window: {_messages(exc, lines, f'{path}: ')}") from None


def load_cutover_window(environ: Mapping[str, str] | None = None) -> CutoverWindow | None:
    """``DENTRIX_CUTOVER_FILE`` if set, else ``DENTRIX_CUTOVER_*``; None when neither configures a window."""
    env = os.environ if environ is None else environ
    file = (env.get(ENV_FILE) or "").strip()
    if file:
        return window_from_yaml(file)
    return window_from_env(env)
