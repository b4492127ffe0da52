"""Why Karpenter gives a Pending pod no node (runbook ``karpenter-provisioning-failure``).

The scheduler's "Insufficient nvidia.com/gpu" only says no existing node fits, which is what
Karpenter is for; the cause is in Karpenter's own objects. A NodeClaim that fails to launch for
capacity is read against its NodePool's requirements: a pool pinned to one zone, or to spot, has
a cause an SRE can fix in the pool; only when neither explains it is the cloud out of capacity.
A pool whose limits leave no room never gets as far as a NodeClaim ("exceed limits for
nodepool"), so that is read from the pod's events and the pool's limits against its usage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion
from tools import instance_types
from tools.base import ToolResult

PREFIX = "karpenter-provisioning-failure"
CAPACITY = f"{PREFIX}/insufficient-capacity"
SINGLE_ZONE = f"{PREFIX}/single-zone"
SPOT_ONLY = f"{PREFIX}/spot-only"
LIMIT = f"{PREFIX}/nodepool-limit"
CODES = frozenset({CAPACITY, SINGLE_ZONE, SPOT_ONLY, LIMIT})

ZONE_KEY = "topology.kubernetes.io/zone"
CAPACITY_KEY = "karpenter.sh/capacity-type"
TYPE_KEY = "node.kubernetes.io/instance-type"
GPU = "nvidia.com/gpu"
RECENT = timedelta(hours=3)
_ICE = re.compile(
    r"InsufficientCapacity|insufficient capacity|no Spot capacity|UnfulfillableCapacity", re.I
)
_LIMIT = re.compile(r'exceed limits for nodepool:?\s*\\?"?([\w.-]+)')
_ZONE = re.compile(r"\b[a-z]{2}-[a-z]+-\d[a-z]\b")
_REQUIREMENT = re.compile(r"^(\S+) (\S+)(?: \[(.*)\])?$")
_LOG_QUERY = (
    "fields @timestamp, @logStream, @message"
    " | filter @message like /failed launching nodeclaim|exceed limits for nodepool/"
    " | sort @timestamp desc | limit 50"
)


@dataclass
class _Failure:
    """One launch that failed for capacity: which claim, where, and what was seen."""

    claim: str
    text: str
    seen: Evidence
    zone: str | None = None
    capacity_type: str | None = None


@dataclass
class _Pool:
    name: str
    raw: dict[str, Any]
    failures: list[_Failure] = field(default_factory=list)
    needed: int = 0
    """GPUs one more node would add to the pool."""

    def allowed(self, key: str) -> list[str] | None:
        """Values an ``In`` requirement allows for ``key``; None when it is not restricted."""
        for text in self.raw.get("requirements") or []:
            m = _REQUIREMENT.match(str(text))
            if m and m.group(1) == key and m.group(2) == "In" and m.group(3):
                return [v.strip() for v in m.group(3).split(",")]
        return None

    def requirement(self, key: str) -> str:
        found = [t for t in self.raw.get("requirements") or [] if str(t).startswith(key + " ")]
        return found[0] if found else f"{key} not restricted"


def _rows(result: ToolResult) -> list[dict[str, Any]]:
    data = result.data if result.status == "ok" else None
    return [x for x in data if isinstance(x, dict)] if isinstance(data, list) else []


def _workload(pod: dict[str, Any]) -> str | None:
    owner = str(pod.get("owner") or "")
    if not owner.startswith("ReplicaSet/"):
        return None
    return owner.removeprefix("ReplicaSet/").rsplit("-", 1)[0]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _recent(inv: Investigation, event: dict[str, Any]) -> bool:
    try:
        seen = datetime.fromisoformat(str(event.get("last_seen")))
    except ValueError:
        return True  # no time: keep it rather than lose the evidence
    return inv.now - seen.astimezone(UTC) <= RECENT


def _pending(inv: Investigation) -> list[dict[str, Any]]:
    """Pods of the subject (or the namespace) waiting for a node, not for a volume."""
    s = inv.subject
    pods = _rows(inv.tool("list_pods", namespace=s.namespace))
    if s.pods or s.workloads:
        pods = [p for p in pods if p["name"] in s.pods or _workload(p) in s.workloads]
    return [
        p
        for p in pods
        if p.get("phase") == "Pending"
        and not p.get("node")
        and "PersistentVolumeClaim" not in str(p.get("unschedulable") or "")
    ]


def provisioning(inv: Investigation) -> list[Finding]:
    """Classify why Karpenter cannot give the Pending pods a node."""
    pending = _pending(inv)
    if not pending:
        return []
    status = inv.tool("karpenter_status")
    data = status.data if isinstance(status.data, dict) else {}
    pools = {str(p["name"]): _Pool(str(p["name"]), p) for p in data.get("nodepools") or []}
    if not pools:
        return []
    for pool in pools.values():
        pool.needed = _needed(pool, pending)
    _claim_failures(inv, status, data.get("nodeclaims") or [], pools)
    limited = _limit_events(inv, pending, pools)
    if not limited and not any(p.failures for p in pools.values()):
        _log_evidence(inv, pools, limited)
    findings: list[Finding] = []
    for pool in pools.values():
        if pool.failures:
            findings += _classify(inv, status, pool)
    findings += _limits(status, pools, limited)
    return findings


def _pool_of(claim: str, pools: dict[str, _Pool]) -> _Pool | None:
    """Karpenter names a NodeClaim ``<nodepool>-<suffix>``: the longest matching pool."""
    names = sorted((n for n in pools if claim.startswith(n + "-")), key=len, reverse=True)
    return pools[names[0]] if names else None


def _claim_failures(
    inv: Investigation, status: ToolResult, claims: list[dict[str, Any]], pools: dict[str, _Pool]
) -> None:
    seen: set[str] = set()
    for claim in claims:
        pool = pools.get(str(claim.get("nodepool")))
        problem = str(claim.get("problem") or "")
        if pool is None or claim.get("launched") or not _ICE.search(problem):
            continue
        seen.add(claim["name"])
        where = f"nodeclaim/{claim['name']}"
        pinned = f"{claim.get('instance_type')}, {claim.get('zone')}, {claim.get('capacity_type')}"
        pool.failures.append(
            _Failure(
                claim=claim["name"],
                text=problem,
                seen=evidence(
                    status, f"NodeClaim {claim['name']} ({pinned}): {problem}", where=where
                ),
                zone=claim.get("zone"),
                capacity_type=claim.get("capacity_type"),
            )
        )
    events = inv.tool("k8s_events", kind="nodeclaim")
    for event in _rows(events):
        name = str(event.get("object") or "").removeprefix("NodeClaim/")
        text = f"{event.get('reason')}: {event.get('message')}"
        pool = _pool_of(name, pools)
        if pool is None or name in seen or not _ICE.search(text) or not _recent(inv, event):
            continue
        seen.add(name)
        where = f"nodeclaim/{name}"
        pool.failures.append(_Failure(name, text, evidence(events, text, where=where)))


def _limit_events(
    inv: Investigation, pending: list[dict[str, Any]], pools: dict[str, _Pool]
) -> dict[str, Evidence]:
    """Pools the pods' events say are at their limits ("exceed limits for nodepool")."""
    names = {f"Pod/{p['name']}" for p in pending}
    result = inv.tool("k8s_events", namespace=inv.subject.namespace)
    found: dict[str, Evidence] = {}
    for event in _rows(result):
        m = _LIMIT.search(str(event.get("message")))
        if event.get("object") in names and m and m.group(1) in pools and _recent(inv, event):
            where = f"pod/{event.get('namespace')}/{str(event['object']).removeprefix('Pod/')}"
            found.setdefault(m.group(1), evidence(result, str(event["message"]), where=where))
    return found


def _log_evidence(
    inv: Investigation, pools: dict[str, _Pool], limited: dict[str, Evidence]
) -> None:
    """Karpenter's controller log, when the Kubernetes objects no longer tell."""
    result = inv.tool("logs_insights_query", query=_LOG_QUERY, since="3h")
    data = result.data if result.status == "ok" and isinstance(result.data, dict) else {}
    for row in data.get("rows") or []:
        message = str(row.get("@message") or "")
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = {}
        text = str(parsed.get("error") or message) if isinstance(parsed, dict) else message
        m = _LIMIT.search(text)
        if m and m.group(1) in pools:
            limited.setdefault(m.group(1), evidence(result, text, where=row.get("@logStream")))
            continue
        claim = (
            str((parsed.get("NodeClaim") or {}).get("name") or "")
            if isinstance(parsed, dict)
            else ""
        )
        pool = _pool_of(claim, pools)
        if pool is not None and _ICE.search(text):
            pool.failures.append(
                _Failure(claim, text, evidence(result, text, where=row.get("@logStream")))
            )


def _classify(inv: Investigation, status: ToolResult, pool: _Pool) -> list[Finding]:
    zones = pool.allowed(ZONE_KEY)
    capacity_types = pool.allowed(CAPACITY_KEY) or ["on-demand"]  # Karpenter's default
    texts = " ".join(f.text for f in pool.failures)
    nodes = _rows(inv.tool("list_nodes"))
    others = ({str(n["zone"]) for n in nodes if n.get("zone")} | set(_ZONE.findall(texts))) - set(
        zones or []
    )
    spot_failed = "spot" in texts.lower() or any(f.capacity_type == "spot" for f in pool.failures)
    spot_only = capacity_types == ["spot"] and spot_failed
    single_zone = zones is not None and len(zones) == 1 and bool(others)
    target = f"nodepool/{pool.name}"
    seen = [f.seen for f in pool.failures[:3]]
    findings: list[Finding] = []
    if spot_only:
        findings.append(
            Finding(
                code=SPOT_ONLY,
                summary=f"NodePool {pool.name} allows only spot capacity and {len(pool.failures)} "
                "spot launch(es) failed for lack of spot capacity; on-demand is not allowed.",
                confidence=0.9,
                evidence=[_requirement(status, pool, CAPACITY_KEY), *seen],
                target=target,
                fixes=[
                    FixSuggestion(
                        code="allow-on-demand", target=target, reason="fall back to on-demand"
                    )
                ],
            )
        )
    if single_zone and zones:
        findings.append(
            Finding(
                code=SINGLE_ZONE,
                summary=f"NodePool {pool.name} allows only {zones[0]} and launches fail there for "
                f"capacity, while {', '.join(sorted(others))} could be used.",
                confidence=0.9,
                evidence=[_requirement(status, pool, ZONE_KEY), *seen],
                target=target,
                fixes=[
                    FixSuggestion(
                        code="add-zones", target=target, reason="let Karpenter try the other zones"
                    )
                ],
            )
        )
    if not findings:
        findings.append(
            Finding(
                code=CAPACITY,
                summary=f"EC2 had no capacity for NodePool {pool.name}'s instance types in any "
                "zone and capacity type it allows.",
                confidence=0.85 if len(pool.failures) > 1 else 0.7,
                evidence=[_requirement(status, pool, TYPE_KEY), *seen],
                target=target,
                fixes=[
                    FixSuggestion(
                        code="add-instance-types",
                        target=target,
                        reason="allow alternative GPU types",
                    )
                ],
            )
        )
    return findings + _ruled_out(status, pool, spot_only=spot_only, single_zone=single_zone)


def _requirement(status: ToolResult, pool: _Pool, key: str) -> Evidence:
    return evidence(
        status,
        f"NodePool {pool.name} requirement: {pool.requirement(key)}",
        where=f"nodepool/{pool.name}",
    )


def _usage(status: ToolResult, pool: _Pool) -> Evidence:
    usage = pool.raw.get("usage") or {}
    shown = ", ".join(f"{k} {v}" for k, v in usage.items()) or "no limits"
    return evidence(status, f"NodePool {pool.name} limits: {shown}", where=f"nodepool/{pool.name}")


def _ruled_out(
    status: ToolResult, pool: _Pool, *, spot_only: bool, single_zone: bool
) -> list[Finding]:
    """Say what was checked and excluded, so nobody raises a limit that was not reached."""
    target = f"nodepool/{pool.name}"
    out: list[tuple[str, str, Evidence]] = []
    if not spot_only:
        out.append(
            (
                SPOT_ONLY,
                "the NodePool is not limited to spot",
                _requirement(status, pool, CAPACITY_KEY),
            )
        )
    if not single_zone:
        out.append(
            (
                SINGLE_ZONE,
                "the NodePool is not pinned to one zone",
                _requirement(status, pool, ZONE_KEY),
            )
        )
    if spot_only or single_zone:
        why = "the NodePool's own restriction explains the failed launches"
        out.append((CAPACITY, why, pool.failures[0].seen))
    if GPU in (pool.raw.get("limits") or {}) and not _full(pool):
        out.append((LIMIT, "the NodePool's GPU limit leaves room", _usage(status, pool)))
    return [
        Finding(
            code=code,
            summary=f"Ruled out for {pool.name}: {why}.",
            confidence=0.9,
            evidence=[seen],
            target=target,
            ruled_out=True,
        )
        for code, why, seen in out
    ]


def _needed(pool: _Pool, pending: list[dict[str, Any]]) -> int:
    """GPUs a new node would add: the pod's request, or the smallest allowed type's GPUs."""
    wanted = max((int(_number(p.get("gpus"))) for p in pending), default=0)
    sizes = [
        t.gpus for n in pool.allowed(TYPE_KEY) or [] if (t := instance_types.lookup(n)) and t.gpus
    ]
    return max(wanted, min(sizes, default=0))


def _full(pool: _Pool) -> bool:
    limit = (pool.raw.get("limits") or {}).get(GPU)
    used = _number((pool.raw.get("resources") or {}).get(GPU))
    return limit is not None and pool.needed > 0 and used + pool.needed > _number(limit)


def _limits(
    status: ToolResult,
    pools: dict[str, _Pool],
    limited: dict[str, Evidence],
) -> list[Finding]:
    findings: list[Finding] = []
    for pool in pools.values():
        needed, full = pool.needed, _full(pool)
        if pool.name not in limited and (pool.failures or not full):
            continue
        target = f"nodepool/{pool.name}"
        seen = [limited[pool.name]] if pool.name in limited else []
        findings.append(
            Finding(
                code=LIMIT,
                summary=f"NodePool {pool.name}'s limits leave no room for another node"
                + (f" ({needed} more GPUs needed)." if full else "."),
                confidence=0.9 if pool.name in limited else 0.6,
                evidence=[*seen, _usage(status, pool)],
                target=target,
                fixes=[
                    FixSuggestion(
                        code="raise-nodepool-limit",
                        target=target,
                        reason="make room for another node",
                    )
                ],
            )
        )
    return findings


DETECTORS: list[Detector] = [provisioning]
