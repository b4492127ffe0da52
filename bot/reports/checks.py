"""The daily checks (SCENARIOS.md's table), for the diagnosis engine, ``opsbot eval`` and reports.

Each check reads through ``ask`` (``Investigation.tool`` or a plain catalog call), so calls are
shared and counted and the exact query lands in the evidence. A source that cannot be read, or
answers with no data, makes its check ``unknown``, never ``ok``. The checks run on a small thread
pool: a hanging backend costs one tool timeout, not one per check.

Decisions the table leaves open: no pods in the inference namespace is ``unknown`` (nothing to
vouch for: scaled to zero, or the wrong namespace), and Succeeded pods (finished Jobs) are not
model servers, so they are left out; no GPU nodes is ``unknown`` too. The daily cost is
Kubecost's total over the exact 24 h ending now, idle cost included (it is spend).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

from bot import logs
from bot.config import Thresholds
from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import evidence
from bot.diagnose.model import CheckResult
from bot.reports import gpu_memory, verdict

__all__ = ["ORDER", "Ask", "run_checks"]

Ask = verdict.Ask
"""``ask(tool_name, /, **arguments) -> ToolResult``, e.g. ``Investigation.tool``."""

log = logs.get("opsbot.reports")

ORDER: tuple[str, ...] = (
    "gpu-nodes-ready",
    "model-pods-running",
    "error-rate",
    "p99-latency",
    "gpu-utilization",
    "gpu-memory",
    "daily-cost",
)
"""The check ids (``bot.diagnose.codes.CHECK_IDS``) in SCENARIOS.md's table order."""

WINDOW = "24h"
LISTED = 5
"""Objects named in a value before the rest are counted."""

Check = Callable[[Ask, Thresholds, str], CheckResult]


def run_checks(
    ask: Ask, *, thresholds: Thresholds, namespace: str, ids: Iterable[str] | None = None
) -> list[CheckResult]:
    """One result per check id in table order (only ``ids`` when given; an unknown id raises)."""
    wanted = set(ORDER if ids is None else ids)
    if stray := sorted(wanted - set(ORDER)):
        raise ValueError(f"unknown check id(s) {', '.join(stray)} (known: {', '.join(ORDER)})")
    chosen = [check_id for check_id in ORDER if check_id in wanted]
    if not chosen:
        return []
    with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="check") as pool:
        return list(pool.map(lambda i: _run(i, ask, thresholds, namespace), chosen))


def _run(check_id: str, ask: Ask, thresholds: Thresholds, namespace: str) -> CheckResult:
    try:
        return CHECKS[check_id](ask, thresholds, namespace)
    except Exception as e:  # one broken check must not sink the checklist
        log.exception("check failed", check=check_id)
        return CheckResult(
            id=check_id,
            status="unknown",
            value=f"the check failed: {type(e).__name__}: {e}",
            threshold="",
        )


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" (+{len(names) - LISTED} more)" if len(names) > LISTED else "")


# -- Kubernetes -----------------------------------------------------------------------------


def gpu_nodes_ready(ask: Ask, _: Thresholds, __: str) -> CheckResult:
    """Every node with nvidia.com/gpu.present=true is Ready; the NotReady ones are named."""
    check_id, threshold = "gpu-nodes-ready", "all Ready"
    result = ask("list_nodes", gpu_only=True)
    nodes = facts.ok_rows(result)
    if not nodes:
        return verdict.unknown(
            check_id, threshold, result, "no GPU nodes (nvidia.com/gpu.present=true) listed"
        )
    down = [n for n in nodes if not n.get("ready")]
    value = f"{len(nodes) - len(down)}/{len(nodes)} Ready"
    found = [evidence(result, f"{value} GPU nodes")]
    if down:
        value += "; NotReady: " + _names([str(n["name"]) for n in down])
        for n in down:
            why = ": ".join(str(x) for x in (n.get("ready_reason"), n.get("ready_message")) if x)
            seen = f"Ready={n.get('ready_status')}" + (f" ({why})" if why else "")
            found.append(evidence(result, seen, where=f"node/{n['name']}"))
    return CheckResult(
        id=check_id,
        status="fail" if down else "ok",
        value=value,
        threshold=threshold,
        evidence=found,
    )


def _pod_trouble(p: dict[str, Any]) -> str:
    text = f"{p.get('status') or p.get('phase')}, {p.get('ready')} ready"
    if p.get("restarts"):
        text += f", {p['restarts']} restarts"
    why = p.get("unschedulable") or p.get("waiting_message")
    return text + (f": {str(why)[:160]}" if why else "")


def model_pods_running(ask: Ask, _: Thresholds, namespace: str) -> CheckResult:
    """Every pod of the inference namespace is Running with all its containers Ready."""
    check_id, threshold = "model-pods-running", "all Running and Ready"
    result = ask("list_pods", namespace=namespace)
    listed = facts.ok_rows(result)
    pods = [p for p in listed if p.get("phase") != "Succeeded"]
    if not pods:
        done = f" ({len(listed)} Succeeded)" if listed else ""
        return verdict.unknown(
            check_id, threshold, result, f"no model pods in namespace {namespace}{done}"
        )
    bad = [p for p in pods if p.get("phase") != "Running" or not p.get("all_ready")]
    value = f"{len(pods) - len(bad)}/{len(pods)} Running and Ready in {namespace}"
    found = [evidence(result, value)]
    if bad:
        value += "; not: " + _names(
            [f"{p['name']} ({p.get('status')}, {p.get('ready')} ready)" for p in bad]
        )
        found += [
            evidence(result, _pod_trouble(p), where=f"pod/{p.get('namespace')}/{p['name']}")
            for p in bad
        ]
    return CheckResult(
        id=check_id,
        status="fail" if bad else "ok",
        value=value,
        threshold=threshold,
        evidence=found,
    )


# -- Prometheus -----------------------------------------------------------------------------

ERRORS = f"sum(increase(inference_request_errors_total[{WINDOW}]))"
REQUESTS = f"sum(increase(inference_request_total[{WINDOW}]))"
P99 = (
    "histogram_quantile(0.99, sum by (le, model) "
    f"(rate(inference_request_duration_seconds_bucket[{WINDOW}])))"
)
UTIL = f"avg_over_time(DCGM_FI_DEV_GPU_UTIL[{WINDOW}])"


def error_rate(ask: Ask, thresholds: Thresholds, _: str) -> CheckResult:
    """Gateway errors / requests over 24 h, all models together, below the threshold."""
    check_id = "error-rate"
    threshold = f"< {verdict.percent(thresholds.error_rate)}"
    result, parts = verdict.query_parts(
        ask, {"ratio": f"{ERRORS} / {REQUESTS}", "errors": ERRORS, "requests": REQUESTS}
    )
    ratio, errors, requests = (verdict.first(parts[k]) for k in ("ratio", "errors", "requests"))
    if ratio is None or errors is None or requests is None:
        if requests is None:
            empty = f"no data: inference_request_total has no samples in the last {WINDOW}"
        elif requests <= 0:
            empty = f"no data: no gateway requests in the last {WINDOW}"
        else:
            empty = "no data: inference_request_errors_total is absent (unknown, not zero)"
        return verdict.unknown(check_id, threshold, result, empty)
    value = (
        f"{verdict.percent(ratio)} ({errors:,.0f} errors of {requests:,.0f} requests "
        f"in {WINDOW}, all models)"
    )
    return CheckResult(
        id=check_id,
        status="ok" if verdict.below(ratio, thresholds.error_rate) else "fail",
        value=value,
        threshold=threshold,
        evidence=[evidence(result, value)],
    )


def p99_latency(ask: Ask, thresholds: Thresholds, _: str) -> CheckResult:
    """The worst model's gateway p99 over 24 h, below the threshold; the model is named."""
    check_id = "p99-latency"
    threshold = f"< {thresholds.p99_latency_seconds:g} s"
    result, rows = verdict.query(ask, P99)
    if not rows:
        empty = f"no data: no gateway requests with a duration histogram in the last {WINDOW}"
        return verdict.unknown(check_id, threshold, result, empty)
    labels, worst = max(rows, key=lambda row: row[1])
    model = labels.get("model") or "(no model label)"
    shown = "above the highest finite bucket" if math.isinf(worst) else f"{worst:.3g} s"
    value = f"{model} {shown} (the worst of {verdict.count(len(rows), 'model')})"
    found = [evidence(result, value, where=f"model {model}")]
    return CheckResult(
        id=check_id,
        status="ok" if verdict.below(worst, thresholds.p99_latency_seconds) else "fail",
        value=value,
        threshold=threshold,
        evidence=found,
    )


def gpu_utilization(ask: Ask, thresholds: Thresholds, _: str) -> CheckResult:
    """DCGM utilisation over 24 h, the mean over all GPUs, inside the range (else a warning)."""
    check_id = "gpu-utilization"
    low, high = thresholds.gpu_utilization_min * 100, thresholds.gpu_utilization_max * 100
    threshold = f"{low:g}-{high:g} % inclusive"
    result, parts = verdict.query_parts(ask, {"mean": f"avg({UTIL})", "gpus": f"count({UTIL})"})
    mean, gpus = verdict.first(parts["mean"]), verdict.first(parts["gpus"])
    if mean is None:
        empty = f"no data: DCGM_FI_DEV_GPU_UTIL has no samples in the last {WINDOW}"
        return verdict.unknown(check_id, threshold, result, empty)
    value = f"{mean:.3g} % mean over {verdict.count(gpus or 0, 'GPU')} in {WINDOW}"
    status: Literal["ok", "warn"] = "ok"
    if not verdict.at_most(low, mean):
        status, value = "warn", f"{value}: below {low:g} %, GPUs paid for and idle"
    elif not verdict.at_most(mean, high):
        status, value = "warn", f"{value}: above {high:g} %, little headroom for peaks"
    return CheckResult(
        id=check_id,
        status=status,
        value=value,
        threshold=threshold,
        evidence=[evidence(result, value)],
    )


# -- Kubecost -------------------------------------------------------------------------------


def _window_text(window: str) -> str:
    """Kubecost's ``start,end`` in unix seconds as RFC 3339, as people read it."""
    try:
        start, end = (datetime.fromtimestamp(int(x), UTC) for x in window.split(","))
    except ValueError:
        return window
    return f"{start:%Y-%m-%dT%H:%M:%SZ}..{end:%Y-%m-%dT%H:%M:%SZ}"


def daily_cost(ask: Ask, thresholds: Thresholds, _: str) -> CheckResult:
    """Kubecost's total over the exact 24 h ending now, every namespace, under the budget."""
    check_id = "daily-cost"
    budget = thresholds.daily_budget_usd
    threshold = f"< {budget:,.2f} USD"
    result = ask("kubecost_daily_cost")
    data = facts.ok_obj(result)
    total = data.get("total")
    if total is None:
        empty = "no data: Kubecost has no allocations for the last 24 h"
        return verdict.unknown(check_id, threshold, result, empty)
    value = f"{total:,.2f} USD over {_window_text(str(data.get('window') or ''))}"
    spenders = sorted((data.get("by_namespace") or {}).items(), key=lambda kv: -kv[1])
    if spenders:
        value += "; most: " + ", ".join(f"{n} {c:,.2f}" for n, c in spenders[:3])
    if data.get("idle"):
        value += f"; idle (unallocated) {data['idle']:,.2f}"
    return CheckResult(
        id=check_id,
        status="ok" if verdict.below(float(total), budget) else "fail",
        value=value,
        threshold=threshold,
        evidence=[evidence(result, value)],
    )


CHECKS: dict[str, Check] = {
    "gpu-nodes-ready": gpu_nodes_ready,
    "model-pods-running": model_pods_running,
    "error-rate": error_rate,
    "p99-latency": p99_latency,
    "gpu-utilization": gpu_utilization,
    "gpu-memory": gpu_memory.check,
    "daily-cost": daily_cost,
}
"""Each id's check; ``ORDER`` lists them all, as ``codes.CHECK_IDS`` does (a test holds this)."""
