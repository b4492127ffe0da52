"""What the fake Slack holds: messages per channel and thread, ephemeral posts, files, views.

Kept apart from HTTP so the Web API methods and the test helpers read and change the same
state. Messages are plain dicts in Slack's shape; readers get deep copies. Not locked here: the
server serialises every change under ``SlackState.lock``.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.slack import workspace as ws

Message = dict[str, Any]


class SlackError(Exception):
    """A Web API error: answered as ``{"ok": false, "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Upload:
    """A file from ``files.getUploadURLExternal`` through the upload URL to completion."""

    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    data: bytes | None = None
    """The uploaded bytes; None until something is posted to the upload URL."""
    title: str | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    initial_comment: str | None = None
    created: int = 0


@dataclass(frozen=True)
class ResponseTarget:
    """What a ``response_url`` answers to: a channel, and the message an action came from."""

    id: str
    channel: str
    message_ts: str | None
    user: str | None


@dataclass(frozen=True)
class ResponsePost:
    """One post the bot made to a ``response_url``."""

    target: ResponseTarget
    body: dict[str, Any]
    at: float


class SlackState:
    def __init__(self, workspace: ws.Workspace, *, clock: Callable[[], float] = time.time):
        self.workspace = workspace
        self.clock = clock
        self.lock = threading.RLock()
        self._messages: dict[str, list[Message]] = {}
        self._dms: dict[str, ws.Channel] = {}
        self.ephemeral: list[dict[str, Any]] = []
        self.uploads: dict[str, Upload] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.response_targets: dict[str, ResponseTarget] = {}
        self.responses: list[ResponsePost] = []
        self._last_us = 0
        self._ids = itertools.count(1)

    # -- ids ---------------------------------------------------------------------------------
    def next_ts(self) -> str:
        """A message ts like ``1732755600.000100``: the clock in microseconds, strictly rising."""
        us = max(int(self.clock() * 1_000_000), self._last_us + 1)
        self._last_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def new_id(self, prefix: str) -> str:
        """A Slack-shaped id (``F…`` file, ``V…`` view, ``D…`` DM): prefix and 9 characters."""
        return f"{prefix}0LAB{next(self._ids):05d}"

    # -- channels ----------------------------------------------------------------------------
    def channel(self, ref: str | None) -> ws.Channel:
        """A channel by id or name; a user id means the bot's DM with that user (Slack opens it)."""
        if not ref:
            raise SlackError("channel_not_found")
        found = self.workspace.channel(ref)
        if found is not None:
            return found
        if ref in self._dms:
            return self._dms[ref]
        user = self.workspace.user(ref) if ref.startswith(("U", "W")) else None
        if user is None or user.is_bot:
            raise SlackError("channel_not_found")
        dm = self.workspace.im_with(user.id)
        if dm is None:
            dm = ws.Channel(id=self.new_id("D"), name="", im_user=user.id)
            self._dms[dm.id] = dm
        return dm

    # -- messages ----------------------------------------------------------------------------
    def post(self, channel: ws.Channel, message: Message, thread_ts: str | None = None) -> Message:
        """Store ``message`` with a new ts; in ``thread_ts``'s thread when given."""
        message = {"type": "message", **message, "ts": self.next_ts()}
        if thread_ts:
            root = self.find(channel.id, thread_ts, missing="thread_not_found")
            root_ts = root.get("thread_ts") or root["ts"]  # a reply's ts means its thread
            root = self.find(channel.id, root_ts, missing="thread_not_found")
            message["thread_ts"] = root_ts
            message["parent_user_id"] = root.get("user")
            replies = [*root.get("reply_users", [])]
            if message.get("user") and message["user"] not in replies:
                replies.append(message["user"])
            root.update(
                thread_ts=root_ts,
                reply_count=root.get("reply_count", 0) + 1,
                reply_users=replies,
                reply_users_count=len(replies),
                latest_reply=message["ts"],
            )
        self._messages.setdefault(channel.id, []).append(message)
        return copy.deepcopy(message)

    def find(
        self, channel_id: str, ts: str | None, *, missing: str = "message_not_found"
    ) -> Message:
        """The stored message itself (not a copy): callers change it in place."""
        for message in self._messages.get(channel_id, []):
            if message["ts"] == ts:
                return message
        raise SlackError(missing)

    def remove(self, channel_id: str, ts: str) -> None:
        message = self.find(channel_id, ts)
        self._messages[channel_id].remove(message)

    def messages(self, channel_id: str) -> list[Message]:
        """Every message in the channel, thread replies included, oldest first."""
        return copy.deepcopy(self._messages.get(channel_id, []))

    def thread(self, channel_id: str, ts: str) -> list[Message]:
        """A thread as ``conversations.replies`` lists it: the parent, then its replies."""
        root = self.find(channel_id, ts, missing="thread_not_found")
        root_ts = root.get("thread_ts") or root["ts"]
        return [
            copy.deepcopy(m)
            for m in self._messages.get(channel_id, [])
            if m["ts"] == root_ts or m.get("thread_ts") == root_ts
        ]

    # -- response_url ------------------------------------------------------------------------
    def response_target(self, channel: str, message_ts: str | None, user: str | None) -> str:
        target = ResponseTarget(self.new_id("R"), self.channel(channel).id, message_ts, user)
        self.response_targets[target.id] = target
        return target.id

    def respond(self, target_id: str, body: dict[str, Any]) -> None:
        """Apply a ``response_url`` post like Slack: replace or delete the source message, post
        in the channel (``response_type: in_channel``) or show it to the user only (default)."""
        target = self.response_targets.get(target_id)
        if target is None:
            raise SlackError("not_found")
        self.responses.append(ResponsePost(target=target, body=body, at=self.clock()))
        if body.get("delete_original") and target.message_ts:
            self.remove(target.channel, target.message_ts)
        elif body.get("replace_original") and target.message_ts:
            original = self.find(target.channel, target.message_ts)
            for key in ("text", "blocks", "attachments"):
                if key in body:
                    original[key] = body[key]
        elif body.get("response_type") == "in_channel":
            bot = self.workspace
            message = {"user": bot.bot.id, "bot_id": bot.bot_id, "text": body.get("text", "")}
            if "blocks" in body:
                message["blocks"] = body["blocks"]
            self.post(self.channel(target.channel), message, body.get("thread_ts"))
        else:
            self.ephemeral.append(
                {"channel": target.channel, "user": target.user, **body, "via": "response_url"}
            )
