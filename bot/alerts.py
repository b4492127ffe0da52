"""Alertmanager notifications in: validate the webhook payload, persist, dedupe, route.

Alertmanager re-sends a group's alerts on every ``group_interval`` change and retries a failed
notification, so intake must be idempotent: each alert is keyed by (fingerprint, startsAt) and a
job is enqueued once per (alert, status) — a repeat of a firing alert is recognised and dropped,
its resolution is new. Everything is committed before the HTTP 200. No HTTP here (that is
``bot.server``) and no Slack (the worker turns jobs into messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot import logs, metrics
from bot.config import Routes, Settings
from bot.store import AlertRecord, Store

JOB_KIND = "alert"
"""The kind of job intake enqueues for the worker."""

Status = Literal["firing", "resolved"]


class InvalidPayload(ValueError):
    """A body that is not an Alertmanager webhook v4 payload; ``problems`` name each field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class _Payload(BaseModel):
    # Unknown fields are ignored: Alertmanager may add some, and Alertmanager-compatible
    # senders (Grafana) add their own; what we read is still validated strictly.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Alert(_Payload):
    """One alert of a notification."""

    status: Status
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(None, alias="endsAt")
    """Go's zero time (0001-01-01) when Alertmanager knows no end."""
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field("", max_length=128, pattern=r"^[0-9A-Za-z]*$")
    """Alertmanager's hash of the labels; computed the same way when a sender omits it."""

    @field_validator("starts_at")
    @classmethod
    def _real_start(cls, value: datetime) -> datetime:
        if value.year <= 1:
            raise ValueError("must be a real time, not the zero time")
        return value

    @property
    def key(self) -> str:
        """The alert's fingerprint, from the payload or computed from its labels."""
        return self.fingerprint or fingerprint_of(self.labels)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


class Notification(_Payload):
    """Alertmanager's webhook payload, version 4 (one alert group)."""

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    status: Status
    receiver: str = ""
    group_labels: dict[str, str] = Field({}, alias="groupLabels")
    common_labels: dict[str, str] = Field({}, alias="commonLabels")
    common_annotations: dict[str, str] = Field({}, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[Alert]


@dataclass(frozen=True)
class IntakeResult:
    """What one notification changed: counts and the ids of the jobs it enqueued."""

    received: int
    new: int
    duplicates: int
    resolved: int
    """New resolutions (a subset of ``new``)."""
    job_ids: tuple[int, ...] = field(default=())


def parse(body: bytes) -> Notification:
    """Validate a webhook body; InvalidPayload names each bad field (``alerts.0.startsAt``)."""
    try:
        return Notification.model_validate_json(body)
    except ValidationError as e:
        raise InvalidPayload([_problem(item) for item in e.errors()]) from e


def _problem(item: Mapping[str, Any]) -> str:
    # Only the location and pydantic's message: the input itself may hold secrets.
    where = ".".join(str(part) for part in item["loc"])
    if item["type"] == "json_invalid":
        return f"not valid JSON: {item['ctx'].get('error', item['msg'])}"
    if item["type"] == "model_type" and not where:
        return "the body must be a JSON object (Alertmanager webhook v4)"
    return f"{where}: {item['msg']}" if where else str(item["msg"])


def intake(notification: Notification, *, store: Store, settings: Settings) -> IntakeResult:
    """Persist each alert and enqueue a job per new (alert, status); all committed on return."""
    log = logs.get("opsbot.alerts", group_key=notification.group_key)
    new = duplicates = resolved = 0
    job_ids: list[int] = []
    for alert in notification.alerts:
        record = _record(alert, notification, default_cluster=settings.cluster_name)
        job_id = store.record_alert(
            record,
            kind=JOB_KIND,
            dedupe_key=dedupe_key(record.fingerprint, record.starts_at, alert.status),
            payload=_job_payload(record, alert, notification),
        )
        metrics.ALERTS_RECEIVED.labels(status=alert.status).inc()
        if job_id is None:
            duplicates += 1
            continue
        new += 1
        if alert.status == "resolved":
            resolved += 1
        job_ids.append(job_id)
    if notification.truncated_alerts:
        log.warning(
            "alerts.truncated",
            truncated=notification.truncated_alerts,
            hint="raise max_alerts in the webhook receiver; truncated alerts are never seen",
        )
    log.info(
        "alerts.received",
        received=len(notification.alerts),
        new=new,
        duplicates=duplicates,
        resolved=resolved,
    )
    return IntakeResult(
        received=len(notification.alerts),
        new=new,
        duplicates=duplicates,
        resolved=resolved,
        job_ids=tuple(job_ids),
    )


def dedupe_key(fingerprint: str, starts_at: str, status: str) -> str:
    """The inbox key of one (alert, status): a re-fire after resolution has a new startsAt."""
    return f"{JOB_KIND}:{fingerprint}:{starts_at}:{status}"


def cluster_of(
    labels: Mapping[str, str], notification: Notification | None = None, *, default: str
) -> str:
    """The alert's ``cluster`` label, else the group's (common or group labels), else default.

    Prometheus' external labels reach Alertmanager as alert labels, so they land here too.
    """
    candidates = [labels]
    if notification is not None:
        candidates += [notification.common_labels, notification.group_labels]
    for source in candidates:
        if source.get("cluster"):
            return source["cluster"]
    return default


def channel_for(labels: Mapping[str, str], routes: Routes) -> str:
    """The Slack channel for an alert's severity (critical, warning, everything else)."""
    severity = labels.get("severity", "").strip().lower()
    if severity == "critical":
        return routes.critical
    if severity == "warning":
        return routes.warning
    return routes.default


def timestamp(moment: datetime) -> str:
    """A fixed-width UTC text form, so the same instant always makes the same key."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint: FNV-1a 64 over the sorted labels, each name and value
    followed by the byte 0xff (prometheus/common ``LabelSet.Fingerprint``), in hex."""
    value = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in (*part.encode(), 0xFF):
                value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def _record(alert: Alert, notification: Notification, *, default_cluster: str) -> AlertRecord:
    ends_at = alert.ends_at
    return AlertRecord(
        fingerprint=alert.key,
        starts_at=timestamp(alert.starts_at),
        status=alert.status,
        alertname=alert.alertname,
        severity=alert.severity,
        cluster=cluster_of(alert.labels, notification, default=default_cluster),
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        group_key=notification.group_key,
        ends_at=None if ends_at is None or ends_at.year <= 1 else timestamp(ends_at),
    )


def _job_payload(record: AlertRecord, alert: Alert, notification: Notification) -> dict[str, Any]:
    """What the worker needs to find the alert row and link back to its sources."""
    return {
        "fingerprint": record.fingerprint,
        "starts_at": record.starts_at,
        "status": record.status,
        "alertname": record.alertname,
        "severity": record.severity,
        "cluster": record.cluster,
        "group_key": record.group_key,
        "receiver": notification.receiver,
        "external_url": notification.external_url,
        "generator_url": alert.generator_url,
    }
