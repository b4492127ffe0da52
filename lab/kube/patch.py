"""The three patch types the API server accepts, applied to plain dicts.

JSON patch (RFC 6902, ``test`` included) is the ``jsonpatch`` library; JSON merge patch
(RFC 7386) is a few lines; strategic merge patch follows Kubernetes' patch strategies for the
fields a fix touches: lists merged by key (containers, env, ports, volumeMounts, volumes, ...),
other lists replaced (args, command, tolerations: Kubernetes marks them atomic), maps merged,
and the ``$patch`` / ``$retainKeys`` / ``$deleteFromPrimitiveList`` directives.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class PatchError(ValueError):
    """The patch document itself is malformed (answered with 400)."""


class PatchFailed(ValueError):
    """A well-formed JSON patch could not apply: a ``test`` failed or a path is missing (422)."""


# -- JSON patch ----------------------------------------------------------------------------
def json_patch(doc: Any, ops: Any) -> Any:
    """Apply ops in order; the first that fails names itself, as the Go library does."""
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    out = copy.deepcopy(doc)
    for op in ops:
        path = op.get("path") if isinstance(op, dict) else None
        try:
            out = jsonpatch.JsonPatch([op]).apply(out, in_place=True)
        except jsonpatch.JsonPatchTestFailed as e:
            raise PatchFailed(f"testing value {path} failed: test failed") from e
        except jsonpatch.InvalidJsonPatch as e:
            raise PatchError(str(e)) from e
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as e:
            raise PatchFailed(f"{op.get('op')} operation does not apply: {e}") from e
        except (TypeError, KeyError, IndexError, AttributeError) as e:
            raise PatchFailed(f"unable to apply patch at {path}: {e}") from e
    return out


# -- JSON merge patch ----------------------------------------------------------------------
def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# -- strategic merge patch -----------------------------------------------------------------
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
_PRIMITIVE_MERGE = ("finalizers",)
"""Lists of scalars that Kubernetes merges as sets instead of replacing."""
_DELETE = object()


def _merge_key(field: str, parent: str | None) -> str | None:
    if field == "ports":
        return "containerPort" if parent in _CONTAINER_LISTS else "port"
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    result = _merge_map(doc if isinstance(doc, dict) else {}, patch, parent=None)
    return {} if result is _DELETE else result


def _merge_map(original: dict[str, Any], patch: dict[str, Any], parent: str | None) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type: {directive!r}")
    out = copy.deepcopy(original)
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in (value or [])]
        elif not key.startswith("$"):  # $patch, $retainKeys, $setElementOrder: not fields
            _merge_field(out, key, value, parent)
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list")
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_field(out: dict[str, Any], key: str, value: Any, parent: str | None) -> None:
    if value is None:
        out.pop(key, None)
    elif isinstance(value, dict):
        current = out.get(key)
        merged = _merge_map(current if isinstance(current, dict) else {}, value, parent=key)
        if merged is _DELETE:
            out.pop(key, None)
        else:
            out[key] = merged
    elif isinstance(value, list):
        out[key] = _merge_list(out.get(key), value, key, parent)
    else:
        out[key] = copy.deepcopy(value)


def _merge_list(original: Any, patch: list[Any], field: str, parent: str | None) -> list[Any]:
    original = original if isinstance(original, list) else []
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    key = _merge_key(field, parent)
    if field in _PRIMITIVE_MERGE:
        return [*original, *(v for v in patch if v not in original)]
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [copy.deepcopy(i) for i in patch]
    out = [copy.deepcopy(i) for i in original]
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next(
            (n for n, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del out[index]
            continue
        if index is None:
            merged = _merge_map({}, item, parent=field)
            if merged is not _DELETE:
                out.append(merged)
        else:
            merged = _merge_map(out[index], item, parent=field)
            if merged is _DELETE:
                del out[index]
            else:
                out[index] = merged
    return out


# -- dispatch ------------------------------------------------------------------------------
def content_type_of(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def apply(doc: Any, body: bytes, content_type: str) -> Any:
    """Apply a patch body of ``content_type`` (one of the three JSON types) to ``doc``."""
    try:
        patch = json.loads(body or b"null")
    except ValueError as e:
        raise PatchError(f"error decoding patch: {e}") from e
    if content_type == JSON_PATCH:
        return json_patch(doc, patch)
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise PatchError("merge patch must be a JSON object")
        return merge_patch(doc, patch)
    if content_type == STRATEGIC_MERGE_PATCH:
        return strategic_merge_patch(doc, patch)
    raise ValueError(f"not a patch content type: {content_type}")
