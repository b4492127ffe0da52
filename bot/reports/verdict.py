"""What every daily check shares: asking a tool, and turning its answer into a verdict.

A check never says ``ok`` about a source it could not read: an error or an empty answer becomes
``unknown``, and the value says why (SCENARIOS.md: unknown is not OK). Bounds are compared with a
tolerance of floating-point noise, so a GPU at exactly 80 % or 0.95 is on the bound, not past it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import UNREACHABLE_KINDS, evidence
from bot.diagnose.model import CheckResult
from tools import promapi
from tools.base import ToolResult

Ask = Callable[..., ToolResult]
"""``ask(tool_name, /, **arguments)``: a catalog tool's result, e.g. ``Investigation.tool``.
The tool name is passed positionally (k8s_describe has an argument called ``name``)."""

Row = facts.Row

_NOISE = 1e-9
"""Relative difference below which two numbers are the same (PromQL sums and ratios)."""


def why_not(result: ToolResult, empty: str) -> str:
    """Why ``result`` gives no verdict: its source down, the request refused, or ``empty``."""
    if result.status != "error":
        return empty
    if result.error_kind in UNREACHABLE_KINDS:
        return f"{result.source} unreachable: {result.error}"
    return f"{result.source} error ({result.error_kind}): {result.error}"


def unknown(check_id: str, threshold: str, result: ToolResult, empty: str) -> CheckResult:
    """The check's result when ``result`` cannot be judged; the evidence keeps the call made."""
    value = why_not(result, empty)
    return CheckResult(
        id=check_id,
        status="unknown",
        value=value,
        threshold=threshold,
        evidence=[evidence(result, value)],
    )


def query(ask: Ask, promql: str) -> tuple[ToolResult, list[Row]]:
    """An instant PromQL query's rows (labels, value); NaN rows (0/0) are left out."""
    result = ask("prometheus_query", query=promql)
    return result, facts.series(result)


def query_parts(ask: Ask, parts: Mapping[str, str]) -> tuple[ToolResult, dict[str, list[Row]]]:
    """Several expressions in one request (``promapi.tagged``), the rows under each part."""
    result = ask("prometheus_query", query=promapi.tagged(parts))
    out: dict[str, list[Row]] = {name: [] for name in parts}
    for labels, value in facts.series(result):
        part = labels.pop(promapi.TAG, "")
        out.setdefault(part, []).append((labels, value))
    return result, out


def first(rows: list[Row]) -> float | None:
    """The value of a one-row (aggregated) answer, or None when it had none."""
    return rows[0][1] if rows else None


def below(value: float, limit: float) -> bool:
    """``value < limit``, counting a value equal to ``limit`` up to noise as not below."""
    return value < limit and not math.isclose(value, limit, rel_tol=_NOISE)


def at_most(value: float, limit: float) -> bool:
    """``value <= limit``, counting a value equal to ``limit`` up to noise as equal."""
    return value <= limit or math.isclose(value, limit, rel_tol=_NOISE)


def percent(fraction: float, digits: int = 3) -> str:
    """A fraction as people read a percentage: ``0.15 %``, ``62 %``, ``96.3 %``."""
    return f"{fraction * 100:.{digits}g} %"


def count(n: float, word: str) -> str:
    """``1 GPU``, ``3 GPUs``."""
    return f"{n:,.0f} {word}{'' if n == 1 else 's'}"
