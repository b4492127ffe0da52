"""The real kubectl against the fake server: tables, describe, create, apply, patch, delete."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

import pytest

from lab.kube.server import KubeApiServer
from lab.kube.store import ObjectStore

pytestmark = pytest.mark.kubectl
NS = "inference"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def rows(text: str) -> list[list[str]]:
    """kubectl's table as cells (columns are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_get_nodes_status_column(kubectl: Kubectl) -> None:
    table = rows(kubectl("get", "nodes").stdout)
    assert table[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    status = {r[0]: r[1] for r in table[1:]}
    assert status == {
        "cpu-a": "Ready",
        "gpu-a": "Ready",
        "gpu-b": "Ready,SchedulingDisabled",
        "gpu-c": "NotReady",
    }
    assert table[1][2:] == ["<none>", "3d", "v1.32.3-eks-473151a"]


def test_get_pods_shows_waiting_reason_and_restarts(
    kubectl: Kubectl, server: KubeApiServer
) -> None:
    table = rows(kubectl("get", "pods", "-o", "wide").stdout)
    assert table[0][:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    crash = next(r for r in table if r[0] == "llama-2-7b-6f7c9-q8m2z")
    assert crash[1:3] == ["0/1", "CrashLoopBackOff"]
    assert re.fullmatch(r"7 \(4m\d*s? ago\)", crash[3])
    assert crash[5:7] == ["10.0.1.23", "gpu-a"]
    pending = next(r for r in table if r[0] == "llama-2-7b-6f7c9-pnd4x")
    assert pending[1:4] == ["0/1", "Pending", "0"]
    asked = server.calls("GET", "/api/v1/namespaces/inference/pods")[-1]
    assert "as=Table" in asked.accept


def test_get_workloads_events_and_volumes(kubectl: Kubectl) -> None:
    deploy = rows(kubectl("get", "deployments").stdout)
    assert deploy == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["llama-2-7b", "1/2", "2", "1", "2d"],
    ]
    rs = rows(kubectl("get", "rs").stdout)
    assert rs[1] == ["llama-2-7b-6f7c9", "2", "2", "1", "2d"]
    events = rows(kubectl("get", "events", "--field-selector", "type=Warning").stdout)
    assert events[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [
        "Warning",
        "BackOff",
        "pod/llama-2-7b-6f7c9-q8m2z",
        "Back-off restarting failed container vllm",
    ] in [e[1:] for e in events]
    pvc = rows(kubectl("get", "pvc").stdout)
    assert pvc[0][:6] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS"]
    assert pvc[1][:6] == ["model-cache-pvc", "Bound", "pvc-model-cache-pvc", "200Gi", "RWO", "gp3"]
    assert rows(kubectl("get", "pv").stdout)[1][5] == "inference/model-cache-pvc"


def test_get_karpenter_objects(kubectl: Kubectl) -> None:
    pools = rows(kubectl("get", "nodepools").stdout)
    assert pools == [
        ["NAME", "NODECLASS", "NODES", "READY", "AGE"],
        ["gpu", "default", "2", "True", "10d"],
    ]
    claims = rows(kubectl("get", "nodeclaims").stdout)
    assert claims[0] == ["NAME", "TYPE", "CAPACITY", "ZONE", "NODE", "READY", "AGE"]
    assert claims[1][:4] == ["gpu-x7k2q", "p4d.24xlarge", "spot", "ap-northeast-2a"]


def test_all_namespaces_and_output_formats(kubectl: Kubectl) -> None:
    table = rows(kubectl("get", "pods", "-A").stdout)
    assert table[0][:2] == ["NAMESPACE", "NAME"]
    assert {r[0] for r in table[1:]} == {NS}
    names = kubectl(
        "get",
        "pods",
        "-l",
        "app=inference",
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    ).stdout.split()
    assert names == ["pod/llama-2-7b-6f7c9-q8m2z", "pod/llama-2-7b-6f7c9-x2k4p"]
    doc = json.loads(kubectl("get", "deployment", "llama-2-7b", "-o", "json").stdout)
    assert doc["spec"]["replicas"] == 2
    assert rows(kubectl("get", "pods", "-n", "nowhere").stderr) == [
        ["No resources found in nowhere namespace."]
    ]


def test_describe(kubectl: Kubectl) -> None:
    pod = kubectl("describe", "pod", "llama-2-7b-6f7c9-q8m2z").stdout
    assert "CrashLoopBackOff" in pod
    assert "OOMKilled" in pod
    assert "Back-off restarting failed container vllm" in pod  # events found by uid
    deploy = kubectl("describe", "deployment", "llama-2-7b").stdout
    assert "ScalingReplicaSet" in deploy
    node = kubectl("describe", "node", "gpu-a").stdout
    assert "llama-2-7b-6f7c9-x2k4p" in node  # pods listed by field selector spec.nodeName


def test_create_apply_patch_delete(kubectl: Kubectl, store: ObjectStore) -> None:
    manifest = json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "gateway", "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "gateway"}},
                "template": {
                    "metadata": {"labels": {"app": "gateway"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "gw",
                                "image": "gateway:1.14.2",
                                "env": [{"name": "A", "value": "1"}],
                            }
                        ]
                    },
                },
            },
        }
    )
    assert "created" in kubectl("create", "-f", "-", stdin=manifest).stdout
    assert "configured" in kubectl("apply", "-f", "-", stdin=manifest).stdout
    strategic = '{"spec":{"template":{"spec":{"containers":[{"name":"gw","env":[{"name":"B","value":"2"}]}]}}}}'
    kubectl("patch", "deployment", "gateway", "-p", strategic)
    env = store.get("Deployment", NS, "gateway")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    failed = kubectl(
        "patch",
        "deployment",
        "gateway",
        "--type=json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":9}]',
        check=False,
    )
    assert failed.returncode != 0
    assert "testing value /spec/replicas failed" in failed.stderr
    kubectl(
        "patch",
        "deployment",
        "gateway",
        "--type=merge",
        "-p",
        '{"spec":{"replicas":3}}',
        "--dry-run=server",
    )
    assert store.get("Deployment", NS, "gateway")["spec"]["replicas"] == 1
    kubectl("cordon", "gpu-a")
    assert store.get("Node", None, "gpu-a")["spec"]["unschedulable"] is True
    assert "deleted" in kubectl("delete", "deployment", "gateway").stdout
    assert [d["metadata"]["name"] for d in store.list("Deployment", NS)] == ["llama-2-7b"]
