"""The gpu-memory daily check: each GPU's framebuffer use over 24 h, against the limit of what
runs on it.

vLLM takes its gpu-memory-utilization share of a GPU at start and holds it, so a vLLM GPU near
90 % is healthy: its limit is that share (vLLM's default 0.9 when the manifest sets none) plus
``thresholds.vllm_memory_slack``, inclusive. Any other GPU must stay below
``thresholds.gpu_memory``. What runs on a GPU comes from DCGM's namespace/pod/container labels:
the pod's Deployment manifest, read as the detectors read it (``gpu_facts.settings_of``).

The 24 h mean of used / (used + free) is asked as mean(used) / (mean(used) + mean(free)): a GPU's
framebuffer does not change size, so the two are equal and no subquery is needed. USED and FREE
come from one exporter with the same labels, so PromQL's default one-to-one match pairs them per
GPU (Hostname, gpu, UUID and the pod using it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.config import Thresholds
from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import UNREACHABLE_KINDS, evidence
from bot.diagnose.model import CheckResult
from bot.reports import verdict
from tools.base import ToolResult

CHECK_ID = "gpu-memory"
USED = "avg_over_time(DCGM_FI_DEV_FB_USED[24h])"
FREE = "avg_over_time(DCGM_FI_DEV_FB_FREE[24h])"
QUERY = f"{USED} / ({USED} + {FREE})"
LISTED = 5
"""Failing GPUs given their own evidence line."""

Verdict = Literal["ok", "fail", "unknown"]


@dataclass(frozen=True)
class Use:
    """What runs on a GPU, as far as it could be read."""

    known: bool
    """False when the pod or its manifest could not be read (``note`` says why)."""
    settings: facts.Settings | None = None
    """The vLLM container's settings, when a vLLM container uses the GPU."""
    source: ToolResult | None = None
    """The manifest read (k8s_describe)."""
    target: str | None = None
    """``deployment/NS/NAME`` or ``pod/NS/NAME``."""
    note: str = ""


@dataclass(frozen=True)
class Gpu:
    """One GPU's 24 h mean framebuffer use and what runs on it."""

    labels: dict[str, str]
    ratio: float
    node: str
    use: Use

    @property
    def name(self) -> str:
        return f"{self.node}/gpu {self.labels.get('gpu') or self.labels.get('UUID') or '?'}"

    def limit(self, t: Thresholds) -> float:
        s = self.use.settings
        return s.reserved + t.vllm_memory_slack if s is not None else t.gpu_memory

    def judge(self, t: Thresholds) -> Verdict:
        """ok / fail against its limit; unknown when it is full and what runs there is unread."""
        if self.use.settings is not None:
            return "ok" if verdict.at_most(self.ratio, self.limit(t)) else "fail"
        if verdict.below(self.ratio, t.gpu_memory):
            return "ok"  # unread workloads too: vLLM's limit is rarely lower than this one
        return "fail" if self.use.known else "unknown"

    def text(self, t: Thresholds) -> str:
        shown = f"{verdict.percent(self.ratio, 4)} on {self.name}"
        s, limit = self.use.settings, verdict.percent(self.limit(t), 4)
        if s is not None:
            how = ", vLLM's default" if s.gpu_memory_utilization is None else ""
            return (
                f"{shown} (vLLM in {self.use.target}, gpu-memory-utilization {s.reserved:g}"
                f"{how}: limit {limit} inclusive)"
            )
        if not self.use.known:
            return f"{shown} (what runs on it is unknown: {self.use.note})"
        user = self.use.target or "no pod"
        return f"{shown} ({user}, not vLLM: limit below {limit})"


def _deployment_guess(pod: str) -> str | None:
    """A Deployment's pod is NAME-<template hash>-<suffix>: the name, for pods gone since."""
    parts = pod.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else None


class _Uses:
    """What runs on each GPU, every pod list and manifest asked once."""

    def __init__(self, ask: verdict.Ask, namespace: str) -> None:
        self.ask = ask
        self.namespace = namespace
        self.pods: dict[str, dict[str, dict[str, Any]]] = {}
        self.described: dict[tuple[str, str, str], ToolResult] = {}
        self.down: ToolResult | None = None
        """The answer that showed Kubernetes unreachable: nothing more is asked of it."""

    def _read(self, tool: str, **arguments: Any) -> ToolResult:
        """Ask Kubernetes unless it proved unreachable: one timeout, not one per GPU."""
        if self.down is not None:
            return self.down
        result = self.ask(tool, **arguments)
        if result.status == "error" and result.error_kind in UNREACHABLE_KINDS:
            self.down = result
        return result

    def _pods(self, namespace: str) -> dict[str, dict[str, Any]]:
        if namespace not in self.pods:
            rows = facts.ok_rows(self._read("list_pods", namespace=namespace))
            self.pods[namespace] = {str(p["name"]): p for p in rows}
        return self.pods[namespace]

    def _describe(self, kind: str, name: str, namespace: str) -> ToolResult:
        key = (kind, name, namespace)
        if key not in self.described:
            self.described[key] = self._read(
                "k8s_describe", kind=kind, name=name, namespace=namespace
            )
        return self.described[key]

    def gpu(self, labels: dict[str, str], ratio: float) -> Gpu:
        pod, host = labels.get("pod"), labels.get("Hostname") or "?"
        if not pod:
            return Gpu(labels, ratio, host, Use(known=True))
        namespace = labels.get("namespace") or self.namespace
        row = self._pods(namespace).get(pod)
        node = str(row["node"]) if row and row.get("node") else host
        deployment = facts.deployment_of(row) if row else _deployment_guess(pod)
        if deployment:
            target = f"deployment/{namespace}/{deployment}"
            described = self._describe("deployment", deployment, namespace)
        else:
            target = f"pod/{namespace}/{pod}"
            described = self._describe("pod", pod, namespace)
        if described.status != "ok":
            note = verdict.why_not(described, f"{target} returned nothing")
            use = Use(known=False, source=described, target=target, note=note)
            return Gpu(labels, ratio, node, use)
        containers = [c for c in facts.ok_obj(described).get("containers") or [] if c]
        container = labels.get("container")
        mine = [c for c in containers if c.get("name") == container] or containers
        settings = facts.settings_of(mine)
        return Gpu(labels, ratio, node, Use(True, settings, described, target))


def check(ask: verdict.Ask, thresholds: Thresholds, namespace: str) -> CheckResult:
    """The fullest GPU against its limit; the worst offender (node/gpu) named in the value."""
    t = thresholds
    threshold = (
        f"< {verdict.percent(t.gpu_memory)}; a vLLM GPU <= its gpu-memory-utilization "
        f"+ {t.vllm_memory_slack:g}"
    )
    result, rows = verdict.query(ask, QUERY)
    if not rows:
        empty = "no data: DCGM_FI_DEV_FB_USED and DCGM_FI_DEV_FB_FREE have no samples in 24h"
        return verdict.unknown(CHECK_ID, threshold, result, empty)
    uses = _Uses(ask, namespace)
    gpus = [uses.gpu(labels, ratio) for labels, ratio in rows]
    failing = sorted((g for g in gpus if g.judge(t) == "fail"), key=lambda g: g.limit(t) - g.ratio)
    undecided = [g for g in gpus if g.judge(t) == "unknown"]
    status: Verdict
    if failing:
        status, worst = "fail", failing[0]
        value = (
            f"{worst.text(t)}; {len(failing)} of {verdict.count(len(gpus), 'GPU')} over their limit"
        )
    elif undecided:
        status, worst = "unknown", max(undecided, key=lambda g: g.ratio)
        above = (
            f"{verdict.count(len(undecided), 'GPU')} at or above {verdict.percent(t.gpu_memory)}"
        )
        value = f"{worst.text(t)}; {above} whose workload could not be read"
    else:
        status, worst = "ok", max(gpus, key=lambda g: g.ratio)
        value = (
            f"highest {worst.text(t)}; {verdict.count(len(gpus), 'GPU')}, all within their limits"
        )
    data = facts.ok_obj(result)
    if data.get("truncated"):
        value += f"; only the {len(rows)} fullest of {data.get('series_count')} GPUs were read"
    found = [evidence(result, value, where=f"node/{worst.node}")]
    found += [evidence(result, g.text(t), where=f"node/{g.node}") for g in failing[1:LISTED]]
    if worst.use.source is not None:
        seen = worst.use.note or (
            f"{worst.use.settings.container} runs vLLM, gpu-memory-utilization "
            f"{worst.use.settings.reserved:g}"
            if worst.use.settings is not None
            else "no vLLM container uses this GPU"
        )
        found.append(evidence(worst.use.source, seen, where=worst.use.target))
    return CheckResult(id=CHECK_ID, status=status, value=value, threshold=threshold, evidence=found)
