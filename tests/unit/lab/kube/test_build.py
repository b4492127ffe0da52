"""The scenario builder: the objects a scenario's ``cluster`` becomes (nodes, Karpenter, storage,
events), checked in the store and through the official client's strict models, which is what
the bot's tools deserialize. Workloads and pods: test_build_pods.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lab.kube import build, naming
from lab.kube.store import ObjectStore
from lab.scenario import loader

Obj = dict[str, Any]
EXAMPLE = Path(__file__).resolve().parents[4] / "scenarios" / "cache-pvc-pending.yaml"
SCENARIOS = sorted(Path(__file__).parents[4].joinpath("scenarios").glob("*.yaml"))
NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
CRASH = "mistral-7b-5d8f9-q8m2z"
PENDING = "mistral-7b-5d8f9-pnd4x"
SCENARIO = Path(__file__).with_name("build_scenario.yaml")
MODELS = {
    "Namespace": "V1Namespace",
    "Node": "V1Node",
    "Pod": "V1Pod",
    "Deployment": "V1Deployment",
    "ReplicaSet": "V1ReplicaSet",
    "Event": "CoreV1Event",
    "PersistentVolumeClaim": "V1PersistentVolumeClaim",
    "PersistentVolume": "V1PersistentVolume",
}


@pytest.fixture
def store() -> ObjectStore:
    s = ObjectStore()
    build.populate(s, loader.load_file(SCENARIO), now=NOW)
    return s


@pytest.fixture
def models_client() -> Iterator[client.ApiClient]:
    api = client.ApiClient()
    yield api
    api.close()


def at(text: str) -> datetime:
    return naming.parse_rfc3339(text)


def condition(obj: Obj, kind: str) -> Obj:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def test_every_object_deserializes_with_the_strict_client_models(
    store: ObjectStore, models_client: client.ApiClient
) -> None:
    for kind, model in MODELS.items():
        objects = store.list(kind)
        assert objects, kind
        for obj in objects:
            parsed = models_client.deserialize(json.dumps(obj), model, "application/json")
            assert parsed.metadata.name == obj["metadata"]["name"]
    node = models_client.deserialize(
        json.dumps(store.get("Node", None, "gpu-a")), "V1Node", "application/json"
    )
    assert node.status.node_info.kubelet_version.startswith("v1.32")
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250


def test_namespaces_cover_every_object_and_the_system_ones(store: ObjectStore) -> None:
    names = [ns["metadata"]["name"] for ns in store.list("Namespace")]
    assert names == [
        "default",
        "inference",
        "kube-node-lease",
        "kube-public",
        "kube-system",
        "tools",
    ]


def test_gpu_node_labels_and_capacity_come_from_the_instance_type(store: ObjectStore) -> None:
    node = store.get("Node", None, "gpu-a")
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "gpu-a"
    assert labels["node.kubernetes.io/instance-type"] == "p4d.24xlarge"
    assert labels["topology.kubernetes.io/zone"] == "ap-northeast-2a"
    assert labels["topology.kubernetes.io/region"] == "ap-northeast-2"
    assert labels["karpenter.sh/capacity-type"] == "on-demand"
    assert labels["karpenter.sh/nodepool"] == "gpu"
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.memory"] == "40960"
    assert labels["team"] == "ml"
    capacity = node["status"]["capacity"]
    assert capacity["cpu"] == "96"
    assert capacity["memory"] == f"{1152 * 1024 * 1024}Ki"
    assert capacity["nvidia.com/gpu"] == "8"
    assert capacity["vpc.amazonaws.com/efa"] == "4"
    allocatable = node["status"]["allocatable"]
    assert allocatable["nvidia.com/gpu"] == "8"
    assert int(allocatable["memory"].removesuffix("Ki")) < int(
        capacity["memory"].removesuffix("Ki")
    )
    assert node["spec"]["providerID"].startswith("aws:///ap-northeast-2a/i-0")
    assert condition(node, "Ready") | {"lastHeartbeatTime": "", "lastTransitionTime": ""} == {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
        "lastHeartbeatTime": "",
        "lastTransitionTime": "",
    }
    assert condition(node, "MemoryPressure")["status"] == "False"
    assert "taints" not in node["spec"]


def test_cpu_node_has_no_gpu_resources_and_spot_label_follows_the_scenario(
    store: ObjectStore,
) -> None:
    cpu = store.get("Node", None, "cpu-a")
    assert "nvidia.com/gpu" not in cpu["status"]["capacity"]
    assert "vpc.amazonaws.com/efa" not in cpu["status"]["capacity"]
    assert "nvidia.com/gpu.present" not in cpu["metadata"]["labels"]
    spot = store.get("Node", None, "gpu-b")
    assert spot["metadata"]["labels"]["karpenter.sh/capacity-type"] == "spot"
    assert spot["metadata"]["labels"]["nvidia.com/gpu.count"] == "4"
    assert "vpc.amazonaws.com/efa" not in spot["status"]["capacity"]


def test_not_ready_node_reports_what_the_node_controller_writes(store: ObjectStore) -> None:
    node = store.get("Node", None, "gpu-c")
    ready = condition(node, "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert ready["message"] == "Kubelet stopped posting node status."
    keys = {(t["key"], t["effect"]) for t in node["spec"]["taints"]}
    assert keys == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }


def test_cordoned_node_has_the_unschedulable_taint_and_extra_conditions(
    store: ObjectStore,
) -> None:
    node = store.get("Node", None, "cpu-a")
    assert node["spec"]["unschedulable"] is True
    taints = [(t["key"], t.get("value"), t["effect"]) for t in node["spec"]["taints"]]
    assert taints == [
        ("dedicated", "system", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", None, "NoSchedule"),
    ]
    deadlock = condition(node, "KernelDeadlock")
    assert (deadlock["status"], deadlock["reason"]) == ("False", "KernelHasNoDeadlock")
    assert [c["type"] for c in node["status"]["conditions"]][-1] == "Ready"


def test_events_point_at_the_stored_objects(store: ObjectStore) -> None:
    events = {e["involvedObject"]["name"]: e for e in store.list("Event")}
    backoff = events[CRASH]
    assert backoff["metadata"]["namespace"] == "inference"
    assert backoff["involvedObject"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "name": CRASH,
        "namespace": "inference",
        "uid": store.get("Pod", "inference", CRASH)["metadata"]["uid"],
        "fieldPath": "spec.containers{vllm}",
    }
    assert backoff["source"] == {"component": "kubelet", "host": "gpu-b"}
    assert backoff["count"] == 12
    assert at(backoff["lastTimestamp"]) == NOW - timedelta(minutes=1)
    assert at(backoff["firstTimestamp"]) == NOW - timedelta(minutes=12)
    assert events[PENDING]["source"] == {"component": "default-scheduler"}
    node_event = events["gpu-c"]
    assert node_event["metadata"]["namespace"] == "default"
    assert "namespace" not in node_event["involvedObject"]
    assert (
        node_event["involvedObject"]["uid"] == store.get("Node", None, "gpu-c")["metadata"]["uid"]
    )
    assert node_event["source"]["component"] == "node-controller"
    claim_event = events["gpu-x7k2q"]
    assert claim_event["involvedObject"]["apiVersion"] == "karpenter.sh/v1"
    assert claim_event["reportingComponent"] == "karpenter"
    pvc_uid = store.get("PersistentVolumeClaim", "inference", "model-cache-pvc")["metadata"]["uid"]
    assert events["model-cache-pvc"]["involvedObject"]["uid"] == pvc_uid
    assert "uid" not in events["gone"]["involvedObject"]  # no such Deployment
    assert events["gone"]["source"]["component"] == "deployment-controller"


def test_bound_pvc_gets_an_ebs_volume_the_aws_fake_can_name(store: ObjectStore) -> None:
    claim = store.get("PersistentVolumeClaim", "inference", "model-cache-pvc")
    volume = store.get("PersistentVolume", None, claim["spec"]["volumeName"])
    volume_id = build.volume_id_for("inference", "model-cache-pvc")
    assert volume_id.startswith("vol-0") and len(volume_id) == len("vol-0123456789abcdef0")
    assert volume["spec"]["csi"]["volumeHandle"] == volume_id
    assert volume["spec"]["csi"]["driver"] == "ebs.csi.aws.com"
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert volume["spec"]["capacity"] == {"storage": "200Gi"}
    assert claim["status"] == {
        "phase": "Bound",
        "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": "200Gi"},
    }
    assert claim["spec"]["storageClassName"] == "gp3"
    zone = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert zone[0]["values"] == ["ap-northeast-2a"]  # where the first pod mounting it runs


def test_pending_pvc_has_no_volume(store: ObjectStore) -> None:
    claim = store.get("PersistentVolumeClaim", "inference", "scratch")
    assert claim["status"] == {"phase": "Pending"}
    assert "volumeName" not in claim["spec"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "100Gi"}}
    assert len(store.list("PersistentVolume")) == 1


def test_nodepool_status_sums_the_capacity_of_its_nodes(store: ObjectStore) -> None:
    pool = store.get("NodePool", None, "gpu")
    assert pool["apiVersion"] == "karpenter.sh/v1"
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": 64}
    assert pool["spec"]["template"]["spec"]["requirements"][0]["values"] == [
        "p4d.24xlarge",
        "g5.12xlarge",
    ]
    resources = pool["status"]["resources"]
    assert resources["nvidia.com/gpu"] == "12"
    assert resources["cpu"] == "144"
    assert resources["nodes"] == "2"
    assert resources["memory"] == f"{(1152 + 192) * 1024 * 1024}Ki"
    assert condition(pool, "Ready")["status"] == "True"


def test_nodeclaims_carry_launch_conditions_and_their_node(store: ObjectStore) -> None:
    failed = store.get("NodeClaim", None, "gpu-x7k2q")
    launched = condition(failed, "Launched")
    assert (launched["status"], launched["reason"]) == ("False", "InsufficientCapacity")
    assert launched["lastTransitionTime"]
    ready = condition(failed, "Ready")
    assert (ready["status"], ready["message"]) == ("False", "insufficient capacity")
    assert "nodeName" not in failed["status"] and "providerID" not in failed["status"]
    requirements = {r["key"]: r["values"] for r in failed["spec"]["requirements"]}
    assert requirements == {
        "karpenter.sh/nodepool": ["gpu"],
        "node.kubernetes.io/instance-type": ["p4d.24xlarge"],
        "topology.kubernetes.io/zone": ["ap-northeast-2a"],
        "karpenter.sh/capacity-type": ["spot"],
    }
    assert failed["spec"]["nodeClassRef"]["kind"] == "EC2NodeClass"
    healthy = store.get("NodeClaim", None, "gpu-h4m8n")
    node = store.get("Node", None, "gpu-b")
    assert healthy["status"]["nodeName"] == "gpu-b"
    assert healthy["status"]["providerID"] == node["spec"]["providerID"]
    assert all(c["status"] == "True" for c in healthy["status"]["conditions"])


def test_example_scenario_builds() -> None:
    s = ObjectStore()
    build.populate(s, loader.load_file(EXAMPLE), now=NOW)
    pod = s.get("Pod", "inference", "mixtral-8x7b-7c9d-p4k2z")
    assert pod["metadata"]["labels"]["pod-template-hash"] == "7c9d"
    assert s.get("ReplicaSet", "inference", "mixtral-8x7b-7c9d")
    assert pod["status"]["phase"] == "Pending"
    dep = s.get("Deployment", "inference", "mixtral-8x7b")
    progressing = condition(dep, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert (
        s.get("PersistentVolumeClaim", "inference", "mixtral-cache")["status"]["phase"] == "Pending"
    )


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_project_scenarios_build_objects_the_client_accepts(
    path: Path, models_client: client.ApiClient
) -> None:
    s = ObjectStore()
    build.populate(s, loader.load_file(path), now=NOW)
    for kind, model in MODELS.items():
        for obj in s.list(kind):
            models_client.deserialize(json.dumps(obj), model, "application/json")
