"""Whole Kubernetes objects as the API serves them, for the fix catalog to build patches on.

The catalog's patches address fields by JSON pointer and guard them with ``test`` ops, so it
needs the object itself, not a tool's summary. These reads are not in the LLM's tool catalog
(the summaries are what a model should read). The data is redacted like every tool result,
unless the fix catalog asks for the object as served (``redacted=False``): a patch's ``test``
ops must carry the exact values they guard, secrets included, and only the redacted form of
such a patch is ever shown or stored.
"""

from __future__ import annotations

from typing import Any

from tools import base, kube_api
from tools.toolbox import Toolbox

PATHS: dict[str, tuple[str, str, bool]] = {
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "Pod": ("/api/v1", "pods", True),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "Node": ("/api/v1", "nodes", False),
    "NodePool": ("/apis/karpenter.sh/v1", "nodepools", False),
}
"""Kinds a fix can target or needs to look at: API group path, plural, namespaced."""

ALIASES = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "pod": "Pod",
    "persistentvolumeclaim": "PersistentVolumeClaim",
    "pvc": "PersistentVolumeClaim",
    "node": "Node",
    "nodepool": "NodePool",
}


def kind_of(word: str) -> str | None:
    """``deployment`` or ``Deployment`` → ``Deployment``; None for kinds we cannot read."""
    return ALIASES.get(word.lower())


def get_object(
    *,
    box: Toolbox,
    kind: str,
    name: str,
    namespace: str | None = None,
    cluster: str | None = None,
    redacted: bool = True,
) -> base.ToolResult:
    """One object by kind and name; ``data`` is the object with ``kind`` and ``apiVersion``."""
    tool = "k8s_object"
    config = kube_api.resolve(box, cluster, tool)
    if isinstance(config, base.ToolResult):
        return config
    canonical = kind_of(kind)
    if canonical is None:
        known = ", ".join(sorted(PATHS))
        error = base.Rejected(kube_api.SOURCE, f"cannot read a {kind!r}; known kinds: {known}")
        return kube_api.refuse(box, tool=tool, cluster=config.name, error=error)
    group, plural, namespaced = PATHS[canonical]
    ns = namespace or config.inference_namespace
    parts = ("namespaces", ns, plural, name) if namespaced else (plural, name)
    api_path = group + kube_api.path(*parts)

    def show(answers: list[Any]) -> base.Output:
        obj = answers[0]
        if isinstance(obj, dict):  # a GET of one object names its kind; be sure of it
            obj.setdefault("kind", canonical)
            obj.setdefault("apiVersion", group.removeprefix("/api/").removeprefix("/apis/"))
        where = f"{ns}/{name}" if namespaced else name
        return base.Output(data=obj, text=f"{canonical} {where}")

    read = kube_api.Read(api_path)
    return kube_api.run(
        box=box, config=config, tool=tool, reads=[read], render=show, redact_data=redacted
    )
