"""A simulated deployment controller, so an applied fix rolls out as the scenario says.

It watches the store: a Deployment whose generation is ahead of status.observedGeneration gets
a new ReplicaSet (or a scale of the current one), and its new pods move along in steps of
``step_seconds``: Ready, then the old pods go (``succeeds``), or CrashLoopBackOff with the old
pods still serving (``fails``). It also does the small jobs a real control plane would:
replacing deleted pods, garbage-collecting owned objects, and the cordon taint.

The listener only queues work; a single worker thread does it through the store's API, so
every write gets a resourceVersion and nothing runs inside another writer's call.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from lab.kube import naming, nodes, podstatus, worker, workloads
from lab.kube.store import Conflict, LogKey, NotFound, ObjectStore
from lab.scenario import models

Obj = dict[str, Any]
Outcome = Literal["succeeds", "fails"]

CRASH_RESTARTS = 3
"""Restarts a failing new pod reaches before the controller stops stepping it."""
_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class RolloutController:
    """Rolls Deployments out in ``store`` after changes; ``outcome`` is scenario.after_fix."""

    def __init__(
        self, store: ObjectStore, *, outcome: Outcome = "succeeds", step_seconds: float = 1.0
    ) -> None:
        self.store = store
        self.outcome = outcome
        self.step_seconds = step_seconds
        self._worker = worker.Worker("lab-rollout")
        self._subscribed = False
        self._failing: set[str] = set()
        """uids of ReplicaSets whose pods crash (created by a change when the outcome fails)."""
        self._managed: set[str] = set()
        """uids of pods this controller created and moves along."""

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def errors(self) -> list[BaseException]:
        """Exceptions the worker caught (tests assert it stays empty)."""
        return self._worker.errors

    def start(self) -> RolloutController:
        if not self._subscribed:
            self.store.subscribe(self._on_write)
            self._subscribed = True
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()

    def __enter__(self) -> RolloutController:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _on_write(self, verb: str, kind: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        if kind == "Deployment" and verb != "DELETED":
            observed = obj.get("status", {}).get("observedGeneration", 0)
            if meta.get("generation", 0) > observed:
                self._worker.later(0, lambda: self._sync(ns, name))
        elif kind == "Node" and verb != "DELETED":
            self._worker.later(0, lambda: self._cordon_taint(name))
        elif verb == "DELETED" and kind in ("Deployment", "ReplicaSet"):
            self._worker.later(0, lambda: self._collect(kind, obj))
        elif verb == "DELETED" and kind == "Pod":
            for ref in meta.get("ownerReferences", []):
                if ref.get("kind") == "ReplicaSet":
                    self._worker.later(0, functools.partial(self._refill, ns, ref["name"]))

    # -- store helpers --------------------------------------------------------------------------
    def _update(self, kind: str, ns: str | None, name: str, mutate: Callable[[Obj], bool]) -> None:
        """Read, change (``mutate`` says whether it did) and write, retrying on conflicts."""
        for _ in range(10):
            try:
                obj = self.store.get(kind, ns, name)
                if not mutate(obj):
                    return
                self.store.replace(obj, expected_version=obj["metadata"]["resourceVersion"])
                return
            except Conflict:
                continue
            except NotFound:
                return

    def _family(self, dep: Obj) -> tuple[list[Obj], list[Obj]]:
        ns = dep["metadata"]["namespace"]
        rss = workloads.owned(self.store.list("ReplicaSet", ns), dep)
        pods = [p for rs in rss for p in workloads.owned(self.store.list("Pod", ns), rs)]
        return rss, pods

    def _nodes(self) -> list[Obj]:
        """Where new pods go: Ready, schedulable GPU nodes first, as the builder places them."""
        all_nodes = self.store.list("Node")
        gpu = [
            n for n in all_nodes if n["metadata"].get("labels", {}).get("nvidia.com/gpu.present")
        ]
        for group in (gpu, all_nodes):
            healthy = [n for n in group if nodes.is_ready(n) and not n["spec"].get("unschedulable")]
            if healthy:
                return healthy
        return gpu or all_nodes

    # -- the deployment controller --------------------------------------------------------------
    def _sync(self, ns: str, name: str) -> None:
        try:
            dep = self.store.get("Deployment", ns, name)
        except NotFound:
            return
        generation = dep["metadata"].get("generation", 1)
        if generation <= dep.get("status", {}).get("observedGeneration", 0):
            return
        rss, _ = self._family(dep)
        template = dep["spec"]["template"]
        target = next((rs for rs in rss if workloads.same_template(rs, template)), None)
        top = max((workloads.revision(rs) for rs in rss), default=0)
        if target is None:
            target = self._new_replica_set(dep, revision=top + 1)
            if self.outcome == "fails" and rss:
                self._failing.add(target["metadata"]["uid"])
        elif workloads.revision(target) < top:
            self._set_revision(target, top + 1)
        uid = target["metadata"]["uid"]
        failing = uid in self._failing
        desired = dep["spec"].get("replicas", 1)
        old = [rs for rs in rss if rs["metadata"]["uid"] != uid]
        if not failing:
            for rs in old:  # unhealthy old replicas go first, as the real controller does
                if not any(workloads.is_ready(p) for p in self._pods_of(rs)):
                    self._scale(rs, 0)
        serving = [rs for rs in old if self._pods_of(rs)]
        count = desired
        if failing and serving and desired:
            count = min(desired, max(workloads.rolling_limits(desired)[0], 1))
        self._scale(self.store.get("ReplicaSet", ns, target["metadata"]["name"]), count)
        self._status(ns, name, observed=generation)
        self._worker.later(self.step_seconds, lambda: self._advance(ns, name, uid))

    def _advance(self, ns: str, name: str, uid: str) -> None:
        """One step of the rollout to ReplicaSet ``uid``: its pods start, or crash again."""
        try:
            dep = self.store.get("Deployment", ns, name)
        except NotFound:
            return
        rss, _ = self._family(dep)
        target = next((rs for rs in rss if rs["metadata"]["uid"] == uid), None)
        if target is None or not workloads.same_template(target, dep["spec"]["template"]):
            return  # superseded by a later change
        failing = uid in self._failing
        by_name = {n["metadata"]["name"]: n for n in self.store.list("Node")}
        again = False
        for pod in self._pods_of(target):
            if pod["metadata"]["uid"] not in self._managed or not pod["spec"].get("nodeName"):
                continue
            restarts = workloads.restarts(pod)
            if failing and restarts < CRASH_RESTARTS:
                self._set_state(pod, by_name, _crashing(pod, restarts + 1))
                again = again or restarts + 1 < CRASH_RESTARTS
            elif not failing and not workloads.is_ready(pod):
                self._set_state(pod, by_name, _running(pod))
        pods = self._pods_of(target)
        done = len(pods) >= target["spec"].get("replicas", 0) and all(
            workloads.is_ready(p) for p in pods
        )
        if not failing and done:
            for rs in rss:
                if rs["metadata"]["uid"] != uid and self._pods_of(rs):
                    self._scale(rs, 0)
                    again = True  # one more status write, after the old pods went
        observed = dep.get("status", {}).get("observedGeneration", 0)
        self._status(ns, name, observed=observed)
        if again:
            self._worker.later(self.step_seconds, lambda: self._advance(ns, name, uid))

    def _status(self, ns: str, name: str, *, observed: int) -> None:
        try:
            dep = self.store.get("Deployment", ns, name)
        except NotFound:
            return
        rss, pods = self._family(dep)
        for rs in rss:
            self._rs_status(rs)
        rss, pods = self._family(dep)
        if not rss:
            return
        newest = max(rss, key=workloads.revision)
        new_pods = workloads.owned(pods, newest)
        complete = len(new_pods) == len(pods) == dep["spec"].get("replicas", 1) and all(
            workloads.is_ready(p) for p in pods
        )
        progressing = "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated"

        def mutate(d: Obj) -> bool:
            d["metadata"].setdefault("annotations", {})[workloads.REVISION] = str(
                workloads.revision(newest)
            )
            status = workloads.deployment_status(d, rss, pods, progressing=progressing, at=_now())
            status["observedGeneration"] = observed
            changed = status != d.get("status")
            d["status"] = status
            return changed

        self._update("Deployment", ns, name, mutate)

    # -- replica sets and pods ------------------------------------------------------------------
    def _pods_of(self, rs: Obj) -> list[Obj]:
        return workloads.owned(self.store.list("Pod", rs["metadata"]["namespace"]), rs)

    def _new_replica_set(self, dep: Obj, *, revision: int) -> Obj:
        ns = dep["metadata"]["namespace"]
        pod_hash = naming.template_hash(dep["spec"]["template"])
        names = {rs["metadata"]["name"] for rs in self.store.list("ReplicaSet", ns)}
        for collision in itertools.count():
            if f"{dep['metadata']['name']}-{pod_hash}" not in names:
                break
            pod_hash = naming.safe_string(pod_hash, str(collision), length=10)
        rs = workloads.replica_set(
            dep, pod_template_hash=pod_hash, revision=revision, replicas=0, created=_now()
        )
        rs["status"] = {"replicas": 0, "observedGeneration": 1}
        return self.store.create(rs)

    def _set_revision(self, rs: Obj, revision: int) -> None:
        def mutate(obj: Obj) -> bool:
            obj["metadata"].setdefault("annotations", {})[workloads.REVISION] = str(revision)
            return True

        self._update("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"], mutate)

    def _scale(self, rs: Obj, count: int) -> None:
        """Set the ReplicaSet's replicas, then create or delete pods to match."""
        ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]

        def mutate(obj: Obj) -> bool:
            changed = bool(obj["spec"].get("replicas") != count)
            obj["spec"]["replicas"] = count
            return changed

        self._update("ReplicaSet", ns, name, mutate)
        pods = sorted(self._pods_of(rs), key=workloads.deletion_rank)
        for pod in pods[: max(len(pods) - count, 0)]:
            try:
                self.store.delete("Pod", ns, pod["metadata"]["name"])
            except NotFound:
                continue
        self._create_pods(self.store.get("ReplicaSet", ns, name), count - len(pods))

    def _create_pods(self, rs: Obj, count: int) -> None:
        ns, rs_name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        existing = {p["metadata"]["name"] for p in self.store.list("Pod", ns)}
        targets = self._nodes()
        placed = len(self._pods_of(rs))
        for i in range(max(count, 0)):
            name = ""
            for attempt in itertools.count():
                name = f"{rs_name}-{naming.safe_string('pod', rs_name, str(attempt), length=5)}"
                if name not in existing:
                    break
            existing.add(name)
            node = targets[(placed + i) % len(targets)] if targets else None
            state = models.Pod(node=node["metadata"]["name"] if node else None, phase="Pending")
            now = _now()
            pod = workloads.pod(
                name,
                ns,
                template=rs["spec"]["template"],
                owner=rs,
                state=state,
                host_ip=nodes.internal_ip(node),
                created=now,
                now=now,
                unschedulable=f"0/{len(targets)} nodes are available.",
            )
            self._managed.add(pod["metadata"]["uid"])
            self.store.create(pod)

    def _set_state(self, pod: Obj, by_name: dict[str, Obj], state: models.Pod) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        node = by_name.get(state.node or "")
        container = pod["spec"]["containers"][0]["name"]
        self.store.set_logs(LogKey(ns, name, container), "")
        if state.restarts:
            self.store.set_logs(LogKey(ns, name, container, previous=True), "")

        def mutate(obj: Obj) -> bool:
            obj["status"] = podstatus.pod_status(
                obj, state, host_ip=nodes.internal_ip(node), now=_now()
            )
            return True

        self._update("Pod", ns, name, mutate)

    def _rs_status(self, rs: Obj) -> None:
        pods = self._pods_of(rs)

        def mutate(obj: Obj) -> bool:
            status = workloads.replica_set_status(obj, pods)
            changed = status != obj.get("status")
            obj["status"] = status
            return changed

        self._update("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"], mutate)

    def _refill(self, ns: str, rs_name: str) -> None:
        """A deleted pod is replaced while its ReplicaSet still wants it."""
        try:
            rs = self.store.get("ReplicaSet", ns, rs_name)
        except NotFound:
            return
        missing = rs["spec"].get("replicas", 0) - len(self._pods_of(rs))
        if missing <= 0:
            return
        self._create_pods(rs, missing)
        dep_ref = next(
            (r for r in rs["metadata"].get("ownerReferences", []) if r["kind"] == "Deployment"),
            None,
        )
        if dep_ref is not None:
            dep = self.store.get("Deployment", ns, dep_ref["name"])
            observed = dep.get("status", {}).get("observedGeneration", 0)
            self._status(ns, dep_ref["name"], observed=observed)
            uid = rs["metadata"]["uid"]
            self._worker.later(self.step_seconds, lambda: self._advance(ns, dep_ref["name"], uid))

    def _collect(self, kind: str, owner: Obj) -> None:
        """Garbage collection: what a deleted Deployment or ReplicaSet owned goes too."""
        ns = owner["metadata"].get("namespace")
        child = "ReplicaSet" if kind == "Deployment" else "Pod"
        for obj in workloads.owned(self.store.list(child, ns), owner):
            try:
                self.store.delete(child, ns, obj["metadata"]["name"])
            except NotFound:
                continue

    def _cordon_taint(self, name: str) -> None:
        """The unschedulable taint follows spec.unschedulable (``kubectl cordon``)."""

        def mutate(node: Obj) -> bool:
            spec = node.setdefault("spec", {})
            taints = spec.get("taints", [])
            has = any(t.get("key") == _UNSCHEDULABLE for t in taints)
            if bool(spec.get("unschedulable")) == has:
                return False
            if has:
                spec["taints"] = [t for t in taints if t.get("key") != _UNSCHEDULABLE]
                if not spec["taints"]:
                    del spec["taints"]
            else:
                added = naming.rfc3339(_now())
                taint = {"key": _UNSCHEDULABLE, "effect": "NoSchedule", "timeAdded": added}
                spec["taints"] = [*taints, taint]
            return True

        self._update("Node", None, name, mutate)


# -- pure helpers ------------------------------------------------------------------------------
def _running(pod: Obj) -> models.Pod:
    return models.Pod(name=pod["metadata"]["name"], node=pod["spec"].get("nodeName"))


def _crashing(pod: Obj, restarts: int) -> models.Pod:
    crash = models.LastTerminated(reason="Error", exit_code=1, finished_at=timedelta(seconds=1))
    return models.Pod(
        name=pod["metadata"]["name"],
        node=pod["spec"].get("nodeName"),
        ready=False,
        restarts=restarts,
        waiting_reason="CrashLoopBackOff",
        last_terminated=crash,
    )
