"""The daily checks on the lab: public scenarios' expected statuses, and each check's bounds.

One small scenario holds every bound at once (a GPU mean of exactly 40 %, an error ratio of
exactly 1 %, a vLLM GPU at exactly its gpu-memory-utilization + 0.05); the thresholds move
around the measured values, so one lab answers both sides of each bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot import clients
from bot.config import Settings, Thresholds
from bot.diagnose import codes
from bot.diagnose.investigation import Investigation, Subject
from bot.diagnose.model import CheckResult, Trigger
from bot.reports import checks
from lab import up
from lab.scenario import loader

AskFor = Callable[[Settings], checks.Ask]

ROOT = Path(__file__).resolve().parents[4]
TABLE = [
    "gpu-nodes-ready",
    "model-pods-running",
    "error-rate",
    "p99-latency",
    "gpu-utilization",
    "gpu-memory",
    "daily-cost",
]

VLLM = "vllm/vllm-openai:v0.11.0"
BOUNDS = f"""
name: t-check-bounds
cluster:
  nodes:
    - {{name: cpu-a, instance_type: m5.2xlarge}}
    - {{name: gpu-a, instance_type: g6e.xlarge}}
    - {{name: gpu-b, instance_type: g6e.xlarge}}
    - {{name: gpu-c, instance_type: g6e.xlarge}}
    - {{name: gpu-d, instance_type: g6e.xlarge}}
  workloads:
    - name: vl-default          # vLLM without --gpu-memory-utilization: vLLM's 0.9
      labels: {{app: inference, model: vl-default}}
      containers:
        - {{name: vllm, image: "{VLLM}", args: [--model, Qwen/Qwen2.5-7B-Instruct],
           resources: {{limits: {{nvidia.com/gpu: 1}}}}}}
      pods: [{{name: vl-default-6f7c9d8b5-a1b2c, node: gpu-a}}]
    - name: vl-90
      replicas: 2
      labels: {{app: inference, model: vl-90}}
      containers:
        - {{name: vllm, image: "{VLLM}",
           args: [--model, Qwen/Qwen2.5-7B-Instruct, --gpu-memory-utilization, "0.9"],
           resources: {{limits: {{nvidia.com/gpu: 1}}}}}}
      pods: [{{name: vl-90-7d8c9b6f5-b2c3d, node: gpu-b}}, {{name: vl-90-7d8c9b6f5-c3d4e, node: gpu-c}}]
    - name: embedder            # a GPU server that is not vLLM
      labels: {{app: embeddings}}
      containers:
        - {{name: tei, image: "ghcr.io/huggingface/text-embeddings-inference:1.5",
           args: [--model-id, BAAI/bge-large-en-v1.5], resources: {{limits: {{nvidia.com/gpu: 1}}}}}}
      pods: [{{name: embedder-5c6d7e8f9-d4e5f, node: gpu-d}}]
  pods:                         # a finished Job's pod: not a model server
    - {{name: warm-cache-x7k2q, node: cpu-a, phase: Succeeded, containers: [{{name: warm, image: "busybox:1.36"}}]}}
metrics:
  series:
    # utilisation 20, 60, 40, 40: mean exactly 40 %. Framebuffer used/(used+free):
    # gpu-a 0.95 (vLLM default 0.9), gpu-b 0.93 and gpu-c 0.96 (vLLM 0.9), gpu-d 0.92 (not vLLM).
    'DCGM_FI_DEV_GPU_UTIL{{Hostname="gpu-a",gpu="0",namespace="inference",pod="vl-default-6f7c9d8b5-a1b2c",container="vllm"}}': "20x1439"
    'DCGM_FI_DEV_FB_USED{{Hostname="gpu-a",gpu="0",namespace="inference",pod="vl-default-6f7c9d8b5-a1b2c",container="vllm"}}': "95x1439"
    'DCGM_FI_DEV_FB_FREE{{Hostname="gpu-a",gpu="0",namespace="inference",pod="vl-default-6f7c9d8b5-a1b2c",container="vllm"}}': "5x1439"
    'DCGM_FI_DEV_GPU_UTIL{{Hostname="gpu-b",gpu="0",namespace="inference",pod="vl-90-7d8c9b6f5-b2c3d",container="vllm"}}': "60x1439"
    'DCGM_FI_DEV_FB_USED{{Hostname="gpu-b",gpu="0",namespace="inference",pod="vl-90-7d8c9b6f5-b2c3d",container="vllm"}}': "93x1439"
    'DCGM_FI_DEV_FB_FREE{{Hostname="gpu-b",gpu="0",namespace="inference",pod="vl-90-7d8c9b6f5-b2c3d",container="vllm"}}': "7x1439"
    'DCGM_FI_DEV_GPU_UTIL{{Hostname="gpu-c",gpu="0",namespace="inference",pod="vl-90-7d8c9b6f5-c3d4e",container="vllm"}}': "40x1439"
    'DCGM_FI_DEV_FB_USED{{Hostname="gpu-c",gpu="0",namespace="inference",pod="vl-90-7d8c9b6f5-c3d4e",container="vllm"}}': "96x1439"
    'DCGM_FI_DEV_FB_FREE{{Hostname="gpu-c",gpu="0",namespace="inference",pod="vl-90-7d8c9b6f5-c3d4e",container="vllm"}}': "4x1439"
    'DCGM_FI_DEV_GPU_UTIL{{Hostname="gpu-d",gpu="0",namespace="inference",pod="embedder-5c6d7e8f9-d4e5f",container="tei"}}': "40x1439"
    'DCGM_FI_DEV_FB_USED{{Hostname="gpu-d",gpu="0",namespace="inference",pod="embedder-5c6d7e8f9-d4e5f",container="tei"}}': "92x1439"
    'DCGM_FI_DEV_FB_FREE{{Hostname="gpu-d",gpu="0",namespace="inference",pod="embedder-5c6d7e8f9-d4e5f",container="tei"}}': "8x1439"
    # 1 error per 100 requests: exactly 1 %.
    'inference_request_total{{model="vl-90"}}': "0+100x1439"
    'inference_request_errors_total{{model="vl-90"}}': "0+1x1439"
    # p99: vl-90 1 + 3 * 0.99 = 3.97 s (every request between 1 and 4 s), vl-default 0.99 s.
    'inference_request_duration_seconds_bucket{{model="vl-90",le="1"}}': "0x1439"
    'inference_request_duration_seconds_bucket{{model="vl-90",le="4"}}': "0+100x1439"
    'inference_request_duration_seconds_bucket{{model="vl-90",le="+Inf"}}': "0+100x1439"
    'inference_request_duration_seconds_bucket{{model="vl-default",le="1"}}': "0+10x1439"
    'inference_request_duration_seconds_bucket{{model="vl-default",le="+Inf"}}': "0+10x1439"
costs:
  allocations:
    - {{namespace: inference, controller: vl-90, day: -0d, gpuCost: 600}}
    - {{namespace: monitoring, day: -0d, cpuCost: 100}}
"""


def _by_id(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.id: r for r in results}


def test_order_is_the_table_and_covers_every_check_id() -> None:
    assert list(checks.ORDER) == TABLE
    assert set(TABLE) == codes.CHECK_IDS


@pytest.mark.parametrize(
    "name",
    [
        "daily-checks-healthy",
        "gpu-underutilized-idle-replicas",
        "daily-cost-idle-gpus",
        "gpu-memory-expected-preallocation",
        "single-zone-replicas-az-impairment",
        "latency-queueing-scale-up",
    ],
)
def test_public_scenarios_get_their_expected_statuses(name: str) -> None:
    scenario = loader.load_file(ROOT / "scenarios" / f"{name}.yaml")
    with up.Lab(scenario) as lab:
        lab.start(deliver_alerts=False)
        inv = Investigation(
            box=clients.build_toolbox(lab.settings()),
            trigger=Trigger(kind="question", question="daily checks"),
            subject=Subject(namespace="inference"),
        )
        results = checks.run_checks(inv.tool, thresholds=Thresholds(), namespace="inference")
    assert [r.id for r in results] == TABLE
    got = {r.id: r.status for r in results}
    assert {k: got[k] for k in scenario.expect.checks} == scenario.expect.checks
    for r in results:
        assert r.evidence and all(e.call for e in r.evidence), r
    assert inv.unreachable == set()


@pytest.fixture(scope="module")
def bounds_lab() -> Iterator[up.Lab]:
    """The bounds scenario's lab, shared by the tests below."""
    with up.Lab(loader.load_text(BOUNDS)) as lab:
        lab.start(deliver_alerts=False)
        yield lab


@pytest.fixture(scope="module")
def bounds(bounds_lab: up.Lab, ask_for: AskFor) -> checks.Ask:
    return ask_for(bounds_lab.settings())


def _one(ask: checks.Ask, check_id: str, **thresholds: float) -> CheckResult:
    (result,) = checks.run_checks(
        ask, thresholds=Thresholds(**thresholds), namespace="inference", ids=[check_id]
    )
    return result


def test_kubernetes_checks_count_ready_nodes_and_leave_finished_pods_out(
    bounds: checks.Ask,
) -> None:
    nodes = _one(bounds, "gpu-nodes-ready")
    assert (nodes.status, nodes.value) == ("ok", "4/4 Ready")  # cpu-a is not a GPU node
    assert nodes.evidence[0].source == "kubernetes" and "/api/v1/nodes" in nodes.evidence[0].call
    pods = _one(bounds, "model-pods-running")
    assert pods.status == "ok" and pods.value.startswith("4/4 Running and Ready")
    assert "/namespaces/inference/pods" in pods.evidence[0].call


def test_error_rate_must_be_below_its_threshold(bounds: checks.Ask) -> None:
    at = _one(bounds, "error-rate")
    assert at.status == "fail" and at.value.startswith("1 %")  # exactly 1 % is not below 1 %
    assert _one(bounds, "error-rate", error_rate=0.0101).status == "ok"
    call = at.evidence[0].call
    assert (
        "sum(increase(inference_request_errors_total[24h])) / "
        "sum(increase(inference_request_total[24h]))" in call
    )


def test_p99_names_the_worst_model(bounds: checks.Ask) -> None:
    fine = _one(bounds, "p99-latency")
    assert fine.status == "ok" and fine.value.startswith("vl-90 3.97 s")
    assert "the worst of 2 models" in fine.value
    assert _one(bounds, "p99-latency", p99_latency_seconds=3.97).status == "fail"
    assert _one(bounds, "p99-latency", p99_latency_seconds=3.98).status == "ok"
    assert fine.evidence[0].call == (
        "histogram_quantile(0.99, sum by (le, model) "
        "(rate(inference_request_duration_seconds_bucket[24h])))"
    )


def test_gpu_utilization_range_is_inclusive_and_outside_is_only_a_warning(
    bounds: checks.Ask,
) -> None:
    low_edge = _one(bounds, "gpu-utilization")  # mean exactly 40 %, range 40-80
    assert low_edge.status == "ok" and low_edge.value.startswith("40 % mean over 4 GPUs")
    assert "avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[24h]))" in low_edge.evidence[0].call
    high_edge = _one(bounds, "gpu-utilization", gpu_utilization_min=0.2, gpu_utilization_max=0.4)
    assert high_edge.status == "ok"
    below = _one(bounds, "gpu-utilization", gpu_utilization_min=0.41)
    assert below.status == "warn" and "below 41 %" in below.value
    above = _one(bounds, "gpu-utilization", gpu_utilization_min=0.2, gpu_utilization_max=0.39)
    assert above.status == "warn" and "above 39 %" in above.value


def test_gpu_memory_limit_follows_what_runs_on_each_gpu(bounds: checks.Ask) -> None:
    # gpu-a 0.95 vLLM (default 0.9): on its bound, ok; gpu-b 0.93 vLLM 0.9: ok;
    # gpu-c 0.96 vLLM 0.9: over 0.95; gpu-d 0.92 not vLLM: over 0.90 (the worst excess).
    both = _one(bounds, "gpu-memory")
    assert both.status == "fail"
    assert both.value.startswith("92 % on gpu-d/gpu 0 (deployment/inference/embedder, not vLLM")
    assert "2 of 4 GPUs over their limit" in both.value
    assert [e.where for e in both.evidence[:2]] == ["node/gpu-d", "node/gpu-c"]
    assert both.evidence[0].call == (
        "avg_over_time(DCGM_FI_DEV_FB_USED[24h]) / (avg_over_time(DCGM_FI_DEV_FB_USED[24h]) "
        "+ avg_over_time(DCGM_FI_DEV_FB_FREE[24h]))"
    )
    assert both.evidence[-1].where == "deployment/inference/embedder"
    assert "deployments/embedder" in both.evidence[-1].call

    vllm_only = _one(bounds, "gpu-memory", gpu_memory=0.93)
    assert vllm_only.status == "fail" and vllm_only.value.startswith("96 % on gpu-c/gpu 0")
    assert "vLLM in deployment/inference/vl-90, gpu-memory-utilization 0.9" in vllm_only.value
    assert "1 of 4 GPUs" in vllm_only.value
    assert vllm_only.evidence[-1].value == "vllm runs vLLM, gpu-memory-utilization 0.9"

    other_only = _one(bounds, "gpu-memory", vllm_memory_slack=0.06)
    assert other_only.status == "fail" and other_only.value.startswith("92 % on gpu-d/gpu 0")
    assert "1 of 4 GPUs" in other_only.value

    tighter = _one(bounds, "gpu-memory", vllm_memory_slack=0.04)  # gpu-a (default 0.9) too
    assert "3 of 4 GPUs" in tighter.value

    fine = _one(bounds, "gpu-memory", gpu_memory=0.93, vllm_memory_slack=0.06)
    assert fine.status == "ok" and fine.value.startswith("highest 96 % on gpu-c/gpu 0")


def test_daily_cost_sums_namespaces_over_the_exact_last_24h(bounds: checks.Ask) -> None:
    fine = _one(bounds, "daily-cost")
    assert fine.status == "ok" and fine.value.startswith("700.00 USD over ")
    assert "most: inference 600.00, monitoring 100.00" in fine.value
    assert fine.threshold == "< 1,000.00 USD"
    call = fine.evidence[0].call
    assert "aggregate=namespace" in call
    start, end = call.split("window=")[1].split("&")[0].split("%2C")
    assert int(end) - int(start) == 86_400
    assert _one(bounds, "daily-cost", daily_budget_usd=690).status == "fail"
    assert _one(bounds, "daily-cost", daily_budget_usd=710).status == "ok"


def test_ids_choose_checks_in_table_order_and_reject_unknown_ones(bounds: checks.Ask) -> None:
    chosen = checks.run_checks(
        bounds,
        thresholds=Thresholds(),
        namespace="inference",
        ids=["daily-cost", "gpu-nodes-ready"],
    )
    assert [r.id for r in chosen] == ["gpu-nodes-ready", "daily-cost"]
    with pytest.raises(ValueError, match="gpu-temperature"):
        checks.run_checks(
            bounds, thresholds=Thresholds(), namespace="inference", ids=["gpu-temperature"]
        )


def test_a_full_gpu_whose_workload_cannot_be_read_is_unknown(
    bounds_lab: up.Lab, ask_for: AskFor, closed_kubeconfig: Path
) -> None:
    ask = ask_for(bounds_lab.settings(kubeconfig=closed_kubeconfig))  # Prometheus still answers
    full = _one(ask, "gpu-memory")
    assert full.status == "unknown"  # vLLM (limit 0.95) or not (0.90)? not a guess either way
    assert full.value.startswith("96 % on gpu-c/gpu 0 (what runs on it is unknown: kubernetes")
    assert "4 GPUs at or above 90 %" in full.value
    assert full.evidence[-1].where == "deployment/inference/vl-90"
    assert _one(ask, "gpu-memory", gpu_memory=0.97).status == "ok"  # below any limit there
