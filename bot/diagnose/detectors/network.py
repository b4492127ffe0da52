"""Requests and collectives that do not arrive in time (runbook ``network-latency``).

What an SRE tells apart here: an NCCL collective timing out (the watchdog's line, and whether
the ranks talk over EFA or plain TCP) — unless a GPU of the group reported a hardware XID, which
hangs the collective and makes the timeout a consequence that no NCCL setting fixes; a resolver
failing repeatedly, not once hours ago. The proxy's timeouts (``proxy_timeout``) and replicas in
one zone (``zones``) have modules of their own; their detectors are listed here too, so the
runbook's codes come from one place.
"""

from __future__ import annotations

import re
from typing import Any

from bot.diagnose.detectors import gpu_facts, proxy_timeout, zones
from bot.diagnose.detectors import network_facts as net
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion
from tools import gpu, instance_types

NCCL = "network-latency/nccl-timeout"
DNS = "network-latency/dns-failure"
REQUEST_TIMEOUT = proxy_timeout.REQUEST_TIMEOUT
ONE_ZONE = zones.ONE_ZONE
CODES = frozenset({NCCL, DNS, REQUEST_TIMEOUT, ONE_ZONE})

EFA = "vpc.amazonaws.com/efa"
DNS_REPEATED = 3
"""Resolver errors within the hour that make a finding (one blip is not one)."""
_NCCL = re.compile(
    r"Watchdog caught collective operation timeout|ProcessGroupNCCL.*(?:timed out|Timeout\(ms\))"
    r"|NCCL (?:WARN|ERROR).*(?:timeout|timed out)|NCCL communicator was aborted"
)
_NO_EFA = re.compile(r"NET/IB : No device found|Using network Socket")
# glibc/Python, curl, Node.js and Go resolvers: Go names the DNS server it asked ("lookup HOST on
# 172.20.0.10:53: ... i/o timeout") when CoreDNS is overloaded or unreachable.
_DNS = r"temporary failure in name resolution|nxdomain|no such host|name or service not known"
_DNS += r"|could not resolve host|getaddrinfo eai_again|lookup \S+ on \S+:53: "
_HARDWARE_XID = "last_over_time(DCGM_FI_DEV_XID_ERRORS[1h]) > 0"


# -- NCCL ----------------------------------------------------------------------------------------
def nccl_timeout(inv: Investigation) -> list[Finding]:
    """NCCL collectives timing out; EFA missing when the nodes have it and the pods ask none."""
    cluster = net.Cluster(inv)
    hits: dict[str, list[Evidence]] = {}
    socket: dict[str, Evidence] = {}
    for pod in cluster.in_scope():
        workload = net.workload_of(pod)
        if workload is None or (pod.get("all_ready") and not pod.get("restarts")):
            continue
        for previous in (True, False) if pod.get("last_termination") else (False,):
            grep = f"{_NCCL.pattern}|{_NO_EFA.pattern}"
            ns, name = pod["namespace"], pod["name"]
            result = inv.tool("pod_logs", namespace=ns, pod=name, previous=previous, grep=grep)
            where = f"pod/{ns}/{name} " + ("previous logs" if previous else "logs")
            for line in str(net.obj(result).get("log") or "").splitlines():
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
        faulty = _hardware_xids(inv, cluster, group)
        if faulty:
            findings.append(_after_xid(cluster, workload, group, seen, faulty))
        else:
            findings.append(_nccl_finding(cluster, workload, group, seen, socket))
    return findings


def _nccl_from_logs(
    inv: Investigation, cluster: net.Cluster, hits: dict[str, list[Evidence]]
) -> None:
    """CloudWatch keeps the watchdog's line after the pod's previous log is gone."""
    result = inv.tool("logs_insights_query", query=net.insights(_NCCL.pattern, 20), since="1h")
    scope = sorted(
        {w for p in cluster.in_scope() if (w := net.workload_of(p))}, key=len, reverse=True
    )
    for row in net.rows(result):
        stream = str(row.get("@logStream"))
        workload = next((w for w in scope if w in stream), None)
        if workload is not None and not hits.get(workload):
            hits[workload] = [evidence(result, str(row.get("@message"))[:400], where=stream)]


def _hardware_xids(inv: Investigation, cluster: net.Cluster, group: list[str]) -> list[Evidence]:
    """Hardware XIDs DCGM saw in the last hour on the nodes the group's pods run on."""
    nodes = {str(p["node"]) for w in group for p in cluster.pods_of(w) if p.get("node")}
    result, rows = gpu_facts.query(inv, _HARDWARE_XID)
    found = []
    for labels, value in rows:
        node = gpu_facts.node_name(inv, labels)
        xid = gpu.xid(int(value))
        if node in nodes and xid.cause == "hardware":
            where = f"GPU {labels.get('gpu', '?')}"
            text = f"DCGM_FI_DEV_XID_ERRORS = {int(value)} ({xid.meaning}) on {where}"
            found.append(evidence(result, text, where=f"node/{node}"))
    return found


def _after_xid(
    cluster: net.Cluster,
    workload: str,
    group: list[str],
    seen: list[Evidence],
    faulty: list[Evidence],
) -> Finding:
    """The collective hung because a GPU of the group failed: report it, suggest no NCCL fix."""
    nodes = ", ".join(sorted({str(e.where).removeprefix("node/") for e in faulty}))
    return Finding(
        code=NCCL,
        summary=f"NCCL collectives of {', '.join(group)} time out because a GPU on {nodes} "
        "reported a hardware XID: the timeout is a consequence; take the node out of service "
        "(gpu-hardware-fault) rather than tune NCCL.",
        confidence=0.7,
        evidence=[*seen, *faulty[:2]],
        target=cluster.target(workload),
    )


def _nccl_finding(
    cluster: net.Cluster,
    workload: str,
    group: list[str],
    seen: list[Evidence],
    socket: dict[str, Evidence],
) -> Finding:
    found = list(seen)
    fixes: list[FixSuggestion] = []
    nodes = {p.get("node") for w in group for p in cluster.pods_of(w) if p.get("node")}
    for member in group:
        result, described = cluster.describe(member)
        target = cluster.target(member)
        timeout = net.env(described, "NCCL_TIMEOUT")
        found += [evidence(result, f"NCCL_TIMEOUT={timeout}", where=target)] if timeout else []
        fixes.append(net.fix("increase-nccl-timeout", target, "survive slow collectives"))
        # Within one node the ranks talk over NVLink; EFA only carries collectives between nodes.
        efa = _missing_efa(cluster, member, described) if len(nodes) > 1 else None
        if efa is not None:
            found += [efa, socket[member]] if member in socket else [efa]
            fixes.append(net.fix("enable-efa", target, "run the collectives over EFA, not TCP"))
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


def _missing_efa(cluster: net.Cluster, workload: str, described: dict[str, Any]) -> Evidence | None:
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
    result = inv.tool("logs_insights_query", query=net.insights(f"(?i)({_DNS})"), since="1h")
    rows = net.rows(result)
    if len(rows) < DNS_REPEATED:
        return []
    found = [evidence(result, f"{len(rows)} resolver errors in the last hour")]
    found += [evidence(result, str(r["@message"])[:400], where=r["@logStream"]) for r in rows[:2]]
    summary = f"Name resolution failed {len(rows)} times in the last hour: check CoreDNS."
    return [Finding(code=DNS, summary=summary, confidence=0.8, evidence=found)]


DETECTORS: list[Detector] = [
    nccl_timeout,
    dns_failure,
    *proxy_timeout.DETECTORS,
    *zones.DETECTORS,
]
