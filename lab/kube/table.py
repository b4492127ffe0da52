"""Server-side ``Table`` output (meta.k8s.io/v1), the columns ``kubectl get`` prints.

Like the real server, every column (wide ones too, priority 1) gets a cell; kubectl hides the
wide ones unless ``-o wide``. Cells follow kubernetes' pkg/printers/internalversion; custom
resources use their CRD's printer columns (Karpenter's for NodePool and NodeClaim), else Name
and Age.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lab.kube import ages, printers
from lab.kube.resources import Resource

Obj = dict[str, Any]
Column = tuple[str, str, int]
"""(name, type, priority)"""


# -- custom resources (CRD printer columns) -----------------------------------------------
def _path(*keys: str) -> Callable[[Obj], Any]:
    def get(obj: Obj) -> Any:
        value: Any = obj
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _condition(kind: str) -> Callable[[Obj], Any]:
    def get(obj: Obj) -> Any:
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == kind:
                return cond.get("status")
        return None

    return get


def _label(key: str) -> Callable[[Obj], Any]:
    return lambda obj: ((obj.get("metadata") or {}).get("labels") or {}).get(key)


_AGE = ("Age", "date", 0, _path("metadata", "creationTimestamp"))
CrdColumn = tuple[str, str, int, Callable[[Obj], Any]]
_CRD_COLUMNS: dict[str, list[CrdColumn]] = {
    "NodePool": [
        ("NodeClass", "string", 0, _path("spec", "template", "spec", "nodeClassRef", "name")),
        ("Nodes", "string", 0, _path("status", "resources", "nodes")),
        ("Ready", "string", 0, _condition("Ready")),
        _AGE,
        ("Weight", "integer", 1, _path("spec", "weight")),
        ("CPU", "string", 1, _path("status", "resources", "cpu")),
        ("Memory", "string", 1, _path("status", "resources", "memory")),
    ],
    "NodeClaim": [
        ("Type", "string", 0, _label("node.kubernetes.io/instance-type")),
        ("Capacity", "string", 0, _label("karpenter.sh/capacity-type")),
        ("Zone", "string", 0, _label("topology.kubernetes.io/zone")),
        ("Node", "string", 0, _path("status", "nodeName")),
        ("Ready", "string", 0, _condition("Ready")),
        _AGE,
        ("ImageID", "string", 1, _path("status", "imageID")),
        ("ID", "string", 1, _path("status", "providerID")),
        ("NodePool", "string", 1, _label("karpenter.sh/nodepool")),
        ("NodeClass", "string", 1, _path("spec", "nodeClassRef", "name")),
        ("Drifted", "string", 1, _condition("Drifted")),
    ],
}


def _crd_columns(kind: str) -> list[CrdColumn]:
    return _CRD_COLUMNS.get(kind, [_AGE])


def _crd_cells(kind: str, obj: Obj, now: datetime) -> list[Any]:
    cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
    for _name, kind_type, _priority, get in _crd_columns(kind):
        value = get(obj)
        if value is None:
            cells.append(None)
        elif kind_type == "date":
            cells.append(ages.since(value, now))
        elif kind_type == "integer":
            cells.append(value if isinstance(value, int) else None)
        else:
            cells.append(value if isinstance(value, str) else str(value))
    return cells


# -- assembly ------------------------------------------------------------------------------
def columns(resource: Resource) -> list[Column]:
    if resource.custom or resource.kind not in printers.PRINTERS:
        crd = [
            (name, kind_type, priority)
            for name, kind_type, priority, _ in _crd_columns(resource.kind)
        ]
        return [("Name", "string", 0), *crd]
    return printers.PRINTERS[resource.kind][0]


def cells(resource: Resource, obj: Obj, now: datetime) -> list[Any]:
    if resource.custom or resource.kind not in printers.PRINTERS:
        return _crd_cells(resource.kind, obj, now)
    return printers.PRINTERS[resource.kind][1](obj, now)


def _column_definition(name: str, kind_type: str, priority: int) -> Obj:
    definition: Obj = {
        "name": name,
        "type": "string" if kind_type == "date" else kind_type,
        "format": "name" if name == "Name" else "",
        "description": "",
        "priority": priority,
    }
    return definition


def _row_object(resource: Resource, obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def build(
    resource: Resource,
    objects: list[Obj],
    *,
    resource_version: str,
    include_object: str = "Metadata",
    headers: bool = True,
    now: datetime | None = None,
) -> Obj:
    """A ``Table`` of ``objects``; ``include_object`` is the query's includeObject
    (None | Metadata | Object); ``headers=False`` leaves out the column definitions, as the
    server does after the first event of a watch."""
    now = now or datetime.now(UTC)
    rows = []
    for obj in objects:
        row: Obj = {"cells": cells(resource, obj, now)}
        embedded = _row_object(resource, obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [_column_definition(*c) for c in columns(resource)] if headers else [],
        "rows": rows,
    }
