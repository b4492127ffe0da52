"""Fixtures for the fix catalog: real objects from the lab, and one check every patch must pass.

Objects come from the lab's scenario builder, so they are what the API serves (list-form env,
string quantities, defaulted fields). ``verify`` applies each patch with the real `jsonpatch`
library: it must give exactly the intended object, fail on any tested value that changed,
guard every change, and be undone by its inverse.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonpatch
import jsonpointer
import pytest
import yaml

from bot.fixes import catalog, model
from lab.kube import build
from lab.kube import store as kube_store
from lab.scenario import loader

REPO = Path(__file__).resolve().parents[4]
Obj = dict[str, Any]

BASE_VLLM = {
    "name": "vllm",
    "image": "vllm/vllm-openai:v0.11.0",
    "args": ["--model", "meta-llama/Llama-2-7b-hf", "--gpu-memory-utilization", "0.95"],
    "ports": [{"name": "http", "containerPort": 8000}],
    "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "32Gi"}},
}


def populate(scenario: dict[str, Any]) -> kube_store.ObjectStore:
    store = kube_store.ObjectStore()
    build.populate(store, loader.load_text(yaml.safe_dump(scenario)))
    return store


@pytest.fixture
def scenario_store() -> Callable[[str], kube_store.ObjectStore]:
    """The lab's objects for one of the repository's public scenarios."""

    def load(name: str) -> kube_store.ObjectStore:
        store = kube_store.ObjectStore()
        build.populate(store, loader.load_file(REPO / "scenarios" / f"{name}.yaml"))
        return store

    return load


@pytest.fixture
def deployment() -> Callable[..., Obj]:
    """A Deployment as the lab serves it, from workload fields (containers, affinity, …)."""

    def make(containers: list[dict[str, Any]] | None = None, **fields: Any) -> Obj:
        workload = {
            "name": "llama-2-7b",
            "labels": {"app": "inference", "model": "llama-2-7b"},
            "containers": containers if containers is not None else [copy.deepcopy(BASE_VLLM)],
            **fields,
        }
        store = populate({"name": "fixes", "cluster": {"workloads": [workload]}})
        return store.get("Deployment", "inference", workload["name"])

    return make


@pytest.fixture
def node() -> Callable[..., Obj]:
    """A Node as the lab serves it."""

    def make(instance_type: str = "p4d.24xlarge", name: str = "gpu-a", **fields: Any) -> Obj:
        spec = {"name": name, "instance_type": instance_type, **fields}
        store = populate({"name": "fixes", "cluster": {"nodes": [spec]}})
        return store.get("Node", None, name)

    return make


@pytest.fixture
def nodepool() -> Callable[..., Obj]:
    """A karpenter.sh/v1 NodePool as the lab serves it."""

    def make(requirements: list[dict[str, Any]], limits: dict[str, Any] | None = None) -> Obj:
        pool: dict[str, Any] = {"name": "gpu", "requirements": requirements}
        if limits is not None:
            pool["limits"] = limits
        store = populate({"name": "fixes", "cluster": {"nodepools": [pool]}})
        return store.get("NodePool", None, "gpu")

    return make


@pytest.fixture
def context() -> Callable[..., model.FixContext]:
    """A FixContext on a node of ``instance_type`` (facts read from a lab Node)."""

    def make(instance_type: str | None = "p4d.24xlarge", **fields: Any) -> model.FixContext:
        facts = None
        if instance_type is not None:
            store = populate(
                {
                    "name": "ctx",
                    "cluster": {"nodes": [{"name": "n", "instance_type": instance_type}]},
                }
            )
            facts = model.NodeFacts.from_node(store.get("Node", None, "n"))
        fields.setdefault("node", facts)
        return model.FixContext(**fields)

    return make


def _changed(value: Any) -> Any:
    """A different value of the same shape, to stand for someone's concurrent edit."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "-edited"
    if isinstance(value, list):
        return [*value, "edited"]
    if isinstance(value, dict):
        return {**value, "edited": "yes"}
    return "edited"


def _guarded(ops: list[dict[str, Any]]) -> None:
    """Every replace is preceded by a test of its path; every container change by a name pin."""
    tested: set[str] = set()
    created: set[str] = set()
    for op in ops:
        path = op["path"]
        if op["op"] == "test":
            tested.add(path)
            continue
        if "/containers/" in path:
            head, tail = path.split("/containers/", 1)
            index = tail.split("/")[0]
            assert f"{head}/containers/{index}/name" in tested, f"{op} has no container pin"
        if op["op"] == "replace":
            assert path in tested, f"{op} replaces an untested value"
        if op["op"] == "add" and (path.rsplit("/", 1)[1].isdigit() or path.endswith("/-")):
            parent = path.rsplit("/", 1)[0]
            assert parent in tested or parent in created, f"{op} adds to an unpinned array"
        created.add(path)


def _verify(obj: Obj, fix: model.FixPatch | model.Refused, expected: Obj) -> model.FixPatch:
    assert isinstance(fix, model.FixPatch), fix
    original = copy.deepcopy(obj)
    result = jsonpatch.apply_patch(obj, fix.ops)
    assert obj == original, "applying must not mutate the input"
    assert result == expected
    _guarded(fix.ops)
    for op in fix.ops:
        if op["op"] != "test":
            continue
        edited = copy.deepcopy(obj)
        jsonpointer.set_pointer(edited, op["path"], _changed(op["value"]))
        with pytest.raises(jsonpatch.JsonPatchTestFailed):
            jsonpatch.apply_patch(edited, fix.ops)
    assert jsonpatch.apply_patch(result, fix.inverse(obj)) == obj
    canonical = json.dumps(fix.ops, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert fix.patch_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert fix.target == catalog.target_of(obj)
    assert fix.diff and fix.summary and fix.risk and "\n" not in fix.risk
    return fix


@pytest.fixture
def verify() -> Callable[[Obj, model.FixPatch | model.Refused, Obj], model.FixPatch]:
    """Check a built patch against the object it was built from and the intended result."""
    return _verify


@pytest.fixture
def refused() -> Callable[[model.FixPatch | model.Refused, str], model.Refused]:
    """Check a refusal and that its reason mentions ``words``."""

    def check(fix: model.FixPatch | model.Refused, words: str) -> model.Refused:
        assert isinstance(fix, model.Refused), fix.diff if isinstance(fix, model.FixPatch) else fix
        assert words.lower() in fix.why.lower(), fix.why
        return fix

    return check
