"""Turn a scenario's ``cluster`` into the Kubernetes objects and container logs the fake serves.

Everything is derived from the scenario and "now" deterministically (names, uids, addresses,
volume ids), so a scenario builds the same cluster every run. Ages are chosen to agree with
what the scenario says happened: a pod is older than its events and its last crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lab.kube import events, karpenter, naming, nodes, podspec, volumes, workloads
from lab.kube.store import LogKey, NotFound, ObjectStore
from lab.scenario import models

Obj = dict[str, Any]

SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
_RUNNING_AGE = timedelta(days=2)
_PENDING_AGE = timedelta(minutes=10)
_DEPLOYMENT_AGE = timedelta(days=7)
_CLUSTER_AGE = timedelta(days=30)
_PROGRESS_DEADLINE = timedelta(seconds=600)


def volume_id_for(namespace: str, name: str) -> str:
    """The EBS volume id behind PVC ``namespace/name`` (see ``volumes.volume_id_for``)."""
    return volumes.volume_id_for(namespace, name)


def populate(store: ObjectStore, scenario: models.Scenario, *, now: datetime | None = None) -> None:
    """Create every object of ``scenario.cluster`` in ``store``, plus its pods' logs."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    _Builder(store, scenario.cluster, moment).run()


@dataclass
class _Builder:
    store: ObjectStore
    cluster: models.Cluster
    now: datetime
    first_seen: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    pod_nodes: dict[tuple[str, str], str] = field(default_factory=dict)
    claim_zones: dict[tuple[str, str], str] = field(default_factory=dict)

    def run(self) -> None:
        for e in self.cluster.events:
            kind, ns, name = e.target
            first = events.first_seen(e, self.now)
            key = (kind, ns or "", name)
            self.first_seen[key] = min(self.first_seen.get(key, first), first)
        self._namespaces()
        for n in self.cluster.nodes:
            created = self._age("node", "", n.name, _CLUSTER_AGE)
            self.store.create(nodes.node(n, created=created, now=self.now))
        self._karpenter()
        for w in self.cluster.workloads:
            self._workload(w)
        for p in self.cluster.pods:
            self._standalone(p)
        for pvc in self.cluster.pvcs:
            self._pvc(pvc)
        for i, e in enumerate(self.cluster.events):
            self._event(i, e)

    def _age(self, kind: str, namespace: str, name: str, age: timedelta) -> datetime:
        """``age`` before now, or earlier when the object's events started earlier."""
        created = self.now - age
        first = self.first_seen.get((kind, namespace, name))
        return min(created, first - timedelta(seconds=5)) if first else created

    def _namespaces(self) -> None:
        used = {w.namespace for w in self.cluster.workloads}
        used |= {p.namespace for p in self.cluster.pods} | {p.namespace for p in self.cluster.pvcs}
        used |= {ns for e in self.cluster.events if (ns := e.target[1])}
        for name in sorted(used | set(SYSTEM_NAMESPACES)):
            self.store.create(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": name,
                        "uid": naming.uid("Namespace", None, name),
                        "creationTimestamp": naming.rfc3339(self.now - _CLUSTER_AGE),
                        "labels": {"kubernetes.io/metadata.name": name},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            )

    def _karpenter(self) -> None:
        pools = {p.name: p for p in self.cluster.nodepools}
        for p in self.cluster.nodepools:
            created = self.now - _CLUSTER_AGE
            self.store.create(
                karpenter.node_pool(p, cluster_nodes=self.cluster.nodes, created=created)
            )
        used: set[str] = set()
        for c in self.cluster.nodeclaims:
            node_for = self._claimed_node(c, used) if karpenter.launched(c) else None
            created = self._age("nodeclaim", "", c.name, timedelta(minutes=5))
            if node_for is not None:
                used.add(node_for.name)
                created = self._age("node", "", node_for.name, _CLUSTER_AGE) - timedelta(minutes=1)
            pool = pools.get(c.nodepool)
            self.store.create(
                karpenter.node_claim(c, pool=pool, node_for=node_for, created=created)
            )

    def _claimed_node(self, c: models.NodeClaim, used: set[str]) -> models.Node | None:
        for n in self.cluster.nodes:
            if n.name in used or n.nodepool != c.nodepool:
                continue
            wanted = (c.instance_type, c.zone, c.capacity_type)
            actual = (n.instance_type, n.zone, n.capacity_type)
            if all(w is None or w == a for w, a in zip(wanted, actual, strict=True)):
                return n
        return None

    # -- pods ----------------------------------------------------------------------------------
    def _default_nodes(self) -> list[str]:
        """Where a workload's default pods run: GPU nodes, Ready and schedulable first."""
        gpu = [n for n in self.cluster.nodes if nodes.labels(n).get("nvidia.com/gpu.present")]
        for group in (gpu, self.cluster.nodes):
            healthy = [n.name for n in group if n.ready and not n.unschedulable]
            if healthy or group:
                return healthy or [n.name for n in group]
        return []

    def _pod_created(self, namespace: str, state: models.Pod) -> datetime:
        pending = state.phase == "Pending" or state.node is None
        created = self._age(
            "pod", namespace, state.name or "", _PENDING_AGE if pending else _RUNNING_AGE
        )
        if state.last_terminated:
            created = min(created, self.now - state.last_terminated.finished_at - _PENDING_AGE)
        return created

    def _scheduling_message(self, namespace: str, name: str) -> str:
        for e in sorted(self.cluster.events, key=lambda e: e.last_seen):
            if e.target == ("pod", namespace, name) and e.reason == "FailedScheduling":
                return e.message
        count = len(self.cluster.nodes)
        return f"0/{count} nodes are available."

    def _make_pod(
        self, name: str, namespace: str, template: Obj, owner: Obj | None, state: models.Pod
    ) -> Obj:
        state = state.model_copy(update={"name": name})
        obj = workloads.pod(
            name,
            namespace,
            template=template,
            owner=owner,
            state=state,
            host_ip=naming.node_ip(state.node) if state.node else None,
            created=self._pod_created(namespace, state),
            now=self.now,
            unschedulable=self._scheduling_message(namespace, name),
        )
        if state.node:
            self.pod_nodes[(namespace, name)] = state.node
        self._logs(obj, state)
        return obj

    def _workload(self, w: models.Workload) -> None:
        labels = dict(w.labels) or {"app": w.name}
        template = podspec.template(
            labels,
            w.containers,
            init_containers=w.init_containers,
            volumes=w.volumes,
            affinity=w.affinity,
        )
        states = w.pods
        if states is None:
            targets = self._default_nodes()
            states = [
                models.Pod(node=targets[i % len(targets)] if targets else None)
                for i in range(w.replicas)
            ]
        pattern = re.compile(rf"^{re.escape(w.name)}-([a-z0-9]+)-[a-z0-9]{{5}}$")
        matches = [m.group(1) for s in states if s.name and (m := pattern.match(s.name))]
        pod_hash = matches[0] if matches else naming.template_hash(template)
        names = self._pod_names(w, pod_hash, states)
        pending = bool(states) and all(s.phase == "Pending" or s.node is None for s in states)
        creations = [
            self._pod_created(w.namespace, s.model_copy(update={"name": n}))
            for s, n in zip(states, names, strict=True)
        ]
        # a Deployment whose pods never ran is as new as its pods; others have run for days
        age = timedelta(0) if pending else _DEPLOYMENT_AGE
        created = self._age("deployment", w.namespace, w.name, age)
        if creations:
            created = min(created, min(creations) - timedelta(seconds=2))
        dep = workloads.deployment(
            w.name,
            w.namespace,
            labels=labels,
            template=template,
            replicas=w.replicas,
            created=created,
        )
        rs = workloads.replica_set(
            dep, pod_template_hash=pod_hash, revision=1, replicas=w.replicas, created=created
        )
        pods = [
            self._make_pod(name, w.namespace, rs["spec"]["template"], rs, state)
            for name, state in zip(names, states, strict=True)
        ]
        for pod in pods:
            for volume in pod["spec"].get("volumes", []):
                claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                node = pod["spec"].get("nodeName")
                if claim and node:
                    zone = next(n.zone for n in self.cluster.nodes if n.name == node)
                    self.claim_zones.setdefault((w.namespace, claim), zone)
        progressing = "NewReplicaSetAvailable"
        if pending:
            late = self.now - created > _PROGRESS_DEADLINE
            progressing = "ProgressDeadlineExceeded" if late else "ReplicaSetUpdated"
        rs["status"] = workloads.replica_set_status(rs, pods)
        at = min(self.now, created + timedelta(minutes=1))
        dep["status"] = workloads.deployment_status(dep, [rs], pods, progressing=progressing, at=at)
        for obj in (dep, rs, *pods):
            self.store.create(obj)

    def _pod_names(self, w: models.Workload, pod_hash: str, states: list[models.Pod]) -> list[str]:
        taken = {s.name for s in states if s.name}
        names = []
        for i, s in enumerate(states):
            name = s.name
            attempt = 0
            while name is None or (name in taken and name != s.name):
                suffix = naming.safe_string(
                    "pod", w.namespace, w.name, pod_hash, str(i), str(attempt), length=5
                )
                name = f"{w.name}-{pod_hash}-{suffix}"
                attempt += 1
            taken.add(name)
            names.append(name)
        return names

    def _standalone(self, p: models.StandalonePod) -> None:
        template = podspec.template(p.labels, p.containers)
        self.store.create(self._make_pod(p.name, p.namespace, template, None, p))

    def _logs(self, obj: Obj, state: models.Pod) -> None:
        """Current logs for containers that ran; previous ones where there was a restart."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        started = state.node is not None and state.phase != "Pending"
        containers = [c["name"] for c in obj["spec"]["containers"]]
        first_ran = started and not (state.waiting_reason and state.restarts == 0)
        if state.logs or first_ran:
            self.store.set_logs(LogKey(ns, name, containers[0]), state.logs)
        if state.previous_logs or state.restarts or state.last_terminated:
            self.store.set_logs(LogKey(ns, name, containers[0], previous=True), state.previous_logs)
        initialized = state.node is not None and (started or bool(state.waiting_reason))
        for c in obj["spec"].get("initContainers", []):
            if initialized:
                self.store.set_logs(LogKey(ns, name, c["name"]), "")
        for other in containers[1:]:
            if started:
                self.store.set_logs(LogKey(ns, name, other), "")

    # -- storage and events ------------------------------------------------------------------
    def _pvc(self, p: models.Pvc) -> None:
        age = _PENDING_AGE if p.phase == "Pending" else _CLUSTER_AGE
        created = self._age("pvc", p.namespace, p.name, age)
        claim = self.store.create(volumes.claim(p, created=created))
        if p.phase == "Bound":
            first_zone = self.cluster.nodes[0].zone if self.cluster.nodes else "ap-northeast-2a"
            zone = self.claim_zones.get((p.namespace, p.name), first_zone)
            self.store.create(volumes.volume(p, claim, zone=zone, created=created))

    def _event(self, index: int, e: models.Event) -> None:
        word, ns, name = e.target
        kind = events.KINDS[word][0]
        try:
            stored: Obj | None = self.store.get(kind, ns, name)
        except NotFound:
            stored = None
        uid = stored["metadata"]["uid"] if stored else None
        container = stored["spec"]["containers"][0]["name"] if stored and kind == "Pod" else None
        host = self.pod_nodes.get((ns or "", name), "")
        obj = events.event(index, e, now=self.now, uid=uid, host=host, container=container)
        self.store.create(obj)
