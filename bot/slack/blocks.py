"""Slack messages as pure functions of domain objects: Block Kit in, nothing sent from here.

Every text that comes from the cluster, an alert or the model passes ``escape`` (so a
``<!channel>`` in a log line pings nobody), every block respects Slack's limits (50 blocks, 3,000
characters of section text, 150 of header), and buttons carry only an id: state stays in the
store, where the handlers look it up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.diagnose.model import CheckResult, Diagnosis

Message = dict[str, Any]
Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
GROUP_LISTED = 20
"""Alerts listed in a group message before the rest are counted."""
KEY_LABELS = ("cluster", "namespace", "model", "pod", "node", "Hostname", "gpu", "nodepool")
SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}
STATUS_ICON = {
    "ok": ":white_check_mark:",
    "warn": ":warning:",
    "fail": ":x:",
    "unknown": ":grey_question:",
}


def escape(text: str) -> str:
    """Slack mrkdwn escaping: ``&``, ``<`` and ``>`` so data cannot mention, link or ping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, MAX_SECTION)}}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(text, MAX_HEADER)}}


def context(*texts: str) -> Block:
    elements = [{"type": "mrkdwn", "text": _cut(t, MAX_SECTION)} for t in texts if t]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def message(text: str, blocks: list[Block]) -> Message:
    """A message within Slack's limits: the fallback ``text`` and at most 50 blocks."""
    if len(blocks) > MAX_BLOCKS:
        blocks = [*blocks[: MAX_BLOCKS - 1], context(f"… {len(blocks) - MAX_BLOCKS + 1} more")]
    return {"text": _cut(text, 3000), "blocks": blocks}


def _ago(start: str | None, now: datetime) -> str:
    if not start:
        return ""
    try:
        began = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        return ""
    minutes = max(int((now - began).total_seconds() // 60), 0)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _labels(alert: Mapping[str, Any]) -> str:
    labels = alert.get("labels") or {}
    shown = [f"{k}=`{escape(str(labels[k]))}`" for k in KEY_LABELS if labels.get(k)]
    return " ".join(shown)


def _buttons(group_id: int) -> Block:
    value = str(group_id)
    options = [
        {"text": {"type": "plain_text", "text": f"Silence {d}"}, "value": f"{value}:{d}"}
        for d in ("1h", "4h", "24h")
    ]
    return {
        "type": "actions",
        "block_id": f"opsbot_alert_{value}",
        "elements": [
            {
                "type": "button",
                "action_id": "opsbot_diagnose",
                "text": {"type": "plain_text", "text": "Diagnose"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "static_select",
                "action_id": "opsbot_silence",
                "placeholder": {"type": "plain_text", "text": "Silence"},
                "options": options,
            },
            {
                "type": "button",
                "action_id": "opsbot_ack",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "value": value,
            },
        ],
    }


def alert_group(
    alerts: Sequence[Mapping[str, Any]],
    *,
    cluster: str,
    group_id: int,
    resolved: bool = False,
    silence: Mapping[str, Any] | None = None,
    acked_by: str | None = None,
    now: datetime | None = None,
) -> Message:
    """One message per Alertmanager group: the alert (or a list of them) and its buttons."""
    now = now or datetime.now(UTC)
    firing = [a for a in alerts if a.get("status") == "firing"]
    first = (firing or list(alerts) or [{}])[0]
    severity = str(first.get("severity") or (first.get("labels") or {}).get("severity") or "")
    icon = ":large_green_circle:" if resolved else SEVERITY_ICON.get(severity, ":white_circle:")
    name = str(first.get("alertname") or "alert")
    title = f"{'RESOLVED ' if resolved else ''}{name}" + (
        f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
    )
    blocks: list[Block] = [
        header(f"{title} — {cluster}"),
        context(f"{icon} *{severity or 'no severity'}*", f"cluster `{escape(cluster)}`"),
    ]
    if len(alerts) == 1:
        notes = first.get("annotations") or {}
        text = notes.get("description") or notes.get("summary") or ""
        blocks.append(section(f"{_labels(first)}\n{escape(str(text))}".strip() or name))
        started = _ago(first.get("starts_at"), now)
        if started:
            blocks.append(context(f"{'lasted' if resolved else 'firing for'} {started}"))
    else:
        for alert in list(alerts)[:GROUP_LISTED]:
            mark = ":large_green_circle:" if alert.get("status") == "resolved" else icon
            label = escape(str(alert.get("alertname")))
            blocks.append(section(f"{mark} *{label}* {_labels(alert)}"))
        if len(alerts) > GROUP_LISTED:
            blocks.append(context(f"+{len(alerts) - GROUP_LISTED} more alerts in this group"))
    if silence:
        until = str(silence.get("ends_at") or "")
        blocks.append(
            context(
                f":mute: Silenced by <@{silence.get('by')}> until {until} (id {silence.get('id')})"
            )
        )
    if acked_by:
        blocks.append(context(f":eyes: Acknowledged by <@{acked_by}>"))
    if not resolved and firing:
        blocks.append(_buttons(group_id))
    status = "resolved" if resolved else "firing"
    return message(f"[{status}] {name} on {cluster}", blocks)


def diagnosing(trigger_text: str) -> Message:
    """The placeholder a diagnosis replaces in place."""
    text = f":hourglass_flowing_sand: Diagnosing {escape(trigger_text)}…"
    return message(text, [section(text)])


def _evidence(call: str, value: str, source: str) -> str:
    return (
        f"> `{source}` {escape(_cut(' '.join(call.split()), 180))} → *{escape(_cut(value, 300))}*"
    )


def diagnosis(
    d: Diagnosis, *, answer_text: str | None = None, fallback: str | None = None
) -> Message:
    """Findings with their evidence, codes, unreachable sources, the mode, and proposed fixes."""
    blocks: list[Block] = []
    if answer_text:
        blocks.append(section(escape(answer_text)))
    live = [f for f in d.findings if not f.ruled_out]
    if d.unreachable:
        blocks.append(
            section(f":warning: Unreachable: {', '.join(d.unreachable)} — unknown, not healthy.")
        )
    for f in live[:5]:
        lines = [f"*{escape(f.code)}* ({f.confidence:.0%}) {escape(f.summary)}"]
        lines += [_evidence(e.call, e.value, e.source) for e in f.evidence[:3]]
        blocks.append(section("\n".join(lines)))
    if not live:
        blocks.append(
            section("No finding: the detectors saw nothing wrong in what they could read.")
        )
    for p in d.proposals[:5]:
        diff = "\n".join(escape(line) for line in p.diff.splitlines()[:4])
        blocks.append(
            section(f":wrench: *Proposed:* `{p.label}`\n```{diff}```\n_{escape(p.risk)}_")
        )
    mode = "answered by the model" if d.mode == "llm" else "answered by the runbook detectors"
    ruled_out = sum(1 for f in d.findings if f.ruled_out)
    codes = ", ".join(d.codes()) or "none"
    blocks.append(
        context(
            f"runbook `{d.runbook or '-'}` · findings: {escape(codes)} · {ruled_out} ruled out",
            f"{mode}" + (f" · {escape(fallback)}" if fallback else ""),
        )
    )
    top = live[0].code if live else "no finding"
    return message(f"Diagnosis: {top}", blocks)


def _split(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at paragraphs, lines, then words."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cuts = (rest.rfind(sep, 0, limit) for sep in ("\n\n", "\n", " "))
        cut = next((c for c in cuts if c > limit // 2), limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*pieces, rest] if rest else pieces


def answer(text: str, *, mode: str, fallback: str | None = None) -> list[Message]:
    """A chat answer; long text split into several messages, the mode on the last."""
    parts = _split(escape(text), MAX_SECTION - 100) or [""]
    out = [message(p, [section(p)]) for p in parts]
    who = "the model" if mode == "llm" else "the runbook detectors"
    note = f"answered by {who}" + (f" · {escape(fallback)}" if fallback else "")
    out[-1]["blocks"].append(context(note))
    return out


def checks(results: Sequence[CheckResult]) -> Message:
    """The daily checklist: one line per check, its status, value and threshold."""
    lines = [
        f"{STATUS_ICON.get(c.status, '')} *{c.id}* {c.status.upper()} — {escape(c.value)} "
        f"_(ok when {escape(c.threshold)})_"
        for c in results
    ]
    worst = next(
        (s for s in ("fail", "unknown", "warn") if any(c.status == s for c in results)), "ok"
    )
    return message(f"Daily checks: {worst}", [header("Daily checks"), section("\n".join(lines))])


def status(alerts: Sequence[Mapping[str, Any]]) -> Message:
    """What is firing now."""
    firing = [a for a in alerts if a.get("status") == "firing"]
    if not firing:
        return message("Nothing is firing.", [section(":white_check_mark: Nothing is firing.")])
    lines = [
        f"{SEVERITY_ICON.get(str(a.get('severity')), ':white_circle:')} "
        f"*{escape(str(a.get('alertname')))}* `{escape(str(a.get('cluster') or ''))}` {_labels(a)}"
        for a in firing[:40]
    ]
    extra = [context(f"+{len(firing) - 40} more")] if len(firing) > 40 else []
    return message(f"{len(firing)} alerts firing", [section("\n".join(lines)), *extra])


def help_message() -> Message:
    """What the bot can do."""
    text = (
        "*opsbot* diagnoses GPU inference incidents by the runbooks and answers questions.\n"
        '• Mention me or DM me a question ("why is llama-3-8b slow?", "are the GPUs healthy?"); '
        "follow-ups in the thread need no mention.\n"
        "• Alert messages have *Diagnose*, *Silence* (1 h / 4 h / 24 h) and *Acknowledge*.\n"
        "• `/opsbot help` · `/opsbot check` · `/opsbot diagnose <alert|namespace/workload>` · "
        "`/opsbot silence <alert> <duration>` · `/opsbot status`\n"
        "Fixes are only proposed; a person approves before anything changes."
    )
    return message("What opsbot can do", [section(text)])
