"""Pod logs: container, previous, tailLines, and the errors Kubernetes gives."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kube.store import LogKey, ObjectStore

NS = "inference"
CRASH_POD = "llama-2-7b-6f7c9-q8m2z"
READY_POD = "llama-2-7b-6f7c9-x2k4p"
PENDING_POD = "llama-2-7b-6f7c9-pnd4x"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def test_current_and_previous_logs(core: client.CoreV1Api) -> None:
    assert core.read_namespaced_pod_log(CRASH_POD, NS) == "INFO starting\nINFO loading weights\n"
    previous = core.read_namespaced_pod_log(CRASH_POD, NS, container="vllm", previous=True)
    assert "CUDA out of memory" in previous


def test_tail_lines(core: client.CoreV1Api) -> None:
    assert core.read_namespaced_pod_log(READY_POD, NS, tail_lines=1) == "INFO serving\n"
    assert core.read_namespaced_pod_log(READY_POD, NS, tail_lines=0) == ""
    assert core.read_namespaced_pod_log(READY_POD, NS, tail_lines=50).count("\n") == 3


def test_timestamps_and_since_seconds_are_accepted(core: client.CoreV1Api) -> None:
    text = core.read_namespaced_pod_log(READY_POD, NS, timestamps=True, since_seconds=600)
    first = text.splitlines()[0]
    assert first.endswith(" INFO starting")
    assert first.split(" ")[0].endswith("Z")


def test_missing_previous_container_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(READY_POD, NS, previous=True)
    assert e.value.status == 400
    assert json.loads(e.value.body)["message"] == (
        f'previous terminated container "vllm" in pod "{READY_POD}" not found'
    )


def test_unknown_container_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(READY_POD, NS, container="sidecar")
    assert e.value.status == 400
    assert (
        json.loads(e.value.body)["message"] == f"container sidecar is not valid for pod {READY_POD}"
    )


def test_several_containers_need_a_name(core: client.CoreV1Api, store: ObjectStore) -> None:
    pod = store.get("Pod", NS, READY_POD)
    pod["spec"]["containers"].append({"name": "proxy", "image": "envoyproxy/envoy:v1.31"})
    store.replace(pod)
    store.set_logs(LogKey(NS, READY_POD, "proxy"), "listening\n")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(READY_POD, NS)
    assert e.value.status == 400
    assert "a container name must be specified for pod" in e.value.body
    assert "[vllm proxy]" in e.value.body
    assert core.read_namespaced_pod_log(READY_POD, NS, container="proxy") == "listening\n"


def test_unscheduled_pod_has_empty_logs_and_missing_pod_is_404(core: client.CoreV1Api) -> None:
    assert core.read_namespaced_pod_log(PENDING_POD, NS) == ""
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("ghost", NS)
    assert e.value.status == 404


def test_container_waiting_to_start(core: client.CoreV1Api, store: ObjectStore) -> None:
    pod = store.get("Pod", NS, PENDING_POD)
    pod["spec"]["nodeName"] = "gpu-a"
    pod["status"]["containerStatuses"] = [
        {
            "name": "vllm",
            "image": "vllm/vllm-openai:v0.11.0",
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }
    ]
    store.replace(pod)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(PENDING_POD, NS)
    assert e.value.status == 400
    assert "is waiting to start: ContainerCreating" in e.value.body


@pytest.mark.kubectl
def test_kubectl_logs(kubectl: Kubectl) -> None:
    assert kubectl("logs", CRASH_POD, "--tail=1").stdout == "INFO loading weights\n"
    assert "CUDA out of memory" in kubectl("logs", CRASH_POD, "--previous").stdout
    failed = kubectl("logs", READY_POD, "--previous", check=False)
    assert failed.returncode != 0
    assert "previous terminated container" in failed.stderr
