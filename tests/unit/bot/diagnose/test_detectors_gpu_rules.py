"""The GPU and cost rules no public scenario exercises, each on a small scenario of its own.

Written in the scenario format and run on the whole lab like the public ones: a CUDA OOM under
a serving image's MAX_BATCH_SIZE, one while loading weights, vLLM refusing a context its KV
cache cannot hold, the kernel's OOMKilled (not a GPU OOM), double-bit ECC and heat on two
nodes of a fleet, a cost rise from spot to on-demand, and one idle replica that cannot shrink.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot import clients
from bot.diagnose.detectors import cost, gpu_hardware, gpu_idle, gpu_memory, latency
from bot.diagnose.investigation import Investigation, Subject
from bot.diagnose.model import Finding, Trigger
from lab import up
from lab.scenario import loader

MODULES = (gpu_memory, gpu_hardware, gpu_idle, latency, cost)
GPU_OOM = sorted(gpu_memory.CODES)
A = "ip-10-1-7-7.ap-northeast-2.compute.internal"
B = "ip-10-1-9-9.ap-northeast-2.compute.internal"
C = "ip-10-1-11-3.ap-northeast-2.compute.internal"
SERVING = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/genai/llm-serving:2.3.1"

BATCH = f"""
name: t-batch-too-large
cluster:
  nodes: [{{name: {A}, instance_type: g5.xlarge, nodepool: gpu-a10g}}]
  workloads:
    - name: mistral-7b
      labels: {{app: inference, model: mistral-7b}}
      containers:
        - name: server
          image: {SERVING}
          command: [vllm, serve]
          args: [mistralai/Mistral-7B-Instruct-v0.3, --max-model-len, "8192"]
          env: {{MAX_BATCH_SIZE: "64"}}
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
      pods:
        - name: mistral-7b-5f6d7c8b9-x2k4p
          node: {A}
          restarts: 2
          last_terminated: {{reason: Error, exit_code: 1, finished_at: -5m}}
          previous_logs: |
            INFO 10-14 03:10:02 [gpu_model_runner.py:2653] Model loading took 13.51 GiB and 30.1 seconds
            INFO:     Application startup complete.
            ERROR 10-14 03:55:40 [core.py:710] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 22.07 GiB of which 1.02 GiB is free.
alerts:
  - labels: {{alertname: GPUMemoryHigh, namespace: inference, pod: mistral-7b-5f6d7c8b9-x2k4p}}
expect:
  findings: [gpu-oom/batch-too-large]
  not_findings: [gpu-oom/kv-cache-pressure, gpu-oom/model-too-large, gpu-oom/context-too-long]
  fixes: [reduce-batch-size@deployment/inference/mistral-7b]
  not_fixes: [lower-gpu-memory-utilization, increase-tensor-parallel, limit-max-num-seqs]
"""

TOO_LARGE = f"""
name: t-model-too-large
cluster:
  nodes: [{{name: {A}, instance_type: p4d.24xlarge, nodepool: gpu-a100}}]
  workloads:
    - name: llama-3-70b
      labels: {{app: inference, model: llama-3-70b}}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: [--model, meta-llama/Meta-Llama-3-70B-Instruct, --tensor-parallel-size, "2"]
          resources: {{limits: {{nvidia.com/gpu: 2}}}}
      pods:
        - name: llama-3-70b-6c5d4f7b8-q9w2e
          node: {A}
          ready: false
          restarts: 4
          waiting_reason: CrashLoopBackOff
          last_terminated: {{reason: Error, exit_code: 1, finished_at: -2m}}
          previous_logs: |
            INFO 10-14 03:50:01 [gpu_model_runner.py:1953] Starting to load model meta-llama/Meta-Llama-3-70B-Instruct...
            Loading safetensors checkpoint shards:  47% Completed | 14/30 [01:02<01:11]
            ERROR 10-14 03:51:20 [core.py:710] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 448.00 MiB. GPU 0 has a total capacity of 39.38 GiB of which 112.00 MiB is free.
question: Why does llama-3-70b keep crashing?
expect:
  findings: [gpu-oom/model-too-large]
  not_findings: [gpu-oom/kv-cache-pressure, gpu-oom/batch-too-large, gpu-oom/context-too-long]
  fixes:
    - increase-tensor-parallel@deployment/inference/llama-3-70b
  # online fp8 loads the bf16 weights first, so it cannot rescue weights that do not fit
  not_fixes: [enable-quantization, lower-gpu-memory-utilization, limit-max-num-seqs, reduce-batch-size]
"""

CONTEXT = f"""
name: t-context-too-long
cluster:
  nodes: [{{name: {A}, instance_type: g6.xlarge, nodepool: gpu-l4}}]
  workloads:
    - name: llama-3-8b
      labels: {{app: inference, model: llama-3-8b}}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: [--model, meta-llama/Llama-3.1-8B-Instruct, --gpu-memory-utilization, "0.90"]
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
      pods:
        - name: llama-3-8b-7b6c5d4f9-m3n4b
          node: {A}
          ready: false
          restarts: 3
          waiting_reason: CrashLoopBackOff
          last_terminated: {{reason: Error, exit_code: 1, finished_at: -1m}}
          previous_logs: |
            INFO 10-14 03:57:02 [gpu_model_runner.py:2653] Model loading took 14.99 GiB and 25.4 seconds
            INFO 10-14 03:57:10 [kv_cache_utils.py:1087] GPU KV cache size: 42,192 tokens
            ERROR 10-14 03:57:10 [core.py:708] ValueError: The model's max seq len (131072) is larger than the maximum number of tokens that can be stored in KV cache (42192). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.
question: llama-3-8b never becomes ready, why?
expect:
  findings: [gpu-oom/context-too-long]
  not_findings: [gpu-oom/model-too-large, gpu-oom/kv-cache-pressure, gpu-oom/batch-too-large]
  # 16 GB of bf16 weights on a 24 GB L4: fp8 would double the room for the KV cache
  fixes: [limit-max-model-len@deployment/inference/llama-3-8b, enable-quantization@deployment/inference/llama-3-8b]
  not_fixes: [lower-gpu-memory-utilization, increase-tensor-parallel]
"""

HOST_OOM = f"""
name: t-host-oomkilled
cluster:
  nodes: [{{name: {A}, instance_type: p4de.24xlarge, nodepool: gpu-a100-80}}]
  workloads:
    - name: llama-3-70b
      labels: {{app: inference, model: llama-3-70b}}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: [--model, meta-llama/Meta-Llama-3-70B-Instruct, --tensor-parallel-size, "4"]
          resources: {{limits: {{nvidia.com/gpu: 4, memory: 64Gi}}}}
      pods:
        - name: llama-3-70b-5d4c3b2a1-z8x7c
          node: {A}
          ready: false
          restarts: 3
          waiting_reason: CrashLoopBackOff
          last_terminated: {{reason: OOMKilled, exit_code: 137, finished_at: -2m}}
          previous_logs: |
            INFO 10-14 03:50:01 [gpu_model_runner.py:1953] Starting to load model meta-llama/Meta-Llama-3-70B-Instruct...
            Loading safetensors checkpoint shards:  63% Completed | 19/30 [02:10<01:15]
question: Why does llama-3-70b keep restarting?
expect:
  not_findings: {GPU_OOM}
  not_fixes: [lower-gpu-memory-utilization, increase-tensor-parallel, enable-quantization]
"""


def _gpu(node: str, gpu: int, pod: str = "") -> str:
    labels = f'gpu="{gpu}",UUID="GPU-{gpu}{node[3:12]}",modelName="NVIDIA A100-SXM4-40GB"'
    labels += (
        f',Hostname="{node.split(".", maxsplit=1)[0]}"'  # dcgm's short host name, not the node's
    )
    return labels + (f',namespace="inference",pod="{pod}",container="vllm"' if pod else "")


FLEET = f"""
name: t-ecc-and-heat
cluster:
  nodes:
    - {{name: {A}, instance_type: p4d.24xlarge, nodepool: gpu-a100}}
    - {{name: {B}, instance_type: p4d.24xlarge, nodepool: gpu-a100}}
    - {{name: {C}, instance_type: p4d.24xlarge, nodepool: gpu-a100}}
metrics:
  series:
    'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{_gpu(A, 1)}}}': "0x30 2x30"
    'DCGM_FI_DEV_XID_ERRORS{{{_gpu(A, 1)}}}': "0x30 48x30"
    'DCGM_FI_DEV_GPU_TEMP{{{_gpu(A, 1)}}}': "61x60"
    'DCGM_FI_DEV_GPU_TEMP{{{_gpu(B, 4)}}}': "70x30 88x30"
    'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{{{_gpu(B, 4)}}}': "0x30 32x30"
    'DCGM_FI_DEV_GPU_TEMP{{{_gpu(C, 0)}}}': "64x60"
    'DCGM_FI_DEV_XID_ERRORS{{{_gpu(C, 0)}}}': "0x60"
    'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{_gpu(C, 0)}}}': "0x60"
question: Are the GPUs healthy?
expect:
  findings: [gpu-hardware-fault/ecc-double-bit, gpu-hardware-fault/thermal, gpu-hardware-fault/xid-error]
  not_findings: [gpu-hardware-fault/application-xid]
  fixes: ["cordon-node@node/{A}", "cordon-node@node/{B}"]
  not_fixes: ["cordon-node@node/{C}"]
"""


def _costs(per_day: dict[int, float]) -> str:
    return "\n".join(
        f"    - {{namespace: inference, controller: llama-3-8b, day: -{d}d, gpuCost: {c}}}"
        for d, c in per_day.items()
    )


SPOT_TO_ON_DEMAND = f"""
name: t-on-demand-shift
cluster:
  nodes:
    - {{name: {A}, instance_type: g6e.xlarge, nodepool: gpu-l40s, capacity_type: on-demand}}
    - {{name: {B}, instance_type: g6e.xlarge, nodepool: gpu-l40s, capacity_type: on-demand}}
  nodepools:
    - name: gpu-l40s
      requirements:
        - {{key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}}
  workloads:
    - name: llama-3-8b
      replicas: 2
      labels: {{app: inference, model: llama-3-8b}}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: [--model, meta-llama/Llama-3.1-8B-Instruct]
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
      pods:
        - {{name: llama-3-8b-6d5f8b7c9-aaaaa, node: {A}}}
        - {{name: llama-3-8b-6d5f8b7c9-bbbbb, node: {B}}}
metrics:
  series:
    'DCGM_FI_DEV_GPU_UTIL{{{_gpu(A, 0, "llama-3-8b-6d5f8b7c9-aaaaa")}}}': "61x1439"
    'DCGM_FI_DEV_GPU_UTIL{{{_gpu(B, 0, "llama-3-8b-6d5f8b7c9-bbbbb")}}}': "58x1439"
costs:
  allocations:
{_costs({6: 40.0, 5: 40.0, 4: 40.0, 3: 40.0, 2: 80.0, 1: 120.0, 0: 120.0})}
alerts:
  - labels: {{alertname: GPUCostSpike, severity: warning, namespace: inference}}
expect:
  findings: [cost/on-demand-shift]
  not_findings: [cost/scale-out, cost/idle-gpu-spend, gpu-underutilized/idle-replicas]
  not_fixes: [scale-down, scale-up, cordon-node]
"""

ONE_IDLE_REPLICA = f"""
name: t-one-idle-replica
cluster:
  nodes: [{{name: {A}, instance_type: g6.xlarge, nodepool: gpu-l4}}]
  workloads:
    - name: qwen2-5-7b
      labels: {{app: inference, model: qwen2-5-7b}}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: [--model, Qwen/Qwen2.5-7B-Instruct]
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
      pods: [{{name: qwen2-5-7b-6c9f7d8b5-4kmzq, node: {A}}}]
metrics:
  series:
    'DCGM_FI_DEV_GPU_UTIL{{{_gpu(A, 0, "qwen2-5-7b-6c9f7d8b5-4kmzq")}}}': "3x300"
alerts:
  - labels: {{alertname: GPUUnderutilized, severity: warning, namespace: inference, model: qwen2-5-7b}}
expect:
  not_findings: [gpu-underutilized/idle-replicas]
  not_fixes: [scale-down, scale-up]
"""

# The same refusal on a 48 GB L40S: 16 GB of weights is a third of the GPU, so fp8 would not
# change much; capping the context is the fix.
CONTEXT_ROOMY = (
    CONTEXT.replace("instance_type: g6.xlarge", "instance_type: g6e.xlarge")
    .replace(
        "  # 16 GB of bf16 weights on a 24 GB L4: fp8 would double the room for the KV cache\n", ""
    )
    .replace(", enable-quantization@deployment/inference/llama-3-8b]", "]")
    .replace(
        "not_fixes: [lower-gpu-memory-utilization,",
        "not_fixes: [enable-quantization, lower-gpu-memory-utilization,",
    )
)

CASES = {
    "batch": BATCH,
    "context-too-long-roomy-gpu": CONTEXT_ROOMY,
    "model-too-large": TOO_LARGE,
    "context-too-long": CONTEXT,
    "host-oomkilled": HOST_OOM,
    "ecc-and-heat": FLEET,
    "on-demand-shift": SPOT_TO_ON_DEMAND,
    "one-idle-replica": ONE_IDLE_REPLICA,
}


def _trigger(alerts: list[dict[str, str]], question: str | None) -> Trigger:
    if alerts:
        return Trigger(kind="alert", alertname=alerts[0]["alertname"], labels=alerts[0])
    return Trigger(kind="question", question=question)


def _subject(scenario_workloads: list[str], trigger: Trigger) -> Subject:
    words = set(trigger.labels.values()) | set((trigger.question or "").split())
    return Subject(namespace="inference", workloads=[w for w in scenario_workloads if w in words])


def _fixes(findings: list[Finding]) -> set[str]:
    return {f"{x.code}@{x.target}" for f in findings if not f.ruled_out for x in f.fixes}


def _proposed(wanted: str, found: set[str]) -> bool:
    return wanted in found if "@" in wanted else any(f.split("@")[0] == wanted for f in found)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule(case: str, tmp_path: Path) -> None:
    scenario = loader.load_text(CASES[case], source=f"<{case}>")
    trigger = _trigger([dict(a.labels) for a in scenario.alerts], scenario.question)
    subject = _subject([w.name for w in scenario.cluster.workloads], trigger)
    with up.Lab(scenario, workdir=tmp_path) as lab:
        lab.start(deliver_alerts=False)
        box = clients.build_toolbox(lab.settings(tool_timeout_seconds=10))
        box = dataclasses.replace(box, limits=dataclasses.replace(box.limits, attempts=1))
        inv = Investigation(box=box, trigger=trigger, subject=subject, now=lab.now)
        found = [f for m in MODULES for d in m.DETECTORS for f in d(inv)]
    live = {f.code for f in found if not f.ruled_out}
    expect = scenario.expect
    assert set(expect.findings) <= live, [f.summary for f in found]
    assert not set(expect.not_findings) & live, [f.summary for f in found]
    fixes = _fixes(found)
    assert all(_proposed(fix, fixes) for fix in expect.fixes), sorted(fixes)
    assert not any(_proposed(fix, fixes) for fix in expect.not_fixes), sorted(fixes)
    assert all(ev.call and ev.value for f in found for ev in f.evidence)
