"""Patches through the official client and raw HTTP: JSON patch with ``test``, merge and
strategic merge, and the content types the client picks."""

from __future__ import annotations

import json

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kube.server import KubeApiServer
from lab.kube.store import ObjectStore

NS = "inference"
DEPLOY = "llama-2-7b"


def deploy_url(server: KubeApiServer) -> str:
    return f"{server.url}/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOY}"


def test_client_content_types(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    """kubernetes 37.0.1 sends a dict body as strategic merge and a list body as JSON patch."""
    apps.patch_namespaced_deployment(DEPLOY, NS, {"metadata": {"labels": {"tier": "gpu"}}})
    apps.patch_namespaced_deployment(
        DEPLOY, NS, [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    )
    sent = [c.content_type for c in server.calls("PATCH", f"/deployments/{DEPLOY}")]
    assert sent == ["application/strategic-merge-patch+json", "application/json-patch+json"]


def test_json_patch_with_passing_tests(apps: client.AppsV1Api, store: ObjectStore) -> None:
    current = store.get("Deployment", NS, DEPLOY)
    ops = [
        {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": current["metadata"]["resourceVersion"],
        },
        {"op": "test", "path": "/spec/template/spec/containers/0/args/3", "value": "0.95"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/args/3", "value": "0.85"},
    ]
    patched = apps.patch_namespaced_deployment(DEPLOY, NS, ops)
    assert patched.spec.template.spec.containers[0].args[3] == "0.85"
    assert patched.metadata.generation == 2


def test_json_patch_failing_test_is_422(apps: client.AppsV1Api, store: ObjectStore) -> None:
    before = store.get("Deployment", NS, DEPLOY)
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 5},
        {"op": "replace", "path": "/spec/replicas", "value": 6},
    ]
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment(DEPLOY, NS, ops)
    assert e.value.status == 422
    body = json.loads(e.value.body)
    assert body["reason"] == "Invalid"
    assert (
        body["details"]["causes"][0]["message"]
        == "testing value /spec/replicas failed: test failed"
    )
    assert store.get("Deployment", NS, DEPLOY) == before


def test_json_patch_on_missing_path_is_422(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment(
            DEPLOY, NS, [{"op": "replace", "path": "/spec/nothing/here", "value": 1}]
        )
    assert e.value.status == 422


def test_merge_patch(apps: client.AppsV1Api) -> None:
    body = {"metadata": {"annotations": {"opsbot/fix": "scale-up"}}, "spec": {"replicas": 3}}
    patched = apps.patch_namespaced_deployment(
        DEPLOY, NS, body, _content_type="application/merge-patch+json"
    )
    assert patched.spec.replicas == 3
    assert patched.metadata.annotations["opsbot/fix"] == "scale-up"
    # a merge patch replaces lists whole
    containers = [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.1"}]
    patched = apps.patch_namespaced_deployment(
        DEPLOY,
        NS,
        {"spec": {"template": {"spec": {"containers": containers}}}},
        _content_type="application/merge-patch+json",
    )
    assert patched.spec.template.spec.containers[0].env is None


def test_merge_patch_with_stale_resource_version_is_409(apps: client.AppsV1Api) -> None:
    body = {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 3}}
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment(
            DEPLOY, NS, body, _content_type="application/merge-patch+json"
        )
    assert e.value.status == 409


def test_strategic_merge_of_env_and_args(apps: client.AppsV1Api) -> None:
    args = ["--model", "meta-llama/Llama-2-7b-hf", "--gpu-memory-utilization", "0.85"]
    body = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "args": args,
                            "env": [
                                {"name": "MAX_NUM_SEQS", "value": "128"},
                                {"name": "NCCL_TIMEOUT", "value": "1800"},
                            ],
                        }
                    ]
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment(DEPLOY, NS, body)
    c = patched.spec.template.spec.containers[0]
    assert c.args == args  # args: replaced
    assert [(e.name, e.value) for e in c.env] == [  # env: merged by name
        ("MAX_NUM_SEQS", "128"),
        ("HF_HOME", "/cache"),
        ("NCCL_TIMEOUT", "1800"),
    ]
    assert c.image == "vllm/vllm-openai:v0.11.0"  # untouched fields stay
    assert c.ports[0].container_port == 8000


def test_strategic_merge_delete_directive(apps: client.AppsV1Api) -> None:
    body = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "vllm", "env": [{"name": "HF_HOME", "$patch": "delete"}]}
                    ]
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment(DEPLOY, NS, body)
    assert [e.name for e in patched.spec.template.spec.containers[0].env] == ["MAX_NUM_SEQS"]


def test_strategic_merge_adds_volume_and_mount(apps: client.AppsV1Api) -> None:
    body = {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [
                        {
                            "name": "model-cache",
                            "persistentVolumeClaim": {"claimName": "model-cache-pvc"},
                        }
                    ],
                    "containers": [
                        {
                            "name": "vllm",
                            "volumeMounts": [{"name": "model-cache", "mountPath": "/cache"}],
                        }
                    ],
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment(DEPLOY, NS, body)
    spec = patched.spec.template.spec
    assert spec.volumes[0].persistent_volume_claim.claim_name == "model-cache-pvc"
    assert spec.containers[0].volume_mounts[0].mount_path == "/cache"


def test_unknown_and_apply_content_types_are_415(server: KubeApiServer) -> None:
    for content_type in ("application/json", "application/apply-patch+yaml", "text/plain"):
        answer = requests.patch(
            deploy_url(server), data="{}", headers={"Content-Type": content_type}, timeout=5
        )
        assert answer.status_code == 415, content_type
        assert answer.json()["reason"] == "UnsupportedMediaType"


def test_malformed_patches_are_400(server: KubeApiServer) -> None:
    for content_type, body in [
        ("application/merge-patch+json", "{not json"),
        ("application/json-patch+json", '{"op": "add"}'),
        ("application/strategic-merge-patch+json", "[1, 2]"),
    ]:
        answer = requests.patch(
            deploy_url(server), data=body, headers={"Content-Type": content_type}, timeout=5
        )
        assert answer.status_code == 400, (content_type, answer.text)


def test_custom_resources_refuse_strategic_merge(server: KubeApiServer) -> None:
    answer = requests.patch(
        f"{server.url}/apis/karpenter.sh/v1/nodepools/gpu",
        data='{"spec": {"weight": 10}}',
        headers={"Content-Type": "application/strategic-merge-patch+json"},
        timeout=5,
    )
    assert answer.status_code == 415
    assert "application/strategic-merge-patch+json" not in answer.json()["message"]


def test_cordon_a_node(core: client.CoreV1Api) -> None:
    node = core.patch_node("gpu-a", {"spec": {"unschedulable": True}})
    assert node.spec.unschedulable is True
    assert node.status.conditions[0].type == "Ready"
