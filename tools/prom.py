"""The Prometheus tools: PromQL, firing alerts and rules, and the vLLM and serving-gateway views.

Each returns a ToolResult whose ``call`` is the exact PromQL sent (with the range and step for
range queries). The views use the metric names the real exporters expose (vLLM's, under both
its new and old KV-cache names; the gateway's, as the alert rules use them) and name the metrics
that were absent: an absent metric is unknown, never zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from tools import base, budget, promapi
from tools.toolbox import Toolbox

KV_CACHE = "vllm:kv_cache_usage_perc|vllm:gpu_cache_usage_perc"
"""vLLM renamed gpu_cache_usage_perc to kv_cache_usage_perc (V1 engine); clusters run both."""
E2E = "vllm:e2e_request_latency_seconds_bucket"
TTFT = "vllm:time_to_first_token_seconds_bucket"


def query(
    *, box: Toolbox, query: str, cluster: str | None = None, at: datetime | str | None = None
) -> base.ToolResult:
    """An instant PromQL query; a huge result comes back as its label shape and top series."""

    def fetch(remaining: float) -> base.Output:
        deadline = time.monotonic() + remaining
        c = promapi.client(box, cluster)
        when = promapi.parse_time(at, datetime.now(UTC)) if at is not None else None
        result = promapi.instant(c, query, deadline=deadline, at=when)
        if result and isinstance(result[0], dict) and "values" in result[0]:
            return promapi.render_matrix(result, box.limits.max_chars)
        return promapi.render_vector(promapi.samples(result), box.limits.max_chars)

    call = (
        query if at is None else f"{query} @ {at.isoformat() if isinstance(at, datetime) else at}"
    )
    return promapi.run(box=box, cluster=cluster, tool="prometheus_query", call=call, fetch=fetch)


def query_range(
    *,
    box: Toolbox,
    query: str,
    start: datetime | str | None = None,
    end: datetime | str = "now",
    step: str | float = "1m",
    since: str | None = None,
    cluster: str | None = None,
) -> base.ToolResult:
    """A range query, each series rendered as min / mean / max / last over the range.

    ``start``/``end`` are datetimes, ``now``, ``-<duration>`` or ISO 8601; ``since="1h"`` is
    ``start="-1h"`` (the default) for callers that think in look-back windows.
    """
    start = start if start is not None else f"-{since or '1h'}"
    problem: base.ToolError | None = None
    span: tuple[datetime, datetime, float] | None = None
    call = f"{query}  [range {start} .. {end}, step {step}]"
    try:
        span = _span(start, end, step)
        first, last, seconds = span
        call = f"{query}  [range {first:%Y-%m-%dT%H:%M:%SZ} .. {last:%Y-%m-%dT%H:%M:%SZ}"
        call += f", step {seconds:g}s]"
    except base.ToolError as e:
        problem = e

    def fetch(remaining: float) -> base.Output:
        if problem is not None or span is None:
            raise problem or base.Rejected(promapi.SOURCE, "no range")
        deadline = time.monotonic() + remaining
        c = promapi.client(box, cluster)
        first, last, seconds = span
        found = promapi.ranged(c, query, start=first, end=last, step=seconds, deadline=deadline)
        return promapi.render_matrix(found, box.limits.max_chars)

    return promapi.run(
        box=box, cluster=cluster, tool="prometheus_query_range", call=call, fetch=fetch
    )


def _span(
    start: datetime | str, end: datetime | str, step: str | float
) -> tuple[datetime, datetime, float]:
    now = datetime.now(UTC)
    first, last = promapi.parse_time(start, now), promapi.parse_time(end, now)
    seconds = promapi.duration(step) if isinstance(step, str) else float(step)
    if last <= first or seconds <= 0:
        raise base.Rejected(promapi.SOURCE, "a range needs start < end and a positive step")
    points = int((last - first).total_seconds() // seconds) + 1
    if points > promapi.MAX_POINTS:
        least = math.ceil((last - first).total_seconds() / promapi.MAX_POINTS)
        raise base.Rejected(
            promapi.SOURCE,
            f"{points:,} points per series is over Prometheus's limit of "
            f"{promapi.MAX_POINTS:,}: use a step of at least {least}s",
        )
    return first, last, seconds


def alerts(*, box: Toolbox, cluster: str | None = None) -> base.ToolResult:
    """Alerts Prometheus's rules hold now: firing first, then pending (``for`` not yet met)."""

    def fetch(remaining: float) -> base.Output:
        c = promapi.client(box, cluster)
        found = promapi.get_json(
            c, "/api/v1/alerts", "alerts", deadline=time.monotonic() + remaining
        )
        order = {"firing": 0, "pending": 1}
        found.sort(key=lambda a: (order.get(a.get("state", ""), 2), a.get("activeAt", "")))
        if not found:
            return base.Output(
                data=[], text="no firing or pending alerts in Prometheus", no_data=True
            )
        rows = [
            [
                a["labels"].get("alertname", "?"),
                a["labels"].get("severity", "-"),
                a.get("state", "?"),
                str(a.get("activeAt", ""))[:19].replace("T", " "),
                promapi.fmt(float(a.get("value", "nan"))),
                ", ".join(
                    f"{k}={v}"
                    for k, v in sorted(a["labels"].items())
                    if k not in ("alertname", "severity")
                ),
            ]
            for a in found
        ]
        firing = sum(1 for a in found if a.get("state") == "firing")
        head = f"{firing} firing, {len(found) - firing} pending"
        table, cut = budget.fit_table(
            ["ALERT", "SEVERITY", "STATE", "ACTIVE SINCE (UTC)", "VALUE", "LABELS"],
            rows,
            box.limits.max_chars - len(head) - 1,
            what="alerts",
        )
        return base.Output(data=found, text=f"{head}\n{table}", cut=cut)

    return promapi.run(
        box=box, cluster=cluster, tool="prometheus_alerts", call="GET /api/v1/alerts", fetch=fetch
    )


def rules(*, box: Toolbox, cluster: str | None = None) -> base.ToolResult:
    """Alerting and recording rules with their health: broken and firing rules first."""

    def fetch(remaining: float) -> base.Output:
        c = promapi.client(box, cluster)
        groups = promapi.get_json(
            c, "/api/v1/rules", "groups", deadline=time.monotonic() + remaining
        )
        found = [
            {
                "group": g.get("name", ""),
                "name": r.get("name", ""),
                "type": r.get("type", ""),
                "health": r.get("health", ""),
                "state": r.get("state", ""),
                "query": r.get("query", ""),
                "duration": r.get("duration", 0),
                "last_error": r.get("lastError", ""),
            }
            for g in groups
            for r in g.get("rules", [])
        ]
        if not found:
            return base.Output(data=[], text="Prometheus has no rules loaded", no_data=True)
        order = {"firing": 0, "pending": 1}
        found.sort(key=lambda r: (r["health"] == "ok", order.get(r["state"], 2)))
        rows = [
            [*(r[k] for k in ("group", "name", "type", "health", "state", "query", "last_error"))]
            for r in found
        ]
        text, cut = budget.fit_table(
            ["GROUP", "RULE", "TYPE", "HEALTH", "STATE", "EXPR", "LAST ERROR"],
            rows,
            box.limits.max_chars,
            what="rules",
        )
        return base.Output(data=found, text=text, cut=cut)

    return promapi.run(
        box=box, cluster=cluster, tool="prometheus_rules", call="GET /api/v1/rules", fetch=fetch
    )


def _quantile(q: float, bucket: str, by: str, sel: str, window: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({bucket}{sel}[{window}])))"


def vllm_status(
    *, box: Toolbox, cluster: str | None = None, model: str | None = None, window: str = "15m"
) -> base.ToolResult:
    """Per vLLM model: running, waiting, KV cache, preemptions and latency quantiles."""
    sel = promapi.matchers(model_name=model)
    kv = promapi.matchers(f'__name__=~"{KV_CACHE}"', model_name=model)
    parts = {
        "pods": f"count by (model_name) (vllm:num_requests_running{sel})",
        "running": f"sum by (model_name) (vllm:num_requests_running{sel})",
        "waiting": f"sum by (model_name) (vllm:num_requests_waiting{sel})",
        "kv_cache": f"max by (model_name) ({kv})",
        "kv_cache_peak": f"max by (model_name) (max_over_time({kv}[{window}]))",
        "preemptions_per_min": (
            f"60 * sum by (model_name) (rate(vllm:num_preemptions_total{sel}[{window}]))"
        ),
        "e2e_p50": _quantile(0.5, E2E, "model_name", sel, window),
        "e2e_p99": _quantile(0.99, E2E, "model_name", sel, window),
        "ttft_p99": _quantile(0.99, TTFT, "model_name", sel, window),
    }
    metric_of = {
        "running": "vllm:num_requests_running",
        "waiting": "vllm:num_requests_waiting",
        "kv_cache": "vllm:kv_cache_usage_perc (or vllm:gpu_cache_usage_perc)",
        "preemptions_per_min": "vllm:num_preemptions_total",
        "e2e_p99": E2E,
        "ttft_p99": TTFT,
    }
    columns = {
        "pods": ("PODS", promapi.fmt),
        "running": ("RUNNING", promapi.fmt),
        "waiting": ("WAITING", promapi.fmt),
        "kv_cache": ("KV NOW", _percent),
        "kv_cache_peak": (f"KV PEAK {window}", _percent),
        "preemptions_per_min": ("PREEMPT/MIN", _number),
        "e2e_p50": ("E2E P50", _seconds),
        "e2e_p99": ("E2E P99", _seconds),
        "ttft_p99": ("TTFT P99", _seconds),
    }
    return _view(
        box=box,
        cluster=cluster,
        tool="vllm_status",
        parts=parts,
        group="model_name",
        metric_of=metric_of,
        columns=columns,
        about=f"vLLM per model (running, waiting, KV now; peak, rates, latency over {window})",
        window=window,
    )


def gateway_stats(
    *, box: Toolbox, cluster: str | None = None, window: str = "24h", model: str | None = None
) -> base.ToolResult:
    """Per model at the serving gateway: request rate, error ratio and p99 latency."""
    sel = promapi.matchers(model=model)
    total, errors = f"inference_request_total{sel}", f"inference_request_errors_total{sel}"
    parts = {
        "rps": f"sum by (model) (rate({total}[{window}]))",
        "requests": f"sum by (model) (increase({total}[{window}]))",
        "errors": f"sum by (model) (increase({errors}[{window}]))",
        "error_ratio": (
            f"sum by (model) (rate({errors}[{window}])) / sum by (model) (rate({total}[{window}]))"
        ),
        "p99": _quantile(0.99, "inference_request_duration_seconds_bucket", "model", sel, window),
        "all_rps": f"sum(rate({total}[{window}]))",
        "all_error_ratio": f"sum(rate({errors}[{window}])) / sum(rate({total}[{window}]))",
    }
    metric_of = {
        "rps": "inference_request_total",
        "errors": "inference_request_errors_total",
        "p99": "inference_request_duration_seconds_bucket",
    }
    columns = {
        "rps": ("REQ/S", _number),
        "requests": (f"REQUESTS {window}", _number),
        "errors": ("ERRORS", _number),
        "error_ratio": ("ERROR %", _percent),
        "p99": ("P99", _seconds),
    }
    return _view(
        box=box,
        cluster=cluster,
        tool="gateway_stats",
        parts=parts,
        group="model",
        metric_of=metric_of,
        columns=columns,
        about=f"serving gateway per model over {window}",
        window=window,
        extra=_gateway_overall,
    )


Extra = Callable[[dict[str, list[promapi.Sample]], dict[str, Any]], list[str]]
"""Lines a view adds from its parts, putting what they say into its data as well."""


def _view(
    *,
    box: Toolbox,
    cluster: str | None,
    tool: str,
    parts: dict[str, str],
    group: str,
    metric_of: Mapping[str, str],
    columns: Mapping[str, tuple[str, Callable[[float | None], str]]],
    about: str,
    window: str,
    extra: Extra | None = None,
) -> base.ToolResult:
    """One tagged query rendered as one row per ``group`` value, naming the absent metrics."""
    promql = promapi.tagged(parts)

    def fetch(remaining: float) -> base.Output:
        promapi.duration(window)
        c = promapi.client(box, cluster)
        result = promapi.instant(c, promql, deadline=time.monotonic() + remaining)
        found = promapi.split(promapi.samples(result))
        missing = promapi.absent(found, metric_of)
        grouped = promapi.by_label({k: v for k, v in found.items() if k in columns}, group)
        data: dict[str, Any] = {
            "window": window,
            "models": {n: {k: grouped[n].get(k) for k in columns} for n in sorted(grouped)},
            "absent": missing,
        }
        if not grouped:
            text = f"no data for the {about}: absent {', '.join(missing)}"
            return base.Output(data=data, text=text, no_data=True)
        rows = [
            [name] + [show(numbers.get(k)) for k, (_, show) in columns.items()]
            for name, numbers in data["models"].items()
        ]
        headers = [group.upper()] + [title for title, _ in columns.values()]
        room = box.limits.max_chars - 400
        table, cut = budget.fit_table(headers, rows, room, what="models")
        lines = [f"{about}:", table, *(extra(found, data) if extra else [])]
        if missing:
            lines.append(f"no data in Prometheus for: {', '.join(missing)} (unknown, not zero)")
        return base.Output(data=data, text="\n".join(lines), cut=cut)

    return promapi.run(box=box, cluster=cluster, tool=tool, call=promql, fetch=fetch)


def _gateway_overall(found: dict[str, list[promapi.Sample]], data: dict[str, Any]) -> list[str]:
    """All models together (the daily error-rate check) and the worst model's p99."""
    rps = found.get("all_rps", [({}, math.nan)])[0][1]
    ratio = found.get("all_error_ratio", [({}, math.nan)])[0][1]
    data["all"] = {"rps": rps, "error_ratio": ratio}
    p99s = [
        (numbers["p99"], name)
        for name, numbers in data["models"].items()
        if numbers.get("p99") is not None and not math.isnan(numbers["p99"])
    ]
    worst = max(p99s, default=None)
    data["worst_p99"] = {"model": worst[1], "seconds": worst[0]} if worst else None
    line = f"all models: {_number(rps)} req/s, error ratio {_percent(ratio)}"
    return [line + (f"; worst p99 {_seconds(worst[0])} ({worst[1]})" if worst else "")]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{promapi.fmt(value * 100, 3)}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{promapi.fmt(value, 3)}s"


def _number(value: float | None) -> str:
    return promapi.fmt(value, 3)
