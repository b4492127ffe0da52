"""The read tools under their stable names, for the agent (LangChain), the CLI and the engine.

Each entry has a pydantic argument schema and a description written for a model: what the
tool is for, when to use it, what it returns. Names never change: later issues, prompts and
people's muscle memory depend on them. Every tool here only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from tools import alertmanager, aws, cloudwatch, gpu, kube, kubecost, prom
from tools.base import ToolResult
from tools.toolbox import Toolbox


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: str | None = Field(None, description="Cluster name; omit for the default cluster.")


class PromQueryArgs(_Args):
    query: str = Field(description="PromQL, e.g. avg_over_time(DCGM_FI_DEV_GPU_UTIL[1h]).")


class PromRangeArgs(_Args):
    query: str = Field(description="A PromQL expression evaluated over a range.")
    since: str = Field("1h", description="How far back, as a duration: 15m, 1h, 24h.")
    step: str = Field("1m", description="Resolution step, as a duration.")


class InsightsArgs(_Args):
    query: str = Field(description="A Logs Insights query (fields/filter/stats/sort/limit).")
    log_group: str | None = Field(None, description="Log group; omit for the configured ones.")
    since: str = Field("1h", description="How far back, as a duration: 15m, 1h, 24h.")


class KubecostArgs(_Args):
    window: str = Field("24h", description="24h, 1d, 7d or 'START,END' in unix seconds.")
    aggregate: Literal["namespace", "controller", "cluster"] = "namespace"


class PodLogsArgs(_Args):
    namespace: str = Field(description="The pod's namespace.")
    pod: str = Field(description="The pod's name.")
    container: str | None = Field(None, description="Container; omit for the first one.")
    previous: bool = Field(False, description="Logs of the previous (crashed) instance.")
    tail_lines: int = Field(200, ge=1, le=5000, description="Lines from the end.")
    grep: str | None = Field(None, description="Keep only lines matching this regex.")


class EventsArgs(_Args):
    namespace: str | None = Field(None, description="Namespace; omit for the inference namespace.")
    kind: str | None = Field(None, description="Kind of the object (Pod, Deployment, Node…).")
    name: str | None = Field(None, description="Name of the object; omit for the whole namespace.")


class DescribeArgs(_Args):
    kind: Literal["pod", "deployment", "node"]
    name: str
    namespace: str | None = Field(None, description="For pods and deployments.")


class ListPodsArgs(_Args):
    namespace: str | None = Field(None, description="Namespace; omit for the inference namespace.")
    label_selector: str | None = Field(None, description="e.g. model=llama-3-8b")
    node: str | None = Field(None, description="Only pods on this node.")


class ListNodesArgs(_Args):
    gpu_only: bool = Field(False, description="Only nodes with nvidia.com/gpu.present=true.")


class KarpenterArgs(_Args):
    nodepool: str | None = Field(None, description="One NodePool; omit for all.")


class FleetArgs(_Args):
    window: str = Field("1h", description="Averaging window, as a duration.")


class GpuMetricsArgs(_Args):
    node: str | None = Field(None, description="Only GPUs of this node (its Hostname label).")
    pod: str | None = Field(None, description="Only the GPUs this pod uses.")
    namespace: str | None = None
    window: str = Field("15m", description="Averaging window, as a duration.")


class VllmArgs(_Args):
    model: str | None = Field(None, description="The model_name; omit for all models.")
    window: str = Field("15m", description="Rate window, as a duration.")


class GatewayArgs(_Args):
    window: str = Field("24h", description="Window, as a duration.")


class NamespaceArgs(_Args):
    namespace: str | None = Field(None, description="Namespace; omit for the inference namespace.")


class ClusterOnlyArgs(_Args):
    pass


class SinceArgs(_Args):
    since: str = Field("1h", description="How far back, as a duration: 15m, 1h, 24h.")


class SlowRequestsArgs(SinceArgs):
    threshold_ms: int = Field(5000, ge=0, description="Requests slower than this many ms.")


class CostCompareArgs(_Args):
    aggregate: Literal["namespace", "controller", "cluster"] = "namespace"


class ImagesArgs(_Args):
    images: list[str] = Field(description="Image references (registry/repo:tag or @sha256:…).")


class VolumesArgs(_Args):
    volume_ids: list[str] = Field(description="EBS volume ids (vol-…) behind PersistentVolumes.")


@dataclass(frozen=True)
class ToolSpec:
    """One read tool: its stable name, what a model should know about it, and how to call it."""

    name: str
    description: str
    args: type[_Args]
    call: Callable[..., ToolResult]

    def run(self, box: Toolbox, arguments: dict[str, Any]) -> ToolResult:
        """Validate ``arguments`` against the schema and call the tool."""
        parsed = self.args.model_validate(arguments)
        return self.call(box=box, **parsed.model_dump())


def _prom_range(
    *, box: Toolbox, cluster: str | None, query: str, since: str, step: str
) -> ToolResult:
    return prom.query_range(box=box, cluster=cluster, query=query, since=since, step=step)


def _insights(
    *, box: Toolbox, cluster: str | None, query: str, log_group: str | None, since: str
) -> ToolResult:
    groups = [log_group] if log_group else None
    return cloudwatch.insights_query(
        box=box, cluster=cluster, query=query, log_groups=groups, since=since
    )


TOOLS: tuple[ToolSpec, ...] = (  # the names the issue fixes, then the rest
    ToolSpec(
        "prometheus_query",
        "Run an instant PromQL query against Prometheus. Use for any metric: DCGM GPU metrics "
        "(DCGM_FI_DEV_*), vLLM (vllm:*), the gateway (inference_request_*), kube-state-metrics. "
        "Returns the series with their labels and values; a bad query returns Prometheus's error.",
        PromQueryArgs,
        prom.query,
    ),
    ToolSpec(
        "prometheus_query_range",
        "Run a PromQL query over a time range to see a trend. Returns min/mean/max/last "
        "per series.",
        PromRangeArgs,
        _prom_range,
    ),
    ToolSpec(
        "logs_insights_query",
        "Run a CloudWatch Logs Insights query over the application logs (gateway and model "
        "servers). Use for error counts, slow requests, token usage. Returns the result rows.",
        InsightsArgs,
        _insights,
    ),
    ToolSpec(
        "kubecost_allocation",
        "Cost from Kubecost, aggregated by namespace, controller or cluster over a window. Returns "
        "GPU, CPU, RAM, PV, network and total cost per entry.",
        KubecostArgs,
        kubecost.allocation,
    ),
    ToolSpec(
        "pod_logs",
        "Logs of one pod's container, current or previous (the crashed instance). Use "
        "previous=true for CrashLoopBackOff. Long logs keep errors and the newest lines.",
        PodLogsArgs,
        kube.pod_logs,
    ),
    ToolSpec(
        "k8s_events",
        "Kubernetes events for one object (kind and name) or a whole namespace, newest first: "
        "scheduling failures, probe failures, kills, Karpenter launch errors.",
        EventsArgs,
        kube.events,
    ),
    ToolSpec(
        "k8s_describe",
        "A kubectl-describe-like summary of a pod, deployment or node: spec essentials "
        "(images, args, env, resources, probes), status, conditions and events.",
        DescribeArgs,
        kube.describe,
    ),
    ToolSpec(
        "list_pods",
        "Pods with phase, readiness, restarts, waiting reason, last termination and node.",
        ListPodsArgs,
        kube.list_pods,
    ),
    ToolSpec(
        "list_nodes",
        "Nodes with readiness, instance type, zone, capacity type, NodePool and GPU capacity.",
        ListNodesArgs,
        kube.list_nodes,
    ),
    ToolSpec(
        "karpenter_status",
        "Karpenter NodePools (requirements, limits vs. use) and NodeClaims with their conditions, "
        "e.g. launches failing for insufficient capacity.",
        KarpenterArgs,
        kube.karpenter_status,
    ),
    ToolSpec(
        "gpu_fleet_summary",
        "A summary of every GPU in the cluster: utilisation and memory spread, the hottest, "
        "fullest and idlest GPUs, and GPUs with XID or ECC errors. Cheap at any fleet size.",
        FleetArgs,
        gpu.gpu_fleet_summary,
    ),
    ToolSpec(
        "gpu_metrics",
        "Per-GPU DCGM metrics for a node or a pod: utilisation, framebuffer used/free, "
        "temperature, power, clocks, the last XID with its meaning, ECC double-bit errors.",
        GpuMetricsArgs,
        gpu.gpu_metrics,
    ),
    ToolSpec(
        "vllm_status",
        "vLLM engine state per model: running and waiting requests, KV-cache usage, preemptions, "
        "latency and time-to-first-token quantiles.",
        VllmArgs,
        prom.vllm_status,
    ),
    ToolSpec(
        "gateway_stats",
        "Request rate, error ratio and p99 latency per model at the serving gateway.",
        GatewayArgs,
        prom.gateway_stats,
    ),
)

TOOLS += (
    ToolSpec(
        "list_deployments",
        "Deployments with desired/ready/updated/available replicas, GPUs per pod and images; "
        "unhealthy first.",
        NamespaceArgs,
        kube.list_deployments,
    ),
    ToolSpec(
        "list_pvcs",
        "PersistentVolumeClaims with phase, volume, size and storage class; unbound first.",
        NamespaceArgs,
        kube.list_pvcs,
    ),
    ToolSpec(
        "gpu_allocation",
        "Per node: allocatable nvidia.com/gpu vs. GPUs requested by its pods, and which pods.",
        ClusterOnlyArgs,
        kube.gpu_allocation,
    ),
    ToolSpec(
        "prometheus_alerts",
        "Alerts Prometheus is evaluating as firing or pending, with their labels.",
        ClusterOnlyArgs,
        prom.alerts,
    ),
    ToolSpec(
        "alertmanager_alerts",
        "Active alerts in Alertmanager (what paged people), most severe first.",
        ClusterOnlyArgs,
        alertmanager.alerts,
    ),
    ToolSpec(
        "logs_recent_errors",
        "Recent error, exception and traceback lines from the application logs.",
        SinceArgs,
        cloudwatch.recent_errors,
    ),
    ToolSpec(
        "logs_slow_requests_by_model",
        "Slow gateway requests grouped by model: average, max and count.",
        SlowRequestsArgs,
        cloudwatch.slow_requests_by_model,
    ),
    ToolSpec(
        "logs_token_usage_by_hour",
        "Input and output tokens per hour per model, from the gateway's request logs.",
        SinceArgs,
        cloudwatch.token_usage_by_hour,
    ),
    ToolSpec(
        "kubecost_daily_cost",
        "What the last 24 hours cost: the total and each namespace, most expensive first.",
        ClusterOnlyArgs,
        kubecost.daily_cost,
    ),
    ToolSpec(
        "kubecost_day_over_day",
        "Cost of the last 24 h against the 24 h before, with the change per entry.",
        CostCompareArgs,
        kubecost.day_over_day,
    ),
    ToolSpec(
        "kubecost_gpu_share",
        "The share of the last 24 h's cost that was GPU, per entry.",
        CostCompareArgs,
        kubecost.gpu_share,
    ),
    ToolSpec(
        "ecr_image_scan_findings",
        "Critical/high/medium vulnerability counts and the worst findings of images in ECR.",
        ImagesArgs,
        aws.image_scan_findings,
    ),
    ToolSpec(
        "ebs_snapshot_ages",
        "The newest EBS snapshot of each volume and its age in hours (backups).",
        VolumesArgs,
        aws.snapshot_ages,
    ),
)

BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in TOOLS}


def get(name: str) -> ToolSpec:
    """The tool called ``name``; an unknown name lists the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown tool {name!r} (known: {', '.join(BY_NAME)})") from None


def as_langchain(
    spec: ToolSpec,
    *,
    box: Toolbox,
    on_result: Callable[[ToolResult], None] | None = None,
) -> StructuredTool:
    """The tool as a LangChain StructuredTool: the model sees the text, the ToolResult rides along
    as the artifact (and goes to ``on_result``) so the bot keeps the evidence."""

    def call(**arguments: Any) -> tuple[str, ToolResult]:
        result = spec.run(box, arguments)
        if on_result is not None:
            on_result(result)
        return result.text, result

    return StructuredTool.from_function(
        func=call,
        name=spec.name,
        description=spec.description,
        args_schema=spec.args,
        response_format="content_and_artifact",
    )
