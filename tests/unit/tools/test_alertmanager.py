"""Reading Alertmanager's alerts through the real server, and what happens when it misbehaves."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lab.alertmanager import LabAlertmanager
from lab.httpserver import Fault, LabServer, Response
from lab.process import free_port
from lab.scenario import loader
from tests.conftest import WaitFor
from tools import alertmanager, base
from tools.toolbox import ClusterConfig, Toolbox

SCENARIO = """
name: am-tool
alerts:
  - labels: {alertname: GPUMemoryHigh, severity: warning, node: gpu-a, gpu: "0"}
    starts_at: -12m
  - labels: {alertname: ModelPodRestarting, severity: critical, namespace: inference, pod: llama-3-8b-x}
    starts_at: -3m
"""


def _box(url: str, timeout: float = 3.0) -> Toolbox:
    cluster = ClusterConfig(
        name="lab",
        prometheus_url="http://127.0.0.1:9",
        kubecost_url="http://127.0.0.1:9",
        alertmanager_url=url,
    )
    return Toolbox([cluster], limits=base.Limits(timeout=timeout))


@pytest.fixture
def am(tmp_path: Path) -> Iterator[LabAlertmanager]:
    with LabServer(lambda r: Response(200, b"{}"), name="webhook") as hook:
        server = LabAlertmanager(tmp_path).start(f"{hook.url}/alertmanager")
        try:
            yield server
        finally:
            server.stop()


def test_firing_alerts_most_severe_first(am: LabAlertmanager, wait_for: WaitFor) -> None:
    am.deliver(loader.load_text(SCENARIO).alerts, now=datetime.now(UTC))
    box = _box(am.url)
    result = wait_for(
        lambda: (r := alertmanager.alerts(box=box)).status == "ok" and len(r.data) == 2 and r
    )
    assert [a["labels"]["alertname"] for a in result.data] == [
        "ModelPodRestarting",
        "GPUMemoryHigh",
    ]
    assert "ModelPodRestarting  critical  active" in result.text
    assert result.call.startswith(f"GET {am.url}/api/v2/alerts?active=true")


def test_no_alerts_is_no_data_not_ok(am: LabAlertmanager) -> None:
    result = alertmanager.alerts(box=_box(am.url))
    assert result.status == "no_data"


def test_down_slow_and_failing(tmp_path: Path) -> None:
    down = alertmanager.alerts(box=_box(f"http://127.0.0.1:{free_port()}"))
    assert down.status == "error" and down.error_kind == "unavailable"
    assert down.text.startswith("ERROR from alertmanager (unavailable): cannot connect")

    with LabServer(lambda r: Response(200, b"[]"), name="slow-am") as slow:
        slow.fault = Fault(delay=4.0)
        started = time.monotonic()
        result = alertmanager.alerts(box=_box(slow.url, timeout=1.0))
        elapsed = time.monotonic() - started
        assert result.status == "error" and result.error_kind == "timeout"
        assert 0.9 <= elapsed < 1.0 + 2.0

        slow.fault = Fault(status=500, body=b"internal error")
        failing = alertmanager.alerts(box=_box(slow.url, timeout=2.0))
        assert failing.status == "error" and failing.error_kind == "server-error"
        assert "HTTP 500: internal error" in failing.text
