"""Whole objects for the fix catalog, read through the real client from the lab's API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.scenario import loader
from tests.unit.tools.test_kube import Lab, start
from tools import kube_objects

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scenario = loader.load_file(ROOT / "scenarios" / "karpenter-spot-only-p5.yaml")
    yield from start(scenario, tmp_path_factory.mktemp("objects"))


def test_a_deployment_comes_whole_with_kind_and_api_version(lab: Lab) -> None:
    result = kube_objects.get_object(box=lab.box, kind="deployment", name="mixtral-8x22b")
    assert result.status == "ok", result.text
    obj = result.data
    assert (obj["kind"], obj["apiVersion"]) == ("Deployment", "apps/v1")
    assert obj["metadata"]["namespace"] == "inference"
    assert obj["spec"]["template"]["spec"]["containers"][0]["name"]
    assert result.call == "GET /apis/apps/v1/namespaces/inference/deployments/mixtral-8x22b"


def test_cluster_scoped_objects_and_karpenter_ones(lab: Lab) -> None:
    pool = kube_objects.get_object(box=lab.box, kind="nodepool", name="gpu-spot")
    assert pool.status == "ok", pool.text
    assert pool.data["kind"] == "NodePool"
    assert pool.data["apiVersion"] == "karpenter.sh/v1"
    assert pool.data["spec"]["template"]["spec"]["requirements"]
    node_name = lab.cluster.store.list("Node")[0]["metadata"]["name"]
    node = kube_objects.get_object(box=lab.box, kind="Node", name=node_name)
    assert node.status == "ok" and node.data["metadata"]["name"] == node_name
    assert node.call == f"GET /api/v1/nodes/{node_name}"


def test_missing_objects_and_unknown_kinds_are_clear_errors(lab: Lab) -> None:
    missing = kube_objects.get_object(box=lab.box, kind="deployment", name="no-such-model")
    assert (missing.status, missing.error_kind) == ("error", "not-found")
    odd = kube_objects.get_object(box=lab.box, kind="configmap", name="x")
    assert odd.error_kind == "rejected"
    assert "known kinds" in (odd.error or "")
