"""One investigation's shared state: the tools it may call, what they answered, what was down.

Detectors ask ``inv.tool(name, **args)`` instead of calling tools directly, so a call several
detectors need is made once, every call is counted, and a source that cannot be reached is
recorded (the diagnosis then says what is unknown instead of claiming all is well).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot import logs, metrics
from bot.diagnose.model import Evidence, Finding, Trigger
from tools import catalog, kube_objects
from tools.base import ToolResult
from tools.toolbox import Toolbox

log = logs.get("opsbot.diagnose")
UNREACHABLE_KINDS = frozenset({"unavailable", "timeout", "server-error"})


@dataclass
class Subject:
    """The objects the trigger is about, resolved pod → workload → node → NodePool."""

    namespace: str
    workloads: list[str] = field(default_factory=list)
    """Deployment names in ``namespace``."""
    pods: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    nodepools: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    """Model names (the ``model`` label of workloads and alerts)."""


@dataclass
class Investigation:
    """What detectors share; thread-safe, so detectors may run in parallel."""

    box: Toolbox
    trigger: Trigger
    subject: Subject
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    call_tool: Callable[[str, dict[str, Any]], ToolResult] | None = None
    """How a tool is called; default: the catalog against ``box``."""
    _results: dict[str, ToolResult] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _in_flight: dict[str, threading.Event] = field(default_factory=dict, repr=False)
    unreachable: set[str] = field(default_factory=set)
    calls: int = 0

    @property
    def cluster(self) -> str | None:
        return self.trigger.cluster

    def tool(self, name: str, /, **arguments: Any) -> ToolResult:
        """The result of catalog tool ``name`` with ``arguments``, asked once per investigation.

        Detectors run in parallel: a call already in flight is waited for, not made again.
        """
        if self.cluster is not None:
            arguments.setdefault("cluster", self.cluster)
        key = f"{name} {json.dumps(arguments, sort_keys=True, default=str)}"
        with self._lock:
            cached = self._results.get(key)
            in_flight = self._in_flight.get(key)
            if cached is None and in_flight is None:
                self._in_flight[key] = mine = threading.Event()
        if cached is not None:
            return cached
        if in_flight is not None:
            in_flight.wait()
            with self._lock:
                return self._results[key]
        try:
            result = (self.call_tool or self._catalog_call)(name, arguments)
        except Exception as e:  # a broken tool must not leave others waiting forever
            log.exception("tool call raised", tool=name)
            result = ToolResult(
                tool=name,
                source="opsbot",
                status="error",
                call=key,
                text=f"ERROR: {e}",
                error=str(e),
                error_kind="internal",
            )
        with self._lock:
            self._results[key] = result
            del self._in_flight[key]
            self.calls += 1
            if result.status == "error" and result.error_kind in UNREACHABLE_KINDS:
                self.unreachable.add(result.source)
        if result.status == "error":
            metrics.TOOL_ERRORS.labels(source=result.source, kind=result.error_kind or "").inc()
        mine.set()
        return result

    def _catalog_call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        if name == "k8s_object":  # whole objects for the fix catalog; not an LLM tool
            return kube_objects.get_object(box=self.box, **arguments)
        return catalog.get(name).run(self.box, arguments)

    def obj(
        self, kind: str, name: str, namespace: str | None = None, *, raw: bool = False
    ) -> ToolResult:
        """A whole object as the API serves it (``data``), read once per investigation;
        ``raw`` keeps secret values (for building a patch only, never to show)."""
        if raw:
            return self.tool(
                "k8s_object", kind=kind, name=name, namespace=namespace, redacted=False
            )
        return self.tool("k8s_object", kind=kind, name=name, namespace=namespace)

    def results(self) -> list[ToolResult]:
        """Every tool result so far, in the order asked."""
        with self._lock:
            return list(self._results.values())


def evidence(result: ToolResult, value: str, *, where: str | None = None) -> Evidence:
    """Evidence from a tool result: its source and exact call, and what we read in it."""
    return Evidence(source=result.source, call=result.call, value=value, where=where)


Detector = Callable[[Investigation], list[Finding]]
"""A deterministic check: reads through ``inv.tool`` and returns findings (maybe none)."""
