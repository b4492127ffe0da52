"""Creating a silence through the real Alertmanager's API v2, and its failures."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from lab.alertmanager import LabAlertmanager
from lab.httpserver import LabServer, Response
from tools import alertmanager, base
from tools.toolbox import ClusterConfig, Toolbox


def _box(url: str) -> Toolbox:
    cluster = ClusterConfig(
        name="lab",
        prometheus_url="http://127.0.0.1:9",
        kubecost_url="http://127.0.0.1:9",
        alertmanager_url=url,
    )
    return Toolbox([cluster], limits=base.Limits(timeout=3.0))


@pytest.fixture(scope="module")
def am(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabAlertmanager]:
    workdir: Path = tmp_path_factory.mktemp("am")
    with LabServer(lambda r: Response(200, b"{}"), name="webhook") as hook:
        server = LabAlertmanager(workdir).start(f"{hook.url}/alertmanager")
        try:
            yield server
        finally:
            server.stop()


def test_a_silence_appears_in_alertmanager(am: LabAlertmanager) -> None:
    now = datetime.now(UTC)
    result = alertmanager.create_silence(
        box=_box(am.url),
        alertname="GPUMemoryHigh",
        labels={"cluster": "prod-apne2"},
        duration=timedelta(hours=4),
        created_by="alice",
        comment="from Slack",
        now=now,
    )
    assert result.status == "ok", result.error
    assert result.call == f"POST {am.url}/api/v2/silences"
    silence_id = result.data["silenceID"]
    assert silence_id and silence_id in result.text
    silences = requests.get(f"{am.url}/api/v2/silences", timeout=5).json()
    found = next(s for s in silences if s["id"] == silence_id)
    assert found["status"]["state"] == "active"
    assert found["createdBy"] == "alice"
    assert found["comment"] == "from Slack"
    assert {(m["name"], m["value"], m["isRegex"]) for m in found["matchers"]} == {
        ("alertname", "GPUMemoryHigh", False),
        ("cluster", "prod-apne2", False),
    }
    ends = datetime.fromisoformat(found["endsAt"].replace("Z", "+00:00"))
    assert abs((ends - now - timedelta(hours=4)).total_seconds()) < 2


def test_a_refused_silence_is_an_error_result() -> None:
    with LabServer(lambda r: Response(400, b"bad matchers"), name="am") as fake:
        result = alertmanager.create_silence(
            box=_box(fake.url),
            alertname="X",
            duration=timedelta(hours=1),
            created_by="bob",
            comment="c",
        )
    assert result.status == "error"
    assert "HTTP 400" in (result.error or "")


def test_an_unreachable_alertmanager_is_an_error_result() -> None:
    result = alertmanager.create_silence(
        box=_box("http://127.0.0.1:9"),
        alertname="X",
        duration=timedelta(hours=1),
        created_by="bob",
        comment="c",
    )
    assert result.status == "error"


def test_a_duration_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        alertmanager.create_silence(
            box=_box("http://127.0.0.1:9"),
            alertname="X",
            duration=timedelta(0),
            created_by="bob",
            comment="c",
        )
