"""Conversation memory per thread, in the store: follow-ups keep their context across restarts.

Only what people said and what the bot answered is kept (never tool output), each message
redacted and capped, and only the newest ``turns`` exchanges of a thread: memory stays small
enough to fit the prompt budget and never grows without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.store import Store
from tools import redact

MAX_CHARS = 1500
"""Per remembered message."""

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


class Memory:
    """The conversations of all threads; ``turns`` exchanges (two messages each) per thread."""

    def __init__(self, store: Store, *, turns: int) -> None:
        self.store = store
        self.turns = turns

    def history(self, thread_id: str) -> list[Message]:
        """The thread's remembered messages, oldest first."""
        rows = self.store.db.execute(
            "SELECT role, content FROM conversations WHERE thread_id = ? ORDER BY seq",
            [thread_id],
        ).fetchall()
        return [Message(role=row[0], content=row[1]) for row in rows]

    def add(self, thread_id: str, question: str, answer: str) -> None:
        """Remember one exchange and forget what falls out of the window."""
        now = self.store.clock()
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT coalesce(max(seq), 0) FROM conversations WHERE thread_id = ?", [thread_id]
            ).fetchone()
            seq = int(row[0])
            for offset, (role, text) in enumerate((("user", question), ("assistant", answer)), 1):
                db.execute(
                    "INSERT INTO conversations (thread_id, seq, role, content, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [thread_id, seq + offset, role, redact.redact(text)[:MAX_CHARS], now],
                )
            db.execute(
                "DELETE FROM conversations WHERE thread_id = ? AND seq <= ?",
                [thread_id, seq + 2 - 2 * self.turns],
            )
