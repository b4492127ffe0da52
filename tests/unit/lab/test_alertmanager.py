"""The lab's real Alertmanager delivers the scenario's alerts to a webhook, resolved after firing."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lab.alertmanager import LabAlertmanager
from lab.httpserver import LabServer, Response
from lab.scenario import loader
from tests.conftest import WaitFor

SCENARIO = """
name: am
alerts:
  - labels: {alertname: GPUMemoryHigh, severity: warning, gpu: "0", node: gpu-a, namespace: inference}
    annotations: {summary: "GPU memory above 95%", description: "GPU 0 on gpu-a is at 97%"}
    starts_at: -12m
  - labels: {alertname: GPUTemperatureHigh, severity: critical, gpu: "3", node: gpu-b}
    starts_at: -30m
  - labels: {alertname: GPUTemperatureHigh, severity: critical, gpu: "3", node: gpu-b}
    status: resolved
"""


@pytest.fixture
def webhook() -> Iterator[LabServer]:
    with LabServer(lambda request: Response(200, b"{}"), name="webhook") as server:
        yield server


def test_alerts_reach_the_webhook_with_the_bearer_token(
    webhook: LabServer, tmp_path: Path, wait_for: WaitFor
) -> None:
    scenario = loader.load_text(SCENARIO)
    now = datetime.now(UTC)
    am = LabAlertmanager(tmp_path).start(f"{webhook.url}/alertmanager", token="am-token")
    try:
        am.deliver(scenario.alerts, now=now)

        def bodies() -> list[dict[str, Any]]:
            return [r.json() for r in webhook.calls("POST", "^/alertmanager$")]

        def seen(name: str, status: str) -> list[dict[str, Any]]:
            return [
                b
                for b in bodies()
                if b["commonLabels"].get("alertname") == name and b["status"] == status
            ]

        memory = wait_for(lambda: seen("GPUMemoryHigh", "firing"))[0]
        alert = memory["alerts"][0]
        assert alert["labels"]["node"] == "gpu-a"
        assert alert["annotations"]["description"] == "GPU 0 on gpu-a is at 97%"
        started = datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00"))
        assert abs((now - started).total_seconds() - 12 * 60) < 1
        assert memory["version"] == "4" and memory["groupKey"]

        wait_for(lambda: seen("GPUTemperatureHigh", "resolved"))
        statuses = [
            b["status"] for b in bodies() if b["commonLabels"]["alertname"] == "GPUTemperatureHigh"
        ]
        assert statuses.index("firing") < statuses.index("resolved")

        call = webhook.calls("POST", "^/alertmanager$")[0]
        assert call.header("authorization") == "Bearer am-token"
    finally:
        am.stop()


def test_a_silence_can_be_created_through_the_api(webhook: LabServer, tmp_path: Path) -> None:
    import json
    import urllib.request

    am = LabAlertmanager(tmp_path).start(f"{webhook.url}/alertmanager")
    try:
        silence = {
            "matchers": [{"name": "alertname", "value": "GPUMemoryHigh", "isRegex": False}],
            "startsAt": datetime.now(UTC).isoformat(),
            "endsAt": datetime.now(UTC).replace(year=2100).isoformat(),
            "createdBy": "opsbot",
            "comment": "test",
        }
        request = urllib.request.Request(
            f"{am.url}/api/v2/silences",
            data=json.dumps(silence).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["silenceID"]
    finally:
        am.stop()
