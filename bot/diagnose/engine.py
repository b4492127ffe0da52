"""From a trigger to a Diagnosis, without the LLM.

1. resolve what the trigger is about (``subject``);
2. pick the runbook as SCENARIOS.md says: by alert name; by log symptoms only when no alert name
   matches; for a question, the runbook of the top finding;
3. run every detector (any runbook may report when its evidence is there) on a small thread
   pool, each bounded by the tools' own timeouts;
4. rank: findings of the selected runbook first, then by confidence; ruled-out ones last;
5. say which sources were unreachable, so nothing unknown reads as healthy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from bot import logs
from bot.diagnose import runbooks as runbooks_mod
from bot.diagnose import subject as subject_mod
from bot.diagnose.investigation import Detector, Investigation, Subject
from bot.diagnose.model import Diagnosis, Finding, Trigger
from tools.toolbox import Toolbox

log = logs.get("opsbot.diagnose")


def select_runbook(
    trigger: Trigger, runbooks: Mapping[str, runbooks_mod.Runbook], symptom_texts: Sequence[str]
) -> str | None:
    """The runbook an alert or its symptoms call for (a question waits for its findings)."""
    if trigger.alertname:
        by_alert = runbooks_mod.for_alert(runbooks, trigger.alertname)
        if by_alert is not None:
            return by_alert.id
    by_symptoms = runbooks_mod.for_symptoms(runbooks, list(symptom_texts))
    return by_symptoms.id if by_symptoms is not None else None


def rank(findings: Sequence[Finding], runbook: str | None) -> list[Finding]:
    """Most likely first: live before ruled out, the selected runbook's first, then confidence."""
    return sorted(
        findings,
        key=lambda f: (f.ruled_out, f.runbook != runbook, -f.confidence, f.code),
    )


def _run(detector: Detector, inv: Investigation) -> list[Finding]:
    try:
        return detector(inv)
    except Exception:  # one broken detector must not sink the diagnosis
        log.exception("detector failed", detector=getattr(detector, "__name__", str(detector)))
        return []


def diagnose(
    trigger: Trigger,
    *,
    box: Toolbox,
    runbooks: Mapping[str, runbooks_mod.Runbook],
    detectors: Sequence[Detector],
    default_namespace: str,
    workers: int = 4,
    now: datetime | None = None,
) -> Diagnosis:
    """Investigate ``trigger`` with the detectors and return the ranked diagnosis."""
    inv = Investigation(
        box=box,
        trigger=trigger,
        subject=Subject(namespace=default_namespace),
        now=now or datetime.now(UTC),
    )
    return investigate(
        inv,
        runbooks=runbooks,
        detectors=detectors,
        default_namespace=default_namespace,
        workers=workers,
    )


def investigate(
    inv: Investigation,
    *,
    runbooks: Mapping[str, runbooks_mod.Runbook],
    detectors: Sequence[Detector],
    default_namespace: str,
    workers: int = 4,
) -> Diagnosis:
    """Run the detectors in ``inv`` (whose calls the caller may go on sharing) and rank."""
    started = time.monotonic()
    trigger = inv.trigger
    subject_mod.resolve(inv, default_namespace=default_namespace)
    texts = [trigger.question or "", *trigger.annotations.values()]
    runbook = select_runbook(trigger, runbooks, texts)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="detector") as pool:
        found = [f for batch in pool.map(lambda d: _run(d, inv), detectors) for f in batch]
    if runbook is None:
        live = [f for f in found if not f.ruled_out]
        if trigger.kind != "alert" and live:
            runbook = max(live, key=lambda f: f.confidence).runbook
        elif trigger.kind == "alert":
            logs_texts = [str(r.text) for r in inv.results() if r.tool == "pod_logs"]
            runbook = select_runbook(
                trigger.model_copy(update={"alertname": None}), runbooks, logs_texts
            )
    return Diagnosis(
        trigger=trigger,
        runbook=runbook,
        findings=rank(_dedupe(found), runbook),
        unreachable=sorted(inv.unreachable),
        seconds=time.monotonic() - started,
        requests=inv.calls,
    )


def _dedupe(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per (code, target): the most confident, with the others' evidence merged."""
    best: dict[tuple[str, str | None, bool], Finding] = {}
    for finding in findings:
        key = (finding.code, finding.target, finding.ruled_out)
        kept = best.get(key)
        if kept is None or finding.confidence > kept.confidence:
            best[key] = finding
    return list(best.values())
