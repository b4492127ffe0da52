"""Requests and collectives that do not arrive in time (runbook ``network-latency``).

What an SRE tells apart here: an NCCL collective timing out (the watchdog's line, and whether
the ranks talk over EFA or plain TCP); a resolver failing repeatedly, not once hours ago; a
proxy giving up before a healthy model answers (engines not queueing, yet their end-to-end
latency beyond the proxy's timeout) as opposed to a model that hangs or is down; and stateless
replicas all in one zone, which is not one tensor/pipeline-parallel group that must stay together.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion
from tools import instance_types
from tools.base import ToolResult

NCCL = "network-latency/nccl-timeout"
DNS = "network-latency/dns-failure"
REQUEST_TIMEOUT = "network-latency/request-timeout"
ONE_ZONE = "network-latency/single-zone-replicas"
CODES = frozenset({NCCL, DNS, REQUEST_TIMEOUT, ONE_ZONE})

EFA = "vpc.amazonaws.com/efa"
GPU = "nvidia.com/gpu"
HOUR = timedelta(hours=1)
DNS_REPEATED = 3
"""Resolver errors within the hour that make a finding (one blip is not one)."""
_NCCL = re.compile(
    r"Watchdog caught collective operation timeout|ProcessGroupNCCL.*(?:timed out|Timeout\(ms\))"
    r"|NCCL (?:WARN|ERROR).*(?:timeout|timed out)|NCCL communicator was aborted"
)
_NO_EFA = re.compile(r"NET/IB : No device found|Using network Socket")
_DNS = r"temporary failure in name resolution|nxdomain|no such host|name or service not known"
_DNS += r"|could not resolve host"
_TIMEOUT = r'upstream request timeout|ReadTimeout|"event":"upstream_timeout"'
_MODEL = re.compile(r'"model"\s*:\s*"([^"]+)"')
_LATENCY = re.compile(r'"(?:latency|elapsed)_ms"\s*:\s*(\d+)')
_PP = re.compile(r"--pipeline-parallel-size[= ](\d+)")
_TP = re.compile(r"--tensor-parallel-size[= ](\d+)")
_GROUP_ROLES = {"head", "worker", "leader"}


def _insights(pattern: str, limit: int = 100) -> str:
    return (
        f"fields @timestamp, @logStream, @message | filter @message like /{pattern}/"
        f" | sort @timestamp desc | limit {limit}"
    )


def _rows(result: ToolResult) -> list[dict[str, Any]]:
    data = result.data if result.status == "ok" else None
    data = data.get("rows") if isinstance(data, dict) else data
    return [x for x in data if isinstance(x, dict)] if isinstance(data, list) else []


def _obj(result: ToolResult) -> dict[str, Any]:
    return result.data if result.status == "ok" and isinstance(result.data, dict) else {}


def _workload(pod: dict[str, Any]) -> str | None:
    owner = str(pod.get("owner") or "")
    if not owner.startswith("ReplicaSet/"):
        return None
    return owner.removeprefix("ReplicaSet/").rsplit("-", 1)[0]


def _fix(code: str, target: str, reason: str) -> FixSuggestion:
    return FixSuggestion(code=code, target=target, reason=reason)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _after(value: Any, cutoff: datetime) -> bool:
    """Whether the ISO time ``value`` is after ``cutoff`` (an unreadable time counts as recent)."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC) >= cutoff
    except ValueError:
        return True


class _Cluster:
    """The namespace's pods, Deployments and nodes, read once through the investigation."""

    def __init__(self, inv: Investigation) -> None:
        self.inv, self.ns = inv, inv.subject.namespace
        self.pods_result = inv.tool("list_pods", namespace=self.ns)
        self.pods = _rows(self.pods_result)
        self.deployments = _rows(inv.tool("list_deployments", namespace=self.ns))
        self.nodes_result = inv.tool("list_nodes")
        self.nodes = {str(n["name"]): n for n in _rows(self.nodes_result)}

    def in_scope(self) -> list[dict[str, Any]]:
        s = self.inv.subject
        if s.pods or s.workloads:
            return [p for p in self.pods if p["name"] in s.pods or _workload(p) in s.workloads]
        return self.pods

    def pods_of(self, workload: str) -> list[dict[str, Any]]:
        return [p for p in self.pods if _workload(p) == workload]

    def model_of(self, workload: str) -> str | None:
        found = [d for d in self.deployments if d["name"] == workload]
        return (found[0].get("labels") or {}).get("model") if found else None

    def workloads_of(self, model: str) -> list[str]:
        return [
            d["name"] for d in self.deployments if (d.get("labels") or {}).get("model") == model
        ]

    def describe(self, workload: str) -> tuple[ToolResult, dict[str, Any]]:
        result = self.inv.tool("k8s_describe", kind="deployment", name=workload, namespace=self.ns)
        return result, _obj(result)

    def target(self, workload: str) -> str:
        return f"deployment/{self.ns}/{workload}"


def _env(described: dict[str, Any], name: str) -> str | None:
    for container in described.get("containers") or []:
        for var in container.get("env") or []:
            if var.get("name") == name and var.get("value") is not None:
                return str(var["value"])
    return None


# -- NCCL ----------------------------------------------------------------------------------------
def nccl_timeout(inv: Investigation) -> list[Finding]:
    """NCCL collectives timing out; EFA missing when the nodes have it and the pods ask none."""
    cluster = _Cluster(inv)
    hits: dict[str, list[Evidence]] = {}
    socket: dict[str, Evidence] = {}
    for pod in cluster.in_scope():
        workload = _workload(pod)
        if workload is None or (pod.get("all_ready") and not pod.get("restarts")):
            continue
        for previous in (True, False) if pod.get("last_termination") else (False,):
            grep = f"{_NCCL.pattern}|{_NO_EFA.pattern}"
            ns, name = pod["namespace"], pod["name"]
            result = inv.tool("pod_logs", namespace=ns, pod=name, previous=previous, grep=grep)
            where = f"pod/{ns}/{name} " + ("previous logs" if previous else "logs")
            for line in str(_obj(result).get("log") or "").splitlines():
                if _NCCL.search(line) and len(hits.setdefault(workload, [])) < 2:
                    hits[workload].append(evidence(result, line.strip()[:400], where=where))
                elif _NO_EFA.search(line):
                    socket.setdefault(workload, evidence(result, line.strip(), where=where))
    _nccl_from_logs(inv, cluster, hits)
    findings: list[Finding] = []
    done: set[str] = set()
    for workload, seen in hits.items():
        model = cluster.model_of(workload)
        group = sorted({workload, *(cluster.workloads_of(model) if model else [])})
        if not seen or done & set(group):
            continue
        done |= set(group)
        findings.append(_nccl_finding(cluster, workload, group, seen, socket))
    return findings


def _nccl_from_logs(inv: Investigation, cluster: _Cluster, hits: dict[str, list[Evidence]]) -> None:
    """CloudWatch keeps the watchdog's line after the pod's previous log is gone."""
    result = inv.tool("logs_insights_query", query=_insights(_NCCL.pattern, 20), since="1h")
    scope = sorted({w for p in cluster.in_scope() if (w := _workload(p))}, key=len, reverse=True)
    for row in _rows(result):
        stream = str(row.get("@logStream"))
        workload = next((w for w in scope if w in stream), None)
        if workload is not None and not hits.get(workload):
            hits[workload] = [evidence(result, str(row.get("@message"))[:400], where=stream)]


def _nccl_finding(
    cluster: _Cluster,
    workload: str,
    group: list[str],
    seen: list[Evidence],
    socket: dict[str, Evidence],
) -> Finding:
    found = list(seen)
    fixes: list[FixSuggestion] = []
    for member in group:
        result, described = cluster.describe(member)
        target = cluster.target(member)
        timeout = _env(described, "NCCL_TIMEOUT")
        found += [evidence(result, f"NCCL_TIMEOUT={timeout}", where=target)] if timeout else []
        fixes.append(_fix("increase-nccl-timeout", target, "survive slow collectives"))
        efa = _missing_efa(cluster, member, described)
        if efa is not None:
            found += [efa, socket[member]] if member in socket else [efa]
            fixes.append(_fix("enable-efa", target, "run the collectives over EFA, not TCP"))
    tcp = " over TCP sockets, not EFA" if any(f.code == "enable-efa" for f in fixes) else ""
    return Finding(
        code=NCCL,
        summary=f"NCCL collectives of {', '.join(group)} time out{tcp}; the watchdog stops the "
        "engine.",
        confidence=0.9,
        evidence=found,
        target=cluster.target(workload),
        fixes=fixes,
    )


def _missing_efa(cluster: _Cluster, workload: str, described: dict[str, Any]) -> Evidence | None:
    """Evidence that ``workload``'s nodes have EFA interfaces its pods do not request."""
    for c in described.get("containers") or []:
        if EFA in (c.get("requests") or {}) or EFA in (c.get("limits") or {}):
            return None
    for pod in cluster.pods_of(workload):
        node = cluster.nodes.get(str(pod.get("node")))
        kind = instance_types.lookup(str(node.get("instance_type"))) if node else None
        if node and kind and kind.efa:
            value = (
                f"node {node['name']} is {kind.name} with {kind.efa} EFA interfaces; "
                f"pod {pod['name']} requests no {EFA}"
            )
            return evidence(cluster.nodes_result, value, where=f"node/{node['name']}")
    return None


# -- DNS -------------------------------------------------------------------------------------------
def dns_failure(inv: Investigation) -> list[Finding]:
    """Name resolution failing repeatedly in the last hour (one old error is not a finding)."""
    result = inv.tool("logs_insights_query", query=_insights(f"(?i)({_DNS})"), since="1h")
    rows = _rows(result)
    if len(rows) < DNS_REPEATED:
        return []
    found = [evidence(result, f"{len(rows)} resolver errors in the last hour")]
    found += [evidence(result, str(r["@message"])[:400], where=r["@logStream"]) for r in rows[:2]]
    summary = f"Name resolution failed {len(rows)} times in the last hour: check CoreDNS."
    return [Finding(code=DNS, summary=summary, confidence=0.8, evidence=found)]


# -- request timeout -------------------------------------------------------------------------------
def request_timeout(inv: Investigation) -> list[Finding]:
    """The proxy gives up before a healthy, non-queueing model finishes its answers."""
    result = inv.tool("logs_insights_query", query=_insights(_TIMEOUT, 200), since="1h")
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(result):
        if m := _MODEL.search(str(row.get("@message"))):
            by_model.setdefault(m.group(1), []).append(row)
    models = sorted(
        m for m in set(inv.subject.models) or set(by_model) if len(by_model.get(m, [])) > 1
    )
    if not models:
        return []
    cluster = _Cluster(inv)
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
                fixes=[_fix("increase-request-timeout", target, "let long answers finish")]
                if target
                else [],
            )
        )
    return findings


def _proxy(cluster: _Cluster) -> tuple[str, float | None, Evidence] | None:
    """The Deployment that proxies to the models: a GPU-less one setting REQUEST_TIMEOUT."""
    for deployment in (d for d in cluster.deployments if not d.get("gpus_per_pod")):
        result, described = cluster.describe(deployment["name"])
        value = _env(described, "REQUEST_TIMEOUT")
        if value is not None:
            seen = evidence(
                result, f"REQUEST_TIMEOUT={value}", where=cluster.target(deployment["name"])
            )
            return deployment["name"], _number(value), seen
    return None


def _healthy_but_slow(
    inv: Investigation,
    cluster: _Cluster,
    model: str,
    proxy: tuple[str, float | None, Evidence] | None,
    timeout_row: dict[str, Any],
) -> list[Evidence] | None:
    """Evidence that ``model`` is up, not queueing, and slower than the proxy allows; else None."""
    pods = [p for w in cluster.workloads_of(model) for p in cluster.pods_of(w)]
    ended = [t for p in pods if (t := (p.get("last_termination") or {}).get("finished_at"))]
    restarted = any(_after(t, inv.now - HOUR) for t in ended)
    if not pods or restarted or not all(p.get("all_ready") for p in pods):
        return None  # down, restarting or unknown: not a healthy model
    limit = proxy[1] if proxy else None
    if limit is None and (m := _LATENCY.search(str(timeout_row.get("@message")))):
        limit = int(m.group(1)) / 1000
    status = inv.tool("vllm_status", model=model, window="1h")
    engine = (_obj(status).get("models") or {}).get(model) or {}
    waiting, p99 = _number(engine.get("waiting")), _number(engine.get("e2e_p99"))
    if limit is None or waiting is None or p99 is None or waiting >= 1 or p99 <= limit:
        return None
    ready = f"{len(pods)} pods of {model} Running and Ready, no restart in the last hour"
    value = f"vLLM {model} over 1h: {waiting:g} waiting, e2e p99 {p99:.1f}s > timeout {limit:g}s"
    found = [evidence(status, value), evidence(cluster.pods_result, ready)]
    return [proxy[2], *found] if proxy else found


# -- replicas in one zone --------------------------------------------------------------------------
def single_zone_replicas(inv: Investigation) -> list[Finding]:
    """All replicas of a stateless model in one zone while it could run in others."""
    cluster = _Cluster(inv)
    findings: list[Finding] = []
    for workload in inv.subject.workloads or [d["name"] for d in cluster.deployments]:
        pods = [p for p in cluster.pods_of(workload) if p.get("node") in cluster.nodes]
        zones = {cluster.nodes[p["node"]].get("zone") for p in pods}
        if len(pods) < 2 or len(zones) != 1:
            continue
        zone, where = str(zones.pop()), cluster.target(workload)
        result, described = cluster.describe(workload)
        placed = evidence(
            cluster.nodes_result, f"all {len(pods)} pods of {workload} run in {zone}", where=where
        )
        group = _parallel_group(cluster, workload, described)
        if group:
            why = evidence(result, group, where=where)
            summary = f"{workload} sits in one zone on purpose: {group}."
            findings.append(
                Finding(
                    code=ONE_ZONE,
                    summary=summary,
                    confidence=0.9,
                    evidence=[placed, why],
                    target=where,
                    ruled_out=True,
                )
            )
            continue
        others = _other_zones(inv, cluster, pods, zone)
        if not others:
            continue
        impact = _zone_impact(cluster, zone, pods)
        findings.append(
            Finding(
                code=ONE_ZONE,
                summary=f"All replicas of {workload} run in {zone} although {', '.join(others)} "
                "could host them, so one zone's trouble takes the whole model down.",
                confidence=0.9 if impact else 0.5,
                evidence=[placed, *impact],
                target=where,
                fixes=[_fix("add-zone-anti-affinity", where, "spread the replicas over zones")],
            )
        )
    return findings


def _parallel_group(cluster: _Cluster, workload: str, described: dict[str, Any]) -> str | None:
    """Why the workload's pods are one model instance (TP/PP over nodes), or None."""
    containers = described.get("containers") or []
    command = " ".join(
        str(x) for c in containers for x in (c.get("command") or []) + (c.get("args") or [])
    )
    role = str((described.get("labels") or {}).get("role") or "")
    pp, tp = _PP.search(command), _TP.search(command)
    gpus = max((_number((c.get("requests") or {}).get(GPU)) or 0 for c in containers), default=0)
    model = cluster.model_of(workload)
    if "ray start" in command or "--distributed-executor-backend ray" in command:
        return "its pods form one Ray cluster (tensor/pipeline-parallel group)"
    if pp and int(pp.group(1)) > 1:
        return f"pipeline-parallel size {pp.group(1)} spans its pods"
    if tp and gpus and int(tp.group(1)) > gpus:
        return f"tensor-parallel size {tp.group(1)} exceeds the {gpus:g} GPUs of one pod"
    if role in _GROUP_ROLES or (model and len(cluster.workloads_of(model)) > 1):
        return f"it is the {role or 'part'} of the multi-node group serving {model}"
    return None


def _other_zones(
    inv: Investigation, cluster: _Cluster, pods: list[dict[str, Any]], zone: str
) -> list[str]:
    """Zones the workload could use: its kind of node elsewhere, or its NodePools' zones."""
    gpu = any(p.get("gpus") for p in pods)
    zones = {
        str(n["zone"])
        for n in cluster.nodes.values()
        if n.get("zone") and (n.get("gpu_capacity") or not gpu)
    }
    pools = {str(cluster.nodes[p["node"]].get("nodepool")) for p in pods}
    for pool in _obj(inv.tool("karpenter_status")).get("nodepools") or []:
        for requirement in pool.get("requirements") or [] if pool.get("name") in pools else []:
            if str(requirement).startswith("topology.kubernetes.io/zone In ["):
                zones |= {
                    z.strip() for z in str(requirement).split("[", 1)[1].rstrip("]").split(",")
                }
    return sorted(zones - {zone})


def _zone_impact(cluster: _Cluster, zone: str, pods: list[dict[str, Any]]) -> list[Evidence]:
    """What the zone's trouble already does: nodes NotReady or flapping, pods not ready."""
    in_zone = {n for n, node in cluster.nodes.items() if node.get("zone") == zone}
    found = [
        evidence(cluster.nodes_result, f"node {n} in {zone}: NotReady", where=f"node/{n}")
        for n in sorted(in_zone)
        if not cluster.nodes[n].get("ready")
    ]
    events = cluster.inv.tool("k8s_events", kind="node")
    for event in _rows(events):
        node = str(event.get("object")).removeprefix("Node/")
        recent = _after(event.get("last_seen"), cluster.inv.now - HOUR)
        if node in in_zone and event.get("reason") == "NodeNotReady" and recent:
            value = f"NodeNotReady x{event.get('count', 1)}, last {event.get('ago')} ago"
            found.append(evidence(events, value, where=f"node/{node}"))
    unready = [p["name"] for p in pods if not p.get("all_ready")]
    if unready:
        found.insert(0, evidence(cluster.pods_result, f"pods not ready: {', '.join(unready)}"))
    return found[:5]


DETECTORS: list[Detector] = [nccl_timeout, dns_failure, request_timeout, single_zone_replicas]
