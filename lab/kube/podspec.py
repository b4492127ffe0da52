"""Scenario containers and pod specs in the shape the API server stores them.

The scenario passes Kubernetes fields through as given; the API server would default and
normalise them (env as a list, quantities as strings, probe timings, pull policy), and the
official client's strict models insist on those types, so this module does the same.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

Obj = dict[str, Any]

_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1}
_DEFAULT_TOLERATIONS = [
    {
        "key": f"node.kubernetes.io/{key}",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }
    for key in ("not-ready", "unreachable")
]


def quantity(value: Any) -> str:
    """A resource quantity as the API returns it: ``1`` -> "1", ``0.5`` -> "500m"."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{round(value * 1000)}m"
    return str(value)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _env(env: Any) -> list[Obj]:
    """Env in map form ``{K: V}`` or list form, as the API's list of {name, value}."""
    if isinstance(env, dict):
        items: list[Obj] = []
        for key, value in env.items():
            if isinstance(value, dict):
                items.append({"name": key, **copy.deepcopy(value)})
            else:
                items.append({"name": key, "value": _text(value)})
        return items
    out = []
    for given in env or []:
        item = copy.deepcopy(given)
        if "value" in item:
            item["value"] = _text(item["value"])
        out.append(item)
    return out


def _pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in image:
        return "IfNotPresent"
    return "IfNotPresent" if ":" in last and not last.endswith(":latest") else "Always"


def _probe(probe: Obj) -> Obj:
    probe = {**_PROBE_DEFAULTS, **probe}
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"] = {"scheme": "HTTP", **probe["httpGet"]}
    return probe


def container(spec: Obj) -> Obj:
    """One container as stored, with the API server's defaults filled in."""
    out = copy.deepcopy(spec)
    if "env" in out:
        out["env"] = _env(out["env"])
    resources = out.get("resources") or {}
    out["resources"] = {
        key: {name: quantity(v) for name, v in values.items()}
        if key in ("limits", "requests") and isinstance(values, dict)
        else values
        for key, values in resources.items()
    }
    out["ports"] = [{"protocol": "TCP", **port} for port in out.get("ports", [])]
    if not out["ports"]:
        del out["ports"]
    for key in _PROBES:
        if isinstance(out.get(key), dict):
            out[key] = _probe(out[key])
    out.setdefault("imagePullPolicy", _pull_policy(str(out.get("image", ""))))
    out.setdefault("terminationMessagePath", "/dev/termination-log")
    out.setdefault("terminationMessagePolicy", "File")
    return out


def template(
    labels: dict[str, str],
    containers: Sequence[Obj],
    *,
    init_containers: Sequence[Obj] = (),
    volumes: Sequence[Obj] = (),
    affinity: Obj | None = None,
) -> Obj:
    """A pod template (``metadata`` + ``spec``) as a Deployment stores it."""
    spec: Obj = {"containers": [container(c) for c in containers]}
    if init_containers:
        spec["initContainers"] = [container(c) for c in init_containers]
    if volumes:
        spec["volumes"] = copy.deepcopy(list(volumes))
    if affinity:
        spec["affinity"] = copy.deepcopy(affinity)
    spec.update(
        restartPolicy="Always",
        terminationGracePeriodSeconds=30,
        dnsPolicy="ClusterFirst",
        securityContext={},
        schedulerName="default-scheduler",
    )
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def pod_spec(template_spec: Obj, node: str | None) -> Obj:
    """A pod's spec from its template, as admission and defaulting leave it."""
    spec = copy.deepcopy(template_spec)
    for c in spec["containers"] + spec.get("initContainers", []):
        resources = c.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:
            resources["requests"] = {**limits, **(resources.get("requests") or {})}
    spec.setdefault("serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    keys = {t.get("key") for t in tolerations}
    tolerations.extend(t for t in copy.deepcopy(_DEFAULT_TOLERATIONS) if t["key"] not in keys)
    if node:
        spec["nodeName"] = node
    return spec


def qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, by Kubernetes' rules over cpu and memory."""
    containers = spec["containers"] + spec.get("initContainers", [])
    guaranteed = True
    any_set = False
    for c in containers:
        resources = c.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        for name in ("cpu", "memory"):
            if name in limits or name in requests:
                any_set = True
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
