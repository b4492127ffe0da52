"""The Kubernetes tools on public scenarios, through the real client and the lab's API server:
each answer is checked against what the scenario says happened, and each ``call`` against the
request the server recorded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from lab.kube.cluster import FakeCluster
from lab.scenario import loader, models
from tools import base, kube, kube_api
from tools.toolbox import ClusterConfig, Toolbox

ROOT = Path(__file__).resolve().parents[3]
OOM_POD = "llama-3-8b-7d9f6c5b8-2xkqp"
OOM_POD_2 = "llama-3-8b-7d9f6c5b8-m4v7n"
XID_NODE = "ip-10-1-3-71.ap-northeast-2.compute.internal"
XID_POD = "llama-3-70b-84c6d9b7f5-r7n2f"
SPOT_PENDING = "mixtral-8x22b-66d8c9f7b4-kd7rz"


@dataclass
class Lab:
    cluster: FakeCluster
    box: Toolbox

    def last_request_line(self) -> str:
        """The last request the server saw, written as a tool's ``call`` line."""
        recorded = self.cluster.server.calls()[-1]
        return kube_api.request_line(recorded.path, list(recorded.query.items()))


def start(scenario: models.Scenario, directory: Path, timeout: float = 5.0) -> Iterator[Lab]:
    with FakeCluster.from_scenario(scenario) as cluster:
        kubeconfig = cluster.write_kubeconfig(directory / "kubeconfig")
        config = ClusterConfig(
            name="lab",
            kubeconfig=str(kubeconfig),
            prometheus_url="http://127.0.0.1:9",
            kubecost_url="http://127.0.0.1:9",
            alertmanager_url="http://127.0.0.1:9",
        )
        box = Toolbox([config], limits=base.Limits(timeout=timeout))
        try:
            yield Lab(cluster, box)
        finally:
            kube_api.client(box, config).close()


def _scenario_lab(name: str, tmp: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from start(loader.load_file(ROOT / "scenarios" / f"{name}.yaml"), tmp.mktemp(name))


@pytest.fixture(scope="module")
def oom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from _scenario_lab("gpu-oom-kv-cache-pressure", tmp_path_factory)


@pytest.fixture(scope="module")
def spot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from _scenario_lab("karpenter-spot-only-p5", tmp_path_factory)


@pytest.fixture(scope="module")
def xid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The XID 79 scenario, plus the node events a real cluster would show for that node."""
    doc = yaml.safe_load((ROOT / "scenarios" / "gpu-xid79-fallen-off-bus.yaml").read_text())
    doc["cluster"]["events"] += [
        {
            "involved": f"node/{XID_NODE}",
            "type": "Warning",
            "reason": "GPUUnhealthy",
            "message": "Xid 79 on GPU-7a1d3f5e-8b2c-4e69-a0d4-6c8e1f3b5a72: GPU has fallen off the bus",
            "last_seen": "-25m",
        },
        {
            "involved": f"node/{XID_NODE}",
            "reason": "NodeReady",
            "message": f"Node {XID_NODE} status is now: NodeReady",
            "last_seen": "-2d",
        },
    ]
    yield from start(loader.load_text(yaml.safe_dump(doc)), tmp_path_factory.mktemp("xid"))


# The complete example beside SCENARIOS.md (examples/cache-pvc-pending.yaml), as given there.
CACHE_PVC_PENDING = """
name: cache-pvc-pending
description: A new model's pod waits on its model-cache PVC, which no storage class can provision.
cluster:
  nodes:
    - {name: ip-10-1-1-10.ap-northeast-2.compute.internal, instance_type: g5.12xlarge, zone: ap-northeast-2a, nodepool: gpu}
  workloads:
    - name: mixtral-8x7b
      namespace: inference
      replicas: 1
      labels: {app: inference, model: mixtral-8x7b}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--model", "mistralai/Mixtral-8x7B-Instruct-v0.1", "--tensor-parallel-size", "4", "--download-dir", "/models"]
          resources: {limits: {nvidia.com/gpu: 4, memory: 160Gi}}
          volumeMounts: [{name: model-cache, mountPath: /models}]
      volumes: [{name: model-cache, persistentVolumeClaim: {claimName: mixtral-cache}}]
      pods:
        - {name: mixtral-8x7b-7c9d-p4k2z, phase: Pending, ready: false}
  events:
    - {involved: pod/inference/mixtral-8x7b-7c9d-p4k2z, type: Warning, reason: FailedScheduling, message: "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.", count: 18, last_seen: -1m}
    - {involved: pvc/inference/mixtral-cache, type: Warning, reason: ProvisioningFailed, message: 'storageclass.storage.k8s.io "gp3-encrypted" not found', count: 22, last_seen: -1m}
  pvcs:
    - {name: mixtral-cache, namespace: inference, phase: Pending, storage_class: gp3-encrypted, size: 300Gi}
"""


@pytest.fixture(scope="module")
def pvc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scenario = loader.load_text(CACHE_PVC_PENDING)
    yield from start(scenario, tmp_path_factory.mktemp("pvc"))


def _ago(stamp: str) -> timedelta:
    return datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# -- nodes ---------------------------------------------------------------------------------
def test_nodes_with_gpus_placement_and_taints(oom: Lab) -> None:
    result = kube.list_nodes(box=oom.box)
    assert result.status == "ok" and result.source == "kubernetes"
    assert result.call == "GET /api/v1/nodes" == oom.last_request_line()
    by_name = {n["name"]: n for n in result.data}
    gpu = by_name["ip-10-1-2-33.ap-northeast-2.compute.internal"]
    assert gpu["ready"] is True and gpu["unschedulable"] is False
    assert (gpu["instance_type"], gpu["zone"], gpu["capacity_type"], gpu["nodepool"]) == (
        "p4d.24xlarge",
        "ap-northeast-2a",
        "on-demand",
        "gpu-a100",
    )
    assert (gpu["gpu_capacity"], gpu["gpu_allocatable"]) == (8, 8)
    system = by_name["ip-10-1-0-12.ap-northeast-2.compute.internal"]
    assert system["taints"] == ["CriticalAddonsOnly=true:NoSchedule"]
    assert system["gpu_capacity"] == 0
    assert "taint CriticalAddonsOnly=true:NoSchedule" in result.text

    gpu_only = kube.list_nodes(box=oom.box, gpu_only=True)
    assert [n["name"] for n in gpu_only.data] == [gpu["name"]]
    assert gpu_only.text.startswith("1 GPU nodes: 1 Ready, 0 not Ready, 0 cordoned")


# -- pods and logs -------------------------------------------------------------------------
def test_pods_restarts_and_last_termination(oom: Lab) -> None:
    result = kube.list_pods(box=oom.box, label_selector="app=inference")
    assert result.status == "ok"
    assert result.call == "GET /api/v1/namespaces/inference/pods?labelSelector=app%3Dinference"
    assert result.call == oom.last_request_line()
    pods = {p["name"]: p for p in result.data}
    crashed = pods[OOM_POD]
    assert (crashed["phase"], crashed["ready"], crashed["restarts"]) == ("Running", "1/1", 3)
    last = crashed["last_termination"]
    assert (last["reason"], last["exit_code"], last["container"]) == ("Error", 1, "vllm")
    assert timedelta(minutes=8) < _ago(last["finished_at"]) < timedelta(minutes=11)
    older = pods[OOM_POD_2]["last_termination"]
    assert pods[OOM_POD_2]["restarts"] == 1
    assert timedelta(hours=16) < _ago(older["finished_at"]) < timedelta(hours=18)
    assert re.search(r"3 \(9m\d*s? ago\) +Error exit=1 9m\d*s? ago", result.text)


def test_pods_by_node_and_nothing_found_says_what_was_asked(oom: Lab) -> None:
    node = "ip-10-1-2-33.ap-northeast-2.compute.internal"
    on_node = kube.list_pods(box=oom.box, node=node)
    assert on_node.call == oom.last_request_line()
    assert "fieldSelector=spec.nodeName%3D" in on_node.call
    assert {p["name"] for p in on_node.data} == {OOM_POD, OOM_POD_2}

    none = kube.list_pods(box=oom.box, label_selector="model=nope")
    assert none.status == "no_data" and none.data == []
    assert none.text == "no pods in namespace inference with labelSelector model=nope"


def test_previous_logs_hold_the_oom(oom: Lab) -> None:
    previous = kube.pod_logs(box=oom.box, pod=OOM_POD, previous=True)
    assert previous.status == "ok"
    assert previous.call == (
        f"GET /api/v1/namespaces/inference/pods/{OOM_POD}/log?previous=true&tailLines=200"
    )
    assert previous.call == oom.last_request_line()
    assert "torch.OutOfMemoryError: CUDA out of memory" in previous.text
    assert "EngineDeadError" in previous.text

    current = kube.pod_logs(box=oom.box, pod=OOM_POD, container="vllm")
    assert "OutOfMemoryError" not in current.text
    assert "GPU KV cache usage: 99.5%" in current.text

    grepped = kube.pod_logs(box=oom.box, pod=OOM_POD, previous=True, grep=r"OutOfMemory|Dead")
    assert grepped.data["lines"] == 2 and grepped.data["lines_read"] == 26
    assert all("OutOfMemory" in line or "Dead" in line for line in grepped.text.splitlines()[1:])

    nothing = kube.pod_logs(box=oom.box, pod=OOM_POD, grep="NCCL")
    assert nothing.status == "no_data" and "matching /NCCL/" in nothing.text


# -- events and describe -------------------------------------------------------------------
def test_events_of_a_pod_newest_first(oom: Lab) -> None:
    result = kube.events(box=oom.box, kind="pod", name=OOM_POD)
    assert result.call == (
        "GET /api/v1/namespaces/inference/events?fieldSelector="
        f"involvedObject.kind%3DPod%2CinvolvedObject.name%3D{OOM_POD}"
    )
    assert result.call == oom.last_request_line()
    assert result.data[0]["reason"] == "Unhealthy"
    assert {e["reason"] for e in result.data[1:]} == {"Started", "Pulled"}  # both 9m ago
    unhealthy = result.data[0]
    assert (unhealthy["type"], unhealthy["count"]) == ("Warning", 8)
    assert timedelta(minutes=6) < _ago(unhealthy["last_seen"]) < timedelta(minutes=8)
    assert re.search(r"^7m\d*s? +Warning +Unhealthy", result.text, re.MULTILINE)
    recent = kube.events(box=oom.box, kind="pod", name=OOM_POD, since="8m")
    assert [e["reason"] for e in recent.data] == ["Unhealthy"]


def test_node_events_of_the_xid79_node(xid: Lab) -> None:
    result = kube.events(box=xid.box, kind="node", name=XID_NODE)
    assert result.call == xid.last_request_line()
    assert result.call.startswith("GET /api/v1/events?fieldSelector=involvedObject.kind%3DNode")
    assert [e["reason"] for e in result.data] == ["GPUUnhealthy", "NodeReady"]
    assert "GPU has fallen off the bus" in result.text
    other = kube.events(
        box=xid.box, kind="node", name="ip-10-1-2-33.ap-northeast-2.compute.internal"
    )
    assert other.status == "no_data"
    assert other.text.startswith("no events of Node ip-10-1-2-33")
    backoff = kube.events(box=xid.box, kind="pod", name=XID_POD)
    assert [(e["reason"], e["count"]) for e in backoff.data] == [("BackOff", 19)]


def test_describe_a_crashing_pod(xid: Lab) -> None:
    result = kube.describe(box=xid.box, kind="pod", name=XID_POD)
    assert result.status == "ok"
    lines = result.call.splitlines()
    assert lines[0] == f"GET /api/v1/namespaces/inference/pods/{XID_POD}"
    assert lines[1].startswith("GET /api/v1/namespaces/inference/events?fieldSelector=")
    assert lines[1] == xid.last_request_line()
    assert (result.data["status"], result.data["restarts"]) == ("CrashLoopBackOff", 6)
    assert result.data["owner"] == "ReplicaSet/llama-3-70b-84c6d9b7f5"
    vllm = result.data["containers"][0]
    assert vllm["env"] == [{"name": "HF_HOME", "value": "/models/hf"}]
    assert vllm["args"][:2] == ["--model", "meta-llama/Meta-Llama-3-70B-Instruct"]
    assert vllm["requests"]["nvidia.com/gpu"] == "8"
    assert vllm["last_state"].startswith("Terminated (Error, exit code 1")
    assert "--tensor-parallel-size 8" in result.text
    assert "Readiness:  http-get http://:8000/health" in result.text
    assert "State:      Waiting (CrashLoopBackOff" in result.text
    assert [e["reason"] for e in result.data["events"]] == ["BackOff"]


def test_describe_renders_secret_env_as_a_reference(oom: Lab) -> None:
    result = kube.describe(box=oom.box, kind="po", name=OOM_POD)
    env = result.data["containers"][0]["env"]
    assert env == [{"name": "HF_TOKEN", "from": "secret hf-token key token"}]
    assert "HF_TOKEN (from secret hf-token key token)" in result.text
    assert "--gpu-memory-utilization 0.98 --max-num-seqs 512" in result.text


def test_describe_node_and_deployment(xid: Lab, spot: Lab) -> None:
    node = kube.describe(box=xid.box, kind="node", name=XID_NODE)
    assert node.call.splitlines()[2] == xid.last_request_line()
    assert node.data["gpus_requested"] == 8 and node.data["gpu_allocatable"] == 8
    assert [p["name"] for p in node.data["pods"]] == [XID_POD]
    assert [e["reason"] for e in node.data["events"]] == ["GPUUnhealthy", "NodeReady"]
    assert "Placement:   p4d.24xlarge in ap-northeast-2b, on-demand, NodePool gpu-a100" in node.text

    deploy = kube.describe(box=spot.box, kind="deployment", name="mixtral-8x22b")
    assert deploy.call.splitlines()[0] == (
        "GET /apis/apps/v1/namespaces/inference/deployments/mixtral-8x22b"
    )
    replicas = deploy.data["replicas"]
    assert (replicas["desired"], replicas["ready"], replicas["unavailable"]) == (3, 2, 1)
    available = next(c for c in deploy.data["conditions"] if c["type"] == "Available")
    assert available["status"] == "False"


# -- workloads, storage, Karpenter, GPU allocation -----------------------------------------
def test_deployments_unhealthy_first(spot: Lab) -> None:
    result = kube.list_deployments(box=spot.box)
    assert result.call == "GET /apis/apps/v1/namespaces/inference/deployments"
    assert result.call == spot.last_request_line()
    mixtral = result.data[0]
    assert (mixtral["name"], mixtral["desired"], mixtral["ready"]) == ("mixtral-8x22b", 3, 2)
    assert mixtral["gpus_per_pod"] == 8
    assert any(p.startswith("Available=False") for p in mixtral["problems"])


def test_pending_cache_pvc_and_its_events(pvc: Lab) -> None:
    claims = kube.list_pvcs(box=pvc.box)
    assert claims.call == "GET /api/v1/namespaces/inference/persistentvolumeclaims"
    assert claims.call == pvc.last_request_line()
    [claim] = claims.data
    assert (claim["name"], claim["phase"], claim["storage_class"]) == (
        "mixtral-cache",
        "Pending",
        "gp3-encrypted",
    )
    assert claim["requested"] == "300Gi" and claim["volume"] is None

    events = kube.events(box=pvc.box)
    assert events.call == "GET /api/v1/namespaces/inference/events"
    reasons = {e["reason"]: e for e in events.data}
    assert reasons["FailedScheduling"]["object"] == "Pod/mixtral-8x7b-7c9d-p4k2z"
    assert reasons["FailedScheduling"]["count"] == 18
    assert "unbound immediate PersistentVolumeClaims" in reasons["FailedScheduling"]["message"]
    assert 'storageclass.storage.k8s.io "gp3-encrypted" not found' in events.text

    of_claim = kube.events(box=pvc.box, kind="pvc", name="mixtral-cache")
    assert [e["reason"] for e in of_claim.data] == ["ProvisioningFailed"]

    [pending] = kube.list_pods(box=pvc.box).data
    assert pending["phase"] == "Pending" and pending["node"] is None
    assert "unbound immediate PersistentVolumeClaims" in pending["unschedulable"]


def test_nodeclaim_insufficient_capacity(spot: Lab) -> None:
    result = kube.karpenter_status(box=spot.box)
    assert (
        result.call == "GET /apis/karpenter.sh/v1/nodepools\nGET /apis/karpenter.sh/v1/nodeclaims"
    )
    assert result.call.splitlines()[1] == spot.last_request_line()
    [pool] = result.data["nodepools"]
    assert pool["name"] == "gpu-spot" and pool["nodes"] == 2
    assert "karpenter.sh/capacity-type In [spot]" in pool["requirements"]
    assert pool["usage"] == {"nvidia.com/gpu": "16 of 64"}
    [claim] = result.data["nodeclaims"]
    assert claim["name"] == "gpu-spot-r5t9w" and claim["launched"] is False
    assert (claim["instance_type"], claim["zone"], claim["capacity_type"]) == (
        "p5.48xlarge",
        "ap-northeast-2c",
        "spot",
    )
    launched = next(c for c in claim["conditions"] if c["type"] == "Launched")
    assert (launched["status"], launched["reason"]) == ("False", "InsufficientCapacity")
    assert "There is no Spot capacity available" in launched["message"]
    assert "Launched=False InsufficientCapacity" in result.text

    one = kube.karpenter_status(box=spot.box, nodepool="gpu-spot")
    assert one.call.splitlines() == [
        "GET /apis/karpenter.sh/v1/nodepools/gpu-spot",
        "GET /apis/karpenter.sh/v1/nodeclaims?labelSelector=karpenter.sh/nodepool%3Dgpu-spot",
    ]
    assert one.call.splitlines()[1] == spot.last_request_line()
    assert [c["name"] for c in one.data["nodeclaims"]] == ["gpu-spot-r5t9w"]
    missing = kube.karpenter_status(box=spot.box, nodepool="gpu-od")
    assert missing.status == "error" and missing.error_kind == "not-found"
    assert 'nodepools.karpenter.sh "gpu-od" not found' in missing.text

    claim_events = kube.events(box=spot.box, kind="nodeclaim", name="gpu-spot-r5t9w")
    assert [e["reason"] for e in claim_events.data] == ["InsufficientCapacityError"]


def test_no_karpenter_objects_is_no_data(oom: Lab) -> None:
    result = kube.karpenter_status(box=oom.box)
    assert result.status == "no_data"
    assert result.text == "no Karpenter NodePools or NodeClaims"


def test_gpu_allocation_full_nodes_and_a_pending_pod(spot: Lab) -> None:
    result = kube.gpu_allocation(box=spot.box)
    assert result.call.splitlines() == [
        "GET /api/v1/nodes",
        "GET /api/v1/pods?fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed",
    ]
    assert result.call.splitlines()[1] == spot.last_request_line()
    totals = result.data["totals"]
    assert (totals["nodes"], totals["allocatable"], totals["requested"], totals["free"]) == (
        2,
        16,
        16,
        0,
    )
    assert {n["name"]: [p["name"] for p in n["pods"]] for n in result.data["nodes"]} == {
        "ip-10-1-7-58.ap-northeast-2.compute.internal": ["mixtral-8x22b-66d8c9f7b4-9hq2w"],
        "ip-10-1-21-133.ap-northeast-2.compute.internal": ["mixtral-8x22b-66d8c9f7b4-c4x8n"],
    }
    [pending] = result.data["pending"]
    assert (pending["name"], pending["gpus"]) == (SPOT_PENDING, 8)
    assert "2 Insufficient nvidia.com/gpu" in pending["unschedulable"]
    assert result.text.startswith("GPUs: 16 allocatable on 2 nodes, 16 requested, 0 free")


def test_gpu_allocation_counts_only_pods_on_each_node(oom: Lab) -> None:
    [node] = kube.gpu_allocation(box=oom.box).data["nodes"]
    assert (node["allocatable"], node["requested"], node["free"]) == (8, 2, 6)
