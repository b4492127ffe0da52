"""Fixes to capacity: Karpenter NodePools, nodes, and a workload's replica count and rollout.

NodePool requirements only ever gain values: a NodePool without a requirement already allows
everything that key could name, so widening it is refused rather than turned into a new limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bot.fixes import pointer, quantity
from bot.fixes.builder import PatchBuilder, Refuse
from bot.fixes.model import FixContext

REQUIREMENTS = ("spec", "template", "spec", "requirements")
INSTANCE_TYPE_KEY = "node.kubernetes.io/instance-type"
ZONE_KEY = "topology.kubernetes.io/zone"
CAPACITY_TYPE_KEY = "karpenter.sh/capacity-type"
GPU = "nvidia.com/gpu"
LIMIT_FACTOR = 1.5
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _requirement(
    obj: Mapping[str, Any], key: str, absent_means: str
) -> tuple[int, Mapping[str, Any]]:
    """The NodePool's ``In`` requirement on ``key``; Refuse when it has none to widen."""
    spec: Any = obj
    for token in REQUIREMENTS:
        spec = (spec or {}).get(token)
    for index, requirement in enumerate(spec or []):
        if requirement.get("key") != key:
            continue
        if requirement.get("operator") != "In":
            raise Refuse(f"the {key} requirement uses {requirement.get('operator')}, not In")
        return index, requirement
    raise Refuse(f"the NodePool has no {key} requirement: {absent_means}")


def _widen(
    b: PatchBuilder, key: str, index: int, requirement: Mapping[str, Any], new: Sequence[str]
) -> None:
    """Append ``new`` to requirement ``index``'s values, pinned to that key and operator."""
    b.pin(pointer.join(*REQUIREMENTS, index, "key"), key)
    b.pin(pointer.join(*REQUIREMENTS, index, "operator"), "In")
    if isinstance(requirement.get("values"), list):
        for value in new:
            b.add(pointer.join(*REQUIREMENTS, index, "values", "-"), value)
    else:
        b.add(pointer.join(*REQUIREMENTS, index, "values"), list(new))
    b.line(f"requirements[{key}].values: + {', '.join(new)}")


def add_instance_types(b: PatchBuilder, ctx: FixContext) -> str:
    """The instance-type requirement gains the configured GPU alternatives."""
    index, requirement = _requirement(
        b.obj, INSTANCE_TYPE_KEY, "it already allows every instance type"
    )
    have = list(requirement.get("values") or [])
    new = [t for t in ctx.settings.gpu_alternatives if t not in have]
    if not new:
        raise Refuse(f"the NodePool already allows {', '.join(ctx.settings.gpu_alternatives)}")
    _widen(b, INSTANCE_TYPE_KEY, index, requirement, new)
    return f"Let Karpenter also launch {', '.join(new)} when {', '.join(have)} has no capacity."


def add_zones(b: PatchBuilder, ctx: FixContext) -> str:
    """The zone requirement gains the cluster's other zones and the configured extra zones."""
    index, requirement = _requirement(b.obj, ZONE_KEY, "it already allows every zone")
    have = list(requirement.get("values") or [])
    new = sorted((set(ctx.zones) | set(ctx.settings.extra_zones)) - set(have))
    if not new:
        raise Refuse(
            f"no zone besides {', '.join(have)} is known "
            "(from the cluster's nodes or fixes.extra_zones)"
        )
    _widen(b, ZONE_KEY, index, requirement, new)
    return f"Let Karpenter launch nodes in {', '.join(new)} too, not only {', '.join(have)}."


def allow_on_demand(b: PatchBuilder, ctx: FixContext) -> str:
    """The capacity-type requirement gains on-demand."""
    index, requirement = _requirement(
        b.obj, CAPACITY_TYPE_KEY, "Karpenter already launches on-demand capacity"
    )
    if "on-demand" in (requirement.get("values") or []):
        raise Refuse("the NodePool already allows on-demand capacity")
    _widen(b, CAPACITY_TYPE_KEY, index, requirement, ["on-demand"])
    return "Let Karpenter fall back to on-demand capacity when spot has none."


def raise_nodepool_limit(b: PatchBuilder, ctx: FixContext) -> str:
    """spec.limits nvidia.com/gpu x 1.5, at most the configured maximum."""
    limits = (b.obj.get("spec") or {}).get("limits") or {}
    if GPU not in limits:
        raise Refuse("the NodePool sets no nvidia.com/gpu limit")
    old = limits[GPU]
    try:
        count = quantity.parse_int(old)
    except ValueError as e:
        raise Refuse(f"limits.{GPU} is {old!r}, not a quantity") from e
    ceiling = ctx.settings.nodepool_gpu_limit_max
    if count >= ceiling:
        raise Refuse(f"limits.{GPU} is {count}, already at the maximum {ceiling}")
    raised = min(math.ceil(count * LIMIT_FACTOR), ceiling)
    if raised <= count:
        raise Refuse(f"limits.{GPU} is {count}; x 1.5 does not raise it")
    new = raised if isinstance(old, int) else str(raised)
    b.replace(pointer.join("spec", "limits", GPU), old, new)
    b.line(f"limits.{GPU}: {old} → {new}")
    return f"Raise the NodePool's GPU limit from {count} to {raised} so Karpenter can add nodes."


def cordon_node(b: PatchBuilder, ctx: FixContext) -> str:
    """spec.unschedulable true: no new pods, running ones stay until drained."""
    if (b.obj.get("spec") or {}).get("unschedulable") is True:
        raise Refuse("the node is already cordoned")
    old = (b.obj.get("spec") or {}).get("unschedulable")
    b.ensure_object("/spec", "unschedulable", True)
    b.line(f"spec.unschedulable: {str(old).lower() if old is not None else '(unset)'} → true")
    return "Cordon the node so no new pods are scheduled on it."


def _scale(b: PatchBuilder, ctx: FixContext, step: int) -> str:
    spec = b.obj.get("spec") or {}
    current = int(spec.get("replicas", 1))  # Kubernetes defaults replicas to 1
    at_proposal = ctx.replicas_at_proposal if ctx.replicas_at_proposal is not None else current
    lowest = ctx.settings.min_replicas
    highest = max(lowest, math.floor(ctx.settings.replicas_max_factor * at_proposal))
    new = current + step
    if new < lowest:
        raise Refuse(f"replicas is {current}; the minimum is {lowest}")
    if new > highest:
        raise Refuse(
            f"replicas is {current}; the maximum is {highest} "
            f"({ctx.settings.replicas_max_factor:g} x {at_proposal} at proposal time)"
        )
    b.set("/spec/replicas", new)
    b.line(f"spec.replicas: {current} → {new}")
    return f"Scale from {current} to {new} replicas."


def scale_up(b: PatchBuilder, ctx: FixContext) -> str:
    """One more replica, at most replicas_max_factor x the count at proposal time."""
    return _scale(b, ctx, +1)


def scale_down(b: PatchBuilder, ctx: FixContext) -> str:
    """One fewer replica, never below min_replicas."""
    return _scale(b, ctx, -1)


def rollout_restart(b: PatchBuilder, ctx: FixContext) -> str:
    """What ``kubectl rollout restart`` does: a restartedAt annotation on the pod template."""
    if not ctx.restarted_at:
        raise Refuse("no restart time was given")
    path = pointer.join("spec", "template", "metadata", "annotations")
    old = (
        ((b.obj.get("spec") or {}).get("template", {}).get("metadata") or {})
        .get("annotations", {})
        .get(RESTARTED_AT)
    )
    if old == ctx.restarted_at:
        raise Refuse(f"the pod template was already restarted at {old}")
    b.ensure_object(path, RESTARTED_AT, ctx.restarted_at)
    b.line(f"template.annotations.{RESTARTED_AT}: {old or '(unset)'} → {ctx.restarted_at}")
    return "Restart every pod with a rolling update (as kubectl rollout restart does)."
