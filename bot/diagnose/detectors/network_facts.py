"""What the network detectors (NCCL, DNS, proxy timeouts, zones) read alike.

The namespace's pods, Deployments and nodes, read once through the investigation; a Deployment's
env as its manifest gives it; Logs Insights queries over every log group. Reads only through
``Investigation.tool``, so every call is shared and counted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.diagnose.investigation import Investigation
from bot.diagnose.model import FixSuggestion
from tools.base import ToolResult


def insights(pattern: str, limit: int = 100) -> str:
    """A Logs Insights query for the newest lines matching ``pattern``."""
    return (
        f"fields @timestamp, @logStream, @message | filter @message like /{pattern}/"
        f" | sort @timestamp desc | limit {limit}"
    )


def rows(result: ToolResult) -> list[dict[str, Any]]:
    """A list tool's rows, or a Logs Insights answer's ``rows``; none when the call failed."""
    data = result.data if result.status == "ok" else None
    data = data.get("rows") if isinstance(data, dict) else data
    return [x for x in data if isinstance(x, dict)] if isinstance(data, list) else []


def obj(result: ToolResult) -> dict[str, Any]:
    """A describe-like tool's object; empty when the call failed."""
    return result.data if result.status == "ok" and isinstance(result.data, dict) else {}


def workload_of(pod: dict[str, Any]) -> str | None:
    """``ReplicaSet/llama-3-8b-7d9f6c5b8`` → ``llama-3-8b``."""
    owner = str(pod.get("owner") or "")
    if not owner.startswith("ReplicaSet/"):
        return None
    return owner.removeprefix("ReplicaSet/").rsplit("-", 1)[0]


def fix(code: str, target: str, reason: str) -> FixSuggestion:
    return FixSuggestion(code=code, target=target, reason=reason)


def number(value: Any) -> float | None:
    """A float, or None for anything that is not one (unknown stays unknown, never 0)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def after(value: Any, cutoff: datetime) -> bool:
    """Whether the ISO time ``value`` is after ``cutoff`` (an unreadable time counts as recent)."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC) >= cutoff
    except ValueError:
        return True


def env(described: dict[str, Any], name: str) -> str | None:
    """The literal value of env var ``name`` in any of a described workload's containers."""
    for container in described.get("containers") or []:
        for var in container.get("env") or []:
            if var.get("name") == name and var.get("value") is not None:
                return str(var["value"])
    return None


class Cluster:
    """The namespace's pods, Deployments and nodes, read once through the investigation."""

    def __init__(self, inv: Investigation) -> None:
        self.inv, self.ns = inv, inv.subject.namespace
        self.pods_result = inv.tool("list_pods", namespace=self.ns)
        self.pods = rows(self.pods_result)
        self.deployments = rows(inv.tool("list_deployments", namespace=self.ns))
        self.nodes_result = inv.tool("list_nodes")
        self.nodes = {str(n["name"]): n for n in rows(self.nodes_result)}

    def in_scope(self) -> list[dict[str, Any]]:
        s = self.inv.subject
        if s.pods or s.workloads:
            return [p for p in self.pods if p["name"] in s.pods or workload_of(p) in s.workloads]
        return self.pods

    def pods_of(self, workload: str) -> list[dict[str, Any]]:
        return [p for p in self.pods if workload_of(p) == workload]

    def model_of(self, workload: str) -> str | None:
        found = [d for d in self.deployments if d["name"] == workload]
        return (found[0].get("labels") or {}).get("model") if found else None

    def workloads_of(self, model: str) -> list[str]:
        return [
            d["name"] for d in self.deployments if (d.get("labels") or {}).get("model") == model
        ]

    def describe(self, workload: str) -> tuple[ToolResult, dict[str, Any]]:
        result = self.inv.tool("k8s_describe", kind="deployment", name=workload, namespace=self.ns)
        return result, obj(result)

    def target(self, workload: str) -> str:
        return f"deployment/{self.ns}/{workload}"
