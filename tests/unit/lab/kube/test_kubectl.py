"""A FakeCluster built from a scenario, read and changed by the real kubectl and the official
Python client: what the bot's tools and an SRE at a terminal would see."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from lab.kube import workloads
from lab.kube.cluster import FakeCluster
from lab.scenario import loader

Obj = dict[str, Any]
WaitFor = Callable[..., Any]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]
NS = "inference"
READY_POD = "llama-2-7b-6f7c9-x2k4p"
CRASH_POD = "llama-2-7b-6f7c9-q8m2z"
PENDING_POD = "llama-2-7b-6f7c9-pnd4x"
EXAMPLE = Path(__file__).resolve().parents[4] / "scenarios" / "cache-pvc-pending.yaml"
SCENARIO = """
name: kubectl-test
after_fix: {rollout: %s}
cluster:
  nodes:
    - {name: gpu-a, instance_type: p4d.24xlarge, nodepool: gpu}
    - {name: gpu-b, instance_type: p4d.24xlarge, ready: false}
    - {name: gpu-c, instance_type: g5.xlarge, unschedulable: true}
  workloads:
    - name: llama-2-7b
      replicas: 3
      labels: {app: inference, model: llama-2-7b}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--model", "meta-llama/Llama-2-7b-hf", "--gpu-memory-utilization", "0.95"]
          resources: {limits: {nvidia.com/gpu: 1}}
        - {name: proxy, image: "envoyproxy/envoy:v1.31.0"}
      pods:
        - {name: llama-2-7b-6f7c9-x2k4p, node: gpu-a,
           logs: "INFO serving\\nINFO ready\\nINFO request done\\n"}
        - name: llama-2-7b-6f7c9-q8m2z
          node: gpu-a
          ready: false
          restarts: 7
          waiting_reason: CrashLoopBackOff
          last_terminated: {reason: OOMKilled, exit_code: 137, finished_at: -4m}
          logs: "INFO loading weights\\n"
          previous_logs: "INFO loading weights\\ntorch.OutOfMemoryError: CUDA out of memory.\\n"
        - {name: llama-2-7b-6f7c9-pnd4x, phase: Pending, ready: false}
    - name: mistral-7b
      replicas: 2
      labels: {app: inference, model: mistral-7b}
      containers:
        - {name: vllm, image: "vllm/vllm-openai:v0.11.0", args: ["--gpu-memory-utilization", "0.9"]}
  events:
    - {involved: pod/inference/llama-2-7b-6f7c9-q8m2z, type: Warning, reason: BackOff,
       message: Back-off restarting failed container vllm, count: 12}
    - {involved: pod/inference/llama-2-7b-6f7c9-pnd4x, type: Warning, reason: FailedScheduling,
       message: "0/3 nodes are available: 1 node(s) were unschedulable.", count: 5}
    - {involved: node/gpu-b, type: Warning, reason: NodeNotReady, message: Node is not ready}
"""
GPU_UTIL_TO_085 = [
    {"op": "test", "path": "/spec/template/spec/containers/0/args/1", "value": "0.9"},
    {"op": "replace", "path": "/spec/template/spec/containers/0/args/1", "value": "0.85"},
]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., tuple[FakeCluster, Path]]]:
    """Starts a FakeCluster from scenario text (or a file); stopped at teardown."""
    started: list[FakeCluster] = []

    def run(text: str | None = None, *, path: Path | None = None) -> tuple[FakeCluster, Path]:
        scenario = loader.load_file(path) if path else loader.load_text(text or "")
        cluster = FakeCluster.from_scenario(scenario, step_seconds=0.05).start()
        started.append(cluster)
        return cluster, cluster.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}")

    yield run
    for cluster in started:
        cluster.stop()
        assert cluster.controller.errors == []


@pytest.fixture
def lab(start: Callable[..., tuple[FakeCluster, Path]]) -> tuple[FakeCluster, Path]:
    return start(SCENARIO % "succeeds")


def kubectl_for(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail(
            "kubectl is not on PATH: these tests check the fake API against the real kubectl"
        )

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [binary, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache")]
        done = subprocess.run(
            [*argv, "--request-timeout", "20s", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done

    return run


@pytest.fixture
def kubectl(lab: tuple[FakeCluster, Path], tmp_path: Path) -> Kubectl:
    return kubectl_for(lab[1], tmp_path)


@pytest.fixture
def api(lab: tuple[FakeCluster, Path]) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(lab[1]))
    yield api_client
    api_client.close()


def rows(output: str) -> dict[str, list[str]]:
    """kubectl's table, without headers, as name -> the other columns."""
    table = {}
    for line in output.strip().splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        table[cells[0]] = cells[1:]
    return table


# -- kubectl -----------------------------------------------------------------------------------
@pytest.mark.kubectl
def test_get_nodes_shows_ready_not_ready_and_cordoned(kubectl: Kubectl) -> None:
    table = rows(kubectl("get", "nodes", "--no-headers").stdout)
    assert {name: cells[0] for name, cells in table.items()} == {
        "gpu-a": "Ready",
        "gpu-b": "NotReady",
        "gpu-c": "Ready,SchedulingDisabled",
    }
    assert all(cells[3] == "v1.32.3-eks-473151a" for cells in table.values())


@pytest.mark.kubectl
def test_get_pods_shows_ready_status_and_restarts(kubectl: Kubectl) -> None:
    table = rows(kubectl("get", "pods", "-n", NS, "--no-headers").stdout)
    assert table[READY_POD][:3] == ["2/2", "Running", "0"]
    assert table[CRASH_POD][:2] == ["1/2", "CrashLoopBackOff"]
    assert re.fullmatch(r"7 \(4m(\d+s)? ago\)", table[CRASH_POD][2])  # the last crash, 4m ago
    assert table[PENDING_POD][:3] == ["0/2", "Pending", "0"]
    mistral = [cells for name, cells in table.items() if name.startswith("mistral-7b-")]
    assert [cells[:3] for cells in mistral] == [["1/1", "Running", "0"]] * 2


@pytest.mark.kubectl
def test_describe_pod_shows_its_state_and_events(kubectl: Kubectl) -> None:
    crash = kubectl("describe", "pod", CRASH_POD, "-n", NS).stdout
    assert re.search(r"State:\s+Waiting\s+Reason:\s+CrashLoopBackOff", crash)
    assert re.search(r"Last State:\s+Terminated\s+Reason:\s+OOMKilled\s+Exit Code:\s+137", crash)
    assert re.search(r"Restart Count:\s+7", crash)
    assert re.search(
        r"Warning\s+BackOff\s+.*\(x12 over 12m\)\s+kubelet\s+Back-off restarting", crash
    )
    assert "Controlled By:  ReplicaSet/llama-2-7b-6f7c9" in crash
    pending = kubectl("describe", "pod", PENDING_POD, "-n", NS).stdout
    assert re.search(r"FailedScheduling.*default-scheduler\s+0/3 nodes are available", pending)
    node = kubectl("describe", "node", "gpu-b").stdout
    assert re.search(r"Ready\s+Unknown.*NodeStatusUnknown\s+Kubelet stopped posting", node)
    assert re.search(r"NodeNotReady\s+.*node-controller\s+Node is not ready", node)


@pytest.mark.kubectl
def test_logs_current_previous_tail_and_container(kubectl: Kubectl) -> None:
    assert kubectl("logs", CRASH_POD, "-n", NS).stdout == "INFO loading weights\n"
    previous = kubectl("logs", CRASH_POD, "-n", NS, "--previous").stdout
    assert previous.endswith("torch.OutOfMemoryError: CUDA out of memory.\n")
    assert kubectl("logs", READY_POD, "-n", NS, "--tail=1").stdout == "INFO request done\n"
    assert kubectl("logs", READY_POD, "-n", NS, "-c", "proxy").stdout == ""
    missing = kubectl("logs", READY_POD, "-n", NS, "--previous", check=False)
    assert missing.returncode != 0


@pytest.mark.kubectl
def test_patch_with_server_dry_run_leaves_the_deployment_unchanged(
    lab: tuple[FakeCluster, Path], kubectl: Kubectl
) -> None:
    store = lab[0].store
    before = store.get("Deployment", NS, "mistral-7b")
    version = store.resource_version
    done = kubectl(
        "patch",
        "deployment",
        "mistral-7b",
        "-n",
        NS,
        "--type=json",
        "-p",
        json.dumps(GPU_UTIL_TO_085),
        "--dry-run=server",
        "-o",
        "json",
    )
    previewed = json.loads(done.stdout)
    assert previewed["spec"]["template"]["spec"]["containers"][0]["args"][1] == "0.85"
    assert previewed["metadata"]["generation"] == 2
    assert store.resource_version == version
    assert store.get("Deployment", NS, "mistral-7b") == before
    assert (
        len([rs for rs in store.list("ReplicaSet", NS) if "mistral" in rs["metadata"]["name"]]) == 1
    )


@pytest.mark.kubectl
def test_scale_deployment_changes_its_pods(kubectl: Kubectl, wait_for: WaitFor) -> None:
    def pods() -> list[list[str]]:
        out = kubectl("get", "pods", "-n", NS, "-l", "model=mistral-7b", "--no-headers").stdout
        return [cells[:2] for cells in rows(out).values()]

    kubectl("scale", "deployment", "mistral-7b", "-n", NS, "--replicas=3")
    wait_for(lambda: pods() == [["1/1", "Running"]] * 3, timeout=15)
    kubectl("scale", "deployment", "mistral-7b", "-n", NS, "--replicas=1")
    wait_for(lambda: pods() == [["1/1", "Running"]], timeout=15)
    ready = kubectl("get", "deployment", "mistral-7b", "-n", NS, "--no-headers").stdout
    assert rows(ready)["mistral-7b"][0] == "1/1"


@pytest.mark.kubectl
def test_example_scenario_through_kubectl(
    start: Callable[..., tuple[FakeCluster, Path]], tmp_path: Path
) -> None:
    _, kubeconfig = start(path=EXAMPLE)
    kubectl = kubectl_for(kubeconfig, tmp_path)
    pods = rows(kubectl("get", "pods", "-n", NS, "--no-headers").stdout)
    assert pods["mixtral-8x7b-7c9d-p4k2z"][:2] == ["0/1", "Pending"]
    described = kubectl("describe", "pod", "mixtral-8x7b-7c9d-p4k2z", "-n", NS).stdout
    assert "pod has unbound immediate PersistentVolumeClaims" in described
    claims = rows(kubectl("get", "pvc", "-n", NS, "--no-headers").stdout)
    assert claims["mixtral-cache"][0] == "Pending"
    events = kubectl("get", "events", "-n", NS, "--field-selector", "reason=ProvisioningFailed")
    assert 'storageclass.storage.k8s.io "gp3-encrypted" not found' in events.stdout


# -- the Python client -------------------------------------------------------------------------
def test_client_reads_nodes_and_pods_with_strict_models(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(nodes) == {"gpu-a", "gpu-b", "gpu-c"}
    ready = {
        name: next(c.status for c in n.status.conditions if c.type == "Ready")
        for name, n in nodes.items()
    }
    assert ready == {"gpu-a": "True", "gpu-b": "Unknown", "gpu-c": "True"}
    assert nodes["gpu-c"].spec.unschedulable is True
    assert nodes["gpu-a"].status.allocatable["nvidia.com/gpu"] == "8"
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(NS).items}
    crash = pods[CRASH_POD].status.container_statuses[0]
    assert (crash.restart_count, crash.state.waiting.reason) == (7, "CrashLoopBackOff")
    assert crash.last_state.terminated.reason == "OOMKilled"
    assert pods[PENDING_POD].status.phase == "Pending"
    assert pods[READY_POD].spec.containers[0].resources.limits == {"nvidia.com/gpu": "1"}


def test_client_finds_an_objects_events_by_field_selector(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    uid = core.read_namespaced_pod(CRASH_POD, NS).metadata.uid
    selector = ",".join(
        [
            f"involvedObject.name={CRASH_POD}",
            f"involvedObject.namespace={NS}",
            f"involvedObject.uid={uid}",
        ]
    )
    events = core.list_namespaced_event(NS, field_selector=selector).items
    assert [(e.reason, e.count, e.source.component) for e in events] == [("BackOff", 12, "kubelet")]
    node_events = core.list_event_for_all_namespaces(
        field_selector="involvedObject.kind=Node,involvedObject.name=gpu-b"
    ).items
    assert [(e.metadata.namespace, e.reason) for e in node_events] == [("default", "NodeNotReady")]


def rollout_done(apps: client.AppsV1Api, name: str) -> bool:
    dep = apps.read_namespaced_deployment(name, NS)
    status, replicas = dep.status, dep.spec.replicas
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    return bool(
        status.observed_generation == dep.metadata.generation
        and status.updated_replicas == status.ready_replicas == replicas
        and status.available_replicas == status.replicas == replicas
        and progressing.reason == "NewReplicaSetAvailable"
    )


def test_client_patch_rolls_out_and_completes(api: client.ApiClient, wait_for: WaitFor) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    patched = apps.patch_namespaced_deployment("mistral-7b", NS, GPU_UTIL_TO_085)
    assert patched.metadata.generation == 2
    wait_for(lambda: rollout_done(apps, "mistral-7b"), timeout=15)
    pods = core.list_namespaced_pod(NS, label_selector="model=mistral-7b").items
    assert len(pods) == 2
    assert {p.spec.containers[0].args[1] for p in pods} == {"0.85"}
    sets = apps.list_namespaced_replica_set(NS, label_selector="model=mistral-7b").items
    by_revision = sorted(sets, key=lambda rs: int(rs.metadata.annotations[workloads.REVISION]))
    assert [rs.spec.replicas for rs in by_revision] == [0, 2]


def test_client_patch_that_fails_crashloops_the_new_pods(
    start: Callable[..., tuple[FakeCluster, Path]], wait_for: WaitFor
) -> None:
    _, kubeconfig = start(SCENARIO % "fails")
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
        apps.patch_namespaced_deployment("mistral-7b", NS, GPU_UTIL_TO_085)

        def split() -> tuple[list[Any], list[Any]]:
            pods = core.list_namespaced_pod(NS, label_selector="model=mistral-7b").items
            new = [p for p in pods if p.spec.containers[0].args[1] == "0.85"]
            return new, [p for p in pods if p not in new]

        def crashing() -> bool:
            new, _ = split()
            statuses = [p.status.container_statuses for p in new]
            return bool(new) and all(
                s and s[0].state.waiting and s[0].state.waiting.reason == "CrashLoopBackOff"
                for s in statuses
            )

        wait_for(crashing, timeout=15)
        new, old = split()
        assert new[0].status.container_statuses[0].restart_count >= 1
        assert len(old) == 2
        assert all(p.status.container_statuses[0].ready for p in old)
        status = apps.read_namespaced_deployment("mistral-7b", NS).status
        assert status.ready_replicas == 2 and status.unavailable_replicas == 1
        progressing = next(c for c in status.conditions if c.type == "Progressing")
        assert progressing.reason == "ReplicaSetUpdated"
    finally:
        api_client.close()
