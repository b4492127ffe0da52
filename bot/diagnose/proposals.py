"""From the fixes findings suggest to proposals: the catalog's bounded patch on the live object.

A detector only says which fix would help and where; whether it can be proposed is the
catalog's call, made on the object as the API serves it now, with the facts some fixes need
(the node a workload runs on, the cluster's zones, the model-cache PVC). A suggestion the
catalog refuses becomes a Refusal with its reason, so a reviewer sees why it is not offered.

The catalog builds on the object as served, secrets included, because its ``test`` ops must
carry the exact values they guard (an appended env var pins the whole env list). What leaves
this module is the redacted form of the patch, its hash and its diff: that is what a person
reviews and approves. Applying rebuilds the patch from the live object and sends it only when
its redacted form still hashes to the approved one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot import config
from bot.diagnose.investigation import Investigation
from bot.diagnose.model import Finding, FixSuggestion, Proposal, Refusal
from bot.fixes import catalog
from bot.fixes.model import FixContext, FixPatch, NodeFacts, patch_hash
from tools import kube_objects, redact


def propose(
    inv: Investigation, findings: Sequence[Finding], *, fixes: config.Fixes, now: datetime
) -> tuple[list[Proposal], list[Refusal]]:
    """Every fix the live findings suggest, built once per (code, target), in finding order."""
    proposals: list[Proposal] = []
    refusals: list[Refusal] = []
    seen: set[tuple[str, str]] = set()
    for finding in findings:
        if finding.ruled_out:
            continue
        for suggestion in finding.fixes:
            key = (suggestion.code, suggestion.target)
            if key in seen:
                continue
            seen.add(key)
            built = _build(inv, suggestion, fixes=fixes, now=now)
            if isinstance(built, Refusal):
                refusals.append(built)
                continue
            shown = redact.redact_data(built.ops)
            proposals.append(
                Proposal(
                    code=built.code,
                    target=built.target,
                    finding=finding.code,
                    reason=suggestion.reason or finding.summary,
                    patch=shown,
                    patch_hash=patch_hash(shown),
                    diff=redact.redact(built.diff),
                    summary=redact.redact(built.summary),
                    risk=built.risk,
                )
            )
    return proposals, refusals


def parse_target(target: str) -> tuple[str, str | None, str] | None:
    """``deployment/NS/NAME`` → (Deployment, NS, NAME); ``node/NAME`` → (Node, None, NAME)."""
    parts = target.split("/")
    kind = kube_objects.kind_of(parts[0]) if parts else None
    if kind is None or len(parts) not in (2, 3) or not all(parts):
        return None
    namespaced = kube_objects.PATHS[kind][2]
    if namespaced != (len(parts) == 3):
        return None
    return kind, parts[1] if namespaced else None, parts[-1]


def _build(
    inv: Investigation, suggestion: FixSuggestion, *, fixes: config.Fixes, now: datetime
) -> FixPatch | Refusal:
    parsed = parse_target(suggestion.target)
    if parsed is None:
        return Refusal(
            code=suggestion.code, target=suggestion.target, why="not a target this bot can patch"
        )
    kind, namespace, name = parsed
    result = inv.obj(kind, name, namespace, raw=True)
    if result.status != "ok" or not isinstance(result.data, dict):
        why = f"could not read it: {result.error or result.text}"
        return Refusal(code=suggestion.code, target=suggestion.target, why=why)
    obj: dict[str, Any] = result.data
    context = FixContext(
        settings=fixes,
        node=_node_facts(inv, obj) if kind in catalog.WORKLOADS else None,
        zones=_zones(inv),
        pvc=lambda ns, claim: _pvc(inv, ns, claim),
        restarted_at=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    built = catalog.build(suggestion.code, obj, context=context)
    if isinstance(built, FixPatch):
        return built
    return Refusal(code=built.code, target=suggestion.target, why=built.why)


def _node_facts(inv: Investigation, workload: Mapping[str, Any]) -> NodeFacts | None:
    """The node the workload's pods run on; else the instance type its nodeSelector asks for."""
    meta = workload.get("metadata") or {}
    namespace, name = meta.get("namespace"), str(meta.get("name") or "")
    pods = inv.tool("list_pods", namespace=namespace)
    rows = pods.data if pods.status == "ok" and isinstance(pods.data, list) else []
    for pod in rows:
        owner = str(pod.get("owner") or "")
        if pod.get("node") and owner.removeprefix("ReplicaSet/").rsplit("-", 1)[0] == name:
            node = inv.obj("Node", str(pod["node"]))
            if node.status == "ok" and isinstance(node.data, dict):
                return NodeFacts.from_node(node.data)
    selector = (((workload.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "nodeSelector"
    ) or {}
    itype = selector.get("node.kubernetes.io/instance-type")
    return NodeFacts.from_instance_type(str(itype)) if itype else None


def _zones(inv: Investigation) -> tuple[str, ...]:
    nodes = inv.tool("list_nodes")
    rows = nodes.data if nodes.status == "ok" and isinstance(nodes.data, list) else []
    return tuple(sorted({str(n["zone"]) for n in rows if n.get("zone")}))


def _pvc(inv: Investigation, namespace: str, name: str) -> Mapping[str, Any] | None:
    result = inv.obj("PersistentVolumeClaim", name, namespace)
    return result.data if result.status == "ok" and isinstance(result.data, dict) else None
