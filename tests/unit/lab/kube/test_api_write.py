"""Create, replace, delete, dry runs, conflicts, validation and the status subresource."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kube.server import KubeApiServer
from lab.kube.store import ObjectStore

NS = "inference"
READY_POD = "llama-2-7b-6f7c9-x2k4p"


def status_of(e: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(e.value.body)
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["code"] == e.value.status
    return body


def configmap(name: str, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)


def test_create_get_and_already_exists(core: client.CoreV1Api, store: ObjectStore) -> None:
    created = core.create_namespaced_config_map(NS, configmap("limits", MAX="1"))
    assert created.metadata.uid
    assert created.metadata.namespace == NS
    assert store.get("ConfigMap", NS, "limits")["data"] == {"MAX": "1"}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(NS, configmap("limits"))
    assert e.value.status == 409
    assert status_of(e)["reason"] == "AlreadyExists"


def test_replace_with_stale_resource_version_is_409(apps: client.AppsV1Api) -> None:
    first = apps.read_namespaced_deployment("llama-2-7b", NS)
    second = apps.read_namespaced_deployment("llama-2-7b", NS)
    first.spec.replicas = 3
    updated = apps.replace_namespaced_deployment("llama-2-7b", NS, first)
    assert updated.metadata.generation == 2
    assert updated.status.ready_replicas == 1  # status is kept on main-resource writes
    second.spec.replicas = 1
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment("llama-2-7b", NS, second)
    assert e.value.status == 409
    body = status_of(e)
    assert body["reason"] == "Conflict"
    assert body["message"].startswith(
        'Operation cannot be fulfilled on deployments.apps "llama-2-7b"'
    )
    assert apps.read_namespaced_deployment("llama-2-7b", NS).spec.replicas == 3


def test_dry_run_changes_nothing(
    core: client.CoreV1Api, apps: client.AppsV1Api, store: ObjectStore
) -> None:
    version = store.resource_version
    preview = core.create_namespaced_config_map(NS, configmap("dry", A="1"), dry_run="All")
    assert preview.metadata.uid and not preview.metadata.resource_version
    deploy = apps.read_namespaced_deployment("llama-2-7b", NS)
    deploy.spec.replicas = 5
    assert (
        apps.replace_namespaced_deployment("llama-2-7b", NS, deploy, dry_run="All").spec.replicas
        == 5
    )
    patched = apps.patch_namespaced_deployment(
        "llama-2-7b", NS, {"spec": {"replicas": 4}}, dry_run="All"
    )
    assert (patched.spec.replicas, patched.metadata.generation) == (4, 2)
    core.delete_namespaced_pod(READY_POD, NS, dry_run="All")
    assert store.resource_version == version
    assert store.get("Deployment", NS, "llama-2-7b")["spec"]["replicas"] == 2
    assert store.get("Pod", NS, READY_POD)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("dry", NS)
    assert e.value.status == 404


def test_dry_run_still_validates(apps: client.AppsV1Api) -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "vllm", "resources": {"limits": {"memory": "64GiB"}}}]
                }
            }
        }
    }
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment("llama-2-7b", NS, patch, dry_run="All")
    assert e.value.status == 422
    body = status_of(e)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == (
        "spec.template.spec.containers[0].resources.limits[memory]"
    )


def test_invalid_objects_are_422(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment("llama-2-7b", NS, {"spec": {"replicas": -1}})
    assert e.value.status == 422
    assert status_of(e)["message"] == (
        'Deployment.apps "llama-2-7b" is invalid: spec.replicas: Invalid value: -1: must be '
        "greater than or equal to 0"
    )


def test_bad_dry_run_value_is_400(server: KubeApiServer) -> None:
    answer = requests.patch(
        f"{server.url}/apis/apps/v1/namespaces/{NS}/deployments/llama-2-7b",
        params={"dryRun": "Yes"},
        data="{}",
        headers={"Content-Type": "application/merge-patch+json"},
        timeout=5,
    )
    assert answer.status_code == 400


def test_delete_answers_status_or_pod(
    core: client.CoreV1Api, apps: client.AppsV1Api, store: ObjectStore
) -> None:
    gone = apps.delete_namespaced_replica_set("llama-2-7b-6f7c9", NS)  # the client gives a dict
    assert (gone["kind"], gone["status"]) == ("Status", "Success")
    assert gone["details"]["name"] == "llama-2-7b-6f7c9"
    pod = core.delete_namespaced_pod(READY_POD, NS)
    assert pod.metadata.name == READY_POD
    assert [p["metadata"]["name"] for p in store.list("Pod", NS)] == [
        "llama-2-7b-6f7c9-pnd4x",
        "llama-2-7b-6f7c9-q8m2z",
    ]
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_pod(READY_POD, NS)
    assert e.value.status == 404


def test_status_subresource(core: client.CoreV1Api, store: ObjectStore) -> None:
    patched = core.patch_namespaced_pod_status(
        READY_POD, NS, {"status": {"phase": "Failed"}, "spec": {"nodeName": "elsewhere"}}
    )
    assert patched.status.phase == "Failed"
    assert patched.spec.node_name == "gpu-a"  # /status changes only the status
    on_main = core.patch_namespaced_pod(READY_POD, NS, {"status": {"phase": "Running"}})
    assert on_main.status.phase == "Failed"  # the main resource ignores status
    assert store.get("Pod", NS, READY_POD)["status"]["phase"] == "Failed"


def test_pod_spec_is_mostly_immutable(core: client.CoreV1Api) -> None:
    core.patch_namespaced_pod(
        READY_POD,
        NS,
        {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.12.0"}]}},
    )
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_pod(
            READY_POD, NS, {"spec": {"containers": [{"name": "vllm", "args": ["--x"]}]}}
        )
    assert e.value.status == 422
    assert "pod updates may not change fields" in status_of(e)["message"]


def test_create_resets_status_and_fills_defaults(apps: client.AppsV1Api) -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gateway"},
        "spec": {
            "selector": {"matchLabels": {"app": "gateway"}},
            "template": {
                "metadata": {"labels": {"app": "gateway"}},
                "spec": {"containers": [{"name": "gw", "image": "gateway:1.14.2"}]},
            },
        },
        "status": {"readyReplicas": 9},
    }
    created = apps.create_namespaced_deployment(NS, body)
    assert created.spec.replicas == 1
    assert created.status.ready_replicas is None
    assert created.metadata.generation == 1


def test_mismatched_names_and_namespaces_are_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("gateway-config", NS, configmap("other"))
    assert e.value.status == 400
    other_ns = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x", namespace="default"))
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(NS, other_ns)
    assert e.value.status == 400


def test_leases_create_read_replace_with_conflict(api_client: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api_client)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="opsbot-leader"),
        spec=client.V1LeaseSpec(holder_identity="opsbot-0", lease_duration_seconds=15),
    )
    created = leases.create_namespaced_lease(NS, body)
    assert created.spec.holder_identity == "opsbot-0"
    mine = leases.read_namespaced_lease("opsbot-leader", NS)
    theirs = leases.read_namespaced_lease("opsbot-leader", NS)
    mine.spec.holder_identity = "opsbot-1"
    mine.spec.renew_time = datetime.now(UTC)
    assert leases.replace_namespaced_lease("opsbot-leader", NS, mine).spec.holder_identity == (
        "opsbot-1"
    )
    theirs.spec.holder_identity = "opsbot-2"
    with pytest.raises(ApiException) as e:
        leases.replace_namespaced_lease("opsbot-leader", NS, theirs)
    assert e.value.status == 409
    current = leases.read_namespaced_lease("opsbot-leader", NS)
    assert current.spec.holder_identity == "opsbot-1"
    assert current.spec.renew_time.tzinfo is not None
    assert abs((datetime.now(UTC) - current.spec.renew_time).total_seconds()) < 60
