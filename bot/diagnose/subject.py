"""Resolve what a trigger is about: pod → workload → node → NodePool; model name → workloads.

An alert names things in its labels (namespace, pod, model, deployment, node or dcgm's
Hostname); a question names them in its words. Both are matched against what the cluster
actually has, so a misspelt name resolves to nothing rather than to a guess.
"""

from __future__ import annotations

import re
from typing import Any

from bot.diagnose.investigation import Investigation, Subject
from bot.diagnose.model import Trigger

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9]")


def _data(inv: Investigation, name: str, **arguments: Any) -> list[dict[str, Any]]:
    result = inv.tool(name, **arguments)
    data = result.data if result.status == "ok" else None
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _deployment_of(pod: dict[str, Any]) -> str | None:
    """``ReplicaSet/llama-3-8b-7d9f6c5b8`` → ``llama-3-8b``."""
    owner = str(pod.get("owner") or "")
    if not owner.startswith("ReplicaSet/"):
        return None
    return owner.removeprefix("ReplicaSet/").rsplit("-", 1)[0]


def _mentioned(trigger: Trigger) -> set[str]:
    """Names a trigger mentions: label values, the workload, and the words of a question."""
    names = {v for k, v in trigger.labels.items() if k not in ("alertname", "severity")}
    if trigger.workload:
        names.add(trigger.workload)
    names.update(_WORD.findall(trigger.question or ""))
    names.update(_WORD.findall(" ".join(trigger.annotations.values())))
    return {n.strip(".,;:!?'\"") for n in names}


def resolve(inv: Investigation, *, default_namespace: str) -> Subject:
    """Fill ``inv.subject`` from the trigger and the cluster's objects, and return it."""
    inv.subject = of(inv, inv.trigger, default_namespace=default_namespace)
    return inv.subject


def of(inv: Investigation, trigger: Trigger, *, default_namespace: str) -> Subject:
    """What ``trigger`` names among the cluster's objects (reads through ``inv``, sets nothing)."""
    namespace = trigger.namespace or trigger.labels.get("namespace") or default_namespace
    subject = Subject(namespace=namespace)
    mentioned = _mentioned(trigger)
    deployments = _data(inv, "list_deployments", namespace=namespace)
    pods = _data(inv, "list_pods", namespace=namespace)
    nodes = _data(inv, "list_nodes")
    model_of = {d["name"]: (d.get("labels") or {}).get("model") for d in deployments}
    for deployment in deployments:
        name = deployment["name"]
        if name in mentioned or (model_of.get(name) and model_of[name] in mentioned):
            subject.workloads.append(name)
    for pod in pods:
        owner = _deployment_of(pod)
        if pod["name"] in mentioned and owner and owner not in subject.workloads:
            subject.workloads.append(owner)
    for pod in pods:
        if pod["name"] in mentioned or _deployment_of(pod) in subject.workloads:
            subject.pods.append(pod["name"])
    pod_nodes = {p["name"]: p.get("node") for p in pods}
    node_names = {n["name"] for n in nodes}
    subject.nodes = sorted(
        {n for n in mentioned if n in node_names}
        | {node for pod in subject.pods if (node := pod_nodes.get(pod))}
    )
    pool_of = {n["name"]: n.get("nodepool") for n in nodes}
    subject.nodepools = sorted({p for n in subject.nodes if (p := pool_of.get(n))})
    subject.models = sorted({m for w in subject.workloads if (m := model_of.get(w))})
    return subject
