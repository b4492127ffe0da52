"""The server itself: lifecycle, kubeconfig, request recording, faults, keep-alive, watch."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from lab.kube.server import Fault, KubeApiServer
from lab.kube.store import ObjectStore

NS = "inference"


def test_lifecycle_and_kubeconfig(tmp_path: Path) -> None:
    server = KubeApiServer(ObjectStore())
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        path = server.write_kubeconfig(tmp_path / "kc", context="ctx", namespace="ops")
        doc = yaml.safe_load(path.read_text())
        assert doc["current-context"] == "ctx"
        assert doc["clusters"][0]["cluster"]["server"] == server.url
        assert doc["contexts"][0]["context"]["namespace"] == "ops"
        assert requests.get(f"{server.url}/healthz", timeout=5).text == "ok"
        kept_alive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        kept_alive.request("GET", "/version")
        assert kept_alive.getresponse().read()
    with pytest.raises((ConnectionError, http.client.HTTPException)):  # closed, not hanging
        kept_alive.request("GET", "/version")
        kept_alive.getresponse()
    kept_alive.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=1)


def test_requests_are_recorded(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    apps.patch_namespaced_deployment(
        "llama-2-7b", NS, {"spec": {"replicas": 3}}, dry_run="All", field_manager="opsbot"
    )
    [call] = server.calls(method="patch", path_contains="/deployments/llama-2-7b")
    assert call.query == {"dryRun": "All", "fieldManager": "opsbot"}
    assert call.body == {"spec": {"replicas": 3}}
    assert call.content_type == "application/strategic-merge-patch+json"
    assert call.status == 200
    server.clear_requests()
    assert server.calls() == []


def test_fault_fails_matching_requests_then_clears(
    apps: client.AppsV1Api, core: client.CoreV1Api, server: KubeApiServer
) -> None:
    server.fault = Fault(status=503, paths=("/deployments",), times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as e:
            apps.read_namespaced_deployment("llama-2-7b", NS)
        assert e.value.status == 503
        assert json.loads(e.value.body)["reason"] == "ServiceUnavailable"
    assert core.read_namespace(NS).metadata.name == NS  # other paths unaffected
    assert apps.read_namespaced_deployment("llama-2-7b", NS).metadata.name == "llama-2-7b"
    assert server.fault is None
    assert [c.status for c in server.calls(path_contains="/deployments")] == [503, 503, 200]


def test_fault_with_retry_after(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    server.fault = Fault(status=429, retry_after=0, times=1)
    answer = requests.get(f"{server.url}/api/v1/nodes", timeout=5)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "0")
    assert answer.json()["details"] == {"retryAfterSeconds": 0}
    # urllib3 under the official client honours Retry-After on a 429/503 and retries
    server.fault = Fault(status=503, retry_after=0, times=1)
    assert apps.read_namespaced_deployment("llama-2-7b", NS).metadata.name == "llama-2-7b"
    assert [c.status for c in server.calls(path_contains="/deployments")] == [503, 200]


def test_fault_delay_only(server: KubeApiServer) -> None:
    server.fault = Fault(status=None, delay=0.3, methods=("GET",))
    started = time.monotonic()
    assert requests.get(f"{server.url}/version", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.Timeout):
        server.fault = Fault(status=None, delay=2.0)
        requests.get(f"{server.url}/version", timeout=0.5)


def test_keep_alive_serves_several_requests_on_one_connection(server: KubeApiServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for path in ("/version", "/api/v1/namespaces/inference/pods", "/nothing"):
            conn.request("GET", path)
            answer = conn.getresponse()
            body = answer.read()
            assert int(answer.headers["Content-Length"]) == len(body)
            assert answer.version == 11
    finally:
        conn.close()


def test_watch_streams_changes(core: client.CoreV1Api, store: ObjectStore) -> None:
    w = watch.Watch()
    seen: list[tuple[str, str]] = []
    for event in w.stream(core.list_node, field_selector="metadata.name=gpu-a", timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "ADDED":  # the watch is registered before its first event
            node = store.get("Node", None, "gpu-a")
            node["spec"]["unschedulable"] = True
            store.replace(node)
        if event["type"] == "MODIFIED":
            assert event["object"].spec.unschedulable is True
            w.stop()
    assert seen == [("ADDED", "gpu-a"), ("MODIFIED", "gpu-a")]


@pytest.mark.kubectl
def test_kubectl_get_watch_prints_table_rows(kubeconfig: Path, store: ObjectStore) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not on PATH: these tests check the fake API against the real kubectl"
        )
    argv = [
        kubectl,
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(kubeconfig.parent / "c"),
        "get",
        "pods",
        "-w",
        "--request-timeout=2s",
    ]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        first = [proc.stdout.readline() for _ in range(4)]  # header and three pods
        assert first[0].split()[:3] == ["NAME", "READY", "STATUS"]
        pod = store.get("Pod", NS, "llama-2-7b-6f7c9-x2k4p")
        pod["status"]["phase"] = "Failed"
        store.replace(pod)  # made before or after the watch starts: replayed either way
        rest = proc.stdout.read()
    assert rest.split()[:3] == ["llama-2-7b-6f7c9-x2k4p", "1/1", "Failed"]


def test_watch_from_a_resource_version_replays_newer_objects(
    server: KubeApiServer, store: ObjectStore
) -> None:
    version = store.resource_version
    node = store.get("Node", None, "gpu-b")
    node["spec"]["unschedulable"] = False
    store.replace(node)
    answer = requests.get(
        f"{server.url}/api/v1/nodes",
        params={"watch": "true", "resourceVersion": version, "timeoutSeconds": "1"},
        timeout=5,
    )
    events = [json.loads(line) for line in answer.text.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("MODIFIED", "gpu-b")]


def test_unexpected_methods_are_405(server: KubeApiServer) -> None:
    assert requests.post(f"{server.url}/version", timeout=5).status_code == 405
    answer = requests.delete(f"{server.url}/api/v1/namespaces/{NS}/pods", timeout=5)
    assert answer.status_code == 405
    assert answer.json()["reason"] == "MethodNotAllowed"
