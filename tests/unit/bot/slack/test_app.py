"""The Slack app end to end over the lab: signed requests to POST /slack/events, jobs in the
store, workers answering in the fake Slack, silences in the real Alertmanager."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bot import server
from bot.slack import app as slack_app
from bot.slack import chat, commands
from bot.slack import client as slack_client
from bot.store import AlertRecord, Store
from bot.worker import Handler, Worker
from lab import up
from lab.scenario import loader
from lab.slack.sender import SlackSender
from lab.slack.server import SlackServer
from tests.conftest import WaitFor

ROOT = Path(__file__).resolve().parents[4]
CHANNEL = "C0GENAIALR"


@dataclass
class Bot:
    lab: up.Lab
    store: Store
    url: str
    sender: SlackSender


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    scenario = loader.load_file(ROOT / "scenarios" / "gpu-oom-kv-cache-pressure.yaml")
    db = tmp_path_factory.mktemp("slack") / "opsbot.sqlite"
    with up.Lab(scenario) as lab, pytest.MonkeyPatch.context() as mp:
        lab.start(deliver_alerts=False)
        for key, value in lab.env().items():
            if key.startswith("AWS_"):
                mp.setenv(key, value)
        settings = lab.settings(db_path=db, llm_base_url=None)
        store = Store(db)
        web = slack_client.web_client(settings)
        bolt = slack_app.build_app(settings=settings, store=store, client=web)
        router = server.routes(
            settings=settings, store=store, slack_events=slack_app.http_handler(bolt)
        )
        http = server.serve(settings, store, host="127.0.0.1", port=0, router=router)
        cmds = commands.Commands(settings=settings, store=store, client=web)
        handlers: dict[str, Handler] = {
            slack_app.CHAT_JOB: chat.ChatHandler(settings=settings, store=store, client=web),
            slack_app.COMMAND_JOB: cmds.command,
            slack_app.SILENCE_JOB: cmds.silence_button,
            slack_app.ACK_JOB: cmds.ack_button,
        }
        stop = threading.Event()
        worker = threading.Thread(
            target=Worker(store, handlers, name="test", retry_base_seconds=0.1).run,
            args=(stop,),
            kwargs={"idle_seconds": 0.05},
            daemon=True,
        )
        worker.start()
        assert lab.slack is not None
        sender = SlackSender(
            f"{http.url}/slack/events",
            up.SLACK_SIGNING_SECRET,
            workspace=lab.slack.workspace,
            response_urls=lab.slack.response_url,
        )
        try:
            yield Bot(lab, store, http.url, sender)
        finally:
            stop.set()
            worker.join(timeout=10)
            http.stop()
            store.close()


def _slack(bot: Bot) -> SlackServer:
    assert bot.lab.slack is not None
    return bot.lab.slack


def _jobs(bot: Bot, kind: str) -> list[tuple[str, str]]:
    rows = bot.store.db.execute(
        "SELECT dedupe_key, status FROM jobs WHERE kind = ? ORDER BY id", [kind]
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _bot_replies(bot: Bot, thread_ts: str) -> list[dict[str, object]]:
    thread = _slack(bot).messages(CHANNEL, thread_ts)
    return [m for m in thread if m.get("bot_id")]


def _ask(bot: Bot, text: str) -> dict[str, object]:
    """A person's post with a mention: in the fake Slack (to react on), then the event."""
    posted = _slack(bot).add_message(CHANNEL, f"<@U0OPSBOT01> {text}", user="alice")
    delivery = bot.sender.app_mention(text, user="alice", channel=CHANNEL, ts=posted["ts"])
    assert delivery.status == 200, delivery.text
    return posted


def test_a_mention_is_answered_in_its_thread(bot: Bot, wait_for: WaitFor) -> None:
    posted = _ask(bot, "why is llama-3-8b crashing?")
    ts = str(posted["ts"])
    wait_for(lambda: _bot_replies(bot, ts), timeout=60)
    wait_for(
        lambda: any(
            r["name"] == "white_check_mark"
            for r in _slack(bot).message(CHANNEL, ts).get("reactions", [])
        )
    )
    reacted = [(c.args["name"], c.args["timestamp"]) for c in _slack(bot).calls("reactions.add")]
    assert ("eyes", ts) in reacted and ("white_check_mark", ts) in reacted
    names = [r["name"] for r in _slack(bot).message(CHANNEL, ts).get("reactions", [])]
    assert names == ["white_check_mark"]  # 👀 came off
    reply = _bot_replies(bot, ts)[0]
    assert reply["thread_ts"] == ts
    assert "llama-3-8b" in json.dumps(reply) or "kv" in json.dumps(reply).lower()


def test_a_follow_up_without_mention_is_answered_in_the_thread(bot: Bot, wait_for: WaitFor) -> None:
    posted = _ask(bot, "is llama-3-8b healthy?")
    ts = str(posted["ts"])
    wait_for(lambda: _bot_replies(bot, ts), timeout=60)
    before = len(_bot_replies(bot, ts))
    follow = _slack(bot).add_message(CHANNEL, "and what should we do?", user="alice", thread_ts=ts)
    delivery = bot.sender.message(
        "and what should we do?", user="alice", channel=CHANNEL, ts=follow["ts"], thread_ts=ts
    )
    assert delivery.status == 200
    wait_for(lambda: len(_bot_replies(bot, ts)) > before, timeout=60)
    keys = [k for k, _ in _jobs(bot, "chat")]
    assert f"slack-chat:{CHANNEL}:{follow['ts']}" in keys


def test_a_message_in_an_unknown_thread_is_ignored(bot: Bot) -> None:
    delivery = bot.sender.message("chatter", user="bob", channel=CHANNEL, thread_ts="1.000001")
    assert delivery.status == 200
    assert not [k for k, _ in _jobs(bot, "chat") if k.endswith(delivery.payload["event"]["ts"])]


def test_a_redelivered_event_is_handled_once(bot: Bot, wait_for: WaitFor) -> None:
    posted = _slack(bot).add_message(CHANNEL, "<@U0OPSBOT01> help", user="bob")
    event = bot.sender.message_event(
        "<@U0OPSBOT01> help", user="bob", channel=CHANNEL, ts=posted["ts"], kind="app_mention"
    )
    envelope = bot.sender.envelope(event)
    assert bot.sender.send_event(envelope).status == 200
    assert bot.sender.send_event(envelope, retry_num=1).status == 200
    assert bot.sender.send_event(envelope, retry_num=2, retry_reason="http_error").status == 200
    key = f"slack-chat:{CHANNEL}:{posted['ts']}"
    assert [k for k, _ in _jobs(bot, "chat") if k == key] == [key]
    wait_for(lambda: _bot_replies(bot, str(posted["ts"])))
    wait_for(lambda: (key, "done") in _jobs(bot, "chat"))
    assert len(_bot_replies(bot, str(posted["ts"]))) == 1


def test_a_bad_signature_or_an_old_timestamp_is_refused(bot: Bot) -> None:
    before = bot.store.count_jobs()
    wrong = SlackSender(bot.sender.url, "not-the-secret", workspace=bot.sender.workspace)
    assert wrong.app_mention("hello", user="alice", channel=CHANNEL).status == 401
    envelope = bot.sender.envelope(
        bot.sender.message_event("<@U0OPSBOT01> hi", user="alice", channel=CHANNEL)
    )
    body = json.dumps(envelope).encode()
    stale = bot.sender.post(body, "application/json", timestamp=int(time.time()) - 6 * 60)
    assert stale.status == 401
    assert bot.sender.post(body, "application/json", signed=False).status == 401
    assert bot.store.count_jobs() == before


def test_slash_check_and_status_reply(bot: Bot, wait_for: WaitFor) -> None:
    slack = _slack(bot)
    for text in ("status", "check"):
        delivery = bot.sender.slash_command("/opsbot", text, user="carol", channel=CHANNEL)
        assert delivery.status == 200, delivery.text
    wait_for(lambda: len(slack.responses()) >= 2, timeout=60)
    bodies = [r.body for r in slack.responses()]
    assert all(b.get("response_type") == "in_channel" for b in bodies[-2:])
    assert all(b.get("blocks") or b.get("text") for b in bodies[-2:])


def test_the_silence_button_creates_a_silence_in_alertmanager(bot: Bot, wait_for: WaitFor) -> None:
    cluster = bot.lab.scenario.cluster.name
    bot.store.record_alert(
        AlertRecord(
            fingerprint="abc123",
            starts_at="2025-01-01T00:00:00Z",
            status="firing",
            alertname="GPUMemoryHigh",
            severity="warning",
            cluster=cluster,
            labels={"alertname": "GPUMemoryHigh", "cluster": cluster},
            annotations={},
            group_key="{}:{alertname=GPUMemoryHigh}",
            ends_at=None,
        ),
        kind="test-alert",
        dedupe_key="test-alert:abc123",
        payload={},
    )
    message = _slack(bot).add_message(CHANNEL, "GPUMemoryHigh", user="alice")
    now = time.time()
    cursor = bot.store.db.execute(
        "INSERT INTO slack_messages (kind, key, channel, ts, created_at, updated_at) "
        "VALUES ('alert-group', ?, ?, ?, ?, ?)",
        [
            f"alert-group:{cluster}:{{}}:{{alertname=GPUMemoryHigh}}",
            CHANNEL,
            message["ts"],
            now,
            now,
        ],
    )
    group_id = cursor.lastrowid
    delivery = bot.sender.click(
        "opsbot_silence", f"{group_id}:4h", user="alice", channel=CHANNEL, message_ts=message["ts"]
    )
    assert delivery.status == 200, delivery.text
    assert bot.lab.alertmanager is not None
    url = f"{bot.lab.alertmanager.url}/api/v2/silences"

    def silenced() -> list[dict[str, object]]:
        found = requests.get(url, timeout=5).json()
        return [
            s
            for s in found
            if {"name": "alertname", "value": "GPUMemoryHigh", "isRegex": False, "isEqual": True}
            in s["matchers"]
        ]

    silence = wait_for(silenced, timeout=30)[0]
    assert silence["createdBy"] == "slack:U0ALICE001"
    wait_for(
        lambda: any(
            "silenced for 4h" in str(m.get("text")) for m in _bot_replies(bot, message["ts"])
        )
    )
