"""Fixes to a workload's pod template: resources, probes, affinity, volumes.

Sizes come from the node the workload runs on (FixContext.node), never from guesses: a fix
whose bound cannot be computed is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bot.fixes import argv, pointer, quantity, vllm
from bot.fixes.builder import PatchBuilder, Refuse
from bot.fixes.model import FixContext
from bot.fixes.vllm import TEMPLATE_SPEC, Container

EFA = "vpc.amazonaws.com/efa"
ZONE_KEY = "topology.kubernetes.io/zone"
HF_CACHE_DEFAULT = "/root/.cache/huggingface"
MEMORY_REQUEST_FLOOR = 32 * 2**30
MEMORY_LIMIT_FLOOR = 64 * 2**30
NODE_MEMORY_SHARE = 0.9
STARTUP_BUDGET_SECONDS = 1800
PROBE_PERIOD_DEFAULT = 10  # Kubernetes' default periodSeconds
PROBE_FAILURES_DEFAULT = 3  # Kubernetes' default failureThreshold
VLLM_PORT_DEFAULT = 8000


def _serving(obj: Mapping[str, Any]) -> list[Container]:
    """vLLM containers, else the containers that hold GPUs."""
    try:
        return vllm.vllm_containers(obj)
    except Refuse:
        found = vllm.gpu_containers(obj)
        if not found:
            raise Refuse("no container runs vLLM or requests GPUs") from None
        return found


def enable_efa(b: PatchBuilder, ctx: FixContext) -> str:
    """Request and limit every EFA interface the instance type has, on the GPU containers."""
    node = ctx.node
    if node is None or not node.instance_type:
        raise Refuse("the node's instance type is unknown")
    if node.efa is None:
        raise Refuse(f"instance type {node.instance_type} is not in the instance-type table")
    if node.efa == 0:
        raise Refuse(f"{node.instance_type} has no EFA interfaces")
    count = str(node.efa)
    gpu = vllm.gpu_containers(b.obj)
    if not gpu:
        raise Refuse("no container requests nvidia.com/gpu")

    def change(c: Container) -> None:
        resources = c.spec.get("resources") or {}
        olds = {k: (resources.get(k) or {}).get(EFA) for k in ("requests", "limits")}
        if all(v is not None and str(v) == count for v in olds.values()):
            raise Refuse(f"{c.label('resources')} already has {count} EFA interfaces")
        c.pin(b)
        for kind, old in olds.items():
            if old is None or str(old) != count:
                b.ensure_object(c.path("resources", kind), EFA, count)
                b.line(f"{c.label('resources')}.{kind}.{EFA}: {old or '(unset)'} → {count}")

    b.each(gpu, change)
    return f"Give the GPU containers the {count} EFA interfaces of {node.instance_type}."


def add_zone_anti_affinity(b: PatchBuilder, ctx: FixContext) -> str:
    """Preferred (weight 100) anti-affinity on the zone, selecting the workload's pod labels."""
    template = (b.obj.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not labels:
        raise Refuse("the pod template has no labels to select its own pods by")
    anti = ((template.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}
    for rule in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        if rule.get("topologyKey") == ZONE_KEY:
            raise Refuse("the pods already must not share a zone")
    for rule in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if (rule.get("podAffinityTerm") or {}).get("topologyKey") == ZONE_KEY:
            raise Refuse("the pods already prefer different zones")
    term = {
        "weight": 100,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": dict(labels)},
            "topologyKey": ZONE_KEY,
        },
    }
    b.pin(pointer.join("spec", "template", "metadata", "labels"), labels)
    preferred = "preferredDuringSchedulingIgnoredDuringExecution"
    anti_path = pointer.join(*TEMPLATE_SPEC, "affinity", "podAntiAffinity")
    if isinstance(anti.get(preferred), list):
        b.add(f"{anti_path}/{preferred}/-", term)
    else:
        b.ensure_object(anti_path, preferred, [term])
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    b.line(f"affinity.podAntiAffinity.preferred: + weight 100, {ZONE_KEY}, pods {selector}")
    return "Prefer to spread the workload's pods over zones, so one zone's outage spares some."


def use_model_cache_pvc(b: PatchBuilder, ctx: FixContext) -> str:
    """Mount the configured model-cache PVC (which must be Bound) at HF_HOME or HF's default."""
    meta = b.obj.get("metadata") or {}
    namespace, claim = str(meta.get("namespace") or "default"), ctx.settings.model_cache_pvc
    if ctx.pvc is None:
        raise Refuse("PVCs cannot be checked here")
    pvc = ctx.pvc(namespace, claim)
    if pvc is None:
        raise Refuse(f"PVC {namespace}/{claim} does not exist")
    phase = (pvc.get("status") or {}).get("phase")
    if phase != "Bound":
        raise Refuse(f"PVC {namespace}/{claim} is {phase or 'not Bound'}, not Bound")
    spec = (b.obj.get("spec") or {}).get("template", {}).get("spec") or {}
    volumes = list(spec.get("volumes") or [])
    claimed = [
        v for v in volumes if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim
    ]
    volume = str(claimed[0]["name"]) if claimed else _free_name(volumes)
    added: list[str] = []

    def change(c: Container) -> None:
        path = vllm.env_value(c, "HF_HOME") or HF_CACHE_DEFAULT
        for mount in c.spec.get("volumeMounts") or []:
            at = str(mount.get("mountPath", "")).rstrip("/")
            if mount.get("name") == volume and (path == at or path.startswith(at + "/")):
                raise Refuse(f"{c.label('volumeMounts')} already mount {claim} at {at}")
            if at == path.rstrip("/"):
                raise Refuse(f"{c.label('volumeMounts')} already mount {mount.get('name')} at {at}")
        c.pin(b)
        found = vllm.env_entry(c, "HF_HOME")
        if found is not None:
            b.pin(c.path("env", found[0]), found[1])
        if not claimed and not added:
            source = {"name": volume, "persistentVolumeClaim": {"claimName": claim}}
            if isinstance(spec.get("volumes"), list):
                b.add(pointer.join(*TEMPLATE_SPEC, "volumes", "-"), source)
            else:
                b.ensure_object(pointer.join(*TEMPLATE_SPEC), "volumes", [source])
            b.line(f"volumes: + {volume} (persistentVolumeClaim {claim})")
        mount = {"name": volume, "mountPath": path}
        if isinstance(c.spec.get("volumeMounts"), list):
            b.add(c.path("volumeMounts", "-"), mount)
        else:
            b.add(c.path("volumeMounts"), [mount])
        b.line(f"{c.label('volumeMounts')}: + {volume} at {path}")
        added.append(path)

    b.each(vllm.vllm_containers(b.obj), change)
    return f"Mount PVC {claim} at {added[0]} so the model is downloaded once, not on every start."


def _free_name(volumes: list[Any]) -> str:
    taken = {v.get("name") for v in volumes}
    for name in ("model-cache", "model-cache-pvc"):
        if name not in taken:
            return name
    return next(
        f"model-cache-{i}" for i in range(2, len(taken) + 3) if f"model-cache-{i}" not in taken
    )


def increase_memory_limit(b: PatchBuilder, ctx: FixContext) -> str:
    """Request max(2x, 32Gi) and limit max(2x, 64Gi), each at most 90 % of the node's memory."""
    node = ctx.node
    if node is None or not node.memory_bytes:
        raise Refuse("the node's memory is unknown")
    cap = quantity.floor_mib(int(node.memory_bytes * NODE_MEMORY_SHARE))
    changes: list[str] = []

    def change(c: Container) -> None:
        resources = c.spec.get("resources") or {}
        limit = (resources.get("limits") or {}).get("memory")
        request = (resources.get("requests") or {}).get("memory")
        if limit is None:
            raise Refuse(f"{c.label('resources')} has no memory limit to raise")
        old_limit = quantity.parse_int(limit)
        # Kubernetes defaults a missing request to the limit.
        old_request = quantity.parse_int(request) if request is not None else old_limit
        new_request = min(max(2 * old_request, MEMORY_REQUEST_FLOOR), cap)
        new_limit = min(max(2 * old_limit, MEMORY_LIMIT_FLOOR), cap)
        if new_limit <= old_limit and new_request <= old_request:
            raise Refuse(
                f"{c.label('resources')}: memory is already at 90 % of the node's "
                f"({quantity.format_bytes(cap)})"
            )
        c.pin(b)
        for kind, old, new in (("requests", request, new_request), ("limits", limit, new_limit)):
            if old is not None and quantity.parse_int(old) >= new:
                continue
            b.ensure_object(c.path("resources", kind), "memory", quantity.format_bytes(new))
            shown = quantity.format_bytes(new)
            b.line(f"{c.label('resources')}.{kind}.memory: {old or '(unset)'} → {shown}")
        changes.append(f"{limit} to {quantity.format_bytes(new_limit)}")

    b.each(_serving(b.obj), change)
    return f"Raise the memory limit from {changes[0]} so loading the model is not OOMKilled."


def extend_startup_probe(b: PatchBuilder, ctx: FixContext) -> str:
    """failureThreshold x periodSeconds ≥ 1800 s, keeping the handler; else GET /health."""
    with_probe = [c for c in vllm.containers(b.obj) if c.spec.get("startupProbe")]
    try:
        targets = vllm.vllm_containers(b.obj)
    except Refuse:
        if not with_probe:
            raise
        targets = with_probe

    def change(c: Container) -> None:
        probe = c.spec.get("startupProbe")
        c.pin(b)
        if probe:
            period = int(probe.get("periodSeconds") or PROBE_PERIOD_DEFAULT)
            failures = int(probe.get("failureThreshold") or PROBE_FAILURES_DEFAULT)
            if failures * period >= STARTUP_BUDGET_SECONDS:
                raise Refuse(f"{c.label('startupProbe')} already allows {failures * period} s")
            if "periodSeconds" in probe:
                b.pin(c.path("startupProbe", "periodSeconds"), probe["periodSeconds"])
            new = math.ceil(STARTUP_BUDGET_SECONDS / period)
            b.set(c.path("startupProbe", "failureThreshold"), new)
            b.line(
                f"{c.label('startupProbe')}.failureThreshold: {failures} → {new} "
                f"(x {period} s = {new * period} s)"
            )
            return
        port = _first_port(b, c)
        new_probe = {
            "httpGet": {"path": "/health", "port": port},
            "periodSeconds": PROBE_PERIOD_DEFAULT,
            "failureThreshold": STARTUP_BUDGET_SECONDS // PROBE_PERIOD_DEFAULT,
        }
        b.add(c.path("startupProbe"), new_probe)
        b.line(f"{c.label('startupProbe')}: + GET /health on port {port}, 180 x 10 s = 1800 s")

    b.each(targets, change)
    return "Give the model 30 minutes to load before the startup probe restarts it."


def _first_port(b: PatchBuilder, c: Container) -> int | str:
    """The container's first port (pinned); without ports, vLLM's --port or its default 8000."""
    ports = c.spec.get("ports") or []
    if ports and "containerPort" in ports[0]:
        b.pin(c.path("ports", 0, "containerPort"), ports[0]["containerPort"])
        return int(ports[0]["containerPort"])
    hit = argv.find_flag(c.spec, ["--port"])
    return int(hit.value) if hit is not None and hit.value.isdigit() else VLLM_PORT_DEFAULT
