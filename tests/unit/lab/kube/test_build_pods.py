"""The scenario builder's workloads: Deployments, ReplicaSets, pods and their logs, as a
scenario's ``workloads`` and ``pods`` describe them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lab.kube import build, naming
from lab.kube.store import LogKey, ObjectStore
from lab.scenario import loader

Obj = dict[str, Any]
NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
CRASH = "mistral-7b-5d8f9-q8m2z"
PENDING = "mistral-7b-5d8f9-pnd4x"
SCENARIO = Path(__file__).with_name("build_scenario.yaml")


@pytest.fixture
def store() -> ObjectStore:
    s = ObjectStore()
    build.populate(s, loader.load_file(SCENARIO), now=NOW)
    return s


def at(text: str) -> datetime:
    return naming.parse_rfc3339(text)


def condition(obj: Obj, kind: str) -> Obj:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def pods_of(store: ObjectStore, prefix: str) -> list[Obj]:
    return [p for p in store.list("Pod", "inference") if p["metadata"]["name"].startswith(prefix)]


def test_default_pods_run_ready_round_robin_over_ready_gpu_nodes(store: ObjectStore) -> None:
    pods = pods_of(store, "llama-2-7b-")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["gpu-a", "gpu-a", "gpu-b"]
    rs = store.list("ReplicaSet", "inference")[0]
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"llama-2-7b-{pod_hash}"
    for pod in pods:
        name = pod["metadata"]["name"]
        assert name.startswith(f"llama-2-7b-{pod_hash}-") and len(name.rsplit("-", 1)[1]) == 5
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready")["status"] == "True"
        assert pod["metadata"]["labels"] == {
            "app": "inference",
            "model": "llama-2-7b",
            "pod-template-hash": pod_hash,
        }
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        statuses = pod["status"]["containerStatuses"]
        assert [(s["name"], s["ready"], s["restartCount"]) for s in statuses] == [
            ("vllm", True, 0),
            ("metrics", True, 0),
        ]
        assert statuses[0]["containerID"].startswith("containerd://")
        assert pod["status"]["hostIP"] == naming.node_ip(pod["spec"]["nodeName"])
        assert pod["status"]["podIP"].split(".")[:2] == pod["status"]["hostIP"].split(".")[:2]


def test_the_same_scenario_and_moment_build_the_same_names() -> None:
    first, second = ObjectStore(), ObjectStore()
    for s in (first, second):
        build.populate(s, loader.load_file(SCENARIO), now=NOW)
    assert [p["metadata"] for p in first.list("Pod")] == [p["metadata"] for p in second.list("Pod")]


def test_deployment_replicaset_and_pods_are_linked_and_consistent(store: ObjectStore) -> None:
    dep = store.get("Deployment", "inference", "llama-2-7b")
    rs = next(
        r
        for r in store.list("ReplicaSet", "inference")
        if r["metadata"]["name"].startswith("llama")
    )
    assert rs["metadata"]["ownerReferences"][0] | {"uid": ""} == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llama-2-7b",
        "uid": "",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "inference", "model": "llama-2-7b"}}
    status = dep["status"]
    assert status | {"conditions": []} == {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [],
    }
    assert condition(dep, "Available")["reason"] == "MinimumReplicasAvailable"
    assert condition(dep, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert rs["status"]["replicas"] == rs["status"]["readyReplicas"] == 3


def test_containers_are_stored_as_the_api_server_normalises_them(store: ObjectStore) -> None:
    template = store.get("Deployment", "inference", "llama-2-7b")["spec"]["template"]["spec"]
    vllm = template["containers"][0]
    assert vllm["env"] == [
        {"name": "MAX_NUM_SEQS", "value": "256"},
        {"name": "HF_HOME", "value": "/cache"},
    ]
    assert vllm["resources"] == {
        "limits": {"nvidia.com/gpu": "1", "memory": "32Gi"},
        "requests": {"cpu": "500m"},
    }
    assert vllm["ports"] == [{"protocol": "TCP", "containerPort": 8000}]
    assert vllm["startupProbe"]["failureThreshold"] == 3
    assert vllm["startupProbe"]["periodSeconds"] == 10
    assert template["volumes"] == [
        {"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache-pvc"}}
    ]
    pod = pods_of(store, "llama-2-7b-")[0]
    requests = pod["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"nvidia.com/gpu": "1", "memory": "32Gi", "cpu": "500m"}
    assert pod["status"]["qosClass"] == "Burstable"


def test_crashlooping_pod_shows_backoff_and_last_termination(store: ObjectStore) -> None:
    pod = store.get("Pod", "inference", CRASH)
    assert pod["status"]["phase"] == "Running"
    vllm = pod["status"]["containerStatuses"][0]
    assert (vllm["ready"], vllm["restartCount"], vllm["started"]) == (False, 7, False)
    uid = pod["metadata"]["uid"]
    assert vllm["state"] == {
        "waiting": {
            "reason": "CrashLoopBackOff",
            "message": f"back-off 5m0s restarting failed container=vllm pod={CRASH}_inference({uid})",
        }
    }
    last = vllm["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137)
    assert at(last["finishedAt"]) == NOW - timedelta(minutes=4)
    assert at(last["startedAt"]) < at(last["finishedAt"])
    ready = condition(pod, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ContainersNotReady")
    assert ready["message"] == "containers with unready status: [vllm]"
    assert at(pod["metadata"]["creationTimestamp"]) < at(last["startedAt"])


def test_pod_without_a_node_is_pending_with_the_schedulers_message(store: ObjectStore) -> None:
    pod = store.get("Pod", "inference", PENDING)
    assert "nodeName" not in pod["spec"]
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": pod["metadata"]["creationTimestamp"],
            "reason": "Unschedulable",
            "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
        }
    ]
    assert "containerStatuses" not in pod["status"]
    # the pod is older than the first of its 30 FailedScheduling events
    assert at(pod["metadata"]["creationTimestamp"]) < NOW - timedelta(minutes=31)


def test_deployment_status_counts_the_scenarios_pods(store: ObjectStore) -> None:
    status = store.get("Deployment", "inference", "mistral-7b")["status"]
    assert status["replicas"] == 2
    assert "readyReplicas" not in status  # omitted when zero, as the API server does
    assert status["unavailableReplicas"] == 2
    assert next(c for c in status["conditions"] if c["type"] == "Available")["status"] == "False"


def test_standalone_pod_has_no_owner(store: ObjectStore) -> None:
    pod = store.get("Pod", "tools", "debug-shell")
    assert "ownerReferences" not in pod["metadata"]
    assert pod["metadata"]["labels"] == {"run": "debug"}
    assert pod["spec"]["nodeName"] == "cpu-a"
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["qosClass"] == "BestEffort"


def test_logs_of_the_first_container_current_and_previous(store: ObjectStore) -> None:
    assert store.logs(LogKey("inference", CRASH, "vllm")) == "INFO loading\n"
    previous = store.logs(LogKey("inference", CRASH, "vllm", previous=True))
    assert previous == "torch.OutOfMemoryError: CUDA out of memory\n"
    running = pods_of(store, "llama-2-7b-")[0]["metadata"]["name"]
    assert store.logs(LogKey("inference", running, "vllm")) == ""
    assert store.logs(LogKey("inference", running, "metrics")) == ""
    assert store.logs(LogKey("inference", running, "vllm", previous=True)) is None
    assert store.logs(LogKey("inference", PENDING, "vllm")) is None
