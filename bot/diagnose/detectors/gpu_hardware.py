"""GPU hardware faults (runbook ``gpu-hardware-fault``): XIDs, double-bit ECC errors, heat.

A hardware XID (48, 63, 64, 74, 79, 92, 94, 95, …) stays with one GPU whatever runs on it: the
node must stop taking work, so the fix is cordoning it. An application XID (13, 31, 43, 45) is
the software faulting — it follows the image across nodes — and cordoning would only move the
crash. A pod that crashed of it restarts by itself (restarting again changes nothing: the image is
at fault); a pod that is still the process that faulted holds a broken CUDA context and hangs
until it is restarted, so for that one the fix is a rollout restart of its workload.

Both DCGM's ``DCGM_FI_DEV_XID_ERRORS`` (the last code) and the kernel's ``NVRM: Xid`` lines are
read; DCGM's ``Hostname`` is mapped to the Kubernetes node the fix targets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion
from tools import gpu
from tools.base import ToolResult

XID = "gpu-hardware-fault/xid-error"
APPLICATION_XID = "gpu-hardware-fault/application-xid"
ECC = "gpu-hardware-fault/ecc-double-bit"
THERMAL = "gpu-hardware-fault/thermal"
CODES = frozenset({XID, APPLICATION_XID, ECC, THERMAL})

HOT_CELSIUS = 85
"""The coolest reading of the last 10 minutes at or above this is sustained overheating."""
WINDOW = "1h"
RESTARTED_WITHIN = timedelta(hours=1)
"""A pod that restarted this recently already got a fresh process after its XID."""
THERMAL_BITS = 0b11 << 5
"""DCGM clock throttle reasons: software (0x20) and hardware (0x40) thermal slowdown."""

_KERNEL_XID = re.compile(r"NVRM: Xid \((?P<pci>[^)]*)\): (?P<code>\d+)")
_PLUGIN_XID = re.compile(r"Xid=(?P<code>\d+) on Device=(?P<uuid>GPU-[0-9a-fA-F-]+)")
_LOG_QUERY = (
    "fields @timestamp, @logStream, @message"
    " | filter @message like /NVRM: Xid|XidCriticalError/"
    " | sort @timestamp desc | limit 200"
)


@dataclass
class _Node:
    """What one node's GPUs reported."""

    hardware: dict[int, list[Evidence]] = field(default_factory=dict)
    application: dict[int, list[Evidence]] = field(default_factory=dict)
    gpus: set[str] = field(default_factory=set)
    pods: set[str] = field(default_factory=set)

    def add(self, code: int, ev: Evidence, gpu_id: str = "", pod: str = "") -> None:
        cause = gpu.xid(code).cause
        bucket = self.hardware if cause == "hardware" else self.application
        if cause not in ("hardware", "application"):
            return  # driver or unknown codes: neither cordon nor blame the app
        bucket.setdefault(code, []).append(ev)
        self.gpus |= {gpu_id} if gpu_id else set()
        self.pods |= {pod} if pod else set()


def _scope(inv: Investigation) -> set[str] | None:
    """Nodes the trigger is about (its nodes, its pods' nodes); None: the whole fleet."""
    s = inv.subject
    nodes = set(s.nodes)
    if s.pods and not nodes:
        nodes |= {str(p["node"]) for p in facts.pods(inv) if p["name"] in s.pods and p.get("node")}
    return nodes or None


def _queries(inv: Investigation) -> tuple[ToolResult, dict[str, list[facts.Row]]]:
    throttle = "last_over_time(DCGM_FI_DEV_CLOCK_THROTTLE_REASONS[15m])"
    return facts.query_parts(
        inv,
        {
            "xid": f"last_over_time(DCGM_FI_DEV_XID_ERRORS[{WINDOW}]) > 0",
            "dbe": f"max_over_time(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[{WINDOW}]) > 0",
            "hot": f"min_over_time(DCGM_FI_DEV_GPU_TEMP[10m]) >= {HOT_CELSIUS}",
            "throttle": f"{throttle} and (floor({throttle} / 32) % 4 > 0)",
            "temp": "max_over_time(DCGM_FI_DEV_GPU_TEMP[15m]) >= 75",
        },
    )


def _gpu_label(labels: dict[str, str]) -> str:
    return f"GPU {labels.get('gpu', '?')} ({labels.get('UUID', 'no UUID')})"


def _kernel_lines(
    inv: Investigation, uuid_node: dict[str, str], by_node: dict[str, _Node], scope: set[str] | None
) -> None:
    """Add the XIDs the kernel and the device plugin logged, by node."""
    result = inv.tool("logs_insights_query", query=_LOG_QUERY, since="2h")
    names = [n["name"] for n in facts.nodes(inv)]
    for row in facts.ok_obj(result).get("rows") or []:
        message, stream = str(row.get("@message", "")), str(row.get("@logStream", ""))
        node, code = None, None
        if match := _KERNEL_XID.search(message):
            code = int(match["code"])
            node = next((n for n in names if stream.startswith(n)), None)
            node = node or next((n for n in names if stream.startswith(n.split(".")[0])), None)
        elif match := _PLUGIN_XID.search(message):
            code, node = int(match["code"]), uuid_node.get(match["uuid"])
        if node is None or code is None or (scope is not None and node not in scope):
            continue
        ev = evidence(result, message.strip()[:300], where=f"{stream} at {row.get('@timestamp')}")
        by_node.setdefault(node, _Node()).add(code, ev)


def _cordon(node: str, why: str) -> list[FixSuggestion]:
    return [FixSuggestion(code="cordon-node", target=f"node/{node}", reason=why)]


def _xid_findings(inv: Investigation, by_node: dict[str, _Node]) -> list[Finding]:
    out: list[Finding] = []
    for node, seen in sorted(by_node.items()):
        if not seen.hardware:
            continue
        codes = sorted(seen.hardware)
        ev = [e for c in codes for e in seen.hardware[c]]
        both = {e.source for e in ev} >= {"prometheus", "cloudwatch"}
        meaning = "; ".join(f"XID {c}: {gpu.xid(c).meaning}" for c in codes)
        gpus = f" on {', '.join(sorted(seen.gpus))}" if seen.gpus else ""
        out.append(
            Finding(
                code=XID,
                summary=f"Node {node} reported a hardware XID{gpus} ({meaning}): the GPU is "
                "faulty, so the node should stop taking work; the crashes of its pods follow "
                "from it.",
                confidence=0.95 if both else 0.85,
                evidence=ev,
                target=f"node/{node}",
                fixes=_cordon(
                    node, "keep new pods off the faulty GPU until it is reset or replaced"
                ),
            )
        )
    application = {n: s for n, s in by_node.items() if s.application}
    if application:
        codes = sorted({c for s in application.values() for c in s.application})
        ev = [
            e for s in application.values() for c in sorted(s.application) for e in s.application[c]
        ]
        holders = {p for s in application.values() for p in s.pods}
        pod_rows = [p for p in facts.pods(inv) if p["name"] in holders]
        owners = {w for p in pod_rows if (w := facts.deployment_of(p))}
        ns = inv.subject.namespace
        target = f"deployment/{ns}/{next(iter(owners))}" if len(owners) == 1 else None
        meaning = "; ".join(f"XID {c}: {gpu.xid(c).meaning}" for c in codes)
        spread = (
            f"{len(application)} nodes"
            if len(application) > 1
            else f"node {next(iter(application))}"
        )
        stuck = [p for p in pod_rows if not _restarted_since(inv.now, p)]
        out.append(
            Finding(
                code=APPLICATION_XID,
                summary=f"Application XIDs on {spread} ({meaning}): the software running on "
                "the GPU faulted, not the hardware; cordoning would only move the crash."
                + _restart_advice(pod_rows, stuck),
                confidence=0.9 if len(application) > 1 else 0.8,
                evidence=ev[:8] + [_pod_state(inv, p) for p in stuck[:2]],
                target=target,
                fixes=_restarts(ns, stuck),
            )
        )
    return out


def _restarted_since(now: datetime, pod: dict[str, Any]) -> bool:
    """Whether the pod's container restarted within the hour (after the XID, as far as we know)."""
    finished = (pod.get("last_termination") or {}).get("finished_at")
    try:
        return bool(finished) and now - datetime.fromisoformat(str(finished)) <= RESTARTED_WITHIN
    except (TypeError, ValueError):
        return True  # unreadable: do not claim the process is stuck


def _restart_advice(holders: list[dict[str, Any]], stuck: list[dict[str, Any]]) -> str:
    """What to do about the pods that held the faulting GPUs (nothing when DCGM named none)."""
    if not holders:
        return ""
    if not stuck:
        return (
            " Its pods restart by themselves, so restarting changes nothing: roll the image back."
        )
    names = ", ".join(p["name"] for p in stuck)
    return f" No restart since for {names}: the faulted process still runs; restart the workload."


def _pod_state(inv: Investigation, pod: dict[str, Any]) -> Evidence:
    result = inv.tool("list_pods", namespace=inv.subject.namespace)
    ready = "Ready" if pod.get("all_ready") else "not Ready"
    value = f"{pod['phase']}, {ready}, {pod.get('restarts', 0)} restarts, none in the last hour"
    return evidence(result, value, where=f"pod/{pod['namespace']}/{pod['name']}")


def _restarts(namespace: str, stuck: list[dict[str, Any]]) -> list[FixSuggestion]:
    """A rollout restart per workload whose pod still runs the process that faulted."""
    owners = sorted({w for p in stuck if (w := facts.deployment_of(p))})
    return [
        FixSuggestion(
            code="rollout-restart",
            target=f"deployment/{namespace}/{w}",
            reason="replace the process that holds the faulted CUDA context; the GPU is fine",
        )
        for w in owners
    ]


def detect(inv: Investigation) -> list[Finding]:
    """XIDs (hardware vs application), double-bit ECC errors and sustained heat, per node."""
    scope = _scope(inv)
    result, found = _queries(inv)
    by_node: dict[str, _Node] = {}
    uuid_node: dict[str, str] = {}
    located: list[tuple[str, str, dict[str, str], float]] = []
    for part, rows in found.items():
        for labels, value in rows:
            node = facts.node_name(inv, labels)
            if node is None or (scope is not None and node not in scope):
                continue
            uuid_node[labels.get("UUID", "")] = node
            located.append((part, node, labels, value))
    for part, node, labels, value in located:
        if part == "xid":
            code = int(value)
            ev = evidence(
                result,
                f"DCGM_FI_DEV_XID_ERRORS = {code} ({gpu.xid(code).meaning}) on "
                + _gpu_label(labels),
                where=f"node/{node}",
            )
            by_node.setdefault(node, _Node()).add(
                code, ev, _gpu_label(labels), labels.get("pod", "")
            )
    _kernel_lines(inv, uuid_node, by_node, scope)
    out = _xid_findings(inv, by_node)
    out += _ecc(result, located)
    out += _thermal(result, located)
    return out


def _ecc(
    result: ToolResult, located: list[tuple[str, str, dict[str, str], float]]
) -> list[Finding]:
    nodes: dict[str, list[Evidence]] = {}
    for part, node, labels, value in located:
        if part == "dbe":
            nodes.setdefault(node, []).append(
                evidence(
                    result,
                    f"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL = {value:.0f} on {_gpu_label(labels)}",
                    where=f"node/{node}",
                )
            )
    return [
        Finding(
            code=ECC,
            summary=f"Node {node} has GPUs with uncorrectable (double-bit) ECC errors: its "
            "memory can no longer be trusted.",
            confidence=0.9,
            evidence=ev,
            target=f"node/{node}",
            fixes=_cordon(node, "stop scheduling onto GPUs with uncorrectable memory errors"),
        )
        for node, ev in sorted(nodes.items())
    ]


def _thermal(
    result: ToolResult, located: list[tuple[str, str, dict[str, str], float]]
) -> list[Finding]:
    temps = {(n, lb.get("UUID", lb.get("gpu", ""))): v for p, n, lb, v in located if p == "temp"}
    nodes: dict[str, tuple[list[Evidence], bool]] = {}
    for part, node, labels, value in located:
        key = (node, labels.get("UUID", labels.get("gpu", "")))
        if part == "hot":
            text = f"coolest DCGM_FI_DEV_GPU_TEMP over 10m: {value:.0f} C on {_gpu_label(labels)}"
        elif part == "throttle":
            reasons = ", ".join(r for r in gpu.throttle_reasons(value) if "thermal" in r)
            peak = f" at up to {temps[key]:.0f} C" if key in temps else ""
            text = f"clocks throttled ({reasons}){peak} on {_gpu_label(labels)}"
        else:
            continue
        ev, sustained = nodes.get(node, ([], False))
        ev.append(evidence(result, text, where=f"node/{node}"))
        nodes[node] = (ev, sustained or part == "hot")
    return [
        Finding(
            code=THERMAL,
            summary=f"GPUs on node {node} run hot enough to throttle their clocks: check the "
            "node's cooling; move work off it.",
            confidence=0.9 if sustained else 0.75,
            evidence=ev,
            target=f"node/{node}",
            fixes=_cordon(node, "stop scheduling onto an overheating node until it is checked"),
        )
        for node, (ev, sustained) in sorted(nodes.items())
    ]


DETECTORS: list[Detector] = [detect]
