"""The codes SCENARIOS.md fixes from outside: runbook ids, finding codes, fix codes, check ids.

They are the vocabulary shared by the runbooks, the detectors, the fix catalog, the eval and the
scenario loader. Codes may be added (and documented in ``runbooks/``); the v1 ones never change.
"""

from __future__ import annotations

RUNBOOK_IDS: frozenset[str] = frozenset(
    {
        "gpu-oom",
        "network-latency",
        "model-loading-failure",
        "karpenter-provisioning-failure",
        "gpu-hardware-fault",
        "gpu-underutilized",
        "inference-latency-high",
        "inference-error-rate-high",
        "model-pod-restarting",
        "cost",
    }
)

FINDING_CODES: frozenset[str] = frozenset(
    {
        "gpu-oom/kv-cache-pressure",
        "gpu-oom/batch-too-large",
        "gpu-oom/model-too-large",
        "gpu-oom/context-too-long",
        "gpu-oom/expected-preallocation",
        "network-latency/nccl-timeout",
        "network-latency/dns-failure",
        "network-latency/request-timeout",
        "network-latency/single-zone-replicas",
        "model-loading-failure/download-forbidden",
        "model-loading-failure/source-unreachable",
        "model-loading-failure/oom-during-load",
        "model-loading-failure/cache-pvc-pending",
        "model-loading-failure/startup-probe-too-short",
        "karpenter-provisioning-failure/insufficient-capacity",
        "karpenter-provisioning-failure/single-zone",
        "karpenter-provisioning-failure/spot-only",
        "karpenter-provisioning-failure/nodepool-limit",
        "gpu-hardware-fault/xid-error",
        "gpu-hardware-fault/ecc-double-bit",
        "gpu-hardware-fault/thermal",
        # Added by the project (runbooks/gpu-hardware-fault.md): XIDs the application causes
        # (13, 31, 43, 45) are a software fault, so the node must not be cordoned for them.
        "gpu-hardware-fault/application-xid",
        "gpu-underutilized/idle-replicas",
        "inference-latency-high/queueing",
        "inference-latency-high/preemption",
        "cost/idle-gpu-spend",
        "cost/scale-out",
        "cost/on-demand-shift",
    }
)

FIX_CODES: frozenset[str] = frozenset(
    {
        "lower-gpu-memory-utilization",
        "limit-max-num-seqs",
        "reduce-batch-size",
        "enable-quantization",
        "limit-max-model-len",
        "increase-tensor-parallel",
        "increase-nccl-timeout",
        "increase-request-timeout",
        "enable-efa",
        "add-zone-anti-affinity",
        "use-model-cache-pvc",
        "increase-memory-limit",
        "extend-startup-probe",
        "add-instance-types",
        "add-zones",
        "allow-on-demand",
        "raise-nodepool-limit",
        "cordon-node",
        "scale-up",
        "scale-down",
        "rollout-restart",
    }
)

CHECK_IDS: frozenset[str] = frozenset(
    {
        "gpu-nodes-ready",
        "model-pods-running",
        "error-rate",
        "p99-latency",
        "gpu-utilization",
        "gpu-memory",
        "daily-cost",
    }
)

CHECK_STATUSES: frozenset[str] = frozenset({"ok", "warn", "fail", "unknown"})
APPLY_OUTCOMES: frozenset[str] = frozenset({"applied", "rolled-back", "failed"})

# Kinds a fix may target, as written in `code@target` (SCENARIOS.md): cluster-scoped kinds take
# NAME, namespaced ones NAMESPACE/NAME.
CLUSTER_SCOPED_TARGET_KINDS: frozenset[str] = frozenset({"node", "nodepool"})
NAMESPACED_TARGET_KINDS: frozenset[str] = frozenset({"deployment", "pod", "statefulset"})
