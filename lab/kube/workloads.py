"""Deployments, ReplicaSets and pods as the API serves them, from a pod's intended state.

Shared by the builder (the scenario's moment) and the rollout controller (the pods it creates
and moves along), so both produce the same shapes: what kubectl's columns and the official
client's strict models read.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from lab.kube import naming, podspec, podstatus
from lab.scenario import models

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


# -- objects -----------------------------------------------------------------------------------
def owner_reference(obj: Obj) -> Obj:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def rolling_limits(replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for the default 25 % / 25 % strategy."""
    surge, unavailable = math.ceil(replicas * 0.25), math.floor(replicas * 0.25)
    return (surge, unavailable) if surge or unavailable else (0, 1)


def deployment(
    name: str,
    namespace: str,
    *,
    labels: dict[str, str],
    template: Obj,
    replicas: int,
    created: datetime,
) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": naming.uid("Deployment", namespace, name),
            "generation": 1,
            "creationTimestamp": naming.rfc3339(created),
            "labels": dict(labels),
            "annotations": {REVISION: "1"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(template["metadata"]["labels"])},
            "template": copy.deepcopy(template),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
    }


def replica_set(
    dep: Obj, *, pod_template_hash: str, revision: int, replicas: int, created: datetime
) -> Obj:
    meta = dep["metadata"]
    name = f"{meta['name']}-{pod_template_hash}"
    template = copy.deepcopy(dep["spec"]["template"])
    template_meta = template.setdefault("metadata", {})
    labels = {**template_meta.get("labels", {}), HASH_LABEL: pod_template_hash}
    template_meta["labels"] = labels
    desired = dep["spec"].get("replicas", 1)
    selector = copy.deepcopy(dep["spec"].get("selector") or {})
    selector["matchLabels"] = {**selector.get("matchLabels", {}), HASH_LABEL: pod_template_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "uid": naming.uid("ReplicaSet", meta["namespace"], name),
            "generation": 1,
            "creationTimestamp": naming.rfc3339(created),
            "labels": dict(labels),
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(desired),
                "deployment.kubernetes.io/max-replicas": str(desired + rolling_limits(desired)[0]),
                REVISION: str(revision),
            },
            "ownerReferences": [owner_reference(dep)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    }


def pod(
    name: str,
    namespace: str,
    *,
    template: Obj,
    owner: Obj | None,
    state: models.Pod,
    host_ip: str | None,
    created: datetime,
    now: datetime,
    unschedulable: str = "",
) -> Obj:
    """A pod in ``state`` (the scenario's pod keys), created from ``template`` at ``created``."""
    uid = naming.uid("Pod", namespace, name)
    meta: Obj = {
        "name": name,
        "namespace": namespace,
        "uid": uid,
        "creationTimestamp": naming.rfc3339(created),
    }
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        meta["labels"] = dict(labels)
    if owner is not None:
        meta["generateName"] = f"{owner['metadata']['name']}-"
        meta["ownerReferences"] = [owner_reference(owner)]
    obj: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
    obj["spec"] = podspec.pod_spec(template["spec"], state.node)
    obj["status"] = podstatus.pod_status(
        obj, state, host_ip=host_ip, now=now, unschedulable=unschedulable
    )
    return obj


# -- controller status ---------------------------------------------------------------------------
def is_ready(pod_obj: Obj) -> bool:
    conditions = pod_obj.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def revision(obj: Obj) -> int:
    return int(obj["metadata"].get("annotations", {}).get(REVISION, "0"))


def owned(objs: Iterable[Obj], owner: Obj) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    return [
        o for o in objs if any(r["uid"] == uid for r in o["metadata"].get("ownerReferences", []))
    ]


def _omit_zero(status: Obj) -> Obj:
    return {k: v for k, v in status.items() if v != 0}


def replica_set_status(rs: Obj, pods: list[Obj]) -> Obj:
    ready = sum(is_ready(p) for p in pods)
    return {
        "replicas": len(pods),
        **_omit_zero(
            {"fullyLabeledReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready}
        ),
        "observedGeneration": rs["metadata"].get("generation", 1),
    }


_PROGRESSING = {
    "NewReplicaSetAvailable": ("True", 'ReplicaSet "{}" has successfully progressed.'),
    "ReplicaSetUpdated": ("True", 'ReplicaSet "{}" is progressing.'),
    "ProgressDeadlineExceeded": ("False", 'ReplicaSet "{}" has timed out progressing.'),
}


def deployment_status(
    dep: Obj, rss: list[Obj], pods: list[Obj], *, progressing: str, at: datetime
) -> Obj:
    """status of ``dep`` from its ReplicaSets and their pods, as the deployment controller
    computes it; ``progressing`` is the Progressing condition's reason."""
    newest = max(rss, key=revision)
    new_pods = owned(pods, newest)
    ready = sum(is_ready(p) for p in pods)
    desired = dep["spec"].get("replicas", 1)
    total = sum(rs["spec"].get("replicas", 0) for rs in rss)
    available_ok = ready >= desired - rolling_limits(desired)[1]
    old = {c["type"]: c for c in dep.get("status", {}).get("conditions", [])}
    status_text, template = _PROGRESSING[progressing]
    conditions = [
        _deployment_condition(
            old.get("Available"),
            "Available",
            "True" if available_ok else "False",
            "MinimumReplicasAvailable" if available_ok else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if available_ok
            else "Deployment does not have minimum availability.",
            at=at,
        ),
        _deployment_condition(
            old.get("Progressing"),
            "Progressing",
            status_text,
            progressing,
            template.format(newest["metadata"]["name"]),
            at=at,
        ),
    ]
    counts = {
        "replicas": len(pods),
        "updatedReplicas": len(new_pods),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(total - ready, 0),
    }
    return {
        "observedGeneration": dep["metadata"].get("generation", 1),
        **_omit_zero(counts),
        "conditions": conditions,
    }


def _deployment_condition(
    old: Obj | None, kind: str, status: str, reason: str, message: str, *, at: datetime
) -> Obj:
    now = naming.rfc3339(at)
    if old and old["status"] == status and old.get("reason") == reason:
        return {**old, "message": message}
    transition = old["lastTransitionTime"] if old and old["status"] == status else now
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


def same_template(rs: Obj, template: Obj) -> bool:
    """Equal pod templates, as Kubernetes compares them: ignoring the pod-template-hash label
    the ReplicaSet adds and fields a typed client sends empty (``creationTimestamp: null``)."""
    mine = copy.deepcopy(rs["spec"]["template"])
    mine.setdefault("metadata", {}).setdefault("labels", {}).pop(HASH_LABEL, None)
    return bool(_pruned(mine) == _pruned(template))


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def restarts(pod_obj: Obj) -> int:
    """The first container's restart count."""
    statuses = pod_obj.get("status", {}).get("containerStatuses") or [{}]
    return int(statuses[0].get("restartCount", 0))


def deletion_rank(pod_obj: Obj) -> tuple[bool, int, float]:
    """Scale-down order: unready first, then most restarted, then newest."""
    created = naming.parse_rfc3339(pod_obj["metadata"]["creationTimestamp"]).timestamp()
    return is_ready(pod_obj), -restarts(pod_obj), -created
