"""The scenario format as SCENARIOS.md states it: defaults, and errors naming file and key."""

from datetime import timedelta
from pathlib import Path

import pytest

from lab.scenario import loader

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "scenarios" / "cache-pvc-pending.yaml"
PUBLIC = sorted((ROOT / "scenarios").glob("*.yaml"))

MINIMAL_WORKLOAD = "{name: w, containers: [{name: vllm, image: vllm/vllm-openai:v0.11.0}]}"


def test_defaults_of_the_format() -> None:
    s = loader.load_text(
        f"""
name: defaults
cluster:
  nodes: [{{name: gpu-a, instance_type: p4d.24xlarge}}]
  workloads: [{MINIMAL_WORKLOAD}]
  events: [{{involved: node/gpu-a, reason: NodeReady, message: ready}}]
alerts: [{{labels: {{alertname: GPUMemoryHigh}}}}]
costs: {{allocations: [{{namespace: inference}}]}}
"""
    )
    assert s.description == ""
    assert s.cluster.name == "lab"
    node = s.cluster.nodes[0]
    assert (node.zone, node.capacity_type, node.nodepool) == ("ap-northeast-2a", "on-demand", None)
    assert node.ready and not node.unschedulable
    workload = s.cluster.workloads[0]
    assert (workload.namespace, workload.replicas, workload.pods) == ("inference", 1, None)
    event = s.cluster.events[0]
    assert (event.type, event.count, event.last_seen) == ("Normal", 1, timedelta(minutes=1))
    assert event.target == ("node", None, "gpu-a")
    alert = s.alerts[0]
    assert (alert.status, alert.starts_at) == ("firing", timedelta(minutes=1))
    allocation = s.costs.allocations[0] if s.costs else None
    assert allocation is not None and allocation.day == timedelta(0) and allocation.totalCost == 0
    assert s.after_fix.rollout == "succeeds"
    assert s.metrics is None and s.question is None and s.llm_script == []


def test_pod_defaults_and_readiness() -> None:
    s = loader.load_text(
        """
name: pods
cluster:
  nodes: [{name: gpu-a, instance_type: g5.xlarge}]
  workloads:
    - name: w
      containers: [{name: vllm, image: vllm/vllm-openai:v0.11.0}]
      pods:
        - {node: gpu-a}
        - {phase: Pending}
        - {node: gpu-a, restarts: 7, waiting_reason: CrashLoopBackOff, ready: false,
            last_terminated: {reason: OOMKilled, exit_code: 137, finished_at: -4m}}
  pods: [{name: debug, containers: [{name: sh, image: busybox}]}]
"""
    )
    running, pending, crashing = s.cluster.workloads[0].pods or []
    assert running.is_ready and running.phase == "Running"
    assert not pending.is_ready and pending.node is None
    assert not crashing.is_ready
    assert crashing.last_terminated is not None
    assert crashing.last_terminated.finished_at == timedelta(minutes=4)
    assert s.cluster.pods[0].namespace == "inference"


def test_the_shared_example_loads() -> None:
    s = loader.load_file(EXAMPLE)
    assert s.name == "cache-pvc-pending"
    assert s.expect.findings == ["model-loading-failure/cache-pvc-pending"]


def test_every_public_scenario_validates() -> None:
    assert len(PUBLIC) >= 6
    names = [loader.load_file(path).name for path in PUBLIC]
    assert names == [path.stem for path in PUBLIC]  # the name is the file's stem


def test_series_expand_with_the_last_sample_at_now() -> None:
    s = loader.load_text(
        'name: m\nmetrics:\n  interval: 30s\n  series:\n    \'up{job="x"}\': "1+1x3 _"\n'
    )
    assert s.metrics is not None
    assert s.metrics.interval == timedelta(seconds=30)
    assert s.metrics.expanded()['up{job="x"}'] == ("up", {"job": "x"}, [1, 2, 3, 4, None])


BAD = [
    ("description: no name", "name: required key is missing"),
    ("name: Bad_Name", "name: String should match pattern"),
    ("name: x\nclustr: {}", "clustr: unknown key"),
    (
        "name: x\ncluster: {nodes: [{name: a, instance_type: p4d.24xlarge, gpus: 8}]}",
        "cluster.nodes[0].gpus: unknown key",
    ),
    (
        "name: x\ncluster: {nodes: [{name: a, instance_type: p9.huge}]}",
        "cluster.nodes[0].instance_type: unknown instance type 'p9.huge'",
    ),
    (
        "name: x\ncluster: {nodes: [{name: a}]}",
        "cluster.nodes[0].instance_type: required key is missing",
    ),
    (
        "name: x\ncluster: {nodes: [{name: a, instance_type: g5.xlarge, capacity_type: reserved}]}",
        "cluster.nodes[0].capacity_type: Input should be 'on-demand' or 'spot'",
    ),
    (
        "name: x\ncluster: {nodes: [{name: a, instance_type: g5.xlarge, ready: maybe}]}",
        "cluster.nodes[0].ready: Input should be a valid boolean",
    ),
    (
        "name: x\ncluster: {nodes: [{name: a, instance_type: g5.xlarge,"
        " conditions: [{type: Ready, status: 'False'}]}]}",
        "cluster.nodes[0].conditions: the Ready condition is set with `ready`",
    ),
    (
        f"name: x\ncluster: {{workloads: [{MINIMAL_WORKLOAD[:-1]}, replicas: two}}]}}",
        "cluster.workloads[0].replicas: Input should be a valid integer",
    ),
    (
        "name: x\ncluster: {workloads: [{name: w, containers: [{image: i}]}]}",
        "cluster.workloads[0].containers: every container needs a `name`",
    ),
    (
        f"name: x\ncluster: {{workloads: [{MINIMAL_WORKLOAD[:-1]}, pods: [{{node: nowhere}}]}}]}}",
        "cluster: pod (unnamed) is on node 'nowhere', not in nodes",
    ),
    (
        f"name: x\ncluster: {{workloads: [{MINIMAL_WORKLOAD[:-1]}, pods: [{{phase: Crashing}}]}}]}}",
        "cluster.workloads[0].pods[0].phase: Input should be 'Pending', 'Running'",
    ),
    (
        "name: x\ncluster: {events: [{involved: pod/x, reason: R, message: m}]}",
        "cluster.events[0].involved: 'pod/x' is not kind/namespace/name",
    ),
    (
        "name: x\ncluster: {events: [{involved: node/a, reason: R, message: m, last_seen: 5m}]}",
        "cluster.events[0].last_seen: '5m' is not a relative time",
    ),
    (
        "name: x\ncluster: {events: [{involved: node/a, message: m}]}",
        "cluster.events[0].reason: required key is missing",
    ),
    (
        "name: x\nmetrics: {interval: 5m}",
        "metrics.interval: interval must be more than 0 and at most 1m",
    ),
    ("name: x\nmetrics: {interval: 5 minutes}", "metrics.interval: '5 minutes' is not a duration"),
    ("name: x\nmetrics: {series: {'up': '1+x5'}}", "metrics.series: series 'up': '1+x5'"),
    ("name: x\nmetrics: {series: {'up{a=1}': '1'}}", "metrics.series: series 'up{a=1}'"),
    ("name: x\nlogs: {/g: [{at: -1m, stream: s}]}", "logs./g[0].message: required key is missing"),
    (
        "name: x\ncosts: {allocations: [{namespace: a, day: -36h}]}",
        "costs.allocations[0].day: day must be a whole number of days",
    ),
    (
        "name: x\ncosts: {allocations: [{namespace: a, gpuCost: lots}]}",
        "costs.allocations[0].gpuCost: Input should be a valid number",
    ),
    ("name: x\naws: {snapshots: [{pvc: model-cache-pvc, at: -1h}]}", "aws.snapshots[0].pvc:"),
    (
        "name: x\nalerts: [{labels: {severity: warning}}]",
        "alerts[0].labels: an alert needs labels.alertname",
    ),
    (
        "name: x\nalerts: [{labels: {alertname: A}, status: pending}]",
        "alerts[0].status: Input should be 'firing' or 'resolved'",
    ),
    (
        "name: x\nalerts: [{labels: {alertname: A, gpu: 0}}]",
        "alerts[0].labels.gpu: Input should be a valid string",
    ),
    (
        "name: x\nafter_fix: {rollout: flaky}",
        "after_fix.rollout: Input should be 'succeeds' or 'fails'",
    ),
    (
        "name: x\nllm_script: [{content: a, tool_calls: []}]",
        "llm_script[0]: a turn has either tool_calls or content",
    ),
    ("name: x\nexpect: {runbook: gpu-melting}", "expect.runbook: unknown runbook id 'gpu-melting'"),
    (
        "name: x\nexpect: {findings: [gpu-oom/too-hot]}",
        "expect.findings[0]: unknown finding code 'gpu-oom/too-hot'",
    ),
    (
        "name: x\nexpect: {fixes: [reboot-everything]}",
        "expect.fixes[0]: unknown fix code 'reboot-everything'",
    ),
    (
        "name: x\nexpect: {not_fixes: ['cordon-node@gpu-a']}",
        "expect.not_fixes[0]: 'cordon-node@gpu-a': target must be",
    ),
    (
        "name: x\nexpect: {applied: {scale-up: done}}",
        "expect.applied.scale-up: Input should be 'applied'",
    ),
    ("name: x\nexpect: {checks: {gpu-temp: ok}}", "expect.checks: unknown check id 'gpu-temp'"),
    (
        "name: x\nexpect: {checks: {error-rate: bad}}",
        "expect.checks.error-rate: Input should be 'ok'",
    ),
    ("name: x\nexpect: {findings: [a], finding: [b]}", "expect.finding: unknown key"),
    ("name: x\nname: y", "line 2, column 1: not valid YAML: duplicate key 'name'"),
    ("name: x\ncluster: [", "line 3, column 1: not valid YAML: did not find expected node content"),
    ("- name: x", "the top level must be a mapping"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_scenarios_name_file_and_key(text: str, message: str) -> None:
    with pytest.raises(loader.ScenarioError) as err:
        loader.load_text(text, source="scenarios/bad.yaml")
    assert f"scenarios/bad.yaml: {message}" in str(err.value)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(loader.ScenarioError, match=r"nope\.yaml: cannot read"):
        loader.load_file(tmp_path / "nope.yaml")
