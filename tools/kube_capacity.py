"""Where GPUs can come from: Karpenter's NodePools and NodeClaims, and GPU allocation per node.

Kept apart from ``tools.kube`` (objects one by one) because both answer "why is there no room
for this pod": a NodePool at its limit or a NodeClaim that cannot launch, or nodes whose GPUs
are all requested.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tools import base, budget, kube_api
from tools import kube_render as render
from tools.toolbox import Toolbox

Obj = dict[str, Any]
_KARPENTER = "/apis/karpenter.sh/v1"
_NO_KARPENTER = "Karpenter's karpenter.sh/v1 API is not served by this cluster"
_PINNED = {
    "node.kubernetes.io/instance-type": "instance_type",
    "topology.kubernetes.io/zone": "zone",
    "karpenter.sh/capacity-type": "capacity_type",
}


def karpenter_status(
    *, box: Toolbox, cluster: str | None = None, nodepool: str | None = None
) -> base.ToolResult:
    """NodePools (requirements, limits against what they hold) and NodeClaims with their
    conditions — a claim that cannot launch says why (e.g. Launched=False InsufficientCapacity)."""
    config = kube_api.resolve(box, cluster, "karpenter_status")
    if isinstance(config, base.ToolResult):
        return config
    if nodepool:
        reads = [
            kube_api.Read(_KARPENTER + kube_api.path("nodepools", nodepool), missing=_NO_KARPENTER),
            kube_api.Read(
                f"{_KARPENTER}/nodeclaims",
                (("labelSelector", f"{render.NODEPOOL}={nodepool}"),),
                missing=_NO_KARPENTER,
            ),
        ]
    else:
        reads = [
            kube_api.Read(f"{_KARPENTER}/nodepools", missing=_NO_KARPENTER),
            kube_api.Read(f"{_KARPENTER}/nodeclaims", missing=_NO_KARPENTER),
        ]

    def show(answers: list[Any]) -> base.Output:
        now = datetime.now(UTC)
        pool_items = [answers[0]] if nodepool else answers[0].get("items") or []
        pools = [_pool(p) for p in pool_items]
        claims = [_claim(c, now) for c in answers[1].get("items") or []]
        claims.sort(key=lambda c: (c["ready"], c["name"]))
        data = {"nodepools": pools, "nodeclaims": claims}
        if not pools and not claims:
            return base.Output(data=data, text="no Karpenter NodePools or NodeClaims", no_data=True)
        lines = [_pool_text(p) for p in pools]
        failing = sum(1 for c in claims if not c["ready"])
        lines.append(f"NodeClaims: {len(claims)}, {failing} not Ready")
        head = "\n".join(lines)
        rows = [
            [
                c["name"],
                c["nodepool"],
                c["instance_type"] or "-",
                c["zone"] or "-",
                c["capacity_type"] or "-",
                c["node"] or "-",
                "True" if c["ready"] else "False",
                c["age"],
                c["problem"] or "-",
            ]
            for c in claims
        ]
        headers = ["NAME", "NODEPOOL", "TYPE", "ZONE", "CAPACITY", "NODE", "READY", "AGE"]
        room = max(box.limits.max_chars - len(head) - 1, 400)
        table, cut = budget.fit_table([*headers, "PROBLEM"], rows, room, what="NodeClaims")
        return base.Output(data=data, text=f"{head}\n{table}" if claims else head, cut=cut)

    return kube_api.run(box=box, config=config, tool="karpenter_status", reads=reads, render=show)


def _requirement(r: Obj) -> str:
    values = r.get("values")
    shown = f" [{', '.join(str(v) for v in values)}]" if values else ""
    return f"{r.get('key')} {r.get('operator')}{shown}"


def _pool(p: Obj) -> Obj:
    limits = render.get(p, "spec", "limits") or {}
    resources = render.get(p, "status", "resources") or {}
    return {
        "name": render.get(p, "metadata", "name"),
        "requirements": [
            _requirement(r) for r in render.get(p, "spec", "template", "spec", "requirements") or []
        ],
        "limits": limits,
        "resources": resources,
        "usage": {k: f"{resources.get(k, '0')} of {v}" for k, v in limits.items()},
        "nodes": render.count(resources.get("nodes")),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message")}
            for c in render.get(p, "status", "conditions") or []
            if c.get("status") != "True"
        ],
    }


def _pool_text(p: Obj) -> str:
    lines = [
        f"NodePool {p['name']}: {p['nodes']} nodes; requirements: {'; '.join(p['requirements'])}"
    ]
    usage = ", ".join(f"{k} {v}" for k, v in p["usage"].items())
    lines.append(f"  limits: {usage or 'none'}")
    lines += [
        f"  {c['type']}={c['status']} {c['reason'] or ''}: {c['message'] or ''}"
        for c in p["conditions"]
    ]
    return "\n".join(lines)


def _claim(c: Obj, now: datetime) -> Obj:
    labels = render.get(c, "metadata", "labels") or {}
    out: Obj = {
        "name": render.get(c, "metadata", "name"),
        "nodepool": labels.get(render.NODEPOOL),
        "node": render.get(c, "status", "nodeName"),
        "age": render.age(render.get(c, "metadata", "creationTimestamp"), now),
    }
    for key, field in _PINNED.items():
        out[field] = labels.get(key)
    for r in render.get(c, "spec", "requirements") or []:  # a claim that never launched
        pinned = _PINNED.get(str(r.get("key")))
        values = r.get("values") or []
        if pinned and out.get(pinned) is None and r.get("operator") == "In" and len(values) == 1:
            out[pinned] = values[0]
    conditions = [
        {k: x.get(k) for k in ("type", "status", "reason", "message")}
        for x in render.get(c, "status", "conditions") or []
    ]
    out["conditions"] = conditions
    by_type = {x["type"]: x for x in conditions}
    out["launched"] = render.get(by_type, "Launched", "status") == "True"
    out["ready"] = render.get(by_type, "Ready", "status") == "True"
    failed = [x for x in conditions if x["status"] == "False" and x["type"] != "Ready"]
    failed = failed or [x for x in conditions if x["status"] != "True"]
    out["problem"] = (
        f"{failed[0]['type']}={failed[0]['status']} {failed[0]['reason']}: {failed[0]['message']}"
        if failed
        else None
    )
    return out


def gpu_allocation(*, box: Toolbox, cluster: str | None = None) -> base.ToolResult:
    """Per GPU node: nvidia.com/gpu allocatable against what non-terminal pods on it request,
    and which pods; plus pods waiting for GPUs with no node."""
    config = kube_api.resolve(box, cluster, "gpu_allocation")
    if isinstance(config, base.ToolResult):
        return config
    reads = [
        kube_api.Read("/api/v1/nodes"),
        kube_api.Read(
            "/api/v1/pods", (("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed"),)
        ),
    ]

    def show(answers: list[Any]) -> base.Output:
        now = datetime.now(UTC)
        pods = [render.pod_summary(p, now) for p in answers[1].get("items") or []]
        gpu_pods = [p for p in pods if p["gpus"]]
        nodes = []
        for n in answers[0].get("items") or []:
            if not render.is_gpu_node(n):
                continue
            summary = render.node_summary(n, now)
            on_node = [p for p in gpu_pods if p["node"] == summary["name"]]
            requested = sum(p["gpus"] for p in on_node)
            nodes.append(
                {
                    **{k: summary[k] for k in ("name", "ready", "instance_type", "nodepool")},
                    "unschedulable": summary["unschedulable"],
                    "capacity": summary["gpu_capacity"],
                    "allocatable": summary["gpu_allocatable"],
                    "requested": requested,
                    "free": summary["gpu_allocatable"] - requested,
                    "pods": [
                        {k: p[k] for k in ("namespace", "name", "gpus", "status")} for p in on_node
                    ],
                }
            )
        pending = [
            {k: p[k] for k in ("namespace", "name", "gpus", "status", "unschedulable")}
            for p in gpu_pods
            if not p["node"]
        ]
        totals = {
            "nodes": len(nodes),
            "allocatable": sum(n["allocatable"] for n in nodes),
            "requested": sum(n["requested"] for n in nodes),
            "free": sum(max(n["free"], 0) for n in nodes),
            "pending_pods": len(pending),
            "pending_gpus": sum(p["gpus"] for p in pending),
        }
        data = {"nodes": nodes, "pending": pending, "totals": totals}
        if not nodes and not pending:
            return base.Output(
                data=data, text="no GPU nodes and no pods requesting GPUs", no_data=True
            )
        nodes.sort(key=lambda n: (n["ready"], n["free"] >= 0, -n["free"], n["name"]))
        t = totals
        lines = [
            f"GPUs: {t['allocatable']} allocatable on {t['nodes']} nodes, {t['requested']} "
            f"requested, {t['free']} free; {t['pending_pods']} unscheduled pods want "
            f"{t['pending_gpus']} more"
        ]
        lines += [
            f"  unscheduled {p['namespace']}/{p['name']} wants {p['gpus']}: "
            f"{(p['unschedulable'] or p['status'])[:200]}"
            for p in pending[:10]
        ]
        head = "\n".join(lines)
        rows = [
            [
                n["name"],
                ("Ready" if n["ready"] else "NotReady")
                + (",SchedulingDisabled" if n["unschedulable"] else ""),
                n["instance_type"],
                n["nodepool"] or "-",
                n["allocatable"],
                n["requested"],
                n["free"],
                ", ".join(f"{p['namespace']}/{p['name']}({p['gpus']})" for p in n["pods"])[:200]
                or "-",
            ]
            for n in nodes
        ]
        headers = ["NODE", "STATUS", "TYPE", "NODEPOOL", "ALLOCATABLE", "REQUESTED", "FREE", "PODS"]
        room = max(box.limits.max_chars - len(head) - 1, 400)
        table, cut = budget.fit_table(headers, rows, room, what="GPU nodes")
        return base.Output(data=data, text=f"{head}\n{table}" if nodes else head, cut=cut)

    return kube_api.run(box=box, config=config, tool="gpu_allocation", reads=reads, render=show)
