"""Deployments and the PersistentVolumeClaims their pods mount, as read-only tools.

A Deployment with fewer ready replicas than desired, or a claim that is not Bound, is listed
first: those are what a diagnosis looks for (a rollout stuck, a model cache that never mounts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tools import base, kube_api
from tools import kube_render as render
from tools.toolbox import Toolbox


def _now() -> datetime:
    return datetime.now(UTC)


def list_deployments(
    *, box: Toolbox, cluster: str | None = None, namespace: str | None = None
) -> base.ToolResult:
    """Deployments with desired/ready/updated/available replicas, GPUs per pod, images and
    failing conditions; unhealthy first."""
    config = kube_api.resolve(box, cluster, "list_deployments")
    if isinstance(config, base.ToolResult):
        return config
    ns = namespace or config.inference_namespace

    def show(answers: list[Any]) -> base.Output:
        now = _now()
        found = [_deployment(d, now) for d in answers[0].get("items") or []]
        if not found:
            return base.Output(data=[], text=f"no Deployments {kube_api.scope(ns)}", no_data=True)
        found.sort(key=lambda d: (d["ready"] >= d["desired"] and not d["problems"], d["name"]))
        degraded = sum(1 for d in found if d["ready"] < d["desired"])
        header = f"{len(found)} Deployments {kube_api.scope(ns)}, {degraded} not fully ready"
        rows = [
            [
                f"{d['namespace']}/{d['name']}" if ns == kube_api.ALL else d["name"],
                f"{d['ready']}/{d['desired']}",
                d["updated"],
                d["available"],
                d["gpus_per_pod"],
                ", ".join(d["images"]),
                d["age"],
                "; ".join(d["problems"]) or "-",
            ]
            for d in found
        ]
        headers = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "GPUS/POD", "IMAGES", "AGE"]
        text, cut = kube_api.fit(header, [*headers, "PROBLEMS"], rows, box.limits, "Deployments")
        return base.Output(data=found, text=text, cut=cut)

    read = kube_api.Read(kube_api.collection(ns, "apis", "apps", "v1", "deployments"))
    return kube_api.run(box=box, config=config, tool="list_deployments", reads=[read], render=show)


def _deployment(d: dict[str, Any], now: datetime) -> dict[str, Any]:
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    template = render.get(spec, "template", "spec") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "labels": meta.get("labels") or {},
        "desired": render.count(spec.get("replicas", 1)),
        "ready": render.count(status.get("readyReplicas", 0)),
        "updated": render.count(status.get("updatedReplicas", 0)),
        "available": render.count(status.get("availableReplicas", 0)),
        "gpus_per_pod": render.gpu_request(template),
        "images": [str(c.get("image")) for c in template.get("containers") or []],
        "problems": [
            f"{c.get('type')}=False {c.get('reason')}: {c.get('message')}"
            for c in status.get("conditions") or []
            if c.get("status") != "True"
        ],
        "age": render.age(meta.get("creationTimestamp"), now),
    }


def list_pvcs(
    *, box: Toolbox, cluster: str | None = None, namespace: str | None = None
) -> base.ToolResult:
    """PersistentVolumeClaims with phase, volume, size, access modes and storage class;
    unbound first."""
    config = kube_api.resolve(box, cluster, "list_pvcs")
    if isinstance(config, base.ToolResult):
        return config
    ns = namespace or config.inference_namespace

    def show(answers: list[Any]) -> base.Output:
        now = _now()
        found = [_pvc(p, now) for p in answers[0].get("items") or []]
        if not found:
            return base.Output(
                data=[], text=f"no PersistentVolumeClaims {kube_api.scope(ns)}", no_data=True
            )
        found.sort(key=lambda p: (p["phase"] == "Bound", p["namespace"], p["name"]))
        unbound = sum(1 for p in found if p["phase"] != "Bound")
        header = f"{len(found)} PersistentVolumeClaims {kube_api.scope(ns)}, {unbound} not Bound"
        rows = [
            [
                f"{p['namespace']}/{p['name']}" if ns == kube_api.ALL else p["name"],
                p["phase"],
                p["volume"] or "-",
                p["capacity"] or f"{p['requested']} (requested)",
                ",".join(p["access_modes"]),
                p["storage_class"] or "-",
                p["age"],
            ]
            for p in found
        ]
        headers = ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "AGE"]
        text, cut = kube_api.fit(header, headers, rows, box.limits, "PVCs")
        return base.Output(data=found, text=text, cut=cut)

    read = kube_api.Read(kube_api.collection(ns, "api", "v1", "persistentvolumeclaims"))
    return kube_api.run(box=box, config=config, tool="list_pvcs", reads=[read], render=show)


def _pvc(p: dict[str, Any], now: datetime) -> dict[str, Any]:
    meta, spec, status = p.get("metadata") or {}, p.get("spec") or {}, p.get("status") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "phase": status.get("phase", "Pending"),
        "volume": spec.get("volumeName"),
        "requested": render.get(spec, "resources", "requests", "storage"),
        "capacity": render.get(status, "capacity", "storage"),
        "access_modes": list(spec.get("accessModes") or []),
        "storage_class": spec.get("storageClassName"),
        "age": render.age(meta.get("creationTimestamp"), now),
    }
