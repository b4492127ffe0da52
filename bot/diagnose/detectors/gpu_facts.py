"""What the GPU detectors (memory, hardware, idle, latency, cost) read alike; the others borrow
its generic readers (rows of a tool result, a pod's Deployment, a DCGM series' node).

The workloads a trigger is about, with the vLLM settings their manifests give (flag, the env
var it references, or the env var; SCENARIOS.md's order, through ``bot.fixes.vllm``); their
pods; PromQL answers as ``(labels, value)`` rows; DCGM's ``Hostname`` label as a Kubernetes
node name. Reads only through ``Investigation.tool``, so every call is shared and counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.diagnose.investigation import Investigation
from bot.fixes import argv, vllm
from bot.fixes.builder import Refuse
from tools import instance_types, promapi
from tools.base import ToolResult

Row = tuple[dict[str, str], float]
"""One series of an instant query: its labels and its value."""

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
"""vLLM's own default for --gpu-memory-utilization."""


@dataclass(frozen=True)
class Settings:
    """A vLLM container's engine settings as the manifest gives them (None: vLLM's default)."""

    container: str
    gpu_memory_utilization: float | None
    max_num_seqs: int | None
    max_model_len: int | None
    tensor_parallel: int
    pipeline_parallel: int
    quantization: str | None
    dtype: str | None
    model: str | None
    max_batch_size: int | None
    """``MAX_BATCH_SIZE`` env: only serving images that read it have a batch size to cut."""

    @property
    def reserved(self) -> float:
        """The fraction of each GPU vLLM takes for weights plus KV cache."""
        return self.gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION


@dataclass
class Workload:
    """A Deployment in scope: replicas, GPUs, vLLM settings, pods and how we read them."""

    name: str
    namespace: str
    replicas: int
    gpus_per_pod: int
    model: str | None
    """Its ``model`` label: the gateway's and alerts' model name."""
    settings: Settings | None
    describe: ToolResult | None
    pods: list[dict[str, Any]] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"deployment/{self.namespace}/{self.name}"


def ok_rows(result: ToolResult) -> list[dict[str, Any]]:
    data = result.data if result.status == "ok" else None
    return [x for x in data if isinstance(x, dict)] if isinstance(data, list) else []


def ok_obj(result: ToolResult) -> dict[str, Any]:
    data = result.data if result.status == "ok" else None
    return data if isinstance(data, dict) else {}


def deployment_of(pod: Mapping[str, Any]) -> str | None:
    """``ReplicaSet/llama-3-8b-7d9f6c5b8`` → ``llama-3-8b``."""
    owner = str(pod.get("owner") or "")
    if not owner.startswith("ReplicaSet/"):
        return None
    return owner.removeprefix("ReplicaSet/").rsplit("-", 1)[0]


def series(result: ToolResult) -> list[Row]:
    """The rows of a ``prometheus_query`` answer; none when it failed or matched nothing."""
    data = ok_obj(result)
    out: list[Row] = []
    for item in data.get("series") or []:
        value = float(item.get("value", math.nan))
        if not math.isnan(value):
            out.append(({str(k): str(v) for k, v in item.get("labels", {}).items()}, value))
    return out


def query(inv: Investigation, promql: str) -> tuple[ToolResult, list[Row]]:
    result = inv.tool("prometheus_query", query=promql)
    return result, series(result)


def query_parts(
    inv: Investigation, parts: Mapping[str, str]
) -> tuple[ToolResult, dict[str, list[Row]]]:
    """Several expressions in one request, each answer under its part's name."""
    result = inv.tool("prometheus_query", query=promapi.tagged(parts))
    out: dict[str, list[Row]] = {name: [] for name in parts}
    for labels, value in series(result):
        part = labels.pop(promapi.TAG, "")
        out.setdefault(part, []).append((labels, value))
    return result, out


def fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text not in (None, "") else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _value(c: vllm.Container, setting: vllm.Setting) -> str | None:
    try:
        return vllm.current(c, setting).value
    except Refuse:
        return None  # e.g. the value comes from a Secret: unknown to us


def _env(c: vllm.Container, name: str) -> str | None:
    try:
        return vllm.env_value(c, name)
    except Refuse:
        return None


def settings_of(containers: list[dict[str, Any]]) -> Settings | None:
    """The first vLLM container's settings (describe's container shape), or None."""
    for index, spec in enumerate(containers):
        if not argv.runs_vllm(spec):
            continue
        c = vllm.Container(index, spec)
        pp = argv.find_flag(spec, argv.spellings("--pipeline-parallel-size", ("-pp",)))
        try:
            model = vllm.model_name(c)
        except Refuse:
            model = None
        return Settings(
            container=c.name,
            gpu_memory_utilization=_float(_value(c, vllm.GPU_MEMORY_UTILIZATION)),
            max_num_seqs=_int(_value(c, vllm.MAX_NUM_SEQS)),
            max_model_len=_int(_value(c, vllm.MAX_MODEL_LEN)),
            tensor_parallel=_int(_value(c, vllm.TENSOR_PARALLEL_SIZE)) or 1,
            pipeline_parallel=(_int(pp.value) if pp else None) or 1,
            quantization=_value(c, vllm.QUANTIZATION),
            dtype=_value(c, vllm.DTYPE),
            model=model,
            max_batch_size=_int(_env(c, "MAX_BATCH_SIZE")),
        )
    return None


def pods(inv: Investigation, namespace: str | None = None) -> list[dict[str, Any]]:
    return ok_rows(inv.tool("list_pods", namespace=namespace or inv.subject.namespace))


def _named(
    inv: Investigation, deployments: list[dict[str, Any]], pod_rows: list[dict[str, Any]]
) -> set[str]:
    s = inv.subject
    names = set(s.workloads)
    names |= {w for p in pod_rows if p["name"] in s.pods and (w := deployment_of(p))}
    on_nodes = [p for p in pod_rows if p.get("node") in s.nodes] if s.nodes else []
    names |= {w for p in on_nodes if (w := deployment_of(p))}
    names |= {d["name"] for d in deployments if (d.get("labels") or {}).get("model") in s.models}
    return names


def workloads(inv: Investigation) -> list[Workload]:
    """The GPU Deployments the trigger is about (all of the namespace's when it names none)."""
    namespace = inv.subject.namespace
    deployments = ok_rows(inv.tool("list_deployments", namespace=namespace))
    pod_rows = pods(inv, namespace)
    named = _named(inv, deployments, pod_rows)
    chosen = [d for d in deployments if d["name"] in named] if named else deployments
    out = []
    for d in chosen:
        gpus = int(d.get("gpus_per_pod") or 0)
        if gpus <= 0:
            continue
        described = inv.tool("k8s_describe", kind="deployment", name=d["name"], namespace=namespace)
        spec = ok_obj(described)
        replicas = (spec.get("replicas") or {}).get("desired", d.get("desired"))
        out.append(
            Workload(
                name=d["name"],
                namespace=namespace,
                replicas=int(replicas or 0),
                gpus_per_pod=gpus,
                model=(d.get("labels") or {}).get("model"),
                settings=settings_of(list(spec.get("containers") or [])),
                describe=described,
                pods=[p for p in pod_rows if deployment_of(p) == d["name"]],
            )
        )
    return out


def by_pod(workloads_: list[Workload]) -> dict[str, Workload]:
    return {p["name"]: w for w in workloads_ for p in w.pods}


def by_model(workloads_: list[Workload]) -> dict[str, Workload]:
    """Model name (label, served name) → workload, for vLLM's and the gateway's ``model`` labels."""
    out: dict[str, Workload] = {}
    for w in workloads_:
        for name in (w.model, w.name):
            if name:
                out.setdefault(name, w)
    return out


def nodes(inv: Investigation) -> list[dict[str, Any]]:
    return ok_rows(inv.tool("list_nodes"))


def node_name(inv: Investigation, labels: Mapping[str, str]) -> str | None:
    """The Kubernetes node of a DCGM series: its ``Hostname`` (as is, or the node's short name),
    else the node of the pod holding the GPU."""
    names = [str(n["name"]) for n in nodes(inv)]
    host = labels.get("Hostname") or labels.get("node") or ""
    if host in names:
        return host
    short = [n for n in names if host and (n.split(".", 1)[0] == host.split(".", 1)[0])]
    if len(short) == 1:
        return short[0]
    pod, namespace = labels.get("pod"), labels.get("namespace")
    if pod:
        for p in pods(inv, namespace or None):
            if p["name"] == pod and p.get("node"):
                return str(p["node"])
    return host or None


_GIB = re.compile(r"(\d+)\s*G[Bi]?", re.IGNORECASE)


def gpu_memory_gib(node: Mapping[str, Any]) -> float | None:
    """One GPU's memory: from the instance type, else the GPU product label (``…-40GB``)."""
    known = instance_types.lookup(str(node.get("instance_type") or ""))
    if known is not None and known.gpu_memory_gib:
        return float(known.gpu_memory_gib)
    match = _GIB.search(str(node.get("gpu_product") or ""))
    return float(match.group(1)) if match else None


KV_CACHE = "vllm:kv_cache_usage_perc|vllm:gpu_cache_usage_perc"
"""vLLM's KV-cache gauge under its V1 and older names: query both."""


def per_pod(
    inv: Investigation, parts: Mapping[str, str]
) -> tuple[ToolResult, dict[str, dict[str, float]]]:
    """A tagged query whose parts aggregate ``by (pod)``: {pod: {part: value}}."""
    result, found = query_parts(inv, parts)
    out: dict[str, dict[str, float]] = {}
    for part, rows in found.items():
        for labels, value in rows:
            out.setdefault(labels.get("pod", ""), {})[part] = value
    return result, out


def engine_stats(
    inv: Investigation, namespace: str, window: str
) -> tuple[ToolResult, dict[str, dict[str, float]]]:
    """Per vLLM pod over ``window``: KV cache (peak, mean), preemptions, running, waiting."""
    sel = f'{{namespace="{namespace}"}}'
    kv = f'{{__name__=~"{KV_CACHE}",namespace="{namespace}"}}'
    w = window
    return per_pod(
        inv,
        {
            "kv_max": f"max by (pod) (max_over_time({kv}[{w}]))",
            "kv_avg": f"max by (pod) (avg_over_time({kv}[{w}]))",
            "preempted": f"sum by (pod) (increase(vllm:num_preemptions_total{sel}[{w}]))",
            "running_avg": f"sum by (pod) (avg_over_time(vllm:num_requests_running{sel}[{w}]))",
            "running_max": f"sum by (pod) (max_over_time(vllm:num_requests_running{sel}[{w}]))",
            "waiting_avg": f"sum by (pod) (avg_over_time(vllm:num_requests_waiting{sel}[{w}]))",
            "waiting_max": f"sum by (pod) (max_over_time(vllm:num_requests_waiting{sel}[{w}]))",
        },
    )


def gpu_stats(
    inv: Investigation, namespace: str, window: str
) -> tuple[ToolResult, dict[str, dict[str, float]]]:
    """Per pod over ``window`` from DCGM: mean utilisation, and framebuffer used/(used+free)
    as mean, lowest and highest (a flat line is vLLM's reservation; a moving one is load)."""
    sel = f'{{namespace="{namespace}"}}'
    used, free = f"DCGM_FI_DEV_FB_USED{sel}", f"DCGM_FI_DEV_FB_FREE{sel}"
    ratio = f"({used} / ({used} + {free}))[{window}:1m]"
    return per_pod(
        inv,
        {
            "util": f"avg by (pod) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{sel}[{window}]))",
            "util_max": f"max by (pod) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{sel}[{window}]))",
            "gpus": f"count by (pod) (last_over_time(DCGM_FI_DEV_GPU_UTIL{sel}[{window}]))",
            "mem": f"max by (pod) (avg_over_time({ratio}))",
            "mem_min": f"min by (pod) (min_over_time({ratio}))",
            "mem_max": f"max by (pod) (max_over_time({ratio}))",
        },
    )


def pod_stat(
    stats: Mapping[str, Mapping[str, float]], pod_names: list[str], part: str
) -> list[float]:
    return [stats[p][part] for p in pod_names if part in stats.get(p, {})]
