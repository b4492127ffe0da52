"""The real Alertmanager (Debian's package), routing every alert to the bot's webhook.

Clustering is off and ``group_wait`` is 0 so a test sees a notification within about a second;
``resolve_timeout`` is long because nothing re-sends the scenario's firing alerts the way
Prometheus would. The scenario's alerts are posted through Alertmanager's own API v2.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from lab import process
from lab.scenario.models import Alert


def config(
    webhook_url: str, *, token: str | None = None, group_interval: str = "1s"
) -> dict[str, Any]:
    """Alertmanager's configuration: one route, one webhook receiver (the bot)."""
    webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True, "max_alerts": 0}
    if token:
        webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": token}}
    return {
        "global": {"resolve_timeout": "24h"},
        "route": {
            "receiver": "opsbot",
            "group_by": ["alertname", "severity"],
            "group_wait": "0s",
            "group_interval": group_interval,
            "repeat_interval": "4h",
        },
        "receivers": [{"name": "opsbot", "webhook_configs": [webhook]}],
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_payloads(
    alerts: list[Alert], *, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(firing batch, resolved batch): a resolved alert is sent after its firing twin."""
    firing: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    for alert in alerts:
        payload: dict[str, Any] = {
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "startsAt": _rfc3339(now - alert.starts_at),
            "generatorURL": f"http://prometheus.lab/graph?g0.expr={alert.labels['alertname']}",
        }
        if alert.status == "resolved":
            payload["endsAt"] = _rfc3339(now - timedelta(seconds=1))
            resolved.append(payload)
        else:
            firing.append(payload)
    return firing, resolved


class LabAlertmanager:
    """Alertmanager on 127.0.0.1 whose only receiver is ``webhook_url``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = process.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: process.ManagedProcess | None = None

    def start(self, webhook_url: str, *, token: str | None = None) -> LabAlertmanager:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise process.LabProcessError(
                "Alertmanager is not installed; run `make setup` "
                "(Debian: apt-get install prometheus-alertmanager)"
            )
        config_path = self.workdir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(config(webhook_url, token=token)))
        storage = self.workdir / "alertmanager-data"
        storage.mkdir(parents=True, exist_ok=True)
        self._process = process.ManagedProcess(
            "alertmanager",
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            log_path=self.workdir / "alertmanager.log",
            ready_url=f"{self.url}/-/ready",
        ).start(timeout=30)
        return self

    def post_alerts(self, payloads: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts, as Prometheus does."""
        if not payloads:
            return
        request = urllib.request.Request(  # noqa: S310 - the lab's own loopback server
            f"{self.url}/api/v2/alerts",
            data=json.dumps(payloads).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local lab
            response.read()

    def notifications_sent(self) -> float:
        """Webhook notifications attempted so far (Alertmanager's own counter)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:  # noqa: S310
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if (
                line.startswith("alertmanager_notifications_total")
                and 'integration="webhook"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def deliver(self, alerts: list[Alert], *, now: datetime, timeout: float = 15.0) -> None:
        """Send the scenario's alerts: the firing ones, then — once Alertmanager has notified
        about those — the resolved ones, so the bot sees each resolution after its firing twin."""
        firing, resolved = alert_payloads(alerts, now=now)
        before = self.notifications_sent()
        self.post_alerts(firing)
        if firing and resolved:
            deadline = time.monotonic() + timeout
            while self.notifications_sent() <= before and time.monotonic() < deadline:
                time.sleep(0.05)  # polling Alertmanager's counter
        self.post_alerts(resolved)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
