"""Discovery, version and health endpoints, and kubectl's view of them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
import requests

from lab.kube.server import KubeApiServer

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


def test_version_and_health(server: KubeApiServer) -> None:
    version = requests.get(f"{server.url}/version", timeout=5).json()
    assert (version["major"], version["minor"]) == ("1", "32")
    for path in ("/healthz", "/readyz", "/livez"):
        answer = requests.get(f"{server.url}{path}", timeout=5)
        assert (answer.status_code, answer.text) == (200, "ok")


def test_aggregated_discovery_request_gets_legacy_json(server: KubeApiServer) -> None:
    """kubectl 1.32 asks for aggregated discovery; a plain JSON answer makes it fall back."""
    answer = requests.get(f"{server.url}/api", headers={"Accept": AGGREGATED_ACCEPT}, timeout=5)
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["kind"] == "APIVersions"
    assert answer.json()["versions"] == ["v1"]
    groups = requests.get(f"{server.url}/apis", headers={"Accept": AGGREGATED_ACCEPT}, timeout=5)
    names = {g["name"] for g in groups.json()["groups"]}
    assert names == {"apps", "coordination.k8s.io", "karpenter.sh"}


def test_group_version_resources(server: KubeApiServer) -> None:
    doc = requests.get(f"{server.url}/apis/apps/v1", timeout=5).json()
    by_name = {r["name"]: r for r in doc["resources"]}
    assert doc["groupVersion"] == "apps/v1"
    assert by_name["deployments"]["shortNames"] == ["deploy"]
    assert by_name["deployments/scale"]["kind"] == "Scale"
    assert by_name["deployments/scale"]["group"] == "autoscaling"
    assert "patch" in by_name["deployments/status"]["verbs"]
    core = requests.get(f"{server.url}/api/v1", timeout=5).json()
    assert {"pods/log", "pods/status", "nodes", "events"} <= {r["name"] for r in core["resources"]}
    karpenter = requests.get(f"{server.url}/apis/karpenter.sh/v1", timeout=5).json()
    nodepools = next(r for r in karpenter["resources"] if r["name"] == "nodepools")
    assert nodepools["namespaced"] is False


def test_unknown_paths_are_404_status(server: KubeApiServer) -> None:
    for path in ("/apis/batch/v1", "/api/v1/widgets", "/openapi/v2", "/nothing"):
        answer = requests.get(f"{server.url}{path}", timeout=5)
        assert answer.status_code == 404, path
        assert answer.json()["kind"] == "Status"
        assert answer.json()["reason"] == "NotFound"


def test_openapi_v3_declares_field_validation(server: KubeApiServer) -> None:
    root = requests.get(f"{server.url}/openapi/v3", timeout=5).json()
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = requests.get(f"{server.url}{url}", timeout=5).json()
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in {p["name"] for p in op["parameters"]}


@pytest.mark.kubectl
def test_kubectl_api_resources(kubectl: Kubectl, server: KubeApiServer) -> None:
    out = kubectl("api-resources").stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert lines["nodepools"] == ["nodepools", "karpenter.sh/v1", "false", "NodePool"]
    assert "leases" in lines
    assert server.calls("GET", "/apis")


@pytest.mark.kubectl
def test_kubectl_version_sees_the_server(kubectl: Kubectl) -> None:
    assert "Server Version: v1.32" in kubectl("version").stdout
