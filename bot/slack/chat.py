"""The ``chat`` job: answer a mention, a DM or a follow-up in the thread it came from.

👀 on the question while working, the answer in the thread (the agent's thread id is
``channel:thread_ts``, so follow-ups there keep the conversation), then 👀 off and ✅ on.
"what can you do" / "help" gets the help message. A question may name a configured cluster
("on prod-apne2 …"); the default cluster otherwise.

Doing a job twice (a worker died after posting) does not answer twice: the answer is recorded
in ``slack_messages`` under the question's key once posted, and a recorded answer is not redone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import logs
from bot.agent import Agent
from bot.config import Settings
from bot.diagnose.model import Trigger
from bot.diagnose.service import UnknownCluster
from bot.slack import app as slack_app
from bot.slack import blocks
from bot.store import Job, Store
from bot.worker import GiveUp, Handled

log = logs.get("opsbot.slack.chat")

WORKING = "eyes"
DONE = "white_check_mark"
ANSWER_KIND = "chat-answer"
HELP = re.compile(
    r"^\s*(help|\?|what can you do\??|what do you do\??|how do i use you\??)\s*$", re.IGNORECASE
)
_BENIGN = {"already_reacted", "no_reaction", "message_not_found"}


class ChatHandler:
    """Handles ``chat`` jobs (payload: channel, ts, thread_ts, user, text, source)."""

    def __init__(
        self, *, settings: Settings, store: Store, client: WebClient, agent: Agent | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.agent = agent or Agent(settings, store=store)

    def __call__(self, job: Job) -> Handled:
        p = job.payload
        channel, ts, thread_ts = str(p["channel"]), str(p["ts"]), str(p["thread_ts"])
        answer_key = f"{ANSWER_KIND}:{channel}:{ts}"
        if self._answered(answer_key):
            return Handled("skipped")
        self._react("reactions_add", channel, ts, WORKING)
        question = slack_app.strip_mentions(str(p.get("text", "")))
        messages = self.reply(question, thread_id=f"{channel}:{thread_ts}")
        for message in messages:
            self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **dict(message))
        self._record(answer_key, channel, thread_ts)
        slack_app.remember_thread(self.store, channel, thread_ts)
        self._react("reactions_remove", channel, ts, WORKING)
        self._react("reactions_add", channel, ts, DONE)
        log.info("chat.answered", job=job.id, channel=channel, messages=len(messages))
        return Handled("posted")

    def reply(self, question: str, *, thread_id: str) -> Sequence[Mapping[str, Any]]:
        """The messages that answer ``question`` (help, or the agent's answer split to fit)."""
        if not question or HELP.match(question):
            return [blocks.help_message()]
        trigger = Trigger(
            kind="question", question=question, cluster=named_cluster(question, self.settings)
        )
        try:
            answer = self.agent.answer(trigger, thread_id=thread_id)
        except UnknownCluster as e:
            raise GiveUp(str(e)) from e
        return blocks.answer(answer.text, mode=answer.diagnosis.mode, fallback=answer.fallback)

    def _answered(self, key: str) -> bool:
        row = self.store.db.execute("SELECT 1 FROM slack_messages WHERE key = ?", [key])
        return row.fetchone() is not None

    def _record(self, key: str, channel: str, thread_ts: str) -> None:
        now = self.store.clock()
        self.store.db.execute(
            "INSERT OR IGNORE INTO slack_messages "
            "(kind, key, channel, ts, thread_ts, state, created_at, updated_at) "
            "VALUES (?, ?, ?, NULL, ?, '{}', ?, ?)",
            [ANSWER_KIND, key, channel, thread_ts, now, now],
        )

    def _react(self, method: str, channel: str, ts: str, name: str) -> None:
        """Reactions are decoration: a failure is logged, never fails the answer."""
        try:
            getattr(self.client, method)(channel=channel, timestamp=ts, name=name)
        except SlackApiError as e:
            if e.response.get("error") not in _BENIGN:
                log.warning("chat.reaction_failed", method=method, error=e.response.get("error"))


def named_cluster(question: str, settings: Settings) -> str | None:
    """The configured cluster the question names (the longest name that appears as a word),
    or None for the default cluster."""
    names = [settings.cluster_name, *(c.name for c in settings.clusters)]
    found = [
        name
        for name in names
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", question, re.IGNORECASE)
    ]
    return max(found, key=len) if found else None
