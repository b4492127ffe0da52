"""Pod logs as the API server and kubelet answer them: container choice, ``previous``,
``tailLines``, ``timestamps``, ``limitBytes``, and the 400s for a wrong or missing container.
``sinceSeconds`` is accepted and ignored (stored logs carry no per-line times).
"""

from __future__ import annotations

from typing import Any

from lab.kube import errors
from lab.kube.store import LogKey, ObjectStore, now_rfc3339

Obj = dict[str, Any]
_NOT_STARTED = ("ContainerCreating", "PodInitializing")


def log_text(store: ObjectStore, pod: Obj, query: dict[str, str]) -> str:
    """The text ``GET .../pods/NAME/log`` answers, or the ApiError Kubernetes would give."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    containers = [c.get("name") for c in spec.get("containers") or []]
    every = [c.get("name") for c in spec.get("initContainers") or []] + containers
    container = query.get("container") or ""
    if not container:
        if len(containers) != 1:
            choices = f", choose one of: [{' '.join(str(c) for c in every)}]" if every else ""
            raise errors.bad_request(f"a container name must be specified for pod {name}{choices}")
        container = str(containers[0])
    elif container not in every:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    if not spec.get("nodeName"):
        return ""
    previous = _is_true(query.get("previous"))
    key = LogKey(pod["metadata"].get("namespace", ""), name, container, previous)
    text = store.logs(key)
    if previous and text is None:
        raise errors.bad_request(
            f'previous terminated container "{container}" in pod "{name}" not found'
        )
    if text is None:
        waiting = _waiting_reason(pod, container)
        if waiting in _NOT_STARTED:
            raise errors.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {waiting}'
            )
        text = ""
    return _shape_log(text, query)


def _waiting_reason(pod: Obj, container: str) -> str | None:
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if cs.get("name") == container:
            return ((cs.get("state") or {}).get("waiting") or {}).get("reason")
    return "ContainerCreating" if status.get("phase") == "Pending" else None


def _shape_log(text: str, query: dict[str, str]) -> str:
    """tailLines, timestamps and limitBytes, as the kubelet applies them."""
    lines = text.splitlines(keepends=True)
    tail = query.get("tailLines")
    if tail is not None:
        if not tail.lstrip("-").isdigit():
            raise errors.bad_request(f"invalid tailLines: {tail!r}")
        count = int(tail)
        lines = lines[-count:] if count > 0 else ([] if count == 0 else lines)
    if _is_true(query.get("timestamps")):
        stamp = now_rfc3339().replace("Z", ".000000000Z")
        lines = [f"{stamp} {line}" for line in lines]
    out = "".join(lines)
    limit = query.get("limitBytes")
    if limit and limit.isdigit():
        out = out.encode()[: int(limit)].decode(errors="ignore")
    return out


def _is_true(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")
