"""Why a model pod does not become Ready at start (runbook ``model-loading-failure``).

Each rule reads what an SRE would: the crashed instance's log for the model store's answer
(403 vs. no answer at all), the last termination (the kernel's OOMKilled vs. a CUDA OOM, which
belongs to ``gpu-oom``), the PVCs the pod mounts, and the kubelet's probe events set against
loading progress in the log (a probe killing a slow load is not a crash).
"""

from __future__ import annotations

import re
from typing import Any

from bot.diagnose.detectors import gpu_facts as facts
from bot.diagnose.investigation import Detector, Investigation, evidence
from bot.diagnose.model import Evidence, Finding, FixSuggestion
from tools.base import ToolResult

FORBIDDEN = "model-loading-failure/download-forbidden"
UNREACHABLE = "model-loading-failure/source-unreachable"
OOM_LOAD = "model-loading-failure/oom-during-load"
PVC_PENDING = "model-loading-failure/cache-pvc-pending"
PROBE_SHORT = "model-loading-failure/startup-probe-too-short"
CODES = frozenset({FORBIDDEN, UNREACHABLE, OOM_LOAD, PVC_PENDING, PROBE_SHORT})

# The store answered and refused: Hugging Face's gated/private repos, S3 access denied.
_FORBIDDEN = re.compile(
    r"GatedRepoError|\b40[13] Client Error|Access to model \S+ is restricted"
    r"|Cannot access gated repo|\(AccessDenied\)|401 Unauthorized|403 Forbidden"
)
# No answer from the store: connection refused, timeouts, name resolution.
_NO_ANSWER = re.compile(
    r"Max retries exceeded|Connection to \S+ timed out|ConnectionError|ConnectTimeout"
    r"|Connection refused|Read timed out|Network is unreachable|Temporary failure in name "
    r"resolution|Name or service not known|Failed to resolve|couldn't connect to 'https?://"
    r"|LocalEntryNotFoundError|Could not connect to the endpoint URL"
)
_STORE = re.compile(
    r"huggingface\.co|hf\.co|huggingface_hub|s3[\w.-]*\.amazonaws\.com|s3://"
    r"|(?:Get|Head)Object|ListObjects"
)
# Hugging Face's own words for a gated repo need no host beside them.
_GATED = re.compile(r"GatedRepoError|Access to model \S+ is restricted|Cannot access gated repo")
_STORE_GREP = f"{_FORBIDDEN.pattern}|{_NO_ANSWER.pattern}"
# Weights being read: vLLM's shard progress bar and its loader's messages.
_LOADING = re.compile(
    r"Loading (?:safetensors|pt) checkpoint shards:\s*\d+%|Starting to load model"
    r"|Loading weights|Loading model weights"
)
_STARTED = re.compile(r"Application startup complete")
_PROGRESS_GREP = f"{_LOADING.pattern}|{_STARTED.pattern}|out of memory"
_SIGNALLED = (137, 143)
"""Exit codes of a container the kubelet stopped (SIGKILL, SIGTERM) rather than one that exited."""
_PROBE_KILL = re.compile(r"failed (startup|liveness) probe, will be restarted")
_PVC_VOLUME = re.compile(r"\bPVC (\S+)")


def _target(pod: dict[str, Any]) -> str:
    name = facts.deployment_of(pod)
    kind_name = f"deployment/{pod['namespace']}/{name}" if name else None
    return kind_name or f"pod/{pod['namespace']}/{pod['name']}"


def _pods(inv: Investigation) -> list[dict[str, Any]]:
    """The pods the trigger is about; the whole namespace when it names none."""
    s = inv.subject
    pods = facts.ok_rows(inv.tool("list_pods", namespace=s.namespace))
    if s.pods or s.workloads:
        return [p for p in pods if p["name"] in s.pods or facts.deployment_of(p) in s.workloads]
    return [p for p in pods if p.get("node") in s.nodes] if s.nodes else pods


def _troubled(pod: dict[str, Any]) -> bool:
    return not pod.get("all_ready") or bool(pod.get("restarts")) or bool(pod.get("waiting_reason"))


def _status(inv: Investigation, pod: dict[str, Any]) -> Evidence:
    last = pod.get("last_termination") or {}
    ended = f", last ended {last.get('reason')} exit {last.get('exit_code')} {last.get('ago')} ago"
    value = f"{pod['status']}, ready {pod['ready']}, {pod.get('restarts', 0)} restarts" + (
        ended if last else ""
    )
    result = inv.tool("list_pods", namespace=inv.subject.namespace)
    return evidence(result, value, where=f"pod/{pod['namespace']}/{pod['name']}")


def _log(inv: Investigation, pod: dict[str, Any], grep: str, *, previous: bool) -> ToolResult:
    return inv.tool(
        "pod_logs", namespace=pod["namespace"], pod=pod["name"], previous=previous, grep=grep
    )


def _lines(result: ToolResult) -> list[str]:
    log = facts.ok_obj(result).get("log")
    return str(log).splitlines() if log else []


def _where(pod: dict[str, Any], previous: bool) -> str:
    return f"pod/{pod['namespace']}/{pod['name']} " + ("previous logs" if previous else "logs")


def store_access(inv: Investigation) -> list[Finding]:
    """403/401 from the model store (access, not a fault of ours) vs. no answer from it."""
    findings: list[Finding] = []
    for pod in filter(_troubled, _pods(inv)):
        for previous in (True, False):
            if previous and not pod.get("last_termination"):
                continue
            result = _log(inv, pod, _STORE_GREP, previous=previous)
            found = _store_finding(inv, pod, result, previous)
            if found is not None:
                findings.append(found)
                break
    return findings


def _store_finding(
    inv: Investigation, pod: dict[str, Any], result: ToolResult, previous: bool
) -> Finding | None:
    lines = _lines(result)
    denied = [x for x in lines if _GATED.search(x) or (_FORBIDDEN.search(x) and _STORE.search(x))]
    where = _where(pod, previous)
    if denied:
        best = sorted(denied, key=lambda x: ("Access to model" not in x, "Client Error" not in x))
        return Finding(
            code=FORBIDDEN,
            summary=f"The model store refused {pod['name']} (401/403): its token has no access "
            "to the repository; grant access or use a token that has it.",
            confidence=0.9,
            evidence=[evidence(result, line.strip(), where=where) for line in best[:2]]
            + [_status(inv, pod)],
            target=_target(pod),
        )
    unreachable = [line for line in lines if _NO_ANSWER.search(line) and _STORE.search(line)]
    if unreachable:
        target = _target(pod)
        cache = _unmounted_cache(inv, pod) if target.startswith("deployment/") else None
        return Finding(
            code=UNREACHABLE,
            summary=f"{pod['name']} cannot reach the model store (connection refused, timeout "
            "or DNS): check egress, proxy and the store's endpoint"
            + (f"; meanwhile it could load from the cache PVC {cache[1]}." if cache else "."),
            confidence=0.85,
            evidence=[evidence(result, unreachable[-1].strip(), where=where), _status(inv, pod)]
            + ([cache[0]] if cache else []),
            target=target,
            fixes=[
                FixSuggestion(
                    code="use-model-cache-pvc",
                    target=target,
                    reason=f"load the weights from {cache[1]} (Hugging Face falls back to its "
                    "cache when the hub cannot be reached) instead of downloading at every start",
                )
            ]
            if cache
            else [],
        )
    return None


def _unmounted_cache(inv: Investigation, pod: dict[str, Any]) -> tuple[Evidence, str] | None:
    """A Bound model-cache PVC in the namespace that the pod does not mount, with evidence."""
    result = inv.tool("list_pvcs", namespace=pod["namespace"])
    bound = [p for p in facts.ok_rows(result) if p.get("phase") == "Bound" and "cache" in p["name"]]
    described = inv.tool("k8s_describe", kind="pod", name=pod["name"], namespace=pod["namespace"])
    volumes = " ".join(str(v) for v in facts.ok_obj(described).get("volumes") or [])
    mounted = {m.group(1) for m in _PVC_VOLUME.finditer(volumes)}
    free = [p for p in bound if p["name"] not in mounted]
    if not free or described.status != "ok":
        return None
    pvc = free[0]
    where = f"pvc/{pod['namespace']}/{pvc['name']}"
    text = f"PVC {pvc['name']} is Bound ({pvc.get('requested')}); {pod['name']} does not mount it"
    return evidence(result, text, where=where), str(pvc["name"])


def oom_during_load(inv: Investigation) -> list[Finding]:
    """The kernel OOMKilled the container before it finished loading (host RAM, not GPU)."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for pod in _pods(inv):
        last = pod.get("last_termination") or {}
        target = _target(pod)
        if not last or target in seen:
            continue
        result = _log(inv, pod, _PROGRESS_GREP, previous=True)
        lines = _lines(result)
        if last.get("reason") == "OOMKilled":
            if any(_STARTED.search(line) for line in lines):
                continue  # it was serving when killed: not a loading failure
            seen.add(target)
            findings.append(_oom_finding(inv, pod, result, lines, target))
        elif _tempting_oom(last, lines):
            seen.add(target)
            findings.append(_oom_ruled_out(inv, pod, result, lines, target))
    return findings


def _oom_finding(
    inv: Investigation, pod: dict[str, Any], result: ToolResult, lines: list[str], target: str
) -> Finding:
    loading = [line for line in lines if _LOADING.search(line)]
    found = [_status(inv, pod)]
    found += [evidence(result, loading[-1].strip(), where=_where(pod, True))] if loading else []
    return Finding(
        code=OOM_LOAD,
        summary=f"{pod['name']} was OOMKilled by the kernel (exit 137) while loading the model: "
        "its memory limit is too small for loading the weights in host RAM.",
        confidence=0.9 if loading else 0.7,
        evidence=found,
        target=target,
        fixes=[
            FixSuggestion(
                code="increase-memory-limit",
                target=target,
                reason="the container's memory limit is exceeded while the weights load",
            )
        ],
    )


def _tempting_oom(last: dict[str, Any], lines: list[str]) -> bool:
    """A kill signal or an OOM in the log invites the guess 'host OOM'; say why it is not."""
    return last.get("exit_code") in _SIGNALLED or any("out of memory" in x.lower() for x in lines)


def _oom_ruled_out(
    inv: Investigation, pod: dict[str, Any], result: ToolResult, lines: list[str], target: str
) -> Finding:
    cuda = [line for line in lines if "out of memory" in line.lower()]
    found = [_status(inv, pod)]
    found += [evidence(result, cuda[-1].strip()[:300], where=_where(pod, True))] if cuda else []
    return Finding(
        code=OOM_LOAD,
        summary=f"Not a host OOM: {pod['name']}'s last termination is not OOMKilled"
        + (" (the log shows a CUDA OOM, a GPU memory matter)." if cuda else "."),
        confidence=0.9,
        evidence=found,
        target=target,
        ruled_out=True,
    )


def cache_pvc_pending(inv: Investigation) -> list[Finding]:
    """A PVC the pod mounts cannot bind, so the pod cannot even be scheduled."""
    pvcs_result = inv.tool("list_pvcs", namespace=inv.subject.namespace)
    pvcs = facts.ok_rows(pvcs_result)
    pending = {p["name"]: p for p in pvcs if p.get("phase") == "Pending"}
    if not pending:
        return []
    findings: list[Finding] = []
    for pod in _pods(inv):
        if pod.get("phase") != "Pending":
            continue
        described = inv.tool(
            "k8s_describe", kind="pod", name=pod["name"], namespace=pod["namespace"]
        )
        claims = [
            m.group(1)
            for v in facts.ok_obj(described).get("volumes") or []
            if (m := _PVC_VOLUME.search(str(v)))
        ]
        for claim in (c for c in claims if c in pending):
            findings.append(
                _pvc_finding(inv, pod, pending[claim], pvcs=(pvcs_result, pvcs), pod_info=described)
            )
    return findings


def _pvc_finding(
    inv: Investigation,
    pod: dict[str, Any],
    pvc: dict[str, Any],
    *,
    pvcs: tuple[ToolResult, list[dict[str, Any]]],
    pod_info: ToolResult,
) -> Finding:
    name, ns = pvc["name"], pod["namespace"]
    pvcs_result, described = pvcs[0], pod_info
    found = [
        evidence(
            pvcs_result,
            f"PVC {name} Pending (storage class {pvc.get('storage_class')}, "
            f"{pvc.get('requested')})",
            where=f"pvc/{ns}/{name}",
        )
    ]
    for event in facts.ok_obj(described).get("events") or []:
        if "PersistentVolumeClaim" in str(event.get("message")):
            found.append(
                evidence(described, str(event["message"]), where=f"pod/{ns}/{pod['name']}")
            )
            break
    pvc_events = inv.tool("k8s_events", namespace=ns, kind="pvc", name=name)
    for event in facts.ok_rows(pvc_events)[:1]:
        found.append(
            evidence(pvc_events, f"{event['reason']}: {event['message']}", where=f"pvc/{ns}/{name}")
        )
    target = _target(pod)
    bound = [p["name"] for p in pvcs[1] if p.get("phase") == "Bound" and "cache" in p["name"]]
    fixes = [
        FixSuggestion(
            code="use-model-cache-pvc",
            target=target,
            reason=f"mount the Bound cache PVC {bound[0]} instead of the Pending {name}",
        )
        for _ in bound[:1]
    ]
    return Finding(
        code=PVC_PENDING,
        summary=f"{pod['name']} waits for its PVC {name}, which is Pending and cannot be bound.",
        confidence=0.9,
        evidence=found,
        target=target,
        fixes=fixes,
    )


def startup_probe(inv: Investigation) -> list[Finding]:
    """The kubelet kills the container for its probe while the log shows weights loading."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for pod in filter(_troubled, _pods(inv)):
        target = _target(pod)
        if target in seen or pod.get("phase") == "Pending":
            continue
        described = inv.tool(
            "k8s_describe", kind="pod", name=pod["name"], namespace=pod["namespace"]
        )
        events = facts.ok_obj(described).get("events") or []
        kills = [e for e in events if _PROBE_KILL.search(str(e.get("message")))]
        if not kills:
            continue
        found = _probe_evidence(inv, pod, described, kills)
        if found is None:
            continue  # its last instance exited by itself: a crash, not the probe
        seen.add(target)
        loading = any(_LOADING.search(e.value) for e in found)
        probe = m.group(1) if (m := _PROBE_KILL.search(str(kills[0]["message"]))) else "startup"
        findings.append(
            Finding(
                code=PROBE_SHORT,
                summary=f"The kubelet kills {pod['name']} for its {probe} probe while it is "
                "still loading the model: the probe allows too little time.",
                confidence=0.9 if loading else 0.6,
                evidence=found,
                target=target,
                fixes=[
                    FixSuggestion(
                        code="extend-startup-probe",
                        target=target,
                        reason="give the model at least 30 minutes to load before probing",
                    )
                ],
            )
        )
    return findings


def _probe_evidence(
    inv: Investigation, pod: dict[str, Any], described: ToolResult, kills: list[dict[str, Any]]
) -> list[Evidence] | None:
    where = f"pod/{pod['namespace']}/{pod['name']}"
    last = pod.get("last_termination") or {}
    if last and last.get("exit_code") not in _SIGNALLED:
        return None  # the last instance exited by itself: a crash, not the probe
    kill = kills[0]
    found = [
        evidence(
            described, f"{kill['reason']} x{kill.get('count', 1)}: {kill['message']}", where=where
        )
    ]
    for container in facts.ok_obj(described).get("containers") or []:
        probe = (container.get("probes") or {}).get("startup")
        if probe:
            found.append(
                evidence(described, f"startupProbe of {container['name']}: {probe}", where=where)
            )
    for previous in (True, False):
        if previous and not pod.get("last_termination"):
            continue
        result = _log(inv, pod, _PROGRESS_GREP, previous=previous)
        loading = [line for line in _lines(result) if _LOADING.search(line)]
        if loading:
            found.append(evidence(result, loading[-1].strip(), where=_where(pod, previous)))
            break
    found.append(_status(inv, pod))
    return found


DETECTORS: list[Detector] = [store_access, oom_during_load, cache_pvc_pending, startup_probe]
