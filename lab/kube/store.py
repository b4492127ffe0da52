"""The fake API server's state: Kubernetes objects by kind, plus container logs.

Thread-safe; every write assigns a new resourceVersion and notifies subscribers (the simulated
controllers), outside the lock. Objects handed out are deep copies, so callers cannot change the
store behind its back.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Listener = Callable[[str, str, Obj], None]
"""Called after a write with (verb: ADDED|MODIFIED|DELETED, kind, object)."""


class Conflict(Exception):
    """The object changed since the client read it (HTTP 409)."""


class AlreadyExists(Exception):
    """An object with that kind, namespace and name exists (HTTP 409)."""


class NotFound(Exception):
    """No object with that kind, namespace and name (HTTP 404)."""


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LogKey:
    namespace: str
    pod: str
    container: str
    previous: bool = False


@dataclass
class ObjectStore:
    """Objects keyed by (kind, namespace or "", name)."""

    _objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    _logs: dict[LogKey, str] = field(default_factory=dict)
    _version: int = 1000
    _listeners: list[Listener] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- reads -------------------------------------------------------------------------------
    @property
    def resource_version(self) -> str:
        with self.lock:
            return str(self._version)

    def get(self, kind: str, namespace: str | None, name: str) -> Obj:
        with self.lock:
            obj = self._objects.get((kind, namespace or "", name))
            if obj is None:
                raise NotFound(f"{kind} {namespace or ''}/{name}")
            return copy.deepcopy(obj)

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        """All objects of a kind, optionally in one namespace, in name order."""
        with self.lock:
            return [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(self._objects.items())
                if k == kind and (namespace is None or ns == namespace)
            ]

    def logs(self, key: LogKey) -> str | None:
        with self.lock:
            return self._logs.get(key)

    # -- writes ------------------------------------------------------------------------------
    def set_logs(self, key: LogKey, text: str) -> None:
        with self.lock:
            self._logs[key] = text

    def create(self, obj: Obj) -> Obj:
        """Store a new object, filling uid, resourceVersion, generation and creationTimestamp."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        with self.lock:
            if key in self._objects:
                raise AlreadyExists(f"{key[0]} {key[1]}/{key[2]}")
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            if "spec" in obj:
                meta.setdefault("generation", 1)
            meta["resourceVersion"] = self._next_version()
            self._objects[key] = obj
            out = copy.deepcopy(obj)
        self._notify("ADDED", out)
        return out

    def replace(self, obj: Obj, *, expected_version: str | None = None) -> Obj:
        """Replace an object; bumps generation when its spec changed.

        ``expected_version`` (the client's metadata.resourceVersion) must match, else Conflict.
        """
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        with self.lock:
            old = self._objects.get(key)
            if old is None:
                raise NotFound(f"{key[0]} {key[1]}/{key[2]}")
            current = old["metadata"]["resourceVersion"]
            if expected_version and expected_version != current:
                raise Conflict(
                    f"the object has been modified; please apply your changes to the latest "
                    f"version and try again (resourceVersion {expected_version} != {current})"
                )
            for kept in ("uid", "creationTimestamp"):
                meta[kept] = old["metadata"][kept]
            generation = old["metadata"].get("generation")
            if generation is not None:
                changed = old.get("spec") != obj.get("spec")
                meta["generation"] = generation + 1 if changed else generation
            meta["resourceVersion"] = self._next_version()
            self._objects[key] = obj
            out = copy.deepcopy(obj)
        self._notify("MODIFIED", out)
        return out

    def delete(self, kind: str, namespace: str | None, name: str) -> Obj:
        with self.lock:
            obj = self._objects.pop((kind, namespace or "", name), None)
            if obj is None:
                raise NotFound(f"{kind} {namespace or ''}/{name}")
            self._version += 1
        self._notify("DELETED", obj)
        return obj

    def subscribe(self, listener: Listener) -> None:
        with self.lock:
            self._listeners.append(listener)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _notify(self, verb: str, obj: Obj) -> None:
        for listener in list(self._listeners):
            listener(verb, obj["kind"], copy.deepcopy(obj))
