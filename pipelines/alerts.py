"""Alerts: a failed run, or a failed ERROR-severity asset check, POSTed as JSON.

Two sensors read Dagster's event log from their cursors (so each failure is sent
once, and a failure that happened while the daemon was down is sent when it comes
back) and POST one alert per run or per failed check to ``BIZOS_ALERT_WEBHOOK_URL``:

    {"kind": "run_failure" | "check_failure", "tenant": ..., "job": ..., "run_id": ...,
     "asset": [...], "check": ..., "error": ..., "link": "<BIZOS_DAGSTER_URL>/runs/<id>",
     "at": "<ISO time>"}

An alert carries names, the error message and a link: never run config, resource
values or the webhook URL. Error messages are the connectors' (already masked,
connectors/http_client.py) and go through ``scrub`` besides, which masks anything
shaped like a URL password or an API key. A POST is tried ``BIZOS_ALERT_ATTEMPTS``
times with backoff within ``BIZOS_ALERT_TIMEOUT_S`` each; a webhook that stays down
leaves the cursor before the alert, so the next tick sends it again.

Plain functions build and send the alerts (tested against a real HTTP receiver);
the sensors only wire them to the instance.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    EventLogRecord,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from assets.resources import BizosSettings
from core.settings import Settings

log = logging.getLogger(__name__)

PARTITION_TAG = "dagster/partition"
MAX_ERROR_CHARS = 2000
BATCH = 50
FIRST_LOOK_BACK = timedelta(hours=24)
"""A sensor's first tick sends what failed in the last day, not the whole history."""

_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")
_API_KEY = re.compile(r"\bbz_[A-Za-z0-9_-]{8,}")


def scrub(text: str) -> str:
    """Mask URL passwords and API keys, and bound the length."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _API_KEY.sub("bz_***", text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class Alert:
    kind: str
    tenant: str | None
    job: str
    run_id: str
    asset: list[str]
    error: str
    link: str
    at: str
    check: str | None = None

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "tenant": self.tenant,
            "job": self.job,
            "run_id": self.run_id,
            "asset": self.asset,
            "error": self.error,
            "link": self.link,
            "at": self.at,
        }
        if self.check is not None:
            body["check"] = self.check
        return body


def run_link(settings: Settings, run_id: str) -> str:
    return f"{settings.dagster_url.rstrip('/')}/runs/{run_id}"


def _innermost(error: Any) -> str:
    while error is not None and error.cause is not None:
        error = error.cause
    return str(error.message).strip() if error is not None else ""


def run_failure_alert(settings: Settings, instance: DagsterInstance, run: DagsterRun) -> Alert:
    """What failed in ``run``: each failed step's message and the assets it was to make."""
    failures = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.STEP_FAILURE
    ).records
    failed_steps: dict[str, str] = {}
    for record in failures:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key is None:
            continue
        data = event.step_failure_data
        failed_steps[event.step_key] = _innermost(data.error) if data else ""
    planned = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    assets = sorted(
        {
            r.asset_key.to_user_string()
            for r in planned
            if r.asset_key is not None
            and r.event_log_entry.dagster_event is not None
            and r.event_log_entry.dagster_event.step_key in failed_steps
        }
    )
    if failed_steps:
        error = "; ".join(f"{step}: {message}" for step, message in failed_steps.items())
    else:
        error = _run_failure_message(instance, run.run_id)
    return Alert(
        kind="run_failure",
        tenant=run.tags.get(PARTITION_TAG),
        job=run.job_name,
        run_id=run.run_id,
        asset=assets,
        error=scrub(error),
        link=run_link(settings, run.run_id),
        at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _run_failure_message(instance: DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records
    for record in records:
        if record.event_log_entry.dagster_event is not None:
            return record.event_log_entry.dagster_event.message or "run failed"
    return "run failed"


def check_failure_alerts(
    settings: Settings, instance: DagsterInstance, run: DagsterRun
) -> list[Alert]:
    """One alert per asset check of ``run`` that failed with severity ERROR."""
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    alerts = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        evaluation = event.event_specific_data
        if getattr(evaluation, "passed", True) or evaluation.severity != AssetCheckSeverity.ERROR:  # type: ignore[union-attr]
            continue
        metadata = {k: v.value for k, v in evaluation.metadata.items()}  # type: ignore[union-attr]
        detail = json.dumps(metadata, default=str, sort_keys=True) if metadata else ""
        alerts.append(
            Alert(
                kind="check_failure",
                tenant=run.tags.get(PARTITION_TAG),
                job=run.job_name,
                run_id=run.run_id,
                asset=[evaluation.asset_key.to_user_string()],  # type: ignore[union-attr]
                check=evaluation.check_name,  # type: ignore[union-attr]
                error=scrub(f"check {evaluation.check_name} failed {detail}".strip()),  # type: ignore[union-attr]
                link=run_link(settings, run.run_id),
                at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
        )
    return alerts


def post_alert(settings: Settings, alert: Alert) -> bool:
    """POST the alert; True once the receiver answered 2xx. Never raises, never logs the URL."""
    if settings.alert_webhook_url is None:
        return True  # alerts are off: nothing is waiting for them
    url = settings.alert_webhook_url.get_secret_value()
    body = alert.payload()
    for attempt in range(1, settings.alert_attempts + 1):
        try:
            response = httpx.post(url, json=body, timeout=settings.alert_timeout_s)
            if response.is_success:
                return True
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
        log.warning(
            "alert %s for run %s not delivered (try %d of %d): %s",
            alert.kind,
            alert.run_id,
            attempt,
            settings.alert_attempts,
            problem,
        )
        if attempt < settings.alert_attempts:
            time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
    return False


def _runs_since(
    instance: DagsterInstance, event_type: DagsterEventType, cursor: str | None
) -> tuple[list[tuple[EventLogRecord, DagsterRun]], str | None]:
    result = instance.fetch_run_status_changes(
        event_type, limit=BATCH, cursor=cursor, ascending=True
    )
    oldest = (datetime.now(UTC) - FIRST_LOOK_BACK).timestamp()
    found = []
    for record in result.records:
        if cursor is None and record.timestamp < oldest:
            continue
        run = instance.get_run_by_id(record.run_id)
        if run is not None:
            found.append((record, run))
    return found, result.cursor


def _send_all(settings: Settings, alerts: Sequence[Alert]) -> bool:
    return all(post_alert(settings, alert) for alert in alerts)


def deliver(
    settings: Settings,
    instance: DagsterInstance,
    event_type: DagsterEventType,
    cursor: str | None,
    build: Any,
) -> tuple[int, str | None]:
    """Send the alerts of runs that reached ``event_type`` after ``cursor``.

    Returns how many were sent and the new cursor; it stops before the first run
    whose alert could not be delivered, so that run is tried again next tick."""
    found, next_cursor = _runs_since(instance, event_type, cursor)
    sent = 0
    for record, run in found:
        alerts: list[Alert] = list(build(settings, instance, run))
        if not _send_all(settings, alerts):
            return sent, _cursor_before(instance, event_type, cursor, record)
        sent += len(alerts)
    return sent, next_cursor or cursor


def _cursor_before(
    instance: DagsterInstance,
    event_type: DagsterEventType,
    cursor: str | None,
    failed: EventLogRecord,
) -> str | None:
    """The cursor just before ``failed``: walk from ``cursor`` one record at a time."""
    at = cursor
    while True:
        step = instance.fetch_run_status_changes(event_type, limit=1, cursor=at, ascending=True)
        if not step.records or step.records[0].storage_id >= failed.storage_id:
            return at
        at = step.cursor


@sensor(
    name="run_failure_alerts",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="POSTs an alert for every failed run to BIZOS_ALERT_WEBHOOK_URL.",
)
def run_failure_alerts(context: SensorEvaluationContext, bizos: BizosSettings) -> SkipReason:
    sent, cursor = deliver(
        bizos.get(),
        context.instance,
        DagsterEventType.RUN_FAILURE,
        context.cursor,
        lambda s, i, r: [run_failure_alert(s, i, r)],
    )
    if cursor is not None:
        context.update_cursor(cursor)
    return SkipReason(f"{sent} run-failure alert(s) sent")


@sensor(
    name="check_failure_alerts",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="POSTs an alert for every failed asset check of severity ERROR.",
)
def check_failure_alerts_sensor(
    context: SensorEvaluationContext, bizos: BizosSettings
) -> SkipReason:
    # Checks fail in runs that succeed (a warning-level or non-blocking check) and in
    # runs that fail: both kinds of run end are read, each with its own cursor.
    cursors: dict[str, str | None] = json.loads(context.cursor) if context.cursor else {}
    total = 0
    for event_type in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
        sent, cursors[event_type.value] = deliver(
            bizos.get(),
            context.instance,
            event_type,
            cursors.get(event_type.value),
            check_failure_alerts,
        )
        total += sent
    context.update_cursor(json.dumps(cursors, sort_keys=True))
    return SkipReason(f"{total} check-failure alert(s) sent")


alert_sensors: list[SensorDefinition] = [run_failure_alerts, check_failure_alerts_sensor]
