"""Scenario events as core/v1 Events, reported by the component that would report them.

``kubectl describe`` finds an object's events by involvedObject name, namespace and uid, so the
uid is the stored object's; events about cluster-scoped objects live in ``default``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lab.kube import naming
from lab.scenario import models

Obj = dict[str, Any]

INTERVAL = timedelta(minutes=1)
"""Assumed time between repeats of an event, which dates its firstTimestamp."""

KINDS = {
    "pod": ("Pod", "v1"),
    "deployment": ("Deployment", "apps/v1"),
    "pvc": ("PersistentVolumeClaim", "v1"),
    "node": ("Node", "v1"),
    "nodepool": ("NodePool", "karpenter.sh/v1"),
    "nodeclaim": ("NodeClaim", "karpenter.sh/v1"),
}
_CONTAINER_REASONS = frozenset(
    ["BackOff", "Pulling", "Pulled", "Failed", "Created", "Started", "Killing", "Unhealthy"]
)
_KUBELET_REASONS = _CONTAINER_REASONS | frozenset(
    """FailedMount Evicted FailedCreatePodSandBox ExceededGracePeriod FailedSync InspectFailed
    ErrImageNeverPull NodeReady NodeNotSchedulable Rebooted NodeSchedulable Starting
    NodeAllocatableEnforced NodeHasSufficientMemory NodeHasInsufficientMemory
    NodeHasNoDiskPressure NodeHasDiskPressure NodeHasSufficientPID EvictionThresholdMet
    ContainerGCFailed ImageGCFailed""".split()  # noqa: SIM905 - a word list reads better
)
_KARPENTER_REASONS = frozenset(
    """Nominated DisruptionBlocked Disrupting DisruptionTerminating Unconsolidatable
    DisruptionLaunching DisruptionWaitingReadiness InsufficientCapacityError LaunchFailed
    NoCompatibleInstanceTypes FailedConsistencyCheck""".split()  # noqa: SIM905
)
_COMPONENTS = {
    "FailedScheduling": "default-scheduler",
    "Scheduled": "default-scheduler",
    "Preempted": "default-scheduler",
    "ScalingReplicaSet": "deployment-controller",
    "SuccessfulCreate": "replicaset-controller",
    "FailedCreate": "replicaset-controller",
    "SuccessfulDelete": "replicaset-controller",
    "ProvisioningFailed": "persistentvolume-controller",
    "ExternalProvisioning": "persistentvolume-controller",
    "WaitForFirstConsumer": "persistentvolume-controller",
    "WaitForPodScheduled": "persistentvolume-controller",
    "FailedBinding": "persistentvolume-controller",
    "ProvisioningSucceeded": "ebs.csi.aws.com",
    "FailedAttachVolume": "attachdetach-controller",
    "SuccessfulAttachVolume": "attachdetach-controller",
    "NodeNotReady": "node-controller",
    "RegisteredNode": "node-controller",
    "RemovingNode": "node-controller",
    "DeletingNode": "node-controller",
    "TaintManagerEviction": "taint-eviction-controller",
    "OOMKilling": "kernel-monitor",
    "KernelOops": "kernel-monitor",
    "TaskHung": "kernel-monitor",
}
_DEFAULT_COMPONENT = {
    "Pod": "kubelet",
    "Node": "kubelet",
    "Deployment": "deployment-controller",
    "PersistentVolumeClaim": "persistentvolume-controller",
}


def component(kind: str, reason: str, message: str) -> str:
    """The component that reports such an event in a real cluster."""
    karpenter = message.startswith("Failed to schedule pod") or "nodepool" in message.lower()
    if kind in ("NodePool", "NodeClaim") or reason in _KARPENTER_REASONS or karpenter:
        return "karpenter"
    if reason in _KUBELET_REASONS:
        return "kubelet"
    return _COMPONENTS.get(reason) or _DEFAULT_COMPONENT.get(kind, "kubelet")


def first_seen(e: models.Event, now: datetime) -> datetime:
    return now - e.last_seen - (e.count - 1) * INTERVAL


def event(
    index: int,
    e: models.Event,
    *,
    now: datetime,
    uid: str | None,
    host: str = "",
    container: str | None = None,
) -> Obj:
    """Event number ``index`` of the scenario; ``uid`` of the involved object when it exists,
    ``host`` the node a kubelet event comes from, ``container`` the pod's first container."""
    word, ns, name = e.target
    kind, api_version = KINDS[word]
    involved: Obj = {"kind": kind, "apiVersion": api_version, "name": name}
    if ns:
        involved["namespace"] = ns
    if uid:
        involved["uid"] = uid
    source = component(kind, e.reason, e.message)
    if source != "kubelet":
        host = ""
    elif kind == "Node":
        host = name
    if source == "kubelet" and container and e.reason in _CONTAINER_REASONS:
        involved["fieldPath"] = f"spec.containers{{{container}}}"
    last = now - e.last_seen
    first = first_seen(e, now)
    namespace = ns or "default"
    event_name = f"{name}.{naming.hex_id('event', str(index), e.involved, e.reason)}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": event_name,
            "namespace": namespace,
            "uid": naming.uid("Event", namespace, event_name),
            "creationTimestamp": naming.rfc3339(first),
        },
        "involvedObject": involved,
        "reason": e.reason,
        "message": e.message,
        "type": e.type,
        "count": e.count,
        "firstTimestamp": naming.rfc3339(first),
        "lastTimestamp": naming.rfc3339(last),
        "eventTime": None,
        "source": {"component": source, **({"host": host} if host else {})},
        "reportingComponent": source,
        "reportingInstance": host,
    }
