"""The cutover sensor: during the window, a delta run whenever Dentrix changed; outside it, a skip."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import dagster as dg

from dentrix_zoho.cutover.probe import (
    DEFAULT_PROBE_OBJECTS,
    Fingerprint,
    change_fingerprint,
    fingerprint_changed,
    fingerprint_from_json,
    fingerprint_to_json,
)
from dentrix_zoho.cutover.window import (
    DEFAULT_POLL_SECONDS,
    ENV_KEYS,
    CutoverConfigError,
    CutoverWindow,
    load_cutover_window,
)
from dentrix_zoho.defs.source.resources import DentrixSourceResource
from dentrix_zoho.defs.workspace_resource import OfficeScope, WorkspaceResource
from dentrix_zoho.source.connection import DentrixConnection

if TYPE_CHECKING:
    from dentrix_zoho.defs.offices import AnyJob

    from dentrix_zoho.offices import Offices

log = logging.getLogger(__name__)

WindowLoader = Callable[[], CutoverWindow | None]
FingerprintFn = Callable[[DentrixConnection, Iterable[str]], Fingerprint]
Clock = Callable[[], datetime]

TRIGGER_TAG = "dentrix_zoho/trigger"
DELETION_POLICY_TAG = "dentrix_zoho/deletion_policy"
CHANGED_OBJECTS_TAG = "dentrix_zoho/changed_objects"
NO_WINDOW = (
    f"no cutover window is configured: set {ENV_KEYS['start']} (and {ENV_KEYS['length_hours']}) "
    "or DENTRIX_CUTOVER_FILE"
)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def poll_interval(window_loader: WindowLoader) -> int:
    """The window's poll interval, read once when the definitions load.

    A missing or broken window must not stop the code location from loading: the
    sensor then polls at the default and reports the problem on every tick.
    """
    try:
        window = window_loader()
    except CutoverConfigError as exc:
        log.warning("cutover sensor polls every %ss: %s", DEFAULT_POLL_SECONDS, exc)
        return DEFAULT_POLL_SECONDS
    return window.poll_interval_seconds if window else DEFAULT_POLL_SECONDS


def run_key_for(fingerprint: Fingerprint) -> str:
    """One run key per state of Dentrix: Dagster never launches the same key twice."""
    return "cutover-" + hashlib.sha256(fingerprint_to_json(fingerprint).encode()).hexdigest()[:20]


def _newest(fingerprint: Fingerprint | None) -> str:
    stamps = [v.max_modified for v in (fingerprint or {}).values() if v.max_modified]
    return max(stamps) if stamps else "the last check"


def _changed_tag(changed: list[str]) -> str:
    text = ",".join(changed)
    return text if len(text) <= 200 else f"{len(changed)} objects"


def build_cutover_sensor(
    job: AnyJob,
    window_loader: WindowLoader = load_cutover_window,
    fingerprint_fn: FingerprintFn = change_fingerprint,
    *,
    objects: Iterable[str] = DEFAULT_PROBE_OBJECTS,
    clock: Clock = utc_now,
    name: str = "cutover_delta_sensor",
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """A sensor that requests ``job`` (the delta run) when the Dentrix fingerprint moves inside the window.

    The cursor is the JSON of the last fingerprint that led to a run request, and
    the run key is a hash of it: the same state of Dentrix never launches twice.
    """
    probed = tuple(objects)

    @dg.sensor(
        job=job,
        name=name,
        minimum_interval_seconds=poll_interval(window_loader),
        default_status=default_status,
        description=(
            "During the cutover window, probes Dentrix (max modified time and row count per table) "
            "and requests a delta run when anything changed; skips outside the window."
        ),
    )
    def cutover_sensor(context: dg.SensorEvaluationContext, dentrix: DentrixSourceResource) -> dg.SensorResult | dg.SkipReason:
        window = window_loader()
        if window is None:
            return dg.SkipReason(f"outside the cutover window: {NO_WINDOW}")
        state = window.state(clock())
        if not state.open:
            return dg.SkipReason(f"outside the cutover window: {state.reason}")
        with dentrix.open() as conn:
            fingerprint = fingerprint_fn(conn, probed)
        previous = fingerprint_from_json(context.cursor)
        changed = fingerprint_changed(previous, fingerprint)
        if not changed:
            return dg.SkipReason(f"no Dentrix changes since {_newest(previous)} ({state.reason})")
        if previous is None:
            context.log.info("first look inside the cutover window: requesting a delta run")
        else:
            context.log.info(f"Dentrix changed in {len(changed)} object(s): {', '.join(changed)}")
        request = dg.RunRequest(
            run_key=run_key_for(fingerprint),
            tags={
                TRIGGER_TAG: "cutover_sensor",
                DELETION_POLICY_TAG: window.deletion_policy,
                CHANGED_OBJECTS_TAG: _changed_tag(changed),
            },
        )
        return dg.SensorResult(run_requests=[request], cursor=fingerprint_to_json(fingerprint))

    return cutover_sensor


OfficesNow = Callable[[WorkspaceResource], "Offices"]


def build_office_cutover_sensor(
    job: AnyJob,
    offices_loader: OfficesNow,
    fingerprint_fn: FingerprintFn = change_fingerprint,
    *,
    objects: Iterable[str] = DEFAULT_PROBE_OBJECTS,
    clock: Clock = utc_now,
    name: str = "cutover_delta_sensor",
    minimum_interval_seconds: int = DEFAULT_POLL_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """With an offices file: each office's own window and fingerprint, a delta run for its partition.

    The cursor maps office id -> the JSON of its last fingerprint that led to a run request. An office
    whose Dentrix cannot be reached is reported and skipped; the others are still probed.
    """
    import json

    from dentrix_zoho.defs.offices import OFFICES_PARTITIONS_NAME

    probed = tuple(objects)

    @dg.sensor(
        job=job,
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "For each office whose cutover window (offices file) is open, probes its Dentrix (max modified "
            "time and row count per table) and requests a delta run of its partition when anything changed."
        ),
    )
    def cutover_sensor(
        context: dg.SensorEvaluationContext, dentrix: DentrixSourceResource, workspace: WorkspaceResource
    ) -> dg.SensorResult | dg.SkipReason:
        offices = offices_loader(workspace)
        partitions = set(context.instance.get_dynamic_partitions(OFFICES_PARTITIONS_NAME))
        cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        now = clock()
        requests: list[dg.RunRequest] = []
        skipped: list[str] = []
        for office in offices:
            if office.cutover is None:
                skipped.append(f"{office.office_id}: no cutover window")
                continue
            state = office.cutover.state(now)
            if not state.open:
                skipped.append(f"{office.office_id}: {state.reason}")
                continue
            if office.office_id not in partitions:
                skipped.append(f"{office.office_id}: no partition yet (the offices sensor adds it)")
                continue
            try:
                with dentrix.open(OfficeScope.of(office, workspace.resolved_ledger_url)) as conn:
                    fingerprint = fingerprint_fn(conn, probed)
            except dg.Failure as exc:
                context.log.warning(exc.description or f"office {office.office_id}: Dentrix not reachable")
                skipped.append(f"{office.office_id}: Dentrix not reachable")
                continue
            previous = fingerprint_from_json(cursor.get(office.office_id))
            changed = fingerprint_changed(previous, fingerprint)
            if not changed:
                skipped.append(f"{office.office_id}: no Dentrix changes since {_newest(previous)}")
                continue
            context.log.info(f"office {office.office_id}: Dentrix changed in {len(changed)} object(s): "
                             f"{', '.join(changed)}" if previous is not None else
                             f"office {office.office_id}: first look inside its cutover window")
            requests.append(dg.RunRequest(
                run_key=f"{office.office_id}-{run_key_for(fingerprint)}",
                partition_key=office.office_id,
                tags={
                    TRIGGER_TAG: "cutover_sensor",
                    DELETION_POLICY_TAG: office.cutover.deletion_policy,
                    CHANGED_OBJECTS_TAG: _changed_tag(changed),
                },
            ))
            cursor[office.office_id] = fingerprint_to_json(fingerprint)
        if not requests:
            return dg.SkipReason("; ".join(skipped) or "no offices")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return cutover_sensor
