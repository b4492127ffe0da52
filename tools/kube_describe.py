"""``kubectl describe``-like summaries of a pod, Deployment or node, from the API's JSON.

Pure functions (the I/O is in ``tools.kube``). They keep what a diagnosis needs — images, args,
env, resources, probes, state, conditions, owner — and render env from Secrets and ConfigMaps as
references, never values; a literal value under a secret-looking name is masked here too.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from tools import kube_render as render
from tools import redact

Obj = dict[str, Any]
_NODE_PODS_SHOWN = 30
_PROBE_DEFAULTS = (
    ("initialDelaySeconds", "delay", 0),
    ("timeoutSeconds", "timeout", 1),
    ("periodSeconds", "period", 10),
    ("successThreshold", "#success", 1),
    ("failureThreshold", "#failure", 3),
)


def _env_value(var: Obj) -> Obj:
    name = str(var.get("name"))
    source = var.get("valueFrom") or {}
    ref = "secretKeyRef" if "secretKeyRef" in source else "configMapKeyRef"
    if ref in source:
        kind = "secret" if ref == "secretKeyRef" else "configmap"
        s = source[ref]
        return {"name": name, "from": f"{kind} {s.get('name')} key {s.get('key')}"}
    if "fieldRef" in source:
        return {"name": name, "from": f"field {render.get(source, 'fieldRef', 'fieldPath')}"}
    if "resourceFieldRef" in source:
        resource = render.get(source, "resourceFieldRef", "resource")
        return {"name": name, "from": f"resource {resource}"}
    value = str(var.get("value", ""))
    if redact.is_sensitive_key(name) and value:
        value = "[REDACTED:secret]"
    return {"name": name, "value": value}


def _masked_args(args: Any) -> list[str] | None:
    """Args with the value of a secret-looking flag masked (``--api-key X``, ``--hf-token=X``):
    as list items, they escape the text redaction that catches ``--api-key X`` in a line."""
    if not isinstance(args, list):
        return None
    out: list[str] = []
    for arg in (str(a) for a in args):
        flag, sep, _ = arg.partition("=")
        secret_flag = flag.startswith("-") and redact.is_sensitive_key(flag.lstrip("-"))
        prior = out[-1] if out else ""
        follows = prior.startswith("-") and "=" not in prior and not arg.startswith("-")
        if sep and secret_flag:
            out.append(f"{flag}=[REDACTED:secret]")
        elif follows and redact.is_sensitive_key(prior.lstrip("-")):
            out.append("[REDACTED:secret]")
        else:
            out.append(arg)
    return out


def _env_text(var: Obj) -> str:
    if "from" in var:
        return f"{var['name']} (from {var['from']})"
    return f"{var['name']}={var['value']}"


def probe_text(probe: Obj | None, *, startup: bool = False) -> str | None:
    """A probe as kubectl prints it, e.g. ``http-get :8000/health delay=0s … #failure=3``."""
    if not probe:
        return None
    if "httpGet" in probe:
        h = probe["httpGet"]
        scheme = str(h.get("scheme", "HTTP")).lower()
        handler = f"http-get {scheme}://{h.get('host', '')}:{h.get('port')}{h.get('path', '/')}"
    elif "tcpSocket" in probe:
        handler = f"tcp-socket :{render.get(probe, 'tcpSocket', 'port')}"
    elif "exec" in probe:
        handler = f"exec {render.get(probe, 'exec', 'command')}"
    elif "grpc" in probe:
        handler = f"grpc :{render.get(probe, 'grpc', 'port')}"
    else:
        handler = "unknown handler"
    values = {key: probe.get(key, default) for key, _, default in _PROBE_DEFAULTS}
    parts = [handler]
    for key, label, _ in _PROBE_DEFAULTS:
        unit = "s" if not label.startswith("#") else ""
        parts.append(f"{label}={values[key]}{unit}")
    if startup:
        allowed = render.count(values["failureThreshold"]) * render.count(values["periodSeconds"])
        parts.append(f"(allows about {allowed}s to start)")
    return " ".join(parts)


def _state_text(state: Obj | None, now: datetime) -> str | None:
    if not state:
        return None
    if "running" in state:
        return f"Running (started {render.age(state['running'].get('startedAt'), now)} ago)"
    if "waiting" in state:
        w = state["waiting"]
        message = f": {w['message']}" if w.get("message") else ""
        return f"Waiting ({w.get('reason')}{message})"
    if "terminated" in state:
        t = state["terminated"]
        ago = render.age(t.get("finishedAt"), now)
        return f"Terminated ({t.get('reason')}, exit code {t.get('exitCode')}, finished {ago} ago)"
    return None


def container(c: Obj, status: Obj | None, now: datetime) -> Obj:
    """One container's spec essentials, and its status when it has one."""
    resources = c.get("resources") or {}
    out: Obj = {
        "name": c.get("name"),
        "image": c.get("image"),
        "command": _masked_args(c.get("command")),
        "args": _masked_args(c.get("args")),
        "env": [_env_value(v) for v in c.get("env") or []],
        "env_from": [
            f"{'secret' if 'secretRef' in e else 'configmap'} "
            f"{render.get(e, 'secretRef', 'name') or render.get(e, 'configMapRef', 'name')}"
            for e in c.get("envFrom") or []
        ],
        "requests": resources.get("requests") or {},
        "limits": resources.get("limits") or {},
        "probes": {
            kind: probe_text(c.get(f"{kind}Probe"), startup=kind == "startup")
            for kind in ("startup", "liveness", "readiness")
            if c.get(f"{kind}Probe")
        },
        "mounts": [
            f"{m.get('mountPath')} from {m.get('name')}" for m in c.get("volumeMounts") or []
        ],
    }
    if status is not None:
        out["state"] = _state_text(status.get("state"), now)
        out["last_state"] = _state_text(status.get("lastState"), now)
        out["ready"] = bool(status.get("ready"))
        out["restarts"] = render.count(status.get("restartCount"))
    return out


def _resources_text(values: Obj) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"


def container_lines(c: Obj) -> list[str]:
    lines = [f"  {c['name']}:", f"    Image:      {c['image']}"]
    if c.get("command"):
        lines.append(f"    Command:    {shlex.join(str(a) for a in c['command'])}")
    if c.get("args"):
        lines.append(f"    Args:       {shlex.join(str(a) for a in c['args'])}")
    for key, label in (("state", "State"), ("last_state", "Last State")):
        if c.get(key):
            lines.append(f"    {label + ':':<12}{c[key]}")
    if "ready" in c:
        lines.append(f"    Ready:      {c['ready']}    Restarts: {c['restarts']}")
    lines.append(f"    Requests:   {_resources_text(c['requests'])}")
    lines.append(f"    Limits:     {_resources_text(c['limits'])}")
    for kind, text in c["probes"].items():
        lines.append(f"    {kind.capitalize() + ':':<12}{text}")
    if c["env"] or c["env_from"]:
        env = [_env_text(v) for v in c["env"]] + [f"<all of {e}>" for e in c["env_from"]]
        lines.append(f"    Env:        {', '.join(env)}")
    if c["mounts"]:
        lines.append(f"    Mounts:     {', '.join(c['mounts'])}")
    return lines


def volume_text(v: Obj) -> str:
    name = v.get("name")
    if "persistentVolumeClaim" in v:
        return f"{name}: PVC {render.get(v, 'persistentVolumeClaim', 'claimName')}"
    if "emptyDir" in v:
        e = v["emptyDir"] or {}
        size = f", sizeLimit {e['sizeLimit']}" if e.get("sizeLimit") else ""
        return f"{name}: emptyDir (medium {e.get('medium') or 'disk'}{size})"
    for kind, key in (("secret", "secretName"), ("configMap", "name"), ("hostPath", "path")):
        if kind in v:
            return f"{name}: {kind} {render.get(v, kind, key)}"
    kinds = [k for k in v if k != "name"]
    return f"{name}: {kinds[0] if kinds else 'unknown'}"


def conditions(obj: Obj) -> list[Obj]:
    return [
        {k: c.get(k) for k in ("type", "status", "reason", "message")}
        for c in render.get(obj, "status", "conditions") or []
    ]


def condition_lines(items: list[Obj]) -> list[str]:
    out = []
    for c in items:
        why = f" {c['reason']}" if c.get("reason") else ""
        said = f": {c['message']}" if c.get("message") else ""
        out.append(f"  {c['type']}={c['status']}{why}{said}")
    return out


def pod(obj: Obj, now: datetime) -> tuple[Obj, list[str]]:
    """A pod's summary (data) and its describe-like lines."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    by_name = {cs.get("name"): cs for cs in status.get("containerStatuses") or []}
    by_name |= {cs.get("name"): cs for cs in status.get("initContainerStatuses") or []}
    summary = render.pod_summary(obj, now)
    data: Obj = {
        "kind": "Pod",
        **summary,
        "labels": render.get(obj, "metadata", "labels") or {},
        "conditions": conditions(obj),
        "init_containers": [
            container(c, by_name.get(c.get("name"), {}), now)
            for c in spec.get("initContainers") or []
        ],
        "containers": [
            container(c, by_name.get(c.get("name"), {}), now) for c in spec.get("containers") or []
        ],
        "volumes": [volume_text(v) for v in spec.get("volumes") or []],
        "node_selector": spec.get("nodeSelector") or {},
    }
    lines = [
        f"Name:        {data['name']}",
        f"Namespace:   {data['namespace']}",
        f"Node:        {data['node'] or '<none>'}",
        f"Status:      {data['status']} (phase {data['phase']}), ready {data['ready']}, "
        f"restarts {data['restarts']}, age {data['age']}",
        f"Controlled By: {data['owner'] or '<none>'}",
        "Labels:      " + (", ".join(f"{k}={v}" for k, v in data["labels"].items()) or "<none>"),
    ]
    if data["unschedulable"]:
        lines.append(f"Unschedulable: {data['unschedulable']}")
    lines += ["Conditions:", *condition_lines(data["conditions"])]
    if data["init_containers"]:
        lines.append("Init Containers:")
        for c in data["init_containers"]:
            lines += container_lines(c)
    lines.append("Containers:")
    for c in data["containers"]:
        lines += container_lines(c)
    if data["volumes"]:
        lines.append("Volumes:     " + "; ".join(data["volumes"]))
    if data["node_selector"]:
        lines.append(
            "Node-Selectors: " + ", ".join(f"{k}={v}" for k, v in data["node_selector"].items())
        )
    return data, lines


def deployment(obj: Obj, now: datetime) -> tuple[Obj, list[str]]:
    """A Deployment's replicas, strategy, pod template and conditions."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    template = render.get(spec, "template", "spec") or {}
    replicas = {
        "desired": render.count(spec.get("replicas", 1)),
        "updated": render.count(status.get("updatedReplicas", 0)),
        "ready": render.count(status.get("readyReplicas", 0)),
        "available": render.count(status.get("availableReplicas", 0)),
        "unavailable": render.count(status.get("unavailableReplicas", 0)),
    }
    data: Obj = {
        "kind": "Deployment",
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "labels": meta.get("labels") or {},
        "selector": render.get(spec, "selector", "matchLabels") or {},
        "replicas": replicas,
        "strategy": render.get(spec, "strategy", "type"),
        "generation": meta.get("generation"),
        "observed_generation": status.get("observedGeneration"),
        "conditions": conditions(obj),
        "containers": [container(c, None, now) for c in template.get("containers") or []],
        "volumes": [volume_text(v) for v in template.get("volumes") or []],
        "age": render.age(meta.get("creationTimestamp"), now),
    }
    r = replicas
    lines = [
        f"Name:        {data['name']}",
        f"Namespace:   {data['namespace']}",
        f"Replicas:    {r['desired']} desired | {r['updated']} updated | {r['ready']} ready | "
        f"{r['available']} available | {r['unavailable']} unavailable",
        f"Strategy:    {data['strategy']}    Age: {data['age']}    "
        f"Generation: {data['generation']} (observed {data['observed_generation']})",
        "Selector:    " + (", ".join(f"{k}={v}" for k, v in data["selector"].items()) or "<none>"),
        "Conditions:",
        *condition_lines(data["conditions"]),
        "Pod Template Containers:",
    ]
    for c in data["containers"]:
        lines += container_lines(c)
    if data["volumes"]:
        lines.append("Volumes:     " + "; ".join(data["volumes"]))
    return data, lines


def node(obj: Obj, pods: list[Obj], now: datetime) -> tuple[Obj, list[str]]:
    """A node's placement, GPUs, conditions, capacity and the non-terminal pods on it."""
    status = obj.get("status") or {}
    summary = render.node_summary(obj, now)
    shown = ("cpu", "memory", render.GPU, "vpc.amazonaws.com/efa", "pods")
    on_node = [render.pod_summary(p, now) for p in pods]
    data: Obj = {
        "kind": "Node",
        **summary,
        "all_conditions": conditions(obj),
        "capacity": {k: v for k, v in (status.get("capacity") or {}).items() if k in shown},
        "allocatable": {k: v for k, v in (status.get("allocatable") or {}).items() if k in shown},
        "gpus_requested": sum(p["gpus"] for p in on_node),
        "pods": [
            {k: p[k] for k in ("namespace", "name", "status", "ready", "restarts", "gpus")}
            for p in on_node
        ],
        "kubelet": render.get(status, "nodeInfo", "kubeletVersion"),
        "provider_id": render.get(obj, "spec", "providerID"),
    }
    lines = [
        f"Name:        {data['name']}",
        f"Status:      {render.node_status(summary)}    Age: {data['age']}",
        f"Placement:   {data['instance_type']} in {data['zone']}, {data['capacity_type']}, "
        f"NodePool {data['nodepool'] or '<none>'}",
        f"GPUs:        {data['gpu_allocatable']} allocatable of {data['gpu_capacity']}, "
        f"{data['gpus_requested']} requested by pods ({data['gpu_product'] or 'model unknown'})",
        "Taints:      " + (", ".join(data["taints"]) or "<none>"),
        "Conditions:",
        *condition_lines(data["all_conditions"]),
        f"Capacity:    {_resources_text(data['capacity'])}",
        f"Allocatable: {_resources_text(data['allocatable'])}",
        f"Non-terminated pods ({len(on_node)}):",
    ]
    lines += [
        f"  {p['namespace']}/{p['name']}  {p['status']}  ready {p['ready']}  "
        f"restarts {p['restarts']}  gpus {p['gpus']}"
        for p in on_node[:_NODE_PODS_SHOWN]
    ]
    if len(on_node) > _NODE_PODS_SHOWN:  # leave room for the events, which come last
        lines.append(f"  … and {len(on_node) - _NODE_PODS_SHOWN} more (see data)")
    return data, lines
