"""Watch streams: store writes fanned out to open ``?watch=true`` requests.

One store listener feeds a queue per open watch; each stream ends at its timeoutSeconds or when
the server stops. Without a resourceVersion a watch starts with ADDED for every current object,
as Kubernetes does; with one, objects changed since that version are replayed as MODIFIED
(deletions in between are not remembered).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]
Render = Callable[[Obj, bool], Obj]
"""Turns (object, is_first_event) into what the event carries (the object, or a Table)."""


def _as_is(obj: Obj, first: bool) -> Obj:
    return obj


class WatchHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: list[tuple[str, queue.Queue[tuple[str, Obj]]]] = []
        self.stopping = threading.Event()

    def listener(self, verb: str, kind: str, obj: Obj) -> None:
        """The ObjectStore listener: called after every write, outside the store's lock."""
        with self._lock:
            targets = [q for k, q in self._watchers if k == kind]
        for q in targets:
            q.put((verb, obj))

    def stream(
        self,
        kind: str,
        initial: list[Obj],
        *,
        since_version: int | None,
        matches: Predicate,
        timeout: float,
        render: Render = _as_is,
    ) -> Iterator[bytes]:
        """Newline-delimited watch events for ``kind``, as the API server sends them."""
        q: queue.Queue[tuple[str, Obj]] = queue.Queue()
        with self._lock:
            self._watchers.append((kind, q))
        return self._events(
            q, initial, since_version=since_version, matches=matches, timeout=timeout, render=render
        )

    def _events(
        self,
        q: queue.Queue[tuple[str, Obj]],
        initial: list[Obj],
        *,
        since_version: int | None,
        matches: Predicate,
        timeout: float,
        render: Render,
    ) -> Iterator[bytes]:
        first = True
        try:
            for obj in initial:
                version = int(obj["metadata"].get("resourceVersion") or 0)
                if since_version is None or version > since_version:
                    verb = "ADDED" if since_version is None else "MODIFIED"
                    yield _event(verb, render(obj, first))
                    first = False
            deadline = time.monotonic() + timeout
            while not self.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    verb, obj = q.get(timeout=min(left, 0.2))
                except queue.Empty:
                    continue
                if matches(obj):
                    yield _event(verb, render(obj, first))
                    first = False
        finally:
            with self._lock:
                self._watchers = [(k, w) for k, w in self._watchers if w is not q]


def _event(verb: str, obj: Obj) -> bytes:
    return json.dumps({"type": verb, "object": obj}).encode() + b"\n"
