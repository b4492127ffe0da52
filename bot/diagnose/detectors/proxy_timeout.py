"""A proxy that gives up before a healthy model answers (``network-latency/request-timeout``).

The proxy's timeouts alone say nothing about why: a model that hangs, is down or restarting, or
queues requests also makes a proxy time out, and raising the timeout then only hides it. So the
finding needs the model up (all pods Ready, no restart in the hour), not queueing, and its own
end-to-end latency beyond the proxy's timeout.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from bot.diagnose.detectors import network_facts as net
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding

REQUEST_TIMEOUT = "network-latency/request-timeout"
CODES = frozenset({REQUEST_TIMEOUT})

HOUR = timedelta(hours=1)
_TIMEOUT = r'upstream request timeout|ReadTimeout|"event":"upstream_timeout"'
_MODEL = re.compile(r'"model"\s*:\s*"([^"]+)"')
_LATENCY = re.compile(r'"(?:latency|elapsed)_ms"\s*:\s*(\d+)')

_Proxy = tuple[str, float | None, Evidence]
"""The proxy Deployment, its REQUEST_TIMEOUT in seconds, and where that was read."""


def request_timeout(inv: Investigation) -> list[Finding]:
    """The proxy gives up before a healthy, non-queueing model finishes its answers."""
    result = inv.tool("logs_insights_query", query=net.insights(_TIMEOUT, 200), since="1h")
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in net.rows(result):
        if m := _MODEL.search(str(row.get("@message"))):
            by_model.setdefault(m.group(1), []).append(row)
    models = sorted(
        m for m in set(inv.subject.models) or set(by_model) if len(by_model.get(m, [])) > 1
    )
    if not models:
        return []
    cluster = net.Cluster(inv)
    proxy = _proxy(cluster)
    findings: list[Finding] = []
    for model in models:
        rows = by_model[model]
        found = _healthy_but_slow(inv, cluster, model, proxy, rows[0])
        if found is None:
            continue
        seen = [
            evidence(result, f"{len(rows)} proxy timeouts for {model} in the last hour"),
            evidence(result, str(rows[0].get("@message"))[:400], where=rows[0].get("@logStream")),
        ]
        target = cluster.target(proxy[0]) if proxy else None
        findings.append(
            Finding(
                code=REQUEST_TIMEOUT,
                summary=f"The proxy gives up on {model} after its timeout while the model, healthy "
                "and not queueing, needs longer to answer: raise the proxy's request timeout.",
                confidence=0.9 if target else 0.6,
                evidence=[*seen, *found],
                target=target,
                fixes=[net.fix("increase-request-timeout", target, "let long answers finish")]
                if target
                else [],
            )
        )
    return findings


def _proxy(cluster: net.Cluster) -> _Proxy | None:
    """The Deployment that proxies to the models: a GPU-less one setting REQUEST_TIMEOUT."""
    for deployment in (d for d in cluster.deployments if not d.get("gpus_per_pod")):
        result, described = cluster.describe(deployment["name"])
        value = net.env(described, "REQUEST_TIMEOUT")
        if value is not None:
            seen = evidence(
                result, f"REQUEST_TIMEOUT={value}", where=cluster.target(deployment["name"])
            )
            return deployment["name"], net.number(value), seen
    return None


def _healthy_but_slow(
    inv: Investigation,
    cluster: net.Cluster,
    model: str,
    proxy: _Proxy | None,
    timeout_row: dict[str, Any],
) -> list[Evidence] | None:
    """Evidence that ``model`` is up, not queueing, and slower than the proxy allows; else None."""
    pods = [p for w in cluster.workloads_of(model) for p in cluster.pods_of(w)]
    ended = [t for p in pods if (t := (p.get("last_termination") or {}).get("finished_at"))]
    restarted = any(net.after(t, inv.now - HOUR) for t in ended)
    if not pods or restarted or not all(p.get("all_ready") for p in pods):
        return None  # down, restarting or unknown: not a healthy model
    limit = proxy[1] if proxy else None
    if limit is None and (m := _LATENCY.search(str(timeout_row.get("@message")))):
        limit = int(m.group(1)) / 1000
    status = inv.tool("vllm_status", model=model, window="1h")
    engine = (net.obj(status).get("models") or {}).get(model) or {}
    waiting, p99 = net.number(engine.get("waiting")), net.number(engine.get("e2e_p99"))
    if limit is None or waiting is None or p99 is None or waiting >= 1 or p99 <= limit:
        return None
    ready = f"{len(pods)} pods of {model} Running and Ready, no restart in the last hour"
    value = f"vLLM {model} over 1h: {waiting:g} waiting, e2e p99 {p99:.1f}s > timeout {limit:g}s"
    found = [evidence(status, value), evidence(cluster.pods_result, ready)]
    return [proxy[2], *found] if proxy else found


DETECTORS: list[Detector] = [request_timeout]
