"""``opsbot lab generate``: a valid scenario of a healthy fleet of any size, for benchmarks.

Deterministic for a given size. Every GPU gets utilisation and framebuffer series; every model
gets gateway counters and a latency histogram; history is short by default because backfilling
runs at roughly 120k samples a second here.
"""

from __future__ import annotations

import random
import uuid as uuid_mod
from typing import Any

from tools import instance_types

MODELS = ["llama-3-70b", "llama-3-8b", "mixtral-8x7b", "qwen2-72b", "mistral-7b"]
ZONES = ["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c"]


def _instance_for(gpus: int) -> instance_types.InstanceType:
    for kind in instance_types.INSTANCE_TYPES.values():
        if kind.gpus == gpus:
            return kind
    counts = sorted({k.gpus for k in instance_types.INSTANCE_TYPES.values() if k.gpus})
    raise ValueError(f"no known instance type has {gpus} GPUs (choose one of {counts})")


def fleet(*, nodes: int, gpus_per_node: int = 8, hours: int = 2, seed: int = 7) -> dict[str, Any]:
    """A scenario (as plain data) of ``nodes`` healthy GPU nodes serving a few models."""
    if nodes < 1 or hours < 1:
        raise ValueError("nodes and hours must be at least 1")
    kind = _instance_for(gpus_per_node)
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    steps = hours * 60
    node_names = [
        f"ip-10-{1 + i // 250}-{i % 250}-10.ap-northeast-2.compute.internal" for i in range(nodes)
    ]
    series: dict[str, str] = {}
    workloads: list[dict[str, Any]] = []
    per_model: dict[str, list[str]] = {m: [] for m in MODELS}
    for i, node in enumerate(node_names):
        per_model[MODELS[i % len(MODELS)]].append(node)
    gpu_mib = kind.gpu_memory_gib * 1024
    for model, hosts in per_model.items():
        if not hosts:
            continue
        pods = []
        for n, host in enumerate(hosts):
            pod = f"{model}-5d8f7c9b4-{n:05d}"
            pods.append({"name": pod, "node": host})
            for gpu in range(gpus_per_node):
                uuid = f"GPU-{uuid_mod.uuid5(uuid_mod.NAMESPACE_DNS, f'{host}/{gpu}')}"
                labels = (
                    f'Hostname="{host}",gpu="{gpu}",UUID="{uuid}",modelName="{kind.gpu_model}",'
                    f'namespace="inference",pod="{pod}",container="vllm"'
                )
                used = int(gpu_mib * 0.9)
                series[f"DCGM_FI_DEV_GPU_UTIL{{{labels}}}"] = f"{rng.randint(50, 70)}x{steps}"
                series[f"DCGM_FI_DEV_FB_USED{{{labels}}}"] = f"{used}x{steps}"
                series[f"DCGM_FI_DEV_FB_FREE{{{labels}}}"] = f"{gpu_mib - used}x{steps}"
        rps = 20 * len(hosts)
        per_step = rps * 60
        series[f'inference_request_total{{model="{model}"}}'] = f"0+{per_step}x{steps}"
        series[f'inference_request_errors_total{{model="{model}"}}'] = (
            f"0+{max(per_step // 1000, 1)}x{steps}"
        )
        for le, share in [
            ("0.5", 0.5),
            ("1", 0.8),
            ("2.5", 0.97),
            ("5", 0.995),
            ("10", 1.0),
            ("+Inf", 1.0),
        ]:
            bucket = f'inference_request_duration_seconds_bucket{{model="{model}",le="{le}"}}'
            series[bucket] = f"0+{int(per_step * share)}x{steps}"
        workloads.append(
            {
                "name": model,
                "namespace": "inference",
                "replicas": len(hosts),
                "labels": {"app": "inference", "model": model},
                "containers": [
                    {
                        "name": "vllm",
                        "image": "vllm/vllm-openai:v0.11.0",
                        "args": ["--model", model, "--tensor-parallel-size", str(gpus_per_node)],
                        "resources": {"limits": {"nvidia.com/gpu": gpus_per_node}},
                    }
                ],
                "pods": pods,
            }
        )
    return {
        "name": f"fleet-{nodes}-nodes",
        "description": (
            f"A healthy fleet: {nodes} nodes of {kind.name}, {nodes * gpus_per_node} GPUs, "
            f"{hours} h of history."
        ),
        "cluster": {
            "name": "bench",
            "nodes": [
                {
                    "name": node,
                    "instance_type": kind.name,
                    "zone": ZONES[i % len(ZONES)],
                    "nodepool": "gpu",
                }
                for i, node in enumerate(node_names)
            ],
            "workloads": workloads,
            "nodepools": [
                {
                    "name": "gpu",
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": [kind.name],
                        }
                    ],
                    "limits": {"nvidia.com/gpu": nodes * gpus_per_node * 2},
                }
            ],
        },
        "metrics": {"interval": "1m", "series": series},
        "costs": {
            "allocations": [
                {
                    "namespace": "inference",
                    "controller": model,
                    "day": f"-{day}d",
                    "gpuCost": 1.2 * len(hosts) * 24,
                }
                for model, hosts in per_model.items()
                if hosts
                for day in range(2)
            ]
        },
        "expect": {"checks": {"gpu-nodes-ready": "ok", "model-pods-running": "ok"}},
    }
