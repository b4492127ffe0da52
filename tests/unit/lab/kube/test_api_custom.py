"""Karpenter NodePools and NodeClaims through CustomObjectsApi (cluster-scoped CRs)."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kube.server import KubeApiServer
from lab.kube.store import ObjectStore

GROUP, VERSION = "karpenter.sh", "v1"


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def test_list_and_get(custom: client.CustomObjectsApi) -> None:
    pools = custom.list_cluster_custom_object(GROUP, VERSION, "nodepools")
    assert pools["kind"] == "NodePoolList"
    assert [p["metadata"]["name"] for p in pools["items"]] == ["gpu"]
    claim = custom.get_cluster_custom_object(GROUP, VERSION, "nodeclaims", "gpu-x7k2q")
    assert claim["status"]["conditions"][0]["reason"] == "InsufficientCapacity"
    spot = custom.list_cluster_custom_object(
        GROUP, VERSION, "nodeclaims", label_selector="karpenter.sh/capacity-type=spot"
    )
    assert len(spot["items"]) == 1


def test_merge_patch_is_the_default_and_keeps_status(
    custom: client.CustomObjectsApi, server: KubeApiServer, store: ObjectStore
) -> None:
    requirement = {
        "key": "node.kubernetes.io/instance-type",
        "operator": "In",
        "values": ["p4d.24xlarge", "p5.48xlarge"],
    }
    body = {
        "spec": {
            "limits": {"nvidia.com/gpu": "96"},
            "template": {"spec": {"requirements": [requirement]}},
        },
        "status": {"resources": {"nodes": "9"}},
    }
    patched = custom.patch_cluster_custom_object(GROUP, VERSION, "nodepools", "gpu", body)
    assert patched["spec"]["limits"] == {"nvidia.com/gpu": "96"}
    assert patched["spec"]["template"]["spec"]["requirements"] == [requirement]
    assert patched["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "default"
    assert patched["status"]["resources"]["nodes"] == "2"  # status only via /status
    assert patched["metadata"]["generation"] == 2
    assert server.calls("PATCH")[-1].content_type == "application/merge-patch+json"
    assert store.get("NodePool", None, "gpu")["spec"]["limits"] == {"nvidia.com/gpu": "96"}


def test_json_patch_on_custom_objects(custom: client.CustomObjectsApi) -> None:
    ops = [
        {"op": "test", "path": "/spec/limits/nvidia.com~1gpu", "value": "64"},
        {"op": "replace", "path": "/spec/limits/nvidia.com~1gpu", "value": "96"},
    ]
    patched = custom.patch_cluster_custom_object(
        GROUP, VERSION, "nodepools", "gpu", ops, _content_type="application/json-patch+json"
    )
    assert patched["spec"]["limits"]["nvidia.com/gpu"] == "96"
    with pytest.raises(ApiException) as e:
        custom.patch_cluster_custom_object(
            GROUP, VERSION, "nodepools", "gpu", ops, _content_type="application/json-patch+json"
        )
    assert e.value.status == 422


def test_status_subresource(custom: client.CustomObjectsApi) -> None:
    body = {
        "status": {"conditions": [{"type": "Launched", "status": "True", "reason": "Launched"}]}
    }
    patched = custom.patch_cluster_custom_object_status(
        GROUP, VERSION, "nodeclaims", "gpu-x7k2q", body
    )
    assert patched["status"]["conditions"][0]["status"] == "True"


def test_replace_needs_a_resource_version(custom: client.CustomObjectsApi) -> None:
    pool = custom.get_cluster_custom_object(GROUP, VERSION, "nodepools", "gpu")
    pool["spec"]["weight"] = 10
    replaced = custom.replace_cluster_custom_object(GROUP, VERSION, "nodepools", "gpu", pool)
    assert replaced["spec"]["weight"] == 10
    del replaced["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as e:
        custom.replace_cluster_custom_object(GROUP, VERSION, "nodepools", "gpu", replaced)
    assert e.value.status == 422
    pool["spec"]["weight"] = 20  # stale resourceVersion
    with pytest.raises(ApiException) as e:
        custom.replace_cluster_custom_object(GROUP, VERSION, "nodepools", "gpu", pool)
    assert e.value.status == 409


def test_field_selectors_on_custom_resources(custom: client.CustomObjectsApi) -> None:
    by_name = custom.list_cluster_custom_object(
        GROUP, VERSION, "nodeclaims", field_selector="metadata.name=gpu-x7k2q"
    )
    assert len(by_name["items"]) == 1
    with pytest.raises(ApiException) as e:
        custom.list_cluster_custom_object(
            GROUP, VERSION, "nodeclaims", field_selector="status.nodeName=gpu-a"
        )
    assert e.value.status == 400
    assert "is not a known field selector" in json.loads(e.value.body)["message"]


def test_create_and_delete(custom: client.CustomObjectsApi, store: ObjectStore) -> None:
    body = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "cpu"},
        "spec": {"template": {"spec": {"requirements": []}}},
    }
    created = custom.create_cluster_custom_object(GROUP, VERSION, "nodepools", body)
    assert created["metadata"]["uid"]
    gone = custom.delete_cluster_custom_object(GROUP, VERSION, "nodepools", "cpu")
    assert gone["metadata"]["name"] == "cpu"
    assert [p["metadata"]["name"] for p in store.list("NodePool")] == ["gpu"]
