"""One Slack message per Alertmanager group, posted once and then updated in place.

Each group has a ``slack_messages`` row (key ``alert-group:{cluster}:{group_key}``). ``sync``
renders the group's stored alerts with ``blocks.alert_group`` and posts the first time, updates
after: a repeat or a resolution changes the message, never adds one; once every alert of the
group is resolved the message says so and loses its buttons.

Exactly once across crashes: the row (the intent) is written before ``chat.postMessage``, and
the post carries the row's key as message metadata. When a row has an intent but no ts, a
previous attempt may have posted and died before recording it, so the channel's history is
searched for that metadata before posting again. A lease on the row keeps two workers from
posting or updating the same group at once (the loser is told to come back: ``Busy``).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk import WebClient

from bot import alerts, logs
from bot.config import Settings
from bot.slack import blocks
from bot.store import Store, dumps

log = logs.get("opsbot.slack.alerts")

KIND = "alert-group"
EVENT_TYPE = "opsbot_alert_group"
"""Message metadata event type of alert-group messages (how a lost post is found again)."""
LOOKBACK_SECONDS = 120.0
"""How far before the recorded intent the history search starts (clock skew, slow posts)."""
HISTORY_PAGES = 5

Action = Literal["posted", "updated", "recovered"]


class Busy(Exception):
    """Another worker holds the message's lease; try again after ``seconds``."""

    def __init__(self, key: str, seconds: float) -> None:
        super().__init__(f"{key} is being posted by another worker")
        self.seconds = seconds


@dataclass(frozen=True)
class Row:
    """A ``slack_messages`` row."""

    id: int
    kind: str
    key: str
    channel: str
    ts: str | None
    thread_ts: str | None
    state: dict[str, Any]


@dataclass(frozen=True)
class Synced:
    """The group's message after ``sync``."""

    id: int
    """The row id: what the message's buttons carry (``group_id``)."""
    key: str
    channel: str
    ts: str
    action: Action
    resolved: bool


def group_key(cluster: str, group: str) -> str:
    return f"{KIND}:{cluster}:{group}"


# -- the slack_messages table (shared with diagnosis_posts) -----------------------------------
def claim_row(
    store: Store,
    *,
    kind: str,
    key: str,
    channel: str,
    thread_ts: str | None = None,
    state: Mapping[str, Any] | None = None,
    lease_seconds: float,
) -> tuple[Row, str, bool]:
    """The row for ``key`` (created with ``state`` as the intent), leased to the caller.

    Returns (row, lease token, created); raises Busy while someone else's lease runs.
    """
    now = store.clock()
    token = uuid.uuid4().hex
    with store.transaction() as db:
        cursor = db.execute(
            "INSERT OR IGNORE INTO slack_messages (kind, key, channel, thread_ts, state,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [kind, key, channel, thread_ts, dumps({**(state or {}), "intent_at": now}), now, now],
        )
        created = cursor.rowcount == 1
        row = _row(db.execute(f"{_SELECT} WHERE key = ?", [key]).fetchone())
        until = float(row.state.get("lease_until") or 0)
        if until > now and row.state.get("lease") is not None:
            raise Busy(key, max(1.0, until - now))
        leased = {**row.state, "lease": token, "lease_until": now + lease_seconds}
        db.execute("UPDATE slack_messages SET state = ? WHERE id = ?", [json.dumps(leased), row.id])
    return dataclasses.replace(row, state=leased), token, created


def save_row(
    store: Store, row_id: int, token: str, *, release: bool = False, **changes: Any
) -> Row:
    """Record ``ts``/``channel`` and ``state`` changes under the caller's lease."""
    state_changes: dict[str, Any] = changes.pop("state", {})
    with store.transaction() as db:
        row = _row(db.execute(f"{_SELECT} WHERE id = ?", [row_id]).fetchone())
        if row.state.get("lease") != token:
            raise Busy(row.key, 1.0)  # our lease ran out and someone else took over
        state = {**row.state, **state_changes}
        if release:
            state.pop("lease", None)
            state.pop("lease_until", None)
        ts = changes.get("ts", row.ts)
        channel = changes.get("channel", row.channel)
        db.execute(
            "UPDATE slack_messages SET ts = ?, channel = ?, state = ?, updated_at = ? WHERE id = ?",
            [ts, channel, dumps(state), store.clock(), row_id],
        )
    return Row(row.id, row.kind, row.key, channel, ts, row.thread_ts, state)


def release_row(store: Store, row_id: int, token: str) -> None:
    """Give the lease back (after a failure) so a retry need not wait for it to run out."""
    with store.transaction() as db:
        db.execute(
            "UPDATE slack_messages SET state = json_remove(state, '$.lease', '$.lease_until')"
            " WHERE id = ? AND json_extract(state, '$.lease') = ?",
            [row_id, token],
        )


def get_row(store: Store, *, key: str | None = None, row_id: int | None = None) -> Row | None:
    where, value = ("key = ?", key) if key is not None else ("id = ?", row_id)
    found = store.db.execute(f"{_SELECT} WHERE {where}", [value]).fetchone()
    return None if found is None else _row(found)


_SELECT = "SELECT id, kind, key, channel, ts, thread_ts, state FROM slack_messages"


def _row(values: Any) -> Row:
    row_id, kind, key, channel, ts, thread_ts, state = values
    return Row(row_id, kind, key, channel, ts, thread_ts, json.loads(state))


def find_posted(
    client: WebClient,
    *,
    channel: str,
    key: str,
    event_type: str,
    oldest: float,
    thread_ts: str | None = None,
) -> dict[str, Any] | None:
    """A message already posted with metadata (``event_type``, ``key``): in the channel's
    history since ``oldest``, or in ``thread_ts``'s replies."""
    cursor: str | None = None
    for _ in range(HISTORY_PAGES):
        args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": 200}
        if cursor:
            args["cursor"] = cursor
        if thread_ts is None:
            page = client.conversations_history(oldest=f"{oldest:.6f}", **args)
        else:
            page = client.conversations_replies(ts=thread_ts, **args)
        for message in page.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == event_type and payload.get("key") == key:
                return dict(message)
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None
    return None


# -- alert groups ---------------------------------------------------------------------------
class AlertMessages:
    """Posts and updates alert-group messages; one instance serves every worker thread."""

    def __init__(
        self,
        store: Store,
        client: WebClient,
        settings: Settings,
        *,
        lease_seconds: float = 60,
        on_posted: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.lease_seconds = lease_seconds
        self.on_posted = on_posted
        """Called with the ts right after a post, before it is recorded (tests crash here)."""

    def sync(self, payload: Mapping[str, Any]) -> Synced:
        """Bring the message of the job's group up to date with the store."""
        cluster, group = str(payload.get("cluster", "")), str(payload.get("group_key", ""))
        key = group_key(cluster, group)
        rows = group_alerts(self.store, cluster, group)
        if not rows:
            raise LookupError(f"no stored alerts for group {key}")
        channel = alerts.channel_for(rows[0]["labels"], self.settings.routes)
        intent = {"cluster": cluster, "group_key": group}
        row, token, created = claim_row(
            self.store,
            kind=KIND,
            key=key,
            channel=channel,
            state=intent,
            lease_seconds=self.lease_seconds,
        )
        try:
            synced = self._sync(row, token, rows, created=created)
        except BaseException:
            release_row(self.store, row.id, token)
            raise
        log.info(
            "alert group synced",
            key=key,
            action=synced.action,
            resolved=synced.resolved,
            alerts=len(rows),
        )
        return synced

    def _sync(self, row: Row, token: str, rows: list[dict[str, Any]], *, created: bool) -> Synced:
        key = row.key
        resolved = all(r["status"] == "resolved" for r in rows)
        message = blocks.alert_group(
            rows,
            cluster=str(row.state.get("cluster", "")),
            group_id=row.id,
            resolved=resolved,
            silence=row.state.get("silence"),
            acked_by=row.state.get("acked_by"),
        )
        action: Action = "updated"
        if row.ts is None:
            found = None
            if not created:  # an earlier attempt may have posted, then died
                found = find_posted(
                    self.client,
                    channel=row.channel,
                    key=key,
                    event_type=EVENT_TYPE,
                    oldest=float(row.state["intent_at"]) - LOOKBACK_SECONDS,
                )
            if found is None:
                ts, posted_in = self._post(row, message)
                row = save_row(self.store, row.id, token, ts=ts, channel=posted_in)
                action = "posted"
            else:
                row = save_row(self.store, row.id, token, ts=str(found["ts"]))
                action = "recovered"
        if action != "posted":
            assert row.ts is not None
            self.client.chat_update(
                channel=row.channel, ts=row.ts, text=message["text"], blocks=message["blocks"]
            )
        row = save_row(self.store, row.id, token, release=True, state={"resolved": resolved})
        assert row.ts is not None
        return Synced(row.id, key, row.channel, row.ts, action, resolved)

    def _post(self, row: Row, message: Mapping[str, Any]) -> tuple[str, str]:
        response = self.client.chat_postMessage(
            channel=row.channel,
            text=message["text"],
            blocks=message["blocks"],
            metadata={"event_type": EVENT_TYPE, "event_payload": {"key": row.key}},
        )
        ts = str(response["ts"])
        if self.on_posted is not None:
            self.on_posted(ts)
        return ts, str(response["channel"])


def group_alerts(store: Store, cluster: str, group: str) -> list[dict[str, Any]]:
    """A group's alerts as the store holds them, the latest instance of each fingerprint,
    first received first."""
    found = store.db.execute(
        "SELECT fingerprint, max(starts_at) FROM alerts WHERE cluster = ? AND group_key = ?"
        " GROUP BY fingerprint ORDER BY min(received_at), fingerprint",
        [cluster, group],
    ).fetchall()
    rows = [store.get_alert(fp, starts_at) for fp, starts_at in found]
    return [r for r in rows if r is not None]
