"""Reads through the official client: lists, selectors, gets, and strict deserialization."""

from __future__ import annotations

import json

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kube.server import KubeApiServer

NS = "inference"
CRASH_POD = "llama-2-7b-6f7c9-q8m2z"
READY_POD = "llama-2-7b-6f7c9-x2k4p"
PENDING_POD = "llama-2-7b-6f7c9-pnd4x"


def names(items: list[object]) -> set[str]:
    return {i.metadata.name for i in items}  # type: ignore[attr-defined]


def test_every_kind_deserializes_with_strict_models(
    core: client.CoreV1Api, apps: client.AppsV1Api, api_client: client.ApiClient
) -> None:
    assert len(core.list_node().items) == 4
    assert len(core.list_pod_for_all_namespaces().items) == 3
    assert len(core.list_namespaced_event(NS).items) == 3
    assert names(core.list_namespaced_persistent_volume_claim(NS).items) == {
        "model-cache-pvc",
        "scratch-pvc",
    }
    assert core.list_persistent_volume().items[0].spec.csi.volume_handle == "vol-0abc"
    assert core.read_namespaced_config_map("gateway-config", NS).data == {"REQUEST_TIMEOUT": "60"}
    assert core.read_namespace(NS).status.phase == "Active"
    deploy = apps.read_namespaced_deployment("llama-2-7b", NS)
    assert deploy.spec.template.spec.containers[0].env[0].name == "MAX_NUM_SEQS"
    rs = apps.list_namespaced_replica_set(NS).items[0]
    assert rs.metadata.owner_references[0].uid == deploy.metadata.uid
    crash = core.read_namespaced_pod(CRASH_POD, NS)
    last = crash.status.container_statuses[0].last_state.terminated
    assert (last.reason, last.exit_code) == ("OOMKilled", 137)
    listed = core.list_namespaced_pod(NS)
    assert listed.kind == "PodList"
    assert int(listed.metadata.resource_version) > 0


def test_label_selectors(core: client.CoreV1Api) -> None:
    def pods(selector: str) -> set[str]:
        return names(core.list_namespaced_pod(NS, label_selector=selector).items)

    everything = {CRASH_POD, READY_POD, PENDING_POD}
    assert pods("model=llama-2-7b") == everything
    assert pods("model==llama-2-7b,app=inference") == everything
    assert pods("model!=llama-2-7b") == set()
    assert pods("model in (llama-2-7b, mistral-7b)") == everything
    assert pods("model notin (llama-2-7b)") == set()
    assert pods("pod-template-hash") == everything
    assert pods("!pod-template-hash") == set()
    assert pods("tier!=gpu") == everything  # != matches a missing label


def test_field_selectors(core: client.CoreV1Api) -> None:
    on_a = core.list_namespaced_pod(NS, field_selector="spec.nodeName=gpu-a").items
    assert names(on_a) == {CRASH_POD, READY_POD}
    pending = core.list_pod_for_all_namespaces(field_selector="status.phase=Pending").items
    assert names(pending) == {PENDING_POD}
    # kubectl describe node asks for non-terminated pods like this
    selector = "spec.nodeName=gpu-a,status.phase!=Failed,status.phase!=Succeeded"
    assert len(core.list_pod_for_all_namespaces(field_selector=selector).items) == 2
    assert names(core.list_node(field_selector="spec.unschedulable=true").items) == {"gpu-b"}
    assert names(core.list_node(field_selector="metadata.name=gpu-c").items) == {"gpu-c"}
    events = core.list_namespaced_event(
        NS, field_selector=f"involvedObject.kind=Pod,involvedObject.name={CRASH_POD}"
    ).items
    assert [e.reason for e in events] == ["BackOff"]
    warnings = core.list_namespaced_event(NS, field_selector="type=Warning").items
    assert {e.reason for e in warnings} == {"BackOff", "FailedScheduling"}


@pytest.mark.parametrize(
    ("label_selector", "field_selector"),
    [("app in (x", None), ("=x", None), (None, "spec.color=red"), (None, "nodeName")],
)
def test_bad_selectors_are_400(
    core: client.CoreV1Api, label_selector: str | None, field_selector: str | None
) -> None:
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod(NS, label_selector=label_selector, field_selector=field_selector)
    assert e.value.status == 400
    assert json.loads(e.value.body)["reason"] == "BadRequest"


def test_unknown_namespace_lists_empty_and_get_is_404(core: client.CoreV1Api) -> None:
    assert core.list_namespaced_pod("nowhere").items == []
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("ghost", NS)
    assert e.value.status == 404
    status = json.loads(e.value.body)
    assert (status["reason"], status["message"]) == ("NotFound", 'pods "ghost" not found')
    assert status["details"] == {"name": "ghost", "group": "", "kind": "pods"}


def test_limit_and_continue_are_accepted(server: KubeApiServer) -> None:
    answer = requests.get(
        f"{server.url}/api/v1/namespaces/{NS}/pods",
        params={"limit": "1", "continue": "", "resourceVersion": "0"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json()["kind"] == "PodList"
    assert answer.json()["apiVersion"] == "v1"


def test_cluster_wide_list_of_a_namespaced_kind(apps: client.AppsV1Api) -> None:
    assert names(apps.list_deployment_for_all_namespaces().items) == {"llama-2-7b"}
