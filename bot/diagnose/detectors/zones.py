"""Stateless replicas all in one zone (``network-latency/single-zone-replicas``).

All replicas of a model on one zone's nodes means one zone's trouble takes the model down, when
other zones could host them. A workload whose pods form one tensor- or pipeline-parallel group
(a Ray cluster, a head and its workers, TP larger than one pod's GPUs) is one model instance, not
replicas: it stays together on purpose, and that is reported as ruled out.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from bot.diagnose.detectors import network_facts as net
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding

ONE_ZONE = "network-latency/single-zone-replicas"
CODES = frozenset({ONE_ZONE})

GPU = "nvidia.com/gpu"
HOUR = timedelta(hours=1)
_PP = re.compile(r"--pipeline-parallel-size[= ](\d+)")
_TP = re.compile(r"--tensor-parallel-size[= ](\d+)")
_GROUP_ROLES = {"head", "worker", "leader"}


def single_zone_replicas(inv: Investigation) -> list[Finding]:
    """All replicas of a stateless model in one zone while it could run in others."""
    cluster = net.Cluster(inv)
    findings: list[Finding] = []
    for workload in inv.subject.workloads or [d["name"] for d in cluster.deployments]:
        pods = [p for p in cluster.pods_of(workload) if p.get("node") in cluster.nodes]
        zones = {cluster.nodes[p["node"]].get("zone") for p in pods}
        if len(pods) < 2 or len(zones) != 1:
            continue
        zone, where = str(zones.pop()), cluster.target(workload)
        result, described = cluster.describe(workload)
        placed = evidence(
            cluster.nodes_result, f"all {len(pods)} pods of {workload} run in {zone}", where=where
        )
        group = _parallel_group(cluster, workload, described)
        if group:
            findings.append(
                Finding(
                    code=ONE_ZONE,
                    summary=f"{workload} sits in one zone on purpose: {group}.",
                    confidence=0.9,
                    evidence=[placed, evidence(result, group, where=where)],
                    target=where,
                    ruled_out=True,
                )
            )
            continue
        others = _other_zones(inv, cluster, pods, zone)
        if not others:
            continue
        impact = _zone_impact(cluster, zone, pods)
        findings.append(
            Finding(
                code=ONE_ZONE,
                summary=f"All replicas of {workload} run in {zone} although {', '.join(others)} "
                "could host them, so one zone's trouble takes the whole model down.",
                confidence=0.9 if impact else 0.5,
                evidence=[placed, *impact],
                target=where,
                fixes=[net.fix("add-zone-anti-affinity", where, "spread the replicas over zones")],
            )
        )
    return findings


def _parallel_group(cluster: net.Cluster, workload: str, described: dict[str, Any]) -> str | None:
    """Why the workload's pods are one model instance (TP/PP over nodes), or None."""
    containers = described.get("containers") or []
    command = " ".join(
        str(x) for c in containers for x in (c.get("command") or []) + (c.get("args") or [])
    )
    role = str((described.get("labels") or {}).get("role") or "")
    pp, tp = _PP.search(command), _TP.search(command)
    gpus = max((net.number((c.get("requests") or {}).get(GPU)) or 0 for c in containers), default=0)
    model = cluster.model_of(workload)
    if "ray start" in command or "--distributed-executor-backend ray" in command:
        return "its pods form one Ray cluster (tensor/pipeline-parallel group)"
    if pp and int(pp.group(1)) > 1:
        return f"pipeline-parallel size {pp.group(1)} spans its pods"
    if tp and gpus and int(tp.group(1)) > gpus:
        return f"tensor-parallel size {tp.group(1)} exceeds the {gpus:g} GPUs of one pod"
    if role in _GROUP_ROLES or (model and len(cluster.workloads_of(model)) > 1):
        return f"it is the {role or 'part'} of the multi-node group serving {model}"
    return None


def _other_zones(
    inv: Investigation, cluster: net.Cluster, pods: list[dict[str, Any]], zone: str
) -> list[str]:
    """Zones the workload could use: its kind of node elsewhere, or its NodePools' zones."""
    gpu = any(p.get("gpus") for p in pods)
    zones = {
        str(n["zone"])
        for n in cluster.nodes.values()
        if n.get("zone") and (n.get("gpu_capacity") or not gpu)
    }
    pools = {str(cluster.nodes[p["node"]].get("nodepool")) for p in pods}
    for pool in net.obj(inv.tool("karpenter_status")).get("nodepools") or []:
        for requirement in pool.get("requirements") or [] if pool.get("name") in pools else []:
            if str(requirement).startswith("topology.kubernetes.io/zone In ["):
                zones |= {
                    z.strip() for z in str(requirement).split("[", 1)[1].rstrip("]").split(",")
                }
    return sorted(zones - {zone})


def _zone_impact(cluster: net.Cluster, zone: str, pods: list[dict[str, Any]]) -> list[Evidence]:
    """What the zone's trouble already does: nodes NotReady or flapping, and then its pods."""
    in_zone = {n for n, node in cluster.nodes.items() if node.get("zone") == zone}
    found = [
        evidence(cluster.nodes_result, f"node {n} in {zone}: NotReady", where=f"node/{n}")
        for n in sorted(in_zone)
        if not cluster.nodes[n].get("ready")
    ]
    events = cluster.inv.tool("k8s_events", kind="node")
    for event in net.rows(events):
        node = str(event.get("object")).removeprefix("Node/")
        recent = net.after(event.get("last_seen"), cluster.inv.now - HOUR)
        if node in in_zone and event.get("reason") == "NodeNotReady" and recent:
            value = f"NodeNotReady x{event.get('count', 1)}, last {event.get('ago')} ago"
            found.append(evidence(events, value, where=f"node/{node}"))
    unready = [p["name"] for p in pods if not p.get("all_ready")]
    if (
        unready and found
    ):  # pods failing on their own (a bad image, a crash) say nothing of the zone
        found.insert(0, evidence(cluster.pods_result, f"pods not ready: {', '.join(unready)}"))
    return found[:5]


DETECTORS: list[Detector] = [single_zone_replicas]
