"""Alert intake on a real SQLite store: parse, dedupe by fingerprint and status, cluster, routing."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot import alerts
from bot.config import Routes, Settings
from bot.store import Store

# Recorded from Alertmanager 0.25 (the lab's), fingerprint included.
MEMORY_LABELS = {
    "alertname": "GPUMemoryHigh",
    "gpu": "0",
    "namespace": "inference",
    "node": "gpu-a",
    "severity": "warning",
}
MEMORY_FINGERPRINT = "5dbf774a8558f492"
FIRING: dict[str, Any] = {
    "receiver": "opsbot",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": MEMORY_LABELS,
            "annotations": {"summary": "GPU memory above 95%"},
            "startsAt": "2026-11-28T02:30:33.068Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.lab/graph?g0.expr=GPUMemoryHigh",
            "fingerprint": MEMORY_FINGERPRINT,
        }
    ],
    "groupLabels": {"alertname": "GPUMemoryHigh", "severity": "warning"},
    "commonLabels": MEMORY_LABELS,
    "commonAnnotations": {"summary": "GPU memory above 95%"},
    "externalURL": "http://alertmanager.lab:9093",
    "version": "4",
    "groupKey": '{}:{alertname="GPUMemoryHigh", severity="warning"}',
    "truncatedAlerts": 0,
}


def body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def resolved(data: dict[str, Any], ends_at: str = "2026-11-28T02:42:32.068Z") -> dict[str, Any]:
    out = copy.deepcopy(data)
    out["status"] = "resolved"
    for alert in out["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = ends_at
    return out


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s.sqlite")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cluster_name="prod-default", db_path=tmp_path / "s.sqlite")


# -- parse -----------------------------------------------------------------------------------
def test_parse_reads_every_field_of_webhook_v4() -> None:
    notification = alerts.parse(body(FIRING))
    assert notification.version == "4"
    assert notification.group_key == '{}:{alertname="GPUMemoryHigh", severity="warning"}'
    assert notification.status == "firing" and notification.receiver == "opsbot"
    assert notification.truncated_alerts == 0
    assert notification.group_labels == {"alertname": "GPUMemoryHigh", "severity": "warning"}
    assert notification.common_labels == MEMORY_LABELS
    assert notification.common_annotations == {"summary": "GPU memory above 95%"}
    assert notification.external_url == "http://alertmanager.lab:9093"
    (alert,) = notification.alerts
    assert alert.status == "firing" and alert.labels == MEMORY_LABELS
    assert alert.fingerprint == alert.key == MEMORY_FINGERPRINT
    assert alert.alertname == "GPUMemoryHigh" and alert.severity == "warning"
    assert alerts.timestamp(alert.starts_at) == "2026-11-28T02:30:33.068000Z"
    assert alert.ends_at is not None and alert.ends_at.year == 1  # Go's zero time
    assert alert.generator_url.endswith("GPUMemoryHigh")


def test_parse_ignores_fields_it_does_not_know() -> None:
    data = copy.deepcopy(FIRING)
    data["orgId"] = 1  # Grafana's Alertmanager-compatible webhook adds its own
    data["alerts"][0]["silenceURL"] = "http://grafana/silence"
    assert alerts.parse(body(data)).alerts[0].key == MEMORY_FINGERPRINT


def test_a_missing_fingerprint_is_computed_as_alertmanager_does() -> None:
    data = copy.deepcopy(FIRING)
    del data["alerts"][0]["fingerprint"]
    assert alerts.parse(body(data)).alerts[0].key == MEMORY_FINGERPRINT
    assert alerts.fingerprint_of({}) == "cbf29ce484222325"


def _problems(raw: bytes) -> list[str]:
    with pytest.raises(alerts.InvalidPayload) as caught:
        alerts.parse(raw)
    assert str(caught.value) == "; ".join(caught.value.problems)
    return caught.value.problems


def _without(path: list[str | int]) -> bytes:
    data: Any = copy.deepcopy(FIRING)
    target = data
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body(data)


def _with(path: list[str | int], value: Any) -> bytes:
    data: Any = copy.deepcopy(FIRING)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body(data)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "not valid JSON: "),
        (b"\xff\xfe", "not valid JSON: "),
        (b"", "not valid JSON: "),
        (b"[]", "the body must be a JSON object"),
        (_without(["version"]), "version: Field required"),
        (_with(["version"], "3"), "version: Input should be '4'"),
        (_with(["version"], 4), "version: Input should be '4'"),
        (_without(["groupKey"]), "groupKey: Field required"),
        (_with(["status"], "pending"), "status: Input should be 'firing' or 'resolved'"),
        (_with(["truncatedAlerts"], -1), "truncatedAlerts: Input should be greater than"),
        (_without(["alerts"]), "alerts: Field required"),
        (_with(["alerts"], {}), "alerts: Input should be a valid array"),
        (_without(["alerts", 0, "status"]), "alerts.0.status: Field required"),
        (_without(["alerts", 0, "startsAt"]), "alerts.0.startsAt: Field required"),
        (_with(["alerts", 0, "startsAt"], "yesterday"), "alerts.0.startsAt: Input should be"),
        (
            _with(["alerts", 0, "startsAt"], "2026-11-28T02:30:33"),
            "alerts.0.startsAt: Input should have timezone",
        ),
        (
            _with(["alerts", 0, "startsAt"], "0001-01-01T00:00:00Z"),
            "alerts.0.startsAt: Value error, must be a real time",
        ),
        (
            _with(["alerts", 0, "labels", "gpu"], 0),
            "alerts.0.labels.gpu: Input should be a valid string",
        ),
        (
            _with(["alerts", 0, "fingerprint"], "a:b"),
            "alerts.0.fingerprint: String should match pattern",
        ),
        (_with(["commonLabels"], []), "commonLabels: Input should be an object"),
    ],
)
def test_parse_errors_name_the_field(raw: bytes, expected: str) -> None:
    problems = _problems(raw)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_and_no_input_value_is_echoed() -> None:
    data = copy.deepcopy(FIRING)
    data["version"] = "xoxb-2049871234567-5012345678901-Zq8vT3mYbN1x"
    del data["alerts"][0]["status"]
    problems = _problems(body(data))
    assert [p.split(":")[0] for p in problems] == ["version", "alerts.0.status"]
    assert "xoxb" not in " ".join(problems)


# -- intake ----------------------------------------------------------------------------------
def test_a_repeat_of_a_firing_alert_is_recognised_and_its_resolution_is_new(
    store: Store, settings: Settings
) -> None:
    first = alerts.intake(alerts.parse(body(FIRING)), store=store, settings=settings)
    assert (first.received, first.new, first.duplicates, first.resolved) == (1, 1, 0, 0)
    assert len(first.job_ids) == 1

    again = alerts.intake(alerts.parse(body(FIRING)), store=store, settings=settings)
    assert (again.new, again.duplicates, again.job_ids) == (0, 1, ())

    done = alerts.intake(alerts.parse(body(resolved(FIRING))), store=store, settings=settings)
    assert (done.new, done.duplicates, done.resolved) == (1, 0, 1)
    assert done.job_ids[0] != first.job_ids[0]

    rows = store.list_alerts()
    assert len(rows) == 1
    row = rows[0]
    assert row["fingerprint"] == MEMORY_FINGERPRINT
    assert row["starts_at"] == "2026-11-28T02:30:33.068000Z"
    assert row["status"] == "resolved" and row["ends_at"] == "2026-11-28T02:42:32.068000Z"
    assert row["alertname"] == "GPUMemoryHigh" and row["severity"] == "warning"
    assert row["labels"] == MEMORY_LABELS
    assert row["group_key"] == FIRING["groupKey"]
    assert store.count_jobs() == 2

    job = store.claim("w1")
    assert job is not None and job.kind == alerts.JOB_KIND
    assert job.dedupe_key == f"alert:{MEMORY_FINGERPRINT}:2026-11-28T02:30:33.068000Z:firing"
    assert job.payload["fingerprint"] == MEMORY_FINGERPRINT
    assert job.payload["status"] == "firing" and job.payload["cluster"] == "prod-default"
    assert job.payload["generator_url"].endswith("GPUMemoryHigh")


def test_a_late_firing_redelivery_never_reopens_a_resolved_alert(
    store: Store, settings: Settings
) -> None:
    alerts.intake(alerts.parse(body(resolved(FIRING))), store=store, settings=settings)
    late = alerts.intake(alerts.parse(body(FIRING)), store=store, settings=settings)
    assert (late.new, late.duplicates) == (0, 1)
    row = store.get_alert(MEMORY_FINGERPRINT, "2026-11-28T02:30:33.068000Z")
    assert row is not None and row["status"] == "resolved"
    assert store.count_jobs() == 1


def test_a_refire_after_resolution_is_a_new_alert(store: Store, settings: Settings) -> None:
    alerts.intake(alerts.parse(body(FIRING)), store=store, settings=settings)
    alerts.intake(alerts.parse(body(resolved(FIRING))), store=store, settings=settings)
    refire = copy.deepcopy(FIRING)
    refire["alerts"][0]["startsAt"] = "2026-11-28T03:00:00Z"
    result = alerts.intake(alerts.parse(body(refire)), store=store, settings=settings)
    assert result.new == 1
    assert [r["status"] for r in store.list_alerts()] == ["firing", "resolved"]
    assert len(store.list_alerts(status="firing")) == 1


def test_the_same_instant_in_another_zone_is_the_same_alert(
    store: Store, settings: Settings
) -> None:
    alerts.intake(alerts.parse(body(FIRING)), store=store, settings=settings)
    shifted = copy.deepcopy(FIRING)
    shifted["alerts"][0]["startsAt"] = "2026-11-28T11:30:33.068+09:00"
    assert (
        alerts.intake(alerts.parse(body(shifted)), store=store, settings=settings).duplicates == 1
    )


def test_a_repeat_refreshes_annotations_without_a_job(store: Store, settings: Settings) -> None:
    alerts.intake(alerts.parse(body(FIRING)), store=store, settings=settings)
    changed = copy.deepcopy(FIRING)
    changed["alerts"][0]["annotations"] = {"summary": "GPU memory at 99%"}
    alerts.intake(alerts.parse(body(changed)), store=store, settings=settings)
    (row,) = store.list_alerts()
    assert row["annotations"] == {"summary": "GPU memory at 99%"}
    assert store.count_jobs() == 1


def test_a_group_counts_each_alert(store: Store, settings: Settings) -> None:
    data = copy.deepcopy(FIRING)
    second = copy.deepcopy(data["alerts"][0])
    second["labels"] = {**MEMORY_LABELS, "gpu": "1"}
    del second["fingerprint"]
    data["alerts"].append(second)
    first = alerts.intake(alerts.parse(body(data)), store=store, settings=settings)
    assert (first.received, first.new) == (2, 2)
    again = alerts.intake(alerts.parse(body(data)), store=store, settings=settings)
    assert (again.received, again.new, again.duplicates) == (2, 0, 2)
    assert {r["fingerprint"] for r in store.list_alerts()} == {
        MEMORY_FINGERPRINT,
        alerts.fingerprint_of(second["labels"]),
    }


def test_secrets_in_annotations_are_redacted_before_they_are_stored(
    store: Store, settings: Settings
) -> None:
    data = copy.deepcopy(FIRING)
    data["alerts"][0]["annotations"] = {
        "description": "pod env HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789"
    }
    alerts.intake(alerts.parse(body(data)), store=store, settings=settings)
    (row,) = store.list_alerts()
    assert "hf_abc" not in row["annotations"]["description"]
    assert "[REDACTED" in row["annotations"]["description"]


# -- cluster and routing ---------------------------------------------------------------------
def test_cluster_from_the_alert_label_else_the_group_else_the_default(
    store: Store, settings: Settings
) -> None:
    labelled = copy.deepcopy(FIRING)
    labelled["alerts"][0]["labels"] = {**MEMORY_LABELS, "cluster": "prod-apne2"}
    del labelled["alerts"][0]["fingerprint"]
    alerts.intake(alerts.parse(body(labelled)), store=store, settings=settings)
    alerts.intake(alerts.parse(body(FIRING)), store=store, settings=settings)
    assert {r["fingerprint"]: r["cluster"] for r in store.list_alerts()} == {
        alerts.fingerprint_of(labelled["alerts"][0]["labels"]): "prod-apne2",
        MEMORY_FINGERPRINT: "prod-default",
    }

    grouped = alerts.parse(body({**FIRING, "commonLabels": {"cluster": "staging"}}))
    assert alerts.cluster_of({}, grouped, default="x") == "staging"
    assert alerts.cluster_of({"cluster": "a"}, grouped, default="x") == "a"
    assert alerts.cluster_of({}, None, default="x") == "x"
    assert alerts.cluster_of({"cluster": ""}, None, default="x") == "x"


@pytest.mark.parametrize(
    ("labels", "channel"),
    [
        ({"severity": "critical"}, "#crit"),
        ({"severity": "CRITICAL"}, "#crit"),
        ({"severity": "warning"}, "#warn"),
        ({"severity": "info"}, "#all"),
        ({"severity": ""}, "#all"),
        ({}, "#all"),
    ],
)
def test_channel_for_routes_by_severity(labels: dict[str, str], channel: str) -> None:
    routes = Routes(critical="#crit", warning="#warn", default="#all")
    assert alerts.channel_for(labels, routes) == channel


def test_default_routes_follow_the_operations_guide() -> None:
    routes = Settings().routes
    assert alerts.channel_for({"severity": "critical"}, routes) == "#genai-critical"
    assert alerts.channel_for({"severity": "warning"}, routes) == "#genai-warnings"
    assert alerts.channel_for({"severity": "info"}, routes) == "#genai-alerts"
