"""A diagnosis in an alert message's thread: "diagnosing…" at once, then the answer in place.

Each diagnosis has a ``slack_messages`` row keyed by the job that asked for it
(``diagnosis:{job key}``), so doing a job twice never posts twice: the reply is found again by
its metadata in the thread when a crash came between posting and recording it, and the answer
(diagnosis id, text) is recorded before the reply is updated, so a retry after a crash there
updates the reply without asking the agent again. Used by the alert handler for the severities
diagnosed automatically and by the Diagnose button (job kind ``diagnose``, payload
``{"group_id": …}``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot import logs
from bot.agent import Agent
from bot.diagnose import history
from bot.diagnose.model import Diagnosis, Trigger
from bot.diagnose.service import trigger_from_alert
from bot.slack import alert_messages, blocks
from bot.store import Store

log = logs.get("opsbot.slack.diagnosis")

KIND = "diagnosis"
JOB_KIND = "diagnose"
"""Jobs the Diagnose button enqueues: payload ``{"group_id": <slack_messages id>}``."""
EVENT_TYPE = "opsbot_diagnosis"


def row_key(job_key: str) -> str:
    return f"{KIND}:{job_key}"


class DiagnosisPosts:
    """Runs the agent for a trigger and shows the answer in a thread; thread-safe."""

    def __init__(
        self,
        store: Store,
        client: WebClient,
        agent: Agent,
        *,
        lease_seconds: float = 600,
        on_posted: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.agent = agent
        self.lease_seconds = lease_seconds
        """Longer than a diagnosis takes: the lease is held while the agent works."""
        self.on_posted = on_posted

    def run_for_group(self, group_id: int, *, key: str) -> Diagnosis:
        """Diagnose an alert group's message (the Diagnose button): its first firing alert,
        else its first alert, in its thread."""
        group = alert_messages.get_row(self.store, row_id=group_id)
        if group is None or group.kind != alert_messages.KIND or group.ts is None:
            raise LookupError(f"no posted alert group {group_id}")
        rows = alert_messages.group_alerts(
            self.store, str(group.state.get("cluster", "")), str(group.state.get("group_key", ""))
        )
        if not rows:
            raise LookupError(f"alert group {group_id} has no stored alerts")
        alert = next((r for r in rows if r["status"] == "firing"), rows[0])
        return self.run(
            key=key, channel=group.channel, thread_ts=group.ts, trigger=trigger_from_alert(alert)
        )

    def run(self, *, key: str, channel: str, thread_ts: str, trigger: Trigger) -> Diagnosis:
        """Post "diagnosing…" under ``thread_ts`` (once per ``key``), run the agent, and
        update the reply with the diagnosis; returns it."""
        row, token, created = alert_messages.claim_row(
            self.store,
            kind=KIND,
            key=row_key(key),
            channel=channel,
            thread_ts=thread_ts,
            lease_seconds=self.lease_seconds,
        )
        try:
            return self._run(row, token, trigger, created=created)
        except BaseException:
            alert_messages.release_row(self.store, row.id, token)
            raise

    def _run(
        self, row: alert_messages.Row, token: str, trigger: Trigger, *, created: bool
    ) -> Diagnosis:
        assert row.thread_ts is not None
        if row.ts is None:
            found = None
            if not created:  # an earlier attempt may have posted, then died
                found = alert_messages.find_posted(
                    self.client,
                    channel=row.channel,
                    key=row.key,
                    event_type=EVENT_TYPE,
                    oldest=0.0,
                    thread_ts=row.thread_ts,
                )
            ts = str(found["ts"]) if found is not None else self._post(row, trigger)
            row = alert_messages.save_row(self.store, row.id, token, ts=ts)
        diagnosis, text, fallback = self._answer(row, token, trigger)
        assert row.ts is not None
        if not row.state.get("done"):
            message = blocks.diagnosis(diagnosis, answer_text=text, fallback=fallback)
            self.client.chat_update(
                channel=row.channel, ts=row.ts, text=message["text"], blocks=message["blocks"]
            )
        alert_messages.save_row(self.store, row.id, token, release=True, state={"done": True})
        log.info(
            "diagnosis posted",
            key=row.key,
            runbook=diagnosis.runbook,
            findings=diagnosis.codes(),
            mode=diagnosis.mode,
        )
        return diagnosis

    def _post(self, row: alert_messages.Row, trigger: Trigger) -> str:
        message = blocks.diagnosing(describe(trigger))
        response = self.client.chat_postMessage(
            channel=row.channel,
            thread_ts=row.thread_ts,
            text=message["text"],
            blocks=message["blocks"],
            metadata={"event_type": EVENT_TYPE, "event_payload": {"key": row.key}},
        )
        ts = str(response["ts"])
        if self.on_posted is not None:
            self.on_posted(ts)
        return ts

    def _answer(
        self, row: alert_messages.Row, token: str, trigger: Trigger
    ) -> tuple[Diagnosis, str | None, str | None]:
        """The recorded answer when an earlier attempt got one, else the agent's."""
        state: dict[str, Any] = row.state
        saved_id = state.get("diagnosis_id")
        if saved_id is not None:
            saved = history.load(self.store, int(saved_id))
            if saved is not None:
                return saved, state.get("answer_text"), state.get("fallback")
        answer = self.agent.answer(trigger, thread_id=f"{row.channel}:{row.thread_ts}")
        diagnosis = answer.diagnosis
        alert_messages.save_row(
            self.store,
            row.id,
            token,
            state={
                "diagnosis_id": diagnosis.id,
                "answer_text": answer.text,
                "fallback": answer.fallback,
            },
        )
        return diagnosis, answer.text, answer.fallback


def describe(trigger: Trigger) -> str:
    """What is being diagnosed, in a few words."""
    if trigger.kind == "alert":
        where = f" on {trigger.cluster}" if trigger.cluster else ""
        return f"{trigger.alertname or 'alert'}{where}"
    if trigger.kind == "workload":
        return f"{trigger.namespace}/{trigger.workload}"
    return trigger.question or trigger.kind
