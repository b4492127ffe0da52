"""The simulated deployment controller, driven through the store as the API server drives it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lab.kube import build, rollout, workloads
from lab.kube.store import ObjectStore
from lab.scenario import loader

Obj = dict[str, Any]
WaitFor = Callable[..., Any]
NS = "inference"
STEP = 0.02
SCENARIO = """
name: rollout-test
after_fix: {rollout: %s}
cluster:
  nodes:
    - {name: gpu-a, instance_type: g5.xlarge}
    - {name: gpu-b, instance_type: g5.xlarge}
  workloads:
    - name: llama
      replicas: 2
      labels: {app: inference, model: llama}
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--gpu-memory-utilization", "0.95"]
          resources: {limits: {nvidia.com/gpu: 1}}
"""


def make(outcome: str) -> tuple[ObjectStore, rollout.RolloutController]:
    scenario = loader.load_text(SCENARIO % outcome)
    store = ObjectStore()
    build.populate(store, scenario)
    controller = rollout.RolloutController(
        store, outcome=scenario.after_fix.rollout, step_seconds=STEP
    )
    return store, controller


@pytest.fixture
def succeeding() -> Iterator[tuple[ObjectStore, rollout.RolloutController]]:
    store, controller = make("succeeds")
    with controller:
        yield store, controller
    assert controller.errors == []


@pytest.fixture
def failing() -> Iterator[tuple[ObjectStore, rollout.RolloutController]]:
    store, controller = make("fails")
    with controller:
        yield store, controller
    assert controller.errors == []


def change(store: ObjectStore, mutate: Callable[[Obj], None]) -> Obj:
    dep = store.get("Deployment", NS, "llama")
    mutate(dep)
    return store.replace(dep, expected_version=dep["metadata"]["resourceVersion"])


def set_gpu_util(value: str) -> Callable[[Obj], None]:
    def mutate(dep: Obj) -> None:
        dep["spec"]["template"]["spec"]["containers"][0]["args"][1] = value

    return mutate


def complete(store: ObjectStore) -> bool:
    dep = store.get("Deployment", NS, "llama")
    status = dep["status"]
    replicas = dep["spec"]["replicas"]
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    return (
        status["observedGeneration"] == dep["metadata"]["generation"]
        and status.get("replicas", 0) == replicas
        and status.get("updatedReplicas", 0) == replicas
        and status.get("readyReplicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and progressing["reason"] == "NewReplicaSetAvailable"
    )


def replica_sets(store: ObjectStore) -> list[Obj]:
    return sorted(store.list("ReplicaSet", NS), key=workloads.revision)


def pods_of(store: ObjectStore, rs: Obj) -> list[Obj]:
    return workloads.owned(store.list("Pod", NS), rs)


def test_a_template_change_rolls_out_when_the_scenario_says_it_succeeds(
    succeeding: tuple[ObjectStore, rollout.RolloutController], wait_for: WaitFor
) -> None:
    store, _ = succeeding
    before = store.resource_version
    changed = change(store, set_gpu_util("0.85"))
    assert changed["metadata"]["generation"] == 2
    wait_for(lambda: complete(store), timeout=10)
    old, new = replica_sets(store)
    assert workloads.revision(new) == 2
    assert old["spec"]["replicas"] == 0 and pods_of(store, old) == []
    assert new["spec"]["replicas"] == 2
    pods = pods_of(store, new)
    assert len(pods) == 2 and all(workloads.is_ready(p) for p in pods)
    assert {p["spec"]["containers"][0]["args"][1] for p in pods} == {"0.85"}
    assert {p["spec"]["nodeName"] for p in pods} == {"gpu-a", "gpu-b"}
    new_hash = new["metadata"]["labels"]["pod-template-hash"]
    assert all(p["metadata"]["labels"]["pod-template-hash"] == new_hash for p in pods)
    dep = store.get("Deployment", NS, "llama")
    assert dep["metadata"]["annotations"][workloads.REVISION] == "2"
    assert "unavailableReplicas" not in dep["status"]
    assert int(store.resource_version) > int(before)


def test_a_failing_rollout_crashloops_new_pods_and_keeps_the_old_ones_serving(
    failing: tuple[ObjectStore, rollout.RolloutController], wait_for: WaitFor
) -> None:
    store, _ = failing
    change(store, set_gpu_util("0.85"))

    def crashing() -> list[Obj]:
        sets = replica_sets(store)
        if len(sets) < 2:
            return []
        pods = pods_of(store, sets[-1])
        return [p for p in pods if workloads.restarts(p) >= 2] if pods else []

    new_pods = wait_for(crashing, timeout=10)
    state = new_pods[0]["status"]["containerStatuses"][0]["state"]
    assert state["waiting"]["reason"] == "CrashLoopBackOff"
    old, new = replica_sets(store)
    assert new["spec"]["replicas"] == 1  # maxSurge of 2 replicas
    old_pods = pods_of(store, old)
    assert len(old_pods) == 2 and all(workloads.is_ready(p) for p in old_pods)
    dep = store.get("Deployment", NS, "llama")
    status = dep["status"]
    assert status["observedGeneration"] == dep["metadata"]["generation"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"]) == (3, 1, 2)
    assert status["unavailableReplicas"] == 1
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "ReplicaSetUpdated"


def test_rolling_back_a_failed_rollout_restores_the_old_replica_set(
    failing: tuple[ObjectStore, rollout.RolloutController], wait_for: WaitFor
) -> None:
    store, _ = failing
    original = store.get("Deployment", NS, "llama")["spec"]["template"]
    change(store, set_gpu_util("0.85"))
    wait_for(lambda: len(replica_sets(store)) == 2 and pods_of(store, replica_sets(store)[-1]))

    def restore(dep: Obj) -> None:
        dep["spec"]["template"] = original

    change(store, restore)
    wait_for(lambda: complete(store), timeout=10)
    sets = {
        rs["metadata"]["labels"]["pod-template-hash"]: rs for rs in store.list("ReplicaSet", NS)
    }
    restored = max(sets.values(), key=workloads.revision)
    assert workloads.revision(restored) == 3
    assert workloads.same_template(restored, original)
    assert len(pods_of(store, restored)) == 2
    failed = next(rs for rs in sets.values() if rs is not restored)
    assert failed["spec"]["replicas"] == 0 and pods_of(store, failed) == []


def test_scaling_adds_and_removes_pods_of_the_current_replica_set(
    succeeding: tuple[ObjectStore, rollout.RolloutController], wait_for: WaitFor
) -> None:
    store, _ = succeeding

    def scale(n: int) -> Callable[[Obj], None]:
        def mutate(dep: Obj) -> None:
            dep["spec"]["replicas"] = n

        return mutate

    change(store, scale(4))
    wait_for(lambda: complete(store), timeout=10)
    (rs,) = replica_sets(store)
    assert rs["spec"]["replicas"] == 4 and len(pods_of(store, rs)) == 4
    change(store, scale(1))
    wait_for(lambda: complete(store), timeout=10)
    (rs,) = replica_sets(store)
    assert rs["spec"]["replicas"] == 1 and len(pods_of(store, rs)) == 1
    assert rs["status"]["replicas"] == 1


def test_a_deleted_pod_is_replaced(
    succeeding: tuple[ObjectStore, rollout.RolloutController], wait_for: WaitFor
) -> None:
    store, _ = succeeding
    (rs,) = replica_sets(store)
    victim = pods_of(store, rs)[0]["metadata"]["name"]
    store.delete("Pod", NS, victim)

    def replaced() -> bool:
        pods = pods_of(store, rs)
        names = {p["metadata"]["name"] for p in pods}
        return len(pods) == 2 and victim not in names and all(map(workloads.is_ready, pods))

    wait_for(replaced, timeout=10)


def test_cordoning_a_node_adds_the_unschedulable_taint(
    succeeding: tuple[ObjectStore, rollout.RolloutController], wait_for: WaitFor
) -> None:
    store, _ = succeeding
    node = store.get("Node", None, "gpu-a")
    node["spec"]["unschedulable"] = True
    store.replace(node)

    def taints() -> list[str]:
        spec = store.get("Node", None, "gpu-a")["spec"]
        return [t["key"] for t in spec.get("taints", [])]

    wait_for(lambda: taints() == ["node.kubernetes.io/unschedulable"])
    node = store.get("Node", None, "gpu-a")
    node["spec"]["unschedulable"] = False
    store.replace(node)
    wait_for(lambda: taints() == [])


def test_deleting_a_deployment_collects_what_it_owned(
    succeeding: tuple[ObjectStore, rollout.RolloutController], wait_for: WaitFor
) -> None:
    store, _ = succeeding
    store.delete("Deployment", NS, "llama")
    wait_for(lambda: not store.list("ReplicaSet", NS) and not store.list("Pod", NS))


def test_stop_ends_the_worker_and_later_changes_do_nothing(wait_for: WaitFor) -> None:
    store, controller = make("succeeds")
    controller.start()
    controller.stop()
    change(store, set_gpu_util("0.85"))
    dep = store.get("Deployment", NS, "llama")
    assert dep["status"]["observedGeneration"] == 1
    assert len(replica_sets(store)) == 1
    controller.start()  # a restarted controller picks up the next change
    change(store, set_gpu_util("0.80"))
    wait_for(lambda: complete(store), timeout=10)
    controller.stop()
    assert controller.errors == []
