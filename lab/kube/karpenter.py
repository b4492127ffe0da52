"""Karpenter's NodePools and NodeClaims (karpenter.sh/v1) as the cluster serves them.

A NodePool's status.resources sums its nodes' capacity, so limit checks see what Karpenter
sees; a NodeClaim carries the lifecycle conditions (Launched, Registered, Initialized, Ready)
with the scenario's reasons, and the node it launched when there is one.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from lab.kube import naming, nodes
from lab.scenario import models

Obj = dict[str, Any]

_NODE_CLASS_REF = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}
_LIFECYCLE = ("Launched", "Registered", "Initialized")


def _karpenter_condition(kind: str, status: str, reason: str, message: str, at: str) -> Obj:
    return {
        "type": kind,
        "status": status,
        "reason": reason or kind,
        "message": message,
        "lastTransitionTime": at,
        "observedGeneration": 1,
    }


def node_pool(p: models.NodePool, *, cluster_nodes: list[models.Node], created: datetime) -> Obj:
    """A karpenter.sh/v1 NodePool; status.resources sums the capacity of its nodes."""
    members = [n for n in cluster_nodes if n.nodepool == p.name]
    sums: dict[str, int] = {"cpu": 0, "ephemeral-storage": 0, "memory": 0, "nodes": len(members)}
    sums["pods"] = 0
    if nodes.GPU in p.limits or any(nodes.instance(n.instance_type).gpus for n in members):
        sums[nodes.GPU] = 0
    for n in members:
        for key, value in nodes.capacity(n.instance_type).items():
            if key.startswith("hugepages"):
                continue
            sums[key] = sums.get(key, 0) + int(value.removesuffix("Ki"))
    resources = {
        key: f"{value}Ki" if key in ("memory", "ephemeral-storage") and value else str(value)
        for key, value in sums.items()
    }
    at = naming.rfc3339(created + timedelta(seconds=5))
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {
            "name": p.name,
            "uid": naming.uid("NodePool", None, p.name),
            "generation": 1,
            "creationTimestamp": naming.rfc3339(created),
            "annotations": {
                "karpenter.sh/nodepool-hash": naming.hex_id("nodepool", p.name, length=16),
                "karpenter.sh/nodepool-hash-version": "v3",
            },
        },
        "spec": {
            "template": {
                "spec": {
                    "requirements": copy.deepcopy(p.requirements),
                    "nodeClassRef": dict(_NODE_CLASS_REF),
                    "expireAfter": "720h",
                }
            },
            "limits": dict(p.limits),
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "0s",
                "budgets": [{"nodes": "10%"}],
            },
        },
        "status": {
            "resources": resources,
            "conditions": [
                _karpenter_condition(kind, "True", kind, "", at)
                for kind in ("NodeClassReady", "Ready", "ValidationSucceeded")
            ],
        },
    }


def _claim_requirements(c: models.NodeClaim, pool: models.NodePool | None) -> list[Obj]:
    pinned: dict[str, str | None] = {
        "node.kubernetes.io/instance-type": c.instance_type,
        "topology.kubernetes.io/zone": c.zone,
        "karpenter.sh/capacity-type": c.capacity_type,
    }
    out: list[Obj] = [{"key": nodes.NODEPOOL_LABEL, "operator": "In", "values": [c.nodepool]}]
    for req in copy.deepcopy(pool.requirements if pool else []):
        key = str(req.get("key"))
        if pinned.get(key) is None and key != nodes.NODEPOOL_LABEL:
            out.append(req)
    out += [{"key": k, "operator": "In", "values": [v]} for k, v in pinned.items() if v]
    return out


def _claim_conditions(c: models.NodeClaim, *, registered: bool, at: str) -> list[Obj]:
    given = {x.type: x for x in c.conditions}
    out = []
    for kind in _LIFECYCLE:
        if kind in given:
            x = given[kind]
            out.append(_karpenter_condition(kind, x.status, x.reason, x.message, at))
        elif not c.conditions and (kind == "Launched" or registered):
            out.append(_karpenter_condition(kind, "True", kind, "", at))
        else:
            reason, message = "AwaitingReconciliation", "object is awaiting reconciliation"
            out.append(_karpenter_condition(kind, "Unknown", reason, message, at))
    for x in c.conditions:
        if x.type not in _LIFECYCLE and x.type != "Ready":
            out.append(_karpenter_condition(x.type, x.status, x.reason, x.message, at))
    if "Ready" in given:
        x = given["Ready"]
        out.append(_karpenter_condition("Ready", x.status, x.reason, x.message, at))
        return out
    failed = [x for x in out if x["status"] == "False"]
    pending = [x for x in out if x["status"] == "Unknown"]
    if failed:
        ready = _karpenter_condition(
            "Ready", "False", failed[0]["reason"], failed[0]["message"], at
        )
    elif pending:
        message = ", ".join(f"{x['type']}=Unknown" for x in pending)
        ready = _karpenter_condition("Ready", "Unknown", "UnhealthyDependents", message, at)
    else:
        ready = _karpenter_condition("Ready", "True", "Ready", "", at)
    return [*out, ready]


def launched(c: models.NodeClaim) -> bool:
    """A claim without conditions is a healthy one; otherwise as its Launched condition says."""
    given = {x.type: x.status for x in c.conditions}
    return not c.conditions or given.get("Launched") == "True"


def node_claim(
    c: models.NodeClaim,
    *,
    pool: models.NodePool | None,
    node_for: models.Node | None,
    created: datetime,
) -> Obj:
    """A karpenter.sh/v1 NodeClaim; ``node_for`` is the node it launched, when there is one."""
    meta_labels = {nodes.NODEPOOL_LABEL: c.nodepool}
    instance_type = c.instance_type or (node_for.instance_type if node_for else None)
    zone = c.zone or (node_for.zone if node_for else None)
    if launched(c):
        for key, value in (
            ("node.kubernetes.io/instance-type", instance_type),
            ("topology.kubernetes.io/zone", zone),
            (
                "karpenter.sh/capacity-type",
                c.capacity_type or (node_for and node_for.capacity_type),
            ),
        ):
            if value:
                meta_labels[key] = value
    at = naming.rfc3339(created + timedelta(seconds=20))
    status: Obj = {"conditions": _claim_conditions(c, registered=node_for is not None, at=at)}
    if launched(c):
        status["providerID"] = (
            nodes.provider_id(node_for)
            if node_for
            else f"aws:///{zone or 'ap-northeast-2a'}/{naming.instance_id(c.name)}"
        )
        status["imageID"] = f"ami-0{naming.hex_id('ami', c.nodepool)}"
        if instance_type:
            status["capacity"] = nodes.capacity(instance_type)
            status["allocatable"] = nodes.allocatable(instance_type)
        if node_for:
            status["nodeName"] = node_for.name
    owner = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "name": c.nodepool,
        "uid": naming.uid("NodePool", None, c.nodepool),
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {
            "name": c.name,
            "uid": naming.uid("NodeClaim", None, c.name),
            "generation": 1,
            "creationTimestamp": naming.rfc3339(created),
            "labels": meta_labels,
            "finalizers": ["karpenter.sh/termination"],
            **({"ownerReferences": [owner]} if pool else {}),
        },
        "spec": {
            "requirements": _claim_requirements(c, pool),
            "nodeClassRef": dict(_NODE_CLASS_REF),
            "expireAfter": "720h",
        },
        "status": status,
    }
