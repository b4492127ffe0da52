"""Kubernetes objects (as the API's JSON) summarised into the facts the bot reasons about.

Pure functions, no I/O: a pod's readiness, restarts, waiting reason and last termination; a
node's readiness, GPUs, placement labels, taints and troubled conditions; an event's who, what
and when. Times are rendered as kubectl does ("9m", "2d3h") against an explicit ``now``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tools import budget

Obj = dict[str, Any]
GPU = "nvidia.com/gpu"
NODEPOOL = "karpenter.sh/nodepool"
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]…``, or None where a level is missing or null."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human(delta: timedelta) -> str:
    """A duration as kubectl prints ages: 45s, 5m30s, 3h, 2d4h, 90d."""
    s = max(int(delta.total_seconds()), 0)
    m, h, d = s // 60, s // 3600, s // 86400
    steps = (
        (120, f"{s}s", 0, ""),
        (600, f"{m}m", s % 60, "s"),
        (3 * 3600, f"{m}m", 0, ""),
        (8 * 3600, f"{h}h", m % 60, "m"),
        (48 * 3600, f"{h}h", 0, ""),
        (8 * 86400, f"{d}d", h % 24, "h"),
    )
    for limit, main, rest, unit in steps:
        if s < limit:
            return f"{main}{rest}{unit}" if rest else main
    return f"{d}d"


def age(value: Any, now: datetime) -> str:
    """How long ago an RFC 3339 time was, or "-" when absent."""
    moment = parse_time(value)
    return human(now - moment) if moment else "-"


def duration(text: str) -> timedelta:
    """A Prometheus-style duration (``30m``, ``2h``, ``1d``); ValueError when it is not one."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 2h, 1d)")
    return timedelta(seconds=int(m[1]) * _UNITS[m[2]])


def count(value: Any) -> int:
    """An integer quantity such as a GPU count ("8"); 0 when absent or not an integer."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def gpu_request(spec: Obj) -> int:
    """GPUs a pod spec asks for: the larger of its containers' sum and any init container's
    (extended resources default their request to their limit)."""

    def one(c: Obj) -> int:
        resources = c.get("resources") or {}
        value = get(resources, "requests", GPU) or get(resources, "limits", GPU)
        return count(value)

    main = sum(one(c) for c in spec.get("containers") or [])
    init = max((one(c) for c in spec.get("initContainers") or []), default=0)
    return max(main, init)


def _termination(cs: Obj, state: str) -> Obj | None:
    terminated = get(cs, state, "terminated")
    if not terminated:
        return None
    return {
        "container": cs.get("name"),
        "reason": terminated.get("reason"),
        "exit_code": terminated.get("exitCode"),
        "finished_at": terminated.get("finishedAt"),
        "message": terminated.get("message"),
    }


def pod_status(pod: Obj) -> str:
    """The STATUS kubectl shows: Terminating, Init:…, a waiting or terminated reason, phase."""
    status = pod.get("status") or {}
    if get(pod, "metadata", "deletionTimestamp"):
        return "Terminating"
    for cs in status.get("initContainerStatuses") or []:
        reason = get(cs, "state", "waiting", "reason")
        terminated = get(cs, "state", "terminated")
        if reason:
            return f"Init:{reason}"
        if terminated and terminated.get("exitCode"):
            return f"Init:{terminated.get('reason') or 'Error'}"
    shown = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        reason = get(cs, "state", "waiting", "reason") or get(cs, "state", "terminated", "reason")
        if reason:
            shown = reason
    return str(shown)


def pod_summary(pod: Obj, now: datetime) -> Obj:
    """What a person asks first about a pod, as one flat dict."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    waiting = next((w for cs in statuses if (w := get(cs, "state", "waiting"))), None)
    terminations = [t for cs in statuses if (t := _termination(cs, "lastState"))]
    terminations.sort(key=lambda t: t["finished_at"] or "", reverse=True)
    last = terminations[0] if terminations else None
    if last:
        last["ago"] = age(last["finished_at"], now)
    scheduled = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None
    )
    unschedulable = None
    if scheduled and scheduled.get("status") == "False":
        unschedulable = scheduled.get("message") or scheduled.get("reason")
    owner = next(iter(meta.get("ownerReferences") or []), None)
    total = len(spec.get("containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "phase": status.get("phase"),
        "status": pod_status(pod),
        "ready": f"{ready}/{total}",
        "all_ready": total > 0 and ready == total,
        "restarts": sum(count(cs.get("restartCount")) for cs in statuses),
        "waiting_reason": waiting.get("reason") if waiting else None,
        "waiting_message": waiting.get("message") if waiting else None,
        "last_termination": last,
        "node": spec.get("nodeName"),
        "unschedulable": unschedulable,
        "gpus": gpu_request(spec),
        "owner": f"{owner.get('kind')}/{owner.get('name')}" if owner else None,
        "created": meta.get("creationTimestamp"),
        "age": age(meta.get("creationTimestamp"), now),
    }


def healthy_pod(p: Obj) -> bool:
    return p["phase"] in ("Running", "Succeeded") and (p["all_ready"] or p["phase"] != "Running")


def taint_text(t: Obj) -> str:
    value = f"={t['value']}" if t.get("value") else ""
    return f"{t.get('key')}{value}:{t.get('effect')}"


def node_summary(node: Obj, now: datetime) -> Obj:
    """A node's readiness, placement (instance type, zone, capacity type, NodePool) and GPUs."""
    meta, spec, status = (
        node.get("metadata") or {},
        node.get("spec") or {},
        node.get("status") or {},
    )
    labels = meta.get("labels") or {}
    conditions = status.get("conditions") or []
    ready: Obj = next((c for c in conditions if c.get("type") == "Ready"), {})
    troubles = [
        {k: c.get(k) for k in ("type", "status", "reason", "message")}
        for c in conditions
        if c.get("type") != "Ready" and c.get("status") == "True"
    ]
    is_ready = ready.get("status") == "True"
    return {
        "name": meta.get("name"),
        "ready": is_ready,
        "ready_status": ready.get("status", "Unknown"),
        "ready_reason": None if is_ready else ready.get("reason"),
        "ready_message": None if is_ready else ready.get("message"),
        "instance_type": labels.get("node.kubernetes.io/instance-type"),
        "zone": labels.get("topology.kubernetes.io/zone"),
        "capacity_type": labels.get("karpenter.sh/capacity-type")
        or labels.get("eks.amazonaws.com/capacityType"),
        "nodepool": labels.get(NODEPOOL),
        "gpu_product": labels.get("nvidia.com/gpu.product"),
        "gpu_capacity": count(get(status, "capacity", GPU)),
        "gpu_allocatable": count(get(status, "allocatable", GPU)),
        "unschedulable": bool(spec.get("unschedulable")),
        "taints": [taint_text(t) for t in spec.get("taints") or []],
        "conditions": troubles,
        "age": age(meta.get("creationTimestamp"), now),
    }


def is_gpu_node(node: Obj) -> bool:
    labels = get(node, "metadata", "labels") or {}
    capacity = count(get(node, "status", "capacity", GPU))
    return labels.get("nvidia.com/gpu.present") == "true" or capacity > 0


def node_status(n: Obj) -> str:
    shown = "Ready" if n["ready"] else "NotReady"  # as kubectl: Unknown shows as NotReady
    return f"{shown},SchedulingDisabled" if n["unschedulable"] else shown


def event_time(event: Obj) -> datetime | None:
    """When an event last happened, whichever of the API's time fields carries it."""
    for value in (
        event.get("lastTimestamp"),
        get(event, "series", "lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        get(event, "metadata", "creationTimestamp"),
    ):
        if moment := parse_time(value):
            return moment
    return None


def event_summary(event: Obj, now: datetime) -> Obj:
    involved = event.get("involvedObject") or {}
    last = event_time(event)
    message = " ".join(str(event.get("message") or "").split())
    return {
        "type": event.get("type"),
        "reason": event.get("reason"),
        "object": f"{involved.get('kind')}/{involved.get('name')}",
        "namespace": involved.get("namespace") or get(event, "metadata", "namespace"),
        "message": message,
        "count": count(event.get("count")) or count(get(event, "series", "count")) or 1,
        "first_seen": event.get("firstTimestamp"),
        "last_seen": last.isoformat().replace("+00:00", "Z") if last else None,
        "ago": human(now - last) if last else "-",
        "source": get(event, "source", "component") or event.get("reportingComponent"),
    }


def newest_first(events: list[Obj], now: datetime) -> list[Obj]:
    """Event summaries, newest first."""
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(events, key=lambda e: event_time(e) or epoch, reverse=True)
    return [event_summary(e, now) for e in ordered]


EVENT_HEADERS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE")


def event_row(e: Obj) -> list[Any]:
    message = e["message"] if len(e["message"]) <= 300 else e["message"][:300] + " …"
    return [e["ago"], e["type"], e["reason"], e["object"], e["count"], message]


def events_text(events: list[Obj], max_chars: int) -> tuple[str, str | None]:
    """An events table, newest first; when it must be cut, Warnings are kept before Normals."""
    text, cut = budget.fit_table(
        EVENT_HEADERS, [event_row(e) for e in events], max_chars, what="events"
    )
    if cut is None:
        return text, None
    ordered = [e for e in events if e["type"] == "Warning"]
    ordered += [e for e in events if e["type"] != "Warning"]
    return budget.fit_table(
        EVENT_HEADERS,
        [event_row(e) for e in ordered],
        max_chars,
        what="events (Warnings kept first, then newest)",
    )
