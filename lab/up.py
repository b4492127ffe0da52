"""The whole lab for one scenario: every server the bot talks to, started and stopped together.

``Lab.start`` brings up the fake Kubernetes API, the real Prometheus (history backfilled) and
Alertmanager (pointed at the bot's webhook), CloudWatch Logs, Kubecost, AWS, Slack and, when
asked, the scripted model, all on 127.0.0.1 with one shared "now". ``env()`` is what the bot
needs to find them. ``stop`` stops everything it started, whatever failed half-way.
"""

from __future__ import annotations

import contextlib
import shlex
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot import config
from lab import alertmanager, prometheus
from lab.aws import server as aws_server
from lab.cloudwatch import server as cloudwatch_server
from lab.httpserver import LabServer
from lab.kube.cluster import FakeCluster
from lab.kubecost import start_kubecost
from lab.llm import ScriptedLlm
from lab.scenario.models import Scenario
from lab.slack.server import SlackServer

SLACK_SIGNING_SECRET = "lab-signing-secret"  # noqa: S105 - the lab's fake Slack app
DEFAULT_WEBHOOK = "http://127.0.0.1:8080/alertmanager"
REGION = "ap-northeast-2"


class Lab:
    """Everything of one scenario; a context manager that always cleans up."""

    def __init__(self, scenario: Scenario, *, workdir: Path | None = None) -> None:
        self.scenario = scenario
        self.now = datetime.now(UTC)
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="opsbot-lab-")
        self.workdir = workdir or Path(self._tmp.name if self._tmp else ".")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stops: list[Callable[[], None]] = []
        self.kube: FakeCluster | None = None
        self.prometheus: prometheus.LabPrometheus | None = None
        self.alertmanager: alertmanager.LabAlertmanager | None = None
        self.cloudwatch: cloudwatch_server.CloudWatchLogs | None = None
        self.kubecost: LabServer | None = None
        self.aws: LabServer | None = None
        self.slack: SlackServer | None = None
        self.llm: ScriptedLlm | None = None
        self.kubeconfig = self.workdir / "kubeconfig"
        self.ready_seconds: float | None = None

    def start(
        self,
        *,
        webhook_url: str = DEFAULT_WEBHOOK,
        webhook_token: str | None = None,
        llm_script: bool = False,
        deliver_alerts: bool = True,
    ) -> Lab:
        """Start every server; on any failure, stop what already runs and re-raise."""
        started = time.monotonic()
        try:
            self._start_all(webhook_url, webhook_token, llm_script, deliver_alerts)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started
        return self

    def _start_all(
        self, webhook_url: str, webhook_token: str | None, llm_script: bool, deliver: bool
    ) -> None:
        s = self.scenario
        self.kube = FakeCluster.from_scenario(s, now=self.now).start()
        self._stops.append(self.kube.stop)
        self.kube.write_kubeconfig(self.kubeconfig)
        self.slack = SlackServer().start()
        self._stops.append(self.slack.stop)
        self.cloudwatch = cloudwatch_server.CloudWatchLogs.from_scenario(s, now=self.now).start()
        self._stops.append(self.cloudwatch.stop)
        self.kubecost = start_kubecost(s, now=self.now)
        self._stops.append(self.kubecost.stop)
        self.aws = aws_server.start_aws(s, now=self.now)
        self._stops.append(self.aws.stop)
        if llm_script:
            self.llm = ScriptedLlm.from_scenario(s).start()
            self._stops.append(self.llm.stop)
        self.prometheus = prometheus.LabPrometheus(self.workdir)
        self._stops.append(self.prometheus.stop)
        self.prometheus.start(s.metrics, now=self.now)
        self.alertmanager = alertmanager.LabAlertmanager(self.workdir)
        self._stops.append(self.alertmanager.stop)
        self.alertmanager.start(webhook_url, token=webhook_token)
        if deliver:
            self.alertmanager.deliver(s.alerts, now=self.now)

    def env(self) -> dict[str, str]:
        """The environment that points the bot (and boto3, kubectl) at this lab."""
        assert self.kube and self.prometheus and self.alertmanager and self.cloudwatch
        assert self.kubecost and self.aws and self.slack
        env = {
            "KUBECONFIG": str(self.kubeconfig),
            "OPSBOT_KUBECONFIG": str(self.kubeconfig),
            "OPSBOT_CLUSTER_NAME": self.scenario.cluster.name,
            "OPSBOT_PROMETHEUS_URL": self.prometheus.url,
            "OPSBOT_ALERTMANAGER_URL": self.alertmanager.url,
            "OPSBOT_KUBECOST_URL": self.kubecost.url,
            "OPSBOT_LOG_GROUPS": ",".join(self.cloudwatch.log_groups),
            "OPSBOT_AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.cloudwatch.url,
            "AWS_ENDPOINT_URL_ECR": self.aws.url,
            "AWS_ENDPOINT_URL_EC2": self.aws.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "OPSBOT_SLACK_API_URL": self.slack.api_url,
            "SLACK_BOT_TOKEN": self.slack.token,
            "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
            "OPSBOT_LLM_BASE_URL": f"{self.llm.url}/v1" if self.llm else "",
        }
        return env

    def settings(self, **overrides: Any) -> config.Settings:
        """Bot settings pointing at this lab (what ``opsbot`` would load from ``env()``)."""
        env = self.env()
        values: dict[str, Any] = {
            "cluster_name": env["OPSBOT_CLUSTER_NAME"],
            "kubeconfig": self.kubeconfig,
            "prometheus_url": env["OPSBOT_PROMETHEUS_URL"],
            "alertmanager_url": env["OPSBOT_ALERTMANAGER_URL"],
            "kubecost_url": env["OPSBOT_KUBECOST_URL"],
            "log_groups": env["OPSBOT_LOG_GROUPS"].split(",") if env["OPSBOT_LOG_GROUPS"] else [],
            "aws_region": REGION,
            "slack_api_url": env["OPSBOT_SLACK_API_URL"],
            "slack_bot_token": env["SLACK_BOT_TOKEN"],
            "slack_signing_secret": SLACK_SIGNING_SECRET,
            "llm_base_url": env["OPSBOT_LLM_BASE_URL"] or None,
        }
        values.update(overrides)
        return config.Settings(**values)

    def export_lines(self) -> list[str]:
        return [f"export {key}={shlex.quote(value)}" for key, value in self.env().items()]

    def write_env_file(self, path: Path) -> None:
        """Write the export lines atomically, so a reader never sees half a file."""
        partial = path.with_name(path.name + ".partial")
        partial.write_text("\n".join(self.export_lines()) + "\n")
        partial.replace(path)

    def stop(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            with contextlib.suppress(Exception):
                stop()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
