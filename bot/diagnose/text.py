"""A Diagnosis as a person reads it in a terminal: each finding with the evidence behind it.

Plain text, no colour: it is also pasted into tickets. Every finding shows its evidence lines
(source, the exact call, the value seen), unreachable sources come first because they change
how everything else reads, and ruled-out findings are shown as such, never as findings.
"""

from __future__ import annotations

from bot.diagnose.model import Diagnosis, Evidence, Finding, Trigger
from tools import budget

CALL_WIDTH = 110
"""Long PromQL or Insights queries are cut here; ``--json`` has them whole."""


def trigger_line(trigger: Trigger) -> str:
    """``alert GPUMemoryHigh (node=gpu-a, gpu=0)``, ``workload inference/x``, ``question "…"``."""
    if trigger.kind == "alert":
        labels = ", ".join(
            f"{k}={v}" for k, v in sorted(trigger.labels.items()) if k != "alertname"
        )
        return f"alert {trigger.alertname}" + (f" ({labels})" if labels else "")
    if trigger.kind == "workload":
        return f"workload {trigger.namespace}/{trigger.workload}"
    return f'question "{trigger.question}"'


def render(diagnosis: Diagnosis) -> str:
    """The whole diagnosis: header, unreachable sources, findings, fixes, checks."""
    d = diagnosis
    lines = [
        f"Diagnosis of {trigger_line(d.trigger)}",
        f"runbook: {d.runbook or '(none matched)'}   mode: {_mode(d)}   "
        f"{d.seconds:.2f} s, {d.requests} backend requests"
        + (f"   id: {d.id}" if d.id is not None else ""),
    ]
    if d.unreachable:
        lines.append(
            f"UNREACHABLE: {', '.join(d.unreachable)} — what they would show is unknown, "
            "not healthy"
        )
    live = [f for f in d.findings if not f.ruled_out]
    ruled_out = [f for f in d.findings if f.ruled_out]
    lines.append("")
    if live:
        lines.append("FINDINGS")
        for number, finding in enumerate(live, start=1):
            lines.extend(_finding(number, finding))
    else:
        lines.append("FINDINGS: none — the detectors found nothing wrong in what they could read")
    if ruled_out:
        lines += ["", "RULED OUT"]
        lines.extend(f"  - {f.code}: {f.summary}" for f in ruled_out)
    if d.proposals:
        lines += ["", "PROPOSED FIXES (need an approval to apply)"]
        for p in d.proposals:
            lines.append(f"  {p.label}  for {p.finding}")
            lines.extend(f"      {change}" for change in p.diff.splitlines())
            if p.risk:
                lines.append(f"      risk: {p.risk}")
    if d.refusals:
        lines += ["", "NOT PROPOSED"]
        lines.extend(f"  - {r.code}@{r.target}: {r.why}" for r in d.refusals)
    if d.checks:
        lines += ["", "DAILY CHECKS"]
        rows = [[c.id, c.status.upper(), c.value, c.threshold] for c in d.checks]
        table = budget.table(["CHECK", "STATUS", "VALUE", "OK WHEN"], rows)
        lines.extend(f"  {row}" for row in table.splitlines())
    return "\n".join(lines)


def _mode(diagnosis: Diagnosis) -> str:
    return "runbook detectors (no LLM)" if diagnosis.mode == "rules" else "LLM agent"


def _finding(number: int, finding: Finding) -> list[str]:
    target = f" on {finding.target}" if finding.target else ""
    lines = [
        f"  {number}. {finding.code}{target}  (confidence {finding.confidence:.2f})",
        f"     {finding.summary}",
    ]
    lines.extend(f"     evidence: {_evidence(e)}" for e in finding.evidence)
    return lines


def _evidence(e: Evidence) -> str:
    call = " ".join(e.call.split())
    if len(call) > CALL_WIDTH:
        call = call[: CALL_WIDTH - 1] + "…"
    where = f" [{e.where}]" if e.where else ""
    return f"{e.source}: {call} → {e.value}{where}"
