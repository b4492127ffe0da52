"""Deliver to the bot what Slack would: signed Events API envelopes, slash commands and clicks.

Slack signs each request (docs.slack.dev/authentication/verifying-requests-from-slack): header
``X-Slack-Request-Timestamp`` (Unix seconds) and ``X-Slack-Signature: v0=<hex>``, the hex being
HMAC-SHA256 with the signing secret over ``v0:{timestamp}:{raw body}``. Events arrive as JSON;
slash commands as a form; interactions as a form with one ``payload`` field holding JSON. Slack
retries an event the app did not acknowledge in 3 s, adding ``X-Slack-Retry-Num`` and
``X-Slack-Retry-Reason``.

To test rejection: a sender built with the wrong secret signs wrongly; a clock in the past makes
stale timestamps; ``post`` takes an explicit ``timestamp``/``signature`` or ``signed=False``.
Plain ``urllib``: the lab must not lean on slack_sdk or slack_bolt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from lab.slack import workspace as ws

ResponseUrls = Callable[[str, str | None, str | None], str]
"""(channel, message_ts, user) -> a response_url; ``SlackServer.response_url`` fits."""

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def new_event_id() -> str:
    return "Ev" + secrets.token_hex(5).upper()


def new_trigger_id() -> str:
    return f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**13)}.{secrets.token_hex(16)}"


@dataclass(frozen=True)
class Delivery:
    """What the bot answered, and what was sent."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    """Seconds until the answer: Slack gives up (and retries events) after 3."""
    payload: dict[str, Any] = field(default_factory=dict)
    """The envelope, command form or interaction payload that was sent."""

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class SlackSender:
    """Sends to the bot's Request URL(s) as Slack would, for ``workspace``'s team and app.

    Users and channels may be given by id or name (``"alice"``, ``"#genai-alerts"``).
    """

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        workspace: ws.Workspace | None = None,
        commands_url: str | None = None,
        interactions_url: str | None = None,
        response_urls: ResponseUrls | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ):
        self.url = _http_url(url)
        self.commands_url = _http_url(commands_url or url)
        self.interactions_url = _http_url(interactions_url or url)
        self.signing_secret = signing_secret
        self.workspace = workspace or ws.Workspace()
        self.response_urls = response_urls
        self.clock = clock
        self.timeout = timeout
        self._last_us = 0

    # -- raw ---------------------------------------------------------------------------------
    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        url: str | None = None,
        timestamp: int | None = None,
        signature_header: str | None = None,
        signed: bool = True,
        headers: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Delivery:
        """POST ``body`` signed for now (or ``timestamp``); ``signature_header`` overrides."""
        sent = {"Content-Type": content_type, "User-Agent": USER_AGENT, **(headers or {})}
        if signed:
            ts = int(self.clock()) if timestamp is None else timestamp
            sent["X-Slack-Request-Timestamp"] = str(ts)
            sent["X-Slack-Signature"] = signature_header or signature(self.signing_secret, ts, body)
        target = _http_url(url or self.url)
        request = urllib.request.Request(target, data=body, headers=sent, method="POST")  # noqa: S310
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, answer, got = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as e:
            status, answer, got = e.code, e.read(), dict(e.headers)
        return Delivery(status, got, answer, time.monotonic() - started, payload or {})

    # -- Events API --------------------------------------------------------------------------
    def envelope(
        self, event: dict[str, Any], *, event_id: str | None = None, event_time: int | None = None
    ) -> dict[str, Any]:
        """An ``event_callback`` envelope around ``event``."""
        w = self.workspace
        return {
            "token": w.verification_token,
            "team_id": w.team_id,
            "context_team_id": w.team_id,
            "context_enterprise_id": None,
            "api_app_id": w.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or new_event_id(),
            "event_time": event_time if event_time is not None else int(self.clock()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": w.team_id,
                    "user_id": w.bot.id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24),
        }

    def send_event(
        self, envelope: dict[str, Any], *, retry_num: int | None = None, retry_reason: str = ""
    ) -> Delivery:
        """Deliver an envelope; with ``retry_num`` as Slack's redelivery of the same event."""
        headers = {}
        if retry_num is not None:
            headers = {
                "X-Slack-Retry-Num": str(retry_num),
                "X-Slack-Retry-Reason": retry_reason or "http_timeout",
            }
        body = json.dumps(envelope).encode()
        return self.post(body, "application/json", headers=headers, payload=envelope)

    def url_verification(self, challenge: str | None = None) -> Delivery:
        """The handshake Slack sends when the Request URL is saved; the bot echoes the challenge."""
        payload = {
            "token": self.workspace.verification_token,
            "challenge": challenge or secrets.token_urlsafe(32),
            "type": "url_verification",
        }
        return self.post(json.dumps(payload).encode(), "application/json", payload=payload)

    def message_event(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        kind: str = "message",
    ) -> dict[str, Any]:
        """A ``message`` (or ``app_mention``) event as a person's post produces it."""
        author = self._user(user)
        where = self._channel(channel)
        ts = ts or self.next_ts()
        event: dict[str, Any] = {
            "type": kind,
            "user": author,
            "text": text,
            "ts": ts,
            "team": self.workspace.team_id,
            "channel": where.id,
            "event_ts": ts,
            "blocks": [_rich_text(text)],
        }
        if author == self.workspace.bot.id:
            event["bot_id"] = self.workspace.bot_id
        else:
            event["client_msg_id"] = str(uuid.uuid4())
        if kind == "message":
            event["channel_type"] = where.channel_type
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def app_mention(
        self,
        text: str,
        *,
        user: str,
        channel: str = "#genai-alerts",
        ts: str | None = None,
        thread_ts: str | None = None,
    ) -> Delivery:
        """``@opsbot text`` in a channel (the mention is prepended unless ``text`` has it)."""
        mention = f"<@{self.workspace.bot.id}>"
        text = text if mention in text else f"{mention} {text}"
        event = self.message_event(
            text, user=user, channel=channel, ts=ts, thread_ts=thread_ts, kind="app_mention"
        )
        return self.send_event(self.envelope(event))

    def message(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        ts: str | None = None,
        thread_ts: str | None = None,
    ) -> Delivery:
        """A plain message in a channel, a thread (``thread_ts``) or a DM (a ``D…`` channel)."""
        event = self.message_event(text, user=user, channel=channel, ts=ts, thread_ts=thread_ts)
        return self.send_event(self.envelope(event))

    # -- slash commands ----------------------------------------------------------------------
    def command_form(
        self, command: str, text: str = "", *, user: str, channel: str = "#genai-alerts"
    ) -> dict[str, str]:
        """The form fields Slack posts for a slash command."""
        w = self.workspace
        author = w.user(user)
        where = self._channel(channel)
        return {
            "token": w.verification_token,
            "team_id": w.team_id,
            "team_domain": w.domain,
            "channel_id": where.id,
            "channel_name": where.name or "directmessage",
            "user_id": author.id if author else user,
            "user_name": author.name if author else user,
            "command": command,
            "text": text,
            "api_app_id": w.app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(where.id, None, author.id if author else user),
            "trigger_id": new_trigger_id(),
        }

    def slash_command(
        self, command: str, text: str = "", *, user: str, channel: str = "#genai-alerts"
    ) -> Delivery:
        form = self.command_form(command, text, user=user, channel=channel)
        body = urlencode(form).encode()
        return self.post(
            body, "application/x-www-form-urlencoded", url=self.commands_url, payload=form
        )

    # -- interactions ------------------------------------------------------------------------
    def block_actions_payload(
        self,
        action_id: str,
        value: str | None = None,
        *,
        user: str,
        channel: str,
        message: dict[str, Any] | None = None,
        message_ts: str | None = None,
        block_id: str = "actions",
        action_type: str = "button",
    ) -> dict[str, Any]:
        """A ``block_actions`` payload for a click on a message's button.

        ``message`` is the message clicked (e.g. from ``SlackServer.message``); without it a
        minimal bot message with ``message_ts`` stands in.
        """
        w = self.workspace
        where = self._channel(channel)
        author = w.user(user)
        user_id = author.id if author else user
        if message is None:
            message = {
                "type": "message",
                "user": w.bot.id,
                "bot_id": w.bot_id,
                "text": "",
                "ts": message_ts or self.next_ts(),
            }
        ts = message["ts"]
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": ts,
            "channel_id": where.id,
            "is_ephemeral": False,
        }
        if message.get("thread_ts") and message["thread_ts"] != ts:
            container["thread_ts"] = message["thread_ts"]
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": action_type,
            "action_ts": self.next_ts(),
        }
        if action_type == "button":
            action["text"] = {"type": "plain_text", "text": action_id, "emoji": True}
        if value is not None:
            action["value"] = value
        return {
            "type": "block_actions",
            "user": {
                "id": user_id,
                "username": author.name if author else user,
                "name": author.name if author else user,
                "team_id": w.team_id,
            },
            "api_app_id": w.app_id,
            "token": w.verification_token,
            "container": container,
            "trigger_id": new_trigger_id(),
            "team": {"id": w.team_id, "domain": w.domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": where.id, "name": where.name or "directmessage"},
            "message": message,
            "state": {"values": {}},
            "response_url": self._response_url(where.id, ts, user_id),
            "actions": [action],
        }

    def send_interaction(self, payload: dict[str, Any]) -> Delivery:
        """Any interaction payload (block_actions, view_submission…) as the ``payload`` field."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(
            body, "application/x-www-form-urlencoded", url=self.interactions_url, payload=payload
        )

    def click(
        self,
        action_id: str,
        value: str | None = None,
        *,
        user: str,
        channel: str,
        message: dict[str, Any] | None = None,
        message_ts: str | None = None,
        block_id: str = "actions",
    ) -> Delivery:
        """A button click on a message."""
        payload = self.block_actions_payload(
            action_id,
            value,
            user=user,
            channel=channel,
            message=message,
            message_ts=message_ts,
            block_id=block_id,
        )
        return self.send_interaction(payload)

    # -- helpers -----------------------------------------------------------------------------
    def next_ts(self) -> str:
        """A message-style ts from the sender's clock, strictly rising."""
        us = max(int(self.clock() * 1_000_000), self._last_us + 1)
        self._last_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _user(self, ref: str) -> str:
        found = self.workspace.user(ref)
        return found.id if found else ref

    def _channel(self, ref: str) -> ws.Channel:
        found = self.workspace.channel(ref)
        if found is not None:
            return found
        if ref.startswith("D"):
            return ws.Channel(id=ref, name="", im_user="")
        return ws.Channel(id=ref, name="", is_private=ref.startswith("G"))

    def _response_url(self, channel: str, message_ts: str | None, user: str | None) -> str:
        if self.response_urls is not None:
            return self.response_urls(channel, message_ts, user)
        w = self.workspace
        kind = "commands" if message_ts is None else "actions"
        return f"https://hooks.slack.com/{kind}/{w.team_id}/{secrets.randbelow(10**13)}/{secrets.token_urlsafe(18)}"


def _http_url(url: str) -> str:
    """Only http(s): urllib would also open ``file:`` URLs."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


def _rich_text(text: str) -> dict[str, Any]:
    """The rich_text block Slack attaches to a typed message (plain text only)."""
    return {
        "type": "rich_text",
        "block_id": secrets.token_urlsafe(3),
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }
