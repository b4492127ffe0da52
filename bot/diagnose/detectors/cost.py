"""Why GPU spend is high or rose (runbook ``cost``): idle GPUs, more replicas, pricier capacity.

Kubecost gives each controller's GPU cost per day (exact 24 h windows ending now, a day, three
and six days ago, so a rise two days back is seen even when yesterday equals today). Against it:
DCGM utilisation over the day (spend on idle GPUs), the replica count now (a rise that is a
whole number of replicas' worth is a scale-out) and the capacity type of the workload's nodes
and what their NodePool allows (a shift to on-demand needs a pool that allows spot).
"""

from __future__ import annotations

import re
from typing import Any

from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion
from tools.base import ToolResult

IDLE_SPEND = "cost/idle-gpu-spend"
SCALE_OUT = "cost/scale-out"
ON_DEMAND = "cost/on-demand-shift"
CODES = frozenset({IDLE_SPEND, SCALE_OUT, ON_DEMAND})

DAY_SECONDS = 86_400
HISTORY_DAYS = (1, 3, 6)
IDLE_UTIL = 20.0
"""GPUs averaging under this (%) over the day were bought to idle."""
MIN_GPU_SPEND = 25.0
"""USD per day of GPU cost below which idleness is not worth a finding."""
RISE = 1.2
"""Today's GPU cost over the lowest earlier day at or above this is a rise."""
WHOLE_REPLICAS = 0.12
"""How close replicas * before/now must be to a whole number to read as replicas added."""

_CAPACITY = re.compile(r"karpenter\.sh/capacity-type (?P<op>In|NotIn) \[(?P<values>[^\]]*)\]")


def _day(inv: Investigation, days_ago: int) -> tuple[ToolResult, dict[str, float]]:
    """GPU cost per Deployment name over the 24 h ending ``days_ago`` days before now."""
    end = int(inv.now.timestamp()) - days_ago * DAY_SECONDS
    result = inv.tool(
        "kubecost_allocation", window=f"{end - DAY_SECONDS},{end}", aggregate="controller"
    )
    costs: dict[str, float] = {}
    for allocations in facts.ok_obj(result).get("sets") or []:
        for row in allocations if isinstance(allocations, list) else []:
            name = str(row.get("name", ""))
            if name.startswith("deployment:"):
                key = name.removeprefix("deployment:")
                costs[key] = costs.get(key, 0.0) + float(row.get("gpuCost") or 0.0)
    return result, costs


def _allowed_capacity(pool: dict[str, Any]) -> set[str]:
    """Capacity types a NodePool allows (Karpenter's default without a requirement: on-demand)."""
    allowed = {"on-demand"}
    for requirement in pool.get("requirements") or []:
        if match := _CAPACITY.search(str(requirement)):
            values = {v.strip() for v in match["values"].split(",") if v.strip()}
            allowed = values if match["op"] == "In" else {"spot", "on-demand"} - values
    return allowed


def _capacity(
    inv: Investigation, w: facts.Workload
) -> tuple[set[str], set[str] | None, list[Evidence]]:
    """Capacity types of the workload's nodes now; what their NodePools allow (None: unknown)."""
    nodes_result = inv.tool("list_nodes")
    node_of = {n["name"]: n for n in facts.ok_rows(nodes_result)}
    used = [node_of[str(p["node"])] for p in w.pods if p.get("node") in node_of]
    types = {str(n.get("capacity_type")) for n in used if n.get("capacity_type")}
    pools = {str(n["nodepool"]) for n in used if n.get("nodepool")}
    ev = []
    if used:
        listed = ", ".join(f"{n['name']} {n.get('capacity_type')}" for n in used)
        ev.append(evidence(nodes_result, f"nodes of {w.name}: {listed}", where=w.target))
    if not pools:
        return types, None, ev
    karpenter = inv.tool("karpenter_status")
    by_name = {p["name"]: p for p in facts.ok_obj(karpenter).get("nodepools") or []}
    if not pools <= set(by_name):
        return types, None, ev
    allowed = set().union(*(_allowed_capacity(by_name[p]) for p in pools))
    ev.append(
        evidence(
            karpenter,
            f"NodePool {', '.join(sorted(pools))} allows capacity types: "
            + ", ".join(sorted(allowed)),
            where=", ".join(f"nodepool/{p}" for p in sorted(pools)),
        )
    )
    return types, allowed, ev


def _scale_down(w: facts.Workload, why: str) -> list[FixSuggestion]:
    return (
        [FixSuggestion(code="scale-down", target=w.target, reason=why)] if w.replicas >= 2 else []
    )


def _idle(
    w: facts.Workload, spend: float, util: float, today: ToolResult, gpu: ToolResult
) -> Finding:
    idle_spend = spend * (1 - util / 100)
    return Finding(
        code=IDLE_SPEND,
        summary=f"{w.name} cost {spend:,.0f} USD of GPU in the last 24 h on GPUs averaging "
        f"{util:.0f}% busy: about {idle_spend:,.0f} USD bought idle time.",
        confidence=0.85,
        evidence=[
            evidence(
                today,
                f"gpuCost of deployment:{w.name} over the last 24 h: {spend:,.2f} USD",
                where=w.target,
            ),
            evidence(gpu, f"mean GPU utilisation over 24h: {util:.1f}%", where=w.target),
        ],
        target=w.target,
        fixes=_scale_down(w, "fewer idle replicas, fewer GPUs billed"),
    )


def _rise(
    inv: Investigation,
    w: facts.Workload,
    today: tuple[ToolResult, float],
    history: dict[int, tuple[ToolResult, float]],
    idle: bool,
) -> list[Finding]:
    """A rise against the cheapest earlier day: whole replicas added, or spot to on-demand."""
    today_result, spend = today
    earlier = {d: c for d, (_, c) in history.items() if c > 0}
    if not earlier or spend <= 0:
        return []
    before = min(earlier.values())
    day = min(d for d, c in earlier.items() if c <= before * 1.01)  # the latest low day
    if spend / before < RISE:
        return []
    rise = spend / before
    implied = w.replicas * before / spend
    whole = round(implied)
    added = 1 <= whole < w.replicas and abs(implied - whole) <= WHOLE_REPLICAS
    types, allowed, capacity_ev = _capacity(inv, w)
    ev = [
        evidence(
            history[day][0],
            f"gpuCost of deployment:{w.name}, 24 h ending {day}d ago: {before:,.2f} USD",
            where=w.target,
        ),
        evidence(
            today_result,
            f"gpuCost of deployment:{w.name}, last 24 h: {spend:,.2f} USD (x{rise:.2f})",
            where=w.target,
        ),
    ]
    if w.describe is not None:
        ev.append(evidence(w.describe, f"{w.replicas} replicas desired now", where=w.target))
    out = []
    spot_possible = allowed is not None and "spot" in allowed and "on-demand" in types
    if added:
        same = allowed is not None and len(allowed) == 1 and types <= allowed
        out.append(
            Finding(
                code=SCALE_OUT,
                summary=f"{w.name}'s GPU cost rose x{rise:.1f} since {day} days ago: the "
                f"price of {whole} replica(s) then versus {w.replicas} now, on the same capacity "
                "type, so replicas were added.",
                confidence=0.85 if same else 0.7,
                evidence=ev + capacity_ev,
                target=w.target,
                fixes=_scale_down(w, "the added replicas idle") if idle else [],
            )
        )
    if spot_possible and not added:
        out.append(
            Finding(
                code=ON_DEMAND,
                summary=f"{w.name}'s GPU cost rose x{rise:.1f} without a whole number of "
                "replicas to explain it, and it runs on on-demand nodes of a NodePool that allows "
                "spot: capacity moved from spot to on-demand.",
                confidence=0.65,
                evidence=ev + capacity_ev,
                target=w.target,
            )
        )
    elif allowed is not None and "spot" not in allowed and capacity_ev:
        out.append(
            Finding(
                code=ON_DEMAND,
                summary=f"Not a move to on-demand: {w.name}'s NodePool allows only "
                f"{', '.join(sorted(allowed))}, so its capacity type could not have changed.",
                confidence=0.8,
                evidence=capacity_ev,
                target=w.target,
                ruled_out=True,
            )
        )
    return out


def detect(inv: Investigation) -> list[Finding]:
    """Idle GPU spend, scale-outs and on-demand shifts, per GPU Deployment Kubecost bills."""
    today_result, today = _day(inv, 0)
    works = [w for w in facts.workloads(inv) if today.get(w.name, 0) > 0]
    if not works:
        return []
    gpu_result, gpus = facts.gpu_stats(inv, inv.subject.namespace, "24h")
    history = {d: _day(inv, d) for d in HISTORY_DAYS}
    out: list[Finding] = []
    for w in works:
        spend = today[w.name]
        utils = facts.pod_stat(gpus, [p["name"] for p in w.pods], "util")
        util = sum(utils) / len(utils) if utils else None
        idle = util is not None and util < IDLE_UTIL
        if idle and util is not None and spend >= MIN_GPU_SPEND:
            out.append(_idle(w, spend, util, today_result, gpu_result))
        per_day = {d: (r, costs.get(w.name, 0.0)) for d, (r, costs) in history.items()}
        out += _rise(inv, w, (today_result, spend), per_day, idle)
    return out


DETECTORS: list[Detector] = [detect]
