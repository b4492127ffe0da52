"""The slack-bolt app: verify what Slack sends, write it to the inbox, acknowledge.

Nothing here does the work: every listener turns what Slack sent into a job in the store and
acknowledges; workers do the rest (``bot.slack.chat``, ``bot.slack.commands``, the alert and
diagnose handlers), so a restart resumes them. The job is written *before* the acknowledgement:
events (which bolt acknowledges itself) are written by a listener middleware, which runs before
bolt's ack; actions and the slash command write, then ``ack()``.

Redelivery: Slack re-sends an event it thinks was not acknowledged (same ``event_id``, with
``X-Slack-Retry-Num``). Its id is recorded in ``slack_events`` and the job's dedupe key names
the message (channel and ts), so a redelivery, or the ``message`` event that accompanies an
``app_mention`` of the same post, makes no second job.

Served over HTTP by ``http_handler`` (bolt checks the signature and refuses a timestamp more
than 5 minutes off with 401, before any listener runs), or over Socket Mode by ``socket_mode``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltRequest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot import logs, server
from bot.config import Settings
from bot.slack import client as slack_client
from bot.store import Store

log = logs.get("opsbot.slack.app")

CHAT_JOB = "chat"
COMMAND_JOB = "command"
SILENCE_JOB = "silence"
ACK_JOB = "ack"
DIAGNOSE_JOB = "diagnose"
ACTIONS = {"opsbot_diagnose": DIAGNOSE_JOB, "opsbot_silence": SILENCE_JOB, "opsbot_ack": ACK_JOB}
"""Button action ids and the job kind each click enqueues (the value carries a group id)."""
COMMAND = "/opsbot"
THREAD_KIND = "chat-thread"
"""``slack_messages`` rows for threads the bot answers in (follow-ups need no mention)."""

Next = Callable[[], Any]


def build_app(*, settings: Settings, store: Store, client: WebClient | None = None) -> App:
    """The bolt app with every listener registered. Socket Mode (``SLACK_APP_TOKEN``) needs no
    signing secret; HTTP mode refuses to start without one."""
    socket = settings.slack_app_token is not None
    secret = settings.slack_signing_secret
    if not socket and (secret is None or not secret.get_secret_value()):
        raise ValueError("SLACK_SIGNING_SECRET is not set: Slack's HTTP events cannot be verified")
    web = client or slack_client.web_client(settings)
    app = App(
        token=web.token,
        client=web,
        signing_secret=secret.get_secret_value() if secret is not None else None,
        process_before_response=False,
        request_verification_enabled=not socket,
        token_verification_enabled=False,
        logger=None,
    )
    register(app, store=store)
    return app


def register(app: App, *, store: Store) -> None:
    """The listeners: each writes one job and acknowledges."""
    record = _Recorder(store)
    app.event("app_mention", middleware=[record.mention])(_acknowledged)
    app.event("message", middleware=[record.message])(_acknowledged)
    for action_id in ACTIONS:
        app.action(action_id)(record.action)
    app.command(COMMAND)(record.command)


def _acknowledged() -> None:
    """Events are acknowledged by bolt; the middleware already wrote the job."""


class _Recorder:
    """Turns Slack payloads into jobs (one dedupe key per thing Slack could send twice)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- events ------------------------------------------------------------------------------
    def mention(self, body: dict[str, Any], next: Next) -> Any:
        event = body.get("event", {})
        if self._first_delivery(body) and not _from_a_bot(event):
            self._remember_thread(event["channel"], _thread_of(event))
            self._chat(event, source="mention")
        return next()

    def message(self, body: dict[str, Any], context: BoltContext, next: Next) -> Any:
        event = body.get("event", {})
        if self._first_delivery(body) and self._wanted(event, context.bot_user_id):
            self._chat(event, source="dm" if event.get("channel_type") == "im" else "thread")
        return next()

    def _wanted(self, event: dict[str, Any], bot_user_id: str | None) -> bool:
        """A person's plain message in a DM, or in a thread the bot answers in, not mentioning
        the bot (the ``app_mention`` of that post makes the job)."""
        if event.get("subtype") or _from_a_bot(event) or not event.get("text"):
            return False
        if event.get("channel_type") == "im":
            return True
        mentioned = bot_user_id is not None and f"<@{bot_user_id}>" in event["text"]
        return bool(
            event.get("thread_ts")
            and not mentioned
            and self.known_thread(event["channel"], event["thread_ts"])
        )

    def _first_delivery(self, body: dict[str, Any]) -> bool:
        event_id = str(body.get("event_id") or "")
        if not event_id:
            return True
        cursor = self.store.db.execute(
            "INSERT OR IGNORE INTO slack_events (event_id, received_at) VALUES (?, ?)",
            [event_id, self.store.clock()],
        )
        if cursor.rowcount == 0:
            log.info("slack.event_redelivered", event_id=event_id)
            return False
        return True

    def _chat(self, event: dict[str, Any], *, source: str) -> None:
        channel, ts = event["channel"], event["ts"]
        payload = {
            "channel": channel,
            "ts": ts,
            "thread_ts": _thread_of(event),
            "user": event.get("user", ""),
            "text": event.get("text", ""),
            "source": source,
        }
        job_id, new = self.store.enqueue(CHAT_JOB, f"slack-chat:{channel}:{ts}", payload)
        log.info("slack.chat_enqueued", job=job_id, new=new, source=source, channel=channel)

    def _remember_thread(self, channel: str, thread_ts: str) -> None:
        now = self.store.clock()
        try:
            self.store.db.execute(
                "INSERT OR IGNORE INTO slack_messages "
                "(kind, key, channel, ts, thread_ts, state, created_at, updated_at) "
                "VALUES (?, ?, ?, NULL, ?, '{}', ?, ?)",
                [THREAD_KIND, thread_key(channel, thread_ts), channel, thread_ts, now, now],
            )
        except sqlite3.Error:
            log.exception("slack.thread_not_recorded", channel=channel, thread_ts=thread_ts)

    def known_thread(self, channel: str, thread_ts: str) -> bool:
        row = self.store.db.execute(
            "SELECT 1 FROM slack_messages WHERE key = ?", [thread_key(channel, thread_ts)]
        ).fetchone()
        return row is not None

    # -- interactions and the slash command --------------------------------------------------
    def action(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        kind = ACTIONS[action["action_id"]]
        value = str(action.get("value") or action.get("selected_option", {}).get("value") or "")
        group, _, option = value.partition(":")
        container = body.get("container", {})
        payload: dict[str, Any] = {
            "group_id": int(group) if group.isdigit() else group,
            "option": option,
            "user": body.get("user", {}).get("id", ""),
            "channel": container.get("channel_id") or body.get("channel", {}).get("id", ""),
            "message_ts": container.get("message_ts", ""),
            "response_url": body.get("response_url", ""),
        }
        key = f"slack-action:{action['action_id']}:{payload['message_ts']}:{action['action_ts']}"
        job_id, new = self.store.enqueue(kind, key, payload)
        log.info("slack.action_enqueued", job=job_id, new=new, kind=kind, group=group)
        ack()

    def command(self, ack: Ack, body: dict[str, Any]) -> None:
        payload = {
            key: str(body.get(key, ""))
            for key in ("text", "user_id", "user_name", "channel_id", "response_url", "trigger_id")
        }
        key = f"slack-command:{payload['trigger_id'] or payload['response_url']}"
        job_id, new = self.store.enqueue(COMMAND_JOB, key, payload)
        log.info("slack.command_enqueued", job=job_id, new=new, text=payload["text"][:80])
        ack()


def thread_key(channel: str, thread_ts: str) -> str:
    return f"{THREAD_KIND}:{channel}:{thread_ts}"


def remember_thread(store: Store, channel: str, thread_ts: str) -> None:
    """Mark a thread as one the bot answers in (so follow-ups there need no mention)."""
    _Recorder(store)._remember_thread(channel, thread_ts)


def _thread_of(event: dict[str, Any]) -> str:
    return str(event.get("thread_ts") or event["ts"])


def _from_a_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message"


# -- serving -----------------------------------------------------------------------------------
def http_handler(app: App) -> server.Handler:
    """``POST /slack/events`` on the bot's Router: the raw body and headers go to bolt, which
    verifies the signature and timestamp (401 otherwise) and dispatches."""

    def handle(request: server.Request) -> server.Response:
        body = request.body().decode("utf-8", errors="replace")
        bolt_request = BoltRequest(
            body=body,
            query=dict[str, Sequence[str]](request.query),
            headers={k: [v] for k, v in request.headers.items()},
        )
        answer = app.dispatch(bolt_request)
        headers = {k: v for k, v in answer.first_headers().items() if k.lower() != "content-length"}
        return server.Response(answer.status, str(answer.body).encode(), headers)

    return handle


class SocketMode:
    """Socket Mode (``SLACK_APP_TOKEN``): ``start()`` connects without blocking, ``stop()``."""

    def __init__(self, app: App, settings: Settings) -> None:
        if settings.slack_app_token is None:
            raise ValueError("SLACK_APP_TOKEN is not set: Socket Mode is not configured")
        self.handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())

    def start(self) -> None:
        self.handler.connect()  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        self.handler.close()  # type: ignore[no-untyped-call]


MENTION = re.compile(r"<@[A-Z0-9]+>")


def strip_mentions(text: str) -> str:
    """The text without ``<@U…>`` mentions (what the person asked)."""
    return MENTION.sub("", text).strip()
