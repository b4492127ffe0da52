"""Fixtures for the fake API server tests: a store filled with a small GPU inference cluster,
the server on it, a kubeconfig, the official Python client, and a kubectl runner.

Nodes, the workload and its pods are built here (they vary by state); the fixed objects are
in static_objects.yaml beside this file.

The objects are complete enough for the client's strict models (client_side_validation is on),
so a test that deserializes them also checks the server answers what a real one would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from lab.kube.server import KubeApiServer
from lab.kube.store import LogKey, ObjectStore

Obj = dict[str, Any]
NS = "inference"
LABELS = {"app": "inference", "model": "llama-2-7b"}
CRASH_POD = "llama-2-7b-6f7c9-q8m2z"
READY_POD = "llama-2-7b-6f7c9-x2k4p"
PENDING_POD = "llama-2-7b-6f7c9-pnd4x"


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, *, ready: bool = True, unschedulable: bool = False, gpu: bool = True) -> Obj:
    labels = {
        "kubernetes.io/hostname": name,
        "node.kubernetes.io/instance-type": "p4d.24xlarge" if gpu else "m5.2xlarge",
        "topology.kubernetes.io/zone": "ap-northeast-2a",
        "karpenter.sh/capacity-type": "on-demand",
    }
    if gpu:
        labels |= {"nvidia.com/gpu.present": "true", "karpenter.sh/nodepool": "gpu"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "creationTimestamp": ago(days=3)},
        "spec": {"unschedulable": unschedulable, "providerID": f"aws:///ap-northeast-2a/i-{name}"},
        "status": {
            "capacity": {"cpu": "96", "memory": "1152Gi", "nvidia.com/gpu": "8" if gpu else "0"},
            "allocatable": {"cpu": "95", "memory": "1100Gi", "nvidia.com/gpu": "8" if gpu else "0"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": ago(seconds=20),
                    "lastTransitionTime": ago(days=3),
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "10.0.1.10"}],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "b",
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.1.134",
                "kubeProxyVersion": "v1.32.3-eks",
                "kubeletVersion": "v1.32.3-eks-473151a",
                "machineID": "m",
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023",
                "systemUUID": "u",
            },
        },
    }


def container() -> Obj:
    return {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.11.0",
        "args": ["--model", "meta-llama/Llama-2-7b-hf", "--gpu-memory-utilization", "0.95"],
        "env": [{"name": "MAX_NUM_SEQS", "value": "256"}, {"name": "HF_HOME", "value": "/cache"}],
        "ports": [{"containerPort": 8000, "name": "http", "protocol": "TCP"}],
        "resources": {"limits": {"nvidia.com/gpu": "1", "memory": "32Gi"}},
    }


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "llama-2-7b",
            "namespace": NS,
            "labels": dict(LABELS),
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "creationTimestamp": ago(days=2),
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {"containers": [container()]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "unavailableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
            ],
        },
    }


def replicaset(owner_uid: str) -> Obj:
    labels = LABELS | {"pod-template-hash": "6f7c9"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "llama-2-7b-6f7c9",
            "namespace": NS,
            "labels": labels,
            "creationTimestamp": ago(days=2),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "llama-2-7b",
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container()]}},
        },
        "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1},
    }


def pod(name: str, *, node_name: str | None, state: str) -> Obj:
    """A pod of the deployment; ``state`` is ready, crashing or pending."""
    status: Obj = {"phase": "Pending" if state == "pending" else "Running"}
    if state == "pending":
        status["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
        ]
    else:
        ready = state == "ready"
        cs: Obj = {
            "name": "vllm",
            "image": "vllm/vllm-openai:v0.11.0",
            "imageID": "docker.io/vllm/vllm-openai@sha256:abc",
            "ready": ready,
            "started": ready,
            "restartCount": 0 if ready else 7,
            "containerID": "containerd://0123",
        }
        if ready:
            cs["state"] = {"running": {"startedAt": ago(days=1)}}
        else:
            cs["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 5m0s restarting failed container",
                }
            }
            cs["lastState"] = {
                "terminated": {
                    "exitCode": 137,
                    "reason": "OOMKilled",
                    "startedAt": ago(minutes=6),
                    "finishedAt": ago(minutes=4),
                }
            }
        status |= {
            "podIP": "10.0.1.23",
            "podIPs": [{"ip": "10.0.1.23"}],
            "hostIP": "10.0.1.10",
            "containerStatuses": [cs],
            "startTime": ago(days=1),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
    spec: Obj = {"containers": [container()]}
    if node_name:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": ago(days=1),
            "labels": LABELS | {"pod-template-hash": "6f7c9"},
        },
        "spec": spec,
        "status": status,
    }


def event(
    store: ObjectStore,
    name: str,
    kind: str,
    obj_name: str,
    *,
    reason: str,
    message: str,
    **extra: Any,
) -> Obj:
    """An event about a stored object, pointing at it by uid as the kubelet's do."""
    involved = store.get(kind, NS, obj_name)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": ago(minutes=30)},
        "involvedObject": {
            "kind": kind,
            "name": obj_name,
            "namespace": NS,
            "apiVersion": involved["apiVersion"],
            "uid": involved["metadata"]["uid"],
        },
        "reason": reason,
        "message": message,
        "type": extra.get("type", "Normal"),
        "count": extra.get("count", 1),
        "firstTimestamp": ago(minutes=30),
        "lastTimestamp": ago(minutes=1),
        "source": {"component": "kubelet", "host": "gpu-a"},
    }


def pvc(name: str, *, bound: bool) -> Obj:
    spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "gp3",
        "resources": {"requests": {"storage": "200Gi"}},
    }
    status: Obj = {"phase": "Pending"}
    if bound:
        spec["volumeName"] = f"pvc-{name}"
        status = {
            "phase": "Bound",
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "200Gi"},
        }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": ago(hours=5)},
        "spec": spec,
        "status": status,
    }


_RELATIVE = re.compile(r"^-(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _with_times(value: Any) -> Any:
    """Turns "-10d" style strings of the YAML fixture into timestamps that long ago."""
    if isinstance(value, dict):
        return {k: _with_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_times(v) for v in value]
    if isinstance(value, str) and (m := _RELATIVE.match(value)):
        return ago(**{_UNITS[m[2]]: int(m[1])})
    return value


def static_objects() -> list[Obj]:
    objects: list[Obj] = yaml.safe_load((Path(__file__).parent / "static_objects.yaml").read_text())
    return [_with_times(o) for o in objects]


def fill(store: ObjectStore) -> None:
    for obj in static_objects():
        store.create(obj)
    store.create(node("gpu-a"))
    store.create(node("gpu-b", unschedulable=True))
    store.create(node("gpu-c", ready=False))
    store.create(node("cpu-a", gpu=False))
    created = store.create(deployment())
    store.create(replicaset(created["metadata"]["uid"]))
    store.create(pod(READY_POD, node_name="gpu-a", state="ready"))
    store.create(pod(CRASH_POD, node_name="gpu-a", state="crashing"))
    store.create(pod(PENDING_POD, node_name=None, state="pending"))
    store.create(
        event(
            store,
            "crash.1",
            "Pod",
            CRASH_POD,
            reason="BackOff",
            message="Back-off restarting failed container vllm",
            type="Warning",
            count=12,
        )
    )
    store.create(
        event(
            store,
            "pending.1",
            "Pod",
            PENDING_POD,
            reason="FailedScheduling",
            message="0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
            type="Warning",
        )
    )
    store.create(
        event(
            store,
            "deploy.1",
            "Deployment",
            "llama-2-7b",
            reason="ScalingReplicaSet",
            message="Scaled up replica set llama-2-7b-6f7c9 to 2",
        )
    )
    store.create(pvc("model-cache-pvc", bound=True))
    store.create(pvc("scratch-pvc", bound=False))
    store.set_logs(LogKey(NS, READY_POD, "vllm"), "INFO starting\nINFO loaded\nINFO serving\n")
    store.set_logs(LogKey(NS, CRASH_POD, "vllm"), "INFO starting\nINFO loading weights\n")
    store.set_logs(
        LogKey(NS, CRASH_POD, "vllm", previous=True),
        "INFO loading weights\ntorch.OutOfMemoryError: CUDA out of memory.\n",
    )


@pytest.fixture
def store() -> ObjectStore:
    s = ObjectStore()
    fill(s)
    return s


@pytest.fixture
def server(store: ObjectStore) -> Iterator[KubeApiServer]:
    with KubeApiServer(store) as srv:
        yield srv


@pytest.fixture
def kubeconfig(server: KubeApiServer, tmp_path: Path) -> Path:
    return server.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    yield api
    api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the real kubectl against the server; ``check=False`` to inspect a failure."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail(
            "kubectl is not on PATH: these tests check the fake API against the real kubectl"
        )

    def run(*args: str, check: bool = True, stdin: str | None = None) -> Any:
        argv = [
            binary,
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--request-timeout",
            "20s",
            *args,
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, input=stdin, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done

    return run
