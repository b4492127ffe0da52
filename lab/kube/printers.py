"""Table columns and cells of built-in kinds, after kubernetes' pkg/printers/internalversion.

Pure functions of an object dict and "now", so the Table the server returns matches what a
real API server would print for the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from lab.kube.ages import human_duration, since
from lab.kube.selectors import format_label_selector
from tools.kube_render import parse_time

Obj = dict[str, Any]
Column = tuple[str, str, int]
RowFn = Callable[[Obj, datetime], list[Any]]


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _age(obj: Obj, now: datetime) -> str:
    return since(_meta(obj).get("creationTimestamp"), now)


def _containers(template: Obj) -> tuple[str, str]:
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    names = ",".join(c.get("name", "") for c in containers)
    images = ",".join(c.get("image", "") for c in containers)
    return names, images


_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def _access_modes(modes: list[str] | None) -> str:
    modes = modes or []
    return ",".join(short for long, short in _ACCESS_MODES if long in modes)


def _storage_class(obj: Obj) -> str:
    annotation = (_meta(obj).get("annotations") or {}).get(
        "volume.beta.kubernetes.io/storage-class"
    )
    return annotation or (obj.get("spec") or {}).get("storageClassName") or ""


# -- pods ----------------------------------------------------------------------------------
def _pod_init(pod: Obj, reason: str) -> tuple[str, bool]:
    inits = (pod.get("spec") or {}).get("initContainers") or []
    for i, status in enumerate((pod.get("status") or {}).get("initContainerStatuses") or []):
        state = status.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode", 0) == 0:
            continue
        if terminated:
            why = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"
            )
            return f"Init:{why}", True
        if waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return f"Init:{waiting['reason']}", True
        return f"Init:{i}/{len(inits)}", True
    return reason, False


def pod_cells(pod: Obj, now: datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    reason, initializing = _pod_init(pod, reason)
    restarts, ready, last_restart = 0, 0, None
    for cs in (status.get("initContainerStatuses") or []) if initializing else []:
        restarts += int(cs.get("restartCount") or 0)
    if not initializing:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            finished = parse_time(
                ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            )
            if finished and (last_restart is None or finished > last_restart):
                last_restart = finished
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated")
            if waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                signal = terminated.get("signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode')}"
            elif cs.get("ready") and "running" in state:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            conditions = status.get("conditions") or []
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
            )
            reason = "Running" if pod_ready else "NotReady"
    if _meta(pod).get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips else None) or status.get("podIP") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        true_types = {
            c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"
        }
        gates_text = f"{sum(g.get('conditionType') in true_types for g in gates)}/{len(gates)}"
    return [
        _meta(pod).get("name", ""),
        f"{ready}/{len(spec.get('containers') or [])}",
        reason,
        restarts_text,
        _age(pod, now),
        ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]


# -- nodes ---------------------------------------------------------------------------------
def node_status(node: Obj) -> str:
    """``Ready``, ``NotReady``, ``Unknown``, with ``,SchedulingDisabled`` when cordoned."""
    words = ["Unknown"]
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            words = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if (node.get("spec") or {}).get("unschedulable"):
        words.append("SchedulingDisabled")
    return ",".join(words)


def _roles(node: Obj) -> str:
    roles = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def node_cells(node: Obj, now: datetime) -> list[Any]:
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    addresses = status.get("addresses") or []

    def address(kind: str) -> str:
        return next((a["address"] for a in addresses if a.get("type") == kind), "<none>")

    return [
        _meta(node).get("name", ""),
        node_status(node),
        _roles(node),
        _age(node, now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


# -- workloads -----------------------------------------------------------------------------
def deployment_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(spec.get("template") or {})
    desired = spec.get("replicas", 1)
    return [
        _meta(obj).get("name", ""),
        f"{status.get('readyReplicas', 0)}/{desired}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def replicaset_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(spec.get("template") or {})
    return [
        _meta(obj).get("name", ""),
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


# -- the rest ------------------------------------------------------------------------------
def event_cells(event: Obj, now: datetime) -> list[Any]:
    first = since(event.get("firstTimestamp"), now)
    if not event.get("firstTimestamp"):
        first = since(event.get("eventTime"), now)
    last = since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = event.get("count") or 1
    if event.get("series"):
        last = since(event["series"].get("lastObservedTime"), now)
        count = event["series"].get("count", count)
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = event.get("source") or {}
    source_text = ", ".join(v for v in (source.get("component"), source.get("host")) if v)
    return [
        last,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        source_text or event.get("reportingComponent", ""),
        str(event.get("message", "")).strip(),
        first,
        str(count),
        _meta(event).get("name", ""),
    ]


def pvc_cells(pvc: Obj, now: datetime) -> list[Any]:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    phase = "Terminating" if _meta(pvc).get("deletionTimestamp") else status.get("phase", "")
    capacity = modes = ""
    if spec.get("volumeName"):
        capacity = str((status.get("capacity") or {}).get("storage", ""))
        modes = _access_modes(status.get("accessModes"))
    return [
        _meta(pvc).get("name", ""),
        phase,
        spec.get("volumeName", ""),
        capacity,
        modes,
        _storage_class(pvc),
        spec.get("volumeAttributesClassName") or "<unset>",
        _age(pvc, now),
        spec.get("volumeMode") or "<unset>",
    ]


def pv_cells(pv: Obj, now: datetime) -> list[Any]:
    spec, status = pv.get("spec") or {}, pv.get("status") or {}
    claim = spec.get("claimRef") or {}
    claim_text = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else ""
    phase = "Terminating" if _meta(pv).get("deletionTimestamp") else status.get("phase", "")
    return [
        _meta(pv).get("name", ""),
        str((spec.get("capacity") or {}).get("storage", "")),
        _access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        phase,
        claim_text,
        _storage_class(pv),
        spec.get("volumeAttributesClassName") or "<unset>",
        status.get("reason", ""),
        _age(pv, now),
        spec.get("volumeMode") or "<unset>",
    ]


def service_cells(svc: Obj, now: datetime) -> list[Any]:
    spec = svc.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    ports = []
    for p in spec.get("ports") or []:
        protocol = p.get("protocol", "TCP")
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        ports.append(f"{p.get('port')}{node_port}/{protocol}")
    external = ",".join(spec.get("externalIPs") or []) or "<none>"
    if kind == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)
        external = lb or "<pending>"
    elif kind == "ExternalName":
        external = spec.get("externalName", "")
    selector = spec.get("selector") or {}
    return [
        _meta(svc).get("name", ""),
        kind,
        spec.get("clusterIP") or "<none>",
        external,
        ",".join(ports) or "<none>",
        _age(svc, now),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]


def _name_cells(*extra: Callable[[Obj], Any]) -> RowFn:
    def row(obj: Obj, now: datetime) -> list[Any]:
        return [_meta(obj).get("name", ""), *(f(obj) for f in extra), _age(obj, now)]

    return row


_NAME = ("Name", "string", 0)
_AGE = ("Age", "string", 0)
PRINTERS: dict[str, tuple[list[Column], RowFn]] = {
    "Pod": (
        [_NAME, ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0),
         _AGE, ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
         ("Readiness Gates", "string", 1)],
        pod_cells,
    ),
    "Node": (
        [_NAME, ("Status", "string", 0), ("Roles", "string", 0), _AGE, ("Version", "string", 0),
         ("Internal-IP", "string", 1), ("External-IP", "string", 1), ("OS-Image", "string", 1),
         ("Kernel-Version", "string", 1), ("Container-Runtime", "string", 1)],
        node_cells,
    ),
    "Deployment": (
        [_NAME, ("Ready", "string", 0), ("Up-to-date", "string", 0),
         ("Available", "string", 0), _AGE, ("Containers", "string", 1),
         ("Images", "string", 1), ("Selector", "string", 1)],
        deployment_cells,
    ),
    "ReplicaSet": (
        [_NAME, ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
         _AGE, ("Containers", "string", 1), ("Images", "string", 1),
         ("Selector", "string", 1)],
        replicaset_cells,
    ),
    "Event": (
        [("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
         ("Object", "string", 0), ("Subobject", "string", 1), ("Source", "string", 1),
         ("Message", "string", 0), ("First Seen", "string", 1), ("Count", "string", 1),
         ("Name", "string", 1)],
        event_cells,
    ),
    "PersistentVolumeClaim": (
        [_NAME, ("Status", "string", 0), ("Volume", "string", 0), ("Capacity", "string", 0),
         ("Access Modes", "string", 0), ("StorageClass", "string", 0),
         ("VolumeAttributesClass", "string", 0), _AGE, ("VolumeMode", "string", 1)],
        pvc_cells,
    ),
    "PersistentVolume": (
        [_NAME, ("Capacity", "string", 0), ("Access Modes", "string", 0),
         ("Reclaim Policy", "string", 0), ("Status", "string", 0), ("Claim", "string", 0),
         ("StorageClass", "string", 0), ("VolumeAttributesClass", "string", 0),
         ("Reason", "string", 0), _AGE, ("VolumeMode", "string", 1)],
        pv_cells,
    ),
    "Service": (
        [_NAME, ("Type", "string", 0), ("Cluster-IP", "string", 0),
         ("External-IP", "string", 0), ("Port(s)", "string", 0), _AGE,
         ("Selector", "string", 1)],
        service_cells,
    ),
    "Namespace": (
        [_NAME, ("Status", "string", 0), _AGE],
        _name_cells(lambda o: (o.get("status") or {}).get("phase") or "Active"),
    ),
    "ConfigMap": (
        [_NAME, ("Data", "string", 0), _AGE],
        _name_cells(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
    ),
    "Lease": (
        [_NAME, ("Holder", "string", 0), _AGE],
        _name_cells(lambda o: (o.get("spec") or {}).get("holderIdentity") or ""),
    ),
}  # fmt: skip
