"""Replicas that hold GPUs and do nothing (runbook ``gpu-underutilized``).

Idle means all three sources agree over hours, not one dip: DCGM says the GPUs are barely
busy, vLLM says the engines run almost nothing and queue nothing, and the gateway shows little
traffic. Only a workload with two or more replicas can give one back (never below one), and a
pod that is loading or crash-looping is not idle, it is broken.
"""

from __future__ import annotations

from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion

IDLE = "gpu-underutilized/idle-replicas"
CODES = frozenset({IDLE})

WINDOW = "3h"
"""Idle "for hours": the GPUUnderutilized alert asks for 2 h; we look at 3."""
IDLE_UTIL = 20.0
"""Mean DCGM utilisation of the workload's GPUs under this (%) is idle."""
BUSIEST_UTIL = 30.0
"""…and no single pod of it above this."""
RUNNING_PER_REPLICA = 2.0
"""Mean requests running per engine at or under this (or 5 % of max-num-seqs) is idle."""


def _all_serving(w: facts.Workload) -> bool:
    """Every pod Running and Ready: a loading or crashing pod shows 0 % too."""
    return bool(w.pods) and all(p.get("phase") == "Running" and p.get("all_ready") for p in w.pods)


def detect(inv: Investigation) -> list[Finding]:
    """Workloads with ≥ 2 replicas whose GPUs, engines and traffic all say idle for hours."""
    works = [w for w in facts.workloads(inv) if w.replicas >= 2 and _all_serving(w)]
    if not works:
        return []
    ns = inv.subject.namespace
    gpu_result, gpus = facts.gpu_stats(inv, ns, WINDOW)
    engine_result, engines = facts.engine_stats(inv, ns, WINDOW)
    gateway = inv.tool("gateway_stats", window=WINDOW)
    traffic = facts.ok_obj(gateway).get("models") or {}
    out: list[Finding] = []
    for w in works:
        names = [p["name"] for p in w.pods]
        utils = facts.pod_stat(gpus, names, "util")
        if len(utils) < len(names) or not utils:
            continue  # a pod without DCGM data could be the busy one: unknown, not idle
        mean = sum(utils) / len(utils)
        if mean >= IDLE_UTIL or max(utils) >= BUSIEST_UTIL:
            continue
        ev: list[Evidence] = [
            evidence(
                gpu_result,
                f"mean GPU utilisation over {WINDOW}: {mean:.1f}% across {len(utils)} pods "
                f"(busiest {max(utils):.1f}%)",
                where=w.target,
            )
        ]
        running = facts.pod_stat(engines, names, "running_avg")
        waiting = facts.pod_stat(engines, names, "waiting_max")
        cap = w.settings.max_num_seqs if w.settings and w.settings.max_num_seqs else 256
        if running:
            per_replica = sum(running) / len(running)
            if per_replica > max(RUNNING_PER_REPLICA, 0.05 * cap) or (waiting and max(waiting) > 0):
                continue  # requests wait or engines work: the bottleneck is not GPU count
            ev.append(
                evidence(
                    engine_result,
                    f"vLLM over {WINDOW}: {per_replica:.2f} requests running per replica on "
                    f"average (max-num-seqs {cap}), at most {max(waiting or [0]):.0f} waiting",
                    where=w.target,
                )
            )
        model = traffic.get(w.model or "") or traffic.get(w.name) or {}
        if (rps := model.get("rps")) is not None:
            ev.append(
                evidence(
                    gateway,
                    f"gateway over {WINDOW}: {rps * 60:.1f} requests/min for model "
                    f"{w.model or w.name} ({rps * 60 / w.replicas:.1f} per replica)",
                    where=w.target,
                )
            )
        desired = (
            evidence(w.describe, f"{w.replicas} replicas desired", where=w.target)
            if w.describe
            else None
        )
        out.append(
            Finding(
                code=IDLE,
                summary=f"{w.name}'s {w.replicas} replicas have idled for hours (GPUs at "
                f"{mean:.0f}% on average, engines nearly empty): one replica fewer would serve "
                "the same traffic.",
                confidence=0.9 if running and len(ev) >= 3 else (0.8 if running else 0.65),
                evidence=[*ev, *([desired] if desired else [])],
                target=w.target,
                fixes=[
                    FixSuggestion(
                        code="scale-down",
                        target=w.target,
                        reason="give back one idle replica's GPUs (one step at a time)",
                    )
                ],
            )
        )
    return out


DETECTORS: list[Detector] = [detect]
