"""Pod-template fixes: EFA, zone anti-affinity, the model-cache PVC, memory, startup probe."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from bot import config
from bot.fixes import catalog, model

VLLM = {
    "name": "vllm",
    "image": "vllm/vllm-openai:v0.11.0",
    "args": ["--model", "meta-llama/Llama-2-7b-hf"],
    "ports": [{"name": "http", "containerPort": 8000}],
    "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "32Gi"}},
}


def _vllm(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(VLLM), **fields}


def _c(obj: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]["containers"][index]


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


# enable-efa


@pytest.mark.parametrize(
    ("instance_type", "count"),
    [("p4d.24xlarge", "4"), ("p4de.24xlarge", "4"), ("p5.48xlarge", "32")],
)
def test_efa_request_and_limit_match_the_instance_type(
    *, instance_type: str, count: str, deployment: Any, context: Any, verify: Any
) -> None:
    obj = deployment([_vllm()])
    fix = catalog.build("enable-efa", obj, context=context(instance_type))
    expected = copy.deepcopy(obj)
    resources = _c(expected)["resources"]
    resources["limits"]["vpc.amazonaws.com/efa"] = count
    resources["requests"] = {**resources.get("requests", {}), "vpc.amazonaws.com/efa": count}
    verify(obj, fix, expected)


def test_efa_goes_to_gpu_containers_that_do_not_run_vllm(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    worker = {
        "name": "ray-worker",
        "image": "example/serving:1",
        "command": ["/bin/bash", "-c"],
        "args": ["ray start --address=head:6379 --block"],
        "resources": {
            "requests": {"nvidia.com/gpu": 8, "memory": "1000Gi"},
            "limits": {"nvidia.com/gpu": 8},
        },
    }
    sidecar = {"name": "log-shipper", "image": "fluent/fluent-bit:3"}
    obj = deployment([sidecar, worker])
    expected = copy.deepcopy(obj)
    _c(expected, 1)["resources"]["requests"]["vpc.amazonaws.com/efa"] = "4"
    _c(expected, 1)["resources"]["limits"]["vpc.amazonaws.com/efa"] = "4"
    fix = verify(obj, catalog.build("enable-efa", obj, context=context("p4d.24xlarge")), expected)
    assert "containers[ray-worker].resources.limits.vpc.amazonaws.com/efa: (unset) → 4" in fix.diff


def test_efa_partly_set_is_completed(*, deployment: Any, context: Any, verify: Any) -> None:
    container = _vllm(resources={"limits": {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 1}})
    obj = deployment([container])
    expected = copy.deepcopy(obj)
    _c(expected)["resources"]["limits"]["vpc.amazonaws.com/efa"] = "32"
    _c(expected)["resources"]["requests"] = {
        **_c(obj)["resources"].get("requests", {}),
        "vpc.amazonaws.com/efa": "32",
    }
    verify(obj, catalog.build("enable-efa", obj, context=context("p5.48xlarge")), expected)


@pytest.mark.parametrize(
    ("instance_type", "words"),
    [("g5.12xlarge", "no EFA"), ("x9.huge", "not in the instance-type table"), (None, "unknown")],
)
def test_efa_refusals(
    *, instance_type: str | None, words: str, deployment: Any, context: Any, refused: Any
) -> None:
    ctx = context(
        None, node=model.NodeFacts.from_instance_type(instance_type) if instance_type else None
    )
    refused(catalog.build("enable-efa", deployment([_vllm()]), context=ctx), words)


def test_efa_already_complete_is_refused(*, deployment: Any, context: Any, refused: Any) -> None:
    efa = {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 4}
    obj = deployment([_vllm(resources={"requests": dict(efa), "limits": dict(efa)})])
    refused(catalog.build("enable-efa", obj, context=context("p4d.24xlarge")), "already has 4")


def test_efa_without_gpu_containers_is_refused(
    *, deployment: Any, context: Any, refused: Any
) -> None:
    obj = deployment([{"name": "gateway", "image": "example/gateway:1"}])
    refused(catalog.build("enable-efa", obj, context=context()), "nvidia.com/gpu")


# add-zone-anti-affinity

ZONE_TERM = {
    "weight": 100,
    "podAffinityTerm": {
        "labelSelector": {"matchLabels": {"app": "inference", "model": "llama-2-7b"}},
        "topologyKey": "topology.kubernetes.io/zone",
    },
}


def test_anti_affinity_added_when_there_is_no_affinity(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    obj = deployment()
    assert "affinity" not in _pod(obj)
    expected = copy.deepcopy(obj)
    _pod(expected)["affinity"] = {
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [ZONE_TERM]}
    }
    fix = verify(obj, catalog.build("add-zone-anti-affinity", obj, context=context()), expected)
    assert {
        "op": "test",
        "path": "/spec/template/metadata/labels",
        "value": {"app": "inference", "model": "llama-2-7b"},
    } in fix.ops


def test_anti_affinity_merges_with_node_affinity(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    node_affinity = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["gpu"]}
                    ]
                }
            ]
        }
    }
    obj = deployment(affinity={"nodeAffinity": node_affinity})
    expected = copy.deepcopy(obj)
    _pod(expected)["affinity"]["podAntiAffinity"] = {
        "preferredDuringSchedulingIgnoredDuringExecution": [ZONE_TERM]
    }
    verify(obj, catalog.build("add-zone-anti-affinity", obj, context=context()), expected)


def test_anti_affinity_appends_to_existing_preferences(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    host_term = {
        "weight": 50,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"model": "llama-2-7b"}},
            "topologyKey": "kubernetes.io/hostname",
        },
    }
    obj = deployment(
        affinity={
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [host_term]}
        }
    )
    expected = copy.deepcopy(obj)
    _pod(expected)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ].append(ZONE_TERM)
    fix = verify(obj, catalog.build("add-zone-anti-affinity", obj, context=context()), expected)
    assert fix.ops[-1]["path"].endswith("/preferredDuringSchedulingIgnoredDuringExecution/-")


@pytest.mark.parametrize("kind", ["preferred", "required"])
def test_anti_affinity_already_by_zone_is_refused(
    *, kind: str, deployment: Any, context: Any, refused: Any
) -> None:
    anti = (
        {"preferredDuringSchedulingIgnoredDuringExecution": [ZONE_TERM]}
        if kind == "preferred"
        else {"requiredDuringSchedulingIgnoredDuringExecution": [ZONE_TERM["podAffinityTerm"]]}
    )
    obj = deployment(affinity={"podAntiAffinity": anti})
    refused(catalog.build("add-zone-anti-affinity", obj, context=context()), "already")


# use-model-cache-pvc


def _pvcs(*pvcs: tuple[str, str]) -> Callable[[str, str], Mapping[str, Any] | None]:
    found = {(ns, "model-cache-pvc"): phase for ns, phase in pvcs}

    def lookup(namespace: str, name: str) -> Mapping[str, Any] | None:
        phase = found.get((namespace, name))
        return (
            None if phase is None else {"kind": "PersistentVolumeClaim", "status": {"phase": phase}}
        )

    return lookup


BOUND = _pvcs(("inference", "Bound"))


def test_pvc_mounted_at_the_default_hf_cache(*, deployment: Any, context: Any, verify: Any) -> None:
    obj = deployment()
    expected = copy.deepcopy(obj)
    _pod(expected)["volumes"] = [
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": "model-cache-pvc"}}
    ]
    _c(expected)["volumeMounts"] = [
        {"name": "model-cache", "mountPath": "/root/.cache/huggingface"}
    ]
    fix = verify(
        obj, catalog.build("use-model-cache-pvc", obj, context=context(pvc=BOUND)), expected
    )
    assert "containers[vllm].volumeMounts: + model-cache at /root/.cache/huggingface" in fix.diff


def test_pvc_mounted_at_hf_home_next_to_existing_volumes(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    container = _vllm(
        env=[{"name": "HF_HOME", "value": "/data/hf"}],
        volumeMounts=[{"name": "model-cache", "mountPath": "/dev/shm"}],
    )
    obj = deployment(
        [container], volumes=[{"name": "model-cache", "emptyDir": {"medium": "Memory"}}]
    )
    expected = copy.deepcopy(obj)
    _pod(expected)["volumes"].append(
        {"name": "model-cache-pvc", "persistentVolumeClaim": {"claimName": "model-cache-pvc"}}
    )
    _c(expected)["volumeMounts"].append({"name": "model-cache-pvc", "mountPath": "/data/hf"})
    fix = verify(
        obj, catalog.build("use-model-cache-pvc", obj, context=context(pvc=BOUND)), expected
    )
    assert {
        "op": "test",
        "path": "/spec/template/spec/containers/0/env/0",
        "value": {"name": "HF_HOME", "value": "/data/hf"},
    } in fix.ops


def test_pvc_already_a_volume_is_only_mounted(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    volumes = [{"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache-pvc"}}]
    obj = deployment([_vllm()], volumes=volumes)
    expected = copy.deepcopy(obj)
    _c(expected)["volumeMounts"] = [{"name": "cache", "mountPath": "/root/.cache/huggingface"}]
    verify(obj, catalog.build("use-model-cache-pvc", obj, context=context(pvc=BOUND)), expected)


@pytest.mark.parametrize(
    ("lookup", "words"),
    [
        (_pvcs(), "does not exist"),
        (_pvcs(("inference", "Pending")), "is Pending, not Bound"),
        (_pvcs(("other", "Bound")), "does not exist"),
        (None, "cannot be checked"),
    ],
)
def test_pvc_missing_or_unbound_is_refused(
    *, lookup: Any, words: str, deployment: Any, context: Any, refused: Any
) -> None:
    refused(catalog.build("use-model-cache-pvc", deployment(), context=context(pvc=lookup)), words)


def test_pvc_already_mounted_above_hf_home_is_refused(
    *, scenario_store: Any, context: Any, refused: Any
) -> None:
    obj = scenario_store("startup-probe-kills-70b-load").get(
        "Deployment", "inference", "llama-3-70b"
    )
    refused(
        catalog.build("use-model-cache-pvc", obj, context=context(pvc=BOUND)),
        "already mount model-cache-pvc at /models",
    )


def test_pvc_name_comes_from_settings(*, deployment: Any, context: Any, verify: Any) -> None:
    settings = config.Fixes(model_cache_pvc="shared-weights")

    def lookup(namespace: str, name: str) -> Mapping[str, Any] | None:
        return {"status": {"phase": "Bound"}} if name == "shared-weights" else None

    obj = deployment()
    expected = copy.deepcopy(obj)
    _pod(expected)["volumes"] = [
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": "shared-weights"}}
    ]
    _c(expected)["volumeMounts"] = [
        {"name": "model-cache", "mountPath": "/root/.cache/huggingface"}
    ]
    verify(
        obj,
        catalog.build("use-model-cache-pvc", obj, context=context(settings=settings, pvc=lookup)),
        expected,
    )


# increase-memory-limit


@pytest.mark.parametrize(
    ("resources", "requests", "limits"),
    [
        ({"limits": {"memory": "32Gi"}}, "64Gi", "64Gi"),  # a missing request is the limit
        ({"requests": {"memory": "8Gi"}, "limits": {"memory": "16Gi"}}, "32Gi", "64Gi"),
        ({"requests": {"memory": "100Gi"}, "limits": {"memory": "200Gi"}}, "200Gi", "400Gi"),
        ({"requests": {"memory": "400Gi"}, "limits": {"memory": "400Gi"}}, "800Gi", "800Gi"),
        (
            {"requests": {"memory": "1000Gi"}, "limits": {"memory": "1000Gi"}},
            "1061683Mi",
            "1061683Mi",
        ),
        (
            {"requests": {"memory": "17179869184"}, "limits": {"memory": "34359738368"}},
            "32Gi",
            "64Gi",
        ),
    ],
)
def test_memory_doubled_with_floors_and_node_bound(
    *,
    resources: dict[str, Any],
    requests: str,
    limits: str,
    deployment: Any,
    context: Any,
    verify: Any,
) -> None:
    obj = deployment([_vllm(resources=copy.deepcopy(resources))])
    expected = copy.deepcopy(obj)
    expected_resources = _c(expected)["resources"]
    expected_resources.setdefault("requests", {})["memory"] = requests
    expected_resources["limits"]["memory"] = limits
    verify(
        obj, catalog.build("increase-memory-limit", obj, context=context("p4d.24xlarge")), expected
    )


def test_memory_bounded_by_a_small_node(*, deployment: Any, context: Any, verify: Any) -> None:
    obj = deployment(
        [_vllm(resources={"requests": {"memory": "8Gi"}, "limits": {"memory": "12Gi"}})]
    )
    expected = copy.deepcopy(obj)
    _c(expected)["resources"]["requests"]["memory"] = "14745Mi"  # 90 % of g5.xlarge's 16 GiB
    _c(expected)["resources"]["limits"]["memory"] = "14745Mi"
    verify(obj, catalog.build("increase-memory-limit", obj, context=context("g5.xlarge")), expected)


@pytest.mark.parametrize(
    ("resources", "instance_type", "words"),
    [
        ({"limits": {"memory": "15Gi"}}, "g5.xlarge", "already at 90 %"),
        ({"limits": {"nvidia.com/gpu": 1}}, "p4d.24xlarge", "no memory limit"),
        ({"limits": {"memory": "32Gi"}}, None, "memory is unknown"),
    ],
)
def test_memory_refusals(
    *,
    resources: dict[str, Any],
    instance_type: str | None,
    words: str,
    deployment: Any,
    context: Any,
    refused: Any,
) -> None:
    obj = deployment([_vllm(resources=resources)])
    refused(catalog.build("increase-memory-limit", obj, context=context(instance_type)), words)


# extend-startup-probe


def test_startup_probe_present_keeps_its_handler(
    *, scenario_store: Any, context: Any, verify: Any
) -> None:
    obj = scenario_store("startup-probe-kills-70b-load").get(
        "Deployment", "inference", "llama-3-70b"
    )
    expected = copy.deepcopy(obj)
    _c(expected)["startupProbe"]["failureThreshold"] = 180
    fix = verify(obj, catalog.build("extend-startup-probe", obj, context=context()), expected)
    assert fix.diff == "containers[vllm].startupProbe.failureThreshold: 30 → 180 (x 10 s = 1800 s)"
    assert {
        "op": "test",
        "path": "/spec/template/spec/containers/0/startupProbe/periodSeconds",
        "value": 10,
    } in fix.ops


def test_startup_probe_with_exec_handler_and_long_period(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 7, "failureThreshold": 20}
    obj = deployment([_vllm(startupProbe=probe)])
    expected = copy.deepcopy(obj)
    _c(expected)["startupProbe"]["failureThreshold"] = 258  # ceil(1800 / 7)
    verify(obj, catalog.build("extend-startup-probe", obj, context=context()), expected)


def test_startup_probe_absent_gets_http_get_health_on_the_first_port(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    obj = deployment(
        [
            _vllm(
                ports=[
                    {"name": "api", "containerPort": 8080},
                    {"name": "metrics", "containerPort": 9090},
                ]
            )
        ]
    )
    expected = copy.deepcopy(obj)
    _c(expected)["startupProbe"] = {
        "httpGet": {"path": "/health", "port": 8080},
        "periodSeconds": 10,
        "failureThreshold": 180,
    }
    fix = verify(obj, catalog.build("extend-startup-probe", obj, context=context()), expected)
    assert {
        "op": "test",
        "path": "/spec/template/spec/containers/0/ports/0/containerPort",
        "value": 8080,
    } in fix.ops


def test_startup_probe_without_ports_uses_vllms_port_flag(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    container = _vllm(args=["--model", "m-7B", "--port", "8001"])
    del container["ports"]
    obj = deployment([container])
    expected = copy.deepcopy(obj)
    _c(expected)["startupProbe"] = {
        "httpGet": {"path": "/health", "port": 8001},
        "periodSeconds": 10,
        "failureThreshold": 180,
    }
    verify(obj, catalog.build("extend-startup-probe", obj, context=context()), expected)


def test_startup_probe_already_long_is_refused(
    *, deployment: Any, context: Any, refused: Any
) -> None:
    probe = {
        "httpGet": {"path": "/health", "port": 8000},
        "periodSeconds": 30,
        "failureThreshold": 60,
    }
    refused(
        catalog.build(
            "extend-startup-probe", deployment([_vllm(startupProbe=probe)]), context=context()
        ),
        "already allows 1800",
    )
