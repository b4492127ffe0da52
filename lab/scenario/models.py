"""Scenario format v1 (shared/SCENARIOS.md) as typed models with the defaults it states.

Every model forbids unknown keys, so a typo is an error naming the key. Values inside
Kubernetes fields (containers, volumes, affinity, requirements) pass through as given.
Relative times are kept as timedeltas before "now" (``-10m`` -> 10 minutes).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from bot.diagnose import codes
from lab.scenario import notation
from tools import instance_types


def _relative(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return notation.parse_relative_time(value)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return notation.parse_duration(value)


RelativeTime = Annotated[
    timedelta,
    BeforeValidator(_relative),
    PlainSerializer(lambda d: f"-{int(d.total_seconds())}s", return_type=str),
]
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(lambda d: f"{int(d.total_seconds())}s", return_type=str),
]
Name = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]
KubeDict = dict[str, Any]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""


class Taint(_Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Node(_Model):
    name: Name
    instance_type: str
    zone: str = "ap-northeast-2a"
    capacity_type: Literal["on-demand", "spot"] = "on-demand"
    nodepool: str | None = None
    ready: bool = True
    unschedulable: bool = False
    conditions: list[Condition] = []
    labels: dict[str, str] = {}
    taints: list[Taint] = []

    @field_validator("instance_type")
    @classmethod
    def _known_instance_type(cls, value: str) -> str:
        if instance_types.lookup(value) is None:
            known = ", ".join(sorted(instance_types.INSTANCE_TYPES))
            raise ValueError(f"unknown instance type {value!r} (known: {known})")
        return value

    @field_validator("conditions")
    @classmethod
    def _not_ready(cls, value: list[Condition]) -> list[Condition]:
        if any(c.type == "Ready" for c in value):
            raise ValueError("the Ready condition is set with `ready`, not in `conditions`")
        return value


class LastTerminated(_Model):
    reason: str
    exit_code: int = 0
    finished_at: RelativeTime = timedelta(minutes=1)


class Pod(_Model):
    """A pod of a workload; standalone pods add namespace, labels and containers."""

    name: Name | None = None
    node: str | None = None
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] = "Running"
    ready: bool | None = None
    restarts: int = Field(0, ge=0)
    waiting_reason: str | None = None
    last_terminated: LastTerminated | None = None
    logs: str = ""
    previous_logs: str = ""

    @property
    def is_ready(self) -> bool:
        """Ready as stated, else ready exactly when Running (the format's default)."""
        return self.ready if self.ready is not None else self.phase == "Running"


class StandalonePod(Pod):
    name: Name
    namespace: Name = "inference"
    labels: dict[str, str] = {}
    containers: list[KubeDict] = Field(min_length=1)


def _check_containers(value: list[KubeDict]) -> list[KubeDict]:
    names = [c.get("name") for c in value]
    for container, name in zip(value, names, strict=True):
        if not isinstance(name, str) or not name:
            raise ValueError("every container needs a `name`")
        if not isinstance(container.get("image"), str):
            raise ValueError(f"container {name!r} needs an `image`")
    if len(set(names)) != len(names):
        raise ValueError("container names must be unique")
    return value


class Workload(_Model):
    """A Deployment with its ReplicaSet and pods."""

    name: Name
    namespace: Name = "inference"
    replicas: int = Field(1, ge=0)
    labels: dict[str, str] = {}
    containers: list[KubeDict] = Field(min_length=1)
    init_containers: list[KubeDict] = []
    volumes: list[KubeDict] = []
    affinity: KubeDict = {}
    pods: list[Pod] | None = None

    _containers = field_validator("containers", "init_containers")(_check_containers)


_INVOLVED = re.compile(
    r"^(?:(?P<ns_kind>pod|deployment|pvc)/(?P<namespace>[^/]+)/(?P<name>[^/]+)"
    r"|(?P<kind>node|nodepool|nodeclaim)/(?P<cluster_name>[^/]+))$"
)


class Event(_Model):
    involved: str
    type: Literal["Normal", "Warning"] = "Normal"
    reason: str
    message: str
    count: int = Field(1, ge=1)
    last_seen: RelativeTime = timedelta(minutes=1)

    @field_validator("involved")
    @classmethod
    def _involved_shape(cls, value: str) -> str:
        if not _INVOLVED.match(value):
            raise ValueError(
                f"{value!r} is not kind/namespace/name (pod, deployment, pvc) "
                "or kind/name (node, nodepool, nodeclaim)"
            )
        return value

    @property
    def target(self) -> tuple[str, str | None, str]:
        """(kind, namespace or None, name) of the object the event is about."""
        match = _INVOLVED.match(self.involved)
        assert match is not None
        if match.group("ns_kind"):
            return match.group("ns_kind"), match.group("namespace"), match.group("name")
        return match.group("kind"), None, match.group("cluster_name")


class Pvc(_Model):
    name: Name
    namespace: Name = "inference"
    phase: Literal["Bound", "Pending", "Lost"] = "Bound"
    storage_class: str = "gp3"
    size: str = "100Gi"


class NodePool(_Model):
    name: Name
    requirements: list[KubeDict] = []
    limits: dict[str, int | float | str] = {}


class NodeClaim(_Model):
    name: Name
    nodepool: str
    instance_type: str | None = None
    zone: str | None = None
    capacity_type: Literal["on-demand", "spot"] | None = None
    conditions: list[Condition] = []


class Cluster(_Model):
    name: str = "lab"
    nodes: list[Node] = []
    workloads: list[Workload] = []
    pods: list[StandalonePod] = []
    events: list[Event] = []
    pvcs: list[Pvc] = []
    nodepools: list[NodePool] = []
    nodeclaims: list[NodeClaim] = []

    @model_validator(mode="after")
    def _references(self) -> Cluster:
        _unique("nodes", [n.name for n in self.nodes])
        _unique("workloads", [f"{w.namespace}/{w.name}" for w in self.workloads])
        _unique("pvcs", [f"{p.namespace}/{p.name}" for p in self.pvcs])
        _unique("nodepools", [p.name for p in self.nodepools])
        _unique("nodeclaims", [c.name for c in self.nodeclaims])
        nodes = {n.name for n in self.nodes}
        for pod in [p for w in self.workloads for p in (w.pods or [])] + list(self.pods):
            if pod.node is not None and pod.node not in nodes:
                raise ValueError(
                    f"pod {pod.name or '(unnamed)'} is on node {pod.node!r}, not in nodes"
                )
        return self


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: {name!r} appears twice")
        seen.add(name)


class Metrics(_Model):
    interval: Duration = timedelta(minutes=1)
    series: dict[str, str | int | float] = {}

    @field_validator("interval")
    @classmethod
    def _at_most_a_minute(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=1):
            raise ValueError("interval must be more than 0 and at most 1m")
        return value

    @field_validator("series")
    @classmethod
    def _series(cls, value: dict[str, str | int | float]) -> dict[str, str | int | float]:
        for selector, samples in value.items():
            try:
                notation.parse_series_selector(selector)
                notation.expand_series_values(samples)
            except ValueError as e:
                raise ValueError(f"series {selector!r}: {e}") from None
        return value

    def expanded(self) -> dict[str, tuple[str, dict[str, str], list[float | None]]]:
        """Each series as (metric, labels, samples); the last sample is at now."""
        out = {}
        for selector, samples in self.series.items():
            name, labels = notation.parse_series_selector(selector)
            out[selector] = (name, labels, notation.expand_series_values(samples))
        return out


class LogLine(_Model):
    at: RelativeTime = timedelta(minutes=1)
    stream: str = "default"
    message: str


class Allocation(_Model):
    namespace: Name
    controller: str | None = None
    day: RelativeTime = timedelta(0)
    gpuCost: float = 0.0
    cpuCost: float = 0.0
    ramCost: float = 0.0
    pvCost: float = 0.0
    networkCost: float = 0.0

    @field_validator("day")
    @classmethod
    def _whole_days(cls, value: timedelta) -> timedelta:
        if value.total_seconds() % 86400:
            raise ValueError("day must be a whole number of days, like -0d or -1d")
        return value

    @property
    def totalCost(self) -> float:
        return self.gpuCost + self.cpuCost + self.ramCost + self.pvCost + self.networkCost


class Costs(_Model):
    allocations: list[Allocation] = []


class ImageScan(_Model):
    image: str
    critical: int = Field(0, ge=0)
    high: int = Field(0, ge=0)
    medium: int = Field(0, ge=0)


class Snapshot(_Model):
    pvc: Annotated[str, Field(pattern=r"^[a-z0-9-.]+/[a-z0-9-.]+$")]
    at: RelativeTime


class Aws(_Model):
    image_scans: list[ImageScan] = []
    snapshots: list[Snapshot] = []


class Alert(_Model):
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: RelativeTime = timedelta(minutes=1)
    status: Literal["firing", "resolved"] = "firing"

    @field_validator("labels")
    @classmethod
    def _alertname(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("alertname"):
            raise ValueError("an alert needs labels.alertname")
        return value


class AfterFix(_Model):
    rollout: Literal["succeeds", "fails"] = "succeeds"


class ToolCall(_Model):
    name: str
    args: dict[str, Any] = {}


class LlmTurn(_Model):
    tool_calls: list[ToolCall] | None = None
    content: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> LlmTurn:
        if (self.tool_calls is None) == (self.content is None):
            raise ValueError("a turn has either tool_calls or content")
        return self


_TARGET = re.compile(r"^(?:(node|nodepool)/[^/]+|[a-z]+/[^/]+/[^/]+)$")


def _check_fix(value: str) -> str:
    code, _, target = value.partition("@")
    if code not in codes.FIX_CODES:
        raise ValueError(f"unknown fix code {code!r}")
    if target and not _TARGET.match(target):
        raise ValueError(
            f"{value!r}: target must be node/NAME, nodepool/NAME or KIND/NAMESPACE/NAME"
        )
    return value


def _check_finding(value: str) -> str:
    if value not in codes.FINDING_CODES:
        raise ValueError(f"unknown finding code {value!r}")
    return value


FixRef = Annotated[str, BeforeValidator(_check_fix)]
FindingCode = Annotated[str, BeforeValidator(_check_finding)]


class Expect(_Model):
    runbook: str | None = None
    findings: list[FindingCode] = []
    not_findings: list[FindingCode] = []
    fixes: list[FixRef] = []
    not_fixes: list[FixRef] = []
    applied: dict[str, Literal["applied", "rolled-back", "failed"]] = {}
    checks: dict[str, Literal["ok", "warn", "fail", "unknown"]] = {}

    @field_validator("runbook")
    @classmethod
    def _known_runbook(cls, value: str | None) -> str | None:
        if value is not None and value not in codes.RUNBOOK_IDS:
            raise ValueError(f"unknown runbook id {value!r}")
        return value

    @field_validator("applied")
    @classmethod
    def _known_fixes(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            _check_fix(key)
        return value

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in codes.CHECK_IDS:
                raise ValueError(f"unknown check id {key!r}")
        return value


class Scenario(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    description: str = ""
    cluster: Cluster = Cluster()
    metrics: Metrics | None = None
    logs: dict[str, list[LogLine]] = {}
    costs: Costs | None = None
    aws: Aws | None = None
    alerts: list[Alert] = []
    question: str | None = None
    after_fix: AfterFix = AfterFix()
    llm_script: list[LlmTurn] = []
    expect: Expect = Expect()
