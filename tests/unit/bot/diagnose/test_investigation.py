"""The investigation's shared calls: each distinct call made once, even when asked at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.diagnose.investigation import Investigation, Subject
from bot.diagnose.model import Trigger
from tests.conftest import WaitFor
from tools.base import ToolResult
from tools.toolbox import ClusterConfig, Toolbox


def _investigation(call: Any) -> Investigation:
    url = "http://127.0.0.1:9"  # never called: the calls are the test's own
    box = Toolbox(
        [ClusterConfig(name="lab", prometheus_url=url, kubecost_url=url, alertmanager_url=url)]
    )
    return Investigation(
        box=box,
        trigger=Trigger(kind="question", question="?"),
        subject=Subject(namespace="inference"),
        call_tool=call,
    )


def _result(name: str, status: str = "ok", kind: str | None = None) -> ToolResult:
    return ToolResult(
        tool=name, source="prometheus", status=status, call="q", text="t", error_kind=kind
    )


def test_a_call_in_flight_is_waited_for_not_repeated(wait_for: WaitFor) -> None:
    release = threading.Event()
    made: list[str] = []

    def call(name: str, arguments: dict[str, Any]) -> ToolResult:
        made.append(name)
        release.wait(10)
        return _result(name)

    inv = _investigation(call)
    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(inv.tool, "prometheus_query", query="up") for _ in range(4)]
        other = pool.submit(inv.tool, "prometheus_query", query="down")
        wait_for(lambda: len(made) == 2, timeout=5)  # both distinct calls are in flight
        release.set()
        results = [f.result(timeout=10) for f in futures]
        other.result(timeout=10)
    assert made == ["prometheus_query", "prometheus_query"]
    assert inv.calls == 2
    assert all(r is results[0] for r in results)


def test_unreachable_sources_are_recorded_and_a_raising_tool_becomes_an_error() -> None:
    def call(name: str, arguments: dict[str, Any]) -> ToolResult:
        if name == "boom":
            raise ValueError("bad arguments")
        return _result(name, "error", "unavailable")

    inv = _investigation(call)
    assert inv.tool("prometheus_query", query="up").status == "error"
    assert inv.unreachable == {"prometheus"}
    broken = inv.tool("boom")
    assert broken.status == "error" and "bad arguments" in (broken.error or "")
    assert inv.unreachable == {"prometheus"}  # our own bug is not a backend being down
