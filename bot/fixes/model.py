"""What the catalog hands out: a bounded patch or a refusal, and the facts a build needs.

Plain data, no I/O: whoever calls the catalog reads the cluster and passes the facts in, so the
same inputs always give the same patch (and the same hash an approval binds to).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import config
from bot.fixes import pointer, quantity
from tools import instance_types

Op = dict[str, Any]
"""One RFC 6902 operation."""

PvcLookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) -> the PersistentVolumeClaim as the API serves it, or None if missing."""


def canonical_json(ops: Sequence[Op]) -> str:
    """The one serialisation an approval's hash is taken over (sorted keys, no spaces)."""
    return json.dumps(list(ops), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def patch_hash(ops: Sequence[Op]) -> str:
    """sha256 of the canonical JSON of ``ops``: what an approval binds to."""
    return hashlib.sha256(canonical_json(ops).encode()).hexdigest()


@dataclass(frozen=True)
class FixPatch:
    """A bounded change to one object: JSON-Patch ops guarded by tests, and how to read it."""

    code: str
    target: str
    """``deployment/NS/NAME``, ``nodepool/NAME`` or ``node/NAME`` (SCENARIOS.md)."""
    ops: list[Op]
    """RFC 6902; every change is preceded by ``test`` ops on what it replaces and relies on."""
    diff: str
    """One line per change, ``where: old → new``."""
    summary: str
    risk: str

    @property
    def patch_hash(self) -> str:
        """Recomputed from ``ops`` so it can never disagree with what gets sent."""
        return patch_hash(self.ops)

    def inverse(self, original: Mapping[str, Any]) -> list[Op]:
        """The patch that undoes this one, built from the object it was built from."""
        return pointer.inverse(original, self.ops)


@dataclass(frozen=True)
class Refused:
    """A fix the catalog will not build for this target, and why (one sentence)."""

    code: str
    target: str
    why: str


@dataclass(frozen=True)
class NodeFacts:
    """The node a workload runs on (or would): what memory, GPU and EFA sizing need."""

    name: str | None = None
    instance_type: str | None = None
    memory_bytes: int | None = None
    gpus: int | None = None
    gpu_memory_gib: float | None = None
    efa: int | None = None

    @classmethod
    def from_instance_type(cls, name: str, *, node_name: str | None = None) -> NodeFacts:
        """Facts from the instance-type table alone; unknown types leave them None."""
        known = instance_types.lookup(name)
        if known is None:
            return cls(name=node_name, instance_type=name)
        return cls(
            name=node_name,
            instance_type=name,
            memory_bytes=known.memory_gib * 2**30,
            gpus=known.gpus,
            gpu_memory_gib=float(known.gpu_memory_gib) if known.gpus else None,
            efa=known.efa,
        )

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> NodeFacts:
        """Facts from a Node object: its capacity first, the instance-type table for the rest."""
        meta = node.get("metadata") or {}
        labels = meta.get("labels") or {}
        capacity = (node.get("status") or {}).get("capacity") or {}
        itype = labels.get("node.kubernetes.io/instance-type") or labels.get(
            "beta.kubernetes.io/instance-type"
        )
        base = cls.from_instance_type(itype, node_name=meta.get("name")) if itype else cls()
        memory = _quantity_or_none(capacity.get("memory"))
        gpus = _quantity_or_none(capacity.get("nvidia.com/gpu"))
        return cls(
            name=meta.get("name"),
            instance_type=itype,
            memory_bytes=memory if memory is not None else base.memory_bytes,
            gpus=gpus if gpus is not None else base.gpus,
            gpu_memory_gib=base.gpu_memory_gib or _gfd_memory_gib(labels),
            efa=base.efa,
        )


def _quantity_or_none(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return quantity.parse_int(value)
    except ValueError:
        return None


def _gfd_memory_gib(labels: Mapping[str, Any]) -> float | None:
    """GPU feature discovery's ``nvidia.com/gpu.memory`` label is in MiB."""
    raw = labels.get("nvidia.com/gpu.memory")
    try:
        return int(raw) / 1024 if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class FixContext:
    """What some codes need beyond the object itself; the caller reads it from the cluster."""

    settings: config.Fixes = field(default_factory=config.Fixes)
    replicas_at_proposal: int | None = None
    """Replicas counted when the fix was first proposed (bounds scale-up); None = current."""
    node: NodeFacts | None = None
    """The node the workload runs on: memory, GPU and EFA sizing."""
    zones: tuple[str, ...] = ()
    """Zones the cluster's nodes are in (add-zones)."""
    pvc: PvcLookup | None = None
    """How to read a PVC (use-model-cache-pvc); None means PVCs cannot be checked."""
    restarted_at: str | None = None
    """RFC 3339 time for rollout-restart's annotation, passed in so builds are deterministic."""
