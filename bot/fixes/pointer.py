"""JSON Pointer (RFC 6901) and just enough JSON Patch (RFC 6902) to build inverses.

The catalog builds patches; rollback needs their inverse against the exact object they were
built from. Applying happens on the API server; this copy only replays ops to learn what each
one replaced, so bot/ needs no patch library.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

Op = dict[str, Any]


class PatchError(ValueError):
    """An op that does not apply: a failed ``test``, a missing path, a bad index."""


def escape(token: str) -> str:
    """One reference token, escaped: ``nvidia.com/gpu`` → ``nvidia.com~1gpu``."""
    return token.replace("~", "~0").replace("/", "~1")


def join(*tokens: str | int) -> str:
    """A pointer from unescaped tokens."""
    return "".join("/" + escape(str(t)) for t in tokens)


def split(path: str) -> list[str]:
    """Unescaped tokens of a pointer."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"not a JSON pointer: {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def resolve(doc: Any, path: str) -> Any:
    """The value at ``path``; PatchError when absent."""
    node = doc
    for token in split(path):
        node = _child(node, token, path)
    return node


def exists(doc: Any, path: str) -> bool:
    try:
        resolve(doc, path)
    except PatchError:
        return False
    return True


def _child(node: Any, token: str, path: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"{path}: no member {token!r}")
        return node[token]
    if isinstance(node, list):
        index = _index(node, token, path, allow_end=False)
        return node[index]
    raise PatchError(f"{path}: cannot descend into a scalar")


def _index(array: list[Any], ref: str, path: str, *, allow_end: bool) -> int:
    if ref == "-" and allow_end:
        return len(array)
    if not ref.isdigit() or (ref != "0" and ref.startswith("0")):
        raise PatchError(f"{path}: bad array index {ref!r}")
    index = int(ref)
    if index > len(array) or (index == len(array) and not allow_end):
        raise PatchError(f"{path}: index {index} out of range")
    return index


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    tokens = split(path)
    if not tokens:
        raise PatchError("the whole document cannot be patched here")
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, path)
    return node, tokens[-1]


def apply(doc: Any, ops: Sequence[Mapping[str, Any]]) -> Any:
    """``doc`` with ``ops`` applied (a copy); PatchError on the first op that does not apply."""
    result = copy.deepcopy(doc)
    for op in ops:
        result = _apply_one(result, op)[0]
    return result


def _apply_one(doc: Any, op: Mapping[str, Any]) -> tuple[Any, list[Op]]:
    """Apply one op in place; return the doc and the ops that undo it."""
    kind, path = op["op"], op["path"]
    if kind == "test":
        if resolve(doc, path) != op["value"]:
            raise PatchError(f"test failed at {path}")
        return doc, []
    parent, token = _parent(doc, path)
    value = copy.deepcopy(op.get("value"))
    if kind == "add":
        if isinstance(parent, list):
            index = _index(parent, token, path, allow_end=True)
            parent.insert(index, value)
            at = path.rsplit("/", 1)[0] + f"/{index}"
            return doc, [{"op": "test", "path": at, "value": value}, {"op": "remove", "path": at}]
        if not isinstance(parent, dict):
            raise PatchError(f"{path}: parent is a scalar")
        undo = _undo_set(parent, token, path, value)
        parent[token] = value
        return doc, undo
    if kind == "replace":
        old = _child(parent, token, path)
        if isinstance(parent, list):
            parent[_index(parent, token, path, allow_end=False)] = value
        else:
            parent[token] = value
        return doc, [
            {"op": "test", "path": path, "value": value},
            {"op": "replace", "path": path, "value": copy.deepcopy(old)},
        ]
    if kind == "remove":
        old = _child(parent, token, path)
        if isinstance(parent, list):
            del parent[_index(parent, token, path, allow_end=False)]
        else:
            del parent[token]
        return doc, [{"op": "add", "path": path, "value": copy.deepcopy(old)}]
    raise PatchError(f"unsupported op {kind!r}")


def _undo_set(parent: dict[str, Any], token: str, path: str, value: Any) -> list[Op]:
    test = {"op": "test", "path": path, "value": copy.deepcopy(value)}
    if token in parent:
        return [test, {"op": "replace", "path": path, "value": copy.deepcopy(parent[token])}]
    return [test, {"op": "remove", "path": path}]


def inverse(original: Mapping[str, Any], ops: Sequence[Mapping[str, Any]]) -> list[Op]:
    """Ops that turn ``apply(original, ops)`` back into ``original``.

    Each undo is guarded by a ``test`` of the value the patch wrote, and the patch's own tests
    that still hold afterwards (a container's name at its index) are repeated first, so a
    rollback never clobbers a change someone made after the fix.
    """
    doc = copy.deepcopy(dict(original))
    undo_groups: list[list[Op]] = []
    for op in ops:
        doc, undo = _apply_one(doc, op)
        if undo:
            undo_groups.append(undo)
    pins: list[Op] = []
    for op in ops:
        if (
            op["op"] == "test"
            and exists(doc, op["path"])
            and resolve(doc, op["path"]) == op["value"]
        ):
            pin = {"op": "test", "path": op["path"], "value": copy.deepcopy(op["value"])}
            if pin not in pins:
                pins.append(pin)
    return pins + [op for group in reversed(undo_groups) for op in group]
