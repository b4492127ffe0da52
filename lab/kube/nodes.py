"""Nodes, Karpenter NodePools and NodeClaims as an EKS cluster serves them.

Capacity comes from the instance type table; labels, conditions and taints are the ones the
kubelet, the node controller, GPU feature discovery and Karpenter put there, with their real
reasons and messages, because detectors and kubectl read exactly those.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from lab.kube import naming
from lab.scenario import models
from tools import instance_types

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.3-eks-473151a"
MAX_PODS = 110
NODEPOOL_LABEL = "karpenter.sh/nodepool"
GPU = "nvidia.com/gpu"
EFA = "vpc.amazonaws.com/efa"
_EPHEMERAL_CAPACITY = "104845292Ki"
_EPHEMERAL_ALLOCATABLE = "95551679124"
_UNKNOWN = ("NodeStatusUnknown", "Kubelet stopped posting node status.")
_PRESSURE = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def region(zone: str) -> str:
    """``ap-northeast-2a`` -> ``ap-northeast-2``."""
    return re.sub(r"[a-z]+$", "", zone)


def instance(name: str) -> instance_types.InstanceType:
    found = instance_types.lookup(name)
    if found is None:
        raise ValueError(f"unknown instance type {name!r}")
    return found


def _reserved_cpu_millis(vcpu: int) -> int:
    """EKS kube-reserved CPU: 6 % of the first core, 1 % of the second, 0.5 % of the next
    two, 0.25 % of the rest."""
    tiers = [(1, 60.0), (1, 10.0), (2, 5.0), (max(vcpu - 4, 0), 2.5)]
    total, left = 0.0, vcpu
    for cores, millis in tiers:
        used = min(cores, left)
        total += used * millis
        left -= used
    return round(total)


def capacity(instance_type: str) -> Obj:
    t = instance(instance_type)
    out = {
        "cpu": str(t.vcpu),
        "ephemeral-storage": _EPHEMERAL_CAPACITY,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{t.memory_gib * 1024 * 1024}Ki",
        "pods": str(MAX_PODS),
    }
    if t.gpus:
        out[GPU] = str(t.gpus)
    if t.efa:
        out[EFA] = str(t.efa)
    return out


def allocatable(instance_type: str) -> Obj:
    """Capacity less EKS's kube-reserved (CPU tiers, 255Mi + 11Mi per pod) and eviction."""
    t = instance(instance_type)
    reserved_mib = 255 + 11 * MAX_PODS + 100
    return {
        **capacity(instance_type),
        "cpu": f"{t.vcpu * 1000 - _reserved_cpu_millis(t.vcpu)}m",
        "ephemeral-storage": _EPHEMERAL_ALLOCATABLE,
        "memory": f"{(t.memory_gib * 1024 - reserved_mib) * 1024}Ki",
    }


def provider_id(n: models.Node) -> str:
    return f"aws:///{n.zone}/{naming.instance_id(n.name)}"


def labels(n: models.Node) -> dict[str, str]:
    t = instance(n.instance_type)
    out = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": n.instance_type,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": n.instance_type,
        "topology.kubernetes.io/region": region(n.zone),
        "topology.kubernetes.io/zone": n.zone,
        "karpenter.sh/capacity-type": n.capacity_type,
    }
    if n.nodepool:
        out.update({NODEPOOL_LABEL: n.nodepool, "karpenter.sh/registered": "true"})
        out["karpenter.sh/initialized"] = "true"
    if t.gpus:
        out.update(
            {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.count": str(t.gpus),
                "nvidia.com/gpu.product": (t.gpu_model or "").replace(" ", "-"),
                "nvidia.com/gpu.memory": str(t.gpu_memory_gib * 1024),
            }
        )
    return {**out, **n.labels}


def _conditions(n: models.Node, created: datetime, now: datetime) -> list[Obj]:
    heartbeat = naming.rfc3339(
        now - timedelta(seconds=30) if n.ready else now - timedelta(minutes=5)
    )
    since = naming.rfc3339(max(created + timedelta(minutes=1), now - timedelta(days=1)))
    lost = naming.rfc3339(now - timedelta(minutes=4))

    def cond(kind: str, status: str, reason: str, message: str, transition: str) -> Obj:
        return {
            "type": kind,
            "status": status,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        }

    given = {c.type: c for c in n.conditions}
    out = []
    for kind, reason, message in _PRESSURE:
        if kind in given:
            continue
        if n.ready:
            out.append(cond(kind, "False", reason, message, since))
        else:
            out.append(cond(kind, "Unknown", *_UNKNOWN, lost))
    for c in n.conditions:
        at = naming.rfc3339(max(created, now - timedelta(minutes=10)))
        out.append(cond(c.type, c.status, c.reason, c.message, at))
    if n.ready:
        out.append(cond("Ready", "True", "KubeletReady", "kubelet is posting ready status", since))
    else:
        out.append(cond("Ready", "Unknown", *_UNKNOWN, lost))
    return out


def _taints(n: models.Node, now: datetime) -> list[Obj]:
    out: list[Obj] = []
    for t in n.taints:
        out.append({"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})})
    added = naming.rfc3339(now - timedelta(minutes=4))
    if not n.ready:
        for effect in ("NoSchedule", "NoExecute"):
            out.append({"key": "node.kubernetes.io/unreachable", "effect": effect})
        out[-1]["timeAdded"] = added
    if n.unschedulable:
        out.append(
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": added}
        )
    return out


def node(n: models.Node, *, created: datetime, now: datetime) -> Obj:
    ip = naming.node_ip(n.name)
    dns = (
        n.name
        if n.name.endswith(".internal")
        else f"ip-{ip.replace('.', '-')}.{region(n.zone)}.compute.internal"
    )
    spec: Obj = {"providerID": provider_id(n)}
    taints = _taints(n, now)
    if taints:
        spec["taints"] = taints
    if n.unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n.name,
            "uid": naming.uid("Node", None, n.name),
            "creationTimestamp": naming.rfc3339(created),
            "labels": labels(n),
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": capacity(n.instance_type),
            "allocatable": allocatable(n.instance_type),
            "conditions": _conditions(n, created, now),
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": dns},
                {"type": "Hostname", "address": dns},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": naming.uid("boot", None, n.name),
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.1.134-152.225.amzn2023.x86_64",
                "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "machineID": naming.hex_id("machine", n.name, length=32),
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023.7.20250512",
                "systemUUID": "ec2" + naming.uid("system", None, n.name)[3:],
            },
        },
    }


def is_ready(node_obj: Obj) -> bool:
    conditions = node_obj.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def internal_ip(node_obj: Obj | None) -> str | None:
    """A stored node's InternalIP (a pod's hostIP), None for no node."""
    if node_obj is None:
        return None
    for address in node_obj.get("status", {}).get("addresses", []):
        if address.get("type") == "InternalIP":
            return str(address["address"])
    return naming.node_ip(node_obj["metadata"]["name"])
