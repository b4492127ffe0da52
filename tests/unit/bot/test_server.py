"""The bot's HTTP server over real HTTP, fed by requests and by the lab's real Alertmanager."""

import copy
import io
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import structlog

from bot import alerts, logs, server
from bot.config import Settings
from bot.store import AlertRecord, Store
from lab.alertmanager import LabAlertmanager
from lab.scenario import loader
from tests.conftest import WaitFor

TOKEN = "am-webhook-3c1f9a7e5b"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
LABELS = {"alertname": "GPUMemoryHigh", "severity": "warning", "node": "gpu-a", "gpu": "0"}
PAYLOAD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="GPUMemoryHigh", severity="warning"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "opsbot",
    "groupLabels": {"alertname": "GPUMemoryHigh", "severity": "warning"},
    "commonLabels": LABELS,
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.lab:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": LABELS,
            "annotations": {"summary": "GPU memory above 95%"},
            "startsAt": "2026-11-28T02:30:33.068Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.lab/graph",
            "fingerprint": alerts.fingerprint_of(LABELS),
        }
    ],
}
BODY = json.dumps(PAYLOAD).encode()

SCENARIO = """
name: intake
alerts:
  - labels: {alertname: GPUMemoryHigh, severity: warning, gpu: "0", node: gpu-a, namespace: inference}
    annotations: {summary: "GPU memory above 95%"}
    starts_at: -12m
  - labels: {alertname: GPUTemperatureHigh, severity: critical, gpu: "3", node: gpu-b, cluster: prod-apne2}
    starts_at: -30m
  - labels: {alertname: GPUTemperatureHigh, severity: critical, gpu: "3", node: gpu-b, cluster: prod-apne2}
    status: resolved
"""


class FlakyStore(Store):
    """A real store whose first ``failures`` alert writes fail as a locked database would."""

    failures = 0

    def record_alert(self, alert: AlertRecord, **kwargs: Any) -> int | None:
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return super().record_alert(alert, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FlakyStore]:
    opened = FlakyStore(tmp_path / "s.sqlite")
    yield opened
    opened.close()


def make_settings(tmp_path: Path, token: str | None = TOKEN) -> Settings:
    return Settings(
        webhook_token=token,
        db_path=tmp_path / "s.sqlite",
        cluster_name="lab",
        http_host="127.0.0.1",
        http_port=0,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def bot(settings: Settings, store: Store) -> Iterator[server.BotServer]:
    running = server.serve(settings, store)
    yield running
    running.stop()


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The process's JSON log lines, as `opsbot serve` writes them."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    out = io.StringIO()
    logs.configure(level="DEBUG", fmt="json", stream=out)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    root.handlers[:], level = saved
    root.setLevel(level)
    structlog.reset_defaults()


def post(
    bot: server.BotServer, body: bytes = BODY, headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        f"{bot.url}/alertmanager",
        data=body,
        headers=AUTH if headers is None else headers,
        timeout=10,
    )


def nothing_stored(store: Store) -> bool:
    return store.count_jobs() == 0 and store.list_alerts() == []


# -- POST /alertmanager ----------------------------------------------------------------------
def test_an_alert_is_stored_before_the_200_and_a_redelivery_makes_no_job(
    bot: server.BotServer, store: Store
) -> None:
    first = post(bot)
    assert first.status_code == 200
    assert first.json() == {"received": 1, "new": 1, "duplicates": 0}
    (row,) = store.list_alerts()  # committed: visible on another connection at once
    assert row["status"] == "firing" and row["cluster"] == "lab"
    assert store.count_jobs() == 1

    again = post(bot)
    assert again.json() == {"received": 1, "new": 0, "duplicates": 1}
    assert store.count_jobs() == 1 and len(store.list_alerts()) == 1


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer wrong-token",
        f"Basic {TOKEN}",
        "Bearer",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
    ],
)
def test_a_missing_or_wrong_token_is_refused_and_nothing_stored(
    bot: server.BotServer, store: Store, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = post(bot, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"error": "missing or wrong bearer token"}
    assert nothing_stored(store)


def test_without_a_configured_token_the_webhook_refuses_everything(
    tmp_path: Path, store: Store
) -> None:
    with server.serve(make_settings(tmp_path, token=None), store) as bot:
        response = post(bot, headers={**AUTH, "Authorization": "Bearer anything"})
        assert response.status_code == 401
        assert "OPSBOT_WEBHOOK_TOKEN" in response.json()["error"]
        assert nothing_stored(store)


def test_malformed_json_is_a_400_and_is_logged_redacted(
    bot: server.BotServer, store: Store, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    secret = "xoxb-2049871234567-5012345678901-Zq8vT3mYbN1x"
    response = post(bot, body=f'{{"version": "4", "token": "{secret}", '.encode())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid Alertmanager payload"
    assert response.json()["problems"][0].startswith("not valid JSON: ")
    (logged,) = [line for line in log_lines() if line["event"] == "alertmanager.invalid_payload"]
    assert logged["level"] == "warning" and logged["path"] == "/alertmanager"
    assert logged["problems"] == response.json()["problems"]
    assert '"version": "4"' in logged["body"]
    assert secret not in json.dumps(log_lines())
    assert nothing_stored(store)


def test_a_payload_error_names_the_field(bot: server.BotServer, store: Store) -> None:
    payload = copy.deepcopy(PAYLOAD)
    payload["alerts"][0]["startsAt"] = "soon"
    response = post(bot, body=json.dumps(payload).encode())
    assert response.status_code == 400
    assert response.json()["problems"][0].startswith("alerts.0.startsAt: ")
    assert nothing_stored(store)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_a_415(
    bot: server.BotServer, store: Store, content_type: str | None
) -> None:
    headers = {"Authorization": AUTH["Authorization"]}
    if content_type:
        headers["Content-Type"] = content_type
    response = post(bot, headers=headers)
    assert response.status_code == 415
    assert nothing_stored(store)
    charset = post(bot, headers={**AUTH, "Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 200


def test_a_body_over_the_limit_is_a_413_and_the_connection_stays_usable(
    bot: server.BotServer, store: Store
) -> None:
    with requests.Session() as session:
        big = b'{"pad": "' + b"x" * server.MAX_BODY + b'"}'
        response = session.post(f"{bot.url}/alertmanager", data=big, headers=AUTH, timeout=10)
        assert response.status_code == 413
        assert "larger than 1048576 bytes" in response.json()["error"]
        assert nothing_stored(store)
        after = session.post(f"{bot.url}/alertmanager", data=BODY, headers=AUTH, timeout=10)
        assert after.status_code == 200


def test_a_chunked_body_needs_a_length(bot: server.BotServer, store: Store) -> None:
    response = requests.post(f"{bot.url}/alertmanager", data=iter([BODY]), headers=AUTH, timeout=10)
    assert response.status_code == 411
    assert response.headers["Connection"] == "close"
    assert nothing_stored(store)


def test_concurrent_redeliveries_make_one_job(bot: server.BotServer, store: Store) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: post(bot).json(), range(32)))
    assert sum(a["new"] for a in answers) == 1
    assert sum(a["duplicates"] for a in answers) == 31
    assert store.count_jobs() == 1 and len(store.list_alerts()) == 1


def test_a_store_failure_is_a_503_so_alertmanager_retries(
    bot: server.BotServer, store: FlakyStore
) -> None:
    store.failures = 1
    failed = post(bot)
    assert failed.status_code == 503 and failed.headers["Retry-After"]
    assert post(bot).json() == {"received": 1, "new": 1, "duplicates": 0}


def test_unknown_paths_and_methods(bot: server.BotServer) -> None:
    missing = requests.get(f"{bot.url}/nope", timeout=10)
    assert missing.status_code == 404 and missing.json() == {"error": "no route for /nope"}
    wrong = requests.get(f"{bot.url}/alertmanager", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"


# -- probes ----------------------------------------------------------------------------------
def test_healthz_and_readyz(bot: server.BotServer) -> None:
    health = requests.get(f"{bot.url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    head = requests.head(f"{bot.url}/healthz", timeout=10)
    assert head.status_code == 200 and head.content == b""
    ready = requests.get(f"{bot.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readyz_is_503_when_the_store_file_is_unusable(
    bot: server.BotServer, store: Store, tmp_path: Path
) -> None:
    store.close()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"s.sqlite{suffix}").unlink(missing_ok=True)
    (tmp_path / "s.sqlite").write_bytes(b"this is not a database" * 500)
    response = requests.get(f"{bot.url}/readyz", timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "not a database" in response.json()["store"]
    assert requests.get(f"{bot.url}/healthz", timeout=10).status_code == 200


def test_routes_can_be_added_by_later_features(settings: Settings, store: Store) -> None:
    router = server.routes(settings=settings, store=store)
    router.add("POST", "/echo", lambda request: server.Response(200, request.body()[::-1]))
    with pytest.raises(ValueError, match="already registered"):
        router.add("GET", "/healthz", server.healthz)
    with server.serve(settings, store, router=router) as bot:
        assert requests.post(f"{bot.url}/echo", data=b"abc", timeout=10).content == b"cba"


# -- through the real Alertmanager -----------------------------------------------------------
@pytest.fixture
def recorded(settings: Settings, store: Store) -> Iterator[tuple[server.BotServer, list[bytes]]]:
    """The bot's server, with every body Alertmanager posted kept for replay."""
    bodies: list[bytes] = []
    intake = server.alertmanager_handler(settings=settings, store=store)

    def recording(request: server.Request) -> server.Response:
        bodies.append(request.body())
        return intake(request)

    router = server.Router()
    router.add("POST", "/alertmanager", recording)
    with server.serve(settings, store, router=router) as bot:
        yield bot, bodies


def test_alertmanager_delivers_and_redeliveries_are_recognised(
    recorded: tuple[server.BotServer, list[bytes]], store: Store, tmp_path: Path, wait_for: WaitFor
) -> None:
    bot, bodies = recorded
    scenario = loader.load_text(SCENARIO)
    am = LabAlertmanager(tmp_path).start(f"{bot.url}/alertmanager", token=TOKEN)
    try:
        am.deliver(scenario.alerts, now=datetime.now(UTC))

        def statuses() -> dict[str, str]:
            return {r["alertname"]: r["status"] for r in store.list_alerts()}

        wait_for(
            lambda: statuses() == {"GPUMemoryHigh": "firing", "GPUTemperatureHigh": "resolved"}
        )
        assert len(store.list_alerts()) == 2  # each alert once
        temperature = store.list_alerts(status="resolved")[0]
        assert temperature["cluster"] == "prod-apne2" and temperature["ends_at"]
        memory = store.list_alerts(status="firing")[0]
        assert memory["cluster"] == "lab"
        assert memory["fingerprint"] == alerts.fingerprint_of(memory["labels"])
        assert store.count_jobs() == 3  # memory firing; temperature firing, then resolved

        # The same body again, as Alertmanager re-sends after a lost answer: recognised.
        for body in list(bodies):
            replay = post(bot, body=body)
            assert replay.status_code == 200 and replay.json()["new"] == 0
        assert store.count_jobs() == 3

        # A new alert joins the memory group: Alertmanager re-sends the group with both.
        am.post_alerts(
            [{"labels": {**memory["labels"], "gpu": "1"}, "startsAt": memory["starts_at"]}]
        )
        wait_for(lambda: len(store.list_alerts()) == 3)
        assert store.count_jobs() == 4
        regrouped = json.loads(bodies[-1])
        assert len(regrouped["alerts"]) == 2
        first = store.get_alert(memory["fingerprint"], memory["starts_at"])
        assert first is not None and first["updated_at"] > first["received_at"]
    finally:
        am.stop()


def _webhook_failures(am: LabAlertmanager) -> float:
    text = requests.get(f"{am.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("alertmanager_notifications_failed_total")
        and 'integration="webhook"' in line
    )


def test_alertmanager_with_a_wrong_token_stores_nothing(
    bot: server.BotServer, store: Store, tmp_path: Path, wait_for: WaitFor
) -> None:
    scenario = loader.load_text(SCENARIO)
    am = LabAlertmanager(tmp_path).start(f"{bot.url}/alertmanager", token="not-the-token")
    try:
        am.post_alerts(
            [
                {"labels": a.labels, "startsAt": datetime.now(UTC).isoformat()}
                for a in scenario.alerts[:1]
            ]
        )
        wait_for(lambda: _webhook_failures(am) >= 1)
        assert nothing_stored(store)
    finally:
        am.stop()


def test_alertmanager_retries_after_a_store_failure_and_nothing_is_lost(
    bot: server.BotServer, store: FlakyStore, tmp_path: Path, wait_for: WaitFor
) -> None:
    store.failures = 2
    am = LabAlertmanager(tmp_path).start(f"{bot.url}/alertmanager", token=TOKEN)
    try:
        am.post_alerts([{"labels": LABELS, "startsAt": datetime.now(UTC).isoformat()}])
        wait_for(lambda: len(store.list_alerts()) == 1)
        assert store.failures == 0 and store.count_jobs() == 1
    finally:
        am.stop()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_the_alerts_received(bot: server.BotServer) -> None:
    name = 'opsbot_alerts_received_total{status="firing"}'
    before = _metric(requests.get(f"{bot.url}/metrics", timeout=5).text, name)
    post(bot)
    post(bot)  # a redelivery is still an alert received (and deduplicated)
    response = requests.get(f"{bot.url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert _metric(response.text, name) == before + 2
    assert "opsbot_tool_errors_total" in response.text and "opsbot_answer_seconds" in response.text
