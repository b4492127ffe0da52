"""The fix catalog: a fix code and the live object in, a guarded patch or a refusal out.

One entry per code of SCENARIOS.md's fix table: which kinds it applies to, the builder that
computes the change and its bounds, and the one-line risk a reviewer reads. Nothing here reads
the cluster; the caller passes the object and a FixContext, so a build is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.fixes import cluster, podspec, pointer, serving
from bot.fixes.builder import PatchBuilder, Refuse
from bot.fixes.model import FixContext, FixPatch, Refused

Builder = Callable[[PatchBuilder, FixContext], str]
WORKLOADS = frozenset({"Deployment", "StatefulSet"})
NODEPOOL = frozenset({"NodePool"})
NODE = frozenset({"Node"})


@dataclass(frozen=True)
class Entry:
    """What the catalog knows about one fix code."""

    kinds: frozenset[str]
    build: Builder
    risk: str


CATALOG: dict[str, Entry] = {
    "lower-gpu-memory-utilization": Entry(
        WORKLOADS,
        serving.lower_gpu_memory_utilization,
        "Smaller KV cache: fewer concurrent sequences, lower peak throughput; pods roll.",
    ),
    "limit-max-num-seqs": Entry(
        WORKLOADS,
        serving.limit_max_num_seqs,
        "Fewer sequences per batch: lower peak throughput, more queueing under load; pods roll.",
    ),
    "reduce-batch-size": Entry(
        WORKLOADS, serving.reduce_batch_size, "Smaller batches: lower throughput; pods roll."
    ),
    "enable-quantization": Entry(
        WORKLOADS,
        serving.enable_quantization,
        "fp8 weights change numerics (small quality loss) and need a GPU and vLLM build "
        "that support fp8; pods roll and reload weights.",
    ),
    "limit-max-model-len": Entry(
        WORKLOADS,
        serving.limit_max_model_len,
        "Requests longer than 4096 tokens (prompt + output) are rejected; pods roll.",
    ),
    "increase-tensor-parallel": Entry(
        WORKLOADS,
        serving.increase_tensor_parallel,
        "Each pod needs more GPUs and may stay Pending until a node has them free; pods roll.",
    ),
    "increase-nccl-timeout": Entry(
        WORKLOADS,
        serving.increase_nccl_timeout,
        "A hung collective is detected later; works only where the image reads it; pods roll.",
    ),
    "increase-request-timeout": Entry(
        WORKLOADS,
        serving.increase_request_timeout,
        "Slow or stuck requests hold connections and workers for up to 300 s; pods roll.",
    ),
    "enable-efa": Entry(
        WORKLOADS,
        podspec.enable_efa,
        "Pods need free EFA interfaces (EFA device plugin) on their node; pods roll.",
    ),
    "add-zone-anti-affinity": Entry(
        WORKLOADS,
        podspec.add_zone_anti_affinity,
        "Preferred only; replicas may move zones (cross-zone traffic cost); pods roll.",
    ),
    "use-model-cache-pvc": Entry(
        WORKLOADS,
        podspec.use_model_cache_pvc,
        "A ReadWriteOnce volume attaches to one node: pods on other nodes stay Pending; pods roll.",
    ),
    "increase-memory-limit": Entry(
        WORKLOADS,
        podspec.increase_memory_limit,
        "Pods reserve more node memory, so fewer fit per node; pods roll.",
    ),
    "extend-startup-probe": Entry(
        WORKLOADS,
        podspec.extend_startup_probe,
        "A pod that hangs while starting is restarted only after 30 minutes; pods roll.",
    ),
    "add-instance-types": Entry(
        NODEPOOL, cluster.add_instance_types, "Karpenter may launch costlier instance types."
    ),
    "add-zones": Entry(
        NODEPOOL,
        cluster.add_zones,
        "Nodes may launch in other zones: cross-zone traffic, and zonal EBS volumes stay behind.",
    ),
    "allow-on-demand": Entry(
        NODEPOOL, cluster.allow_on_demand, "On-demand capacity costs more than spot."
    ),
    "raise-nodepool-limit": Entry(
        NODEPOOL, cluster.raise_nodepool_limit, "More GPUs may be launched: a higher spend ceiling."
    ),
    "cordon-node": Entry(
        NODE, cluster.cordon_node, "No new pods land on the node; running pods stay until drained."
    ),
    "scale-up": Entry(
        WORKLOADS, cluster.scale_up, "One more replica: more GPU spend; it needs a free GPU node."
    ),
    "scale-down": Entry(
        WORKLOADS, cluster.scale_down, "One fewer replica: less headroom for traffic spikes."
    ),
    "rollout-restart": Entry(
        WORKLOADS,
        cluster.rollout_restart,
        "Every pod is replaced by a rolling update: capacity dips while new pods load the model.",
    ),
}


def target_of(obj: Mapping[str, Any]) -> str:
    """SCENARIOS.md's name: ``deployment/NS/NAME``, ``nodepool/NAME``, ``node/NAME``."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "unknown").lower()
    namespace = meta.get("namespace")
    name = str(meta.get("name") or "")
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def build(code: str, target_obj: Mapping[str, Any], *, context: FixContext) -> FixPatch | Refused:
    """The bounded patch for ``code`` on ``target_obj`` (as the API serves it), or why not."""
    target = target_of(target_obj)
    entry = CATALOG.get(code)
    if entry is None:
        return Refused(code, target, f"unknown fix code {code!r}")
    kind = str(target_obj.get("kind") or "")
    if kind not in entry.kinds:
        wanted = " or ".join(sorted(entry.kinds))
        return Refused(
            code, target, f"{code} applies to a {wanted}, not a {kind or 'kindless object'}"
        )
    b = PatchBuilder(target_obj)
    try:
        summary = entry.build(b, context)
    except Refuse as e:
        return Refused(code, target, str(e))
    except (pointer.PatchError, KeyError, TypeError, AttributeError, ValueError) as e:
        return Refused(code, target, f"the {kind} has a shape this fix does not handle ({e})")
    return FixPatch(
        code=code, target=target, ops=b.ops, diff=b.diff, summary=summary, risk=entry.risk
    )
