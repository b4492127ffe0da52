"""Strategic merge and JSON merge patch semantics, on plain dicts (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from lab.kube import patch

Obj = dict[str, Any]


def pod_spec() -> Obj:
    return {
        "initContainers": [{"name": "fetch", "image": "busybox", "args": ["a"]}],
        "containers": [
            {
                "name": "vllm",
                "image": "vllm/vllm-openai:v0.11.0",
                "args": ["--max-num-seqs", "256"],
                "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
                "ports": [{"containerPort": 8000, "name": "http"}],
                "resources": {"limits": {"nvidia.com/gpu": "1", "memory": "32Gi"}},
                "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
                "startupProbe": {
                    "httpGet": {"path": "/health", "port": 8000},
                    "failureThreshold": 30,
                    "periodSeconds": 10,
                },
            },
            {"name": "proxy", "image": "envoy"},
        ],
        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "nvidia.com/gpu.present",
                                    "operator": "In",
                                    "values": ["true"],
                                }
                            ]
                        }
                    ]
                }
            }
        },
    }


def smp(doc: Obj, p: Obj) -> Obj:
    out: Obj = patch.strategic_merge_patch(doc, p)
    return out


def test_containers_merge_by_name_and_keep_order() -> None:
    out = smp(
        pod_spec(),
        {"containers": [{"name": "proxy", "image": "envoy:v2"}, {"name": "new", "image": "x"}]},
    )
    assert [c["name"] for c in out["containers"]] == ["vllm", "proxy", "new"]
    assert out["containers"][1]["image"] == "envoy:v2"
    assert out["containers"][0]["image"] == "vllm/vllm-openai:v0.11.0"


def test_ports_merge_by_container_port_and_mounts_by_path() -> None:
    out = smp(
        pod_spec(),
        {
            "containers": [
                {
                    "name": "vllm",
                    "ports": [{"containerPort": 8000, "protocol": "TCP"}, {"containerPort": 9090}],
                    "volumeMounts": [
                        {"name": "cache", "mountPath": "/cache"},
                        {"name": "shm2", "mountPath": "/dev/shm"},
                    ],
                }
            ]
        },
    )
    vllm = out["containers"][0]
    assert vllm["ports"] == [
        {"containerPort": 8000, "name": "http", "protocol": "TCP"},
        {"containerPort": 9090},
    ]
    assert vllm["volumeMounts"] == [
        {"name": "shm2", "mountPath": "/dev/shm"},
        {"name": "cache", "mountPath": "/cache"},
    ]


def test_args_command_and_tolerations_are_replaced() -> None:
    out = smp(
        pod_spec(),
        {
            "containers": [
                {"name": "vllm", "args": ["--max-num-seqs", "128"], "command": ["vllm"]}
            ],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "llm"}],
        },
    )
    assert out["containers"][0]["args"] == ["--max-num-seqs", "128"]
    assert out["containers"][0]["command"] == ["vllm"]
    assert out["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "llm"}]


def test_resources_probes_and_affinity_merge_as_maps() -> None:
    out = smp(
        pod_spec(),
        {
            "containers": [
                {
                    "name": "vllm",
                    "resources": {"limits": {"memory": "64Gi"}, "requests": {"memory": "32Gi"}},
                    "startupProbe": {"failureThreshold": 180},
                }
            ],
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone"},
                        }
                    ]
                }
            },
        },
    )
    vllm = out["containers"][0]
    assert vllm["resources"] == {
        "limits": {"nvidia.com/gpu": "1", "memory": "64Gi"},
        "requests": {"memory": "32Gi"},
    }
    assert vllm["startupProbe"]["failureThreshold"] == 180
    assert vllm["startupProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert set(out["affinity"]) == {"nodeAffinity", "podAntiAffinity"}


def test_null_deletes_and_patch_delete_directives() -> None:
    out = smp(
        pod_spec(),
        {
            "affinity": None,
            "containers": [
                {"name": "proxy", "$patch": "delete"},
                {"name": "vllm", "startupProbe": {"$patch": "delete"}},
            ],
            "volumes": [{"name": "shm", "$patch": "delete"}],
        },
    )
    assert "affinity" not in out
    assert [c["name"] for c in out["containers"]] == ["vllm"]
    assert "startupProbe" not in out["containers"][0]
    assert out["volumes"] == []


def test_replace_and_retain_keys_directives() -> None:
    out = smp(
        pod_spec(),
        {
            "containers": [
                {"name": "vllm", "resources": {"$patch": "replace", "limits": {"cpu": "4"}}}
            ]
        },
    )
    assert out["containers"][0]["resources"] == {"limits": {"cpu": "4"}}
    out = smp(
        pod_spec(),
        {
            "volumes": [
                {
                    "name": "shm",
                    "$retainKeys": ["name", "persistentVolumeClaim"],
                    "persistentVolumeClaim": {"claimName": "c"},
                }
            ]
        },
    )
    assert out["volumes"] == [{"name": "shm", "persistentVolumeClaim": {"claimName": "c"}}]
    out = smp(pod_spec(), {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]})
    assert out["containers"] == [{"name": "only", "image": "x"}]


def test_delete_from_primitive_list_and_set_element_order() -> None:
    out = smp(
        {"metadata": {"finalizers": ["a", "b"]}, "args": ["x", "y", "z"]},
        {
            "$deleteFromPrimitiveList/args": ["y"],
            "$setElementOrder/args": ["x", "z"],
            "metadata": {"finalizers": ["b", "c"]},
        },
    )
    assert out["args"] == ["x", "z"]
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]  # finalizers merge as a set


def test_service_ports_merge_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8000}]}}
    out = smp(svc, {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}})
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080}, {"port": 443}]


def test_merge_item_without_its_key_is_an_error() -> None:
    with pytest.raises(patch.PatchError):
        smp(pod_spec(), {"containers": [{"image": "x"}]})


def test_json_merge_patch() -> None:
    out = patch.merge_patch(
        {"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"b": None, "c": [3]}, "e": 2}
    )
    assert out == {"a": {"c": [3]}, "d": 1, "e": 2}


def test_json_patch_names_the_failing_test() -> None:
    with pytest.raises(patch.PatchFailed, match="testing value /a failed"):
        patch.json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert patch.json_patch({"a": 1}, [{"op": "add", "path": "/b", "value": 2}]) == {"a": 1, "b": 2}
