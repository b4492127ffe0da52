"""The API server's writes: create, update, patch, delete, and the status and scale subresources.

Each takes the parsed request and returns the object to answer with; errors are ApiError. A
dry run (``dryRun=All``) runs every check and returns what would be stored, storing nothing.
Resources with a status subresource keep their status on main-resource writes, and only
their status changes through ``/status``, as on a real server.
"""

from __future__ import annotations

import copy
import random
import string
import uuid
from typing import Any

from lab.kube import errors, patch, validation
from lab.kube.resources import Resource
from lab.kube.selectors import format_label_selector
from lab.kube.store import AlreadyExists, Conflict, NotFound, ObjectStore, now_rfc3339

Obj = dict[str, Any]
_PATCH_RETRIES = 5
_CREATED_STATUS: dict[str, Obj] = {
    "Pod": {"phase": "Pending"},
    "Namespace": {"phase": "Active"},
    "PersistentVolumeClaim": {"phase": "Pending"},
    "PersistentVolume": {"phase": "Pending"},
    "Service": {"loadBalancer": {}},
}


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _check_type(resource: Resource, body: Any) -> Obj:
    if not isinstance(body, dict):
        raise errors.bad_request(f"Object 'Kind' is missing in '{body}'")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind not in (None, resource.kind):
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
        )
    if api_version not in (None, resource.api_version):
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({resource.api_version})"
        )
    body["kind"], body["apiVersion"] = resource.kind, resource.api_version
    return body


def _check_namespace(resource: Resource, body: Obj, namespace: str | None) -> None:
    meta = _meta(body)
    if not resource.namespaced:
        meta.pop("namespace", None)
        return
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = namespace


def _invalid_if(resource: Resource, obj: Obj, old: Obj | None) -> None:
    """422 for problems the write introduces (an old object's own flaws are not re-reported)."""
    causes = validation.validate(resource.kind, obj, old)
    if old is not None:
        existing = validation.validate(resource.kind, old)
        causes = [c for c in causes if c not in existing]
    if causes:
        raise errors.invalid(resource, _meta(obj).get("name") or "", causes)


def _default(resource: Resource, obj: Obj) -> None:
    spec = obj.get("spec")
    if resource.kind in ("Deployment", "ReplicaSet") and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
    if resource.kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")


def _preview(old: Obj | None, new: Obj) -> Obj:
    """What a dry run returns: server-set fields filled, nothing stored."""
    out = copy.deepcopy(new)
    meta = _meta(out)
    if old is None:
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        meta.pop("resourceVersion", None)
        if "spec" in out:
            meta.setdefault("generation", 1)
        return out
    old_meta = old["metadata"]
    for kept in ("uid", "creationTimestamp", "resourceVersion"):
        if kept in old_meta:
            meta[kept] = old_meta[kept]
    if old_meta.get("generation") is not None:
        changed = old.get("spec") != out.get("spec")
        meta["generation"] = old_meta["generation"] + (1 if changed else 0)
    return out


def _replace(
    store: ObjectStore, resource: Resource, obj: Obj, expected: str | None, dry_run: bool
) -> Obj:
    name = _meta(obj)["name"]
    if dry_run:
        current = store.get(resource.kind, _meta(obj).get("namespace"), name)
        if expected and expected != current["metadata"].get("resourceVersion"):
            raise errors.conflict(resource, name)
        return _preview(current, obj)
    try:
        return store.replace(obj, expected_version=expected)
    except Conflict as e:
        raise errors.conflict(resource, name) from e
    except NotFound as e:
        raise errors.not_found(resource, name) from e


def _get(store: ObjectStore, resource: Resource, namespace: str | None, name: str) -> Obj:
    try:
        return store.get(resource.kind, namespace, name)
    except NotFound as e:
        raise errors.not_found(resource, name) from e


# -- create / update / delete --------------------------------------------------------------
def create(
    store: ObjectStore, resource: Resource, namespace: str | None, body: Any, *, dry_run: bool
) -> Obj:
    obj = _check_type(resource, body)
    _check_namespace(resource, obj, namespace)
    meta = _meta(obj)
    if not meta.get("name") and meta.get("generateName"):
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))  # noqa: S311
        meta["name"] = f"{meta['generateName']}{suffix}"
    for server_set in (
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
    ):
        meta.pop(server_set, None)
    if resource.has_status and resource.kind != "Node":
        obj["status"] = copy.deepcopy(_CREATED_STATUS.get(resource.kind, {}))
    _default(resource, obj)
    _invalid_if(resource, obj, None)
    name = meta["name"]
    if dry_run:
        try:
            store.get(resource.kind, namespace, name)
        except NotFound:
            return _preview(None, obj)
        raise errors.already_exists(resource, name)
    try:
        return store.create(obj)
    except AlreadyExists as e:
        raise errors.already_exists(resource, name) from e


def update(
    store: ObjectStore,
    resource: Resource,
    namespace: str | None,
    name: str,
    body: Any,
    *,
    dry_run: bool,
    status_only: bool = False,
) -> Obj:
    obj = _check_type(resource, body)
    meta = _meta(obj)
    if meta.get("name") != name:
        raise errors.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL "
            f"({name})"
        )
    _check_namespace(resource, obj, namespace)
    old = _get(store, resource, namespace, name)
    expected = meta.get("resourceVersion") or None
    if expected is None and resource.custom:
        raise errors.invalid(
            resource,
            name,
            [("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")],
        )
    if expected and expected != old["metadata"].get("resourceVersion"):
        raise errors.conflict(resource, name)
    if status_only:
        new = copy.deepcopy(old)
        new["status"] = obj.get("status")
        obj = new
    elif resource.has_status:
        _keep_status(old, obj)
    _default(resource, obj)
    _invalid_if(resource, obj, old)
    return _replace(store, resource, obj, expected, dry_run)


def _keep_status(old: Obj, new: Obj) -> None:
    if "status" in old:
        new["status"] = copy.deepcopy(old["status"])
    else:
        new.pop("status", None)


def delete(
    store: ObjectStore,
    resource: Resource,
    namespace: str | None,
    name: str,
    options: Any,
    *,
    dry_run: bool,
) -> Obj:
    """Delete; answers the object for pods and custom resources, else a Success Status."""
    old = _get(store, resource, namespace, name)
    preconditions = options.get("preconditions") or {} if isinstance(options, dict) else {}
    for field in ("resourceVersion", "uid"):
        wanted = preconditions.get(field)
        if wanted and wanted != old["metadata"].get(field):
            raise errors.conflict(resource, name)
    if not dry_run:
        try:
            old = store.delete(resource.kind, namespace, name)
        except NotFound as e:
            raise errors.not_found(resource, name) from e
    if resource.kind == "Pod" or resource.custom:
        return old
    return errors.success_status(resource, name, old["metadata"].get("uid"))


# -- patch ---------------------------------------------------------------------------------
def accepted_patch_types(resource: Resource) -> list[str]:
    types = [patch.JSON_PATCH, patch.MERGE_PATCH, patch.APPLY_PATCH]
    if not resource.custom:
        types.append(patch.STRATEGIC_MERGE_PATCH)
    return types


def _check_patch_type(resource: Resource, content_type: str) -> None:
    supported = [t for t in accepted_patch_types(resource) if t != patch.APPLY_PATCH]
    if content_type not in supported:
        raise errors.unsupported_media_type(accepted_patch_types(resource))


def _apply_patch(resource: Resource, name: str, doc: Obj, body: bytes, content_type: str) -> Obj:
    try:
        patched = patch.apply(doc, body, content_type)
    except patch.PatchError as e:
        raise errors.bad_request(str(e)) from e
    except patch.PatchFailed as e:
        raise errors.patch_rejected(str(e)) from e
    if not isinstance(patched, dict):
        raise errors.bad_request("the patch does not produce an object")
    return patched


def patch_object(
    store: ObjectStore,
    resource: Resource,
    namespace: str | None,
    name: str,
    body: bytes,
    *,
    content_type: str,
    dry_run: bool,
    status_only: bool = False,
) -> Obj:
    _check_patch_type(resource, content_type)
    for _attempt in range(_PATCH_RETRIES):
        old = _get(store, resource, namespace, name)
        patched = _apply_patch(resource, name, old, body, content_type)
        meta = _meta(patched)
        if meta.get("name") != name or (resource.namespaced and meta.get("namespace") != namespace):
            raise errors.invalid(resource, name, [("metadata.name", "field is immutable")])
        current = old["metadata"].get("resourceVersion")
        if meta.get("resourceVersion") != current:
            raise errors.conflict(resource, name)  # the patch carried a stale resourceVersion
        patched["kind"], patched["apiVersion"] = resource.kind, resource.api_version
        if status_only:
            new = copy.deepcopy(old)
            new["status"] = patched.get("status")
            patched = new
        elif resource.has_status:
            _keep_status(old, patched)
        _invalid_if(resource, patched, old)
        try:
            return _replace(store, resource, patched, current, dry_run)
        except errors.ApiError as e:
            if e.reason != "Conflict":
                raise
    raise errors.conflict(resource, name)


# -- scale ---------------------------------------------------------------------------------
def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": format_label_selector(spec.get("selector")).replace("<none>", ""),
        },
    }


def _write_scale(
    store: ObjectStore, resource: Resource, old: Obj, scale: Obj, dry_run: bool
) -> Obj:
    name = old["metadata"]["name"]
    causes = validation.validate("Scale", {"metadata": {"name": name}, **scale})
    if causes:
        raise errors.ApiError(
            422,
            "Invalid",
            f'Scale.autoscaling "{name}" is invalid: ' + ", ".join(f"{f}: {m}" for f, m in causes),
        )
    expected = (scale.get("metadata") or {}).get("resourceVersion") or None
    if expected and expected != old["metadata"].get("resourceVersion"):
        raise errors.conflict(resource, name)
    new = copy.deepcopy(old)
    new.setdefault("spec", {})["replicas"] = (scale.get("spec") or {}).get("replicas", 0)
    return scale_of(_replace(store, resource, new, old["metadata"]["resourceVersion"], dry_run))


def update_scale(
    store: ObjectStore,
    resource: Resource,
    namespace: str | None,
    name: str,
    body: Any,
    *,
    dry_run: bool,
) -> Obj:
    if not isinstance(body, dict):
        raise errors.bad_request("a Scale object is required")
    old = _get(store, resource, namespace, name)
    return _write_scale(store, resource, old, body, dry_run)


def patch_scale(
    store: ObjectStore,
    resource: Resource,
    namespace: str | None,
    name: str,
    body: bytes,
    *,
    content_type: str,
    dry_run: bool,
) -> Obj:
    _check_patch_type(resource, content_type)
    old = _get(store, resource, namespace, name)
    scale = _apply_patch(resource, name, scale_of(old), body, content_type)
    return _write_scale(store, resource, old, scale, dry_run)
