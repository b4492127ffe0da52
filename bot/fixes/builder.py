"""Collects a fix's ops and diff lines, so every change is written with its guard.

Builders never emit a bare ``replace``: ``replace`` tests the old value first, ``pin`` tests what
a change relies on (a container's name at its index), and an ``add`` into an existing array
tests the whole array, so an element someone added meanwhile refuses the patch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from bot.fixes import pointer

Op = dict[str, Any]
T = TypeVar("T")


class Refuse(Exception):
    """Raised by a builder that will not build this fix; the message says why, for a person."""


class PatchBuilder:
    """Ops and diff lines for one object, in order; tests are never repeated."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj
        self.ops: list[Op] = []
        self.lines: list[str] = []

    def pin(self, path: str, value: Any) -> None:
        """Test that ``path`` still holds ``value`` (the change depends on it)."""
        op = {"op": "test", "path": path, "value": copy.deepcopy(value)}
        if op not in self.ops:
            self.ops.append(op)

    def replace(self, path: str, old: Any, new: Any) -> None:
        """Change an existing value, guarded by a test of the old one."""
        self.pin(path, old)
        self.ops.append({"op": "replace", "path": path, "value": copy.deepcopy(new)})

    def add(self, path: str, value: Any) -> None:
        """Create a member or append/insert an array element.

        An existing array is pinned whole first (once). A missing object member cannot be
        tested absent in RFC 6902; the caller pins its parent's identity instead.
        """
        parent_path = path.rpartition("/")[0]
        parent = pointer.resolve(self._now(), parent_path)
        pinned = any(op["op"] == "test" and op["path"] == parent_path for op in self.ops)
        if isinstance(parent, list) and not pinned:
            self.pin(parent_path, parent)
        self.ops.append({"op": "add", "path": path, "value": copy.deepcopy(value)})

    def set(self, path: str, new: Any) -> None:
        """Replace when present, add when absent (the member, not its parents)."""
        now = self._now()
        if pointer.exists(now, path):
            self.replace(path, pointer.resolve(now, path), new)
        else:
            self.add(path, new)

    def ensure_object(self, path: str, member: str, value: Any) -> None:
        """Set ``member`` of the object at ``path``, creating missing parents on the way."""
        tokens = pointer.split(path)
        for depth in range(len(tokens) + 1):
            here = pointer.join(*tokens[:depth])
            if depth and not self._exists(here):
                nested: Any = {member: copy.deepcopy(value)}
                for token in reversed(tokens[depth:]):
                    nested = {token: nested}
                self.add(here, nested)
                return
        self.set(pointer.join(*tokens, member), value)

    def each(self, items: Iterable[T], change: Callable[[T], None]) -> None:
        """Apply ``change`` to every item that accepts it; Refuse only when none does.

        A refused item leaves no ops behind, so a pod with two vLLM containers gets the change
        where it applies (one may already be at the floor).
        """
        reasons: list[str] = []
        changed = False
        for item in items:
            ops, lines = len(self.ops), len(self.lines)
            try:
                change(item)
            except Refuse as e:
                del self.ops[ops:], self.lines[lines:]
                reasons.append(str(e))
            else:
                changed = changed or len(self.ops) > ops
        if not changed:
            raise Refuse("; ".join(reasons) or "nothing to change")

    def line(self, text: str) -> None:
        self.lines.append(text)

    @property
    def diff(self) -> str:
        return "\n".join(self.lines)

    def _exists(self, path: str) -> bool:
        return pointer.exists(self._now(), path)

    def _now(self) -> Any:
        """The object as the ops so far leave it (tests apply in sequence)."""
        return pointer.apply(self.obj, self.ops)
