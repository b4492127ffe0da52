"""Read-only Kubernetes tools: nodes, pods, logs, events, describe, Deployments and PVCs.

Each returns a ToolResult whose ``call`` is the API request made (one line per request, exactly
as sent), with structured ``data`` and a ``text`` fitted to the output budget. Deployments and
PVCs live in ``tools.kube_workloads``, Karpenter and GPU allocation in ``tools.kube_capacity``;
all are reachable from here. ``namespace=None`` means the cluster's inference namespace; ``"*"``
means all namespaces.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tools import base, budget, kube_api, kube_capacity, kube_describe, kube_workloads
from tools import kube_render as render
from tools.toolbox import Toolbox

SOURCE = kube_api.SOURCE
# alias -> (Kind, namespaced)
_KINDS: dict[str, tuple[str, bool]] = {
    **dict.fromkeys(("pod", "pods", "po"), ("Pod", True)),
    **dict.fromkeys(("deployment", "deployments", "deploy"), ("Deployment", True)),
    **dict.fromkeys(("replicaset", "replicasets", "rs"), ("ReplicaSet", True)),
    **dict.fromkeys(("statefulset", "statefulsets", "sts"), ("StatefulSet", True)),
    **dict.fromkeys(
        ("pvc", "pvcs", "persistentvolumeclaim", "persistentvolumeclaims"),
        ("PersistentVolumeClaim", True),
    ),
    **dict.fromkeys(("node", "nodes", "no"), ("Node", False)),
    **dict.fromkeys(("nodepool", "nodepools"), ("NodePool", False)),
    **dict.fromkeys(("nodeclaim", "nodeclaims"), ("NodeClaim", False)),
}
_DESCRIBE_PATHS = {
    "Pod": ("api", "v1", "pods"),
    "Deployment": ("apis", "apps/v1", "deployments"),
}
_NOT_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"

# Implemented beside this module (to keep modules small), reachable here like every kube tool.
list_deployments = kube_workloads.list_deployments
list_pvcs = kube_workloads.list_pvcs
karpenter_status = kube_capacity.karpenter_status
gpu_allocation = kube_capacity.gpu_allocation


def _now() -> datetime:
    return datetime.now(UTC)


def _kind(word: str) -> tuple[str, bool] | None:
    return _KINDS.get(word.strip().lower())


# -- nodes and pods ------------------------------------------------------------------------
def list_nodes(
    *, box: Toolbox, cluster: str | None = None, gpu_only: bool = False
) -> base.ToolResult:
    """Nodes with readiness, placement, GPUs, taints and troubled conditions; problems first."""
    config = kube_api.resolve(box, cluster, "list_nodes")
    if isinstance(config, base.ToolResult):
        return config

    def show(answers: list[Any]) -> base.Output:
        now = _now()
        items = answers[0].get("items") or []
        nodes = [
            render.node_summary(n, now) for n in items if not gpu_only or render.is_gpu_node(n)
        ]
        if not nodes:
            what = f"no GPU nodes among {len(items)} nodes" if gpu_only else "no nodes"
            return base.Output(data=[], text=f"{what} in cluster {config.name}", no_data=True)
        nodes.sort(key=lambda n: (_node_fine(n), n["name"]))
        not_ready = sum(1 for n in nodes if not n["ready"])
        cordoned = sum(1 for n in nodes if n["unschedulable"])
        header = (
            f"{len(nodes)} {'GPU ' if gpu_only else ''}nodes: {len(nodes) - not_ready} Ready, "
            f"{not_ready} not Ready, {cordoned} cordoned; GPUs allocatable "
            f"{sum(n['gpu_allocatable'] for n in nodes)} of {sum(n['gpu_capacity'] for n in nodes)}"
        )
        rows = [
            [
                n["name"],
                render.node_status(n),
                n["instance_type"],
                n["zone"],
                n["capacity_type"],
                n["nodepool"] or "-",
                f"{n['gpu_allocatable']}/{n['gpu_capacity']}" if n["gpu_capacity"] else "-",
                n["age"],
                _node_notes(n),
            ]
            for n in nodes
        ]
        headers = ["NAME", "STATUS", "TYPE", "ZONE", "CAPACITY", "NODEPOOL", "GPU A/C", "AGE"]
        text, cut = kube_api.fit(header, [*headers, "NOTES"], rows, box.limits, "nodes")
        return base.Output(data=nodes, text=text, cut=cut)

    return kube_api.run(
        box=box,
        config=config,
        tool="list_nodes",
        reads=[kube_api.Read("/api/v1/nodes")],
        render=show,
    )


def _node_fine(n: dict[str, Any]) -> bool:
    return bool(n["ready"] and not n["unschedulable"] and not n["conditions"])


def _node_notes(n: dict[str, Any]) -> str:
    notes = []
    if not n["ready"]:
        why = f"{n['ready_reason'] or ''}: {n['ready_message'] or ''}"
        notes.append(f"Ready={n['ready_status']} {why}")
    notes += [
        f"{c['type']}=True {c['reason'] or ''}: {c['message'] or ''}" for c in n["conditions"]
    ]
    notes += [f"taint {t}" for t in n["taints"]]
    return "; ".join(notes) or "-"


def list_pods(
    *,
    box: Toolbox,
    cluster: str | None = None,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    node: str | None = None,
) -> base.ToolResult:
    """Pods with phase, readiness, restarts, waiting reason, last termination and node; pods in
    trouble first."""
    config = kube_api.resolve(box, cluster, "list_pods")
    if isinstance(config, base.ToolResult):
        return config
    ns = namespace or config.inference_namespace
    fields = ",".join(f for f in (field_selector, f"spec.nodeName={node}" if node else None) if f)
    query = [("labelSelector", label_selector)] if label_selector else []
    query += [("fieldSelector", fields)] if fields else []
    asked = kube_api.scope(ns) + "".join(f" with {k} {v}" for k, v in query)

    def show(answers: list[Any]) -> base.Output:
        now = _now()
        pods = [render.pod_summary(p, now) for p in answers[0].get("items") or []]
        if not pods:
            return base.Output(data=[], text=f"no pods {asked}", no_data=True)
        pods.sort(key=lambda p: (render.healthy_pod(p), -p["restarts"], p["namespace"], p["name"]))
        running = sum(1 for p in pods if p["phase"] == "Running")
        ready = sum(1 for p in pods if p["all_ready"])
        restarted = sum(1 for p in pods if p["restarts"])
        header = (
            f"{len(pods)} pods {asked}: {running} Running, {ready} ready, "
            f"{sum(1 for p in pods if p['phase'] == 'Pending')} Pending, {restarted} restarted"
        )
        rows = [_pod_row(p, all_namespaces=ns == kube_api.ALL) for p in pods]
        headers = ["NAME", "READY", "STATUS", "RESTARTS", "LAST TERMINATION", "NODE", "AGE", "NOTE"]
        text, cut = kube_api.fit(header, headers, rows, box.limits, "pods")
        return base.Output(data=pods, text=text, cut=cut)

    path = kube_api.collection(ns, "api", "v1", "pods")
    read = kube_api.Read(path, tuple(query))
    return kube_api.run(box=box, config=config, tool="list_pods", reads=[read], render=show)


def _pod_row(p: dict[str, Any], *, all_namespaces: bool) -> list[Any]:
    last = p["last_termination"]
    restarts = f"{p['restarts']} ({last['ago']} ago)" if last and p["restarts"] else p["restarts"]
    ended = f"{last['reason']} exit={last['exit_code']} {last['ago']} ago" if last else "-"
    note = p["unschedulable"] or p["waiting_message"] or ""
    name = f"{p['namespace']}/{p['name']}" if all_namespaces else p["name"]
    return [name, p["ready"], p["status"], restarts, ended, p["node"] or "-", p["age"], note[:200]]


def pod_logs(
    *,
    box: Toolbox,
    pod: str,
    cluster: str | None = None,
    namespace: str | None = None,
    container: str | None = None,
    previous: bool = False,
    tail_lines: int | None = 200,
    grep: str | None = None,
) -> base.ToolResult:
    """A container's log (or its previous instance's), the last ``tail_lines`` lines (None: all),
    optionally only lines matching the regex ``grep``; cut keeping errors and the newest."""
    config = kube_api.resolve(box, cluster, "pod_logs")
    if isinstance(config, base.ToolResult):
        return config
    ns = namespace or config.inference_namespace
    query = [("container", container)] if container else []
    query += [("previous", "true")] if previous else []
    query += [("tailLines", str(tail_lines))] if tail_lines is not None else []
    read = kube_api.Read(
        kube_api.path("api", "v1", "namespaces", ns, "pods", pod, "log"), tuple(query), True
    )
    try:
        pattern = re.compile(grep) if grep else None
    except re.error as e:
        error = base.Rejected(SOURCE, f"invalid grep regex {grep!r}: {e}")
        return kube_api.refuse(
            box, tool="pod_logs", cluster=config.name, error=error, call=read.line
        )
    what = f"log of pod {ns}/{pod}" + (f" container {container}" if container else "")
    what += " (previous instance)" if previous else ""
    what += f", last {tail_lines} lines" if tail_lines is not None else ""
    what += f", lines matching /{grep}/" if grep else ""

    def show(answers: list[Any]) -> base.Output:
        lines = str(answers[0]).splitlines()
        kept = [line for line in lines if pattern.search(line)] if pattern else lines
        data: dict[str, Any] = {
            "namespace": ns,
            "pod": pod,
            "container": container,
            "previous": previous,
            "tail_lines": tail_lines,
            "grep": grep,
            "lines_read": len(lines),
            "lines": len(kept),
        }
        if not kept:
            return base.Output(data=data, text=f"no lines in the {what}", no_data=True)
        header = f"{what}: {len(kept):,} lines"
        body, cut = budget.fit_lines(kept, box.limits.max_chars - len(header) - 1)
        data["log"] = body
        return base.Output(data=data, text=f"{header}\n{body}", cut=cut)

    return kube_api.run(box=box, config=config, tool="pod_logs", reads=[read], render=show)


# -- events and describe -------------------------------------------------------------------
def events(
    *,
    box: Toolbox,
    cluster: str | None = None,
    namespace: str | None = None,
    kind: str | None = None,
    name: str | None = None,
    since: str | None = None,
) -> base.ToolResult:
    """Events of one object (by kind and name, as kubectl describe finds them) or of a
    namespace, newest first, optionally only those seen within ``since`` (e.g. ``1h``)."""
    config = kube_api.resolve(box, cluster, "k8s_events")
    if isinstance(config, base.ToolResult):
        return config
    known = _kind(kind) if kind else None
    if kind and known is None:
        choices = ", ".join(sorted({k for k, _ in _KINDS.values()}))
        error = base.Rejected(SOURCE, f"unknown kind {kind!r}; one of {choices}")
        return kube_api.refuse(box, tool="k8s_events", cluster=config.name, error=error)
    try:
        window = render.duration(since) if since else None
    except ValueError as e:
        error = base.Rejected(SOURCE, str(e))
        return kube_api.refuse(box, tool="k8s_events", cluster=config.name, error=error)
    cluster_scoped = known is not None and not known[1]
    ns = (
        kube_api.ALL
        if cluster_scoped and namespace is None
        else namespace or config.inference_namespace
    )
    fields = [f"involvedObject.kind={known[0]}"] if known else []
    fields += [f"involvedObject.name={name}"] if name else []
    query = (("fieldSelector", ",".join(fields)),) if fields else ()
    subject = known[0] if known else "object"
    subject = f"{subject} {name}" if name else f"{subject}s"
    asked = f"events of {subject} {kube_api.scope(ns)}" + (f" in the last {since}" if since else "")

    def show(answers: list[Any]) -> base.Output:
        now = _now()
        items = answers[0].get("items") or []
        if window is not None:
            items = [e for e in items if (t := render.event_time(e)) and now - t <= window]
        found = render.newest_first(items, now)
        if not found:
            return base.Output(data=[], text=f"no {asked}", no_data=True)
        warnings = sum(1 for e in found if e["type"] == "Warning")
        header = f"{len(found)} {asked} ({warnings} Warning), newest first"
        text, cut = render.events_text(found, box.limits.max_chars - len(header) - 1)
        return base.Output(data=found, text=f"{header}\n{text}", cut=cut)

    read = kube_api.Read(kube_api.collection(ns, "api", "v1", "events"), query)
    return kube_api.run(box=box, config=config, tool="k8s_events", reads=[read], render=show)


def describe(
    *,
    box: Toolbox,
    kind: str,
    name: str,
    cluster: str | None = None,
    namespace: str | None = None,
) -> base.ToolResult:
    """A kubectl-describe-like summary of a pod, Deployment or node, with its events."""
    config = kube_api.resolve(box, cluster, "k8s_describe")
    if isinstance(config, base.ToolResult):
        return config
    known = _kind(kind)
    if known is None or known[0] not in ("Pod", "Deployment", "Node"):
        error = base.Rejected(SOURCE, f"describe supports pod, deployment and node, not {kind!r}")
        return kube_api.refuse(box, tool="k8s_describe", cluster=config.name, error=error)
    kube_kind = known[0]
    ns = namespace or config.inference_namespace
    selector = f"involvedObject.kind={kube_kind},involvedObject.name={name}"
    if kube_kind == "Node":
        on_node = f"spec.nodeName={name},{_NOT_TERMINAL}"
        reads = [
            kube_api.Read(kube_api.path("api", "v1", "nodes", name)),
            kube_api.Read("/api/v1/events", (("fieldSelector", selector),)),
            kube_api.Read("/api/v1/pods", (("fieldSelector", on_node),)),
        ]
    else:
        prefix, version, plural = _DESCRIBE_PATHS[kube_kind]
        obj_path = f"/{prefix}/{version}" + kube_api.path("namespaces", ns, plural, name)
        reads = [
            kube_api.Read(obj_path),
            kube_api.Read(
                kube_api.collection(ns, "api", "v1", "events"), (("fieldSelector", selector),)
            ),
        ]

    def show(answers: list[Any]) -> base.Output:
        now = _now()
        obj = answers[0]
        uid = render.get(obj, "metadata", "uid")
        items = [
            e
            for e in answers[1].get("items") or []
            if render.get(e, "involvedObject", "uid") in (None, "", uid)
        ]
        found = render.newest_first(items, now)
        if kube_kind == "Pod":
            data, lines = kube_describe.pod(obj, now)
        elif kube_kind == "Deployment":
            data, lines = kube_describe.deployment(obj, now)
        else:
            data, lines = kube_describe.node(obj, answers[2].get("items") or [], now)
        data["events"] = found
        body = "\n".join(lines)
        room = max(box.limits.max_chars - len(body) - 40, 600)
        table, cut = render.events_text(found, room) if found else ("  <none>", None)
        return base.Output(data=data, text=f"{body}\nEvents:\n{table}", cut=cut)

    return kube_api.run(box=box, config=config, tool="k8s_describe", reads=reads, render=show)
