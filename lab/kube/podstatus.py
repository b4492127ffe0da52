"""A pod's status as the kubelet reports it, from the state the scenario (or a rollout) gives.

Conditions, container states with the kubelet's reasons and messages, restart counts and last
terminations: what kubectl's READY/STATUS/RESTARTS columns and the bot's detectors read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lab.kube import naming, podspec
from lab.scenario import models

Obj = dict[str, Any]

_MAX_BACKOFF = 300


def _cond(kind: str, ok: bool, at: str, reason: str = "", message: str = "") -> Obj:
    out: Obj = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    out["lastTransitionTime"] = at
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def waiting_message(
    reason: str, *, container: Obj, pod_name: str, namespace: str, uid: str, restarts: int
) -> str:
    """What the kubelet writes in state.waiting.message for the common reasons."""
    if reason == "CrashLoopBackOff":
        backoff = min(10 * 2 ** max(restarts - 1, 0), _MAX_BACKOFF)
        return (
            f"back-off {naming.go_duration(backoff)} restarting failed "
            f"container={container['name']} pod={pod_name}_{namespace}({uid})"
        )
    if reason == "ImagePullBackOff":
        return f'Back-off pulling image "{container.get("image", "")}"'
    if reason == "ErrImagePull":
        return f'failed to pull and unpack image "{container.get("image", "")}"'
    return ""


def pod_status(
    obj: Obj, state: models.Pod, *, host_ip: str | None, now: datetime, unschedulable: str = ""
) -> Obj:
    """status of pod ``obj`` in ``state``; ``unschedulable`` is the scheduler's message."""
    meta, spec = obj["metadata"], obj["spec"]
    created = naming.parse_rfc3339(meta["creationTimestamp"])

    def at(moment: datetime) -> str:
        return naming.rfc3339(min(max(moment, created), now))

    status: Obj = {"phase": "Pending", "qosClass": podspec.qos_class(spec)}
    if state.node is None:
        nodes_message = unschedulable or "0/0 nodes are available."
        status["conditions"] = [
            _cond("PodScheduled", False, at(created), "Unschedulable", nodes_message)
        ]
        return status

    phase = state.phase
    inits, containers = spec.get("initContainers", []), spec["containers"]
    initialized = phase != "Pending" or bool(state.waiting_reason) or not inits
    # the pod sandbox, and so its IP, exists unless the pod is still ContainerCreating
    sandbox = phase != "Pending" or bool(state.waiting_reason) or bool(inits)
    term = state.last_terminated
    started = now - term.finished_at + timedelta(seconds=10) if term else created
    started = min(max(started, created + timedelta(seconds=5)), now)
    statuses = [
        _container_status(obj, c, i == 0, state, started=at(started), now=now)
        for i, c in enumerate(containers)
    ]
    all_ready = all(s["ready"] for s in statuses)
    unready = [s["name"] for s in statuses if not s["ready"]]
    not_ready_msg = f"containers with unready status: [{' '.join(unready)}]"
    done = phase in ("Succeeded", "Failed")
    ready_reason = "PodCompleted" if done else ("" if all_ready else "ContainersNotReady")
    init_msg = f"containers with incomplete status: [{' '.join(c['name'] for c in inits)}]"
    status["conditions"] = [
        _cond(
            "PodReadyToStartContainers", sandbox and not done, at(created + timedelta(seconds=3))
        ),
        _cond(
            "Initialized",
            initialized,
            at(created + timedelta(seconds=4)),
            "PodCompleted" if done else ("" if initialized else "ContainersNotInitialized"),
            "" if initialized else init_msg,
        ),
        _cond("Ready", all_ready, at(started), ready_reason, "" if all_ready else not_ready_msg),
        _cond(
            "ContainersReady",
            all_ready,
            at(started),
            ready_reason,
            "" if all_ready else not_ready_msg,
        ),
        _cond("PodScheduled", True, at(created + timedelta(seconds=1))),
    ]
    if inits:
        status["initContainerStatuses"] = [
            _init_status(obj, c, i, initialized, at(created + timedelta(seconds=2)))
            for i, c in enumerate(inits)
        ]
    status["containerStatuses"] = statuses
    if host_ip:
        status["hostIP"], status["hostIPs"] = host_ip, [{"ip": host_ip}]
        if sandbox:
            ip = naming.pod_ip(host_ip, meta["name"])
            status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
    status["phase"] = phase
    status["startTime"] = at(created + timedelta(seconds=1))
    return status


def _container_status(
    obj: Obj, c: Obj, first: bool, state: models.Pod, *, started: str, now: datetime
) -> Obj:
    meta = obj["metadata"]
    restarts = state.restarts if first else 0
    out: Obj = {
        "name": c["name"],
        "image": c.get("image", ""),
        "imageID": naming.image_id(c.get("image", "")),
        "restartCount": restarts,
        "ready": False,
        "started": False,
        "lastState": {},
    }
    cid = naming.container_id(meta["uid"], c["name"], restarts)
    phase = state.phase
    waiting = state.waiting_reason if first else None
    if phase == "Pending" and not waiting:
        inits = obj["spec"].get("initContainers")
        waiting = "ContainerCreating" if not inits or state.waiting_reason else "PodInitializing"
        cid = ""
    if phase in ("Succeeded", "Failed"):
        term = state.last_terminated if first else None
        failed = phase == "Failed"
        out["state"] = {
            "terminated": {
                "exitCode": term.exit_code if term else int(failed),
                "reason": term.reason if term else ("Error" if failed else "Completed"),
                "startedAt": started,
                "finishedAt": naming.rfc3339(now - term.finished_at) if term else started,
                "containerID": cid,
            }
        }
    elif waiting:
        # the kubelet reports the container that last ran (none before a first start)
        cid = naming.container_id(meta["uid"], c["name"], restarts - 1) if restarts else ""
        message = waiting_message(
            waiting,
            container=c,
            pod_name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            restarts=restarts,
        )
        out["state"] = {"waiting": {"reason": waiting, **({"message": message} if message else {})}}
    else:
        out["state"] = {"running": {"startedAt": started}}
        out["started"] = True
        out["ready"] = state.is_ready if first else phase == "Running"
    if cid:
        out["containerID"] = cid
    term = state.last_terminated
    if first and term and phase not in ("Succeeded", "Failed"):
        finished = now - term.finished_at
        out["lastState"] = {
            "terminated": {
                "exitCode": term.exit_code,
                "reason": term.reason,
                "startedAt": naming.rfc3339(finished - timedelta(minutes=2)),
                "finishedAt": naming.rfc3339(finished),
                "containerID": naming.container_id(meta["uid"], c["name"], max(restarts - 1, 0)),
            }
        }
    return out


def _init_status(obj: Obj, c: Obj, index: int, done: bool, at: str) -> Obj:
    cid = naming.container_id(obj["metadata"]["uid"], c["name"], 0)
    if done:
        state: Obj = {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": at,
                "finishedAt": at,
                "containerID": cid,
            }
        }
    elif index == 0:
        state = {"running": {"startedAt": at}}
    else:
        state = {"waiting": {"reason": "PodInitializing"}}
    out: Obj = {
        "name": c["name"],
        "image": c.get("image", ""),
        "imageID": naming.image_id(c.get("image", "")),
        "restartCount": 0,
        "ready": done,
        "started": "running" in state,
        "state": state,
        "lastState": {},
    }
    if "waiting" not in state:
        out["containerID"] = cid
    return out
