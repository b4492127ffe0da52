"""Alert groups in Slack over the lab: the bot's webhook → the inbox → the worker → the fake
Slack; one message per group, updated in place, exactly once through 429s, 5xx and a SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot import server
from bot.config import Settings
from bot.slack import alert_messages, client
from bot.store import Store
from bot.worker import AlertWorker, Done
from lab import up
from lab.scenario import loader
from lab.slack import methods, ratelimit, state
from tests.conftest import WaitFor

ROOT = Path(__file__).resolve().parents[4]
TOKEN = "alert-messages-token"
WARNINGS = "#genai-warnings"
BUTTONS = ("Diagnose", "Silence", "Acknowledge")


@dataclass
class Running:
    lab: up.Lab
    store: Store
    settings: Settings
    url: str

    @property
    def slack(self) -> Any:
        assert self.lab.slack is not None
        return self.lab.slack

    def messages(self) -> alert_messages.AlertMessages:
        web = client.web_client(self.settings)
        return alert_messages.AlertMessages(self.store, web, self.settings)

    def worker(self) -> AlertWorker:
        return AlertWorker(self.store, None, messages=self.messages())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    scenario = loader.load_file(ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml")
    db = tmp_path_factory.mktemp("alert-messages") / "opsbot.sqlite"
    with up.Lab(scenario) as lab:
        store = Store(db)
        bot = server.serve(
            Settings(webhook_token=TOKEN, db_path=db, cluster_name=scenario.cluster.name),
            store,
            host="127.0.0.1",
            port=0,
        )
        try:
            lab.start(
                webhook_url=f"{bot.url}/alertmanager", webhook_token=TOKEN, deliver_alerts=False
            )
            settings = lab.settings(webhook_token=TOKEN, db_path=db)
            yield Running(lab, store, settings, bot.url)
        finally:
            bot.stop()
            store.close()


START = (datetime.now(UTC) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")


def alert(name: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": name, "severity": "warning", **labels},
        "annotations": {"summary": f"{name} is unhappy", "description": f"{name} on {labels}"},
        "startsAt": START,
    }
    if status == "resolved":
        body["endsAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return body


def deliver(running: Running, group: str, *alerts: dict[str, Any]) -> None:
    """What Alertmanager sends for one group, through the bot's webhook."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": group,
        "status": status,
        "receiver": "opsbot",
        "alerts": list(alerts),
    }
    answer = requests.post(
        f"{running.url}/alertmanager",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def drain(worker: AlertWorker) -> list[Done]:
    done: list[Done] = []
    while (one := worker.run_once()) is not None:
        done.append(one)
    return done


def posted(running: Running, group: str, channel: str = WARNINGS) -> list[dict[str, Any]]:
    key = alert_messages.group_key(running.settings.cluster_name, group)
    return [
        m
        for m in running.slack.messages(channel)
        if ((m.get("metadata") or {}).get("event_payload") or {}).get("key") == key
    ]


def actions(message: dict[str, Any]) -> str:
    return json.dumps([b for b in message.get("blocks", []) if b.get("type") == "actions"])


def test_an_alert_becomes_one_message_then_updates_in_place(running: Running) -> None:
    group = '{}:{alertname="OpsbotOne"}'
    worker = running.worker()
    deliver(running, group, alert("OpsbotOne", pod="one-0"))
    done = drain(worker)
    assert [d.outcome for d in done] == ["posted"], done
    [message] = posted(running, group)
    assert all(label in actions(message) for label in BUTTONS), message["blocks"]
    assert "OpsbotOne" in message["text"]

    deliver(running, group, alert("OpsbotOne", pod="one-0"))  # the same alert again
    assert drain(worker) == []  # intake recognised the repeat
    again = running.messages().sync(
        {"cluster": running.settings.cluster_name, "group_key": group}
    )  # the job done twice (a lease ran out): an update, never a second post
    assert again.action == "updated" and again.ts == message["ts"]
    assert len(posted(running, group)) == 1

    updates = len(running.slack.calls("chat.update"))
    deliver(running, group, alert("OpsbotOne", "resolved", pod="one-0"))
    assert [d.outcome for d in drain(worker)] == ["posted"]
    [resolved] = posted(running, group)
    assert resolved["ts"] == message["ts"]
    assert actions(resolved) == "[]", resolved["blocks"]  # buttons removed
    assert "resolved" in json.dumps(resolved).lower()
    assert len(running.slack.calls("chat.update")) == updates + 1


def test_a_group_of_alerts_is_one_summary_message(running: Running) -> None:
    group = '{}:{alertname="OpsbotMany"}'
    pods = [f"many-{i}" for i in range(6)]
    deliver(running, group, *(alert("OpsbotMany", pod=p) for p in pods))
    done = drain(running.worker())
    assert len(done) == len(pods) and {d.outcome for d in done} == {"posted"}
    [message] = posted(running, group)
    shown = json.dumps(message["blocks"])
    assert all(p in shown for p in pods), shown
    deliver(running, group, alert("OpsbotMany", "resolved", pod=pods[0]))
    drain(running.worker())
    [still] = posted(running, group)
    assert still["ts"] == message["ts"] and all(label in actions(still) for label in BUTTONS)


def test_rate_limited_posts_wait_and_are_delivered_once(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = ratelimit.Limit(burst=1, per_second=0.5)
    monkeypatch.setattr(running.slack, "limits", ratelimit.RateLimits(post_message=slow))
    running.slack.reset_limits()
    web = client.web_client(running.settings)
    web.chat_postMessage(channel=WARNINGS, text="someone else spends the burst")
    group = '{}:{alertname="OpsbotLimited"}'
    deliver(running, group, alert("OpsbotLimited"))
    before = len(running.slack.calls("chat.postMessage"))
    assert [d.outcome for d in drain(running.worker())] == ["posted"]
    statuses = [c.status for c in running.slack.calls("chat.postMessage")[before:]]
    assert statuses[0] == 429 and statuses[-1] == 200, statuses
    assert len(posted(running, group)) == 1


def test_server_errors_are_retried(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    slack = running.slack
    real = slack._dispatch
    failures = iter([503, 500])

    def flaky(name: str, args: dict[str, Any], token: str | None) -> Any:
        if name == "chat.postMessage":
            status = next(failures, None)
            if status is not None:
                return status, {"ok": False, "error": "fatal_error"}, {}
        return real(name, args, token)

    monkeypatch.setattr(slack, "_dispatch", flaky)
    group = '{}:{alertname="OpsbotFlaky"}'
    deliver(running, group, alert("OpsbotFlaky"))
    before = len(slack.calls("chat.postMessage"))
    assert [d.outcome for d in drain(running.worker())] == ["posted"]
    statuses = [c.status for c in slack.calls("chat.postMessage")[before:]]
    assert statuses == [503, 500, 200]
    assert len(posted(running, group)) == 1


def _history(slack_state: state.SlackState, args: dict[str, Any]) -> dict[str, Any]:
    """conversations.history, which the lab's fake lacks (reported): newest first."""
    channel = slack_state.channel(args.get("channel"))
    oldest = float(args.get("oldest") or 0)
    found = [
        m
        for m in slack_state.messages(channel.id)
        if m.get("thread_ts") in (None, m["ts"]) and float(m["ts"]) > oldest
    ]
    return {"messages": found[::-1], "has_more": False, "response_metadata": {"next_cursor": ""}}


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from bot.config import Settings
    from bot.slack import alert_messages, client
    from bot.store import Store
    from bot import worker

    settings = Settings(
        cluster_name=os.environ["T_CLUSTER"],
        slack_api_url=os.environ["T_SLACK_URL"],
        slack_bot_token=os.environ["T_SLACK_TOKEN"],
    )
    store = Store(os.environ["T_DB"])
    kill = lambda ts: os.kill(os.getpid(), signal.SIGKILL)  # after the post, before recording
    messages = alert_messages.AlertMessages(
        store, client.web_client(settings), settings, lease_seconds=1, on_posted=kill
    )
    handler = worker.AlertHandler(store, None, messages=messages)
    worker.Worker(store, {"alert": handler}, lease_seconds=1).run_once()
    sys.exit(3)  # never reached
    """
)


def test_a_worker_killed_after_posting_leaves_exactly_one_message(
    running: Running, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wait_for: WaitFor
) -> None:
    monkeypatch.setitem(methods.METHODS, "conversations.history", _history)
    group = '{}:{alertname="OpsbotKilled"}'
    deliver(running, group, alert("OpsbotKilled"))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "T_CLUSTER": running.settings.cluster_name,
        "T_SLACK_URL": running.settings.slack_api_url,
        "T_SLACK_TOKEN": running.slack.token,
        "T_DB": str(running.store.path),
    }
    child = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=ROOT, timeout=60, check=False
    )
    assert child.returncode == -9
    [message] = posted(running, group)
    key = alert_messages.group_key(running.settings.cluster_name, group)
    row = alert_messages.get_row(running.store, key=key)
    assert row is not None and row.ts is None  # posted, never recorded

    worker = running.worker()
    done: list[Done] = []

    def finished() -> bool:  # once the dead worker's leases run out
        done.extend(drain(worker))
        return any(d.outcome != "retry" for d in done)

    wait_for(finished, timeout=30)
    assert [d.outcome for d in done if d.outcome != "retry"] == ["posted"], done
    assert len(posted(running, group)) == 1
    row = alert_messages.get_row(running.store, key=key)
    assert row is not None and row.ts == message["ts"]
    assert running.slack.calls("conversations.history")
    assert any(c.args.get("ts") == message["ts"] for c in running.slack.calls("chat.update"))
