"""Why inference is slow (runbook ``inference-latency-high``): queueing or preemption.

Both show requests waiting in vLLM. Queueing is the replicas being full — running at their
max-num-seqs, GPUs busy, the preemption counter flat — and more replicas help. Preemption is the
KV cache being full: vLLM evicts running sequences and recomputes them, so every request slows;
capping the sequences helps, and adding memory pressure (or replicas that thrash alike) does not.
A finding needs the latency itself: the gateway's p99 or a latency alert for the model.
"""

from __future__ import annotations

from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion
from tools.base import ToolResult

QUEUEING = "inference-latency-high/queueing"
PREEMPTION = "inference-latency-high/preemption"
CODES = frozenset({QUEUEING, PREEMPTION})

WINDOW_MINUTES = 15
WINDOW = f"{WINDOW_MINUTES}m"
SLOW_P99 = 5.0
"""Gateway p99 above this many seconds is slow (the alert's and the daily check's bound)."""
KV_FULL = 0.95
PREEMPTIONS_PER_MIN = 1.0
"""Preemptions per minute per replica at or above this: the KV cache is thrashing."""
FLAT_PREEMPTIONS = 1.0
"""At most this many preemptions in the window across the replicas: the counter is flat."""
AT_CAP = 0.9
BUSY_GPU = 90.0


def _slow(inv: Investigation, w: facts.Workload, gateway: ToolResult) -> list[Evidence]:
    """Evidence that requests to this model are slow (gateway p99, else its alert), or none."""
    models = facts.ok_obj(gateway).get("models") or {}
    row = models.get(w.model or "") or models.get(w.name) or {}
    p99 = row.get("p99")
    if p99 is not None and p99 > SLOW_P99:
        return [evidence(gateway, f"gateway p99 over {WINDOW}: {p99:.1f} s", where=w.target)]
    trigger = inv.trigger
    model = trigger.labels.get("model")
    if "latency" in (trigger.alertname or "").lower() and model in (w.model, w.name):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(trigger.labels.items()))
        text = trigger.annotations.get("description") or f"{trigger.alertname} is firing"
        return [
            Evidence(source="alertmanager", call=f"alert {{{labels}}}", value=text, where=w.target)
        ]
    return []


def detect(inv: Investigation) -> list[Finding]:
    """Queueing vs. preemption for each slow vLLM workload in scope."""
    works = [w for w in facts.workloads(inv) if w.settings is not None and w.pods]
    if not works:
        return []
    ns = inv.subject.namespace
    engine_result, engines = facts.engine_stats(inv, ns, WINDOW)
    gpu_result, gpus = facts.gpu_stats(inv, ns, WINDOW)
    gateway = inv.tool("gateway_stats", window=WINDOW)
    out: list[Finding] = []
    for w in works:
        slow = _slow(inv, w, gateway)
        names = [p["name"] for p in w.pods]
        waiting = facts.pod_stat(engines, names, "waiting_avg")
        if not slow or not waiting:
            continue
        kv = facts.pod_stat(engines, names, "kv_max")
        preempted = facts.pod_stat(engines, names, "preempted")
        running = facts.pod_stat(engines, names, "running_max")
        util = facts.pod_stat(gpus, names, "util")
        per_min = sum(preempted) / WINDOW_MINUTES / len(names) if preempted else None
        engine_text = (
            f"vLLM over {WINDOW}: {sum(waiting):.0f} requests waiting on average across "
            f"{len(waiting)} replicas, running up to "
            f"{max(running or [0]):.0f} per replica, KV cache peak "
            + (f"{max(kv):.1%}" if kv else "unknown")
            + ", preemptions "
            + (f"{sum(preempted):.0f} ({per_min:.1f}/min per replica)" if preempted else "unknown")
        )
        ev = [*slow, evidence(engine_result, engine_text, where=w.target)]
        thrashing = (
            per_min is not None and per_min >= PREEMPTIONS_PER_MIN and max(kv or [0]) >= KV_FULL
        )
        cap = (w.settings.max_num_seqs if w.settings else None) or 256
        at_cap = bool(running) and max(running) >= AT_CAP * cap
        busy = bool(util) and max(util) >= BUSY_GPU
        if util:
            ev.append(
                evidence(
                    gpu_result,
                    f"GPU utilisation over {WINDOW}: up to {max(util):.0f}%",
                    where=w.target,
                )
            )
        if thrashing:
            out.append(_preemption(w, ev))
            if sum(waiting) >= 1:
                out.append(_queueing(w, ev, ruled_out=True))
        elif (
            sum(waiting) >= 1
            and preempted
            and sum(preempted) <= FLAT_PREEMPTIONS
            and (at_cap or busy)
        ):
            out.append(_queueing(w, ev, ruled_out=False, sure=at_cap and busy))
    return out


def _preemption(w: facts.Workload, ev: list[Evidence]) -> Finding:
    return Finding(
        code=PREEMPTION,
        summary=f"{w.name} is slow because its KV cache is full: vLLM keeps preempting running "
        "sequences and recomputing them. Admit fewer sequences at once.",
        confidence=0.9,
        evidence=ev,
        target=w.target,
        fixes=[
            FixSuggestion(
                code="limit-max-num-seqs",
                target=w.target,
                reason="fewer concurrent sequences fit the KV cache without evictions",
            )
        ],
    )


def _queueing(
    w: facts.Workload, ev: list[Evidence], *, ruled_out: bool, sure: bool = False
) -> Finding:
    if ruled_out:
        return Finding(
            code=QUEUEING,
            summary=f"Requests wait at {w.name}, but because sequences are preempted, not because "
            "the replicas are full of healthy work: more replicas would not fix it.",
            confidence=0.7,
            evidence=ev,
            target=w.target,
            ruled_out=True,
        )
    return Finding(
        code=QUEUEING,
        summary=f"{w.name} is slow because its replicas are full: requests wait in vLLM's queue "
        "while the engines run at their max-num-seqs and nothing is preempted. Add a replica.",
        confidence=0.9 if sure else 0.8,
        evidence=ev,
        target=w.target,
        fixes=[
            FixSuggestion(
                code="scale-up",
                target=w.target,
                reason="another replica takes the waiting requests",
            )
        ],
    )


DETECTORS: list[Detector] = [detect]
