"""One background thread running queued actions at their due time: the lab's controllers.

Store listeners only queue work here, so a controller never writes from inside another
writer's call, and every action runs on one thread, in due-time order.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger(__name__)


class Worker:
    """Runs ``later(delay, action)`` actions on a thread named ``name`` until ``stop()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.errors: list[BaseException] = []
        """Exceptions actions raised (logged and kept; tests assert there are none)."""
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = True
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if not self._stopped:
                return
            self._stopped = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Drop pending actions and end the thread (after the running action, if any)."""
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` in ``delay`` seconds; ignored once stopped."""
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), action))
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                action = heapq.heappop(self._queue)[2]
            try:
                action()
            except Exception as e:  # a bug in one action must not stop the controllers
                _log.exception("%s: action failed", self.name)
                self.errors.append(e)
