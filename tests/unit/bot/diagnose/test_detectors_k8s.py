"""The loading, Karpenter and network detectors reach each public scenario's expected answer.

Each scenario runs in the whole lab (real Prometheus, fake Kubernetes and CloudWatch), the
trigger is the scenario's first firing alert or its question, and the subject is resolved the
way the engine does it. Only the codes of these runbooks are scored here; the scenario's
``not_findings`` and ``not_fixes`` are checked whole, since these detectors must not produce any.
"""

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import clients
from bot.diagnose import subject as subject_mod
from bot.diagnose.detectors import karpenter, loading, network
from bot.diagnose.investigation import Detector, Investigation, Subject
from bot.diagnose.model import Finding, Trigger
from lab import up
from lab.scenario import loader
from lab.scenario.models import Scenario

ROOT = Path(__file__).resolve().parents[4]
DETECTORS: list[Detector] = [*loading.DETECTORS, *karpenter.DETECTORS, *network.DETECTORS]
CODES = loading.CODES | karpenter.CODES | network.CODES
FIXES = {
    "increase-memory-limit",
    "use-model-cache-pvc",
    "extend-startup-probe",
    "add-instance-types",
    "add-zones",
    "allow-on-demand",
    "raise-nodepool-limit",
    "increase-nccl-timeout",
    "enable-efa",
    "increase-request-timeout",
    "add-zone-anti-affinity",
}
SCENARIOS = [
    "hf-gated-repo-forbidden",
    "startup-probe-kills-70b-load",
    "cache-pvc-pending",
    "karpenter-spot-only-p5",
    "karpenter-single-zone-p4d",
    "karpenter-nodepool-gpu-limit",
    "nccl-timeout-tp16-no-efa",
    "gateway-timeout-long-reasoning",
    "single-zone-replicas-az-impairment",
    "gpu-oom-kv-cache-pressure",
    "daily-checks-healthy",
    "hf-hub-unreachable-egress-blocked",
    "oomkilled-loading-qwen-32b",
    "liveness-probe-kills-mixtral-load",
    "gpu-idle-alert-s3-access-denied",
    "gpu-oom-70b-weights-on-a100-40gb",
    "context-too-long-llama-3-1-8b-on-l4",
    "karpenter-p5-insufficient-capacity-all-zones",
    "dns-coredns-timeouts-gateway-503",
    "nccl-timeout-after-xid74-nvlink",
    "daily-checks-node-down-over-budget",
]


@dataclass
class Outcome:
    scenario: Scenario
    inv: Investigation
    findings: list[Finding]

    def live(self) -> set[str]:
        return {f.code for f in self.findings if not f.ruled_out}

    def fixes(self) -> set[str]:
        """Proposed fixes as ``code@target`` and bare ``code``."""
        out: set[str] = set()
        for fix in (x for f in self.findings if not f.ruled_out for x in f.fixes):
            out |= {fix.code, f"{fix.code}@{fix.target}"}
        return out


def _trigger(scenario: Scenario) -> Trigger:
    firing = [a for a in scenario.alerts if a.status == "firing"]
    if firing:
        alert = firing[0]
        return Trigger(
            kind="alert",
            alertname=alert.labels.get("alertname"),
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
        )
    return Trigger(kind="question", question=scenario.question)


def _aws_env(lab: up.Lab, mp: pytest.MonkeyPatch) -> None:
    for key, value in lab.env().items():
        if key.startswith("AWS_"):
            mp.setenv(key, value)  # boto3 reads its endpoints from the environment


@pytest.fixture(scope="module", params=SCENARIOS)
def outcome(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcome]:
    scenario = loader.load_file(ROOT / "scenarios" / f"{request.param}.yaml")
    with (
        pytest.MonkeyPatch.context() as mp,
        up.Lab(scenario, workdir=tmp_path_factory.mktemp("lab")) as lab,
    ):
        lab.start(deliver_alerts=False)
        _aws_env(lab, mp)
        box = clients.build_toolbox(lab.settings())
        inv = Investigation(
            box=box, trigger=_trigger(scenario), subject=Subject(namespace="inference")
        )
        subject_mod.resolve(inv, default_namespace="inference")
        findings = [f for detector in DETECTORS for f in detector(inv)]
        yield Outcome(scenario, inv, findings)


def test_expected_findings_are_found(outcome: Outcome) -> None:
    wanted = set(outcome.scenario.expect.findings or []) & CODES
    assert wanted <= outcome.live(), [f.summary for f in outcome.findings]


def test_tempting_wrong_findings_are_absent(outcome: Outcome) -> None:
    assert not set(outcome.scenario.expect.not_findings or []) & outcome.live()


def test_expected_fixes_are_suggested(outcome: Outcome) -> None:
    wanted = {f for f in outcome.scenario.expect.fixes or [] if f.split("@")[0] in FIXES}
    assert wanted <= outcome.fixes()


def test_wrong_fixes_are_not_suggested(outcome: Outcome) -> None:
    assert not set(outcome.scenario.expect.not_fixes or []) & outcome.fixes()


def test_every_finding_says_what_it_saw(outcome: Outcome) -> None:
    for finding in outcome.findings:
        assert finding.code in CODES
        assert all(e.call and e.value and e.source for e in finding.evidence)
        assert all(fix.code in FIXES for fix in finding.fixes)


def test_a_healthy_cluster_has_no_finding(outcome: Outcome) -> None:
    if outcome.scenario.name == "daily-checks-healthy":
        assert outcome.live() == set()
    assert not outcome.inv.unreachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kubeconfig(path: Path, port: int) -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {{server: "http://127.0.0.1:{port}"}}
contexts:
- name: gone
  context: {{cluster: gone, user: nobody}}
current-context: gone
users:
- name: nobody
  user: {{token: none}}
"""
    )
    return path


def test_kubernetes_unreachable_claims_nothing(tmp_path: Path) -> None:
    """With the API down, CloudWatch still shows the gateway's 504s, but nothing may say the
    model is healthy: no request-timeout, nothing ruled out, Kubernetes named unreachable."""
    scenario = loader.load_file(ROOT / "scenarios" / "gateway-timeout-long-reasoning.yaml")
    with pytest.MonkeyPatch.context() as mp, up.Lab(scenario, workdir=tmp_path / "lab") as lab:
        lab.start(deliver_alerts=False)
        _aws_env(lab, mp)
        kubeconfig = _kubeconfig(tmp_path / "kubeconfig", _closed_port())
        box = clients.build_toolbox(lab.settings(kubeconfig=kubeconfig, tool_timeout_seconds=2))
        inv = Investigation(
            box=box, trigger=_trigger(scenario), subject=Subject(namespace="inference")
        )
        subject_mod.resolve(inv, default_namespace="inference")
        findings = [f for detector in DETECTORS for f in detector(inv)]
    assert findings == []
    assert "kubernetes" in inv.unreachable
