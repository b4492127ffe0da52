"""The catalog: SCENARIOS.md's codes, kinds, refusals, hashes, and the public scenarios' fixes."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsonpatch
import pytest

from bot.diagnose import codes
from bot.fixes import catalog, model
from lab.kube import store as kube_store

V1_FIX_CODES = {
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


def test_every_v1_fix_code_has_a_builder() -> None:
    assert set(catalog.CATALOG) == V1_FIX_CODES
    assert set(catalog.CATALOG) <= codes.FIX_CODES


def test_codes_for_another_kind_are_refused(
    *, deployment: Any, nodepool: Any, node: Any, context: Any
) -> None:
    objects = {"Deployment": deployment(), "NodePool": nodepool([]), "Node": node()}
    for code, entry in catalog.CATALOG.items():
        for kind, obj in objects.items():
            if kind in entry.kinds:
                continue
            fix = catalog.build(code, obj, context=context())
            assert isinstance(fix, model.Refused)
            assert fix.why.startswith(f"{code} applies to a "), fix.why
            assert fix.why.endswith(f"not a {kind}")


def test_unknown_code_is_refused(*, deployment: Any, context: Any) -> None:
    fix = catalog.build("delete-namespace", deployment(), context=context())
    assert fix == model.Refused(
        "delete-namespace", "deployment/inference/llama-2-7b", "unknown fix code 'delete-namespace'"
    )


def test_an_object_of_unexpected_shape_is_refused_not_raised(*, context: Any) -> None:
    odd = {
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"template": {"spec": {"containers": "oops"}}},
    }
    for code, entry in catalog.CATALOG.items():
        if "Deployment" in entry.kinds:
            assert isinstance(
                catalog.build(code, odd, context=context(restarted_at="t")),
                model.FixPatch | model.Refused,
            )


def test_statefulsets_take_workload_fixes(*, deployment: Any, context: Any, verify: Any) -> None:
    obj = deployment()
    obj["kind"] = "StatefulSet"
    expected = copy.deepcopy(obj)
    expected["spec"]["replicas"] = 2
    fix = verify(obj, catalog.build("scale-up", obj, context=context()), expected)
    assert fix.target == "statefulset/inference/llama-2-7b"


def test_patch_hash_is_stable_and_binds_to_the_ops(*, deployment: Any, context: Any) -> None:
    obj = deployment()
    first = catalog.build("lower-gpu-memory-utilization", obj, context=context())
    again = catalog.build("lower-gpu-memory-utilization", copy.deepcopy(obj), context=context())
    assert isinstance(first, model.FixPatch) and isinstance(again, model.FixPatch)
    assert first.patch_hash == again.patch_hash == model.patch_hash(first.ops)
    tampered = copy.deepcopy(first.ops)
    tampered[-1]["value"] = "0.1"
    assert model.patch_hash(tampered) != first.patch_hash
    assert len(first.patch_hash) == 64


# The public scenarios' expected fixes, built on the objects the lab serves for them.


def _context(store: kube_store.ObjectStore, obj: Mapping[str, Any]) -> model.FixContext:
    """What the engine will pass: the workload's node, the cluster's zones, PVCs, a time."""
    nodes = {n["metadata"]["name"]: n for n in store.list("Node")}
    facts = None
    if obj["kind"] == "Deployment":
        selector = obj["spec"]["selector"]["matchLabels"]
        pods = [
            p
            for p in store.list("Pod", obj["metadata"]["namespace"])
            if selector.items() <= (p["metadata"].get("labels") or {}).items()
        ]
        on = [p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName") in nodes]
        facts = model.NodeFacts.from_node(nodes[on[0]]) if on else None
    zones = tuple(
        sorted({n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes.values()})
    )

    def pvc(namespace: str, name: str) -> Mapping[str, Any] | None:
        try:
            return store.get("PersistentVolumeClaim", namespace, name)
        except kube_store.NotFound:
            return None

    return model.FixContext(node=facts, zones=zones, pvc=pvc, restarted_at="2026-11-28T02:40:00Z")


def _object(store: kube_store.ObjectStore, target: str) -> dict[str, Any]:
    parts = target.split("/")
    if parts[0] == "deployment":
        return store.get("Deployment", parts[1], parts[2])
    return store.get({"nodepool": "NodePool", "node": "Node"}[parts[0]], None, parts[1])


EXPECTED_FIXES = [
    ("daily-cost-idle-gpus", "scale-down", "deployment/inference/llama-3-70b"),
    (
        "gateway-timeout-long-reasoning",
        "increase-request-timeout",
        "deployment/inference/inference-gateway",
    ),
    ("gpu-underutilized-idle-replicas", "scale-down", "deployment/inference/qwen2-5-7b"),
    (
        "gpu-xid79-fallen-off-bus",
        "cordon-node",
        "node/ip-10-1-3-71.ap-northeast-2.compute.internal",
    ),
    ("karpenter-nodepool-gpu-limit", "raise-nodepool-limit", "nodepool/gpu"),
    ("karpenter-single-zone-p4d", "add-zones", "nodepool/gpu-a100"),
    ("karpenter-spot-only-p5", "allow-on-demand", "nodepool/gpu-spot"),
    ("latency-preemption-long-context", "limit-max-num-seqs", "deployment/inference/llama-3-70b"),
    ("latency-queueing-scale-up", "scale-up", "deployment/inference/llama-3-8b"),
    ("nccl-timeout-tp16-no-efa", "enable-efa", "deployment/inference/llama-3-1-405b-head"),
    ("nccl-timeout-tp16-no-efa", "enable-efa", "deployment/inference/llama-3-1-405b-worker"),
    (
        "nccl-timeout-tp16-no-efa",
        "increase-nccl-timeout",
        "deployment/inference/llama-3-1-405b-head",
    ),
    (
        "nccl-timeout-tp16-no-efa",
        "increase-nccl-timeout",
        "deployment/inference/llama-3-1-405b-worker",
    ),
    (
        "single-zone-replicas-az-impairment",
        "add-zone-anti-affinity",
        "deployment/inference/llama-3-8b",
    ),
    ("startup-probe-kills-70b-load", "extend-startup-probe", "deployment/inference/llama-3-70b"),
]


@pytest.mark.parametrize(("scenario", "code", "target"), EXPECTED_FIXES)
def test_public_scenarios_expected_fixes_build(
    *, scenario: str, code: str, target: str, scenario_store: Any
) -> None:
    store = scenario_store(scenario)
    obj = _object(store, target)
    fix = catalog.build(code, obj, context=_context(store, obj))
    assert isinstance(fix, model.FixPatch), fix
    assert fix.target == target
    patched = jsonpatch.apply_patch(obj, fix.ops)
    assert patched != obj
    assert jsonpatch.apply_patch(patched, fix.inverse(obj)) == obj


def test_the_405b_head_keeps_its_shell_script_whole(*, scenario_store: Any) -> None:
    store = scenario_store("nccl-timeout-tp16-no-efa")
    obj = store.get("Deployment", "inference", "llama-3-1-405b-head")
    fix = catalog.build("limit-max-num-seqs", obj, context=_context(store, obj))
    assert isinstance(fix, model.FixPatch)
    script = jsonpatch.apply_patch(obj, fix.ops)["spec"]["template"]["spec"]["containers"][0][
        "args"
    ][0]
    assert (
        "exec vllm serve meta-llama/Llama-3.1-405B-Instruct-FP8 --max-num-seqs 128 --served-model-name"
        in script
    )
    assert script.startswith("ray start --head")
    tp = catalog.build("increase-tensor-parallel", obj, context=_context(store, obj))
    assert isinstance(tp, model.Refused) and "fits tensor-parallel-size 16" in tp.why


def test_nodepool_limit_scenario_goes_from_its_limit_by_half(*, scenario_store: Any) -> None:
    store = scenario_store("karpenter-nodepool-gpu-limit")
    obj = store.get("NodePool", None, "gpu")
    fix = catalog.build("raise-nodepool-limit", obj, context=_context(store, obj))
    assert isinstance(fix, model.FixPatch)
    old = obj["spec"]["limits"]["nvidia.com/gpu"]
    assert fix.diff == f"limits.nvidia.com/gpu: {old} → {min(-(-int(old) * 3 // 2), 1024)}"
