"""The scale subresource of Deployments and ReplicaSets (autoscaling/v1 Scale)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kube.store import ObjectStore

NS = "inference"
DEPLOY = "llama-2-7b"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def test_read_scale(apps: client.AppsV1Api) -> None:
    scale = apps.read_namespaced_deployment_scale(DEPLOY, NS)
    assert scale.kind == "Scale"
    assert scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 2
    assert scale.status.replicas == 2
    assert scale.status.selector == "app=inference,model=llama-2-7b"


def test_patch_scale_writes_spec_replicas(apps: client.AppsV1Api, store: ObjectStore) -> None:
    scale = apps.patch_namespaced_deployment_scale(DEPLOY, NS, {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3
    stored = store.get("Deployment", NS, DEPLOY)
    assert stored["spec"]["replicas"] == 3
    assert stored["metadata"]["generation"] == 2
    assert scale.metadata.resource_version == stored["metadata"]["resourceVersion"]


def test_replace_scale_checks_resource_version(apps: client.AppsV1Api) -> None:
    scale = apps.read_namespaced_deployment_scale(DEPLOY, NS)
    scale.spec.replicas = 4
    assert apps.replace_namespaced_deployment_scale(DEPLOY, NS, scale).spec.replicas == 4
    scale.spec.replicas = 1  # the resourceVersion it carries is now stale
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment_scale(DEPLOY, NS, scale)
    assert e.value.status == 409
    assert json.loads(e.value.body)["reason"] == "Conflict"


def test_scale_dry_run_and_validation(apps: client.AppsV1Api, store: ObjectStore) -> None:
    preview = apps.patch_namespaced_deployment_scale(
        DEPLOY, NS, {"spec": {"replicas": 5}}, dry_run="All"
    )
    assert preview.spec.replicas == 5
    assert store.get("Deployment", NS, DEPLOY)["spec"]["replicas"] == 2
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment_scale(DEPLOY, NS, {"spec": {"replicas": -2}})
    assert e.value.status == 422


def test_replicaset_scale(apps: client.AppsV1Api) -> None:
    scale = apps.patch_namespaced_replica_set_scale(
        "llama-2-7b-6f7c9", NS, {"spec": {"replicas": 1}}
    )
    assert scale.spec.replicas == 1
    assert "pod-template-hash=6f7c9" in scale.status.selector


@pytest.mark.kubectl
def test_kubectl_scale(kubectl: Kubectl, store: ObjectStore) -> None:
    assert "scaled" in kubectl("scale", "deployment", DEPLOY, "--replicas=3").stdout
    assert store.get("Deployment", NS, DEPLOY)["spec"]["replicas"] == 3
    failed = kubectl(
        "scale", "deployment", DEPLOY, "--replicas=4", "--current-replicas=1", check=False
    )
    assert failed.returncode != 0
    assert store.get("Deployment", NS, DEPLOY)["spec"]["replicas"] == 3
