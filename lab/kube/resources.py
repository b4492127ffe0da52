"""The resources the fake API server serves, and the discovery documents built from them.

One registry, so discovery (what kubectl and the client learn), routing and the error messages
agree on names. Kinds are unique here because the store keys objects by kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

READ_WRITE = ("create", "delete", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Resource:
    """One served resource type, as the API server's discovery describes it."""

    kind: str
    group: str
    version: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = READ_WRITE
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    custom: bool = False
    """Served like a CustomResourceDefinition: no strategic merge patch, and an update must
    carry metadata.resourceVersion."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: how Kubernetes names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """``Deployment.apps`` / ``Pod``: how validation errors name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def base_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


RESOURCES: tuple[Resource, ...] = (
    Resource("Namespace", "", "v1", "namespaces", "namespace", False, ("ns",),
             subresources=("status",)),
    Resource("Node", "", "v1", "nodes", "node", False, ("no",), subresources=("status",)),
    Resource("Pod", "", "v1", "pods", "pod", True, ("po",), subresources=("log", "status"),
             categories=("all",)),
    Resource("Event", "", "v1", "events", "event", True, ("ev",)),
    Resource("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims",
             "persistentvolumeclaim", True, ("pvc",), subresources=("status",)),
    Resource("PersistentVolume", "", "v1", "persistentvolumes", "persistentvolume", False,
             ("pv",), subresources=("status",)),
    Resource("Service", "", "v1", "services", "service", True, ("svc",),
             subresources=("status",), categories=("all",)),
    Resource("ConfigMap", "", "v1", "configmaps", "configmap", True, ("cm",)),
    Resource("Deployment", "apps", "v1", "deployments", "deployment", True, ("deploy",),
             subresources=("scale", "status"), categories=("all",)),
    Resource("ReplicaSet", "apps", "v1", "replicasets", "replicaset", True, ("rs",),
             subresources=("scale", "status"), categories=("all",)),
    Resource("Lease", "coordination.k8s.io", "v1", "leases", "lease", True),
    Resource("NodePool", "karpenter.sh", "v1", "nodepools", "nodepool", False,
             subresources=("status",), categories=("karpenter",), custom=True),
    Resource("NodeClaim", "karpenter.sh", "v1", "nodeclaims", "nodeclaim", False,
             subresources=("status",), categories=("karpenter",), custom=True),
)  # fmt: skip

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {r.kind: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def for_kind(kind: str) -> Resource:
    """The resource serving ``kind``; KeyError when the lab does not serve it."""
    return _BY_KIND[kind]


def group_versions() -> dict[str, list[str]]:
    """Group name ("" for core) -> its versions, in registry order."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


# -- legacy discovery documents ------------------------------------------------------------
def api_versions(server_address: str) -> Obj:
    """``GET /api``."""
    return {
        "kind": "APIVersions",
        "versions": group_versions()[""],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_entry(group: str, versions: list[str]) -> Obj:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> Obj:
    """``GET /apis``: every named group."""
    groups = [_group_entry(g, vs) for g, vs in group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> Obj | None:
    """``GET /apis/<group>``."""
    versions = group_versions().get(group) if group else None
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _subresource_entry(r: Resource, sub: str) -> Obj:
    entry: Obj = {
        "name": f"{r.plural}/{sub}",
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(SUBRESOURCE_VERBS),
    }
    if sub == "scale":
        entry.update(group="autoscaling", version="v1", kind="Scale")
    elif sub == "log":
        entry["verbs"] = ["get"]
    return entry


def api_resource_list(group: str, version: str) -> Obj | None:
    """``GET /api/v1`` or ``GET /apis/<group>/<version>``; None for an unknown group version."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    entries: list[Obj] = []
    for r in served:
        entry: Obj = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        entries.extend(_subresource_entry(r, sub) for sub in r.subresources)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}


# -- OpenAPI v3 (just enough for kubectl) --------------------------------------------------
_OPENAPI_HASH = "lab"
_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _openapi_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root() -> Obj:
    """``GET /openapi/v3``: where each group version's document lives."""
    paths = {
        _openapi_key(g, v): {
            "serverRelativeURL": f"/openapi/v3/{_openapi_key(g, v)}?hash={_OPENAPI_HASH}"
        }
        for g, versions in group_versions().items()
        for v in versions
    }
    return {"paths": paths}


def openapi_v3_group_version(group: str, version: str) -> Obj | None:
    """``GET /openapi/v3/<api|apis/group>/<version>``: one PATCH operation per resource.

    kubectl (create, replace, apply) reads it only to learn that the server validates fields
    itself (the ``fieldValidation`` query parameter), so it skips client-side schema
    validation, which would need the full schemas.
    """
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    params = [{"name": p, "in": "query", "schema": {"type": "string"}} for p in _QUERY_PARAMS]
    paths = {
        r.base_path("{namespace}") + "/{name}": {
            "patch": {
                "operationId": f"patch{r.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": r.group,
                    "version": r.version,
                    "kind": r.kind,
                },
            }
        }
        for r in served
    }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": {}},
    }
