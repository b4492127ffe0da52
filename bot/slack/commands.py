"""``/opsbot`` and the Silence / Acknowledge buttons, as worker-side job handlers.

``/opsbot help | check | diagnose <alert|ns/workload> | silence <alert> <duration> | status``:
the ``command`` job answers through the command's ``response_url`` (chat.postMessage to the
channel when there is none). The ``silence`` and ``ack`` jobs (buttons on an alert group's
message; payload ``group_id``, ``option``, ``user``, ``channel``, ``message_ts``) answer in
the message's thread. Silences are created in Alertmanager (API v2), never in the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot import clients, logs
from bot.config import Settings
from bot.diagnose import text as diagnosis_text
from bot.diagnose.model import Trigger
from bot.diagnose.service import Diagnoser, UnknownCluster
from bot.slack import alert_messages, blocks
from bot.store import Job, Store
from bot.worker import GiveUp, Handled
from tools import alertmanager

log = logs.get("opsbot.slack.commands")

DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
DEFAULT_SILENCE = "1h"
MAX_SILENCE = timedelta(days=7)
USAGE = (
    "Usage: `/opsbot help` · `/opsbot check` · `/opsbot status` · "
    "`/opsbot diagnose <alert|namespace/workload>` · "
    "`/opsbot silence <alert> <duration: 1h, 4h, 24h>`"
)

Message = Mapping[str, Any]


def parse_duration(value: str) -> timedelta:
    """``30m``, ``4h``, ``1d`` → timedelta; ValueError otherwise or beyond 7 days."""
    match = DURATION.match(value.strip().lower())
    if not match or int(match[1]) == 0:
        raise ValueError(f"a duration is like 30m, 4h or 1d, not {value!r}")
    duration = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if duration > MAX_SILENCE:
        raise ValueError(f"a silence lasts at most {MAX_SILENCE.days} days")
    return duration


class Commands:
    """The handlers of ``command``, ``silence`` and ``ack`` jobs."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        client: WebClient,
        diagnoser: Diagnoser | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.diagnoser = diagnoser or Diagnoser(settings, store=store)

    # -- /opsbot -----------------------------------------------------------------------------
    def command(self, job: Job) -> Handled:
        p = job.payload
        words = str(p.get("text", "")).split()
        verb, args = (words[0].lower(), words[1:]) if words else ("help", [])
        message, public = self.answer(verb, args, user=str(p.get("user_id", "")))
        self._respond(p, message, public=public)
        log.info("command.answered", job=job.id, verb=verb)
        return Handled("posted")

    def answer(  # noqa: PLR0911 - one return per subcommand reads best
        self, verb: str, args: list[str], *, user: str
    ) -> tuple[Message, bool]:
        """The reply to ``/opsbot verb args`` and whether the channel sees it."""
        try:
            if verb == "help":
                return blocks.help_message(), False
            if verb == "check":
                return blocks.checks(self.diagnoser.checks()), True
            if verb == "status":
                return blocks.status(self.store.list_alerts(status="firing")), True
            if verb == "diagnose" and len(args) == 1:
                return self._diagnose(args[0]), True
            if verb == "silence" and len(args) in (1, 2):
                duration = args[1] if len(args) == 2 else DEFAULT_SILENCE
                return {"text": self.silence(args[0], duration, user=user, labels={})}, True
        except (ValueError, UnknownCluster) as e:
            return {"text": f":warning: {e}\n{USAGE}"}, False
        return {"text": f"I don't know `{' '.join([verb, *args])}`.\n{USAGE}"}, False

    def _diagnose(self, target: str) -> Message:
        if "/" in target:
            namespace, _, name = target.partition("/")
            trigger = Trigger(kind="workload", namespace=namespace, workload=name)
        else:
            trigger = Trigger(kind="alert", alertname=target, labels={"alertname": target})
        diagnosis = self.diagnoser.diagnose(trigger)
        return {"text": f"```{diagnosis_text.render(diagnosis)[:2900]}```"}

    def silence(
        self,
        alertname: str,
        duration: str,
        *,
        user: str,
        labels: dict[str, str],
        cluster: str | None = None,
    ) -> str:
        """Create the silence; the reply line (what was silenced, or why not)."""
        box = clients.build_toolbox(self.settings)
        if cluster is not None and cluster not in box.names():
            return f":warning: could not silence {alertname}: unknown cluster {cluster!r}"
        result = alertmanager.create_silence(
            box=box,
            alertname=alertname,
            labels=labels,
            duration=parse_duration(duration),
            created_by=f"slack:{user}" if user else "opsbot",
            comment=f"Silenced from Slack by <@{user}> for {duration}",
            cluster=cluster,
        )
        if not result.ok:
            return f":warning: could not silence {alertname}: {result.error}"
        return (
            f":no_bell: {alertname} silenced for {duration} by <@{user}> "
            f"(silence {result.data['silenceID']})"
        )

    def _respond(self, payload: Mapping[str, Any], message: Message, *, public: bool) -> None:
        url = str(payload.get("response_url") or "")
        if url:
            response = WebhookClient(url).send_dict(
                {**message, "response_type": "in_channel" if public else "ephemeral"}
            )
            if response.status_code < 300:
                return
            log.warning("command.response_url_failed", status=response.status_code)
        self.client.chat_postMessage(channel=str(payload["channel_id"]), **dict(message))

    # -- buttons -----------------------------------------------------------------------------
    def silence_button(self, job: Job) -> Handled:
        p = job.payload
        cluster, alerts = self._group(p)
        duration = str(p.get("option") or DEFAULT_SILENCE)
        lines = [
            self.silence(
                name,
                duration,
                user=str(p.get("user", "")),
                labels={"cluster": cluster} if labelled else {},
                cluster=cluster,
            )
            for name, labelled in sorted(alerts.items())
        ]
        self._in_thread(p, "\n".join(lines) or "Nothing to silence: the group has no alerts.")
        return Handled("posted")

    def ack_button(self, job: Job) -> Handled:
        p = job.payload
        user = str(p.get("user", ""))
        self.store.audit(
            actor=user, action="alert.acknowledged", target=f"alert-group:{p.get('group_id')}"
        )
        self._in_thread(p, f":eyes: Acknowledged by <@{user}>.")
        return Handled("posted")

    def _group(self, payload: Mapping[str, Any]) -> tuple[str, dict[str, bool]]:
        """The group's cluster and its firing alert names (name → carries a cluster label)."""
        row = alert_messages.get_row(self.store, row_id=int(payload["group_id"]))
        if row is None or not row.key.startswith(f"{alert_messages.KIND}:"):
            raise GiveUp(f"no alert group {payload['group_id']}")
        cluster, _, group_key = row.key.removeprefix(f"{alert_messages.KIND}:").partition(":")
        names: dict[str, bool] = {}
        for alert in self.store.list_alerts(cluster=cluster, limit=1000):
            if alert["group_key"] == group_key and alert["status"] == "firing":
                names[alert["alertname"]] = "cluster" in alert["labels"]
        return cluster, names

    def _in_thread(self, payload: Mapping[str, Any], text: str) -> None:
        self.client.chat_postMessage(
            channel=str(payload["channel"]), thread_ts=str(payload["message_ts"]), text=text
        )
