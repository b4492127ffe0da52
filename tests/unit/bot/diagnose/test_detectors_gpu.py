"""The GPU, latency and cost detectors against the public scenarios, each on its whole lab.

Each scenario's ``expect`` is the answer key: the findings of these runbooks it names must be
found (not ruled out), its ``not_findings`` and ``not_fixes`` must never appear — with the
subject the trigger names and with an empty subject (a question naming nothing) — and its fixes
of these detectors must be proposed for the named targets.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import clients
from bot.diagnose.detectors import cost, gpu_hardware, gpu_idle, gpu_memory, latency
from bot.diagnose.investigation import Investigation, Subject
from bot.diagnose.model import Finding, Trigger
from lab import up
from lab.scenario import loader, models

ROOT = Path(__file__).resolve().parents[4]
MODULES = (gpu_memory, gpu_hardware, gpu_idle, latency, cost)
CODES = frozenset().union(*(m.CODES for m in MODULES))
FIX_CODES = frozenset(
    {
        "lower-gpu-memory-utilization",
        "limit-max-num-seqs",
        "reduce-batch-size",
        "enable-quantization",
        "limit-max-model-len",
        "increase-tensor-parallel",
        "cordon-node",
        "scale-up",
        "scale-down",
        "rollout-restart",
    }
)
"""The fix codes these detectors suggest: the only expected fixes they are scored on."""
SCENARIOS = [
    "gpu-oom-kv-cache-pressure",
    "gpu-memory-expected-preallocation",
    "gpu-xid79-fallen-off-bus",
    "gpu-xid31-application-fault",
    "gpu-underutilized-idle-replicas",
    "latency-queueing-scale-up",
    "latency-preemption-long-context",
    "daily-cost-idle-gpus",
    "daily-checks-healthy",
    "gpu-oom-70b-weights-on-a100-40gb",
    "gpu-oom-batch-scoring-logprobs",
    "context-too-long-llama-3-1-8b-on-l4",
    "oomkilled-loading-qwen-32b",
    "gpu-ecc-dbe-p4de-row-remap",
    "gpu-xid43-engine-dead-500s",
    "nccl-timeout-after-xid74-nvlink",
    "question-llama-3-8b-slow-thermal-throttle",
    "cost-spike-spot-to-on-demand",
    "daily-checks-node-down-over-budget",
]

ALSO_FOUND = {
    "gpu-xid31-application-fault": {"gpu-hardware-fault/application-xid"},
    "gpu-underutilized-idle-replicas": {"gpu-oom/expected-preallocation"},
}
"""What these detectors also conclude beyond the scenario's key (the key does not forbid it)."""
EXACT_FIXES = {
    "gpu-xid31-application-fault": set(),
    "gpu-xid43-engine-dead-500s": {"rollout-restart@deployment/inference/mistral-7b"},
}
"""Application XIDs: a rollout restart only for a pod still holding the faulted context (43),
never for pods that crash and restart by themselves (13/31 since a rollout)."""
RULED_OUT = {
    "daily-cost-idle-gpus": {"cost/on-demand-shift"},
    "latency-preemption-long-context": {"inference-latency-high/queueing"},
}
"""Look-alikes the detectors check and report as excluded, with their evidence."""


def trigger_of(scenario: models.Scenario) -> Trigger:
    """The first firing alert, as a click on Diagnose sends it; else the question."""
    for alert in scenario.alerts:
        if alert.status == "firing":
            return Trigger(
                kind="alert",
                alertname=alert.labels["alertname"],
                labels=dict(alert.labels),
                annotations=dict(alert.annotations),
            )
    return Trigger(kind="question", question=scenario.question)


def subject_of(scenario: models.Scenario, trigger: Trigger) -> Subject:
    """What the trigger names: pods, workloads (by name or model) and nodes of the scenario."""
    words = set(trigger.labels.values()) | set((trigger.question or "").replace("?", " ").split())
    subject = Subject(namespace="inference")
    for w in scenario.cluster.workloads:
        pods = [p.name for p in w.pods or [] if p.name]
        if w.name in words or w.labels.get("model") in words or words & set(pods):
            subject.workloads.append(w.name)
            subject.pods += pods
            subject.nodes += [p.node for p in w.pods or [] if p.node]
            subject.models += [m for m in [w.labels.get("model")] if m]
    subject.nodes = sorted(
        {*subject.nodes, *(n.name for n in scenario.cluster.nodes if n.name in words)}
    )
    return subject


@dataclass
class Outcome:
    scenario: models.Scenario
    named: list[Finding]
    """Findings with the subject the trigger names."""
    unnamed: list[Finding]
    """Findings with an empty subject: the whole namespace and fleet."""


def detect(inv: Investigation) -> list[Finding]:
    return [f for m in MODULES for d in m.DETECTORS for f in d(inv)]


@pytest.fixture(scope="module", params=SCENARIOS)
def outcome(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcome]:
    scenario = loader.load_file(ROOT / "scenarios" / f"{request.param}.yaml")
    with up.Lab(scenario, workdir=tmp_path_factory.mktemp("lab")) as lab:
        lab.start(deliver_alerts=False)
        box = clients.build_toolbox(lab.settings(tool_timeout_seconds=10))
        trigger = trigger_of(scenario)
        named = Investigation(
            box=box, trigger=trigger, subject=subject_of(scenario, trigger), now=lab.now
        )
        unnamed = Investigation(
            box=box, trigger=trigger, subject=Subject(namespace="inference"), now=lab.now
        )
        yield Outcome(scenario, detect(named), detect(unnamed))


def live(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings if not f.ruled_out}


def fixes(findings: list[Finding]) -> set[str]:
    return {f"{x.code}@{x.target}" for f in findings if not f.ruled_out for x in f.fixes}


def proposed(wanted: str, found: set[str]) -> bool:
    """``code@target`` must match exactly; a plain ``code`` matches any target."""
    return wanted in found if "@" in wanted else any(f.split("@")[0] == wanted for f in found)


def test_expected_findings_are_found(outcome: Outcome) -> None:
    wanted = set(outcome.scenario.expect.findings) & CODES
    assert wanted <= live(outcome.named)


def test_what_else_is_concluded_or_excluded(outcome: Outcome) -> None:
    name = outcome.scenario.name
    assert ALSO_FOUND.get(name, set()) <= live(outcome.named)
    excluded = {f.code for f in outcome.named if f.ruled_out}
    assert RULED_OUT.get(name, set()) <= excluded


def test_application_xids_restart_only_a_stuck_process(outcome: Outcome) -> None:
    name = outcome.scenario.name
    if name in EXACT_FIXES:
        assert fixes(outcome.named) == EXACT_FIXES[name]


def test_not_findings_never_appear_named_or_not(outcome: Outcome) -> None:
    forbidden = set(outcome.scenario.expect.not_findings)
    assert not forbidden & live(outcome.named)
    assert not forbidden & live(outcome.unnamed)


def test_expected_fixes_are_suggested_for_their_targets(outcome: Outcome) -> None:
    found = fixes(outcome.named)
    for wanted in outcome.scenario.expect.fixes:
        if wanted.split("@")[0] in FIX_CODES:
            assert proposed(wanted, found), (wanted, sorted(found))


def test_not_fixes_are_never_suggested(outcome: Outcome) -> None:
    for findings in (outcome.named, outcome.unnamed):
        found = fixes(findings)
        for banned in outcome.scenario.expect.not_fixes:
            assert not proposed(banned, found), (banned, sorted(found))


def test_every_finding_says_what_call_saw_what(outcome: Outcome) -> None:
    for finding in outcome.named + outcome.unnamed:
        assert finding.code in CODES
        assert 0 < finding.confidence <= 1
        for ev in finding.evidence:
            assert ev.call and ev.value and ev.source


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("name", ["gpu-memory-expected-preallocation", "gpu-oom-kv-cache-pressure"])
def test_prometheus_unreachable_is_named_and_never_read_as_healthy(
    name: str, tmp_path: Path
) -> None:
    scenario = loader.load_file(ROOT / "scenarios" / f"{name}.yaml")
    with up.Lab(scenario, workdir=tmp_path) as lab:
        lab.start(deliver_alerts=False)
        settings = lab.settings(prometheus_url=f"http://127.0.0.1:{_closed_port()}")
        box = clients.build_toolbox(settings)
        box = dataclasses.replace(box, limits=dataclasses.replace(box.limits, attempts=1))
        trigger = trigger_of(scenario)
        inv = Investigation(
            box=box, trigger=trigger, subject=subject_of(scenario, trigger), now=lab.now
        )
        found = detect(inv)
    assert "prometheus" in inv.unreachable
    assert gpu_memory.PREALLOCATION not in live(found)  # "the alert is noise" needs the metrics
    assert not [f for f in found if f.ruled_out]
    for finding in found:
        assert all(ev.source != "prometheus" for ev in finding.evidence)
    if name == "gpu-oom-kv-cache-pressure":  # the OOM in the logs still speaks
        assert gpu_memory.KV_PRESSURE in live(found)
